"""Audio helpers: G.711 μ-law, band-limited resampling, levels and WAV I/O (numpy only)."""

from __future__ import annotations

import io
import math
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


_ULAW_DECODE = _ulaw_decode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 μ-law bytes to signed 16-bit little-endian PCM."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encode signed 16-bit little-endian PCM as G.711 μ-law (bit-exact with CPython's audioop)."""
    samples = np.frombuffer(data, dtype="<i2").astype(np.int32) >> 2  # 14-bit, floor
    negative = samples < 0
    magnitude = np.minimum(np.where(negative, -samples, samples), 8159) + 33
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)  # beyond the last segment: the largest code
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()


_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


@lru_cache(maxsize=16)
def _polyphase(up: int, down: int, half_width: int) -> tuple[np.ndarray, int]:
    """Windowed-sinc filter bank: one row of taps per output phase."""
    cutoff = min(1.0, up / down) * 0.92  # of the input Nyquist; leaves a transition band
    taps = int(math.ceil(half_width / cutoff))
    phases = np.arange(up)[:, None] * down % up / up  # fractional input position per phase
    dist = phases + taps - 1 - np.arange(2 * taps)[None, :]
    window = np.kaiser(2 * taps + 1, 8.0)
    beta_index = np.clip(np.round(dist + taps).astype(np.int64), 0, 2 * taps)
    return cutoff * np.sinc(cutoff * dist) * window[beta_index], taps


def resample(samples: np.ndarray, src_rate: int, dst_rate: int, half_width: int = 12) -> np.ndarray:
    """Band-limited (Kaiser-windowed sinc, polyphase) resampling of float samples."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32)
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    bank, taps = _polyphase(up, down, half_width)
    n_out = len(samples) * up // down
    n = np.arange(n_out)
    base = n * down // up
    padded = np.concatenate([np.zeros(taps), samples.astype(np.float64), np.zeros(taps + 1)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * taps)
    out = np.einsum("ij,ij->i", windows[base + 1], bank[n % up])
    return out.astype(np.float32)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Signed 16-bit PCM bytes to float samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples to signed 16-bit little-endian PCM, clipping."""
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def level_dbfs(pcm: bytes) -> float:
    """RMS level of signed 16-bit PCM in dB relative to full scale (-120 for silence)."""
    if not pcm:
        return -120.0
    x = pcm16_to_float(pcm).astype(np.float64)
    rms = float(np.sqrt(np.mean(x * x)))
    return 20.0 * math.log10(rms) if rms > 1e-6 else -120.0


def read_wav(source: Path | bytes) -> tuple[np.ndarray, int]:
    """Read a mono or stereo 16-bit WAV (path or bytes) as float mono samples and rate."""
    handle = wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    with handle:
        if handle.getsampwidth() != 2:
            raise ValueError("only 16-bit WAV files are supported")
        frames = handle.readframes(handle.getnframes())
        channels, rate = handle.getnchannels(), handle.getframerate()
    samples = pcm16_to_float(frames)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def wav_to_pcm8k(source: Path | bytes) -> bytes:
    """Read a WAV and return it as 8 kHz signed 16-bit PCM."""
    samples, rate = read_wav(source)
    return float_to_pcm16(resample(samples, rate, 8000))


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> None:
    """Write signed 16-bit mono PCM as a WAV file."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm)


def silence(ms: int, rate: int = 8000) -> bytes:
    """Digital silence of the given length as 16-bit PCM."""
    return b"\x00\x00" * (rate * ms // 1000)


def frames_of(pcm: bytes, frame_bytes: int = 320) -> list[bytes]:
    """Cut PCM into fixed-size frames, zero-padding the last one."""
    out = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if out and len(out[-1]) < frame_bytes:
        out[-1] = out[-1] + b"\x00" * (frame_bytes - len(out[-1]))
    return out
