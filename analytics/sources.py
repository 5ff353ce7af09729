"""Write conversations in the services' own formats, for the traffic simulator and the tests.

Rasa events go into an `events(id, sender_id, data)` table exactly as Rasa's SQL event broker writes
them (shape copied from a real run: action_session_start, session_started, user, user_featurization,
action, bot with `custom.kb` / `custom.handoff`, slot, action_listen); hand-offs, ratings and agents'
replies go into the web app's tables through webapp/store.py's models; calls into the voice gateway's
call store table. Like the real services, the web app's and the gateway's changes are also published as
hotline events (common/events.py) into the same events table, built by the services' own code
(`webapp.handoffs.handoff_event`, `webapp.ratings.rating_event`, `webapp.workorders.workorder_event`, and the
gateway's `voice.store.CallStore.started`/`ended`, whose caller key is `voice.store.caller_key`). The analytics
store is then filled by the ordinary ingestion (analytics.ingest), from the events, the pulls, or both.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from common.events import hotline_event
from common.privacy import mask_text
from voice.engines.desk import TranscriptLine
from voice.store import COLUMNS as CALL_COLUMNS
from voice.store import CallRecord, CallStore
from webapp.handoffs import handoff_event
from webapp.ratings import rating_event
from webapp.store import Handoff, Message, Rating, Store, WorkOrder
from webapp.workorders import workorder_event

EVENTS_SCHEMA = "CREATE TABLE IF NOT EXISTS events (id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"
# the key of the simulated callers' numbers (VOICE_CALLER_KEY_SECRET of the simulated gateway; the numbers are made up)
SIMULATED_CALLER_KEY_SECRET = "simulated-voice-caller-key"
META = {"model_id": "simulated", "assistant_id": "jinan-shebao-assistant"}
HELPFUL_BUTTONS = [{"title": "有帮助", "payload": "/feedback_helpful"}, {"title": "没帮助", "payload": "/feedback_unhelpful"}]
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


def utc_naive(ts: float) -> dt.datetime:
    """Epoch seconds as the web app stores times: UTC without tzinfo."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None)


class SourceWriter:
    """Buffers source rows and writes them in bulk (`flush`) to the three source databases; the web app's and the
    gateway's changes are published as hotline events into the events table as well (`publish`)."""

    def __init__(self, events_path: Path, webapp_url: str, calls_path: Path,
                 caller_key_secret: str = SIMULATED_CALLER_KEY_SECRET) -> None:
        self.events_path, self.calls_path = Path(events_path), Path(calls_path)
        for path in (self.events_path, self.calls_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.events_path) as con:
            con.execute(EVENTS_SCHEMA)
        self.gateway = CallStore(self.calls_path, caller_key_secret, events=self)  # the call store's table, keys, events
        self.webapp = Store(webapp_url)
        self._events: list[tuple[str, str]] = []
        self._handoffs: list[dict] = []
        self._ratings: list[dict] = []
        self._messages: list[dict] = []
        self._work_orders: list[dict] = []
        self._calls: list[tuple] = []
        # the web app's ids, given here (its events name them): one more than the largest already written
        self._next_id = {model: 1 + self.webapp.call(lambda s, m=model: s.scalar(select(func.max(m.id))) or 0)
                         for model in (Handoff, Rating, WorkOrder)}
        self.events_written = 0  # Rasa's events (counted when buffered; `flush` writes them)
        self.hotline_written = 0  # the web app's and the gateway's events

    def _new_id(self, model: type) -> int:
        given = self._next_id[model]
        self._next_id[model] += 1
        return given

    # ------------------------------------------------------------------ hotline events
    def publish(self, kind: str, sender_id: str, data: Mapping[str, Any], at: float | None = None) -> dict[str, Any]:
        """A hotline event into the events table, as common.events.SQLTransport writes it (masked by hotline_event);
        the gateway's CallStore publishes through this too."""
        event = hotline_event(kind, sender_id, data, at)
        self._events.append((event["sender_id"], json.dumps(event, ensure_ascii=False)))
        self.hotline_written += 1
        return event

    # ------------------------------------------------------------------ Rasa events
    def _event(self, sender: str, event: dict[str, Any]) -> None:
        self._events.append((sender, json.dumps({"sender_id": sender, **event})))
        self.events_written += 1

    def session(self, sender: str, ts: float) -> None:
        """A new Rasa session (action_session_start, session_started, the slots reset, action_listen)."""
        self._event(sender, {"event": "action", "timestamp": ts, "metadata": META, "name": "action_session_start",
                             "policy": None, "confidence": 1.0, "action_text": None, "hide_rule_turn": False})
        self._event(sender, {"event": "session_started", "timestamp": ts + 0.0001, "metadata": META})
        self._event(sender, {"event": "action", "timestamp": ts + 0.0002, "metadata": META, "name": "action_listen",
                             "policy": None, "confidence": None, "action_text": None, "hide_rule_turn": False})

    def user(self, sender: str, ts: float, text: str, intent: str, channel: str = "web", confidence: float = 1.0,
             entities: list | None = None) -> None:
        """A citizen's message as Rasa records it."""
        parse = {"intent": {"name": intent, "confidence": confidence}, "entities": entities or [], "text": text,
                 "message_id": uuid.uuid4().hex, "metadata": {}, "intent_ranking": [{"name": intent, "confidence": confidence}]}
        self._event(sender, {"event": "user", "timestamp": ts, "metadata": META, "text": text, "parse_data": parse,
                             "input_channel": channel, "message_id": parse["message_id"]})
        self._event(sender, {"event": "user_featurization", "timestamp": ts + 0.05, "metadata": META,
                             "use_text_for_featurization": False})

    def action(self, sender: str, ts: float, name: str) -> None:
        """An action the bot ran."""
        self._event(sender, {"event": "action", "timestamp": ts, "metadata": META, "name": name, "policy": "RulePolicy",
                             "confidence": 1.0, "action_text": None, "hide_rule_turn": True})

    def bot(self, sender: str, ts: float, text: str, custom: dict | None = None, buttons: list | None = None) -> None:
        """A bot message, with the custom payload the actions attach."""
        data = {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None, "image": None, "custom": custom}
        self._event(sender, {"event": "bot", "timestamp": ts, "metadata": META, "text": text, "data": data})

    def slot(self, sender: str, ts: float, name: str, value: Any) -> None:
        """A slot set."""
        self._event(sender, {"event": "slot", "timestamp": ts, "metadata": META, "name": name, "value": value})

    def kb_reply(self, sender: str, ts: float, band: str, entry_id: str | None = None, category: str | None = None,
                 score: float = 0.9, suggestions: list[str] | None = None, answer: str = "") -> None:
        """What action_answer_from_kb records for one band (actions/knowledge.py)."""
        self.action(sender, ts, "action_answer_from_kb")
        if band in ("confident", "chosen"):
            kb = {"id": entry_id, "score": score, "band": band, "category": category, "voice_answer": "", "local_review": False}
            self.bot(sender, ts + 0.001, answer or "（知识库答复）", {"kb": kb}, HELPFUL_BUTTONS)
            self.slot(sender, ts + 0.002, "kb_last_entry", entry_id)
            self.slot(sender, ts + 0.003, "failed_turns", 0.0)
        elif band in ("clarify", "unsure"):
            self.bot(sender, ts + 0.001, "我不太确定您问的是哪一项，您是想问：", {"kb": {"band": band, "score": score, "suggestions": suggestions or []}},
                     [{"title": s, "payload": "/ask_question" + json.dumps({"kb_entry": s})} for s in suggestions or []] + [HUMAN_BUTTON])
            self.slot(sender, ts + 0.002, "kb_last_entry", None)
        elif band == "out_of_scope":
            self.bot(sender, ts + 0.001, "抱歉，这个问题不在社保业务范围内，我回答不了。", {"kb": {"band": "out_of_scope", "score": score}})
        else:
            self.bot(sender, ts + 0.001, "抱歉，知识库里没有找到能回答这个问题的内容。", {"kb": {"band": "none", "score": score}}, [HUMAN_BUTTON])
            self.slot(sender, ts + 0.002, "failed_turns", 1.0)
        self.action(sender, ts + 0.004, "action_listen")

    def feedback_reply(self, sender: str, ts: float) -> None:
        """action_feedback_unhelpful's reply."""
        self.action(sender, ts, "action_feedback_unhelpful")
        self.bot(sender, ts + 0.001, "抱歉没能帮到您。您可以换个说法详细描述一下，或者说“转人工”由专家坐席为您解答。", None, [HUMAN_BUTTON])
        self.action(sender, ts + 0.002, "action_listen")

    def utter(self, sender: str, ts: float, name: str, text: str) -> None:
        """A plain response (utter_greet …)."""
        self.action(sender, ts, name)
        self.bot(sender, ts + 0.001, text)
        self.action(sender, ts + 0.002, "action_listen")

    # ------------------------------------------------------------------ hand-offs (Rasa + web app)
    def handoff(self, sender: str, ts: float, channel: str, queue: str, reason: str, claimed_after: float | None = None,
                handled_for: float | None = None, rating: str | None = None, agent_reply: str = "您好，我来帮您查一下。",
                abandoned_after: float | None = None) -> int:
        """action_handoff_to_human's reply and the web app's hand-off row (claimed, resolved, rated as given; or, not
        claimed, closed as abandoned when the citizen left after `abandoned_after` seconds), with its events."""
        hid = self._new_id(Handoff)
        self.action(sender, ts, "action_handoff_to_human")
        self.bot(sender, ts + 0.001, f"正在为您转接{queue}专家坐席，请稍候。",
                 {"handoff": {"queue": queue, "reason": reason, "position": 1, "status": "queued", "id": hid}})
        self.slot(sender, ts + 0.002, "handoff_reason", None)
        self.action(sender, ts + 0.003, "action_listen")
        claimed = ts + claimed_after if claimed_after is not None else None
        resolved = claimed + handled_for if claimed is not None and handled_for is not None else None
        left = ts + abandoned_after if claimed is None and abandoned_after is not None else None
        row = {"id": hid, "conversation_id": sender, "channel": channel, "queue": queue, "priority": 0, "reason": reason,
               "summary": "", "slots": {}, "status": "queued", "agent": None, "created_at": utc_naive(ts),
               "claimed_at": None, "resolved_at": None}
        self.publish("handoff_queued", sender, handoff_event(Handoff(**row)), ts)  # each change as the web app publishes it
        if claimed is not None:
            row.update(status="claimed", agent="agent1", claimed_at=utc_naive(claimed))
            self.publish("handoff_claimed", sender, handoff_event(Handoff(**row)), claimed)
        if resolved is not None:
            row.update(status="resolved", resolved_at=utc_naive(resolved))
            self.publish("handoff_resolved", sender, handoff_event(Handoff(**row)), resolved)
        if left is not None:
            row.update(status="abandoned", resolved_at=utc_naive(left))
            self.publish("handoff_abandoned", sender, handoff_event(Handoff(**row)), left)
        self._handoffs.append(row)
        if claimed is not None and agent_reply:
            self._messages.append({"conversation_id": sender, "role": "agent", "text": agent_reply, "payload": {},
                                   "created_at": utc_naive(claimed + 5)})
        if resolved is not None and rating:
            rated = {"id": self._new_id(Rating), "conversation_id": sender, "handoff_id": hid, "score": rating, "comment": "",
                     "created_at": utc_naive(resolved + 20)}
            self._ratings.append(rated)
            self.publish("rating", sender, rating_event(Rating(**rated)), resolved + 20)
        return hid

    def work_order(self, sender: str, ts: float, category: str, title: str, closed_after: float | None = None) -> int:
        """A work order in the web app (opened, and closed after `closed_after` seconds if given), with its events."""
        row = {"id": self._new_id(WorkOrder), "conversation_id": sender, "category": category, "title": title, "detail": title,
               "contact": "", "status": "open", "deadline": utc_naive(ts + 3 * 86400), "created_by": "agent1",
               "created_at": utc_naive(ts), "closed_at": None, "resolution": ""}
        self.publish("workorder_opened", sender, workorder_event(WorkOrder(**row)), ts)
        if closed_after:
            row.update(status="closed", closed_at=utc_naive(ts + closed_after))
            self.publish("workorder_closed", sender, workorder_event(WorkOrder(**row)), ts + closed_after)
        self._work_orders.append(row)
        return row["id"]

    # ------------------------------------------------------------------ calls
    def call(self, call_id: str, started: float, ended: float, outcome: str, reason: str = "",
             transcript: list[dict] | None = None, caller: str = "", transport: str = "audiosocket") -> str:
        """A call in the voice gateway's call store (ended 0: still running), with the gateway's call_started and, once
        it ended, call_ended; `caller` is the raw number, kept only as its mask and its key (voice.store.caller_key,
        computed by the gateway's CallStore). Returns the caller key ("" without a number)."""
        record = CallRecord(call_id=call_id, transport=transport, caller=caller, started_at=started, ended_at=ended,
                            outcome=outcome, reason=reason, handoff_status="sent" if outcome == "transferred" else "",
                            transcript=[TranscriptLine(t["role"], t["text"], t["ts"]) for t in transcript or []])
        key = self.gateway.key_of(record)
        self.gateway.started(record)
        if ended > 0:
            self.gateway.ended(record)
        row = {"call_id": call_id, "transport": transport, "caller": mask_text(caller), "started_at": started,
               "ended_at": ended, "outcome": outcome, "reason": mask_text(reason), "handoff_status": record.handoff_status,
               "slots": "{}", "caller_key": key,
               "transcript": json.dumps([{"role": t.role, "text": mask_text(t.text), "ts": t.ts} for t in record.transcript],
                                        ensure_ascii=False)}
        self._calls.append(tuple(row[c] for c in CALL_COLUMNS))
        return key

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Write everything buffered."""
        if self._events:
            with sqlite3.connect(self.events_path) as con:
                con.executemany("INSERT INTO events (sender_id, data) VALUES (?, ?)", self._events)
            self._events = []
        if self._calls:
            with sqlite3.connect(self.calls_path) as con:
                con.executemany(f"INSERT OR REPLACE INTO calls ({', '.join(CALL_COLUMNS)}) "
                                f"VALUES ({','.join('?' * len(CALL_COLUMNS))})", self._calls)
            self._calls = []
        batches = ((Handoff, self._handoffs), (Message, self._messages), (Rating, self._ratings), (WorkOrder, self._work_orders))
        if any(rows for _, rows in batches):
            def write(s) -> None:
                convs = {r["conversation_id"] for _, rows in batches for r in rows if r.get("conversation_id")}
                for cid in convs:
                    Store.ensure_conversation(s, cid)
                for model, rows in batches:
                    if rows:
                        s.execute(insert(model), rows)
            self.webapp.call(write)
            self._handoffs, self._messages, self._ratings, self._work_orders = [], [], [], []

    def close(self) -> None:
        """Flush and release the web app engine."""
        self.flush()
        self.webapp.engine.dispose()
