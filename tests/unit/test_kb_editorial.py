"""The knowledge content as supervisors maintain it (knowledge/editorial.py), on a real SQLite database.

States draft → reviewed → published with who and when, history and diff, restore, retire, concurrent edits
refused instead of overwritten, validation and duplicates on save, the files as seed, YAML import/export.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from common.database import create_sql_engine
from knowledge import editorial as ed
from knowledge.schema import load_entries

SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "kb_small"


@pytest.fixture()
def db(tmp_path):
    engine = create_sql_engine(f"sqlite:///{tmp_path}/kb.db")
    ed.create_tables(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)

    def run(fn, *args, **kwargs):
        with sessions.begin() as s:
            return fn(s, *args, **kwargs)
    yield run
    engine.dispose()


@pytest.fixture()
def seeded(db):
    counts = db(ed.sync_from_files, load_entries(SMALL), "fp1")
    assert counts["created"] == 4
    return db


def changed(data: dict, **fields) -> dict:
    return {**data, **fields}


def published(db, eid: str) -> dict | None:
    return db(ed.detail, eid)["published"]


def test_the_files_seed_an_empty_database_once(db):
    assert db(ed.stamp) == -1
    assert db(ed.sync_from_files, load_entries(SMALL), "fp1")["created"] == 4
    first = db(ed.stamp)
    assert first > 0 and [e.id for e in db(ed.published_entries)] == ["test-0001", "test-0002", "test-0003",
                                                                      "test-0004"]
    assert db(ed.sync_from_files, load_entries(SMALL), "fp1")["unchanged"] == 4  # same files: nothing written
    assert db(ed.sync_from_files, load_entries(SMALL), "fp2")["unchanged"] == 4  # other files, same content: nothing written
    assert db(ed.stamp) == first
    history = db(ed.detail, "test-0001")["revisions"]
    assert [(r["number"], r["state"], r["source"], r["author"]) for r in history] == [(1, "published", "files", "files")]


def test_a_draft_is_reviewed_then_published_with_who_and_when(seeded):
    db = seeded
    before = db(ed.stamp)
    data = published(db, "test-0001")
    saved = db(ed.propose, "test-0001", 1, changed(data, answer="新的答复：请拨打 12333 挂失。"), "agent1", "改答复")
    rev = saved.revision["rev"]
    assert saved.revision["state"] == "draft" and saved.revision["number"] == 2
    assert published(db, "test-0001")["answer"] == data["answer"]  # a draft changes nothing the bot says
    assert db(ed.detail, "test-0001")["entry"]["state"] == "pending"
    assert [r["rev"] for r in db(ed.queue)["review"]] == [rev]
    with pytest.raises(ed.EditorialError, match="请先审核"):
        db(ed.publish, rev, "supervisor")
    db(ed.review, rev, "supervisor")
    out = db(ed.publish, rev, "supervisor")
    assert out["state"] == "published" and out["published_by"] == "supervisor" and out["reviewed_by"] == "supervisor"
    assert out["published_at"] and out["reviewed_at"]
    assert published(db, "test-0001")["answer"] == "新的答复：请拨打 12333 挂失。"
    assert db(ed.stamp) == before + 1
    states = [(r["number"], r["state"]) for r in db(ed.detail, "test-0001")["revisions"]]
    assert states == [(2, "published"), (1, "superseded")]
    assert db(ed.queue)["review"] == []
    assert next(e for e in db(ed.published_entries) if e.id == "test-0001").answer.startswith("新的答复")


def test_a_change_from_an_old_revision_is_refused_not_overwritten(seeded):
    db = seeded
    data = published(db, "test-0002")
    db(ed.propose, "test-0002", 1, changed(data, answer="第一位坐席的修改。"), "agent1")
    with pytest.raises(ed.EditorialError) as err:
        db(ed.propose, "test-0002", 1, changed(data, answer="第二位坐席的修改。"), "agent2")
    assert err.value.kind == "conflict" and err.value.details["current"]["data"]["answer"] == "第一位坐席的修改。"
    revs = db(ed.detail, "test-0002")["revisions"]
    assert [r["data"]["answer"] for r in revs] == ["第一位坐席的修改。", data["answer"]]


@pytest.mark.parametrize("field,value,message", [
    ("voice_answer", "请" * 81, "语音答复有 81 个字"),
    ("voice_answer", "详见 https://example.gov.cn", "网址"),
    ("paraphrases", ["只有一条"], "市民问法至少 5 条"),
    ("question", "", "缺少必填项：标准问题"),
    ("category", "没有小类", "大类/小类"),
])
def test_invalid_content_is_refused_with_the_reason(seeded, field, value, message):
    db = seeded
    data = published(db, "test-0003")
    with pytest.raises(ed.EditorialError) as err:
        db(ed.propose, "test-0003", 1, changed(data, **{field: value}), "supervisor")
    assert err.value.kind == "invalid" and any(message in p for p in err.value.details["errors"])
    assert len(db(ed.detail, "test-0003")["revisions"]) == 1  # nothing saved


def test_a_new_entry_that_duplicates_one_shows_the_nearest_and_is_refused(seeded):
    db = seeded
    other = published(db, "test-0001")
    dup = changed(other, question="社保卡丢了怎么挂失呢？", paraphrases=["a1", "a2", "a3", "a4", "a5"])
    problems, nearest = db(ed.check, dup, None, "card")
    assert any("test-0001" in p for p in problems) and nearest[0]["id"] == "test-0001"
    with pytest.raises(ed.EditorialError):
        db(ed.create, "card", dup, "supervisor")
    taken = changed(other, question="社保卡补办要多久能拿到新卡？", paraphrases=["俺的社保卡丢了怎么弄", "b2", "b3", "b4", "b5"])
    assert any("已属于 test-0001" in p for p in db(ed.check, taken, None, "card")[0])
    fine = changed(other, question="社保卡补办要多久能拿到新卡？", paraphrases=["补卡多久", "补的卡啥时候好", "新卡几天能拿",
                                                                   "补办社保卡等几天", "补卡要等多长时间"])
    saved = db(ed.create, "card", fine, "supervisor", "新条目")
    assert saved.revision["entry_id"] == "card-0001" and saved.revision["state"] == "draft"


def test_new_ids_are_never_reused(seeded):
    db = seeded
    data = published(db, "test-0001")
    new = changed(data, question="电子社保卡在哪个APP领取？", paraphrases=["电子卡咋领", "手机上怎么领社保卡", "电子社保卡去哪申请",
                                                                "领电子社保卡用啥软件", "电子社报卡怎么弄"])
    first = db(ed.create, "ecard", new, "supervisor").revision["entry_id"]
    db(ed.review, db(ed.detail, first)["revisions"][0]["rev"], "supervisor")
    db(ed.publish, db(ed.detail, first)["revisions"][0]["rev"], "supervisor")
    db(ed.retire, first, "supervisor", "合并")
    again = changed(new, question="电子社保卡的二维码在哪里打开？", paraphrases=["电子卡码在哪", "看病扫的码在哪找", "二维码怎么调出来",
                                                                   "电子社保卡码打不开", "扫码就医的码在哪"])
    second = db(ed.create, "ecard", again, "supervisor").revision["entry_id"]
    assert (first, second) == ("ecard-0001", "ecard-0002")


def test_history_diff_restore_and_retire(seeded):
    db = seeded
    v1 = published(db, "test-0004")
    saved = db(ed.propose, "test-0004", 1, changed(v1, answer=v1["answer"] + "另请带好身份证。"), "supervisor",
               reviewed_by="supervisor")
    db(ed.publish, saved.revision["rev"], "supervisor")
    revs = db(ed.detail, "test-0004")["revisions"]
    d = db(ed.diff, revs[1]["rev"], revs[0]["rev"])
    assert [f["field"] for f in d["fields"]] == ["answer"]
    assert ["insert", "另请带好身份证。"] in d["fields"][0]["ops"]
    restored = db(ed.restore, "test-0004", revs[1]["rev"], "supervisor", reviewed=True)
    assert restored.revision["state"] == "reviewed" and restored.revision["source"] == "restore"
    db(ed.publish, restored.revision["rev"], "supervisor")
    assert published(db, "test-0004")["answer"] == v1["answer"]
    with pytest.raises(ed.EditorialError, match="不能发布"):  # an old revision comes back by restore only
        db(ed.publish, revs[0]["rev"], "supervisor")
    stamp = db(ed.stamp)
    db(ed.retire, "test-0004", "supervisor", "业务取消")
    assert "test-0004" not in {e.id for e in db(ed.published_entries)} and db(ed.stamp) == stamp + 1
    entry = db(ed.detail, "test-0004")
    assert entry["entry"]["state"] == "retired" and entry["revisions"][0]["state"] == "retired"
    assert entry["revisions"][0]["published_by"] == "supervisor"


def test_only_the_author_withdraws_a_draft_and_a_rejected_one_stays_in_history(seeded):
    db = seeded
    data = published(db, "test-0002")
    rev = db(ed.propose, "test-0002", 1, changed(data, answer="坐席建议的新答复。"), "agent1").revision["rev"]
    with pytest.raises(ed.EditorialError) as err:
        db(ed.withdraw, rev, "agent2")
    assert err.value.kind == "forbidden"
    assert db(ed.withdraw, rev, "agent1")["state"] == "withdrawn"
    rev2 = db(ed.propose, "test-0002", 2, changed(data, answer="又一次建议。"), "agent1").revision["rev"]
    assert db(ed.reject, rev2, "supervisor", "表述不准确")["state"] == "rejected"
    assert [r["state"] for r in db(ed.detail, "test-0002")["revisions"]] == ["rejected", "withdrawn", "published"]
    assert published(db, "test-0002") == data


def test_desk_edits_survive_a_files_update_and_untouched_entries_follow_the_files(seeded, tmp_path):
    db = seeded
    data = published(db, "test-0001")
    saved = db(ed.propose, "test-0001", 1, changed(data, answer="坐席台的答复。"), "supervisor", reviewed_by="supervisor")
    db(ed.publish, saved.revision["rev"], "supervisor")
    content = tmp_path / "content"
    content.mkdir()
    text = (SMALL / "small.yml").read_text(encoding="utf-8")
    text = text.replace("社保卡丢失后请尽快挂失", "（仓库新版）社保卡丢失后请尽快挂失")  # test-0001, edited in the desk
    text = text.replace("非因本人意愿中断就业且缴费满一年的", "（仓库新版）非因本人意愿中断就业且缴费满一年的")  # test-0002
    (content / "small.yml").write_text(text, encoding="utf-8")
    counts = db(ed.sync_from_files, load_entries(content), "fp2")
    assert counts["updated"] == 1 and counts["kept_desk"] == 1
    assert published(db, "test-0001")["answer"] == "坐席台的答复。"
    assert published(db, "test-0002")["answer"].startswith("（仓库新版）")


def test_yaml_export_and_import_round_trip(db):
    entries = [e for e in load_entries() if e.id.startswith("ecard-")]
    db(ed.sync_from_files, entries, "x")
    text = db(ed.export_yaml, "ecard")
    doc = yaml.safe_load(text)
    assert doc["area"] == "ecard" and len(doc["entries"]) == len(entries)
    assert doc["entries"][0]["answer"] == entries[0].answer + "\n"
    assert db(ed.import_yaml, text, "supervisor")["unchanged"] == len(entries)  # nothing changed: nothing saved
    doc["entries"][0]["answer"] = "导入的新答复。"
    doc["entries"][1]["voice_answer"] = "太长" * 50
    summary = db(ed.import_yaml, yaml.safe_dump(doc, allow_unicode=True), "supervisor", publish_now=True)
    assert summary["changed"] == [entries[0].id] and len(summary["errors"]) == 1 and entries[1].id in summary["errors"][0]
    assert db(ed.detail, entries[0].id)["published"]["answer"] == "导入的新答复。"
    with zipfile.ZipFile(io.BytesIO(db(ed.export_zip))) as z:
        assert z.namelist() == ["ecard.yml"]
    with pytest.raises(ed.EditorialError):
        db(ed.import_yaml, "entries: [not valid", "supervisor")
    with pytest.raises(ed.EditorialError, match="嵌套过深"):  # nested beyond the parser's stack
        db(ed.import_yaml, "[" * 50000, "supervisor")


def test_the_whole_repository_content_seeds_and_lists_by_category(db):
    entries = load_entries()
    db(ed.sync_from_files, entries, "all")
    assert len(db(ed.published_entries)) == len(entries)
    page = db(ed.listing, category="社保卡")
    assert page["total"] == sum(e.category.startswith("社保卡/") for e in entries)
    assert len(page["entries"]) == ed.PAGE
    assert db(ed.listing, q="临时挂失")["total"] >= 1


def test_a_stale_retire_or_restore_is_refused_and_pending_lists_new_drafts(seeded):
    db = seeded
    data = published(db, "test-0001")
    db(ed.propose, "test-0001", 1, changed(data, answer="别人刚存的草稿。"), "agent1")
    for fn, args in ((ed.retire, ("test-0001", "supervisor", "停用")),
                     (ed.restore, ("test-0001", db(ed.detail, "test-0001")["revisions"][-1]["rev"], "supervisor"))):
        with pytest.raises(ed.EditorialError) as err:
            db(fn, *args, base=1)
        assert err.value.kind == "conflict"
    new = changed(data, question="社保卡照片能不能自己用手机拍？", paraphrases=["手机拍照行不", "自己拍的照片能用吗", "照片能自拍不",
                                                                  "办卡照片手机拍的中不", "照相馆非去不可吗"])
    created = db(ed.create, "card", new, "agent1").revision["entry_id"]
    pending = db(ed.listing, state="pending")
    assert {e["id"] for e in pending["entries"]} == {"test-0001", created}
    assert {e["id"] for e in db(ed.listing, state="published")["entries"]} == {"test-0001", "test-0002", "test-0003",
                                                                              "test-0004"}
    assert [e["id"] for e in db(ed.listing, state="unpublished")["entries"]] == [created]
