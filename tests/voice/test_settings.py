"""Settings from the environment: defaults, validation with a fix in the message, documented keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice.settings import ENV_KEYS, Settings, SettingsError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "voice.md"


def test_defaults() -> None:
    s = Settings.from_env({"SERVICE_TOKEN": "hunter2-token"})
    assert (s.http_port, s.audiosocket_port, s.rasa_url, s.webapp_url) == (
        8081, 9092, "http://127.0.0.1:5005", "http://127.0.0.1:8080")
    assert s.tts_voice == "sit/cmn-latn-pinyin"
    assert "hunter2" not in repr(s) and "hunter2" not in f"{s.service_token}"
    assert s.service_token.reveal() == "hunter2-token"


def test_http_handoff_needs_the_service_token() -> None:
    with pytest.raises(SettingsError, match="SERVICE_TOKEN"):
        Settings.from_env({})
    assert Settings.from_env({"VOICE_HANDOFF": "local"}).handoff_backend == "local"


@pytest.mark.parametrize(("key", "value", "named"), [
    ("VOICE_HTTP_PORT", "eighty", "VOICE_HTTP_PORT"),
    ("RASA_URL", "localhost:5005", "RASA_URL"),
    ("VOICE_HANDOFF_QUEUE", "a;b", "VOICE_HANDOFF_QUEUE"),
    ("VOICE_GRAMMAR_FILE", "/nonexistent/phrases.txt", "VOICE_GRAMMAR_FILE"),
])
def test_bad_values_name_the_key_to_fix(key: str, value: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"VOICE_HANDOFF": "local", key: value})


def test_grammar_file_is_read(tmp_path: Path) -> None:
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("# 知识库词表\n社保卡挂失\n\n养老保险\n", encoding="utf-8")
    s = Settings.from_env({"VOICE_HANDOFF": "local", "VOICE_GRAMMAR_FILE": str(phrases)})
    assert s.open_grammar == ("社保卡挂失", "养老保险")


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [key for key in ENV_KEYS if f"`{key}`" not in text]
    assert not missing, f"docs/voice.md does not document {missing}"
