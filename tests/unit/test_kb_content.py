"""The real knowledge content and development set obey their schema."""
from collections import Counter
from pathlib import Path

import pytest
import yaml

from knowledge.schema import load_entries, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def entries():
    return load_entries()


def test_content_is_valid(entries):
    assert validate(entries) == []


def test_content_size_and_coverage(entries):
    assert len(entries) >= 500
    areas = Counter(e.id.split("-")[0] for e in entries)
    for area in ("card", "ecard", "enrol", "transfer", "record", "pension", "certify", "unemp", "injury", "maternity", "channel"):
        assert areas[area] >= 10, area
    card_share = (areas["card"] + areas["ecard"]) / len(entries)
    assert card_share >= 0.3  # card questions are ~40 % of the hotline's volume


CONFIRM_CHANNELS = ("12345", "12333", "12393", "大厅", "网点", "经办机构", "平台", "APP", "app", "电子社保卡", "爱山东",
                    "窗口", "银行", "医保部门", "单位", "仲裁", "劳动", "公安")


def test_entries_flagged_for_local_review_name_a_channel_to_confirm(entries):
    missing = [e.id for e in entries if e.local_review and not any(c in e.answer for c in CONFIRM_CHANNELS)]
    assert missing == []


def test_devset_is_labelled_with_existing_entries_and_independent(entries):
    items = yaml.safe_load((ROOT / "knowledge" / "devset" / "devset.yml").read_text(encoding="utf-8"))["items"]
    ids = {e.id for e in entries}
    wordings = {w for e in entries for w in e.views}
    assert len(items) >= 300
    for it in items:
        exp = it["expected"]
        if exp != "none":
            assert set(exp) <= ids, it
        assert it["text"] not in wordings, it["text"]
    assert sum(1 for it in items if it["expected"] == "none") >= 30


def test_the_coverage_table_in_docs_is_what_the_content_gives():
    """docs/coverage.md (issue 16's coverage table) is regenerated whenever entries or training questions change."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, str(root / "scripts" / "eval" / "coverage.py"), "--check"],
                         capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
