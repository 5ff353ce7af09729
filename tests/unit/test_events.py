"""The hotline event publisher (common/events.py): masked events, SQLite and RabbitMQ, never blocking, retried."""
from __future__ import annotations

import json
import socket
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from common.events import (
    EXCHANGE,
    EventPublisher,
    EventSettings,
    NullPublisher,
    hotline_event,
)
from common.settings import SettingsError

RAW_PHONE, RAW_ID = "13912345678", "370102199003071238"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def rabbitmq_reachable() -> bool:
    """Whether a RabbitMQ listens on 127.0.0.1:5672 (it does on the project's machines)."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_conversation_id_is_kept_as_the_sender_id_even_with_a_digit_run():
    cid = "cAb_3701021990123x-Yz0Q8uLmN4p7Rs"  # a random web id can hold 7+ digits in a row (6 in 100,000 do)
    e = hotline_event("rating", cid, {"conversation_id": cid, "comment": f"身份证{RAW_ID}"})
    assert e["sender_id"] == cid and e["data"]["conversation_id"] == cid
    assert RAW_ID not in json.dumps(e, ensure_ascii=False)
    other = hotline_event("rating", "c1", {"conversation_id": f"x{RAW_ID}"})  # not the sender's id: masked as any text
    assert RAW_ID not in json.dumps(other, ensure_ascii=False)


def test_an_event_is_masked_and_carries_an_id():
    e = hotline_event("handoff_queued", "c1", {"reason": f"请回电{RAW_PHONE}，身份证{RAW_ID}", "id": 7}, at=100.0)
    assert e["event"] == "hotline" and e["kind"] == "handoff_queued" and e["sender_id"] == "c1" and e["timestamp"] == 100.0
    assert len(e["id"]) == 32 and e["id"] != hotline_event("rating", "c1", {})["id"]
    text = json.dumps(e, ensure_ascii=False)
    assert RAW_PHONE not in text and RAW_ID not in text and "139****5678" in text and e["data"]["id"] == 7
    with pytest.raises(ValueError):
        hotline_event("no_such_kind", "c1", {})


def test_settings_select_the_place_by_url():
    assert EventSettings.from_env({}).url == "" and isinstance(EventPublisher.for_settings(EventSettings()), NullPublisher)
    s = EventSettings.from_env({"RASA_EVENTS_URL": AMQP_URL, "RASA_EVENTS_QUEUE": "rasa_production_events"})
    assert s.queue == "rasa_production_events"
    with pytest.raises(SettingsError, match="RASA_EVENTS_URL"):
        EventSettings.from_env({"RASA_EVENTS_URL": "http://x"})
    with pytest.raises(SettingsError, match="RASA_EVENTS_QUEUE"):
        EventSettings.from_env({"RASA_EVENTS_QUEUE": "a queue; drop"})


def test_publishing_to_sqlite_writes_rasas_events_table(tmp_path: Path):
    db = tmp_path / "rasa_events.db"
    # the table as Rasa 3.6's SQLEventBroker creates it, with one Rasa event in it already
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE events (id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255), data TEXT)")
        con.execute("INSERT INTO events (sender_id, data) VALUES ('c1', '{\"event\": \"user\"}')")
    pub = EventPublisher.for_settings(EventSettings(url=f"sqlite:///{db}"))
    sent = [pub.publish("handoff_queued", "c1", {"id": 1, "reason": f"电话{RAW_PHONE}"}), pub.publish("rating", "c1", {"id": 2})]
    assert pub.flush(10) and pub.delivered == 2
    pub.close()
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT id, sender_id, data FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3] and rows[1][1] == "c1"
    assert [json.loads(r[2]) for r in rows[1:]] == sent
    assert RAW_PHONE not in rows[1][2]


class Flaky:
    """A transport that fails the first `failures` connections, then keeps what it is sent."""

    def __init__(self, failures: int) -> None:
        self.failures, self.connects, self.got = failures, 0, []

    def __call__(self) -> Flaky:
        self.connects += 1
        if self.connects <= self.failures:
            raise ConnectionRefusedError(f"broker down (password secret, caller {RAW_PHONE})")
        return self

    def send(self, events: list[dict]) -> None:
        self.got += events

    def close(self) -> None:
        pass


def test_a_failed_delivery_is_logged_masked_and_retried_in_order(caplog: pytest.LogCaptureFixture):
    broker = Flaky(failures=2)
    pub = EventPublisher(broker, retry_seconds=(0.05, 0.1))
    started = time.perf_counter()
    sent = [pub.publish("call_started", f"call{i}", {"n": i}) for i in range(5)]
    assert time.perf_counter() - started < 0.5  # publishing returned at once although the broker was down
    assert pub.flush(10)
    assert broker.got == sent and pub.failures == 2 and pub.delivered == 5 and pub.pending == 0
    warnings = [r.getMessage() for r in caplog.records if "could not publish" in r.getMessage()]
    assert len(warnings) == 2 and all(RAW_PHONE not in w for w in warnings)
    pub.close()


def test_the_outbox_is_bounded_and_drops_the_oldest():
    broker = Flaky(failures=10 ** 6)
    pub = EventPublisher(broker, outbox_size=3, retry_seconds=(5.0, 5.0))
    for i in range(5):
        pub.publish("rating", "c", {"n": i})
    assert not pub.flush(0.3)
    assert pub.pending == 3 and pub.dropped == 2
    pub.close(0)


def test_an_unreachable_database_does_not_raise(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pub = EventPublisher.for_settings(EventSettings(url=f"sqlite:///{blocker}/sub/events.db"), retry_seconds=(0.05, 0.05))
    assert pub.publish("rating", "c", {"id": 1}) is not None  # the folder cannot be made: delivery fails, publish does not
    assert not pub.flush(0.3) and pub.failures >= 1 and pub.pending == 1
    pub.close(0)


@pytest.mark.skipif(not rabbitmq_reachable(), reason="RabbitMQ is not listening on 127.0.0.1:5672")
def test_publishing_to_rabbitmq_lands_in_rasas_queue():
    import pika

    queue = f"test_hotline_{uuid.uuid4().hex[:8]}"
    pub = EventPublisher.for_settings(EventSettings(url=AMQP_URL, queue=queue))
    try:
        sent = [pub.publish("handoff_claimed", "c9", {"id": 9, "reason": f"电话{RAW_PHONE}"}), pub.publish("call_ended", "k1", {})]
        assert pub.flush(10) and pub.delivered == 2
        con = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = con.channel()
        got = []
        for _ in range(2):
            method, props, body = ch.basic_get(queue=queue, auto_ack=True)
            assert method is not None and props.delivery_mode == 2  # persistent, like Rasa's pika broker
            got.append(json.loads(body))
        assert got == sent and RAW_PHONE not in json.dumps(got, ensure_ascii=False)
        # the queue is bound to Rasa's fanout exchange: what Rasa's pika broker publishes lands here too
        ch.basic_publish(exchange=EXCHANGE, routing_key="", body=b'{"event": "user", "sender_id": "c9"}')
        time.sleep(0.2)
        method, _props, body = ch.basic_get(queue=queue, auto_ack=True)
        assert method is not None and json.loads(body)["event"] == "user"
        ch.queue_delete(queue=queue)
        con.close()
    finally:
        pub.close(0)


def test_a_caller_key_passes_unmasked_but_a_number_in_its_place_does_not():
    key = "5d1180b466d73617800c99dbfb42ca1119afcb2865e0bf66fea2b59439ed28d2"  # digit runs that look like numbers
    assert hotline_event("call_ended", "k1", {"caller_key": key})["data"]["caller_key"] == key
    assert RAW_PHONE not in json.dumps(hotline_event("call_ended", "k1", {"caller_key": RAW_PHONE}))
