"""Speech synthesis: an engine interface, the pyttsx3/espeak-ng engine, and a per-text cache."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import wave
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from voice.audio import float_to_pcm16, read_wav, resample


class SpeechUnavailable(RuntimeError):
    """The speech engine cannot start; the message says what to install or set."""


class SpeechEngine(Protocol):
    """Blocking text-to-speech: float samples and their rate. Called from one worker thread."""

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Speak text into samples."""


class Pyttsx3Engine:
    """pyttsx3 driving espeak-ng with a Mandarin voice, writing to temporary WAV files."""

    def __init__(self, voice: str = "sit/cmn-latn-pinyin", rate: int = 170) -> None:
        self.voice = voice
        self.rate = rate
        self._engine = None
        self._dir = Path(tempfile.mkdtemp(prefix="voice-tts-"))
        self._count = 0

    def start(self) -> None:
        """Create the pyttsx3 engine and check the voice exists (call in the worker thread)."""
        try:
            import pyttsx3

            engine = pyttsx3.init("espeak")
        except Exception as exc:  # pyttsx3 raises bare errors when libespeak-ng is missing
            raise SpeechUnavailable(
                f"pyttsx3 cannot start espeak-ng ({exc}): run scripts/voice/setup_system.sh "
                "(apt-get install espeak-ng libespeak-ng1)."
            ) from exc
        voices = {v.id for v in engine.getProperty("voices")}
        if self.voice not in voices:
            raise SpeechUnavailable(
                f"espeak-ng has no voice {self.voice!r}: set VOICE_TTS_VOICE to an installed voice "
                "(sit/cmn-latn-pinyin on Debian) or run scripts/voice/setup_system.sh."
            )
        import pyttsx3.drivers.espeak as espeak_driver

        # The driver prints "Audio saved to …" for every file; keep the gateway's output to its logs.
        espeak_driver.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]
        engine.setProperty("voice", self.voice)
        engine.setProperty("rate", self.rate)
        self._engine = engine

    def synthesize(self, text: str, attempts: int = 3) -> tuple[np.ndarray, int]:
        """Write the text to a WAV with pyttsx3 and read it back.

        pyttsx3's loop occasionally drops a queued file under load; the engine is then started
        afresh and the text tried again before the caller hears an error.
        """
        for attempt in range(1, attempts + 1):
            if self._engine is None:
                self.start()
            self._count += 1
            path = self._dir / f"{self._count}.wav"
            self._engine.save_to_file(text, str(path))
            self._engine.runAndWait()
            try:
                samples, rate = _read_when_complete(path, timeout_s=5.0)
            except SpeechUnavailable:
                if attempt == attempts:
                    raise
                self._engine = None  # a fresh engine for the next attempt
                continue
            path.unlink(missing_ok=True)
            return samples, rate
        raise SpeechUnavailable("espeak-ng produced no audio")


def _read_when_complete(path: Path, timeout_s: float = 10.0) -> tuple[np.ndarray, int]:
    """runAndWait() can return before espeak-ng has finished the file: wait until it is whole."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            size = os.path.getsize(path)
            with wave.open(str(path)) as handle:
                expected = 44 + handle.getnframes() * handle.getsampwidth() * handle.getnchannels()
            if size >= expected and size > 44:
                return read_wav(path)
        except (FileNotFoundError, EOFError, wave.Error):
            pass
        time.sleep(0.002)
    raise SpeechUnavailable(f"espeak-ng did not write {path} within {timeout_s:.0f} s.")


class SpeechCache:
    """Synthesises 8 kHz PCM off the event loop, once per distinct text."""

    def __init__(self, engine: SpeechEngine, max_entries: int = 512, sample_rate: int = 8000) -> None:
        self.engine = engine
        self.sample_rate = sample_rate
        self.max_entries = max_entries
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self.hits = 0
        self.misses = 0

    def _render(self, text: str) -> bytes:
        samples, rate = self.engine.synthesize(text)
        return float_to_pcm16(resample(samples, rate, self.sample_rate))

    async def speak(self, text: str) -> bytes:
        """8 kHz signed 16-bit PCM for the text, from the cache when it was said before."""
        if text in self._cache:
            self.hits += 1
            self._cache.move_to_end(text)
            return self._cache[text]
        self.misses += 1
        pcm = await asyncio.get_running_loop().run_in_executor(self._executor, self._render, text)
        self._cache[text] = pcm
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return pcm

    def start(self) -> None:
        """Start the engine in its worker thread now, so a broken install fails at start-up."""
        start = getattr(self.engine, "start", None)
        if start is not None:
            self._executor.submit(start).result()

    async def warm(self, texts: list[str]) -> None:
        """Synthesise fixed prompts ahead of the first call; fails early if speech is broken."""
        for text in texts:
            await self.speak(text)

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
