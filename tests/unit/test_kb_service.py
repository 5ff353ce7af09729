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
