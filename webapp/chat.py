"""The citizen chat: records every line, forwards to Rasa while the bot serves, to the desk otherwise.

It also keeps the hand-off's promises to the citizen (docs/reliability.md): 回到机器人 works at any
time, an unclaimed hand-off ends in an offer (callback work order or the bot), a citizen who left is
not waited for, and a database failure never ends the chat: the line is either stored, or the page is
told to send it again (it keeps it, and `client_id` makes a resent line count once). When the bot
cannot act, the chat still keeps its two promises: "转人工" reaches a person (the web app opens the
hand-off itself when the bot's reply carries none), and a line sent while Rasa was down is answered
as soon as Rasa is back (`Unanswered`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.handoff import HandoffRequest, queue_for_entry
from common.privacy import mask_slash_payload, mask_text
from common.routing_phrases import asks_for_a_person
from webapp.handoffs import CLOSED, HandoffService, open_handoff, queue_position
from webapp.hub import Hub
from webapp.rasa_client import RasaClient, RasaUnavailable
from webapp.ratings import RatingService
from webapp.refusals import Refused
from webapp.settings import Settings
from webapp.store import Conversation, Message, Store, message_dict, now
from webapp.workorders import WorkOrderService

log = logging.getLogger(__name__)
CID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
RASA_DOWN_TEXT = "抱歉，智能客服暂时无法连接，您的消息已记录，恢复后会自动回复您。着急的话可以说“转人工”，或拨打 12345 市民服务热线。"
RASA_DOWN_NOT_KEPT_TEXT = "抱歉，智能客服暂时无法连接，您的消息已记录。请稍后再试，或拨打 12345 市民服务热线。"
BOT_BACK_TEXT = "智能客服已恢复，现在回复您刚才的问题：“{shown}”"
EMPTY_TEXT = "抱歉，我暂时无法回答这个问题。您可以换个说法，或者说“转人工”。"
BUSY_TEXT = "系统繁忙，您的消息还没有送达，正在为您重新发送，请稍候…"
FAILED_TEXT = "抱歉，系统繁忙，您的消息已收到，但暂时没能处理。请稍后再发一次，或拨打 12345 市民服务热线。"
FORMAT_TEXT = "无法识别这条消息，请输入文字后再发送。"  # a frame the chat page never sends (binary, not JSON, unknown type)
STATE_BUSY_TEXT = "系统繁忙，对话记录暂时无法加载，正在重试…"
BACK_TO_BOT = "/back_to_bot"
CALLBACK = "/handoff_callback"
BACK_TO_BOT_BUTTON = {"title": "回到机器人", "payload": BACK_TO_BOT}
# 回到机器人, 返回智能客服, 我要回到机器人吧 …: the whole line asks for the bot (我不想回到机器人 does not)
BACK_TO_BOT_RE = re.compile(r"^(?:我要|我想|请|帮我|还是|那就|那)?(?:回到|返回|回|转回)(?:机器人|智能客服)(?:吧|了)?$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DUPLICATE_LOOKBACK = 50  # a resent line is recognised among the conversation's last lines


class Unanswered:
    """Lines Rasa could not be reached for, per conversation, to answer in order once it is back.

    In memory only: the raw text may hold an ID or phone number that the database never holds (it keeps the
    masked line), so a restart of the web app forgets them (the citizen was told the line is recorded, and
    the page shows it). Bounded: a few lines per conversation and a cap on conversations; beyond them a line
    is not queued (the citizen still saw "稍后再试").
    """

    def __init__(self, per_conversation: int = 5, conversations: int = 2000) -> None:
        self.per_conversation, self.conversations = per_conversation, conversations
        self._lines: dict[str, list[tuple[str, str, str]]] = {}

    def add(self, cid: str, text: str, shown: str, source: str) -> bool:
        """Keep a line (raw text, masked text, source); False when the bounds are reached."""
        lines = self._lines.get(cid)
        if lines is None and len(self._lines) >= self.conversations:
            return False
        lines = self._lines.setdefault(cid, [])
        if len(lines) >= self.per_conversation:
            return False
        lines.append((text, shown, source))
        return True

    def conversations_waiting(self) -> list[str]:
        """The conversations with lines to answer, oldest first."""
        return list(self._lines)

    def take(self, cid: str) -> list[tuple[str, str, str]]:
        """Remove and return a conversation's lines in the order they came."""
        return self._lines.pop(cid, [])

    def put_back(self, cid: str, lines: list[tuple[str, str, str]]) -> None:
        """Lines still unanswered go back in front of any newer ones."""
        if lines:
            self._lines[cid] = lines + self._lines.get(cid, [])

    def __len__(self) -> int:
        return sum(len(v) for v in self._lines.values())


class ChatError(ValueError):
    """A citizen message that cannot be accepted, with the text to show."""


class ChatBusy(RuntimeError):
    """The database could not store the citizen's line: nothing was done, the page sends it again."""


def wants_the_bot(text: str) -> bool:
    """Whether a citizen line asks to leave the hand-off for the bot (the button or the words)."""
    return text == BACK_TO_BOT or bool(BACK_TO_BOT_RE.match(re.sub(r"[\s。！!，,.~～…？?]", "", text)))


def spoken_duration(seconds: float) -> str:
    """45 秒, 5 分钟: a time limit in the words a citizen reads."""
    return f"{int(seconds)} 秒" if seconds < 60 else f"{max(1, round(seconds / 60))} 分钟"


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

    def __init__(self, store: Store, rasa: RasaClient, hub: Hub, settings: Settings,
                 handoffs: HandoffService | None = None, workorders: WorkOrderService | None = None,
                 ratings: RatingService | None = None) -> None:
        self.store, self.rasa, self.hub, self.settings = store, rasa, hub, settings
        # the desk's side of a conversation: a line while a person is involved goes to the hand-off (the desk
        # sees it live), an off-hours message to a work order, the line after the service to the rating
        self.handoffs = handoffs or HandoffService(store, settings.desk_hours, settings.desk_days)
        self.workorders = workorders or WorkOrderService(store)
        self.ratings = ratings or RatingService(store)
        # conversation -> time.monotonic() since when no chat page of it is open (for abandoned hand-offs)
        self._away: dict[str, float] = {}
        # conversation -> [lock, users]: one citizen line at a time per conversation, in the order they came
        self._turns: dict[str, list] = {}
        self.unanswered = Unanswered()

    @contextlib.asynccontextmanager
    async def _turn(self, cid: str) -> AsyncIterator[None]:
        """A conversation's lines are stored and answered one after the other, in arrival order (asyncio.Lock
        is first come, first served), whether they come from two tabs, the WebSocket or the HTTP fallback.
        Within one web-app process; across replicas the issue on scale-out adds a shared lock."""
        turn = self._turns.setdefault(cid, [asyncio.Lock(), 0])
        turn[1] += 1
        try:
            async with turn[0]:
                yield
        finally:
            turn[1] -= 1
            if turn[1] == 0:
                self._turns.pop(cid, None)

    async def state(self, cid: str) -> dict[str, Any]:
        """Transcript and mode of a conversation (for page load and reconnect)."""
        def read(s: Session) -> dict[str, Any]:
            conv = s.get(Conversation, cid)
            h = open_handoff(s, cid)
            handoff = None
            if h is not None:
                handoff = {"status": h.status, "queue": h.queue, "position": queue_position(s, h) if h.status == "queued" else None}
            return {"mode": conv.mode if conv else "bot",
                    "awaiting_rating": bool(conv and conv.awaiting_rating),
                    "handoff": handoff,
                    "messages": Store.transcript(s, cid)}
        self.seen(cid)
        return await self.store.run(read)

    async def record(self, cid: str, role: str, text: str, payload: dict | None = None, channel: str = "web") -> dict:
        """Store one transcript line and push it to the conversation's open pages."""
        msg = await self.store.run(lambda s: Store.add_message(s, cid, role, text, payload, channel))
        self.hub.publish(f"conv:{cid}", {"type": "message", "message": msg})
        return msg

    async def deliver(self, cid: str, role: str, text: str, payload: dict | None = None) -> dict:
        """Like `record`, but the citizen gets the line even when the database cannot store it (logged)."""
        try:
            return await self.record(cid, role, text, payload)
        except SQLAlchemyError as exc:
            log.error("a %s line could not be stored (%s); shown to the citizen only", role, type(exc).__name__)
            msg = {"id": "u" + uuid.uuid4().hex, "role": role, "text": text, "payload": {**(payload or {}), "unsaved": True},
                   "ts": now().isoformat() + "Z"}
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

    async def frame(self, cid: str, raw: Any, source: str = "") -> dict | None:
        """One frame from a chat page; returns what to send back on the same socket (None: nothing).

        Frames: {"type":"message","text","display","client_id"} and {"type":"state"}. No frame ends the
        connection: bad input, a busy database or a failure is answered in words.
        """
        try:
            data = json.loads(raw)
        except (TypeError, ValueError, RecursionError):  # not JSON, not UTF-8 (a binary frame), nested too deep
            data = None
        if not isinstance(data, dict) or data.get("type") not in ("message", "state"):
            return {"type": "error", "code": "format", "text": FORMAT_TEXT}
        if data.get("type") == "state":
            return await self.state_event(cid)
        client_id = data.get("client_id") if isinstance(data.get("client_id"), str) else None
        try:
            await self.citizen_message(cid, data.get("text"), data.get("display"), source=source, client_id=client_id)
        except ChatError as exc:
            return {"type": "error", "text": str(exc), "client_id": client_id}
        except ChatBusy as exc:
            return {"type": "error", "code": "retry", "text": str(exc), "client_id": client_id}
        return None

    async def state_event(self, cid: str) -> dict:
        """The "state" event of a page (transcript and mode), or an error the page answers by asking again."""
        try:
            return {"type": "state", **(await self.state(cid))}
        except SQLAlchemyError as exc:
            log.error("chat state unavailable (%s)", type(exc).__name__)
            return {"type": "error", "code": "state", "text": STATE_BUSY_TEXT}

    async def citizen_message(self, cid: str, text: Any, display: str | None = None, source: str = "",
                              client_id: str | None = None) -> None:
        """Handle one citizen line: record it, then 回到机器人 / callback / rating / desk / bot handling.

        Raises ChatError (the line is refused) or ChatBusy (it could not be stored; send it again). Once the
        line is stored, any failure is answered in the chat (FAILED_TEXT) instead of raised.
        """
        if not valid_cid(cid):
            raise ChatError("会话标识无效，请刷新页面。")
        text = self.check(text)
        async with self._turn(cid):
            await self._citizen_line(cid, text, display, source, client_id)

    async def _citizen_line(self, cid: str, text: str, display: str | None, source: str, client_id: str | None) -> None:
        shown, payload = masked_line(text, display)
        client_id = client_id if isinstance(client_id, str) and CLIENT_ID_RE.match(client_id) else None
        try:
            msg, new, mode, awaiting, answered = await self.store.run(
                lambda s: record_citizen_line(s, cid, shown, payload, client_id))
        except SQLAlchemyError as exc:
            log.error("a citizen line could not be stored (%s); the page sends it again", type(exc).__name__)
            raise ChatBusy(BUSY_TEXT) from exc
        self.hub.publish(f"conv:{cid}", {"type": "message", "message": msg})
        self.seen(cid)
        if not new and (answered or mode != "bot"):  # the page sent it again: stored and handled the first time
            return
        if not new:  # stored, but nothing came after it: the web app stopped between storing and answering it
            log.warning("a resent line was stored but never answered (the web app stopped mid-turn): answering it now")
        try:
            await self._handle(cid, text, shown, mode, awaiting, source)
        except Exception:  # noqa: BLE001 - the line is kept; whatever failed after, the citizen is told to send again
            log.exception("handling a citizen line failed")
            await self.deliver(cid, "system", FAILED_TEXT, {"error": "failed"})

    async def _handle(self, cid: str, text: str, shown: str, mode: str, awaiting: bool, source: str) -> None:
        if wants_the_bot(text):
            await self.back_to_bot(cid)
            return
        if text == CALLBACK:
            await self.callback(cid)
            return
        if awaiting and await self.rating_reply(cid, text):
            return
        if mode == "callback":
            wid = await self.handoffs.add_to_callback(cid, text)
            if wid is not None:
                await self.deliver(cid, "system", f"已补充到回电工单（编号 {wid}）。还有其他问题可以继续问我。", {"workorder": wid})
                self.hub.publish("desk", {"type": "workorders_changed"})
                return
        if mode in ("human", "message"):
            await self.to_the_desk(cid, shown, mode)
            return
        await self.bot_turn(cid, text, source, shown)

    async def to_the_desk(self, cid: str, shown: str, mode: str) -> None:
        """A line while a person is involved: off hours it is filed as a work order; otherwise the agents of the
        hand-off's queue see it live, and a waiting citizen sees their place in the queue again."""
        if mode == "message":
            wid = await self.workorders.file_message(cid, shown)
            if wid is not None:
                await self.record(cid, "system", f"您的留言已登记为工单（编号 {wid}），工作人员上班后会尽快处理。", {"workorder": wid})
                self.hub.publish("desk", {"type": "workorders_changed"})
                return
        h = await self.handoffs.waiting(cid)
        if h is None:
            return
        self.hub.publish("desk", {"type": "citizen_message", "handoff_id": h["id"], "conversation_id": cid, "text": shown,
                                  "queue": h["queue"], "agent": h.get("agent")})
        if h["status"] == "queued":
            self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "queued", "position": h["position"],
                                                                             "queue": h["queue"]}})

    async def rating_reply(self, cid: str, text: str) -> bool:
        """The line after a person served the citizen: a rating is stored and thanked for (True); any line ends
        the waiting for one."""
        score = await self.ratings.reply(cid, text)
        self.hub.publish(f"conv:{cid}", {"type": "rating", "show": False})
        if score is None:
            return False
        await self.record(cid, "system", "感谢您的评价！还有其他问题可以继续问我。", {"rating": score})
        self.hub.publish("desk", {"type": "rating", "conversation_id": cid, "score": score})
        return True

    async def bot_turn(self, cid: str, text: str, source: str = "", shown: str | None = None) -> None:
        """Send the citizen's words to Rasa and record each reply.

        `source` (web:<client address>) travels as metadata: the card system limits failed identity checks
        per source as well as per conversation and per citizen. Lines left unanswered by an outage of Rasa are
        answered first, in order. A line asking for a person reaches one even when the bot could not open the
        hand-off (action server down or timed out, Rasa down): the web app opens it itself.
        """
        shown = shown if shown is not None else mask_text(text)
        try:
            if not await self.answer_unanswered(cid):
                raise RasaUnavailable("still down since an earlier line")
            replies = await self.rasa.send(cid, text, {"source": source} if source else None, channel="web")
        except RasaUnavailable as exc:
            log.error("Rasa unavailable for a chat turn: %s", exc)
            if asks_for_a_person(text):
                await self.handoff_without_bot(cid, text, shown)
                return
            queued = self.unanswered.add(cid, text, shown, source)
            await self.deliver(cid, "system", RASA_DOWN_TEXT if queued else RASA_DOWN_NOT_KEPT_TEXT,
                               {"error": "rasa_unavailable"})
            return
        await self.answer(cid, text, shown, replies)

    async def answer(self, cid: str, text: str, shown: str, replies: list[dict[str, Any]]) -> bool:
        """Show Rasa's replies to a line, or, when the line asked for a person and the bot's reply opened no
        hand-off (its action did not run or could not reach us), open it; True when a person takes over."""
        if asks_for_a_person(text) and not any(opened_handoff(r) for r in replies):
            await self.handoff_without_bot(cid, text, shown)
            return True
        if not replies:
            await self.deliver(cid, "bot", EMPTY_TEXT, {"empty": True})
            return False
        for r in replies:
            payload = {k: r[k] for k in ("buttons", "custom", "image") if r.get(k)}
            await self.deliver(cid, "bot", r.get("text") or "", payload)
        return False

    async def answer_unanswered(self, cid: str) -> bool:
        """Answer the conversation's lines left by an outage of Rasa, in order; False while Rasa is still away.
        Called within the conversation's turn; a conversation now served by a person only forgets them."""
        lines = self.unanswered.take(cid)
        if not lines:
            return True
        mode = await self.store.run(lambda s: getattr(s.get(Conversation, cid), "mode", "bot"))
        if mode != "bot":
            return True
        for i, (text, shown, source) in enumerate(lines):
            try:
                replies = await self.rasa.send(cid, text, {"source": source} if source else None, channel="web")
            except RasaUnavailable:
                self.unanswered.put_back(cid, lines[i:])
                return False
            await self.deliver(cid, "system", BOT_BACK_TEXT.format(shown=shown[:40] + ("…" if len(shown) > 40 else "")),
                               {"resumed": True})
            if await self.answer(cid, text, shown, replies):
                return True  # a person serves the conversation now and sees the later lines in the transcript
        return True

    async def resume_after_outage(self) -> None:
        """Once Rasa answers again, answer every line it missed (the web app runs this every few seconds)."""
        if not len(self.unanswered) or not await self.rasa.healthy():
            return
        for cid in self.unanswered.conversations_waiting():
            async with self._turn(cid):
                if not await self.answer_unanswered(cid):
                    return  # down again: the next round tries

    async def handoff_without_bot(self, cid: str, text: str, shown: str) -> None:
        """Open the hand-off the bot could not: same queue rules (the last answer's area), same desk, same reply."""
        complaint = asks_for_a_person(text) == "complain"
        last_entry = await self.store.run(lambda s: last_answered_entry(s, cid))
        asked = HandoffRequest(conversation_id=cid, channel="web", queue=queue_for_entry(last_entry),
                               reason=("市民投诉/情绪不满" if complaint else "市民要求人工") + "（智能客服未能转接，网页直接转人工）",
                               summary=shown[:200])
        reply = await self.handoffs.open(asked)
        log.warning("the bot opened no hand-off for a request of a person: the web app opened it (%s)", reply.status)
        if reply.status != "offhours":
            self.hub.publish("desk", {"type": "queue_changed", "queue": reply.queue})
        handoff = {"queue": reply.queue, "reason": asked.reason, "position": reply.position, "status": reply.status,
                   "id": reply.id}
        await self.deliver(cid, "bot", reply.message, {"custom": {"handoff": handoff}})

    # ------------------------------------------------------------------ what the desk does, told to the citizen
    async def agent_joined(self, cid: str, agent_name: str) -> None:
        """An agent claimed the conversation's hand-off."""
        await self.record(cid, "system", f"人工客服（{agent_name}）已接入，请讲。", {"handoff": {"status": "claimed"}})
        self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "claimed"}})

    async def agent_says(self, cid: str, hid: int, agent_name: str, text: str) -> dict:
        """A line of the serving agent."""
        return await self.record(cid, "agent", text, {"agent_name": agent_name, "handoff": hid})

    async def service_ended(self, cid: str) -> None:
        """The agent ended the service: the bot serves again and the citizen is asked for a rating."""
        await self.record(cid, "system", "人工服务已结束，请您对本次服务进行评价（满意 / 基本满意 / 不满意）。之后有问题可以继续问智能客服。",
                          {"handoff": {"status": "resolved"}, "rating_prompt": True})
        self.hub.publish(f"conv:{cid}", {"type": "rating", "show": True})
        self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "resolved"}})

    async def transferred(self, cid: str, queue: str, position: int) -> None:
        """The agent put the hand-off into another queue: the citizen waits there, at `position`."""
        await self.record(cid, "system", f"已为您转接{queue}专家坐席，请稍候。", {"handoff": {"status": "queued"}})
        self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "queued", "position": position, "queue": queue}})

    # ------------------------------------------------------------------ hand-off promises
    def closed_for_desk(self, h: dict[str, Any]) -> None:
        """Tell the desk a hand-off closed without an agent ending it (timed out, abandoned, returned)."""
        self.hub.publish("desk", {"type": "handoff_closed", "handoff_id": h["id"], "conversation_id": h["conversation_id"],
                                  "queue": h["queue"], "agent": h["agent"], "status": h["status"], "text": CLOSED[h["status"]]})
        self.hub.publish("desk", {"type": "queue_changed", "queue": h["queue"]})

    async def back_to_bot(self, cid: str) -> None:
        """回到机器人: the open hand-off (if any) closes as returned and the bot answers the next line."""
        closed = await self.handoffs.return_to_bot(cid)
        if closed is None:
            await self.deliver(cid, "system", "智能客服在呢，请问有什么可以帮您？")
            return
        self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "returned"}})
        self.closed_for_desk(closed)
        await self.deliver(cid, "system", "好的，已为您回到智能客服" + ("，人工服务已结束" if closed["agent"] else "，不再排队等待人工")
                           + "。请问还有什么可以帮您？", {"handoff": {"status": "returned"}})

    async def callback(self, cid: str) -> None:
        """预约回电 after a timed-out hand-off: one work order per hand-off, then the citizen may add to it."""
        hours = self.settings.handoff_callback_hours
        try:
            h, w, new = await self.handoffs.callback(cid, hours)
        except Refused as refused:
            await self.deliver(cid, "system", refused.message)
            return
        if not new:
            await self.deliver(cid, "system", f"您已预约过回电，工单编号 {w['id']}，请耐心等待。", {"workorder": w["id"]})
            return
        self.hub.publish("desk", {"type": "workorders_changed"})
        await self.deliver(cid, "system", f"已为您预约回电，工单编号 {w['id']}，{h['queue']}坐席会在 {hours} 小时内处理。"
                           "如需补充要办的事或联系电话，请在下一条消息里发送，我们会补充到工单里；"
                           "不需要的话点“回到机器人”继续咨询。",
                           {"workorder": w["id"], "buttons": [BACK_TO_BOT_BUTTON]})

    async def offer_after_timeout(self, h: dict[str, Any]) -> None:
        """The hand-off waited too long: tell the citizen, offer a callback work order or the bot."""
        cid = h["conversation_id"]
        self.hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": {"status": "timed_out"}})
        self.closed_for_desk(h)
        await self.deliver(cid, "system",
                           f"抱歉让您久等了：{h['queue']}专家坐席暂时都在忙，{spoken_duration(self.settings.handoff_wait_seconds)}"
                           f"内没能为您接通。您可以预约回电（登记工单，{self.settings.handoff_callback_hours} 小时内处理），"
                           "或者回到智能客服继续咨询；着急的话也可以拨打 12345 市民服务热线。",
                           {"handoff": {"status": "timed_out"},
                            "buttons": [{"title": "预约回电", "payload": CALLBACK}, BACK_TO_BOT_BUTTON]})

    def seen(self, cid: str) -> None:
        """The citizen is here (a message or page load over HTTP): the absence clock starts again."""
        if cid in self._away:
            self._away[cid] = time.monotonic()

    def page_closed(self, cid: str) -> None:
        """A chat page of the conversation went away; when it was the last one, the absence clock starts."""
        if not self.hub.listeners(f"conv:{cid}"):
            self._away[cid] = time.monotonic()

    async def sweep(self) -> None:
        """Apply the hand-off time limits once (the web app runs this every few seconds)."""
        for h in await self.handoffs.time_out(self.settings.handoff_wait_seconds):
            log.info("hand-off %s timed out after %.0f s unclaimed", h["id"], self.settings.handoff_wait_seconds)
            await self.offer_after_timeout(h)
        clock = time.monotonic()
        waiting: set[str] = set()
        for hid, cid in await self.handoffs.open_web():
            waiting.add(cid)
            if self.hub.listeners(f"conv:{cid}"):
                self._away.pop(cid, None)
                continue
            since = self._away.setdefault(cid, clock)  # first seen without a page (e.g. after a restart): from now
            if clock - since < self.settings.handoff_abandon_seconds:
                continue
            closed = await self.handoffs.abandon(hid)
            self._away.pop(cid, None)
            if closed is not None:
                log.info("hand-off %s abandoned: no chat page for %.0f s", hid, clock - since)
                self.closed_for_desk(closed)
                await self.deliver(cid, "system", f"您离开页面已超过 {spoken_duration(self.settings.handoff_abandon_seconds)}，"
                                   "本次人工服务已结束。需要时可以再说“转人工”。", {"handoff": {"status": "abandoned"}})
        for cid in [c for c in self._away if c not in waiting]:
            del self._away[cid]


def opened_handoff(reply: dict[str, Any]) -> bool:
    """Whether a bot reply says a hand-off was opened (the action's payload; "unavailable": it could not)."""
    handoff = (reply.get("custom") or {}).get("handoff") if isinstance(reply.get("custom"), dict) else None
    return isinstance(handoff, dict) and handoff.get("status") != "unavailable"


def last_answered_entry(s: Session, cid: str) -> str:
    """The knowledge entry the bot last answered in this conversation ("" when none), for the hand-off's queue."""
    for (payload,) in s.execute(select(Message.payload).where(Message.conversation_id == cid, Message.role == "bot")
                                .order_by(Message.id.desc()).limit(DUPLICATE_LOOKBACK)):
        kb = ((payload or {}).get("custom") or {}).get("kb") if isinstance((payload or {}).get("custom"), dict) else None
        if isinstance(kb, dict) and isinstance(kb.get("id"), str):
            return kb["id"]
    return ""


def record_citizen_line(s: Session, cid: str, shown: str, payload: dict | None,
                        client_id: str | None) -> tuple[dict[str, Any], bool, str, bool, bool]:
    """Store a citizen line, once per client_id: (line, newly stored, conversation mode, awaiting a rating, answered:
    a line already stored has something after it in the transcript)."""
    conv = Store.ensure_conversation(s, cid)
    if client_id:
        later = False
        for m in s.scalars(select(Message).where(Message.conversation_id == cid)
                           .order_by(Message.id.desc()).limit(DUPLICATE_LOOKBACK)):
            if m.role == "citizen" and (m.payload or {}).get("client_id") == client_id:
                return message_dict(m), False, conv.mode, bool(conv.awaiting_rating), later
            later = True
        payload = {**(payload or {}), "client_id": client_id}
    return Store.add_message(s, cid, "citizen", shown, payload), True, conv.mode, bool(conv.awaiting_rating), False
