// Shared by every page: API calls, toasts, theme, local times, the live event stream.

export const base = document.body.dataset.base || "";
export const API = `${base}/api/v2`;
const SESSION_COOKIE = "dagu_session";
const FLASH_KEY = "dagu-flash";

/** Call the REST API (same origin; the session cookie authenticates). Resolves to parsed JSON or null. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path.startsWith(API + "/") ? path : API + path, init);
  if (res.status === 401 && document.body.dataset.auth === "builtin") {
    location.href = `${base}/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiError(401, "unauthorized", "Please sign in again");
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text }; }
  }
  if (!res.ok) throw new ApiError(res.status, data?.code || "error", data?.message || res.statusText);
  return raw ? res : data;
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message || `${status} ${code}`); this.status = status; this.code = code; }
}

/** Show a short message in the corner. */
export function toast(message, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = message;
  box.append(el);
  setTimeout(() => el.remove(), ms);
}

/** Run `fn`; a thrown ApiError becomes an error toast. Returns fn's result or undefined. */
export async function attempt(fn, okMessage) {
  try {
    const result = await fn();
    if (okMessage) toast(okMessage);
    return result;
  } catch (err) {
    toast(err.message || String(err), "error", 6000);
    return undefined;
  }
}

/** Show `message` as a toast on the next page this tab loads (for actions that navigate away). */
export function flash(message, kind = "info") {
  try { sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, kind })); } catch { /* private mode: no toast */ }
}

function showFlash() {
  let item = null;
  try {
    item = JSON.parse(sessionStorage.getItem(FLASH_KEY) || "null");
    sessionStorage.removeItem(FLASH_KEY);
  } catch { return; }
  if (item?.message) toast(item.message, item.kind);
}

/** Mark a dialog's input invalid and say why under it (cleared again by `clearFieldError`). */
export function showFieldError(input, box, message) {
  box.textContent = message;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

export function clearFieldError(input, box) {
  box.textContent = "";
  input.removeAttribute("aria-invalid");
}

export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export function badge(label) {
  const l = label || "not_started";
  return `<span class="badge st-${esc(l)}" data-status="${esc(l)}">${esc(l.replaceAll("_", " "))}</span>`;
}

const pad = (n) => String(n).padStart(2, "0");

/** `2026-11-24 18:07:36` in the browser's zone (`18:07` with style "hm"); same-day times drop the date. */
export function fmtTime(iso, style = "full") {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (style === "hm") return hm;
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day} ${hm}:${pad(d.getSeconds())}`;
}

export function timeHtml(iso) {
  return iso ? `<time datetime="${esc(iso)}">${esc(fmtTime(iso))}</time>` : `<span class="muted">—</span>`;
}

export function fmtDuration(start, end) {
  if (!start) return "—";
  const a = new Date(start).getTime();
  const b = end ? new Date(end).getTime() : Date.now();
  const s = Math.max(0, (b - a) / 1000);
  if (s < 10) return `${s.toFixed(1)}s`;
  const n = Math.floor(s);
  if (n < 60) return `${n}s`;
  if (n < 3600) return `${Math.floor(n / 60)}m ${String(n % 60).padStart(2, "0")}s`;
  return `${Math.floor(n / 3600)}h ${String(Math.floor((n % 3600) / 60)).padStart(2, "0")}m`;
}

/** Rewrite server-rendered `<time datetime>` to the browser's zone. */
export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    el.textContent = fmtTime(el.getAttribute("datetime"), el.dataset.fmt || "full");
    el.title = el.getAttribute("datetime");
  }
}

// --- live events -------------------------------------------------------------------------

const listeners = new Set();
let source = null;

/**
 * Call `fn(event)` for each run/step/queue event from the server (SSE). Reconnects on its own;
 * `onReconnect` listeners get a synthetic {type: "reconnect"} so pages can refetch what they missed.
 */
export function onLive(fn, query = "") {
  listeners.add(fn);
  if (!source) connect(query);
  return () => listeners.delete(fn);
}

function connect(query) {
  const dot = document.getElementById("live-dot");
  let opened = false;
  source = new EventSource(`${API}/events${query ? "?" + query : ""}`, { withCredentials: true });
  source.onopen = () => {
    dot?.classList.add("on");
    if (opened) emit({ type: "reconnect" });
    opened = true;
  };
  source.onerror = () => dot?.classList.remove("on");
  for (const type of ["run", "step", "queue"]) {
    source.addEventListener(type, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      emit(data);
    });
  }
  source.addEventListener("dropped", () => emit({ type: "reconnect" }));
}

function emit(event) {
  for (const fn of listeners) {
    try { fn(event); } catch (err) { console.error(err); }
  }
}

/** Re-render `<main>` from the server when events arrive (debounced); for list pages. */
export function liveReload(filter = () => true, delayMs = 800) {
  let timer = null;
  onLive((event) => {
    if (!filter(event) || timer) return;
    timer = setTimeout(async () => {
      timer = null;
      if (document.querySelector("dialog[open]") || document.activeElement?.matches("input, select, textarea")) return;
      const res = await fetch(location.href, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.querySelector("main");
      if (fresh) {
        document.querySelector("main").replaceChildren(...fresh.childNodes);
        localizeTimes();
        document.dispatchEvent(new CustomEvent("dagu:reloaded"));
      }
    }, delayMs);
  });
}

export function pageData() {
  const el = document.getElementById("page-data");
  return el ? JSON.parse(el.textContent) : {};
}

// --- chrome -------------------------------------------------------------------------------

function setupTheme() {
  const btn = document.getElementById("theme-toggle");
  if (!btn) return;
  btn.addEventListener("click", () => {
    const root = document.documentElement;
    const current = root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = current === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("dagu-theme", next); } catch { /* private mode */ }
  });
}

function setupLogout() {
  document.getElementById("logout")?.addEventListener("click", () => {
    document.cookie = `${SESSION_COOKIE}=; Path=${base || "/"}; Max-Age=0; SameSite=Strict`;
    location.href = document.body.dataset.auth === "oidc" ? `${base}/oidc/logout` : `${base}/login`;
  });
}

/** Store a login token as the session cookie the auth middleware reads. */
export function setSession(token, expiresAt) {
  const maxAge = expiresAt ? Math.max(60, Math.floor((new Date(expiresAt).getTime() - Date.now()) / 1000)) : 86400;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${SESSION_COOKIE}=${encodeURIComponent(token)}; Path=${base || "/"}; Max-Age=${maxAge}; SameSite=Strict${secure}`;
}

setupTheme();
setupLogout();
localizeTimes();
showFlash();
