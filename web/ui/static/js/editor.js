// A plain-textarea YAML editor: line numbers, Tab indents, validation as you type with the
// offending lines highlighted (errors come from the spec loader through the API).
import { api, esc } from "./app.js";

const LINE_RE = /:(\d+):(\d+):/;

export class SpecEditor {
  /**
   * @param {HTMLElement} root the .editor element (gutter, .hl, textarea inside)
   * @param {HTMLElement} problems the list that shows errors
   * @param {{name: string, onState?: (s: string) => void}} opts
   */
  constructor(root, problems, { name, onState = () => {} }) {
    this.root = root;
    this.text = root.querySelector("textarea");
    this.gutter = root.querySelector(".gutter");
    this.hl = root.querySelector(".hl");
    this.problems = problems;
    this.name = name;
    this.onState = onState;
    this.errorLines = new Set();
    this.saved = this.text.value;
    this.seq = 0;
    this.timer = null;
    this.text.addEventListener("input", () => this.changed());
    this.text.addEventListener("scroll", () => this.syncScroll());
    this.text.addEventListener("keydown", (e) => this.keydown(e));
    this.problems.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-line]");
      if (li) this.goto(Number(li.dataset.line));
    });
    this.render();
    this.validate();
  }

  get value() { return this.text.value; }
  get dirty() { return this.text.value !== this.saved; }

  markSaved() {
    this.saved = this.text.value;
    this.onState("Saved");
  }

  changed() {
    this.render();
    this.onState(this.dirty ? "Unsaved changes" : "");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.validate(), 350);
  }

  /** Ask the server whether the text is a valid DAG; show what it says. */
  async validate() {
    const seq = ++this.seq;
    let result;
    try {
      result = await api("/dags/validate", { method: "POST", body: { spec: this.text.value, name: this.name } });
    } catch (err) {
      result = { valid: false, errors: [err.message] };
    }
    if (seq !== this.seq) return null; // a newer edit is being checked
    this.show(result.errors || [], result.valid);
    return result;
  }

  show(errors, valid) {
    this.errorLines = new Set();
    const items = errors.map((msg) => {
      const m = LINE_RE.exec(msg);
      const line = m ? Number(m[1]) : 0;
      if (line) this.errorLines.add(line);
      const where = line ? `line ${line}: ` : "";
      return `<li ${line ? `data-line="${line}"` : ""} class="error">${esc(where + shorten(msg))}</li>`;
    });
    this.problems.innerHTML = items.length ? items.join("") : (valid === false ? "" : `<li class="ok">✓ Valid</li>`);
    this.root.classList.toggle("has-errors", items.length > 0);
    this.render();
  }

  render() {
    const count = this.text.value.split("\n").length;
    let g = "";
    let h = "";
    for (let i = 1; i <= count; i++) {
      const err = this.errorLines.has(i) ? ' class="err"' : "";
      g += `<div${err} data-line="${i}">${i}</div>`;
      h += `<div${err}></div>`;
    }
    this.gutter.innerHTML = g;
    this.hl.innerHTML = h;
    this.syncScroll();
  }

  syncScroll() {
    this.gutter.scrollTop = this.text.scrollTop;
    this.hl.scrollTop = this.text.scrollTop;
    this.hl.scrollLeft = this.text.scrollLeft;
  }

  goto(line) {
    const lines = this.text.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    this.text.focus();
    this.text.setSelectionRange(start, start + (lines[line - 1] || "").length);
    this.text.scrollTop = Math.max(0, (line - 5) * 19);
    this.syncScroll();
  }

  keydown(e) {
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      document.execCommand("insertText", false, "  ");
    } else if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
      // Keep the indentation of the current line.
      const { value, selectionStart } = this.text;
      const lineStart = value.lastIndexOf("\n", selectionStart - 1) + 1;
      const indent = /^[ ]*(- )?/.exec(value.slice(lineStart))[0].replace("- ", "  ");
      if (indent) {
        e.preventDefault();
        document.execCommand("insertText", false, "\n" + indent);
      }
    }
  }
}

function shorten(msg) {
  // "<path>/x.yaml:3:5: steps[0]: ..." -> "steps[0]: ..." (the line number is shown separately)
  return msg.replace(/^[^\n]*?:\d+:\d+:\s*/, "");
}
