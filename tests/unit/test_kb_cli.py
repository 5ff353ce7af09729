"""The content management command: validate, add and update without disturbing other entries."""
import shutil
from pathlib import Path

import yaml

from knowledge import cli

SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "kb_small"


def _entry(eid: str, question: str) -> dict:
    return {"id": eid, "category": "社保卡/挂失", "question": question,
            "paraphrases": ["甲乙丙丁一", "甲乙丙丁二", "甲乙丙丁三", "甲乙丙丁四", "甲乙丙丁五"],
            "answer": "第一行\n第二行，请拨打 12333 确认。", "voice_answer": "请拨打12333确认。",
            "source": "测试", "reviewed": "2026-11-28", "local_review": True}


def test_add_update_and_reject(tmp_path, monkeypatch, capsys):
    content = tmp_path / "content"
    shutil.copytree(SMALL, content)
    monkeypatch.setenv("KB_CONTENT_DIR", str(content))
    before = (content / "small.yml").read_text(encoding="utf-8")
    new = tmp_path / "new.yml"
    new.write_text(yaml.safe_dump({"entries": [_entry("test-0005", "社保卡被冻结了怎么办？")]}, allow_unicode=True), encoding="utf-8")
    assert cli.main(["add", str(new)]) == 0
    after = (content / "small.yml").read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # other entries keep their exact text
    assert "answer: |" in after
    assert cli.main(["validate"]) == 0
    # update in place
    new.write_text(yaml.safe_dump({"entries": [_entry("test-0005", "社保卡被锁定了怎么解锁？")]}, allow_unicode=True), encoding="utf-8")
    assert cli.main(["add", str(new)]) == 0
    text = (content / "small.yml").read_text(encoding="utf-8")
    assert "社保卡被锁定了怎么解锁" in text and "社保卡被冻结了怎么办" not in text
    # an invalid entry (too few paraphrases) is refused and nothing is written
    bad = _entry("test-0006", "新问题？")
    bad["paraphrases"] = ["只有一个"]
    new.write_text(yaml.safe_dump({"entries": [bad]}, allow_unicode=True), encoding="utf-8")
    assert cli.main(["add", str(new)]) == 1
    assert (content / "small.yml").read_text(encoding="utf-8") == text
    assert "not saved" in capsys.readouterr().out
