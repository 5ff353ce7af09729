// 统计看板 for supervisors: the figures of a period from /desk/api/dashboard (every number is analytics.figures'),
// per-day and per-hour charts drawn here as inline SVG (no external script), top topics, hand-off reasons, the
// entries to improve; a click on a card, a bar or a row lists the records behind it (/desk/api/dashboard/sessions)
// and a click on a record shows the session's masked turns (/desk/api/dashboard/session/<id>). CSV downloads.
// desk.js calls DeskDashboard.init() for supervisors only; the API answers agents 403 anyway.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const PAGE = 50;
  let today = null, current = { from: "", to: "", channel: "" }, drill = null, loaded = false;

  const pct = (v) => v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%";
  const secs = (v) => v === null || v === undefined ? "—" : v < 60 ? Math.round(v) + " 秒" : (v / 60).toFixed(1) + " 分钟";
  const num = (v) => (v || 0).toLocaleString("zh-CN");
  const CHANNELS = { web: "网页", phone: "电话" };
  const OUTCOMES = { direct: "直接解答", handoff: "转人工", unhelpful: "没帮助", empty: "无对话" };
  const ROLES = { citizen: "市民", bot: "机器人", agent: "坐席" };

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function iso(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); }
  function addDays(day, n) { const d = new Date(day + "T12:00:00"); d.setDate(d.getDate() + n); return iso(d); }
  function query(extra) {
    const p = new URLSearchParams();
    if (current.from) p.set("from", current.from);
    if (current.to) p.set("to", current.to);
    if (current.channel) p.set("channel", current.channel);
    Object.entries(extra || {}).forEach(([k, v]) => { if (v !== undefined && v !== null && v !== "") p.set(k, v); });
    return p.toString();
  }
  async function get(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/desk/login"; throw new Error("未登录"); }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || ("查询失败（" + r.status + "）"));
    return data;
  }
  function showError(text) { $("db-error").textContent = text || ""; $("db-error").hidden = !text; }

  // --- the period picker -------------------------------------------------------------------------------------------
  function choose(kind) {
    document.querySelectorAll("#db-periods button").forEach((b) => b.classList.toggle("active", b.dataset.period === kind));
    $("db-custom").hidden = kind !== "custom";
    if (kind === "today") { current.from = today || ""; current.to = today || ""; }
    if (kind === "7d" && today) { current.from = addDays(today, -6); current.to = today; }
    if (kind === "month" && today) { current.from = today.slice(0, 8) + "01"; current.to = today; }
    if (kind === "custom") { $("db-from").value = current.from || today; $("db-to").value = current.to || today; return; }
    load();
  }

  // --- the figures ---------------------------------------------------------------------------------------------------
  async function load() {
    showError("");
    let data;
    try { data = await get("/desk/api/dashboard?" + query()); } catch (e) { showError(e.message); return; }
    if (!today) today = data.to;  // the centre's date, as the server counts it
    current.from = data.from; current.to = data.to;
    $("db-period").textContent = data.from === data.to ? data.from : data.from + " 至 " + data.to;
    $("db-asof").textContent = (data.simulated ? "【模拟数据，非真实业务】" : "") + (!data.store ? "尚无统计数据（统计任务尚未运行）"
      : (data.live ? "含今天：数据更新至最近一次统计导入" : "") + (data.as_of ? "（最新会话 " + data.as_of.replace("T", " ").slice(0, 16) + "）" : ""));
    $("db-export").href = "/desk/api/dashboard.csv?" + query();
    renderCards(data.totals);
    renderDays(data.days);
    renderHours(data.hours);
    renderTopics(data.topics);
    renderReasons(data.handoff_reasons);
    renderEntries(data.worst_entries);
    closeDrill();
  }

  function renderCards(t) {
    const cards = [
      ["sessions", "服务量", num(t.sessions), "次会话"],
      ["direct_answer_rate", "直接解答率", pct(t.direct_answer_rate), num(t.direct) + " / " + num(t.sessions)],
      ["handoff_rate", "转人工率", pct(t.handoff_rate), num(t.handed_off) + " / " + num(t.sessions)],
      ["abandonment_rate", "放弃率", pct(t.abandonment_rate), num(t.abandoned) + " / " + num(t.sessions)],
      ["queue_abandonment_rate", "排队放弃率", pct(t.queue_abandonment_rate), num(t.queue_abandoned) + " / " + num(t.queued) + " 次排队"],
      ["wait_seconds", "平均等待时长", secs(t.wait_mean), "中位 " + secs(t.wait_median) + " · " + num(t.claimed) + " 次接入"],
      ["handle_seconds", "平均处理时长", secs(t.handle_mean), "中位 " + secs(t.handle_median)],
      ["satisfaction_rate", "满意率", pct(t.satisfaction_rate), (t["满意"] + t["基本满意"]) + " / " + num(t.ratings) + " 条评价"],
      ["rating_response_rate", "评价率", pct(t.rating_response_rate), num(t.ratings) + " / " + num(t.surveys) + " 次邀请"],
      ["unhelpful_rate", "没帮助率", pct(t.unhelpful_rate), num(t.answer_unhelpful) + " / " + num(t.answers) + " 次解答"],
      ["handoff_after_rate", "答后转人工率", pct(t.handoff_after_rate), num(t.answer_handoff_after) + " / " + num(t.answers)],
    ];
    const box = $("db-cards"); box.innerHTML = "";
    cards.forEach(([figure, label, value, sub]) => {
      const c = el("button", null, "db-card"); c.type = "button"; c.dataset.figure = figure;
      c.appendChild(el("span", label, "db-label")); c.appendChild(el("b", value, "db-value")); c.appendChild(el("span", sub, "db-sub"));
      c.title = "点击查看明细";
      c.addEventListener("click", () => openDrill(figure, label, {}));
      box.appendChild(c);
    });
  }

  // a bar chart as inline SVG: bars (clickable), the largest value on the axis, a label every `every` bars
  function barChart(target, items, opts) {
    const box = $(target); box.innerHTML = "";
    const W = opts.width || 640, H = 180, left = 36, bottom = 22, top = 10;
    const max = Math.max(1, ...items.map((i) => i.value));
    const slot = (W - left) / Math.max(1, items.length), bw = Math.max(1, slot * 0.7);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H); svg.setAttribute("class", "db-chart"); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", opts.title);
    const line = (x1, y1, x2, y2) => { const l = document.createElementNS(SVG, "line"); [["x1", x1], ["y1", y1], ["x2", x2], ["y2", y2]].forEach(([k, v]) => l.setAttribute(k, v)); l.setAttribute("class", "db-axis"); svg.appendChild(l); };
    const text = (x, y, s, anchor) => { const t = document.createElementNS(SVG, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor || "middle"); t.setAttribute("class", "db-tick"); t.textContent = s; svg.appendChild(t); };
    line(left, H - bottom, W, H - bottom);
    text(left - 4, top + 8, String(max), "end"); text(left - 4, H - bottom, "0", "end");
    const every = Math.ceil(items.length / 12);
    items.forEach((item, i) => {
      const h = (H - bottom - top) * item.value / max, x = left + i * slot + (slot - bw) / 2;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", x.toFixed(1)); r.setAttribute("y", (H - bottom - h).toFixed(1));
      r.setAttribute("width", bw.toFixed(1)); r.setAttribute("height", Math.max(item.value ? 1 : 0, h).toFixed(1));
      r.setAttribute("class", "db-bar"); r.dataset.key = item.key;
      const tip = document.createElementNS(SVG, "title"); tip.textContent = item.tip; r.appendChild(tip);
      r.addEventListener("click", () => opts.click(item));
      svg.appendChild(r);
      // a transparent full-height target, so a day with few sessions is as easy to click
      const hit = document.createElementNS(SVG, "rect");
      hit.setAttribute("x", (left + i * slot).toFixed(1)); hit.setAttribute("y", top); hit.setAttribute("width", slot.toFixed(1));
      hit.setAttribute("height", H - bottom - top); hit.setAttribute("class", "db-hit");
      hit.appendChild(tip.cloneNode(true)); hit.addEventListener("click", () => opts.click(item));
      svg.appendChild(hit);
      if (i % every === 0) text(left + i * slot + slot / 2, H - 6, item.label);
    });
    box.appendChild(svg);
  }

  function renderDays(days) {
    barChart("db-days", days.map((d) => ({ key: d.day, value: d.sessions, label: d.day.slice(5),
      tip: d.day + "：" + d.sessions + " 次会话，直接解答率 " + pct(d.direct_answer_rate) + "，转人工率 " + pct(d.handoff_rate) })),
    { title: "每日服务量", click: (item) => openDrill("sessions", "服务量 · " + item.key, { day: item.key }) });
  }
  function renderHours(hours) {
    barChart("db-hours", hours.map((h) => ({ key: String(h.hour), value: h.sessions, label: String(h.hour),
      tip: h.hour + " 时：" + h.sessions + " 次会话，转人工率 " + pct(h.handoff_rate) })),
    { title: "分时段服务量", width: 420, click: (item) => openDrill("sessions", "服务量 · " + item.key + " 时", { hour: item.key }) });
  }

  function table(id, head, rows) {
    const t = $(id); t.innerHTML = "";
    const tr = el("tr"); head.forEach((h) => tr.appendChild(el("th", h))); t.appendChild(tr);
    if (!rows.length) { const e = el("tr"); const td = el("td", "（无）", "meta"); td.colSpan = head.length; e.appendChild(td); t.appendChild(e); }
    rows.forEach(([cells, onclick]) => {
      const r = el("tr"); cells.forEach((c) => r.appendChild(el("td", c)));
      if (onclick) { r.className = "db-link"; r.title = "点击查看明细"; r.addEventListener("click", onclick); }
      t.appendChild(r);
    });
  }
  function renderTopics(topics) {
    table("db-topics", ["主题", "会话", "占比"], topics.map((t) => [[t.topic, num(t.sessions), pct(t.share)],
      () => openDrill("sessions", "热点问题 · " + t.topic, { topic: t.topic })]));
  }
  function renderReasons(reasons) {
    table("db-reasons", ["原因", "会话"], reasons.map((r) => [[r.reason || "（未注明）", num(r.count)],
      () => openDrill("handoff_reasons", "转人工 · " + (r.reason || "（未注明）"), { reason: r.reason })]));
  }
  function renderEntries(entries) {
    table("db-entries", ["知识条目", "类别", "解答", "没帮助", "答后转人工"], entries.map((e) => [
      [e.entry_id, e.topic, num(e.answers), num(e.unhelpful) + "（" + pct(e.unhelpful_rate) + "）", num(e.handoff_after) + "（" + pct(e.handoff_after_rate) + "）"],
      () => openDrill(e.unhelpful >= e.handoff_after ? "unhelpful_rate" : "handoff_after_rate",
        (e.unhelpful >= e.handoff_after ? "没帮助" : "答后转人工") + " · " + e.entry_id, { entry: e.entry_id })]));
  }

  // --- drill-down: the records behind a figure, then one session's masked turns --------------------------------------
  function openDrill(figure, title, filters) {
    // pages are read by key (`after`: the previous page's `next`), so a deep page costs what the first one does;
    // `keys` holds the key of every page opened so far, for 上一页
    drill = { figure: figure, title: title, filters: Object.assign({ figure: figure }, filters), keys: [""], page: 0 };
    loadDrill();
  }
  function closeDrill() { $("db-drill").hidden = true; $("db-session").hidden = true; drill = null; }
  async function loadDrill() {
    let data;
    const after = drill.keys[drill.page];
    try { data = await get("/desk/api/dashboard/sessions?" + query(Object.assign({}, drill.filters, after ? { limit: PAGE, after: after } : { limit: PAGE }))); }
    catch (e) { showError(e.message); return; }
    $("db-drill").hidden = false; $("db-session").hidden = true;
    $("db-drill-title").textContent = drill.title + "：共 " + num(data.total) + " 条";
    $("db-drill-export").href = "/desk/api/dashboard/sessions?" + query(Object.assign({}, drill.filters, { format: "csv" }));
    const detail = (r) => r.score ? "评价：" + r.score
      : r.entry_id ? r.entry_id + (r.feedback === "unhelpful" ? " · 没帮助" : "") + (r.handoff_after ? " · 答后转人工" : "") + (r.question ? " · “" + r.question + "”" : "")
      : r.queue ? r.queue + " · " + r.status + (r.wait_seconds !== null ? " · 等待 " + secs(r.wait_seconds) : "") + (r.handle_seconds !== null ? " · 处理 " + secs(r.handle_seconds) : "")
      : r.handoff_reason ? "转人工：" + r.handoff_reason : "";
    table("db-drill-rows", ["时间", "渠道", "会话主题", "结果", "详情"], data.rows.map((r) => [
      [(r.at || "").replace("T", " ").slice(0, 16), CHANNELS[r.channel] || r.channel, r.topic || "—",
        (OUTCOMES[r.outcome] || r.outcome || "—") + (r.abandoned ? "（追问未答）" : ""), detail(r)],
      r.session_id ? () => openSession(r.session_id) : null]));
    const pages = Math.max(1, Math.ceil(data.total / PAGE));
    drill.keys[drill.page + 1] = data.next || "";
    $("db-page").textContent = "第 " + (drill.page + 1) + " / " + pages + " 页";
    $("db-prev").disabled = drill.page === 0; $("db-next").disabled = !data.next;
    $("db-drill").scrollIntoView({ block: "nearest" });
  }
  async function openSession(id) {
    let data;
    try { data = await get("/desk/api/dashboard/session/" + encodeURIComponent(id)); } catch (e) { showError(e.message); return; }
    const box = $("db-session"); box.innerHTML = ""; box.hidden = false;
    const s = data.session;
    box.appendChild(el("div", "会话 " + s.started_at.replace("T", " ") + " · " + (CHANNELS[s.channel] || s.channel) + " · " + (s.topic || "无主题") +
      " · " + (OUTCOMES[s.outcome] || s.outcome) + (s.handoff_reason ? " · 转人工原因：" + s.handoff_reason : ""), "db-session-head"));
    data.turns.forEach((t) => {
      const d = el("div", null, "line " + t.role);
      d.appendChild(el("span", ROLES[t.role] || t.role, "role"));
      d.appendChild(document.createTextNode(t.text + (t.entry_id ? "（" + t.entry_id + "）" : "")));
      box.appendChild(d);
    });
    data.handoffs.forEach((h) => box.appendChild(el("div", "人工：" + h.queue + " · " + h.status + (h.wait_seconds !== null ? " · 等待 " + secs(h.wait_seconds) : ""), "meta")));
    data.ratings.forEach((r) => box.appendChild(el("div", "评价：" + r.score + (r.comment ? " · " + r.comment : ""), "meta")));
    box.scrollIntoView({ block: "nearest" });
  }

  function show(which) {
    const dash = which === "dashboard";
    $("dashboard").hidden = !dash;
    document.querySelector(".layout").hidden = dash;
    $("tab-desk").classList.toggle("active", !dash); $("tab-dashboard").classList.toggle("active", dash);
    if (dash && !loaded) { loaded = true; load(); }
  }

  function init() {
    $("tabs").hidden = false;
    $("tab-desk").addEventListener("click", () => show("desk"));
    $("tab-dashboard").addEventListener("click", () => show("dashboard"));
    document.querySelectorAll("#db-periods button").forEach((b) => b.addEventListener("click", () => choose(b.dataset.period)));
    $("db-custom").addEventListener("submit", (e) => { e.preventDefault(); current.from = $("db-from").value; current.to = $("db-to").value; load(); });
    $("db-channel").addEventListener("change", () => { current.channel = $("db-channel").value; load(); });
    $("db-drill-close").addEventListener("click", closeDrill);
    $("db-prev").addEventListener("click", () => { drill.page = Math.max(0, drill.page - 1); loadDrill(); });
    $("db-next").addEventListener("click", () => { if (drill.keys[drill.page + 1]) { drill.page += 1; loadDrill(); } });
  }
  window.DeskDashboard = { init: init };
})();
