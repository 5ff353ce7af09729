"""A phone answer's written details by SMS: offered after a knowledge answer, sent to the number that is calling.

A spoken answer is short (the entry's voice answer); the written answer holds the steps, materials and
channels. On the phone channel, when the caller's number is a mobile number and the written answer says
more than the spoken one, the answer ends with "需要把详细说明用短信发到您的来电手机吗？" and a first button
"发短信" (key 1 in the gateway, or the word). The caller can also just say 是的 (the affirm intent):
`ActionAffirm` sends when the bot's previous message was the offer, and otherwise asks how it can help.

The number is the one the gateway saw on the call (the message's `source` metadata, which Rasa's channels
take only from callers holding the channel token): never a number the caller speaks, so nobody can make us
text a third person. A conversation gets at most MAX_PER_CONVERSATION messages. The message goes through the
card system's SMS gateway (development: the log outbox; production: the operator's HTTP gateway), and our
own log shows the number masked.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.channel import channel_of, source_of
from actions.kb_service import kb_service
from common.privacy import mask_phone
from knowledge.schema import KbEntry

log = logging.getLogger(__name__)

OFFER_TEXT = "需要把详细说明用短信发到您的来电手机吗？"
SMS_BUTTON = {"title": "发短信", "payload": "/send_answer_sms"}
MAX_PER_CONVERSATION = 3
MAX_SMS_CHARS = 500  # a long message arrives as several joined parts; beyond this, point to the channels
MIN_EXTRA_CHARS = 20  # the written answer must say this much more than the spoken one to be worth a message
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]*)\)")
_MARKS = re.compile(r"[*_`#>|~]+")


def card_system():
    """The card-system adapter, whose SMS gateway sends the message (imported late: card_service imports the
    knowledge action, which imports this module)."""
    from actions.card_service import card_system as adapter

    return adapter()


def caller_mobile(tracker: Tracker) -> str:
    """The calling mobile number from the gateway's metadata (+86/86 dropped), or "" (landline, hidden, web)."""
    source = source_of(tracker)
    if channel_of(tracker) != "phone" or not source.startswith("phone:"):
        return ""
    digits = source.removeprefix("phone:").lstrip("+")
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if _MOBILE.fullmatch(digits) else ""


def offers_sms(tracker: Tracker, entry: KbEntry) -> bool:
    """True when this answer should end with the SMS offer: a phone call from a mobile, more to read than to hear."""
    return bool(caller_mobile(tracker)) and len(entry.answer) >= len(entry.voice_answer) + MIN_EXTRA_CHARS


def sms_text(entry: KbEntry) -> str:
    """The message: the standard question and the written answer, without markdown; links kept as text."""
    body = _MARKS.sub("", _LINK.sub(r"\1 \2", entry.answer)).strip()
    if entry.local_review:
        body += "（涉及济南本地规定，以12345或办事大厅答复为准）"
    text = f"【济南社保】{entry.question}\n{body}"
    if len(text) > MAX_SMS_CHARS:
        text = text[: MAX_SMS_CHARS - 30].rstrip() + "…（完整内容请咨询12333或12345热线）"
    return text


def _kb(event: dict[str, Any]) -> dict[str, Any]:
    custom = (event.get("data") or {}).get("custom") or {}
    kb = custom.get("kb") if isinstance(custom, dict) else None
    return kb if isinstance(kb, dict) else {}


def offered_entry(tracker: Tracker) -> str | None:
    """The entry of the SMS offer in the bot's turn just before the caller's latest message, if there was one."""
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                return None  # the offer belongs to an earlier turn: a later 是的 is not an answer to it
            seen_user = True
        elif kind == "bot" and seen_user:
            kb = _kb(event)
            if kb.get("sms_offer") and kb.get("id"):
                return str(kb["id"])
    return None


def sent_count(tracker: Tracker) -> int:
    """Answers already sent by SMS in this conversation."""
    return sum(1 for e in tracker.events if e.get("event") == "bot" and _kb(e).get("sms_sent"))


async def send_offered_answer(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Send the offered entry's written answer to the calling mobile, and say so (or why not)."""
    entry_id = offered_entry(tracker)
    kb = kb_service.get()
    entry = kb.by_id.get(entry_id) if kb is not None and entry_id else None
    phone = caller_mobile(tracker)
    if entry is None or not phone:
        dispatcher.utter_message(text="抱歉，现在没有可以发送的内容。您想了解什么，请直接说。")
        return
    if sent_count(tracker) >= MAX_PER_CONVERSATION:
        dispatcher.utter_message(text=f"这次通话已经发过{MAX_PER_CONVERSATION}条短信了，不能再发。您可以继续问我，或者说“转人工”。")
        return
    system = card_system()
    if system.sms is None:
        dispatcher.utter_message(text="抱歉，短信服务暂时不可用。您可以让我再说一遍，或者说“转人工”。")
        return
    try:
        await asyncio.to_thread(system.sms.send, phone, sms_text(entry))
    except Exception as exc:  # the operator's gateway failed: say so, keep the call going
        log.warning("answer SMS %s to %s failed: %s", entry.id, mask_phone(phone), type(exc).__name__)
        dispatcher.utter_message(text="抱歉，短信暂时没能发出。您可以让我再说一遍，或者说“转人工”。")
        return
    log.info("answer SMS %s sent to %s (conversation %s)", entry.id, mask_phone(phone), tracker.sender_id)
    dispatcher.utter_message(text=f"已经把详细说明发到您尾号{phone[-4:]}的手机上，请注意查收。还有别的问题吗？",
                             json_message={"kb": {"sms_sent": True, "id": entry.id}})


class ActionSendAnswerSms(Action):
    """The caller pressed 1 / said 发短信 after an answer's SMS offer."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_send_answer_sms"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Send, or explain why not."""
        await send_offered_answer(dispatcher, tracker)
        return []


class ActionAffirm(Action):
    """是的 outside a form: the answer to the SMS offer if the bot just made one, otherwise "how can I help"."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_affirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Send the offered answer, or ask what the citizen needs."""
        if offered_entry(tracker):
            await send_offered_answer(dispatcher, tracker)
        else:
            dispatcher.utter_message(response="utter_how_can_help")
        return []
