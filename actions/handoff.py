"""Hand the conversation to a human expert seat (agent desk in the web app).

The action asks the web app to queue the conversation with its context; the web app pauses the
bot for this conversation until an agent resolves it. The reply's custom payload carries a
`handoff` object (queue, reason, position) so every channel can react (the phone gateway
transfers the call).
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import httpx
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.settings import current
from common.handoff import DEFAULT_QUEUE, HANDOFF_PATH, HandoffReply, HandoffRequest, queue_for_entry
from common.privacy import mask_text, mask_value

log = logging.getLogger(__name__)
PERSONAL_SLOTS = ("id_number", "phone", "person_name", "card_number")


def choose_queue(tracker: Tracker) -> str:
    """The skill queue from the conversation's topic (last knowledge entry or card intents)."""
    entry = tracker.get_slot("kb_last_entry") or ""
    if entry:
        return queue_for_entry(entry)
    intents = [e.get("parse_data", {}).get("intent", {}).get("name") for e in tracker.events if e.get("event") == "user"]
    if any(i in ("report_card_loss", "query_card_progress") for i in intents):
        return "社保卡"
    return DEFAULT_QUEUE


def handoff_reason(tracker: Tracker) -> str:
    """Why a person is needed, in words an agent understands at a glance."""
    explicit = tracker.get_slot("handoff_reason")
    if explicit:
        return explicit
    intent = tracker.latest_message.get("intent", {}).get("name")
    return {"complain": "市民投诉/情绪不满", "request_human": "市民要求人工"}.get(intent, "机器人无法处理")


def conversation_context(tracker: Tracker) -> dict[str, Any]:
    """Masked slots and a short summary of what the citizen said."""
    slots = {k: mask_value(k, v) for k, v in tracker.current_slot_values().items()
             if k in PERSONAL_SLOTS and v}
    said = [mask_text(e.get("text") or "") for e in tracker.events if e.get("event") == "user" and e.get("text")]
    summary = "；".join(s for s in said[-3:] if s and not s.startswith("/"))[:200]
    return {"slots": slots, "summary": summary}


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _desk_client() -> httpx.AsyncClient:
    """One HTTP client per event loop, kept open: a new client costs ~50 ms (it builds an SSL context)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(timeout=5)
    return client


class ActionHandoffToHuman(Action):
    """Queue the conversation for the expert seat and tell the citizen what happens next."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_handoff_to_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Create the hand-off in the web app; fall back to the hotline numbers if it is down."""
        queue, reason = choose_queue(tracker), handoff_reason(tracker)
        context = conversation_context(tracker)
        asked = HandoffRequest(conversation_id=tracker.sender_id, channel=tracker.get_latest_input_channel() or "web",
                               queue=queue, reason=reason, summary=context["summary"], slots=context["slots"])
        try:
            r = await _desk_client().post(f"{current().webapp_url}{HANDOFF_PATH}", json=asked.to_json(),
                                          headers={"Authorization": f"Bearer {current().service_token.reveal()}"})
            r.raise_for_status()
            info = HandoffReply.from_json(r.json(), queue)
        except (httpx.HTTPError, ValueError) as exc:
            log.error("hand-off to the agent desk failed: %s", exc)
            dispatcher.utter_message(
                text="抱歉，人工客服系统暂时连接不上。您可以拨打 12345 市民服务热线或 12333 人社服务热线找人工，稍后也可以再说“转人工”。",
                json_message={"handoff": {"queue": queue, "reason": reason, "position": None, "status": "unavailable"}},
            )
            return [SlotSet("handoff_reason", None), ActiveLoop(None)]
        handoff = {"queue": queue, "reason": reason, "position": info.position, "status": info.status, "id": info.id}
        dispatcher.utter_message(text=info.message or "正在为您转接人工客服，请稍候。", json_message={"handoff": handoff})
        return [SlotSet("handoff_reason", None), ActiveLoop(None)]
