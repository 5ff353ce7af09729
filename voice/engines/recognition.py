"""Vosk speech recognition: model resolution, one model per process, one recogniser per call."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Protocol

from voice.settings import REPO_ROOT

MANDARIN_MODEL_NAMES = ("vosk-model-small-cn-0.22", "vosk-model-cn-0.22", "vosk-model-cn-kaldi-multicn-0.15")
MODEL_DIRS = (REPO_ROOT / "var" / "models", Path("/usr/share/vosk"), Path.home() / ".cache" / "vosk", Path("/opt/vosk"))
DOWNLOAD_HINT = "run scripts/voice/download_model.sh (make voice-model) on a machine with internet"


class ModelMissing(RuntimeError):
    """No usable Vosk model; the message says how to get one."""


def is_model_dir(path: Path) -> bool:
    """True when the folder looks like an unpacked Vosk model (am/ and conf/ inside)."""
    return (path / "am").is_dir() and (path / "conf").is_dir()


def resolve_model_path(configured: str = "", search_dirs: tuple[Path, ...] = MODEL_DIRS) -> Path:
    """The configured model folder, else the first Mandarin model in the standard Vosk places."""
    if configured:
        path = Path(configured).expanduser()
        if not is_model_dir(path):
            raise ModelMissing(
                f"VOSK_MODEL_PATH={configured} is not an unpacked Vosk model folder (with am/ and conf/): "
                f"fix the path, or unset it and {DOWNLOAD_HINT}."
            )
        return path
    for folder in search_dirs:
        for name in MANDARIN_MODEL_NAMES:
            if is_model_dir(folder / name):
                return folder / name
        if folder.is_dir():
            for candidate in sorted(folder.glob("vosk-model*-cn*")):
                if is_model_dir(candidate):
                    return candidate
    raise ModelMissing(
        f"No Mandarin Vosk model found in {', '.join(str(d) for d in search_dirs)}: "
        f"{DOWNLOAD_HINT}, or set VOSK_MODEL_PATH to an unpacked model folder."
    )


class CallRecognizer(Protocol):
    """A streaming recogniser for one call; its methods block and run off the event loop."""

    def accept(self, pcm: bytes) -> None:
        """Feed 8 kHz signed 16-bit PCM."""

    def partial(self) -> str:
        """The current partial hypothesis."""

    def finish(self) -> tuple[str, float]:
        """End the utterance: final text and mean word confidence; ready for the next one."""

    def reset(self) -> None:
        """Drop the current utterance."""


class RecognizerFactory(Protocol):
    """Makes a recogniser for one call, optionally constrained to a phrase list."""

    def create(self, grammar: tuple[str, ...] = ()) -> CallRecognizer:
        """A new recogniser (blocking: grammars compile)."""


class VoskRecognizer:
    """Vosk's KaldiRecognizer behind the CallRecognizer interface."""

    def __init__(self, model: object, grammar_json: str | None, sample_rate: int = 8000) -> None:
        import vosk

        if grammar_json:
            self._rec = vosk.KaldiRecognizer(model, sample_rate, grammar_json)
        else:
            self._rec = vosk.KaldiRecognizer(model, sample_rate)
        self._rec.SetWords(True)

    def accept(self, pcm: bytes) -> None:
        """Feed audio; Vosk's own endpointing is ignored (ours is tuned per prompt)."""
        self._rec.AcceptWaveform(pcm)

    def partial(self) -> str:
        """The current partial text."""
        return json.loads(self._rec.PartialResult()).get("partial", "")

    def finish(self) -> tuple[str, float]:
        """Final text and the mean confidence of its words."""
        result = json.loads(self._rec.FinalResult())
        words = [w for w in result.get("result", []) if w.get("word") != "[unk]"]
        text = " ".join(w["word"] for w in words) if words else result.get("text", "")
        if text == "[unk]":
            text = ""
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return text.strip(), confidence

    def reset(self) -> None:
        """Forget the current utterance."""
        self._rec.Reset()


class VoskModel:
    """One loaded Vosk model per process, shared by every call's recogniser."""

    def __init__(self, path: Path) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self.path = path
        self._model = vosk.Model(str(path))
        self._lock = threading.Lock()
        self._known: dict[str, bool] = {}

    def knows(self, word: str) -> bool:
        """True when the word is in the model's vocabulary (grammars may only use those)."""
        with self._lock:
            if word not in self._known:
                self._known[word] = self._model.vosk_model_find_word(word) >= 0
            return self._known[word]

    def grammar_json(self, phrases: tuple[str, ...]) -> str | None:
        """A Vosk grammar of the phrases the model can spell, plus [unk] when it has it."""
        kept: list[str] = []
        for phrase in phrases:
            words = phrase.split()
            if words and all(self.knows(w) for w in words):
                kept.append(phrase)
            elif not phrase.isascii() and all(self.knows(ch) for ch in phrase.replace(" ", "")):
                kept.append(" ".join(phrase.replace(" ", "")))  # Chinese: spell by character
        if not kept:
            return None
        if self.knows("[unk]"):
            kept.append("[unk]")
        return json.dumps(kept, ensure_ascii=False)

    def create(self, grammar: tuple[str, ...] = ()) -> CallRecognizer:
        """A recogniser for one call, constrained to the grammar when the model supports it."""
        return VoskRecognizer(self._model, self.grammar_json(grammar) if grammar else None)
