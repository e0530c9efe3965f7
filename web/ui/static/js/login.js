// The sign-in form (builtin auth): POST /auth/login, keep the JWT as the session cookie, go on.
import { API, base, setSession } from "./app.js";

const form = document.getElementById("login-form");
form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const res = await fetch(`${API}/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      error.textContent = data.message || "Sign-in failed";
      return;
    }
    setSession(data.token, data.expiresAt);
    const next = form.dataset.next || "/";
    location.href = next.startsWith(base) ? next : base + next;
  } catch (err) {
    error.textContent = String(err.message || err);
  } finally {
    button.disabled = false;
  }
});
