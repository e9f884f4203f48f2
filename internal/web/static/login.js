// login.js: the sign-in form. POST /api/login sets the session cookie;
// then back to the page that asked (?next=, same-origin paths only).
"use strict";
(function () {
  const form = document.getElementById("login");
  const err = document.getElementById("login-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const r = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: form.user.value, password: form.password.value }),
      });
      if (!r.ok) {
        let msg = r.status + " " + r.statusText;
        try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
        throw new Error(msg);
      }
      let next = new URLSearchParams(location.search).get("next") || "/";
      if (!next.startsWith("/") || next.startsWith("//")) next = "/";
      location.assign(next);
    } catch (e) {
      err.textContent = e.message;
      form.password.select();
    } finally {
      button.disabled = false;
    }
  });
})();
