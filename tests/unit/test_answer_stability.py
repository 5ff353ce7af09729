"""Guard for "CI fails on a fresh machine with another CPU": the pinned answers do not move when the numerics move.

The pinned questions (tests/fixtures/pinned_answers.yml: the README's examples, the questions the
end-to-end and browser tests ask, and colloquial questions) must get their recorded entry and band:
1. from the index `make index` built (what the running system uses), each far enough from a band
   boundary (MIN_MARGIN in confidence) that another CPU's rounding cannot move it;
2. and again under other numerics, each in its own process with its own fresh index: two threads
   and odd batches, int8 instead of fp32, and ATen's and MKL's AVX2 kernels instead of this CPU's
   best (what another x86-64 CPU would run).
Each run prints how far the confidence moved. Needs the built model (`make model`); CI builds it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PINNED = yaml.safe_load((ROOT / "tests" / "fixtures" / "pinned_answers.yml").read_text(encoding="utf-8"))["pinned"]
MIN_MARGIN = 0.05  # the largest confidence move measured under the variants below is far smaller (printed)
pytestmark = pytest.mark.model


def _require_model() -> None:
    from knowledge.embedding import default_model_path

    if not (Path(default_model_path()) / "config.json").is_file():
        message = f"no model at {default_model_path()}: run `make model` first"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _probe(tmp_path: Path, *args: str, env: dict | None = None) -> dict[str, dict]:
    cmd = [sys.executable, str(ROOT / "tests" / "stability_probe.py"), "--cache", str(tmp_path), *args]
    out = subprocess.run(cmd, input=json.dumps([p["text"] for p in PINNED], ensure_ascii=False), text=True,
                         capture_output=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                         timeout=900).stdout
    rows = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    return {r["text"]: r for r in rows}


@pytest.fixture(scope="module")
def reference():
    """Decisions from the index the running system uses (var/kb_cache, built by `make index`)."""
    _require_model()
    from knowledge.embedding import embedder_from_env
    from knowledge.retriever import KnowledgeBase

    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=1),
                                    cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    decisions = {p["text"]: kb.decide(p["text"]) for p in PINNED}
    gaps = {p["text"]: kb.foreign_gap(*kb.view_scores(p["text"])[1:]) for p in PINNED}
    return decisions, gaps, kb.calibration.foreign_margin


@pytest.mark.parametrize("pin", PINNED, ids=[p["text"][:12] for p in PINNED])
def test_pinned_question_gets_its_recorded_entry_and_band_with_a_safe_margin(reference, pin):
    decisions, gaps, foreign_margin = reference
    d = decisions[pin["text"]]
    assert (d.hits[0].entry.id, d.band) == (pin["entry"], pin["band"]), (d.confidence, [h.entry.id for h in d.hits])
    assert d.margin >= MIN_MARGIN, f"confidence {d.confidence:.4f} is within {MIN_MARGIN} of a band boundary"
    if foreign_margin is not None:  # the "not ours" boundary (cosine) is just as far from numeric noise
        assert abs(gaps[pin["text"]] - foreign_margin) >= MIN_MARGIN, (gaps[pin["text"]], foreign_margin)


VARIANTS = {
    "fp32, 2 threads, batches of 7": (["--precision", "fp32", "--threads", "2", "--batch-size", "7"], {}),
    "fp32, AVX2 kernels": (["--precision", "fp32", "--threads", "1"],
                           {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_answers_do_not_move_when_the_numerics_move(reference, tmp_path, variant):
    args, env = VARIANTS[variant]
    got = _probe(tmp_path, *args, env=env)
    decisions = reference[0]
    moved = max(abs(got[t]["confidence"] - decisions[t].confidence) for t in got)
    print(f"{variant}: largest confidence move {moved:.5f}")
    for pin in PINNED:
        g = got[pin["text"]]
        assert (g["entry"], g["band"]) == (pin["entry"], pin["band"]), (variant, g)
    assert moved < MIN_MARGIN


def test_int8_keeps_the_entries_but_is_not_the_calibrated_precision(reference, tmp_path):
    """int8 (EMBEDDING_PRECISION=int8) ranks the pinned questions alike, but moves confidences by far more
    than fp32's rounding (0.29 measured for 俺想查查灵活就业咋交养老 on 2026-12-04): this is why fp32 is the
    default and the shipped calibration is fitted for fp32 (docs/determinism.md)."""
    got = _probe(tmp_path, "--precision", "int8", "--threads", "1")
    decisions = reference[0]
    moved = max(abs(got[t]["confidence"] - decisions[t].confidence) for t in got)
    print(f"int8: largest confidence move {moved:.5f}")
    assert [got[p["text"]]["entry"] for p in PINNED] == [p["entry"] for p in PINNED]
