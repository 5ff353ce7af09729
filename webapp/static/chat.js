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
  const queueText = document.getElementById("queue-text");
  const backToBot = document.getElementById("back-to-bot");
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
  // lines sent but not yet stored by the server (it echoes each stored line with its client_id): kept here
  // and sent again after a reconnect or a "retry" answer (the server stores a client_id once)
  const unacked = new Map();
  let ws = null, retry = 0, typing = null;

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
    if (m.role === "citizen" && m.payload && m.payload.client_id) unacked.delete(m.payload.client_id);
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

  // the bar over the chat while a person is involved; 回到机器人 leaves the queue (or the service) at any time
  function updateQueue(h) {
    const open = h && (h.status === "queued" || h.status === "claimed");
    backToBot.hidden = !open;
    if (!h || !(open || h.status === "message")) { queueBar.hidden = true; return; }
    if (h.status === "claimed") queueText.textContent = "人工客服已接入，正在为您服务";
    else if (h.status === "message") queueText.textContent = "已为您登记留言，工作人员上班后会尽快处理";
    else queueText.textContent = "正在排队等待人工客服" + (h.position ? "，您前面还有 " + Math.max(0, h.position - 1) + " 位" : "");
    queueBar.hidden = false;
  }
  backToBot.addEventListener("click", function () { send("/back_to_bot", "回到机器人"); });

  function applyState(s) {
    (s.messages || []).forEach(render);
    ratingBox.hidden = !s.awaiting_rating;
    if (s.handoff) updateQueue(s.handoff); else if (s.mode === "bot") queueBar.hidden = true;
  }

  function transmit(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    else showBanner("正在连接客服，连接后会自动发送您的消息…", true);
  }
  function flushUnacked() {  // after the state of a (re)connection: what the server has not stored goes again
    unacked.forEach(function (u) { if (!u.timer) transmit(u.frame); });
  }
  function retryLater(clientId) {  // the database was busy: the same line (same client_id) goes again, backing off
    const u = unacked.get(clientId);
    if (!u || u.timer) return;
    u.tries += 1;
    u.timer = setTimeout(function () { u.timer = null; if (unacked.has(clientId)) transmit(u.frame); },
      Math.min(30000, 2000 * Math.pow(2, u.tries - 1)));
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
    ws.onopen = function () { showBanner(""); };  // the back-off resets only once the server has served a state
    ws.onmessage = function (ev) {
      let data; try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "state") { retry = 0; applyState(data); flushUnacked(); }
      else if (data.type === "message") render(data.message);
      else if (data.type === "handoff") updateQueue(data.handoff);
      else if (data.type === "rating") ratingBox.hidden = !data.show;
      else if (data.type === "error" && data.code === "session") { session = null; setTyping(false); showHint(data.text); }
      else if (data.type === "error" && data.code === "retry") { showHint(data.text); retryLater(data.client_id); }
      else if (data.type === "error" && data.code === "state") {
        showHint(data.text);
        setTimeout(function () { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "state" })); }, 2000);
      }
      else if (data.type === "error") { unacked.delete(data.client_id); setTyping(false); showHint(data.text); }
    };
    ws.onclose = function (ev) {
      setTyping(false);
      if (ev.code === 1013) {  // refused: too many chat windows from this address (CHAT_MAX_CONNECTIONS_PER_SOURCE)
        showBanner("同一网络打开的对话窗口过多，请关闭其他窗口，30 秒后自动重新连接。您的对话记录不会丢失。", true);
        setTimeout(connect, 30000);
        return;
      }
      showBanner("与客服的连接已断开，正在重新连接…您的对话记录不会丢失。", true);
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    };
  }

  function send(text, display) {
    showHint("");
    const msg = { type: "message", text: text, display: display || null, client_id: newId() };
    setTyping(true);
    unacked.set(msg.client_id, { frame: msg, tries: 0, timer: null });
    transmit(msg);
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
