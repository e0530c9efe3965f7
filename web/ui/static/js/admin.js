// Table pages over the REST API: queues, workers, users, API keys, webhooks, audit log.
// The API decides who may see or change what; a refusal is shown in place of the table.
import { api, attempt, badge, base, esc, onLive, timeHtml } from "./app.js";

const root = document.getElementById("admin-root");
const actions = document.getElementById("page-actions");
const ROLES = ["admin", "manager", "developer", "operator", "viewer"];

function table(headers, rows, empty) {
  const body = rows.length ? rows.join("") : `<tr><td colspan="${headers.length}" class="empty">${esc(empty)}</td></tr>`;
  return `<div class="card flush"><div class="table-wrap"><table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table></div></div>`;
}

function runLink(r) {
  const sub = r.rootDAGRunId && r.rootDAGRunId !== r.dagRunId ? `/sub/${encodeURIComponent(r.dagRunId)}` : "";
  return `<a class="mono" href="${base}/dag-runs/${encodeURIComponent(r.rootDAGRunName || r.name)}/${encodeURIComponent(r.rootDAGRunId || r.dagRunId)}${sub}">${esc(r.dagRunId.slice(0, 13))}</a>`;
}

function roleSelect(current, attrs = "") {
  return `<select ${attrs}>${ROLES.map((r) => `<option ${r === current ? "selected" : ""}>${r}</option>`).join("")}</select>`;
}

async function show(render) {
  try {
    root.innerHTML = await render();
  } catch (err) {
    root.innerHTML = `<div class="card empty">${esc(err.message)}</div>`;
  }
}

/** A modal form; resolves to {field: value} or null when cancelled. */
function ask(title, fields, okLabel = "Save") {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.innerHTML = `<form method="dialog"><h2>${esc(title)}</h2>${fields.map((f) => `<div class="field"><label>${esc(f.label)}</label>${
      f.type === "role" ? roleSelect(f.value || "viewer", `name="${f.name}"`) :
      f.type === "dag" ? `<select name="${f.name}">${f.options.map((o) => `<option>${esc(o)}</option>`).join("")}</select>` :
      `<input name="${f.name}" type="${f.type || "text"}" value="${esc(f.value || "")}" ${f.required ? "required" : ""} ${f.minlength ? `minlength="${f.minlength}"` : ""} style="width:100%">`
    }</div>`).join("")}<div class="dialog-actions"><button class="btn" value="cancel" formnovalidate>Cancel</button><button class="btn primary" value="ok">${esc(okLabel)}</button></div></form>`;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const form = dialog.querySelector("form");
      const out = dialog.returnValue === "ok" ? Object.fromEntries(new FormData(form)) : null;
      dialog.remove();
      resolve(out);
    });
    dialog.showModal();
  });
}

function secret(title, value) {
  const dialog = document.createElement("dialog");
  dialog.innerHTML = `<h2>${esc(title)}</h2><p>Copy it now; it is not shown again.</p><div class="secret" id="secret-value">${esc(value)}</div><div class="dialog-actions"><button class="btn primary" type="button">Done</button></div>`;
  document.body.append(dialog);
  dialog.querySelector("button").addEventListener("click", () => { dialog.close(); dialog.remove(); });
  dialog.showModal();
}

function button(label, onClick, cls = "btn") {
  if ([...actions.children].some((el) => el.textContent === label)) return; // kept across reloads
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = label;
  b.addEventListener("click", onClick);
  actions.append(b);
}

// --- pages ------------------------------------------------------------------------------------

const pages = {
  async queues() {
    const doc = await api("/queues");
    const s = doc.summary || {};
    const cards = `<div class="grid cols-4">${[["Queues", s.totalQueues], ["Running", s.totalRunning], ["Queued", s.totalQueued], ["Utilisation", `${Math.round(s.utilizationPercentage || 0)}%`]]
      .map(([l, n]) => `<div class="card stat"><span class="n">${esc(n ?? 0)}</span><span class="l">${l}</span></div>`).join("")}</div>`;
    const rows = (doc.queues || []).map((q) => {
      const runs = [...q.running.map((r) => [r, "running"]), ...q.queued.map((r) => [r, "queued"])];
      const list = runs.length ? runs.map(([r]) => `<div>${badge(r.statusLabel)} <a href="${base}/dags/${encodeURIComponent(r.name)}">${esc(r.name)}</a> ${runLink(r)}</div>`).join("") : `<span class="muted">idle</span>`;
      return `<tr><td><b>${esc(q.name)}</b></td><td><span class="tag">${esc(q.type)}</span></td><td class="num">${q.running.length} / ${esc(q.maxConcurrency ?? "—")}</td><td class="num">${q.queued.length}</td><td>${list}</td></tr>`;
    });
    return cards + table(["Queue", "Type", "Running / max", "Queued", "Runs"], rows, "No queues yet; a queue appears when a DAG is enqueued.");
  },

  async workers() {
    const doc = await api("/workers").catch((err) => ({ workers: [], errors: [err.message] }));
    const errors = (doc.errors || []).map((e) => `<div class="card muted">${esc(e)}</div>`).join("");
    const health = { healthy: "succeeded", warning: "waiting", unhealthy: "failed" };
    const rows = (doc.workers || []).map((w) => `<tr><td class="mono">${esc(w.id)}</td><td>${badge(health[w.healthStatus] || "not_started").replace(/>[^<]*<\/span>$/, `>${esc(w.healthStatus)}</span>`)}</td><td>${Object.entries(w.labels || {}).map(([k, v]) => `<span class="tag">${esc(k)}=${esc(v)}</span>`).join("")}</td><td class="num">${w.busyPollers} / ${w.totalPollers}</td><td>${(w.runningTasks || []).map((t) => `<div><a href="${base}/dag-runs/${encodeURIComponent(t.rootDagRunName || t.dagName)}/${encodeURIComponent(t.rootDagRunId || t.dagRunId)}">${esc(t.dagName)}</a></div>`).join("") || '<span class="muted">idle</span>'}</td><td>${timeHtml(w.lastHeartbeatAt)}</td></tr>`);
    return errors + table(["Worker", "Health", "Labels", "Busy / pollers", "Running", "Last heartbeat"], rows, "No workers connected.");
  },

  async users() {
    button("New user", async () => {
      const f = await ask("New user", [{ name: "username", label: "Username", required: true }, { name: "password", label: "Password (8+ characters)", type: "password", required: true, minlength: 8 }, { name: "role", label: "Role", type: "role" }], "Create");
      if (f && (await attempt(() => api("/users", { method: "POST", body: f }), `Created ${f.username}`)) !== undefined) reload();
    }, "btn primary");
    const doc = await api("/users");
    const rows = doc.users.map((u) => `<tr data-id="${esc(u.id)}"><td><b>${esc(u.username)}</b></td><td>${roleSelect(u.role, 'class="role-change"')}</td><td>${timeHtml(u.createdAt)}</td><td class="actions"><button class="btn small reset" type="button">Reset password</button><button class="btn small danger delete" type="button">Delete</button></td></tr>`);
    return table(["User", "Role", "Created", ""], rows, "No users.");
  },

  async api_keys() {
    button("New API key", async () => {
      const f = await ask("New API key", [{ name: "name", label: "Name", required: true }, { name: "description", label: "Description" }, { name: "role", label: "Role", type: "role" }], "Create");
      if (!f) return;
      const res = await attempt(() => api("/api-keys", { method: "POST", body: f }));
      if (res) { secret(`API key ${f.name}`, res.key); reload(); }
    }, "btn primary");
    const doc = await api("/api-keys");
    const rows = doc.apiKeys.map((k) => `<tr data-id="${esc(k.id)}"><td><b>${esc(k.name)}</b><div class="desc">${esc(k.description || "")}</div></td><td class="mono">${esc(k.keyPrefix)}…</td><td>${esc(k.role)}</td><td>${timeHtml(k.createdAt)}</td><td>${timeHtml(k.lastUsedAt)}</td><td><button class="btn small danger delete" type="button">Revoke</button></td></tr>`);
    return table(["Name", "Key", "Role", "Created", "Last used", ""], rows, "No API keys.");
  },

  async webhooks() {
    button("New webhook", async () => {
      const dags = await api("/dags?perPage=1000").then((d) => d.dags.map((x) => x.fileName)).catch(() => []);
      const f = await ask("New webhook", [{ name: "dag", label: "DAG", type: "dag", options: dags }], "Create");
      if (!f) return;
      const res = await attempt(() => api(`/dags/${encodeURIComponent(f.dag)}/webhook`, { method: "POST" }));
      if (res) { secret(`Webhook token for ${f.dag}`, res.token); reload(); }
    }, "btn primary");
    const doc = await api("/webhooks");
    const rows = doc.webhooks.map((w) => `<tr data-dag="${esc(w.dagName)}"><td><a href="${base}/dags/${encodeURIComponent(w.dagName)}">${esc(w.dagName)}</a></td><td class="mono">${esc(w.tokenPrefix)}…</td><td><label class="switch"><input type="checkbox" class="toggle" ${w.enabled ? "" : "checked"}><span></span></label> <span class="muted">${w.enabled ? "enabled" : "disabled"}</span></td><td>${timeHtml(w.lastUsedAt)}</td><td class="actions"><button class="btn small regen" type="button">New token</button><button class="btn small danger delete" type="button">Delete</button></td></tr>`);
    return `<div class="card muted">Trigger with <code>POST ${esc(location.origin + base)}/api/v2/webhooks/&lt;dag&gt;</code> and <code>Authorization: Bearer &lt;token&gt;</code>.</div>` +
      table(["DAG", "Token", "Disabled", "Last used", ""], rows, "No webhooks.");
  },

  async audit() {
    const q = new URLSearchParams(location.search);
    const day = q.get("date") || new Date().toISOString().slice(0, 10);
    const doc = await api(`/audit?date=${encodeURIComponent(day)}&limit=500`);
    const form = `<form class="toolbar" method="get"><input type="date" name="date" value="${esc(day)}" aria-label="Day"><button class="btn" type="submit">Show</button></form>`;
    const rows = doc.entries.map((e) => `<tr><td>${timeHtml(e.timestamp)}</td><td>${esc(e.username || "—")}</td><td>${esc(e.category)}</td><td>${esc(e.action)}</td><td class="mono">${esc(e.resource_id || "")}</td><td>${badge(e.result === "success" ? "succeeded" : "failed").replace(/>[^<]*<\/span>$/, `>${esc(e.status)}</span>`)}</td><td class="mono hide-sm">${esc(e.ip_address || "")}</td></tr>`);
    return form + table(["When", "Who", "Category", "Action", "Resource", "Result", "IP"], rows, "Nothing recorded on this day.");
  },
};

// --- row actions --------------------------------------------------------------------------------

root.addEventListener("change", async (e) => {
  const tr = e.target.closest("tr");
  if (e.target.matches(".role-change")) {
    await attempt(() => api(`/users/${tr.dataset.id}`, { method: "PATCH", body: { role: e.target.value } }), "Role changed");
  } else if (e.target.matches(".toggle")) {
    await attempt(() => api(`/dags/${encodeURIComponent(tr.dataset.dag)}/webhook/toggle`, { method: "POST", body: { enabled: !e.target.checked } }));
    reload();
  }
});

root.addEventListener("click", async (e) => {
  const tr = e.target.closest("tr");
  const kind = root.dataset.page;
  if (e.target.matches(".delete")) {
    const what = kind === "users" ? `/users/${tr.dataset.id}` : kind === "api_keys" ? `/api-keys/${tr.dataset.id}` : `/dags/${encodeURIComponent(tr.dataset.dag)}/webhook`;
    if (!confirm("Delete it? This cannot be undone.")) return;
    if ((await attempt(() => api(what, { method: "DELETE" }), "Deleted")) !== undefined) reload();
  } else if (e.target.matches(".reset")) {
    const f = await ask("Reset password", [{ name: "newPassword", label: "New password (8+ characters)", type: "password", required: true, minlength: 8 }]);
    if (f) await attempt(() => api(`/users/${tr.dataset.id}/reset-password`, { method: "POST", body: f }), "Password reset");
  } else if (e.target.matches(".regen")) {
    const res = await attempt(() => api(`/dags/${encodeURIComponent(tr.dataset.dag)}/webhook/regenerate`, { method: "POST" }));
    if (res) { secret(`New token for ${tr.dataset.dag}`, res.token); reload(); }
  }
});

function reload() {
  return show(pages[root.dataset.page]);
}

actions.replaceChildren();
reload();
if (root.dataset.page === "queues" || root.dataset.page === "workers") {
  let timer = null;
  const again = () => { if (!timer) timer = setTimeout(() => { timer = null; reload(); }, 500); };
  onLive(again);
  if (root.dataset.page === "workers") setInterval(again, 10000);
}
