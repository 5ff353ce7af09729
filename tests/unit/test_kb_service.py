"""The action server notices changed knowledge content and re-indexes without a Rasa retrain."""
import shutil
import time
from dataclasses import replace
from pathlib import Path

from actions import kb_service as ks
from actions.settings import load_settings

SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "kb_small"


def test_changed_content_is_reindexed_in_the_background(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(SMALL, content)
    service = ks.KbService(replace(load_settings({}), kb_content_dir=content, kb_cache_dir=tmp_path / "cache",
                                   embedding_model="off", kb_watch_seconds=0.0))
    kb = service.get(timeout=30)
    assert kb is not None and "test-0005" not in kb.by_id
    text = (content / "small.yml").read_text(encoding="utf-8")
    (content / "small.yml").write_text(text + """  - id: test-0005
    category: 社保卡/锁卡
    question: 社保卡密码输错被锁了怎么办？
    paraphrases: [卡被锁了咋办, 密码输错三次锁卡了, 社保卡锁住了怎么解, 俺的卡密码锁了, 锁卡了去哪解锁]
    answer: 社保应用密码锁定后，请持卡和身份证件到社保卡服务网点解锁，或拨打 12333 咨询。
    voice_answer: 请带卡和身份证到服务网点解锁。
    source: 测试数据
    reviewed: 2026-11-28
    local_review: true
""", encoding="utf-8")
    assert service.reindex_if_changed() is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "test-0005" not in service.get().by_id:
        time.sleep(0.1)
    kb = service.get()
    assert "test-0005" in kb.by_id
    assert kb.search("密码输错卡被锁了")[0].entry.id == "test-0005"
    assert service.reindex_if_changed() is False  # nothing changed since


def test_broken_content_keeps_the_old_index(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(SMALL, content)
    service = ks.KbService(replace(load_settings({}), kb_content_dir=content, kb_cache_dir=tmp_path / "cache",
                                   embedding_model="off", kb_watch_seconds=0.0))
    old = service.get(timeout=30)
    (content / "small.yml").write_text("entries: [this is: not valid", encoding="utf-8")
    service.reindex_if_changed()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and service.error is None:
        time.sleep(0.1)
    assert service.error and service.get() is old


def test_a_published_change_in_the_database_is_answered_without_a_restart(tmp_path):
    """KB_DATABASE_URL: the files seed the desk's tables; a publication there is indexed at the next check."""
    from sqlalchemy.orm import sessionmaker

    from common.database import create_sql_engine
    from knowledge import editorial as ed

    content = tmp_path / "content"
    shutil.copytree(SMALL, content)
    url = f"sqlite:///{tmp_path}/webapp.db"
    service = ks.KbService(replace(load_settings({}), kb_content_dir=content, kb_cache_dir=tmp_path / "cache",
                                   embedding_model="off", kb_watch_seconds=0.0, kb_database_url=url))
    kb = service.get(timeout=30)
    assert kb is not None and len(kb.entries) == 4 and not service.changed()
    engine = create_sql_engine(url)
    with sessionmaker(engine).begin() as s:  # what the desk does when a supervisor edits and publishes
        data = ed.detail(s, "test-0002")["published"]
        saved = ed.propose(s, "test-0002", 1, {**data, "answer": "桌面发布的新答复。"}, "supervisor",
                           reviewed_by="supervisor")
        ed.publish(s, saved.revision["rev"], "supervisor")
        ed.retire(s, "test-0003", "supervisor", "停用测试")
    engine.dispose()
    assert service.reindex_if_changed() is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and service.get().by_id["test-0002"].answer != "桌面发布的新答复。":
        time.sleep(0.1)
    kb = service.get()
    assert kb.by_id["test-0002"].answer == "桌面发布的新答复。" and "test-0003" not in kb.by_id
    assert service.reindex_if_changed() is False
    # the files changed too: the entry the desk changed keeps the desk's text, the others follow the files
    text = (content / "small.yml").read_text(encoding="utf-8")
    (content / "small.yml").write_text(text.replace("非因本人意愿", "（新）非因本人意愿")
                                       .replace("社保卡丢失后请尽快挂失", "（新）社保卡丢失后请尽快挂失"), encoding="utf-8")
    assert service.reindex_if_changed() is True
    while time.monotonic() < deadline + 30 and not service.get().by_id["test-0001"].answer.startswith("（新）"):
        time.sleep(0.1)
    kb = service.get()
    assert kb.by_id["test-0001"].answer.startswith("（新）") and kb.by_id["test-0002"].answer == "桌面发布的新答复。"
    assert "test-0003" not in kb.by_id  # retired in the desk: the files do not bring it back
