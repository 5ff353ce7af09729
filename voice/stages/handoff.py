"""Sends the expert seat a ticket (summary, masked slots, transcript) when a call is transferred."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from voice.engines.desk import HandoffDesk, HandoffTicket
from voice.frames import EndCall, Frame
from voice.pipeline import Stage
from voice.store import CallRecord

log = logging.getLogger(__name__)

REASONS = {
    "caller_pressed_0": "来电人按0要求人工服务",
    "no_input": "来电人多次没有说话",
    "not_understood": "多次没有听清来电人的话",
    "bot_unavailable": "智能客服暂时不可用",
    "bot_handoff": "智能客服转人工",
    "caller_asked": "来电人要求人工（智能客服未能转接，由语音网关直接转接）",
}


def summary_of(record: CallRecord, reason: str) -> str:
    """A one-line summary for the agent: why the call came, why it was handed over."""
    asked = [line.text for line in record.transcript if line.role == "caller"]
    why = REASONS.get(reason, reason)
    if asked and all(len(text) == 1 for text in asked):  # keypad menu keys only: the transcript has the menus
        return f"电话来电（按键服务）。来电人依次按键：{'、'.join(asked)[:60]}。转人工原因：{why}。"
    topic = asked[0] if asked else "（来电人尚未说明问题）"
    return f"电话来电。来电人首先说：{topic[:60]}。转人工原因：{why}。"


class Handoff(Stage):
    """On a transfer, posts the ticket to the desk; a failure is recorded, never fatal to the call."""

    def __init__(self, desk: HandoffDesk, record: CallRecord) -> None:
        self.desk = desk
        self.record = record

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Hand the ticket over, then let the transfer go on."""
        if isinstance(frame, EndCall) and frame.action == "transfer" and frame.details.get("status"):
            # Rasa's hand-off action already created the ticket (with the tracker's slots).
            self.record.handoff_status = f"created by the bot ({frame.details.get('id') or frame.details['status']})"
        elif isinstance(frame, EndCall) and frame.action == "transfer":
            summary = str(frame.details.get("summary") or summary_of(self.record, frame.reason))
            ticket = HandoffTicket(
                conversation_id=self.record.call_id,
                reason=frame.reason,
                summary=summary,
                slots=dict(self.record.slots),
                transcript=tuple(self.record.transcript),
            )
            try:
                await self.desk.hand_off(ticket)
                self.record.handoff_status = "sent"
            except Exception as exc:  # the desk being down must not keep the caller from a person
                self.record.handoff_status = f"failed: {exc!r}"[:200]
                log.error("call %s: hand-off ticket not delivered: %r", self.record.call_id, exc)
        yield frame
