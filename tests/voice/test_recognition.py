"""Model resolution, and real audio through real Vosk (the Korean PyPI model plus a phrase list)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.voice.doubles import espeak_pcm8k
from voice.audio import silence
from voice.engines.recognition import ModelMissing, resolve_model_path
from voice.frames import AudioIn, ListenFor, Transcript
from voice.pipeline import run_stages
from voice.settings import ListenTimings
from voice.stages.endpointer import Endpointer
from voice.stages.normaliser import NumberNormaliser
from voice.stages.recogniser import Recogniser

REPO = Path(__file__).resolve().parents[2]
# The Korean model has no garbage word ([unk]): silence can only come out as a grammar word, and
# short ones ("네") attract it. A menu grammar and a yes/no grammar, as the gateway uses them.
PHRASES = ("안녕하세요", "상담원 연결", "보험료 조회", "감사합니다")
YES_NO = ("네", "아니요")


def fake_model(folder: Path) -> Path:
    (folder / "am").mkdir(parents=True)
    (folder / "conf").mkdir()
    return folder


def test_configured_path_wins(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "anything")
    assert resolve_model_path(str(model), search_dirs=()) == model


def test_a_wrong_configured_path_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="VOSK_MODEL_PATH=.*is not an unpacked Vosk model"):
        resolve_model_path(str(tmp_path / "nope"), search_dirs=())


def test_standard_places_are_searched_for_the_mandarin_model(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "b" / "vosk-model-small-cn-0.22")
    assert resolve_model_path("", search_dirs=(tmp_path / "a", tmp_path / "b")) == model


def test_no_model_means_one_sentence_that_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as error:
        resolve_model_path("", search_dirs=(tmp_path,))
    message = str(error.value)
    assert "download_model.sh" in message and "VOSK_MODEL_PATH" in message and message.count(". ") == 0


def test_the_gateway_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VOICE_HANDOFF": "local",
           "VOSK_MODEL_PATH": str(tmp_path / "missing"), "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "voice"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "VOSK_MODEL_PATH" in lines[0]


@pytest.mark.vosk
@pytest.mark.asyncio
@pytest.mark.parametrize(("phrase", "grammar"), [("안녕하세요", PHRASES), ("상담원 연결", PHRASES),
                                                 ("보험료 조회", PHRASES), ("네", YES_NO), ("아니요", YES_NO)])
async def test_real_speech_is_recognised_at_phone_quality(ko_model: object, phrase: str, grammar: tuple[str, ...]) -> None:
    speech = espeak_pcm8k(phrase, "ko")
    pcm = silence(300) + speech + silence(800)
    frames = [ListenFor(grammar=grammar), *(AudioIn(pcm[i : i + 320], at=i / 16000) for i in range(0, len(pcm), 320))]
    stages = [Endpointer(ListenTimings()), Recogniser(ko_model), NumberNormaliser()]  # type: ignore[arg-type]
    out = await run_stages(stages, frames)
    finals = [f for f in out if isinstance(f, Transcript) and f.final]
    assert [f.text for f in finals] == [phrase]
    assert finals[0].confidence > 0.5


@pytest.mark.vosk
@pytest.mark.asyncio
async def test_grammar_words_the_model_does_not_know_are_dropped(ko_model: object) -> None:
    grammar = ko_model.grammar_json(("상담원 연결", "社保卡", "[unk]"))  # type: ignore[attr-defined]
    assert grammar is not None and "상담원 연결" in grammar and "社保卡" not in grammar


@pytest.mark.vosk
@pytest.mark.asyncio
async def test_recognition_is_cheap_enough_for_ten_calls(ko_model: object) -> None:
    import time

    speech = espeak_pcm8k("보험료 조회 상담원 연결 안녕하세요", "ko")
    recognizer = ko_model.create(PHRASES)  # type: ignore[attr-defined]
    started = time.process_time()
    for i in range(0, len(speech), 3200):
        recognizer.accept(speech[i : i + 3200])
    recognizer.finish()
    cpu_per_audio_second = (time.process_time() - started) / (len(speech) / 16000)
    assert cpu_per_audio_second < 0.3


def test_check_model_flag_does_not_start_a_server(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "vosk-model-small-cn-0.22")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VOSK_MODEL_PATH": str(model), "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "voice", "--check-model"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == str(model)
    env["VOSK_MODEL_PATH"] = str(tmp_path / "missing")
    run = subprocess.run([sys.executable, "-m", "voice", "--check-model"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "VOSK_MODEL_PATH" in run.stderr
