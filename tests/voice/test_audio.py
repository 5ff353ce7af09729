"""G.711 μ-law, resampling and level helpers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.voice.doubles import tone_pcm8k
from voice.audio import level_dbfs, pcm16_to_ulaw, resample, ulaw_to_pcm16


def test_ulaw_matches_cpython_audioop_bit_for_bit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop was removed in Python 3.13")
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert pcm16_to_ulaw(every_sample) == audioop.lin2ulaw(every_sample, 2)
    every_code = bytes(range(256))
    assert ulaw_to_pcm16(every_code) == audioop.ulaw2lin(every_code, 2)


def test_ulaw_round_trip_keeps_speech_level_within_g711_noise() -> None:
    pcm = tone_pcm8k(1000, 200)
    back = ulaw_to_pcm16(pcm16_to_ulaw(pcm))
    x, y = (np.frombuffer(b, "<i2").astype(float) for b in (pcm, back))
    snr = 10 * np.log10((x**2).sum() / ((x - y) ** 2).sum())
    assert snr > 30


@pytest.mark.parametrize(("src", "dst"), [(22050, 8000), (8000, 16000), (16000, 8000)])
def test_resample_keeps_a_tone_and_length(src: int, dst: int) -> None:
    t = np.arange(src) / src
    out = resample((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), src, dst)
    assert len(out) == dst
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(dst) / dst)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 0.01


def test_resample_removes_what_the_target_rate_cannot_carry() -> None:
    t = np.arange(22050) / 22050
    out = resample((0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32), 22050, 8000)
    assert np.abs(out[200:-200]).max() < 0.01  # 6 kHz is above 8 kHz audio's 4 kHz Nyquist


def test_level_of_silence_and_tone() -> None:
    assert level_dbfs(b"\x00\x00" * 160) == -120.0
    assert -14 < level_dbfs(tone_pcm8k(440, 20, level=0.3)) < -9
