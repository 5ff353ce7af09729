"""Knowledge content as supervisors maintain it: entries, their revisions and states, in SQL.

The desk (webapp/kb_editor.py) writes here; the action server (actions/kb_service.py) reads the published
entries and re-indexes when the publication stamp moves. The repository's YAML is the seed of a fresh
install (`sync_from_files`): an entry the desk never changed follows the files; one changed in the desk
keeps the desk's version until the files are imported again (`import_yaml`).

States of a revision: draft → reviewed → published → superseded; a draft or reviewed revision can be
rejected (supervisor) or withdrawn (its author); `retired` records that an entry left the answers.
Every change names the revision number it was made from (`base`): a change made from an older one is
refused (someone else saved in between), so concurrent edits never overwrite each other silently.

Functions take a SQLAlchemy Session and run inside the caller's transaction.
"""
from __future__ import annotations

import datetime as dt
import difflib
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, UniqueConstraint, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.database import utc_now as now
from knowledge.schema import ContentError, KbEntry, _entry_from_raw, char_bigrams, jaccard, validate

AREAS: dict[str, str] = {
    "card": "社保卡", "ecard": "电子社保卡", "enrol": "参保缴费", "transfer": "转移接续", "record": "权益记录与参保证明",
    "pension": "退休与养老待遇", "certify": "待遇资格认证", "unemp": "失业保险", "injury": "工伤保险",
    "maternity": "生育保险", "medical": "医疗保险", "channel": "服务渠道",
}
FIELDS = ("category", "question", "paraphrases", "answer", "voice_answer", "source", "reviewed", "local_review",
          "keywords")
OPEN_STATES = ("draft", "reviewed")  # waiting for a supervisor
STATES = ("draft", "reviewed", "published", "superseded", "rejected", "withdrawn", "retired")
SOURCES = ("files", "desk", "import", "restore")
DUPLICATE_QUESTION = 0.8  # bigram overlap of two standard questions that ask the same thing (schema.py's rule)
NEAREST_SHOWN = 0.3  # entries at least this close are shown on save
PAGE = 50
MAX_TEXT = {"category": 40, "question": 200, "answer": 4000, "voice_answer": 200, "source": 400, "note": 500}
LABELS = {"category": "分类", "question": "标准问题", "paraphrases": "市民问法", "answer": "网页答复",
          "voice_answer": "语音答复", "source": "来源", "reviewed": "审核日期", "local_review": "待地方确认",
          "keywords": "关键词", "note": "修改说明"}
ZH_PROBLEMS = (  # knowledge/schema.validate's words, as the desk shows them
    (re.compile(r"needs at least (\d+) paraphrases, has (\d+)"), "市民问法至少 {0} 条，现在 {1} 条"),
    (re.compile(r"paraphrases repeat each other or the question"), "市民问法有重复，或与标准问题相同"),
    (re.compile(r"voice_answer has (\d+) characters \(max (\d+)\)"), "语音答复有 {0} 个字，超过 {1} 个字的上限"),
    (re.compile(r"voice_answer must not contain a URL"), "语音答复不能含网址"),
    (re.compile(r"voice_answer must not contain tables or list markers"), "语音答复不能含表格或列表符号"),
    (re.compile(r"reviewed must be a date YYYY-MM-DD"), "审核日期应为 YYYY-MM-DD"),
    (re.compile(r"category missing"), "缺少分类"),
    (re.compile(r"id must look like area-0001"), "编号应为 大类-0001 的形式"),
)


def _zh(problem: str) -> str:
    for pattern, text in ZH_PROBLEMS:
        m = pattern.search(problem)
        if m:
            return text.format(*m.groups())
    return problem
MAX_PARAPHRASES = 60



class EditorialBase(DeclarativeBase):
    """Declarative base of the knowledge tables (their own metadata: the action server creates them too)."""


class EntryRow(EditorialBase):
    """One knowledge entry's identity and where it stands; its content lives in its revisions."""

    __tablename__ = "kb_entries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    area: Mapped[str] = mapped_column(String(16), index=True)
    head: Mapped[int] = mapped_column(Integer, default=0)  # number of the newest revision
    published_rev: Mapped[int | None] = mapped_column(Integer, nullable=True)  # revision id the bot answers with
    published_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    desk_edited: Mapped[bool] = mapped_column(Boolean, default=False)  # published content not from the files
    # shown in lists: of the published revision (of the newest one before the first publication)
    category: Mapped[str] = mapped_column(String(64), default="")
    question: Mapped[str] = mapped_column(String(400), default="")
    local_review: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class Revision(EditorialBase):
    """One version of an entry's content, with its state and who did what when."""

    __tablename__ = "kb_revisions"
    __table_args__ = (UniqueConstraint("entry_id", "number", name="uq_kb_revision_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(32), index=True)
    number: Mapped[int] = mapped_column(Integer)
    base: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16), default="desk")
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    note: Mapped[str] = mapped_column(Text, default="")
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Publication(EditorialBase):
    """One row: a stamp that moves with every change of what the bot answers (the action server polls it)."""

    __tablename__ = "kb_publication"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stamp: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    files_fingerprint: Mapped[str] = mapped_column(String(64), default="")  # of the files last synced


class EditorialError(Exception):
    """A change that did not happen; kind: invalid | conflict | not_found | forbidden (the routes' status)."""

    def __init__(self, message: str, kind: str = "invalid", **details: Any) -> None:
        super().__init__(message)
        self.message, self.kind, self.details = message, kind, details


def create_tables(engine: Engine) -> None:
    """Create the knowledge tables where they are missing."""
    EditorialBase.metadata.create_all(engine)


# --- content ---------------------------------------------------------------------------------------------------------
def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _lines(v: Any) -> list[str]:
    items = v if isinstance(v, (list, tuple)) else re.split(r"[\n]+", _text(v))
    return [s for s in (_text(x) for x in items) if s]


def clean_data(raw: Any) -> dict[str, Any]:
    """An entry's fields as the desk sends them, in the stored form (lists, bool, a date text)."""
    if not isinstance(raw, dict):
        raise EditorialError("条目内容格式不对", errors=["data must be an object"])
    keywords = raw.get("keywords")
    keywords = [k for k in (_text(x) for x in (keywords if isinstance(keywords, (list, tuple))
                                                else re.split(r"[,，、\s]+", _text(keywords)))) if k]
    reviewed = raw.get("reviewed")
    reviewed = reviewed.isoformat()[:10] if isinstance(reviewed, (dt.date, dt.datetime)) else _text(reviewed)
    lr = raw.get("local_review")
    return {
        "category": _text(raw.get("category")), "question": _text(raw.get("question")),
        "paraphrases": _lines(raw.get("paraphrases")), "answer": _text(raw.get("answer")),
        "voice_answer": _text(raw.get("voice_answer")), "source": _text(raw.get("source")),
        "reviewed": reviewed or now().date().isoformat(),
        "local_review": lr if isinstance(lr, bool) else _text(lr).lower() in ("true", "1", "yes", "on"),
        "keywords": keywords,
    }


def data_of(entry: KbEntry) -> dict[str, Any]:
    """A loaded entry's fields in the stored form."""
    return {"category": entry.category, "question": entry.question, "paraphrases": list(entry.paraphrases),
            "answer": entry.answer, "voice_answer": entry.voice_answer, "source": entry.source,
            "reviewed": entry.reviewed, "local_review": entry.local_review, "keywords": list(entry.keywords)}


def entry_of(entry_id: str, data: dict[str, Any]) -> KbEntry:
    """The KbEntry the retrieval library indexes."""
    return _entry_from_raw({"id": entry_id, **data}, f"{area_of(entry_id)}.yml")


def area_of(entry_id: str) -> str:
    """The area code of an entry id (card-0001 → card)."""
    return entry_id.split("-", 1)[0]


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def _published_data(s: Session, exclude: str | None = None) -> dict[str, dict[str, Any]]:
    rows = s.execute(select(Revision.entry_id, Revision.data).join(EntryRow, EntryRow.published_rev == Revision.id)
                     .where(EntryRow.retired.is_(False))).all()
    return {eid: data for eid, data in rows if eid != exclude}


def check(s: Session, data: dict[str, Any], entry_id: str | None = None, area: str | None = None
          ) -> tuple[list[str], list[dict[str, Any]]]:
    """(problems, nearest published entries) of an entry's content; no problems = it may be saved."""
    problems: list[str] = []
    for name, limit in MAX_TEXT.items():
        if name in data and len(str(data[name])) > limit:
            problems.append(f"{LABELS[name]}超过 {limit} 个字")
    if len(data.get("paraphrases") or []) > MAX_PARAPHRASES:
        problems.append(f"市民问法最多 {MAX_PARAPHRASES} 条")
    eid = entry_id or f"{area or 'new'}-0000"
    try:
        entry = entry_of(eid, data)
    except ContentError as exc:
        missing = str(exc).split(" lacks ", 1)[-1]
        missing = "、".join(LABELS.get(m.strip(), m.strip()) for m in missing.split(","))
        return [*problems, f"缺少必填项：{missing}"], []
    for p in validate([entry]):
        if "id must look like" in p and entry_id is None:
            continue
        problems.append(_zh(p.split(": ", 1)[-1] if p.startswith(entry.file) else p))
    if entry.category and "/" not in entry.category:
        problems.append("分类应为 大类/小类，例如 社保卡/申领")
    others = _published_data(s, exclude=entry_id)
    q_grams = char_bigrams(entry.question)
    mine = {_norm(v): v for v in entry.views}
    nearest: list[dict[str, Any]] = []
    for oid, od in others.items():
        if od["question"] == entry.question or jaccard(q_grams, char_bigrams(od["question"])) >= DUPLICATE_QUESTION:
            problems.append(f"标准问题与 {oid}「{od['question']}」重复")
        clash = [mine[n] for n in (_norm(v) for v in (od["question"], *od["paraphrases"])) if n in mine]
        if clash:
            problems.append(f"问法「{clash[0]}」已属于 {oid}")
        best, field = 0.0, "question"
        for name, v in (("question", od["question"]), *(("paraphrase", p) for p in od["paraphrases"])):
            score = jaccard(q_grams, char_bigrams(v))
            if score > best:
                best, field = score, name
        if best >= NEAREST_SHOWN:
            nearest.append({"id": oid, "question": od["question"], "score": round(best, 3), "field": field})
    nearest.sort(key=lambda d: -d["score"])
    return problems, nearest[:5]


# --- reading ---------------------------------------------------------------------------------------------------------
def revision_dict(r: Revision, with_data: bool = True) -> dict[str, Any]:
    """A revision as the desk's JSON."""
    def iso(t: dt.datetime | None) -> str | None:
        return t.isoformat() + "Z" if t else None
    out = {"rev": r.id, "entry_id": r.entry_id, "number": r.number, "state": r.state, "source": r.source,
           "author": r.author, "created_at": iso(r.created_at), "note": r.note, "base": r.base,
           "reviewed_by": r.reviewed_by, "reviewed_at": iso(r.reviewed_at), "published_by": r.published_by,
           "published_at": iso(r.published_at)}
    if with_data:
        out["data"] = r.data
    return out


def _state(e: EntryRow, pending: bool) -> str:
    if e.retired:
        return "retired"
    if e.published_rev is None:
        return "unpublished"
    return "pending" if pending else "published"


def _in_state(e: EntryRow, pending: bool, state: str) -> bool:
    """The list's state filter: published (with or without a change waiting), pending (a revision waits for a
    supervisor, published or not), unpublished (never published), retired."""
    if state == "pending":
        return pending and not e.retired
    if state == "published":
        return e.published_rev is not None and not e.retired
    return _state(e, pending) == state


def _pending_ids(s: Session) -> set[str]:
    return set(s.scalars(select(Revision.entry_id).where(Revision.state.in_(OPEN_STATES))).all())


def entry_summary(e: EntryRow, pending: bool) -> dict[str, Any]:
    """An entry in a list."""
    return {"id": e.id, "area": e.area, "category": e.category, "question": e.question, "state": _state(e, pending),
            "published": e.published_number, "head": e.head, "local_review": e.local_review, "pending": pending,
            "retired": e.retired, "updated_at": e.updated_at.isoformat() + "Z", "updated_by": e.updated_by}


def listing(s: Session, q: str = "", category: str = "", state: str = "", local_review: bool | None = None,
            page: int = 1, size: int = PAGE) -> dict[str, Any]:
    """Entries matching the filters, one page; with the categories and their counts.

    By id; with search words, those whose id, question or category holds them come first, then those whose
    citizens' wordings or answer do.
    """
    rows = s.scalars(select(EntryRow).order_by(EntryRow.id)).all()
    pending = _pending_ids(s)
    cats: dict[str, int] = {}
    for e in rows:
        if not e.retired:
            cats[e.category] = cats.get(e.category, 0) + 1
    q = q.strip()

    def wanted(e: EntryRow) -> bool:
        if category and e.category != category and not e.category.startswith(category + "/"):
            return False
        if local_review is not None and e.local_review != local_review:
            return False
        return not state or _in_state(e, e.id in pending, state)
    hits = [e for e in rows if wanted(e) and (not q or q in e.id or q in e.question or q in e.category)]
    if q:  # the question's words beyond the list fields: search the published texts too
        seen = {e.id for e in hits}
        by_id = {e.id: e for e in rows}
        nq = _norm(q)
        for eid, data in _published_data(s).items():
            if eid not in seen and nq and any(nq in _norm(t) for t in (*data["paraphrases"], data["answer"])) \
                    and eid in by_id and wanted(by_id[eid]):
                hits.append(by_id[eid])  # after those whose id, question or category holds the words
    page = max(1, page)
    chunk = hits[(page - 1) * size: page * size]
    return {"entries": [entry_summary(e, e.id in pending) for e in chunk], "total": len(hits), "page": page,
            "size": size, "categories": [{"category": c, "count": n} for c, n in sorted(cats.items())]}


def _entry(s: Session, entry_id: str) -> EntryRow:
    e = s.get(EntryRow, entry_id)
    if e is None:
        raise EditorialError(f"没有条目 {entry_id}", "not_found")
    return e


def _revision(s: Session, rev: int) -> Revision:
    r = s.get(Revision, rev)
    if r is None:
        raise EditorialError(f"没有第 {rev} 号修订", "not_found")
    return r


def detail(s: Session, entry_id: str) -> dict[str, Any]:
    """An entry with its published content and its whole history (newest first)."""
    e = _entry(s, entry_id)
    revs = s.scalars(select(Revision).where(Revision.entry_id == entry_id).order_by(Revision.number.desc())).all()
    published = next((r for r in revs if r.id == e.published_rev), None)
    pending = any(r.state in OPEN_STATES for r in revs)
    return {"entry": entry_summary(e, pending), "published": published.data if published else None,
            "revisions": [revision_dict(r) for r in revs]}


def queue(s: Session) -> dict[str, Any]:
    """What waits for a supervisor: revisions to review, and entries waiting for local confirmation."""
    revs = s.scalars(select(Revision).where(Revision.state.in_(OPEN_STATES)).order_by(Revision.created_at)).all()
    local = s.scalars(select(EntryRow).where(EntryRow.local_review.is_(True), EntryRow.retired.is_(False))
                      .order_by(EntryRow.id)).all()
    pending = _pending_ids(s)
    review = []
    for r in revs:
        d = revision_dict(r, with_data=False)
        d["question"] = r.data.get("question", "")
        review.append(d)
    return {"review": review, "local_review": [entry_summary(e, e.id in pending) for e in local]}


def _ops(a: str, b: str) -> list[list[str]]:
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[list[str]] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out.append(["equal", a[i1:i2]])
        else:
            if i2 > i1:
                out.append(["delete", a[i1:i2]])
            if j2 > j1:
                out.append(["insert", b[j1:j2]])
    return out


def _as_text(v: Any) -> str:
    if isinstance(v, list):
        return "\n".join(str(x) for x in v)
    if isinstance(v, bool):
        return "是" if v else "否"
    return "" if v is None else str(v)


def diff(s: Session, rev_from: int, rev_to: int) -> dict[str, Any]:
    """Field by field, what changed from one revision of an entry to another."""
    a, b = _revision(s, rev_from), _revision(s, rev_to)
    if a.entry_id != b.entry_id:
        raise EditorialError("只能比较同一条目的两个版本")
    fields = []
    for name in FIELDS:
        before, after = _as_text(a.data.get(name)), _as_text(b.data.get(name))
        if before != after:
            fields.append({"field": name, "before": before, "after": after, "ops": _ops(before, after)})
    return {"from": revision_dict(a, False), "to": revision_dict(b, False), "fields": fields}


def published_entries(s: Session) -> list[KbEntry]:
    """The entries the bot answers with, by id."""
    return [entry_of(eid, data) for eid, data in sorted(_published_data(s).items())]


def stamp(s: Session) -> int:
    """The publication stamp (moves with every change of what the bot answers); -1 before any content."""
    p = s.get(Publication, 1)
    return p.stamp if p is not None else -1


def _bump(s: Session) -> None:
    p = s.get(Publication, 1)
    if p is None:
        s.add(Publication(id=1, stamp=1, at=now()))
    else:
        s.execute(update(Publication).where(Publication.id == 1).values(stamp=Publication.stamp + 1, at=now()))
    s.flush()


# --- changing --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saved:
    """A saved revision and the entries near it."""

    revision: dict[str, Any]
    duplicates: list[dict[str, Any]]


def _new_revision(s: Session, e: EntryRow, base: int, data: dict[str, Any], author: str, note: str, source: str,
                  state: str) -> Revision:
    """Append a revision if the entry's newest is still `base` (else: refused, nothing written)."""
    changed = s.execute(update(EntryRow).where(EntryRow.id == e.id, EntryRow.head == base)
                        .values(head=base + 1, updated_at=now(), updated_by=author)
                        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        s.expire(e)
        current = s.scalar(select(Revision).where(Revision.entry_id == e.id).order_by(Revision.number.desc()).limit(1))
        raise EditorialError(f"该条目已被他人修改（第 {e.head} 版），请刷新后再改", "conflict",
                             current=revision_dict(current) if current else None)
    r = Revision(entry_id=e.id, number=base + 1, base=base, data=data, state=state, source=source, author=author,
                 created_at=now(), note=note[:MAX_TEXT["note"]])
    s.add(r)
    s.flush()
    s.refresh(e)
    if e.published_rev is None:
        e.category, e.question, e.local_review = data["category"], data["question"], data["local_review"]
    return r


def propose(s: Session, entry_id: str, base: int, raw: Any, author: str, note: str = "", source: str = "desk",
            reviewed_by: str | None = None) -> Saved:
    """Save a new draft of an entry (reviewed at once when `reviewed_by` names a supervisor)."""
    e = _entry(s, entry_id)
    data = clean_data(raw)
    problems, nearest = check(s, data, entry_id)
    if problems:
        raise EditorialError("；".join(problems[:3]), "invalid", errors=problems, duplicates=nearest)
    r = _new_revision(s, e, base, data, author, note, source, "reviewed" if reviewed_by else "draft")
    if reviewed_by:
        r.reviewed_by, r.reviewed_at = reviewed_by, now()
    return Saved(revision_dict(r), nearest)


def next_id(s: Session, area: str) -> str:
    """A new entry id in the area: one more than any id ever given there (ids are never reused)."""
    ids = s.scalars(select(EntryRow.id).where(EntryRow.area == area)).all()
    top = max((int(i.split("-", 1)[1]) for i in ids if re.fullmatch(rf"{area}-\d{{4}}", i)), default=0)
    if top >= 9999:
        raise EditorialError(f"{area} 的编号已用完")
    return f"{area}-{top + 1:04d}"


def create(s: Session, area: str, raw: Any, author: str, note: str = "") -> Saved:
    """A new entry with its first revision (a draft)."""
    if area not in AREAS:
        raise EditorialError("请选择业务大类", errors=[f"area must be one of {', '.join(AREAS)}"])
    data = clean_data(raw)
    problems, nearest = check(s, data, None, area)
    if problems:
        raise EditorialError("；".join(problems[:3]), "invalid", errors=problems, duplicates=nearest)
    eid = next_id(s, area)
    e = EntryRow(id=eid, area=area, head=0, category=data["category"], question=data["question"],
                 local_review=data["local_review"], updated_at=now(), updated_by=author)
    s.add(e)
    s.flush()
    r = _new_revision(s, e, 0, data, author, note, "desk", "draft")
    return Saved(revision_dict(r), nearest)


def review(s: Session, rev: int, who: str) -> dict[str, Any]:
    """draft → reviewed."""
    r = _revision(s, rev)
    if r.state != "draft":
        raise EditorialError(f"第 {r.number} 版状态为 {r.state}，不能审核", "conflict")
    r.state, r.reviewed_by, r.reviewed_at = "reviewed", who, now()
    return revision_dict(r)


def publish(s: Session, rev: int, who: str, check_content: bool = True) -> dict[str, Any]:
    """reviewed → published; the previous published revision is superseded; the bot answers it next.

    The content is checked again (another entry may have taken a wording since it was saved), except for
    the repository's files, which the content validation of CI checks as a whole.
    """
    r = _revision(s, rev)
    if r.state != "reviewed":
        raise EditorialError("请先审核，再发布" if r.state == "draft" else f"第 {r.number} 版状态为 {r.state}，不能发布",
                             "conflict")
    e = _entry(s, r.entry_id)
    if e.published_number is not None and r.number < e.published_number:
        raise EditorialError(f"已发布的第 {e.published_number} 版比这一版新；要回到旧内容请用「恢复此版」", "conflict")
    problems = check(s, r.data, r.entry_id)[0] if check_content else []
    if problems:
        raise EditorialError("；".join(problems[:3]), "invalid", errors=problems)
    if e.published_rev is not None:
        s.execute(update(Revision).where(Revision.id == e.published_rev).values(state="superseded"))
    # revisions older than the published one that still wait are overtaken by it
    s.execute(update(Revision).where(Revision.entry_id == e.id, Revision.number < r.number,
                                     Revision.state.in_(OPEN_STATES)).values(state="superseded"))
    r.state, r.published_by, r.published_at = "published", who, now()
    e.published_rev, e.published_number, e.retired = r.id, r.number, False
    e.desk_edited = r.source != "files"
    e.category, e.question, e.local_review = r.data["category"], r.data["question"], bool(r.data["local_review"])
    e.updated_at, e.updated_by = now(), who
    _bump(s)
    return revision_dict(r)


def reject(s: Session, rev: int, who: str, note: str = "") -> dict[str, Any]:
    """draft or reviewed → rejected."""
    r = _revision(s, rev)
    if r.state not in OPEN_STATES:
        raise EditorialError(f"第 {r.number} 版状态为 {r.state}，不能退回", "conflict")
    r.state, r.reviewed_by, r.reviewed_at = "rejected", who, now()
    if note:
        r.note = (r.note + "\n退回：" + note)[: MAX_TEXT["note"] * 2]
    return revision_dict(r)


def withdraw(s: Session, rev: int, who: str) -> dict[str, Any]:
    """The author takes back their own draft."""
    r = _revision(s, rev)
    if r.author != who:
        raise EditorialError("只能撤回自己的草稿", "forbidden")
    if r.state not in OPEN_STATES:
        raise EditorialError(f"第 {r.number} 版状态为 {r.state}，不能撤回", "conflict")
    r.state = "withdrawn"
    return revision_dict(r)


def _same_head(e: EntryRow, base: int | None) -> None:
    if base is not None and base != e.head:
        raise EditorialError(f"该条目已被他人修改（第 {e.head} 版），请刷新后再改", "conflict")


def retire(s: Session, entry_id: str, who: str, note: str = "", base: int | None = None) -> dict[str, Any]:
    """Take an entry out of the bot's answers (its history stays; publishing a revision brings it back).

    With `base`, refused if the entry gained a revision since the supervisor looked at it."""
    e = _entry(s, entry_id)
    _same_head(e, base)
    if e.retired:
        raise EditorialError(f"{entry_id} 已停用", "conflict")
    current = s.get(Revision, e.published_rev) if e.published_rev else None
    data = current.data if current else s.scalar(select(Revision.data).where(Revision.entry_id == entry_id)
                                                   .order_by(Revision.number.desc()).limit(1))
    r = _new_revision(s, e, e.head, data or {}, who, note or "停用", "desk", "retired")
    r.published_by, r.published_at = who, now()
    s.execute(update(Revision).where(Revision.entry_id == entry_id, Revision.state.in_(OPEN_STATES))
              .values(state="superseded"))
    e.retired, e.updated_at, e.updated_by = True, now(), who
    e.desk_edited = who != "files"  # retired in the desk: a file sync does not bring it back
    _bump(s)
    return revision_dict(r)


def restore(s: Session, entry_id: str, rev: int, who: str, note: str = "", reviewed: bool = False,
            base: int | None = None) -> Saved:
    """A new revision with an old revision's content (reviewed when a supervisor restores it); with `base`,
    refused if the entry gained a revision since."""
    e = _entry(s, entry_id)
    _same_head(e, base)
    old = _revision(s, rev)
    if old.entry_id != entry_id:
        raise EditorialError("该版本不属于这个条目", "not_found")
    return propose(s, entry_id, e.head, old.data, who, note or f"恢复第 {old.number} 版", "restore",
                   reviewed_by=who if reviewed else None)


# --- files: seed, import, export -------------------------------------------------------------------------------------
def _publish_from(s: Session, e: EntryRow, data: dict[str, Any], who: str, source: str, note: str) -> None:
    r = _new_revision(s, e, e.head, data, who, note, source, "reviewed")
    r.reviewed_by, r.reviewed_at = who, now()
    publish(s, r.id, who, check_content=False)


def sync_from_files(s: Session, entries: list[KbEntry], fingerprint: str = "") -> dict[str, int]:
    """Bring the files' content in: new entries, and entries the desk never changed, follow the files.

    Idempotent (unchanged entries write nothing). An entry changed in the desk is left as the desk has it;
    an entry that left the files is retired only if the desk never changed it.
    """
    counts = {"created": 0, "updated": 0, "kept_desk": 0, "retired": 0, "unchanged": 0}
    p = s.get(Publication, 1)
    if p is not None and fingerprint and p.files_fingerprint == fingerprint:
        counts["unchanged"] = len(entries)
        return counts
    published = _published_data(s)
    rows = {e.id: e for e in s.scalars(select(EntryRow)).all()}
    fresh: list[tuple[EntryRow, Revision]] = []
    for entry in entries:
        data = data_of(entry)
        e = rows.get(entry.id)
        if e is None:
            # a new entry, published as revision 1 from the files: what _publish_from gives, written in one batch
            # (a fresh install seeds 1,400+ entries: one flush and one stamp, not one each)
            at = now()
            e = EntryRow(id=entry.id, area=area_of(entry.id), head=1, published_number=1, retired=False,
                         desk_edited=False, category=data["category"], question=data["question"],
                         local_review=bool(data["local_review"]), updated_at=at, updated_by="files")
            r = Revision(entry_id=entry.id, number=1, base=0, data=data, state="published", source="files",
                         author="files", created_at=at, note="仓库内容", reviewed_by="files", reviewed_at=at,
                         published_by="files", published_at=at)
            fresh.append((e, r))
            counts["created"] += 1
        elif e.desk_edited:
            counts["kept_desk"] += published.get(entry.id) != data
            counts["unchanged"] += published.get(entry.id) == data
        elif published.get(entry.id) == data and not e.retired:
            counts["unchanged"] += 1
        else:
            _publish_from(s, e, data, "files", "files", "仓库内容更新")
            counts["updated"] += 1
    if fresh:
        s.add_all([x for pair in fresh for x in pair])
        s.flush()
        for e, r in fresh:
            e.published_rev = r.id
        _bump(s)
    in_files = {x.id for x in entries}
    for eid, e in rows.items():
        if eid not in in_files and not e.retired and not e.desk_edited and e.published_rev is not None:
            retire(s, eid, "files", "仓库内容中已删除")
            counts["retired"] += 1
    p = s.get(Publication, 1)
    if p is None:
        p = Publication(id=1, stamp=0, at=now())
        s.add(p)
    p.files_fingerprint = fingerprint
    s.flush()
    return counts


def parse_yaml(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(area, raw entries) of an area file in the content format."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EditorialError(f"不是有效的 YAML：{str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:  # "[[[[…" nested beyond the parser's stack: not a content file either
        raise EditorialError("不是有效的 YAML：嵌套过深") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise EditorialError("文件应包含 area 和 entries 列表（knowledge/SCHEMA.md 的格式）")
    area = str(doc.get("area") or "")
    if area not in AREAS:
        raise EditorialError(f"area 应为 {', '.join(AREAS)} 之一")
    if not all(isinstance(r, dict) for r in doc["entries"]):
        raise EditorialError("entries 的每一项都应是一个条目")
    return area, doc["entries"]


def import_yaml(s: Session, text: str, who: str, publish_now: bool = False) -> dict[str, Any]:
    """An area file's entries as new revisions (drafts; reviewed and published at once if publish_now).

    Unchanged entries are skipped; an entry with problems is reported and not saved; the rest is saved.
    """
    area, raws = parse_yaml(text)
    summary: dict[str, Any] = {"area": area, "created": [], "changed": [], "unchanged": 0, "errors": []}
    published = _published_data(s)
    for raw in raws:
        eid = _text(raw.get("id"))
        if not re.fullmatch(rf"{area}-\d{{4}}", eid):
            summary["errors"].append(f"{eid or '（无 id）'}：id 应为 {area}-0001 的形式")
            continue
        try:
            data = clean_data(raw)
            if published.get(eid) == data:
                summary["unchanged"] += 1
                continue
            problems = check(s, data, eid)[0]  # checked before anything of this entry is written
            if problems:
                raise EditorialError("；".join(problems[:3]))
            e = s.get(EntryRow, eid)
            if e is None:
                e = EntryRow(id=eid, area=area, head=0, category=data["category"], question=data["question"],
                             local_review=data["local_review"], updated_at=now(), updated_by=who)
                s.add(e)
                s.flush()
            saved = propose(s, eid, e.head, data, who, "导入", "import", reviewed_by=who if publish_now else None)
            if publish_now:
                publish(s, saved.revision["rev"], who, check_content=False)
            summary["changed" if eid in published else "created"].append(eid)
        except EditorialError as exc:
            summary["errors"].append(f"{eid}：{exc.message}")
    return summary


class _Literal(str):
    """A text dumped as a YAML block (|)."""


yaml.SafeDumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def export_yaml(s: Session, area: str) -> str:
    """The area's published entries in the content format (knowledge/SCHEMA.md)."""
    if area not in AREAS:
        raise EditorialError(f"area 应为 {', '.join(AREAS)} 之一", "not_found")
    entries = []
    for eid, data in sorted(_published_data(s).items()):
        if area_of(eid) != area:
            continue
        item: dict[str, Any] = {"id": eid}
        for name in FIELDS:
            v = data.get(name)
            if name == "keywords" and not v:
                continue
            item[name] = _Literal(v.rstrip("\n") + "\n") if name == "answer" else v
        entries.append(item)
    return yaml.safe_dump({"area": area, "entries": entries}, allow_unicode=True, sort_keys=False, width=1000)


def export_zip(s: Session) -> bytes:
    """Every area's file, zipped (the content folder as the desk has it)."""
    buf = io.BytesIO()
    areas = sorted({area_of(eid) for eid in _published_data(s)})
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for area in areas:
            z.writestr(f"{area}.yml", export_yaml(s, area))
    return buf.getvalue()


def counts(s: Session) -> dict[str, int]:
    """Entries by state (for health and logs)."""
    total = s.scalar(select(func.count()).select_from(EntryRow)) or 0
    retired = s.scalar(select(func.count()).select_from(EntryRow).where(EntryRow.retired.is_(True))) or 0
    published = s.scalar(select(func.count()).select_from(EntryRow).where(EntryRow.published_rev.is_not(None),
                                                                          EntryRow.retired.is_(False))) or 0
    return {"entries": total, "published": published, "retired": retired}
