"""The durable outbox of common/events.py: a journal per process that a restarted process delivers from.

A "crash" is real here: a child process publishes (its broker down, or failing from some point on), is killed
with SIGKILL, and a new publisher in this process delivers what the dead one had not, once, to a real SQLite
events table. Also: a torn last line, corrupt and unreadable journals, a folder that cannot be written, the cap,
compaction, replicas side by side, masking, and the cost of journaling (printed: run with -s to see it).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.events import (
    DEFAULT_OUTBOX_DIR,
    EventPublisher,
    EventSettings,
    Journal,
    hotline_event,
    outbox_dir,
    read_journal,
)

ROOT = Path(__file__).resolve().parents[2]
RAW_PHONE, RAW_ID = "13912345678", "370102199003071238"

# A service process: publishes `delivered` events with the broker up (waits until they are in), then
# `undelivered` with it down, prints the events' ids and waits to be killed.
CHILD = """
import json, sys, time
from common.events import EventPublisher, EventSettings, transport_for

url, folder, delivered, undelivered = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
settings, up = EventSettings(url=url), [True]


class Gate:
    def __init__(self):
        self.inner = transport_for(settings)

    def send(self, events):
        if not up[0]:
            raise ConnectionError("broker down")
        self.inner.send(events)

    def close(self):
        self.inner.close()


pub = EventPublisher.for_settings(settings, name="webapp", journal_dir=__import__("pathlib").Path(folder),
                                  retry_seconds=(60.0, 60.0))
pub._connect = Gate
ids = []
for i in range(delivered + undelivered):
    if i == delivered:
        assert pub.flush(10)
        up[0] = False
    ids.append(pub.publish("handoff_queued", f"c{i}", {"id": i, "reason": f"请回电{sys.argv[5]}"})["id"])
print(json.dumps(ids), flush=True)
time.sleep(60)
"""


def crash(url: str, folder: Path, delivered: int, undelivered: int) -> list[str]:
    """Run a service process that publishes, then kill it with SIGKILL; the ids it published, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(folder), str(delivered), str(undelivered), RAW_PHONE],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        ids = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    return ids


def rows(db: Path) -> list[dict]:
    """The events table's hotline events, in insertion order."""
    with sqlite3.connect(db) as con:
        return [json.loads(d) for (d,) in con.execute("SELECT data FROM events ORDER BY id")]


def restart(db: Path, folder: Path, **kwargs) -> EventPublisher:
    """The next process of the same kind, publishing to the same table."""
    pub = EventPublisher.for_settings(EventSettings(url=f"sqlite:///{db}"), name="webapp", journal_dir=folder, **kwargs)
    assert isinstance(pub, EventPublisher)
    return pub


def journals(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


class Memory:
    """An in-memory broker that can be down."""

    def __init__(self, up: bool = True) -> None:
        self.up, self.got = up, []

    def send(self, events: list[dict]) -> None:
        if not self.up:
            raise ConnectionError("down")
        self.got += events

    def close(self) -> None:
        pass


def test_what_a_killed_process_had_not_delivered_is_delivered_once_by_the_next(tmp_path: Path):
    db, folder = tmp_path / "rasa_events.db", tmp_path / "outbox"
    ids = crash(f"sqlite:///{db}", folder, delivered=0, undelivered=5)
    (journal,) = journals(folder)
    text = journal.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 5 and RAW_PHONE not in text and "139****5678" in text  # masked on disk
    pub = restart(db, folder)
    assert pub.flush(10)
    assert [e["id"] for e in rows(db)] == ids  # each once, in order
    assert RAW_PHONE not in json.dumps(rows(db), ensure_ascii=False)
    assert journals(folder) == [pub.journal_path]  # the dead process's files are gone
    pub.close()
    assert list(folder.iterdir()) == []  # all delivered: a clean stop leaves nothing


def test_what_was_delivered_before_the_crash_is_not_delivered_again(tmp_path: Path):
    db, folder = tmp_path / "rasa_events.db", tmp_path / "outbox"
    ids = crash(f"sqlite:///{db}", folder, delivered=3, undelivered=4)
    assert [e["id"] for e in rows(db)] == ids[:3]
    pub = restart(db, folder)
    assert pub.flush(10) and pub.delivered == 4
    assert [e["id"] for e in rows(db)] == ids  # the first three once, not again
    pub.close()
    pub = restart(db, folder)  # a second restart finds nothing left to deliver
    assert pub.flush(10) and pub.delivered == 0 and len(rows(db)) == 7
    pub.close()


def test_a_torn_last_line_and_a_corrupt_line_are_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    db, folder = tmp_path / "rasa_events.db", tmp_path / "outbox"
    ids = crash(f"sqlite:///{db}", folder, delivered=0, undelivered=3)
    (journal,) = journals(folder)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"\x00\xff not json\n" + lines[2] + b'{"event":"hotline","kind":"rat')  # crash mid-write
    pub = restart(db, folder)
    assert pub.flush(10)
    assert [e["id"] for e in rows(db)] == [ids[0], ids[2]]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "torn line" in messages and "1 corrupt lines" in messages
    assert pub.publish("rating", "c9", {"id": 9}) is not None and pub.flush(10) and len(rows(db)) == 3
    pub.close()


def test_an_unreadable_journal_is_logged_and_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    db, folder = tmp_path / "rasa_events.db", tmp_path / "outbox"
    crash(f"sqlite:///{db}", folder, delivered=0, undelivered=2)
    (journal,) = journals(folder)
    unreadable = journal.with_name(journal.name.replace(".jsonl", "0.jsonl"))
    unreadable.mkdir()  # a name that matches but cannot be read as a file
    pub = restart(db, folder)
    assert pub.flush(10) and len(rows(db)) == 2
    assert any("cannot read the journal" in r.getMessage() for r in caplog.records) and unreadable.is_dir()
    pub.close()


def test_a_folder_that_cannot_be_written_leaves_publishing_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    broker = Memory()
    pub = EventPublisher(lambda: broker, journal_dir=blocker / "outbox", name="webapp")
    assert pub.journal_path is None and any("cannot keep a journal" in r.getMessage() for r in caplog.records)
    assert pub.publish("rating", "c", {"id": 1}) is not None and pub.flush(5) and len(broker.got) == 1
    pub.close()


def test_a_failing_journal_write_is_logged_and_the_event_still_delivered(tmp_path: Path, monkeypatch,
                                                                         caplog: pytest.LogCaptureFixture):
    broker = Memory()
    pub = EventPublisher(lambda: broker, journal_dir=tmp_path, name="webapp")

    def disk_full(journal: Journal, event: dict) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "append", disk_full)
    for i in range(3):
        assert pub.publish("rating", "c", {"id": i}) is not None
    monkeypatch.undo()
    assert pub.publish("rating", "c", {"id": 3}) is not None
    assert pub.flush(5) and len(broker.got) == 4 and pub.journal_errors == 3
    assert len([r for r in caplog.records if "could not append to the journal" in r.getMessage()]) == 1  # now and then
    pub.close()


def test_the_journal_keeps_the_cap_and_is_compacted_while_the_broker_is_down(tmp_path: Path):
    down = Memory(up=False)
    pub = EventPublisher(lambda: down, outbox_size=3, retry_seconds=(0.02, 0.02), journal_dir=tmp_path, name="voice",
                         compact_bytes=0)
    sent = [pub.publish("call_started", f"call{i}", {"n": i}) for i in range(20)]
    failures = pub.failures
    deadline = time.monotonic() + 5
    while pub.failures < failures + 2 and time.monotonic() < deadline:  # the thread went round at least once more
        time.sleep(0.01)
    assert pub.pending == 3 and pub.dropped == 17
    kept = [json.loads(line) for line in pub.journal_path.read_text(encoding="utf-8").splitlines()]
    assert len(kept) <= 6 and kept[-3:] == sent[-3:]  # the dropped head was cut off
    pub.close(0)  # stopped with events left: the journal stays for the next start
    up = Memory()
    nxt = EventPublisher(lambda: up, outbox_size=3, journal_dir=tmp_path, name="voice")
    assert nxt.flush(5) and up.got == sent[-3:]
    nxt.close()
    assert list(tmp_path.iterdir()) == []


def test_a_delivered_journal_is_compacted_and_its_ack_kept(tmp_path: Path):
    broker = Memory()
    pub = EventPublisher(lambda: broker, journal_dir=tmp_path, name="webapp", compact_bytes=2000)
    for i in range(200):
        pub.publish("rating", f"c{i}", {"id": i, "comment": "很好" * 10})
        if i % 20 == 0:
            assert pub.flush(5)
    assert pub.flush(5) and len(broker.got) == 200
    assert pub.journal_path.stat().st_size < 2000 + 20 * 400  # never much more than the threshold and a burst
    ack = int(pub.journal_path.with_suffix(".ack").read_text().strip())
    assert ack == pub.journal_path.stat().st_size  # everything in the file is delivered
    assert read_journal(pub.journal_path) == []
    pub.close()


def test_replicas_keep_their_own_journals_and_never_adopt_a_live_one(tmp_path: Path):
    down = Memory(up=False)
    a = EventPublisher(lambda: down, retry_seconds=(60.0, 60.0), journal_dir=tmp_path, name="webapp")
    a.publish("rating", "c", {"id": 1})
    b = EventPublisher(lambda: Memory(), journal_dir=tmp_path, name="webapp")
    other_kind = EventPublisher(lambda: Memory(), journal_dir=tmp_path, name="voice")
    assert a.journal_path != b.journal_path and b.pending == 0 and other_kind.pending == 0
    assert len(read_journal(a.journal_path)) == 1
    for pub in (b, other_kind):
        pub.close()
    a.close(0)


def test_the_cost_of_journaling_an_event(tmp_path: Path):
    """Printed figures (pytest -s): publish in memory, with the journal (write, no fsync), and with an fsync added."""
    def per_event_ms(pub: EventPublisher, fsync: bool = False, n: int = 300) -> float:
        fd = os.open(pub.journal_path, os.O_RDONLY) if fsync else None
        times = []
        for i in range(n):
            started = time.perf_counter()
            pub.publish("handoff_queued", f"c{i}", {"id": i, "reason": f"请回电{RAW_PHONE}"})
            if fd is not None:
                os.fsync(fd)
            times.append(time.perf_counter() - started)
        if fd is not None:
            os.close(fd)
        pub.close(0)
        return statistics.median(times) * 1000

    down = Memory(up=False)
    memory = per_event_ms(EventPublisher(lambda: down, retry_seconds=(60.0, 60.0)))
    journaled = per_event_ms(EventPublisher(lambda: down, retry_seconds=(60.0, 60.0), journal_dir=tmp_path / "a"))
    fsynced = per_event_ms(EventPublisher(lambda: down, retry_seconds=(60.0, 60.0), journal_dir=tmp_path / "b"),
                           fsync=True, n=100)
    print(f"\npublish, median per event: in memory {memory:.3f} ms, journaled {journaled:.3f} ms, "
          f"journaled + fsync {fsynced:.3f} ms")
    assert journaled < memory + 1.0  # the journal adds well under a millisecond


def test_a_bad_ack_delivers_the_journal_again_and_the_folder_comes_from_the_environment(tmp_path: Path):
    events = [hotline_event("rating", "c", {"id": i}) for i in range(2)]
    journal = tmp_path / "webapp-x-1-y.jsonl"
    journal.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    for ack in ("99999", "7", "garbage"):  # past the end, inside a line, not a number: at least once
        journal.with_suffix(".ack").write_text(ack)
        assert read_journal(journal) == events
    journal.with_suffix(".ack").write_text(str(journal.stat().st_size))
    assert read_journal(journal) == []
    assert outbox_dir({"HOTLINE_OUTBOX_DIR": str(tmp_path)}) == tmp_path and outbox_dir({}) == DEFAULT_OUTBOX_DIR
    plain = EventPublisher.for_settings(EventSettings(url=f"sqlite:///{tmp_path}/e.db"))  # no name: in memory only
    assert isinstance(plain, EventPublisher) and plain.journal_path is None
    plain.close()
