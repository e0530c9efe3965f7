// DAG list: suspend toggles, live refresh, search as you type, new DAG.
import { api, attempt, base, liveReload, toast } from "./app.js";

function wire() {
  for (const box of document.querySelectorAll("input.suspend")) {
    box.addEventListener("change", async () => {
      const ok = await attempt(() => api(`/dags/${encodeURIComponent(box.dataset.file)}/suspend`, { method: "POST", body: { suspend: box.checked } }));
      if (ok === undefined) box.checked = !box.checked;
      else toast(box.checked ? `${box.dataset.file} suspended` : `${box.dataset.file} resumed`);
    });
  }
  const form = document.getElementById("dag-search");
  const q = form?.querySelector("input[name=q]");
  let timer = null;
  q?.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => form.requestSubmit(), 400);
  });
  form?.querySelector("select")?.addEventListener("change", () => form.requestSubmit());
  const dialog = document.getElementById("new-dag-dialog");
  document.getElementById("new-dag")?.addEventListener("click", () => dialog.showModal());
  dialog?.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok") return;
    const name = document.getElementById("new-dag-name").value.trim();
    if (!name) return;
    const done = await attempt(() => api("/dags", { method: "POST", body: { name } }));
    if (done !== undefined) location.href = `${base}/dags/${encodeURIComponent(name)}?tab=spec`;
  });
}

wire();
document.addEventListener("dagu:reloaded", wire);
liveReload((e) => e.type === "run" || e.type === "reconnect");
