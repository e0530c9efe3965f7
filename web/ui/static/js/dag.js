// DAG page: start (params form) / enqueue / stop / retry / restart, rename / delete, live graph colours,
// spec editor.
import { api, attempt, badge, base, clearFieldError, flash, fmtDuration, onLive, pageData, showFieldError, timeHtml, toast } from "./app.js";
import { SpecEditor } from "./editor.js";
import { paintRun, resetGraph } from "./graph.js";

const page = pageData();
const dagPath = `/dags/${encodeURIComponent(page.file)}`;
let latest = page.latest; // {id, name, status, params} of the newest run, or null
const ACTIVE = new Set(["running", "queued", "waiting"]);
// The server's rule (web/catalog.py FILE_NAME_RE); checked here only to answer before a round trip.
const FILE_NAME_RE = /^(?!\.\.?$)[a-zA-Z0-9_.-]{1,40}$/;
let editor = null; // the spec editor on the Spec tab
let leaving = false; // set once the page is about to go away on purpose (no unsaved-edits prompt)

// --- actions ------------------------------------------------------------------------------

/** The params string in CLI syntax from the form: positional values, then NAME=value pairs. */
function paramsFromForm() {
  const parts = [];
  for (const input of document.querySelectorAll("#start-form input.param")) {
    const v = input.value;
    const quoted = /[\s"]/.test(v) || v === "" ? `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : v;
    parts.push(input.dataset.positional === "true" ? quoted : `${input.dataset.name}=${quoted}`);
  }
  return parts.join(" ");
}

function openStart(mode) {
  const dialog = document.getElementById("start-dialog");
  dialog.dataset.mode = mode;
  document.getElementById("start-title").textContent = `${mode === "enqueue" ? "Enqueue" : "Start"} ${page.name}`;
  document.getElementById("start-ok").textContent = mode === "enqueue" ? "Enqueue" : "Start";
  dialog.showModal();
}

async function submitStart(mode) {
  const body = { params: paramsFromForm() || undefined };
  const runId = document.getElementById("run-id")?.value.trim();
  if (runId) body.dagRunId = runId;
  const res = await attempt(() => api(`${dagPath}/${mode}`, { method: "POST", body }));
  if (!res) return;
  toast(mode === "enqueue" ? `Queued ${res.dagRunId}` : `Started ${res.dagRunId}`);
  latest = { id: res.dagRunId, name: page.name, status: mode === "enqueue" ? "queued" : "running" };
  resetGraph();
  refresh();
}

async function stop() {
  if (!latest) return;
  await attempt(() => api(`/dag-runs/${encodeURIComponent(latest.name)}/${encodeURIComponent(latest.id)}/stop`, { method: "POST" }), "Stopping…");
  refresh();
}

async function retry() {
  if (!latest) return;
  const ok = await attempt(() => api(`/dag-runs/${encodeURIComponent(latest.name)}/${encodeURIComponent(latest.id)}/retry`, { method: "POST", body: { dagRunId: latest.id } }));
  if (ok !== undefined) { toast(`Retrying ${latest.id}`); resetGraph(); refresh(); }
}

/** Stop the running run, wait until it ends, start a new one with the same params. */
async function restart() {
  if (!latest) return;
  const { name, id, params } = latest;
  const stopped = await attempt(() => api(`/dag-runs/${encodeURIComponent(name)}/${encodeURIComponent(id)}/stop`, { method: "POST" }));
  if (stopped === undefined) return;
  toast("Restarting…");
  for (let i = 0; i < 60; i++) {
    const doc = await api(`/dag-runs/${encodeURIComponent(name)}/${encodeURIComponent(id)}`).catch(() => null);
    if (!doc || !ACTIVE.has(doc.dagRunDetails.statusLabel)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const res = await attempt(() => api(`${dagPath}/start`, { method: "POST", body: { params: params || undefined } }));
  if (res) { latest = { id: res.dagRunId, name, status: "running", params }; resetGraph(); refresh(); }
}

/** `{name}` (the new file name without .yaml/.yml, as the server strips it) or `{error}` saying what is wrong. */
function checkFileName(raw) {
  let name = raw.trim();
  for (const suffix of [".yaml", ".yml"]) if (name.endsWith(suffix)) name = name.slice(0, -suffix.length);
  if (!name) return { error: "Enter the new file name." };
  if (!FILE_NAME_RE.test(name)) {
    return { error: `"${name}" is not a valid file name: use 1–40 letters, digits, '_', '.' or '-' (not "." or "..").` };
  }
  return { name };
}

function setupRename() {
  const dialog = document.getElementById("rename-dialog");
  if (!dialog) return;
  const input = document.getElementById("rename-name");
  const error = document.getElementById("rename-error");
  const ok = document.getElementById("rename-ok");
  document.getElementById("btn-rename").addEventListener("click", () => {
    input.value = page.file;
    clearFieldError(input, error);
    dialog.showModal();
    input.select();
  });
  document.getElementById("rename-cancel").addEventListener("click", () => dialog.close());
  input.addEventListener("input", () => clearFieldError(input, error));
  document.getElementById("rename-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const check = checkFileName(input.value);
    if (check.error) { showFieldError(input, error, check.error); return; }
    if (check.name === page.file) { dialog.close(); return; }
    if (editor?.dirty) {
      // Saving later would go to the old path, which no longer exists after the rename.
      showFieldError(input, error, "The spec has unsaved changes: save them first, or reload the page to drop them.");
      return;
    }
    ok.disabled = true;
    try {
      await api(`${dagPath}/rename`, { method: "POST", body: { newFileName: check.name } });
    } catch (err) {
      showFieldError(input, error, err.message || String(err));
      ok.disabled = false;
      return;
    }
    leaving = true;
    flash(`Renamed ${page.file} to ${check.name}`);
    location.href = `${base}/dags/${encodeURIComponent(check.name)}`;
  });
}

function setupDelete() {
  const dialog = document.getElementById("delete-dialog");
  if (!dialog) return;
  const input = document.getElementById("delete-confirm");
  const error = document.getElementById("delete-error");
  const ok = document.getElementById("delete-ok");
  const confirmed = () => input.value.trim() === page.file;
  document.getElementById("btn-delete").addEventListener("click", () => {
    input.value = "";
    ok.disabled = true;
    clearFieldError(input, error);
    dialog.showModal();
    input.focus();
  });
  document.getElementById("delete-cancel").addEventListener("click", () => dialog.close());
  input.addEventListener("input", () => { clearFieldError(input, error); ok.disabled = !confirmed(); });
  document.getElementById("delete-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!confirmed()) return;
    ok.disabled = true;
    try {
      await api(dagPath, { method: "DELETE" });
    } catch (err) {
      showFieldError(input, error, err.message || String(err));
      ok.disabled = false;
      return;
    }
    leaving = true;
    flash(`Deleted ${page.file}`);
    location.href = `${base}/dags`;
  });
}

// --- live state ---------------------------------------------------------------------------

let refreshing = null;
let again = false;

/** Fetch the latest run and repaint graph, card and buttons (coalesces bursts of events). */
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = (async () => {
    try {
      const path = latest ? `/dag-runs/${encodeURIComponent(latest.name)}/${encodeURIComponent(latest.id)}` : `/dag-runs/${encodeURIComponent(page.name)}/latest`;
      const doc = await api(path).catch(() => null);
      if (doc?.dagRunDetails) apply(doc.dagRunDetails);
    } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  })();
}

function apply(run) {
  latest = { id: run.dagRunId, name: run.name, status: run.statusLabel, params: run.params };
  paintRun(run);
  const link = `${base}/dag-runs/${encodeURIComponent(run.name)}/${encodeURIComponent(run.dagRunId)}`;
  const status = document.getElementById("latest-status");
  if (status) status.innerHTML = `${badge(run.statusLabel)} <a href="${link}" class="mono">${run.dagRunId.slice(0, 13)}${run.dagRunId.length > 13 ? "…" : ""}</a>`;
  const started = document.getElementById("latest-started");
  if (started) started.innerHTML = timeHtml(run.startedAt);
  const duration = document.getElementById("latest-duration");
  if (duration) duration.textContent = fmtDuration(run.startedAt, run.finishedAt);
  for (const a of document.querySelectorAll("#graph a.node")) a.setAttribute("href", `${link}?step=${encodeURIComponent(a.dataset.step)}`);
  const active = run.statusLabel === "running" || run.statusLabel === "waiting";
  document.getElementById("btn-stop")?.classList.toggle("hidden", !active);
  document.getElementById("btn-restart")?.classList.toggle("hidden", !active);
  document.getElementById("btn-retry")?.classList.toggle("hidden", !["failed", "aborted", "partially_succeeded", "rejected"].includes(run.statusLabel));
}

function live() {
  onLive((event) => {
    if (event.type === "reconnect" || event.dagName === page.name || event.rootDAGRunName === page.name) {
      if ((event.type === "run" || event.type === "queue") && event.dagName === page.name && event.dagRunId && event.dagRunId !== latest?.id) {
        // A run of this DAG we have not seen: follow it from now on.
        latest = { id: event.dagRunId, name: page.name, status: event.statusLabel };
        resetGraph();
      }
      refresh();
    }
  }, `dagName=${encodeURIComponent(page.name)}`);
  // Safety net while something runs: the stream may be down or behind a proxy that buffers.
  setInterval(() => { if (latest && ACTIVE.has(latest.status)) refresh(); }, 2000);
}

// --- spec editor ---------------------------------------------------------------------------

function setupEditor() {
  const root = document.getElementById("editor");
  if (!root) return;
  const state = document.getElementById("save-state");
  editor = new SpecEditor(root, document.getElementById("problems"), { name: page.name, onState: (s) => { state.textContent = s; } });
  const save = async () => {
    const check = await editor.validate();
    if (check && check.valid === false) {
      toast("Not saved: fix the errors first", "error");
      return;
    }
    const res = await attempt(() => api(`${dagPath}/spec`, { method: "PUT", body: { spec: editor.value } }));
    if (res === undefined) return;
    if (res?.errors?.length) {
      editor.show(res.errors, false);
      toast("Not saved: the spec has errors", "error");
      return;
    }
    editor.markSaved();
    toast("Saved");
  };
  document.getElementById("btn-save")?.addEventListener("click", save);
  root.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); if (page.canWrite) save(); }
  });
  addEventListener("beforeunload", (e) => { if (editor.dirty && !leaving) e.preventDefault(); });
}

// --- wiring ---------------------------------------------------------------------------------

document.getElementById("btn-start")?.addEventListener("click", () => openStart("start"));
document.getElementById("btn-enqueue")?.addEventListener("click", () => openStart("enqueue"));
document.getElementById("btn-stop")?.addEventListener("click", stop);
document.getElementById("btn-retry")?.addEventListener("click", retry);
document.getElementById("btn-restart")?.addEventListener("click", restart);
const dialog = document.getElementById("start-dialog");
dialog?.addEventListener("close", () => { if (dialog.returnValue === "ok") submitStart(dialog.dataset.mode || "start"); });
setupEditor();
setupRename();
setupDelete();
if (page.tab === "graph") live();
