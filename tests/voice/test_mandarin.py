"""Mandarin accuracy with the official Vosk model, when one is present (it cannot be downloaded here)."""

from __future__ import annotations

import pytest

from tests.voice.doubles import espeak_pcm8k
from voice.audio import silence
from voice.frames import AudioIn, ListenFor, Transcript
from voice.pipeline import run_stages
from voice.settings import ListenTimings
from voice.stages.endpointer import Endpointer
from voice.stages.normaliser import NumberNormaliser
from voice.stages.recogniser import Recogniser

from .conftest import mandarin_model_path

MODEL = mandarin_model_path()
pytestmark = [
    pytest.mark.vosk,
    pytest.mark.skipif(MODEL is None, reason="no Mandarin Vosk model present: run scripts/voice/download_model.sh "
                       "on a machine with internet, or set VOSK_MODEL_PATH (none can be fetched on this machine)"),
]


@pytest.fixture(scope="module")
def cn_model():
    from voice.engines.recognition import VoskModel

    return VoskModel(MODEL)  # type: ignore[arg-type]


async def recognise(model: object, text: str, listen: ListenFor) -> str:
    pcm = silence(300) + espeak_pcm8k(text, "cmn-latn-pinyin", speed=140) + silence(1500)
    frames = [listen, *(AudioIn(pcm[i : i + 320], at=i / 16000) for i in range(0, len(pcm), 320))]
    out = await run_stages([Endpointer(ListenTimings()), Recogniser(model), NumberNormaliser()], frames)  # type: ignore[arg-type]
    return "".join(f.text for f in out if isinstance(f, Transcript) and f.final)


@pytest.mark.asyncio
async def test_spoken_phone_number_with_the_digit_grammar(cn_model: object) -> None:
    from voice.prompts import DIGIT_GRAMMAR

    heard = await recognise(cn_model, "幺三八幺二三四五六七八",
                            ListenFor(expect="phone_number", eou_silence_ms=1200, grammar=DIGIT_GRAMMAR))
    assert heard == "13812345678"


@pytest.mark.asyncio
@pytest.mark.parametrize("phrase", ["转人工", "社保卡挂失"])
async def test_menu_phrases_with_a_grammar(cn_model: object, phrase: str) -> None:
    heard = await recognise(cn_model, phrase, ListenFor(grammar=("转人工", "社保卡挂失", "养老保险")))
    assert heard == phrase
