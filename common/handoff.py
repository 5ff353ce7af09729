"""The hand-off contract: what the action server and the voice gateway send to POST /api/handoff, and the answer.

One definition imported by every side (actions/handoff.py, voice/engines/desk.py, webapp/handoffs.py and
webapp/routes/handoff_api.py), with the expert seat's queue names. The web app accepts anything a
client sends and normalises it here (`HandoffRequest.from_json`): an unknown queue becomes 综合, an
unknown channel web, so a newer caller never breaks an older web app.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

HANDOFF_PATH = "/api/handoff"
# the expert seat's skill queues, in the order the desk lists them
QUEUES: tuple[str, ...] = ("社保卡", "养老", "失业", "工伤", "综合")
DEFAULT_QUEUE = "综合"
# knowledge entry id prefix -> skill queue: the conversation's topic chooses the seat
QUEUE_BY_AREA = {"card": "社保卡", "ecard": "社保卡", "pension": "养老", "certify": "养老", "transfer": "养老",
                 "unemp": "失业", "injury": "工伤"}
CHANNELS: tuple[str, ...] = ("web", "phone")
MAX_CONVERSATION_ID = 64
MAX_TRANSCRIPT_LINES = 200  # a phone call's transcript brought along: its last lines only
# a hand-off's status as the answer names it: queued (waiting), claimed (an agent already serves the
# conversation's open hand-off), offhours (outside DESK_HOURS: the citizen's next line becomes a work order)
STATUSES: tuple[str, ...] = ("queued", "claimed", "offhours")


def queue_for_entry(entry_id: str) -> str:
    """The skill queue of a knowledge entry's area (card-0012 -> 社保卡); 综合 for anything else."""
    return QUEUE_BY_AREA.get(str(entry_id or "").split("-")[0], DEFAULT_QUEUE)


class HandoffRequestError(ValueError):
    """A hand-off request the web app cannot accept, with what is wrong."""


class TranscriptLine(TypedDict, total=False):
    """One line of a transcript sent along (phone calls): role caller | citizen | user | bot, the text, a time."""

    role: str
    text: str
    ts: float


@dataclass(frozen=True)
class HandoffRequest:
    """The JSON body of POST /api/handoff (bearer service token). Senders mask personal data before sending."""

    conversation_id: str
    reason: str = ""
    summary: str = ""
    queue: str = DEFAULT_QUEUE
    channel: str = "web"
    slots: dict[str, Any] = field(default_factory=dict)
    transcript: tuple[TranscriptLine, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request body."""
        return {"conversation_id": self.conversation_id, "channel": self.channel, "queue": self.queue,
                "reason": self.reason, "summary": self.summary, "slots": dict(self.slots),
                "transcript": [dict(line) for line in self.transcript]}

    @classmethod
    def from_json(cls, body: Any) -> HandoffRequest:
        """Read a request body leniently; raises HandoffRequestError when it names no conversation."""
        body = body if isinstance(body, dict) else {}
        cid = body.get("conversation_id")
        if not isinstance(cid, str) or not cid or len(cid) > MAX_CONVERSATION_ID:
            raise HandoffRequestError("conversation_id is required")
        slots = body.get("slots") if isinstance(body.get("slots"), dict) else {}
        transcript = body.get("transcript") if isinstance(body.get("transcript"), list) else []
        return cls(conversation_id=cid,
                   reason=str(body.get("reason") or ""),
                   summary=str(body.get("summary") or ""),
                   queue=body.get("queue") if body.get("queue") in QUEUES else DEFAULT_QUEUE,
                   channel=body.get("channel") if body.get("channel") in CHANNELS else "web",
                   slots=slots,
                   transcript=tuple(line for line in transcript[-MAX_TRANSCRIPT_LINES:] if isinstance(line, dict)))


@dataclass(frozen=True)
class HandoffReply:
    """The answer of POST /api/handoff: the hand-off, its place in the queue (1 = next) and what to tell the citizen."""

    status: str  # one of STATUSES
    queue: str
    message: str
    id: int | None = None
    position: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {"id": self.id, "status": self.status, "position": self.position, "queue": self.queue,
                "message": self.message}

    @classmethod
    def from_json(cls, body: Any, queue: str = DEFAULT_QUEUE) -> HandoffReply:
        """Read a response body; fields a web app left out get their defaults (`queue`: the one asked for)."""
        body = body if isinstance(body, dict) else {}
        position = body.get("position")
        hid = body.get("id")
        return cls(status=str(body.get("status") or "queued"), queue=str(body.get("queue") or queue),
                   message=str(body.get("message") or ""),
                   id=hid if isinstance(hid, int) else None,
                   position=position if isinstance(position, int) else None)
