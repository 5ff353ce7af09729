"""The call store: every call's transcript and outcome, saved to SQLite on hang-up."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.privacy import mask_slots, mask_text
from voice.desk import TranscriptLine

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
    transcript TEXT NOT NULL
)
"""


@dataclass
class CallRecord:
    """What is known about one call; filled in while it runs, saved when it ends."""

    call_id: str = ""
    transport: str = ""
    caller: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    outcome: str = "in_progress"  # answered_by_bot | transferred | completed | caller_hangup
    reason: str = ""
    handoff_status: str = ""  # "", "sent", "failed: ..."
    slots: dict[str, Any] = field(default_factory=dict)
    transcript: list[TranscriptLine] = field(default_factory=list)


class CallStore:
    """A small SQLite table of finished calls (personal numbers masked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)

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
        )
        with self._lock, self._connect() as db:
            db.execute("INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?,?,?,?,?,?)", row)

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
