"""The hand-off contract (common/handoff.py) is the one every side speaks, with the queue names in one place."""
from __future__ import annotations

from pathlib import Path

import yaml

from common.handoff import DEFAULT_QUEUE, QUEUE_BY_AREA, QUEUES, HandoffReply, HandoffRequest, HandoffRequestError
from voice.engines.desk import HandoffTicket, TranscriptLine
from webapp.auth import DEMO_AGENTS

ROOT = Path(__file__).resolve().parents[2]


def test_every_queue_name_anywhere_is_one_of_the_contracts() -> None:
    assert set(QUEUE_BY_AREA.values()) <= set(QUEUES) and DEFAULT_QUEUE in QUEUES
    assert all(set(queues) <= set(QUEUES) for *_, queues in DEMO_AGENTS)
    api = yaml.safe_load((ROOT / "webapp" / "openapi.yaml").read_text(encoding="utf-8"))
    described = [op["requestBody"]["content"]["application/json"]["schema"]["properties"]["queue"]["enum"]
                 for path in api["paths"].values() for op in path.values()
                 if isinstance(op, dict) and "queue" in str(op.get("requestBody", ""))]
    assert described and all(enum == list(QUEUES) for enum in described)


def test_the_web_app_reads_any_body_leniently_but_needs_a_conversation() -> None:
    asked = HandoffRequest.from_json({"conversation_id": "c-1", "queue": "没有这个队列", "channel": "fax",
                                      "slots": "not a dict", "transcript": [{"role": "caller", "text": "喂"}, "junk"]})
    assert (asked.queue, asked.channel, asked.slots) == (DEFAULT_QUEUE, "web", {})
    assert asked.transcript == ({"role": "caller", "text": "喂"},)
    for body in (None, [], {}, {"conversation_id": ""}, {"conversation_id": "x" * 65}, {"conversation_id": 7}):
        try:
            HandoffRequest.from_json(body)
        except HandoffRequestError:
            continue
        raise AssertionError(f"accepted {body!r}")


def test_the_phone_ticket_is_a_masked_contract_request() -> None:
    ticket = HandoffTicket("call-1", "caller_pressed_0", "来电人说 13812345678", {"phone": "13812345678"},
                           (TranscriptLine("caller", "我的电话13812345678", 1.0),))
    body = ticket.to_json()
    assert HandoffRequest.from_json(body) == ticket.request()
    assert body["channel"] == "phone" and body["queue"] == DEFAULT_QUEUE
    assert "13812345678" not in str(body)


def test_a_reply_round_trips_and_fills_what_an_older_web_app_left_out() -> None:
    reply = HandoffReply(status="queued", queue="养老", message="请稍候", id=3, position=2)
    assert HandoffReply.from_json(reply.to_json()) == reply
    assert HandoffReply.from_json({}, queue="失业") == HandoffReply(status="queued", queue="失业", message="")
