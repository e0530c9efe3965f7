// Live colours for the server-drawn step graph and status cells.

const STATUS_CLASS = /\bst-[a-z_]+\b/g;

/** Set the status class of the graph node for `step` (no-op if the graph has no such node). */
export function paintStep(step, label) {
  const svg = document.getElementById("graph");
  if (!svg) return;
  for (const node of svg.querySelectorAll(".node")) {
    if (node.dataset.step !== step) continue;
    node.setAttribute("class", node.getAttribute("class").replace(STATUS_CLASS, "").trim() + ` st-${label}`);
    const title = node.querySelector("title");
    if (title) title.textContent = `${step} — ${label.replaceAll("_", " ")}`;
  }
}

/** Paint every node from a DAGRunDetails document. */
export function paintRun(run) {
  for (const n of run.nodes || []) paintStep(n.step.name, n.statusLabel);
}

/** Reset every node to "not started" (a new run began). */
export function resetGraph() {
  const svg = document.getElementById("graph");
  if (!svg) return;
  for (const node of svg.querySelectorAll(".node")) {
    node.setAttribute("class", node.getAttribute("class").replace(STATUS_CLASS, "").trim() + " st-not_started");
  }
}
