"""The call store: every call's transcript and outcome, in SQLite from the call's start to its hang-up.

A call's row is written when it starts and again after every turn (`ended_at` 0 while it runs), and for the last
time at hang-up; so a gateway killed mid-call leaves the call's row with what was said so far, and the gateway's
next start closes such rows as `interrupted` (`close_interrupted`; one call store per gateway process).

The caller's number is kept masked (`caller`, 139****5678) and as `caller_key`: an HMAC-SHA256 of the full
normalised number under VOICE_CALLER_KEY_SECRET, so the analytics can count a caller who rings again about
the same thing without ever holding the number (the masked form keeps 7 digits: different callers collide).
A call's start and end are also published as hotline events (common/events.py), the end with its outcome
and caller key; publishing never holds up the call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.events import NullPublisher, Publisher
from common.privacy import mask_slots, mask_text
from common.secrets import Secret
from voice.engines.desk import TranscriptLine

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    transport TEXT NOT NULL,
    caller TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    handoff_status TEXT NOT NULL,
    slots TEXT NOT NULL,
    transcript TEXT NOT NULL,
    caller_key TEXT NOT NULL DEFAULT ''
)
"""
COLUMNS = ("call_id", "transport", "caller", "started_at", "ended_at", "outcome", "reason", "handoff_status", "slots",
           "transcript", "caller_key")
# columns added since the table was first created: (name, definition) for ALTER TABLE on an existing store
MIGRATIONS = (("caller_key", "TEXT NOT NULL DEFAULT ''"),)
MIN_CALLER_DIGITS = 5  # fewer digits (withheld, "anonymous", an extension) identify nobody: no key


def normalise_number(number: str) -> str:
    """The caller's number as digits, without the country code 86 (so +86 139…, 0086139… and 139… are one caller)."""
    digits = re.sub(r"\D", "", number or "")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13 and digits[2] == "1":  # 86 + an 11-digit mobile number
        digits = digits[2:]
    return digits


def caller_key(number: str, secret: Secret | str) -> str:
    """HMAC-SHA256 (hex) of the normalised number under the secret; "" when the number identifies nobody."""
    digits = normalise_number(number)
    key = secret.reveal() if isinstance(secret, Secret) else str(secret)
    if len(digits) < MIN_CALLER_DIGITS or not key:
        return ""
    return hmac.new(key.encode("utf-8"), b"caller:" + digits.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass
class CallRecord:
    """What is known about one call; filled in while it runs, saved when it ends."""

    call_id: str = ""
    transport: str = ""
    caller: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    outcome: str = "in_progress"  # answered_by_bot | transferred | completed | caller_hangup | interrupted
    reason: str = ""
    handoff_status: str = ""  # "", "sent", "failed: ..."
    caller_key: str = ""  # set by the store from `caller` (see caller_key)
    slots: dict[str, Any] = field(default_factory=dict)
    transcript: list[TranscriptLine] = field(default_factory=list)


class CallStore:
    """A small SQLite table of finished calls (personal numbers masked, the caller keyed), and their events."""

    def __init__(self, path: Path, caller_key_secret: Secret | str = "", events: Publisher | None = None) -> None:
        self.path = path
        self.secret = Secret(caller_key_secret)
        self.events: Publisher = events or NullPublisher()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
            for name, definition in MIGRATIONS:  # a store written by an older gateway
                if name not in have:
                    db.execute(f"ALTER TABLE calls ADD COLUMN {name} {definition}")

    def key_of(self, record: CallRecord) -> str:
        """The record's caller key (computed once from its raw number, which stays in memory only)."""
        if not record.caller_key:
            record.caller_key = caller_key(record.caller, self.secret)
        return record.caller_key

    def started(self, record: CallRecord) -> None:
        """Publish call_started (never blocks, never raises)."""
        self.events.publish("call_started", record.call_id, {
            "call_id": record.call_id, "transport": record.transport, "caller_key": self.key_of(record),
            "started_at": record.started_at}, at=record.started_at or None)

    def ended(self, record: CallRecord) -> None:
        """Publish call_ended with what the analytics keep of the call (the same as the saved row, masked)."""
        name = record.slots.get("person_name")
        names = (str(name),) if name and "*" not in str(name) else ()
        self.events.publish("call_ended", record.call_id, {
            "call_id": record.call_id, "transport": record.transport, "caller_key": self.key_of(record),
            "started_at": record.started_at, "ended_at": record.ended_at, "outcome": record.outcome,
            "reason": mask_text(record.reason, names), "handoff_status": mask_text(record.handoff_status, names),
            "turns": len(record.transcript)}, at=record.ended_at or None)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def save(self, record: CallRecord) -> None:
        """Insert or replace the call (blocking: call it from a thread)."""
        name = record.slots.get("person_name")
        names = (str(name),) if name and "*" not in str(name) else ()
        row = (
            record.call_id, record.transport, mask_text(record.caller), record.started_at,
            record.ended_at, record.outcome, mask_text(record.reason, names), mask_text(record.handoff_status, names),
            json.dumps(mask_slots(record.slots), ensure_ascii=False),
            json.dumps([{"role": t.role, "text": mask_text(t.text, names), "ts": t.ts} for t in record.transcript],
                       ensure_ascii=False),
            self.key_of(record),
        )
        with self._lock, self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO calls ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})", row)

    def close_interrupted(self, now: float) -> list[str]:
        """Close the calls a stopped gateway left running (ended_at 0) as `interrupted` at `now`, publish their
        call_ended, and return their ids. Called once at the gateway's start, before it takes calls."""
        with self._lock, self._connect() as db:
            rows = db.execute("SELECT call_id, transport, started_at, outcome, handoff_status, transcript, caller_key "
                              "FROM calls WHERE ended_at = 0").fetchall()
            db.execute("UPDATE calls SET ended_at = ?, outcome = 'interrupted', reason = 'gateway_stopped' "
                       "WHERE ended_at = 0", (now,))
        for call_id, transport, started_at, _outcome, handoff_status, transcript, key in rows:
            self.events.publish("call_ended", call_id, {
                "call_id": call_id, "transport": transport, "caller_key": key, "started_at": started_at,
                "ended_at": now, "outcome": "interrupted", "reason": "gateway_stopped",
                "handoff_status": handoff_status, "turns": len(json.loads(transcript or "[]"))}, at=now)
        return [r[0] for r in rows]

    def load(self, call_id: str) -> dict[str, Any] | None:
        """One saved call as a dict, or None."""
        with self._lock, self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["slots"] = json.loads(out["slots"])
        out["transcript"] = json.loads(out["transcript"])
        return out
