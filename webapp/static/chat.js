// Citizen chat page: one WebSocket to the web app; the server's transcript is the source of truth.
(function () {
  "use strict";
  const MAX_CHARS = 500;
  const log = document.getElementById("log");
  const input = document.getElementById("input");
  const form = document.getElementById("composer");
  const sendBtn = document.getElementById("send");
  const banner = document.getElementById("banner");
  const hint = document.getElementById("hint");
  const queueBar = document.getElementById("queue");
  const ratingBox = document.getElementById("rating");

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return (Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2)).slice(0, 32);
  }
  // The server chooses the conversation and keeps it in an HttpOnly cookie: the page never names it.
  let session = null;
  function ensureSession() {
    if (!session) {
      session = fetch("/api/chat/state", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("session " + r.status); return r.json(); })
        .catch(function (e) { session = null; throw e; });
    }
    return session;
  }

  const seen = new Set();
  let ws = null, retry = 0, typing = null, pending = [];

  function showBanner(text, isError) {
    banner.textContent = text; banner.hidden = !text; banner.classList.toggle("error", !!isError);
  }
  function showHint(text) { hint.textContent = text || ""; hint.hidden = !text; }
  function setTyping(on) {
    if (on && !typing) { typing = document.createElement("div"); typing.className = "typing"; typing.textContent = "正在输入…"; log.appendChild(typing); }
    if (!on && typing) { typing.remove(); typing = null; }
    scroll();
  }
  function scroll() { log.scrollTop = log.scrollHeight; }

  function render(m) {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    const el = document.createElement("div");
    el.className = "msg " + m.role + (m.payload && m.payload.error ? " error" : "");
    el.dataset.role = m.role;
    if (m.role === "agent") {
      const who = document.createElement("div"); who.className = "who";
      who.textContent = "人工客服" + (m.payload && m.payload.agent_name ? " · " + m.payload.agent_name : "");
      el.appendChild(who);
    }
    const body = document.createElement("div"); body.className = "text"; body.textContent = m.text; el.appendChild(body);
    const buttons = (m.payload && m.payload.buttons) || [];
    if (buttons.length) {
      const box = document.createElement("div"); box.className = "buttons";
      buttons.forEach(function (b) {
        const btn = document.createElement("button"); btn.type = "button"; btn.textContent = b.title;
        btn.addEventListener("click", function () { send(b.payload, b.title); box.querySelectorAll("button").forEach(x => x.disabled = true); });
        box.appendChild(btn);
      });
      el.appendChild(box);
    }
    const custom = m.payload && m.payload.custom;
    if (custom && custom.handoff) updateQueue(custom.handoff);
    if (typing) log.insertBefore(el, typing); else log.appendChild(el);
    if (m.role !== "citizen") setTyping(false);
    scroll();
  }

  function updateQueue(h) {
    if (!h || h.status === "resolved" || h.status === "none") { queueBar.hidden = true; return; }
    if (h.status === "claimed") { queueBar.textContent = "人工客服已接入，正在为您服务"; queueBar.hidden = false; return; }
    if (h.status === "message") { queueBar.textContent = "已为您登记留言，工作人员上班后会尽快处理"; queueBar.hidden = false; return; }
    if (h.status === "unavailable") { queueBar.hidden = true; return; }
    queueBar.textContent = "正在排队等待人工客服" + (h.position ? "，您前面还有 " + Math.max(0, h.position - 1) + " 位" : "");
    queueBar.hidden = false;
  }

  function applyState(s) {
    (s.messages || []).forEach(render);
    ratingBox.hidden = !s.awaiting_rating;
    if (s.handoff) updateQueue(s.handoff); else if (s.mode === "bot") queueBar.hidden = true;
  }

  function connect() {
    ensureSession().then(open, function () {
      showBanner("与客服的连接已断开，正在重新连接…您的对话记录不会丢失。", true);
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    });
  }

  function open() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws/chat");
    ws.onopen = function () {
      retry = 0; showBanner("");
      const queued = pending; pending = [];
      queued.forEach(function (p) { ws.send(JSON.stringify(p)); });
    };
    ws.onmessage = function (ev) {
      let data; try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "state") applyState(data);
      else if (data.type === "message") render(data.message);
      else if (data.type === "handoff") updateQueue(data.handoff);
      else if (data.type === "rating") ratingBox.hidden = !data.show;
      else if (data.type === "error" && data.code === "session") { session = null; setTyping(false); showHint(data.text); }
      else if (data.type === "error") { setTyping(false); showHint(data.text); }
    };
    ws.onclose = function () {
      setTyping(false);
      showBanner("与客服的连接已断开，正在重新连接…您的对话记录不会丢失。", true);
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    };
  }

  function send(text, display) {
    showHint("");
    const msg = { type: "message", text: text, display: display || null, client_id: newId() };
    setTyping(true);
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    else { pending.push(msg); showBanner("正在连接客服，连接后会自动发送您的消息…", true); }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) { showHint("请输入您要咨询的内容。"); return; }
    if (text.length > MAX_CHARS) { showHint("消息太长了（" + text.length + " 字），请精简到 " + MAX_CHARS + " 字以内再发送。"); return; }
    send(text); input.value = ""; input.style.height = "";
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", function () { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 120) + "px"; });
  ratingBox.querySelectorAll("button").forEach(function (b) {
    b.addEventListener("click", function () {
      const comment = document.getElementById("rating-comment").value.trim();
      send("/rate_satisfaction" + JSON.stringify({ rating: b.dataset.score, comment: comment }), b.dataset.score + (comment ? "：" + comment : ""));
      ratingBox.hidden = true;
    });
  });
  connect();
})();
