"""Write conversations in the services' own formats, for the traffic simulator and the tests.

Rasa events go into an `events(id, sender_id, data)` table exactly as Rasa's SQL event broker writes
them (shape copied from a real run: action_session_start, session_started, user, user_featurization,
action, bot with `custom.kb` / `custom.handoff`, slot, action_listen); hand-offs, ratings and agents'
replies go into the web app's tables through webapp/store.py's models; calls into the voice gateway's
call store table. The analytics store is then filled by the ordinary ingestion (analytics.ingest).
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from webapp.store import Handoff, Message, Rating, Store, WorkOrder

EVENTS_SCHEMA = "CREATE TABLE IF NOT EXISTS events (id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"
CALLS_SCHEMA = """CREATE TABLE IF NOT EXISTS calls (call_id TEXT PRIMARY KEY, transport TEXT NOT NULL, caller TEXT NOT NULL,
 started_at REAL NOT NULL, ended_at REAL NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, handoff_status TEXT NOT NULL,
 slots TEXT NOT NULL, transcript TEXT NOT NULL, caller_key TEXT NOT NULL DEFAULT '')"""
META = {"model_id": "simulated", "assistant_id": "jinan-shebao-assistant"}
HELPFUL_BUTTONS = [{"title": "有帮助", "payload": "/feedback_helpful"}, {"title": "没帮助", "payload": "/feedback_unhelpful"}]
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


def utc_naive(ts: float) -> dt.datetime:
    """Epoch seconds as the web app stores times: UTC without tzinfo."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None)


class SourceWriter:
    """Buffers source rows and writes them in bulk (`flush`) to the three source databases."""

    def __init__(self, events_path: Path, webapp_url: str, calls_path: Path) -> None:
        self.events_path, self.calls_path = Path(events_path), Path(calls_path)
        for path in (self.events_path, self.calls_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.events_path) as con:
            con.execute(EVENTS_SCHEMA)
        with sqlite3.connect(self.calls_path) as con:
            con.execute(CALLS_SCHEMA)
        self.webapp = Store(webapp_url)
        self._events: list[tuple[str, str]] = []
        self._handoffs: list[dict] = []
        self._ratings: list[dict] = []
        self._messages: list[dict] = []
        self._work_orders: list[dict] = []
        self._calls: list[tuple] = []
        self._next_handoff = 1 + self.webapp.call(lambda s: s.query(Handoff.id).order_by(Handoff.id.desc()).limit(1).scalar() or 0)
        self.events_written = 0

    # ------------------------------------------------------------------ Rasa events
    def _event(self, sender: str, event: dict[str, Any]) -> None:
        self._events.append((sender, json.dumps({"sender_id": sender, **event})))

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
                handled_for: float | None = None, rating: str | None = None, agent_reply: str = "您好，我来帮您查一下。") -> int:
        """action_handoff_to_human's reply and the web app's hand-off row (claimed, resolved, rated as given)."""
        hid = self._next_handoff
        self._next_handoff += 1
        self.action(sender, ts, "action_handoff_to_human")
        self.bot(sender, ts + 0.001, f"正在为您转接{queue}专家坐席，请稍候。",
                 {"handoff": {"queue": queue, "reason": reason, "position": 1, "status": "queued", "id": hid}})
        self.slot(sender, ts + 0.002, "handoff_reason", None)
        self.action(sender, ts + 0.003, "action_listen")
        claimed = ts + claimed_after if claimed_after is not None else None
        resolved = claimed + handled_for if claimed is not None and handled_for is not None else None
        status = "resolved" if resolved else "claimed" if claimed else "queued"
        self._handoffs.append({"id": hid, "conversation_id": sender, "channel": channel, "queue": queue, "priority": 0, "reason": reason,
                               "summary": "", "slots": {}, "status": status, "agent": "agent1" if claimed else None,
                               "created_at": utc_naive(ts), "claimed_at": utc_naive(claimed) if claimed else None,
                               "resolved_at": utc_naive(resolved) if resolved else None})
        if claimed is not None and agent_reply:
            self._messages.append({"conversation_id": sender, "role": "agent", "text": agent_reply, "payload": {},
                                   "created_at": utc_naive(claimed + 5)})
        if resolved is not None and rating:
            self._ratings.append({"conversation_id": sender, "handoff_id": hid, "score": rating, "comment": "",
                                  "created_at": utc_naive(resolved + 20)})
        return hid

    def work_order(self, sender: str, ts: float, category: str, title: str, closed_after: float | None = None) -> None:
        """A work order in the web app."""
        self._work_orders.append({"conversation_id": sender, "category": category, "title": title, "detail": title, "contact": "",
                                  "status": "closed" if closed_after else "open", "deadline": utc_naive(ts + 3 * 86400),
                                  "created_by": "agent1", "created_at": utc_naive(ts),
                                  "closed_at": utc_naive(ts + closed_after) if closed_after else None, "resolution": ""})

    # ------------------------------------------------------------------ calls
    def call(self, call_id: str, started: float, ended: float, outcome: str, reason: str = "",
             transcript: list[dict] | None = None, caller_key: str = "") -> None:
        """A finished call in the voice gateway's call store (`caller_key` as voice.store.caller_key makes it)."""
        self._calls.append((call_id, "audiosocket", "138****0000", started, ended, outcome, reason,
                            "sent" if outcome == "transferred" else "", "{}", json.dumps(transcript or [], ensure_ascii=False),
                            caller_key))

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Write everything buffered."""
        if self._events:
            with sqlite3.connect(self.events_path) as con:
                con.executemany("INSERT INTO events (sender_id, data) VALUES (?, ?)", self._events)
            self.events_written += len(self._events)
            self._events = []
        if self._calls:
            with sqlite3.connect(self.calls_path) as con:
                con.executemany("INSERT OR REPLACE INTO calls (call_id, transport, caller, started_at, ended_at, outcome, reason, "
                                "handoff_status, slots, transcript, caller_key) VALUES (?,?,?,?,?,?,?,?,?,?,?)", self._calls)
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
