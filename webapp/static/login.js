// The desk's login form (a file of its own: the desk's pages allow no inline script, see webapp/routes/desk_auth.py).
document.getElementById("login").addEventListener("submit", async function (e) {
  e.preventDefault();
  const r = await fetch("/desk/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: document.getElementById("username").value, password: document.getElementById("password").value }) });
  if (r.ok) { location.href = "/desk"; return; }
  const err = document.getElementById("error");
  err.textContent = (await r.json()).error || "登录失败"; err.hidden = false;
});
