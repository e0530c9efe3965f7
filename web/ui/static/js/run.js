// Run page: live step table and graph, step logs (tail, follow, page back), stop / retry / retry from a step,
// reschedule (a new run from this run's DAG snapshot).
import { api, attempt, badge, base, clearFieldError, flash, fmtDuration, onLive, pageData, showFieldError, timeHtml, toast } from "./app.js";
import { paintRun } from "./graph.js";

const page = pageData();
const runPath = `/dag-runs/${encodeURIComponent(page.rootName)}/${encodeURIComponent(page.rootId)}` +
  (page.subId ? `/sub-dag-runs/${encodeURIComponent(page.subId)}` : "");
const ACTIVE = new Set(["running", "queued", "waiting"]);
const TAIL_LINES = 1000;
const RUN_ID_RE = /^[-a-zA-Z0-9_]{1,64}$/; // the server's rule (dagu/store/naming.py)
let status = page.status;

// --- live run state ---------------------------------------------------------------------------

let busy = false;
let pending = false;

async function refresh() {
  if (busy) { pending = true; return; }
  busy = true;
  try {
    const doc = await api(runPath).catch(() => null);
    if (doc?.dagRunDetails) apply(doc.dagRunDetails);
  } finally {
    busy = false;
    if (pending) { pending = false; refresh(); }
  }
}

function apply(run) {
  const was = status;
  status = run.statusLabel;
  paintRun(run);
  document.getElementById("run-status").innerHTML = badge(run.statusLabel);
  const dur = document.getElementById("run-duration");
  if (dur) dur.textContent = run.startedAt ? fmtDuration(run.startedAt, run.finishedAt) : "not started";
  const rows = new Map([...document.querySelectorAll("#steps tbody tr[data-step]")].map((tr) => [tr.dataset.step, tr]));
  const nodes = [...(run.nodes || []), ...["onSuccess", "onFailure", "onCancel", "onExit"].map((k) => run[k]).filter(Boolean)];
  for (const n of nodes) {
    const tr = rows.get(n.step.name);
    if (!tr || (tr.dataset.status === n.statusLabel && !ACTIVE.has(n.statusLabel) && n.statusLabel !== "retrying")) continue;
    tr.dataset.status = n.statusLabel;
    set(tr, ".c-status", badge(n.statusLabel));
    set(tr, ".c-started", timeHtml(n.startedAt));
    set(tr, ".c-finished", timeHtml(n.finishedAt));
    set(tr, ".c-duration", fmtDuration(n.startedAt, n.finishedAt), true);
    set(tr, ".c-attempts", String((n.retryCount || 0) + (n.startedAt ? 1 : 0)), true);
  }
  const active = ACTIVE.has(status);
  document.getElementById("btn-stop")?.classList.toggle("hidden", !(status === "running" || status === "waiting"));
  document.getElementById("btn-retry")?.classList.toggle("hidden", active || !!page.subId);
  document.getElementById("btn-reschedule")?.classList.toggle("hidden", active);
  for (const b of document.querySelectorAll(".retry-step")) {
    const st = b.closest("tr").dataset.status;
    b.classList.toggle("hidden", active || !["failed", "aborted", "partially_succeeded", "skipped", "rejected"].includes(st));
  }
  if (was && ACTIVE.has(was) && !active) {
    // The run ended: reload once so exit codes, outputs, sub-runs and the timeline are complete.
    setTimeout(() => { if (!document.querySelector("dialog[open]")) location.reload(); }, 300);
  }
}

function set(tr, sel, value, text = false) {
  const el = tr.querySelector(sel);
  if (!el) return;
  if (text) el.textContent = value; else el.innerHTML = value;
}

// --- logs ----------------------------------------------------------------------------------

const log = {
  step: null, stream: "stdout", first: 1, end: 0, timer: null,
  el: document.getElementById("log"), card: document.getElementById("log-card"),
  info: document.getElementById("log-info"), follow: document.getElementById("log-follow"),
};

function logUrl(params) {
  const q = new URLSearchParams({ stream: log.stream, ...params });
  return `${runPath}/steps/${encodeURIComponent(log.step)}/log?${q}`;
}

async function openLog(step, stream = "stdout") {
  log.step = step;
  log.stream = stream;
  log.card.classList.remove("hidden");
  document.getElementById("log-title").textContent = step;
  for (const t of document.querySelectorAll(".stream-tab")) t.classList.toggle("active", t.dataset.stream === stream);
  const url = new URL(location.href);
  url.searchParams.set("step", step);
  url.searchParams.set("stream", stream);
  history.replaceState(null, "", url);
  const doc = await api(logUrl({ tail: TAIL_LINES })).catch((err) => ({ content: `(${err.message})` }));
  const total = doc.totalLines || 0;
  log.end = total;
  log.first = Math.max(1, total - (doc.lineCount || 0) + 1);
  log.el.textContent = doc.content || "";
  log.el.dataset.empty = doc.content ? "" : "1";
  if (!doc.content) log.el.textContent = "(empty)";
  showInfo();
  log.el.scrollTop = log.el.scrollHeight;
  log.card.scrollIntoView({ block: "nearest" });
  schedule();
}

/** Append lines written since the last read (live tail). */
async function follow() {
  if (!log.step) return;
  const doc = await api(logUrl({ offset: log.end + 1, limit: 5000 })).catch(() => null);
  if (doc?.content && doc.lineCount) {
    const atBottom = log.el.scrollHeight - log.el.scrollTop - log.el.clientHeight < 30;
    if (log.el.dataset.empty) { log.el.textContent = ""; log.el.dataset.empty = ""; }
    log.el.append((log.el.textContent ? "\n" : "") + doc.content);
    log.end += doc.lineCount;
    showInfo();
    if (atBottom || log.follow.checked) log.el.scrollTop = log.el.scrollHeight;
  }
}

async function earlier() {
  if (log.first <= 1) return;
  const start = Math.max(1, log.first - TAIL_LINES);
  const doc = await api(logUrl({ offset: start, limit: log.first - start })).catch(() => null);
  if (!doc) return;
  const height = log.el.scrollHeight;
  log.el.prepend(doc.content + "\n");
  log.first = start;
  showInfo();
  log.el.scrollTop = log.el.scrollHeight - height;
}

function showInfo() {
  log.info.textContent = log.end ? `lines ${log.first}–${log.end}` : "";
  document.getElementById("log-earlier").classList.toggle("hidden", log.first <= 1);
}

function schedule() {
  clearTimeout(log.timer);
  log.timer = setTimeout(async () => {
    const tr = document.querySelector(`#steps tr[data-step="${CSS.escape(log.step || "")}"]`);
    if (log.step && (ACTIVE.has(status) || ACTIVE.has(tr?.dataset.status))) await follow();
    if (log.step) schedule();
  }, 1000);
}

// --- actions -----------------------------------------------------------------------------------

async function stop() {
  await attempt(() => api(`${runPath}/stop`, { method: "POST" }), "Stopping…");
  refresh();
}

async function retry(step) {
  const body = { dagRunId: page.runId };
  if (step) body.stepName = step;
  const ok = await attempt(() => api(`${runPath}/retry`, { method: "POST", body }));
  if (ok === undefined) return;
  toast(step ? `Retrying from ${step}` : "Retrying the run");
  status = "running";
  refresh();
}

function setupReschedule() {
  const dialog = document.getElementById("reschedule-dialog");
  if (!dialog) return;
  const input = document.getElementById("reschedule-id");
  const error = document.getElementById("reschedule-error");
  const ok = document.getElementById("reschedule-ok");
  document.getElementById("btn-reschedule").addEventListener("click", () => {
    clearFieldError(input, error);
    dialog.showModal();
  });
  document.getElementById("reschedule-cancel").addEventListener("click", () => dialog.close());
  input.addEventListener("input", () => clearFieldError(input, error));
  document.getElementById("reschedule-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const runId = input.value.trim();
    if (runId && !RUN_ID_RE.test(runId)) {
      showFieldError(input, error, `"${runId}" is not a valid run ID: use 1–64 letters, digits, '-' or '_'.`);
      return;
    }
    ok.disabled = true;
    let res;
    try {
      res = await api(`${runPath}/reschedule`, { method: "POST", body: runId ? { dagRunId: runId } : {} });
    } catch (err) {
      showFieldError(input, error, err.message || String(err));
      ok.disabled = false;
      return;
    }
    flash(`Started ${res.dagRunId} from ${page.runId}`);
    location.href = `${base}/dag-runs/${encodeURIComponent(page.name)}/${encodeURIComponent(res.dagRunId)}`;
  });
}

setupReschedule();
document.getElementById("btn-stop")?.addEventListener("click", stop);
document.getElementById("btn-retry")?.addEventListener("click", () => retry());
document.getElementById("btn-dequeue")?.addEventListener("click", async () => {
  const ok = await attempt(() => api(`${runPath}/dequeue`), "Removed from the queue");
  if (ok !== undefined) location.href = page.fileName ? `${base}/dags/${encodeURIComponent(page.fileName)}` : `${base}/`;
});
document.getElementById("steps")?.addEventListener("click", (e) => {
  const link = e.target.closest("a.log-link");
  if (link) { e.preventDefault(); openLog(link.dataset.step, link.dataset.stream); return; }
  const btn = e.target.closest("button.retry-step");
  if (btn) retry(btn.dataset.step);
});
document.getElementById("graph")?.addEventListener("click", (e) => {
  const node = e.target.closest("a.node");
  if (node) { e.preventDefault(); openLog(node.dataset.step, "stdout"); }
});
for (const t of document.querySelectorAll(".stream-tab")) t.addEventListener("click", () => openLog(log.step, t.dataset.stream));
document.getElementById("log-earlier")?.addEventListener("click", earlier);
document.getElementById("log-close")?.addEventListener("click", () => {
  log.step = null;
  log.card.classList.add("hidden");
  const url = new URL(location.href);
  url.searchParams.delete("step");
  url.searchParams.delete("stream");
  history.replaceState(null, "", url);
});

const initial = new URL(location.href).searchParams;
if (initial.get("step")) openLog(initial.get("step"), initial.get("stream") || "stdout");

onLive((event) => {
  if (event.type === "reconnect" || event.dagRunId === page.runId || event.dagRunId === page.subId) refresh();
}, `dagName=${encodeURIComponent(page.name)}`);
setInterval(() => { if (ACTIVE.has(status)) refresh(); }, 2000);
