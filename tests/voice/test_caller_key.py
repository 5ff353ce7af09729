"""The caller key: a keyed hash of the caller's full number, stored with the call and published with its events."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from common.secrets import Secret
from common.settings import SettingsError
from voice.engines.desk import TranscriptLine
from voice.settings import Settings
from voice.store import CallRecord, CallStore, caller_key, normalise_number

SECRET = Secret("a-test-secret-0123456789")


class Events:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, dict]] = []

    def publish(self, kind: str, sender_id: str, data: dict, at: float | None = None) -> dict:
        self.got.append((kind, sender_id, dict(data)))
        return {}


def test_one_number_in_any_spelling_is_one_caller():
    keys = {caller_key(n, SECRET) for n in ("13912345678", "+86 139 1234 5678", "008613912345678", "8613912345678")}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert normalise_number("+86 139-1234-5678") == "13912345678"
    # the masked form (139****5678) is the same for these two callers; their keys are not
    assert caller_key("13911115678", SECRET) != caller_key("13912345678", SECRET)
    # another secret, another key: a key means nothing without the secret
    assert caller_key("13912345678", Secret("another-secret-0123456")) != caller_key("13912345678", SECRET)
    assert caller_key("", SECRET) == caller_key("anonymous", SECRET) == caller_key("1234", SECRET) == ""
    assert "13912345678" not in caller_key("13912345678", SECRET)


OLD_SCHEMA = """CREATE TABLE calls (call_id TEXT PRIMARY KEY, transport TEXT NOT NULL, caller TEXT NOT NULL,
 started_at REAL NOT NULL, ended_at REAL NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, handoff_status TEXT NOT NULL,
 slots TEXT NOT NULL, transcript TEXT NOT NULL)"""


def test_the_store_migrates_keys_saves_and_publishes(tmp_path: Path):
    path = tmp_path / "calls.sqlite3"
    with sqlite3.connect(path) as con:  # a call store written by the gateway before caller keys
        con.execute(OLD_SCHEMA)
        con.execute("INSERT INTO calls VALUES ('old', 'audiosocket', '', 1, 2, 'completed', '', '', '{}', '[]')")
    events = Events()
    store = CallStore(path, SECRET, events)
    assert store.load("old")["caller_key"] == ""  # the old row is kept, with an empty key
    now = time.time()
    record = CallRecord(call_id="k1", transport="media_stream", caller="+8613912345678", started_at=now - 60, ended_at=now,
                        outcome="transferred", reason="caller_pressed_0",
                        transcript=[TranscriptLine("caller", "我的电话13912345678", now - 30)])
    store.started(record)
    store.save(record)
    store.ended(record)
    row = store.load("k1")
    assert row["caller_key"] == caller_key("13912345678", SECRET) and "1391234" not in row["caller"]  # masked
    assert [k for k, _, _ in events.got] == ["call_started", "call_ended"]
    ended = events.got[1][2]
    assert ended["caller_key"] == row["caller_key"] and ended["outcome"] == "transferred" and ended["turns"] == 1
    assert ended["started_at"] == now - 60 and ended["ended_at"] == now
    dump = "\n".join(sqlite3.connect(path).iterdump()) + repr(events.got)
    assert "13912345678" not in dump and "8613912345678" not in dump
    CallStore(path, SECRET)  # opening a migrated store again changes nothing
    assert store.load("k1")["caller_key"] == row["caller_key"]


def test_production_requires_the_caller_key_secret():
    base = {"VOICE_HANDOFF": "local", "APP_ENV": "production", "CHANNEL_TOKEN": "c" * 20, "MEDIA_STREAM_TOKEN": "m" * 20}
    with pytest.raises(SettingsError, match="VOICE_CALLER_KEY_SECRET"):
        Settings.from_env(base)
    with pytest.raises(SettingsError, match="VOICE_CALLER_KEY_SECRET"):
        Settings.from_env({**base, "VOICE_CALLER_KEY_SECRET": "dev-voice-caller-key"})
    assert Settings.from_env({**base, "VOICE_CALLER_KEY_SECRET": "k" * 24}).caller_key_secret == "k" * 24
    dev = Settings.from_env({"VOICE_HANDOFF": "local"})
    assert dev.caller_key_secret.reveal().startswith("dev-") and "dev" not in repr(dev.caller_key_secret)
    assert dev.events.url.startswith("sqlite:///") and Settings().events.url == ""  # constructed: publishes nothing
