// 知识库 tab: agents search and browse the knowledge base, read history and diffs and propose changes (drafts);
// supervisors also review, publish, reject, retire, restore, import and export (docs/knowledge_desk.md, the API
// under /desk/api/kb/). Every change names the revision it was made from (`base`): when someone else saved in the
// meantime the server refuses (409) and the form keeps what the user typed. The server checks roles anyway; the
// page only hides what a role may not do. desk.js calls DeskKb.init(me) when the tab is first opened.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const PAGE = 50, MAX_VOICE = 80, MIN_PARAPHRASES = 5;
  const AREAS = [["card", "社保卡"], ["ecard", "电子社保卡"], ["enrol", "参保缴费"], ["transfer", "转移接续"],
    ["record", "权益记录与参保证明"], ["pension", "退休与养老待遇"], ["certify", "待遇资格认证"], ["unemp", "失业保险"],
    ["injury", "工伤保险"], ["maternity", "生育保险"], ["medical", "医疗保险"], ["channel", "服务渠道"]];
  const ENTRY_STATES = { published: "已发布", pending: "待审核", unpublished: "未发布", retired: "已停用" };
  const REV_STATES = { draft: "草稿", reviewed: "已审核", published: "已发布", superseded: "已被替代", rejected: "已退回", withdrawn: "已撤回",
    retired: "停用" };
  const SOURCES = { files: "仓库文件", "import": "导入", restore: "恢复" };
  const FIELDS = { category: "分类", question: "标准问题", paraphrases: "市民问法", answer: "网页答复", voice_answer: "语音答复",
    source: "来源", reviewed: "审核日期", local_review: "待地方确认", keywords: "关键词" };
  const OPEN_STATES = ["draft", "reviewed"];
  const NAMES = Object.assign({ paraphrase: "市民问法", note: "修改说明", id: "编号" }, FIELDS);
  // the content validator (knowledge/schema.py) words its problems in English: the desk shows them in Chinese
  const PROBLEMS = [
    [/voice_answer has (\d+) characters \(max (\d+)\)/, (m) => "语音答复有 " + m[1] + " 个字，超过 " + m[2] + " 个字的上限"],
    [/needs at least (\d+) paraphrases, has (\d+)/, (m) => "市民问法至少要 " + m[1] + " 条，现在只有 " + m[2] + " 条"],
    [/paraphrases repeat each other or the question/, () => "市民问法有重复，或与标准问题相同"],
    [/voice_answer must not contain a URL/, () => "语音答复不能包含网址"],
    [/voice_answer must not contain tables or list markers/, () => "语音答复不能包含表格或列表符号"],
    [/reviewed must be a date YYYY-MM-DD/, () => "审核日期应为 YYYY-MM-DD 格式的日期"],
    [/^category missing$/, () => "缺少分类"],
    [/same standard question as (\S+)/, (m) => "标准问题与 " + m[1] + " 相同"],
    [/near-duplicate standard questions: (\S+) ~ (\S+)/, (m) => "标准问题与已有条目过于相近：" + m[1] + " / " + m[2]],
    [/^缺少必填项：(.+)$/, (m) => "缺少必填项：" + m[1].split(/,\s*/).map((f) => NAMES[f] || f).join("、")],
    [/^(\w+) 超过 (\d+) 个字$/, (m) => (NAMES[m[1]] || m[1]) + " 超过 " + m[2] + " 个字"],
    [/^category 应为/, (m) => m.input.replace(/^category/, "分类")],
  ];
  function chinese(text) {
    const t = String(text);
    for (const [re, say] of PROBLEMS) { const m = re.exec(t); if (m) return say(m); }
    return t;
  }

  let me = null, sup = false, started = false;
  const list = { q: "", category: "", state: "", local: false, sort: "", page: 1, total: 0 };
  let mode = "search";                 // the left pane shows: search | review | local
  let queue = { review: [], local_review: [] };
  let cur = null;                      // the entry in the editor: {id, area, base, detail}; id null for a new entry
  let listSeq = 0, entrySeq = 0;       // a slow answer to an older request never overwrites a newer one
  let dirty = false;                   // the form holds changes not saved yet

  // --- helpers --------------------------------------------------------------------------------------------------------
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function button(text, onclick, cls) {
    const b = el("button", text, cls || "small"); b.type = "button";
    b.addEventListener("click", onclick);
    return b;
  }
  // the server's times are UTC ("…Z"); shown in the browser's time zone, the centre's
  const pad = (n) => String(n).padStart(2, "0");
  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso).replace("T", " ").slice(0, 16);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  const who = (name) => name === "files" ? "仓库文件" : name || "";
  const stateOf = (s) => REV_STATES[s] || s || "";
  const chars = (s) => Array.from(s || "").length;
  function today() { const d = new Date(); return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
  const numberOf = (rev) => rev && typeof rev === "object" ? rev.number : rev;

  async function call(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
    if (r.status === 401) { location.href = "/desk/login"; throw new Error("未登录"); }
    const data = await r.json().catch(() => ({}));
    return { status: r.status, ok: r.ok, data: data };
  }
  function post(path, body) {
    return call(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  }
  function failure(r) {
    if (r.data && r.data.error) return r.data.error;
    if (r.status === 403) return "没有权限执行此操作";
    if (r.status === 404) return "条目或版本不存在";
    return "操作失败（" + r.status + "）";
  }
  async function get(path) {
    const r = await call(path);
    if (!r.ok) throw new Error(failure(r));
    return r.data;
  }

  // the alert (errors, with an optional list of problems) and the status line (what just succeeded)
  function showError(text, problems) {
    const box = $("kb-error"); box.textContent = "";
    if (text) box.appendChild(el("div", text));
    if (problems && problems.length) {
      const ul = el("ul");
      problems.forEach((p) => ul.appendChild(el("li", chinese(typeof p === "string" ? p : (p.message || p.error || JSON.stringify(p))))));
      box.appendChild(ul);
    }
    box.hidden = !text && !(problems && problems.length);
  }
  let statusTimer = null;
  function showStatus(text) {
    $("kb-status").textContent = text || ""; $("kb-status").hidden = !text;
    clearTimeout(statusTimer);
    if (text) statusTimer = setTimeout(() => { $("kb-status").hidden = true; }, 20000);
  }
  function clearMessages() { showError(""); showStatus(""); showDuplicates([]); }

  // a small modal asking for confirmation and a note (no window.confirm); resolves to the note, or null if cancelled
  let dialogDone = null;
  function ask(opts) {
    $("kb-dialog-title").textContent = opts.title;
    $("kb-dialog-text").textContent = opts.text || "";
    $("kb-dialog-note").value = opts.note || "";
    $("kb-dialog-note").placeholder = opts.required ? "必填" : "可不填";
    $("kb-dialog-ok").textContent = opts.ok || "确定";
    $("kb-dialog-ok").classList.toggle("kb-danger", !!opts.danger);
    $("kb-dialog-note-row").hidden = !!opts.noNote;
    $("kb-dialog-error").hidden = true;
    $("kb-dialog").showModal();
    return new Promise((resolve) => { dialogDone = (v) => { dialogDone = null; resolve(v); }; }).then((v) => {
      if (v !== null && opts.required && !v) return null;
      return v;
    });
  }
  function closeDialog(value) {
    if ($("kb-dialog").open) $("kb-dialog").close();
    if (dialogDone) dialogDone(value);
  }
  // before the form is replaced: unsaved changes are given up only when the user says so
  async function leave() {
    if (!dirty) return true;
    const v = await ask({ title: "放弃未保存的修改？", text: "表单里的修改还没有保存，离开后会丢失。", ok: "放弃修改", noNote: true, danger: true });
    if (v === null) return false;
    dirty = false;
    return true;
  }
  async function go(id) { if (await leave()) openEntry(id); }

  // --- the left pane: search results, review queue, entries waiting for local confirmation ------------------------------
  function listItem(title, meta, id, onclick) {
    const li = el("li"); li.dataset.id = id;
    li.appendChild(el("div", title, "kb-list-q"));
    li.appendChild(el("div", meta, "meta"));
    li.tabIndex = 0;
    li.addEventListener("click", onclick);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") onclick(); });
    if (cur && cur.id === id) li.classList.add("active");
    return li;
  }
  function fillCategories(categories) {
    const sel = $("kb-filter-category"), keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    const dl = $("kb-category-list"); dl.textContent = "";
    (categories || []).forEach((c) => {
      const o = el("option", c.category + "（" + c.count + "）"); o.value = c.category; sel.appendChild(o);
      const d = el("option"); d.value = c.category; dl.appendChild(d);
    });
    sel.value = keep;
  }
  function setMode(m) {
    mode = m;
    $("kb-show-review").classList.toggle("active", m === "review");
    $("kb-show-local").classList.toggle("active", m === "local");
    $("kb-pager").hidden = m !== "search";
    if (m === "search") loadList(); else renderQueue();
  }
  async function loadList() {
    const p = new URLSearchParams();
    if (list.q) p.set("q", list.q);
    if (list.category) p.set("category", list.category);
    if (list.state) p.set("state", list.state);
    if (list.local) p.set("local_review", "1");
    if (list.sort) p.set("sort", list.sort);
    p.set("page", String(list.page));
    const seq = ++listSeq;
    let d;
    try { d = await get("/desk/api/kb/entries?" + p.toString()); } catch (e) { showError(e.message); return; }
    if (mode !== "search" || seq !== listSeq) return;
    list.total = d.total || 0;
    fillCategories(d.categories);
    const pages = Math.max(1, Math.ceil(list.total / PAGE));
    $("kb-list-title").textContent = (list.q ? "检索“" + list.q + "”" : "全部条目") + "：共 " + list.total + " 条";
    const ul = $("kb-list"); ul.textContent = "";
    if (!d.entries.length) ul.appendChild(el("li", "没有符合条件的条目", "meta kb-none"));
    d.entries.forEach((e) => {
      const meta = [e.category, ENTRY_STATES[e.state] || e.state];
      if (e.pending) meta.push("有待审核修改");
      if (e.local_review) meta.push("待地方确认");
      if (e.updated_at) meta.push(time(e.updated_at) + (e.updated_by ? " " + who(e.updated_by) : ""));
      const f = e.figures || {};
      if (f.answers) meta.push("回答 " + f.answers + " 次，没帮助 " + (f.unhelpful || 0) + "，答后转人工 " + (f.handoff_after || 0));
      const li = listItem(e.id + " " + e.question, meta.join(" · "), e.id, () => go(e.id));
      li.classList.add("kb-state-" + e.state);
      ul.appendChild(li);
    });
    $("kb-page").textContent = "第 " + list.page + " / " + pages + " 页";
    $("kb-prev").disabled = list.page <= 1; $("kb-next").disabled = list.page >= pages;
  }
  async function loadQueue() {
    try { queue = await get("/desk/api/kb/queue"); } catch (e) { return; }
    queue.review = queue.review || []; queue.local_review = queue.local_review || [];
    $("kb-review-count").textContent = String(queue.review.length);
    $("kb-review-count").classList.toggle("kb-count-hot", queue.review.length > 0);
    $("kb-local-count").textContent = String(queue.local_review.length);
    if (mode !== "search") renderQueue();
  }
  function renderQueue() {
    const ul = $("kb-list"); ul.textContent = "";
    if (mode === "review") {
      $("kb-list-title").textContent = "审核队列：" + queue.review.length + " 条修改";
      if (!queue.review.length) ul.appendChild(el("li", "没有待审核的修改", "meta kb-none"));
      queue.review.forEach((rv) => {
        const q = rv.question || (rv.data && rv.data.question) || "";
        const li = listItem(rv.entry_id + " " + q, "第 " + rv.number + " 版 · " + stateOf(rv.state) + "（待" + (rv.state === "draft" ? "审核" : "发布") + "） · " +
          who(rv.author) + " · " + time(rv.created_at) + (rv.note ? " · " + rv.note : ""), rv.entry_id, () => go(rv.entry_id));
        li.classList.add("kb-rev-" + rv.state);
        ul.appendChild(li);
      });
    } else {
      $("kb-list-title").textContent = "待地方确认：" + queue.local_review.length + " 条";
      if (!queue.local_review.length) ul.appendChild(el("li", "没有待地方确认的条目", "meta kb-none"));
      queue.local_review.forEach((e) => ul.appendChild(listItem(e.id + " " + (e.question || ""),
        [e.category, ENTRY_STATES[e.state] || e.state || ""].filter(Boolean).join(" · "), e.id, () => go(e.id))));
    }
  }

  // --- the editor ---------------------------------------------------------------------------------------------------------
  const lines = (s) => s.split("\n").map((x) => x.trim()).filter(Boolean);
  function readForm() {
    return {
      category: $("kb-f-category").value.trim(),
      question: $("kb-f-question").value.trim(),
      paraphrases: lines($("kb-f-paraphrases").value),
      answer: $("kb-f-answer").value.trim(),
      voice_answer: $("kb-f-voice").value.trim(),
      source: $("kb-f-source").value.trim(),
      reviewed: $("kb-f-reviewed").value,
      local_review: $("kb-f-local").checked,
      keywords: $("kb-f-keywords").value.split(/[,，、]/).map((x) => x.trim()).filter(Boolean),
    };
  }
  function fillForm(d) {
    d = d || {};
    $("kb-f-category").value = d.category || "";
    $("kb-f-question").value = d.question || "";
    $("kb-f-paraphrases").value = (d.paraphrases || []).join("\n");
    $("kb-f-answer").value = (d.answer || "").replace(/\s+$/, "");
    $("kb-f-voice").value = d.voice_answer || "";
    $("kb-f-source").value = d.source || "";
    $("kb-f-reviewed").value = d.reviewed ? String(d.reviewed).slice(0, 10) : "";
    $("kb-f-local").checked = !!d.local_review;
    $("kb-f-keywords").value = (d.keywords || []).join("，");
    $("kb-f-note").value = "";
    counters();
    dirty = false;
  }
  function counters() {
    const n = chars($("kb-f-voice").value.trim());
    $("kb-voice-count").textContent = n + "/" + MAX_VOICE;
    $("kb-voice-count").classList.toggle("kb-over", n > MAX_VOICE);
    const p = lines($("kb-f-paraphrases").value).length;
    $("kb-para-count").textContent = p + " 条（至少 " + MIN_PARAPHRASES + " 条）";
    $("kb-para-count").classList.toggle("kb-over", p < MIN_PARAPHRASES);
  }
  function showDuplicates(dups) {
    const box = $("kb-dups"); box.textContent = "";
    if (!dups || !dups.length) { box.hidden = true; return; }
    box.appendChild(el("b", "相近的已有条目（请确认不是重复）："));
    const ul = el("ul");
    dups.forEach((d) => {
      const li = el("li");
      const a = button(d.id, () => go(d.id), "small kb-link");
      li.appendChild(a);
      li.appendChild(el("span", " " + (d.question || "") + (d.score !== undefined ? "（相似度 " + Math.round(d.score * 100) + "%" +
        (d.field ? "，" + (NAMES[d.field] || d.field) : "") + "）" : "")));
      ul.appendChild(li);
    });
    box.appendChild(ul); box.hidden = false;
  }

  async function newEntry() {
    if (!(await leave())) return;
    entrySeq++;
    clearMessages();
    cur = { id: null, area: $("kb-f-area").value || AREAS[0][0], base: null, detail: null };
    $("kb-empty").hidden = true; $("kb-entry").hidden = false;
    $("kb-entry-id").textContent = "新建条目";
    $("kb-entry-state").textContent = "未保存"; $("kb-entry-state").className = "kb-badge kb-badge-new";
    $("kb-entry-published").textContent = "保存后进入审核队列";
    $("kb-retire").hidden = true; $("kb-reload").hidden = true;
    $("kb-pending").textContent = ""; $("kb-figures").hidden = true;
    $("kb-area-row").hidden = false;
    $("kb-f-area").value = cur.area;
    fillForm({ category: areaLabel(cur.area) + "/", reviewed: today() });
    $("kb-base").textContent = "";
    $("kb-history-box").hidden = true; $("kb-diff").hidden = true;
    document.querySelectorAll("#kb-list li").forEach((li) => li.classList.remove("active"));
    $("kb-f-question").focus();
  }
  const areaLabel = (code) => (AREAS.find((a) => a[0] === code) || [code, code])[1];

  async function openEntry(id, message) {
    const seq = ++entrySeq;
    let d;
    try { d = await get("/desk/api/kb/entries/" + encodeURIComponent(id)); } catch (e) { showError(e.message); return; }
    if (seq !== entrySeq) return;
    clearMessages();
    if (message) showStatus(message);
    cur = { id: d.entry.id, area: d.entry.area, base: d.entry.head, detail: d };
    renderEntry(d);
    document.querySelectorAll("#kb-list li").forEach((li) => li.classList.toggle("active", li.dataset.id === cur.id));
  }

  function renderEntry(d) {
    const e = d.entry, revs = (d.revisions || []).slice().sort((a, b) => a.number - b.number);
    $("kb-empty").hidden = true; $("kb-entry").hidden = false; $("kb-area-row").hidden = true;
    $("kb-reload").hidden = false;
    $("kb-entry-id").textContent = e.id + "（" + areaLabel(e.area) + "）";
    const pending = revs.filter((r) => OPEN_STATES.indexOf(r.state) >= 0);
    const badge = e.state === "retired" ? "retired" : e.state === "published" || e.published ? "published" : "unpublished";
    $("kb-entry-state").textContent = ENTRY_STATES[e.state] || ENTRY_STATES[badge] || e.state;
    $("kb-entry-state").className = "kb-badge kb-badge-" + (e.state || badge);
    const pub = revs.find((r) => r.state === "published");
    const pubNo = pub ? pub.number : (typeof e.published === "number" ? e.published : null);
    $("kb-entry-published").textContent = (pubNo ? "已发布第 " + pubNo + " 版" : "尚未发布") + " · 最新第 " + e.head + " 版" +
      (pending.length ? " · 有 " + pending.length + " 个待审核修改" : "");
    $("kb-retire").hidden = !sup || e.state === "retired";

    // pending revisions: supervisors review / publish / reject; the author withdraws a draft
    const box = $("kb-pending"); box.textContent = "";
    pending.slice().reverse().forEach((rv) => {
      const row = el("div", null, "kb-pending kb-rev-" + rv.state); row.dataset.rev = rv.rev;
      row.appendChild(el("span", "第 " + rv.number + " 版" + stateOf(rv.state) + "，待" + (rv.state === "draft" ? "审核" : "发布") + " · " +
        who(rv.author) + " · " + time(rv.created_at) + (rv.note ? " · 说明：" + rv.note : "") +
        (rv.reviewed_by ? " · 审核：" + who(rv.reviewed_by) + " " + time(rv.reviewed_at) : "")));
      if (sup) {
        const rb = button("审核通过", () => act(rv, "review", null, "第 " + rv.number + " 版已审核通过，可以发布"), "small");
        rb.disabled = rv.state !== "draft"; rb.dataset.act = "review"; row.appendChild(rb);
        const pb = button("发布", () => act(rv, "publish", null, "第 " + rv.number + " 版已发布，机器人一分钟内按新内容回答"), "small primary");
        pb.disabled = rv.state !== "reviewed"; pb.dataset.act = "publish";
        if (pb.disabled) pb.title = "请先审核通过";
        row.appendChild(pb);
        const xb = button("退回", async () => {
          const note = await ask({ title: "退回第 " + rv.number + " 版", text: "退回后这版修改不会发布。请写明退回原因，作者能在历史中看到。", ok: "退回", required: true, danger: true });
          if (note !== null) act(rv, "reject", { note: note }, "第 " + rv.number + " 版已退回");
        }, "small kb-danger");
        xb.dataset.act = "reject"; row.appendChild(xb);
      }
      if (rv.author === me.username && rv.state === "draft") {
        const wb = button("撤回", () => act(rv, "withdraw", null, "第 " + rv.number + " 版已撤回"), "small");
        wb.dataset.act = "withdraw"; row.appendChild(wb);
      }
      box.appendChild(row);
    });

    // the form: the newest pending revision if any (edits build on it), else what is published, else the newest
    const source = pending.length ? pending[pending.length - 1] : null;
    const data = source ? source.data : d.published || (revs.length ? revs[revs.length - 1].data : {});
    fillForm(data);
    $("kb-base").textContent = "基于第 " + e.head + " 版修改" + (source ? "（表单为第 " + source.number + " 版" + stateOf(source.state) + "的内容）" : "");

    renderFigures(d.figures, d.figures_days);
    renderHistory(revs);
    $("kb-diff").hidden = true;
  }

  function renderFigures(f, days) {
    const box = $("kb-figures"); box.textContent = "";
    const empty = !f || (Array.isArray(f) ? !f.length : !Object.keys(f).length);
    box.hidden = empty;
    if (empty) return;
    if (Array.isArray(f)) f = f[0];
    const pct = (v) => v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%";
    const answers = f.answers !== undefined ? f.answers : f.answered;
    const rate = (k, count) => f[k + "_rate"] !== undefined ? f[k + "_rate"] : answers ? count / answers : null;
    const items = [["被回答次数", answers !== undefined ? String(answers) : "—"],
      ["没帮助率", pct(rate("unhelpful", f.unhelpful)) + (f.unhelpful !== undefined ? "（" + f.unhelpful + " 次）" : "")],
      ["答后转人工", pct(rate("handoff_after", f.handoff_after)) + (f.handoff_after !== undefined ? "（" + f.handoff_after + " 次）" : "")]];
    items.forEach(([label, value]) => {
      const c = el("div", null, "kb-figure");
      c.appendChild(el("span", label, "kb-figure-label")); c.appendChild(el("b", value));
      box.appendChild(c);
    });
    if (days) box.appendChild(el("span", "近 " + days + " 天", "meta"));
  }

  function renderHistory(revs) {
    $("kb-history-box").hidden = false;
    const t = $("kb-history"); t.textContent = "";
    const head = el("tr");
    ["版本", "状态", "作者", "时间", "说明", "审核", "发布", ""].forEach((h) => head.appendChild(el("th", h)));
    t.appendChild(head);
    revs.slice().reverse().forEach((rv, i, desc) => {
      const prev = desc[i + 1];
      const tr = el("tr", null, "kb-rev-" + rv.state); tr.dataset.rev = rv.rev; tr.dataset.number = rv.number;
      [["第 " + rv.number + " 版"], [stateOf(rv.state) + (rv.source && rv.source !== "desk" ? "（" + (SOURCES[rv.source] || rv.source) + "）" : "")],
        [who(rv.author)], [time(rv.created_at)], [rv.note || ""],
        [rv.reviewed_by ? who(rv.reviewed_by) + " " + time(rv.reviewed_at) : "—"],
        [rv.published_by ? who(rv.published_by) + " " + time(rv.published_at) : "—"]].forEach(([v]) => tr.appendChild(el("td", v)));
      const td = el("td", null, "kb-row-actions");
      const db = button("对比", () => showDiff(prev, rv)); db.dataset.act = "diff";
      db.disabled = !prev; if (!prev) db.title = "这是第一版";
      td.appendChild(db);
      const rb = button("恢复此版", () => restore(rv)); rb.dataset.act = "restore";
      td.appendChild(rb);
      tr.appendChild(td);
      t.appendChild(tr);
    });
  }

  async function showDiff(a, b) {
    let d;
    try { d = await get("/desk/api/kb/diff?from=" + encodeURIComponent(a.rev) + "&to=" + encodeURIComponent(b.rev)); }
    catch (e) { showError(e.message); return; }
    const box = $("kb-diff"); box.textContent = "";
    const head = el("div", null, "kb-diff-head");
    head.appendChild(el("b", "第 " + a.number + " 版 → 第 " + b.number + " 版的变化"));
    head.appendChild(button("关闭", () => { box.hidden = true; }));
    box.appendChild(head);
    const fields = d.fields || [];
    if (!fields.length) box.appendChild(el("div", "两版内容相同", "meta"));
    fields.forEach((f) => {
      const row = el("div", null, "kb-diff-field"); row.dataset.field = f.field;
      row.appendChild(el("div", FIELDS[f.field] || f.field, "kb-diff-label"));
      const text = el("div", null, "kb-diff-text");
      if (f.ops && f.ops.length) {
        f.ops.forEach(([op, s]) => text.appendChild(el(op === "delete" ? "del" : op === "insert" ? "ins" : "span", s)));
      } else {
        const show = (v) => Array.isArray(v) ? v.join("\n") : v === undefined || v === null ? "" : String(v);
        text.appendChild(el("del", show(f.before))); text.appendChild(el("ins", show(f.after)));
      }
      row.appendChild(text);
      box.appendChild(row);
    });
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  // --- changes ------------------------------------------------------------------------------------------------------------
  function conflict(r) {
    const n = numberOf(r.data.current);
    showError("该条目已被他人修改（第 " + (n !== undefined && n !== null ? n : "?") + " 版），请刷新后再改");
  }
  async function save(ev) {
    if (ev) ev.preventDefault();
    if (!cur) return;
    clearMessages();
    const data = readForm(), note = $("kb-f-note").value.trim();
    $("kb-save").disabled = true;
    let r;
    try {
      r = cur.id ? await post("/desk/api/kb/entries/" + encodeURIComponent(cur.id) + "/revisions", { base: cur.base, data: data, note: note })
        : await post("/desk/api/kb/entries", { area: $("kb-f-area").value, data: data, note: note });
    } catch (e) { showError("保存失败：" + e.message); return; } finally { $("kb-save").disabled = false; }
    if (r.status === 409) { conflict(r); return; }
    if (!r.ok) {
      const problems = r.data.errors || [];
      showError(problems.length ? "没有保存，请先修改以下问题：" : "没有保存：" + chinese(failure(r)), problems);
      showDuplicates(r.data.duplicates);
      return;
    }
    const id = r.data.entry_id || (r.data.revision && r.data.revision.entry_id) || cur.id;
    const n = numberOf(r.data.revision);
    await openEntry(id, "已保存为草稿" + (n ? "（第 " + n + " 版）" : "") + "，等待值班长审核");
    showDuplicates(r.data.duplicates);
    loadQueue(); refreshList();
  }
  async function check() {
    if (!cur) return;
    clearMessages();
    const body = { data: readForm() };
    if (cur.id) body.id = cur.id; else body.area = $("kb-f-area").value;
    const r = await post("/desk/api/kb/check", body);
    if (!r.ok) { showError(chinese(failure(r)), r.data.errors); return; }
    if (r.data.errors && r.data.errors.length) showError("检查发现以下问题：", r.data.errors);
    else showStatus("检查通过" + (r.data.duplicates && r.data.duplicates.length ? "，但有相近的已有条目" : ""));
    showDuplicates(r.data.duplicates);
  }
  async function act(rv, action, body, done) {
    if (!(await leave())) return;
    clearMessages();
    const r = await post("/desk/api/kb/revisions/" + encodeURIComponent(rv.rev) + "/" + action, body || {});
    if (r.status === 409) { await openEntry(rv.entry_id || cur.id); showError(chinese(failure(r)) + "（已重新载入）"); return; }
    if (!r.ok) { const problems = r.data.errors || []; showError(problems.length ? "操作未完成：" : chinese(failure(r)), problems); return; }
    await openEntry(rv.entry_id || cur.id, done);
    loadQueue(); refreshList();
  }
  async function restore(rv) {
    if (!(await leave())) return;
    const note = await ask({ title: "恢复第 " + rv.number + " 版", text: "将以第 " + rv.number + " 版的内容生成一个新版本" +
      (sup ? "（已审核，发布后生效）。" : "，等待值班长审核。"), ok: "恢复", note: "恢复第 " + rv.number + " 版" });
    if (note === null) return;
    clearMessages();
    const r = await post("/desk/api/kb/entries/" + encodeURIComponent(cur.id) + "/restore", { rev: rv.rev, note: note, base: cur.base });
    if (r.status === 409) { conflict(r); return; }
    if (!r.ok) { const problems = r.data.errors || []; showError(problems.length ? "没有恢复：" : chinese(failure(r)), problems); return; }
    const n = numberOf(r.data.revision);
    await openEntry(cur.id, "已按第 " + rv.number + " 版生成新版本" + (n ? "（第 " + n + " 版）" : "") + (sup ? "，发布后生效" : "，等待审核"));
    loadQueue(); refreshList();
  }
  async function retire() {
    if (!cur || !cur.id || !(await leave())) return;
    const note = await ask({ title: "停用条目 " + cur.id, text: "停用后机器人不再用这个条目回答市民（历史保留，可恢复某一版后重新发布）。", ok: "停用", required: true, danger: true });
    if (note === null) return;
    clearMessages();
    const r = await post("/desk/api/kb/entries/" + encodeURIComponent(cur.id) + "/retire", { note: note, base: cur.base });
    if (!r.ok) { showError(failure(r)); return; }
    await openEntry(cur.id, "条目已停用");
    loadQueue(); refreshList();
  }
  function refreshList() { if (mode === "search") loadList(); }

  // --- import -----------------------------------------------------------------------------------------------------------
  function summaryCount(v) { return Array.isArray(v) ? v.length : v || 0; }
  async function runImport(ev) {
    ev.preventDefault();
    const out = $("kb-import-result"); out.textContent = "";
    const file = $("kb-import-file").files[0];
    if (!file) { out.appendChild(el("div", "请先选择一个 YAML 文件", "error")); return; }
    $("kb-import-go").disabled = true;
    let r;
    try {
      const text = await file.text();
      r = await call("/desk/api/kb/import" + ($("kb-import-publish").checked ? "?publish=1" : ""),
        { method: "POST", headers: { "Content-Type": "text/yaml" }, body: text });
    } catch (e) { out.appendChild(el("div", "导入失败：" + e.message, "error")); return; } finally { $("kb-import-go").disabled = false; }
    if (!r.ok) { out.appendChild(el("div", failure(r), "error")); }
    const d = r.data || {};
    if (r.ok || d.created !== undefined) {
      out.appendChild(el("div", "导入完成：新增 " + summaryCount(d.created) + " 条，修改 " + summaryCount(d.changed) + " 条，未变 " +
        summaryCount(d.unchanged) + " 条" + (summaryCount(d.errors) ? "，有 " + summaryCount(d.errors) + " 个问题" : "")));
    }
    if (Array.isArray(d.errors) && d.errors.length) {
      const ul = el("ul", null, "error");
      d.errors.forEach((x) => ul.appendChild(el("li", typeof x === "string" ? x : JSON.stringify(x))));
      out.appendChild(ul);
    }
    if (r.ok) { showStatus(out.firstChild ? out.firstChild.textContent : "导入完成"); loadQueue(); refreshList(); }
  }

  // --- wiring -------------------------------------------------------------------------------------------------------------
  function init(user) {
    if (started) return;
    started = true;
    me = user; sup = me.role === "supervisor";
    $("kb-sup-tools").hidden = !sup;
    AREAS.forEach(([code, label]) => {
      const o = el("option", label + "（" + code + "）"); o.value = code; $("kb-f-area").appendChild(o);
      const x = el("option", label); x.value = code; $("kb-export-area").appendChild(x);
    });
    $("kb-search").addEventListener("submit", (e) => { e.preventDefault(); list.q = $("kb-search-q").value.trim(); list.page = 1; setMode("search"); });
    $("kb-filter-category").addEventListener("change", () => { list.category = $("kb-filter-category").value; list.page = 1; setMode("search"); });
    $("kb-filter-state").addEventListener("change", () => { list.state = $("kb-filter-state").value; list.page = 1; setMode("search"); });
    $("kb-filter-local").addEventListener("change", () => { list.local = $("kb-filter-local").checked; list.page = 1; setMode("search"); });
    $("kb-sort").addEventListener("change", () => { list.sort = $("kb-sort").value; list.page = 1; setMode("search"); });
    $("kb-prev").addEventListener("click", () => { list.page = Math.max(1, list.page - 1); loadList(); });
    $("kb-next").addEventListener("click", () => { list.page += 1; loadList(); });
    $("kb-show-review").addEventListener("click", () => { setMode(mode === "review" ? "search" : "review"); loadQueue(); });
    $("kb-show-local").addEventListener("click", () => { setMode(mode === "local" ? "search" : "local"); loadQueue(); });
    $("kb-new").addEventListener("click", newEntry);
    $("kb-f-area").addEventListener("change", () => {
      const cat = $("kb-f-category").value, prev = areaLabel(cur && cur.area);
      if (!cat || cat === prev + "/") $("kb-f-category").value = areaLabel($("kb-f-area").value) + "/";
      if (cur && !cur.id) cur.area = $("kb-f-area").value;
    });
    $("kb-f-voice").addEventListener("input", counters);
    $("kb-f-paraphrases").addEventListener("input", counters);
    $("kb-editor").addEventListener("submit", save);
    $("kb-check").addEventListener("click", check);
    $("kb-reload").addEventListener("click", () => { if (cur && cur.id) go(cur.id); });
    $("kb-editor").addEventListener("input", () => { dirty = true; });
    window.addEventListener("beforeunload", (e) => { if (dirty) e.preventDefault(); });
    $("kb-retire").addEventListener("click", retire);
    $("kb-export-area").addEventListener("change", () => {
      const a = $("kb-export-area").value;
      $("kb-export").href = "/desk/api/kb/export" + (a ? "?area=" + encodeURIComponent(a) : "");
    });
    $("kb-import").addEventListener("click", () => { $("kb-import-result").textContent = ""; $("kb-import-dialog").showModal(); });
    $("kb-import-close").addEventListener("click", () => $("kb-import-dialog").close());
    $("kb-import-form").addEventListener("submit", runImport);
    $("kb-dialog-cancel").addEventListener("click", () => closeDialog(null));
    $("kb-dialog").addEventListener("cancel", () => { if (dialogDone) dialogDone(null); });
    $("kb-dialog-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("kb-dialog-note").value.trim();
      if ($("kb-dialog-note").placeholder === "必填" && !v) { $("kb-dialog-error").textContent = "请填写说明"; $("kb-dialog-error").hidden = false; return; }
      closeDialog(v);
    });
    setMode("search");
    loadQueue();
    setInterval(() => { if (!$("kb-admin").hidden) loadQueue(); }, 60000);
  }
  window.DeskKb = { init: init };
})();
