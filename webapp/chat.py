"""The citizen chat: records every line, forwards to Rasa while the bot serves, to the desk otherwise."""
from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.privacy import mask_slash_payload, mask_text
from webapp.hub import Hub
from webapp.rasa_client import RasaClient, RasaUnavailable
from webapp.settings import Settings
from webapp.store import Conversation, Handoff, Store

log = logging.getLogger(__name__)
CID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
RASA_DOWN_TEXT = "抱歉，智能客服暂时无法连接，您的消息已记录。请稍后再试，或拨打 12345 市民服务热线。"


class ChatError(ValueError):
    """A citizen message that cannot be accepted, with the text to show."""


def valid_cid(cid: Any) -> bool:
    """Conversation ids are opaque random strings chosen by the page (8-64 url-safe characters)."""
    return isinstance(cid, str) and bool(CID_RE.match(cid))


def masked_line(text: str, display: str | None = None) -> tuple[str, dict | None]:
    """What the transcript keeps of a citizen line: the shown text and, for a /intent{...} payload, the payload, masked.

    A button sends its payload (which can carry id_number, phone, person_name) and shows its title; a
    payload typed or sent without a title is shown as the payload itself, masked the same way.
    """
    slash = text.startswith("/")
    if isinstance(display, str) and display.strip():
        shown = mask_text(display.strip())[:100]
    else:
        shown = mask_slash_payload(text) if slash else mask_text(text)
    return shown, ({"payload": mask_slash_payload(text)} if slash else None)


class ChatService:
    """Business logic of the citizen chat, independent of the HTTP framework."""

    def __init__(self, store: Store, rasa: RasaClient, hub: Hub, settings: Settings) -> None:
        self.store, self.rasa, self.hub, self.settings = store, rasa, hub, settings
        # hooks the desk registers: what to do with a citizen line while a person serves
        self.on_human_message = None
        self.on_rating_reply = None

    async def state(self, cid: str) -> dict[str, Any]:
        """Transcript and mode of a conversation (for page load and reconnect)."""
        def read(s: Session) -> dict[str, Any]:
            conv = s.get(Conversation, cid)
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status.in_(("queued", "claimed")))
                          .order_by(Handoff.id.desc())).first()
            handoff = None
            if h is not None:
                ahead = Store.count(s, Handoff, Handoff.queue == h.queue, Handoff.status == "queued", Handoff.id < h.id)
                handoff = {"status": h.status, "queue": h.queue, "position": ahead + 1 if h.status == "queued" else None}
            return {"mode": conv.mode if conv else "bot",
                    "awaiting_rating": bool(conv and conv.awaiting_rating),
                    "handoff": handoff,
                    "messages": Store.transcript(s, cid)}
        return await self.store.run(read)

    async def record(self, cid: str, role: str, text: str, payload: dict | None = None, channel: str = "web") -> dict:
        """Store one transcript line and push it to the conversation's open pages."""
        msg = await self.store.run(lambda s: Store.add_message(s, cid, role, text, payload, channel))
        self.hub.publish(f"conv:{cid}", {"type": "message", "message": msg})
        return msg

    def check(self, text: Any) -> str:
        """The message text, or ChatError with what to change."""
        if not isinstance(text, str) or not text.strip():
            raise ChatError("请输入您要咨询的内容。")
        text = text.strip()
        if len(text) > self.settings.max_message_chars:
            raise ChatError(f"消息太长了（{len(text)} 字），请精简到 {self.settings.max_message_chars} 字以内再发送。")
        return text

    async def citizen_message(self, cid: str, text: Any, display: str | None = None, source: str = "") -> None:
        """Handle one citizen line: record it, then bot, desk or rating handling."""
        if not valid_cid(cid):
            raise ChatError("会话标识无效，请刷新页面。")
        text = self.check(text)
        shown, payload = masked_line(text, display)
        await self.record(cid, "citizen", shown, payload)
        conv = await self.store.run(lambda s: Store.ensure_conversation(s, cid))
        if conv.awaiting_rating and self.on_rating_reply is not None and await self.on_rating_reply(cid, text):
            return
        if conv.mode in ("human", "message") and self.on_human_message is not None:
            await self.on_human_message(cid, shown)
            return
        await self.bot_turn(cid, text, source)

    async def bot_turn(self, cid: str, text: str, source: str = "") -> None:
        """Send the citizen's words to Rasa and record each reply.

        `source` (web:<client address>) travels as metadata: the card system limits failed identity checks
        per source as well as per conversation and per citizen.
        """
        try:
            replies = await self.rasa.send(cid, text, {"source": source} if source else None, channel="web")
        except RasaUnavailable as exc:
            log.error("Rasa unavailable for a chat turn: %s", exc)
            await self.record(cid, "system", RASA_DOWN_TEXT, {"error": "rasa_unavailable"})
            return
        if not replies:
            await self.record(cid, "bot", "抱歉，我暂时无法回答这个问题。您可以换个说法，或者说“转人工”。", {"empty": True})
            return
        for r in replies:
            payload = {k: r[k] for k in ("buttons", "custom", "image") if r.get(k)}
            await self.record(cid, "bot", r.get("text") or "", payload)
