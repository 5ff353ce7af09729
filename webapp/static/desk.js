// Agent desk: live queues over /desk/ws, conversation view, replies, transfer, resolve, work orders, KB search;
// for supervisors also the hot-issue alert banner, the monthly reports and the 统计看板 tab (desk-dashboard.js);
// for everyone the 知识库 tab (desk-kb.js).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let me = null, current = null, ws = null, retry = 0, lastWaiting = -1, flash = null;
  const baseTitle = document.title;

  function notifyWaiting(n) {
    // a new citizen is waiting: flash the tab title (and a system notification if the agent allowed it)
    if (lastWaiting >= 0 && n > lastWaiting) {
      let on = false;
      clearInterval(flash);
      flash = setInterval(() => { document.title = (on = !on) ? "【新会话排队】" + baseTitle : baseTitle; }, 800);
      if (window.Notification && Notification.permission === "granted") new Notification("有市民在排队等待人工服务");
    }
    if (n === 0) { clearInterval(flash); document.title = baseTitle; }
    lastWaiting = n;
  }
  window.addEventListener("focus", () => { clearInterval(flash); document.title = baseTitle; });

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" }, credentials: "same-origin" }, opts || {}));
    if (r.status === 401) { location.href = "/desk/login"; throw new Error("未登录"); }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { alert(data.error || ("操作失败（" + r.status + "）")); throw new Error(data.error); }
    return data;
  }
  const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });
  const wait = (s) => s < 60 ? s + " 秒" : Math.floor(s / 60) + " 分钟";
  function li(text, meta, onclick, cls) {
    const el = document.createElement("li");
    el.innerHTML = "<div></div><div class='meta'></div>";
    el.firstChild.textContent = text; el.lastChild.textContent = meta;
    if (cls) el.className = cls;
    el.addEventListener("click", onclick);
    return el;
  }

  async function loadQueues() {
    const data = await api("/desk/api/queues");
    const mine = $("mine"); mine.innerHTML = "";
    data.mine.forEach((h) => mine.appendChild(li(h.summary || h.reason || "会话 " + h.id, h.queue + " · " + (h.channel === "phone" ? "电话" : "网页"),
      () => openHandoff(h.id), current === h.id ? "active" : "")));
    const qs = $("queues"); qs.innerHTML = "";
    Object.entries(data.queues).forEach(([q, list]) => {
      const head = document.createElement("div"); head.className = "queue-name"; head.textContent = q + "（" + list.length + "）"; qs.appendChild(head);
      const ul = document.createElement("ul"); ul.className = "list"; ul.dataset.queue = q;
      list.forEach((h) => ul.appendChild(li((h.priority ? "【优先】" : "") + (h.reason || "转人工"),
        "等待 " + wait(h.waiting_seconds) + " · " + (h.channel === "phone" ? "电话" : "网页") + " · " + (h.summary || ""), () => openHandoff(h.id), current === h.id ? "active" : "")));
      qs.appendChild(ul);
    });
    notifyWaiting(Object.values(data.queues).reduce((a, l) => a + l.length, 0));
    const others = $("others"); others.innerHTML = "";
    (data.claimed_by_others || []).forEach((h) => others.appendChild(li(h.reason || "会话 " + h.id, h.queue + " · " + h.agent, () => openHandoff(h.id))));
    if (me.role === "supervisor") loadStats();
  }

  async function loadStats() {
    const s = await api("/desk/api/stats");
    $("stats").textContent = Object.entries(s.queues).map(([q, d]) => q + " 排队 " + d.waiting + (d.waiting ? "（最长 " + wait(d.longest_wait_seconds) + "）" : "")).join("；")
      + "；接待中 " + s.claimed + "；未结工单 " + s.open_workorders + "（超时 " + s.overdue_workorders + "）；评价 " +
      Object.entries(s.ratings).map(([k, v]) => k + v).join(" ");
  }

  async function loadWorkorders() {
    const data = await api("/desk/api/workorders");
    const ul = $("workorders"); ul.innerHTML = "";
    data.workorders.forEach((w) => ul.appendChild(li("#" + w.id + " " + w.title, w.category + " · " + w.status + " · 限 " + w.deadline.slice(0, 10) + (w.overdue ? " · 已超时" : ""),
      async () => {
        const next = prompt("更新工单 #" + w.id + " 状态（open / in_progress / closed）", w.status === "open" ? "in_progress" : "closed");
        if (!next) return;
        const resolution = next === "closed" ? prompt("办结情况", w.resolution || "") : "";
        // expected_status: if another agent changed it meanwhile, the server refuses (409) instead of overwriting
        try { await post("/desk/api/workorders/" + w.id, { status: next, resolution: resolution || "", expected_status: w.status }); }
        finally { loadWorkorders(); }
      }, w.overdue ? "overdue" : "")));
  }

  // hot-issue alerts (analytics store, read by /desk/api/alerts): a banner while any is open; click shows the masked examples
  const since = (iso) => { const m = /^\d{4}-(\d{2})-(\d{2})T(\d{2}:\d{2})/.exec(iso || ""); return m ? (+m[1]) + "月" + (+m[2]) + "日 " + m[3] : iso; };
  const shownExamples = new Set();
  async function loadAlerts() {
    let data;
    try {
      const r = await fetch("/desk/api/alerts?open=1", { credentials: "same-origin" });
      if (!r.ok) return;  // the next refresh tries again; the banner keeps what it showed
      data = await r.json();
    } catch (e) { return; }
    const box = $("alerts"); box.innerHTML = "";
    data.alerts.forEach((a) => {
      const item = document.createElement("div"); item.className = "alert-item"; item.dataset.id = a.id;
      const head = document.createElement("div");
      const title = document.createElement("b"); title.textContent = "热点预警：" + a.topic;
      const meta = document.createElement("span"); meta.className = "meta";
      meta.textContent = "自 " + since(a.started_at) + " 起 " + a.count + " 次，通常约 " + a.expected + " 次" +
        (a.expected ? "（" + (a.count / a.expected).toFixed(1) + " 倍）" : "") + " · 点击查看市民问法";
      head.appendChild(title); head.appendChild(meta); item.appendChild(head);
      const ul = document.createElement("ul"); ul.className = "examples"; ul.hidden = !shownExamples.has(a.id);
      (a.examples.length ? a.examples : ["（无示例）"]).forEach((q) => { const e = document.createElement("li"); e.textContent = q; ul.appendChild(e); });
      item.appendChild(ul);
      head.addEventListener("click", () => {
        ul.hidden = !ul.hidden;
        if (ul.hidden) shownExamples.delete(a.id); else shownExamples.add(a.id);
      });
      box.appendChild(item);
    });
    box.hidden = data.alerts.length === 0;
  }

  // monthly reports written by `make report`: open the HTML, download PDF / XLSX
  async function loadReports() {
    const data = await api("/desk/api/reports");
    const ul = $("reports"); ul.innerHTML = "";
    if (!data.reports.length) { const e = document.createElement("li"); e.className = "meta"; e.textContent = "暂无报告"; ul.appendChild(e); }
    const labels = { html: "打开", pdf: "PDF", xlsx: "XLSX" };
    data.reports.forEach((rep) => {
      const e = document.createElement("li");
      const b = document.createElement("b"); b.textContent = rep.month.replace("-", "年") + "月"; e.appendChild(b);
      rep.formats.forEach((f) => {
        const a = document.createElement("a"); a.href = "/desk/api/reports/" + rep.month + "." + f; a.textContent = labels[f] || f;
        if (f === "html") { a.target = "_blank"; a.rel = "noopener"; } else a.download = rep.month + "." + f;
        e.appendChild(a);
      });
      ul.appendChild(e);
    });
  }

  let noticeTimer = null;
  function showNotice(text) {
    $("notice").textContent = text; $("notice").hidden = false;
    clearTimeout(noticeTimer); noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 15000);
  }

  function renderTranscript(lines) {
    const box = $("transcript"); box.innerHTML = "";
    const names = { citizen: "市民", bot: "机器人", agent: "坐席", system: "系统" };
    lines.forEach((m) => {
      const d = document.createElement("div"); d.className = "line " + m.role;
      const r = document.createElement("span"); r.className = "role"; r.textContent = names[m.role] || m.role;
      d.appendChild(r); d.appendChild(document.createTextNode(m.text)); box.appendChild(d);
    });
    box.scrollTop = box.scrollHeight;
  }

  async function openHandoff(id) {
    current = id;
    const data = await api("/desk/api/handoffs/" + id);
    const h = data.handoff;
    $("empty").hidden = true; $("conversation").hidden = false;
    $("conv-title").textContent = h.queue + " · " + (h.reason || "转人工");
    $("conv-meta").textContent = (h.channel === "phone" ? "电话" : "网页") + " · 状态 " + (h.closed ? "已结束（" + h.closed + "）" : h.status)
      + (h.agent ? " · " + h.agent : "") + " · 等待 " + wait(h.waiting_seconds) + (h.workorder_id ? " · 回电工单 #" + h.workorder_id : "");
    $("conv-summary").textContent = h.summary || "（无）";
    $("conv-slots").textContent = Object.keys(h.slots).length ? "已收集：" + Object.entries(h.slots).map(([k, v]) => k + "=" + v).join("，") : "";
    const mineNow = h.status === "claimed" && h.agent === me.username;
    $("claim").disabled = h.status !== "queued";
    ["transfer", "resolve", "new-wo"].forEach((b) => $(b).disabled = !mineNow && b !== "new-wo");
    $("reply").disabled = !mineNow;
    renderTranscript(data.transcript);
    document.querySelectorAll(".list li").forEach((el) => el.classList.remove("active"));
    loadQueues();
  }

  // a refused claim (someone else was first, or the citizen left) is explained by api(); the view shows the state now
  $("claim").addEventListener("click", async () => { try { await post("/desk/api/handoffs/" + current + "/claim"); } finally { openHandoff(current); } });
  $("resolve").addEventListener("click", async () => {
    if (!confirm("结束服务并请市民评价？")) return;
    await post("/desk/api/handoffs/" + current + "/resolve"); openHandoff(current);
  });
  $("transfer").addEventListener("click", async () => { await post("/desk/api/handoffs/" + current + "/transfer", { queue: $("transfer-to").value }); openHandoff(current); });
  $("reply-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply").value.trim(); if (!text) return;
    await post("/desk/api/handoffs/" + current + "/reply", { text: text });
    $("reply").value = ""; openHandoff(current);
  });
  $("reply").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("reply-form").requestSubmit(); } });
  $("kb-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = await api("/desk/api/kb/search?q=" + encodeURIComponent($("kb-q").value));
    const box = $("kb-results"); box.innerHTML = "";
    data.results.forEach((r) => {
      const d = document.createElement("div"); d.className = "kb-item";
      d.innerHTML = "<div class='q'></div><div class='a'></div><button class='small'>插入回复</button>";
      d.querySelector(".q").textContent = r.id + " " + r.question + (r.local_review ? "（需本地核对）" : "");
      d.querySelector(".a").textContent = r.answer;
      d.querySelector("button").addEventListener("click", () => { $("reply").value = ($("reply").value ? $("reply").value + "\n" : "") + r.answer; $("reply").focus(); });
      box.appendChild(d);
    });
  });
  $("new-wo").addEventListener("click", () => { $("wo-title").value = $("conv-summary").textContent.slice(0, 60); $("wo-dialog").showModal(); });
  $("wo-cancel").addEventListener("click", () => $("wo-dialog").close());
  $("wo-save").addEventListener("click", async (e) => {
    e.preventDefault();
    const convId = current ? (await api("/desk/api/handoffs/" + current)).handoff.conversation_id : null;
    await post("/desk/api/workorders", { conversation_id: convId, category: $("wo-category").value, title: $("wo-title").value,
      detail: $("wo-detail").value, contact: $("wo-contact").value, deadline_days: parseInt($("wo-days").value, 10) });
    $("wo-dialog").close(); loadWorkorders();
  });
  $("refresh-wo").addEventListener("click", loadWorkorders);
  $("logout").addEventListener("click", async () => { await post("/desk/logout"); location.href = "/desk/login"; });

  function connect() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/desk/ws");
    ws.onopen = () => { retry = 0; $("conn").textContent = "实时连接正常"; loadQueues(); };
    ws.onmessage = (ev) => {
      const e = JSON.parse(ev.data);
      if (e.type === "queue_changed" || e.type === "rating") loadQueues();
      if (e.type === "handoff_closed") {  // timed out, citizen left or went back to the bot
        showNotice("会话 #" + e.handoff_id + "（" + e.queue + "）已结束：" + e.text);
        if (e.handoff_id === current) openHandoff(current);
      }
      if (e.type === "workorders_changed") loadWorkorders();
      if ((e.type === "citizen_message" || e.type === "agent_message") && e.handoff_id === current) openHandoff(current);
      else if (e.type === "citizen_message") loadQueues();
    };
    ws.onclose = () => { $("conn").textContent = "连接断开，正在重连…"; retry = Math.min(retry + 1, 6); setTimeout(connect, 500 * Math.pow(2, retry - 1)); };
  }

  // the tabs: 接待 and 知识库 for everyone, 统计看板 for supervisors (desk-dashboard.js also listens to its two tabs)
  let kbStarted = false;
  function showTab(which) {
    document.querySelector(".layout").hidden = which !== "desk";
    $("dashboard").hidden = which !== "dashboard";
    $("kb-admin").hidden = which !== "kb";
    ["desk", "dashboard", "kb"].forEach((t) => $("tab-" + t).classList.toggle("active", t === which));
    if (which === "kb" && !kbStarted && window.DeskKb) { kbStarted = true; window.DeskKb.init(me); }
  }
  function tabs() {
    $("tabs").hidden = false;
    $("tab-dashboard").hidden = me.role !== "supervisor";
    ["desk", "dashboard", "kb"].forEach((t) => $("tab-" + t).addEventListener("click", () => showTab(t)));
  }

  (async function init() {
    me = await api("/desk/api/me");
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
    $("who").textContent = me.name + "（" + (me.role === "supervisor" ? "值班长" : "坐席") + "）· 队列：" + me.queues.join("、");
    $("supervisor").hidden = me.role !== "supervisor";
    tabs();
    ["transfer-to", "wo-category"].forEach((id) => me.all_queues.forEach((q) => {  // the queue names: common/handoff.py
      const o = document.createElement("option"); o.textContent = q; $(id).appendChild(o);
    }));
    await loadQueues(); await loadWorkorders(); connect();
    if (me.role === "supervisor") {
      loadAlerts(); loadReports();
      if (window.DeskDashboard) window.DeskDashboard.init();  // the 统计看板 tab
      setInterval(loadAlerts, 60000);  // the detector runs hourly; a minute is soon enough
    }
    setInterval(loadQueues, 15000); // waiting times tick even when nothing happens
  })();
})();
