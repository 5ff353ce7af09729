"""Social-security card self-service: identity verification, card progress and status, temporary loss.

Flow: the goal (report_card_loss / query_card_progress) first gets the knowledge-base guidance,
then `verify_identity_form` collects ID number, name and the registered phone's last 4 digits;
`action_verify_identity` checks them with the card system (cardsys) and continues with the goal.
Reading (status, progress) needs that verification; a change (the loss report) also needs the
one-time code the card system sends to the registered phone (`loss_code_form`).
Raw personal data never goes into the tracker: slots hold masked values, the raw values wait in
`PendingIdentity` (this process, a few minutes) until the check, then are dropped.

A verification belongs to one conversation and one identity: its handle stays in this process
(`handles`, never in the tracker, where Rasa's API could read it), expires with the card
system's session, and is revoked when the citizen cancels, when a new card request starts a new
verification (the next person at a shared terminal must verify again), and when the session ends.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from typing import Any, Generic, TypeVar

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.channel import SOURCE_RE, channel_of, source_of  # noqa: F401 (re-exported for the card tests)
from actions.kb_service import kb_service
from actions.knowledge import HUMAN_BUTTON, ActionAnswerFromKb, utter_entry
from cardsys import texts
from cardsys.idnumber import explain_invalid, is_valid_id
from cardsys.numbers import extract_id_number, extract_last4, normalize_digits
from cardsys.results import LossResult, VerificationRequired, VerifiedCitizen
from common.privacy import mask_id_number, mask_name

log = logging.getLogger(__name__)
T = TypeVar("T")
IDENTITY_SLOTS = ("id_number", "person_name", "phone_last4", "identity_code")
SPOKEN_IDENTITY = ["id_number", "person_name", "phone_last4"]  # what the form asks (domain.yml lists all four)
KEYPAD_IDENTITY = ["id_number", "phone_last4", "identity_code"]
KEYPAD_CODE_QUESTION = "请按键输入短信里的 6 位数字验证码。"  # no name by keys: a code to the registered phone instead
NAME_RE = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff·]{1,5}")
NOT_NAMES = {"取消", "算了", "不办了", "退出", "不知道", "转人工", "人工", "你好", "您好", "谢谢", "不是", "是的", "好的"}
NAME_PREFIX = re.compile(r"^(我(的名字)?(叫|是)|姓名(是|叫)?|名字(是|叫)|俺叫|俺是|本人)")


class PendingIdentity:
    """Raw identity answers of conversations in verification, kept in memory for a few minutes only."""

    def __init__(self, ttl: float = 900.0) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def put(self, conversation_id: str, key: str, value: str) -> None:
        """Remember one raw answer."""
        with self._lock:
            self._expire()
            _, d = self._data.get(conversation_id, (0.0, {}))
            d[key] = value
            self._data[conversation_id] = (time.monotonic(), d)

    def get(self, conversation_id: str) -> dict[str, str]:
        """The raw answers of a conversation (empty when expired)."""
        with self._lock:
            self._expire()
            return dict(self._data.get(conversation_id, (0.0, {}))[1])

    def drop(self, conversation_id: str) -> None:
        """Forget a conversation's raw answers."""
        with self._lock:
            self._data.pop(conversation_id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, (t, _) in self._data.items() if now - t > self.ttl]:
            del self._data[k]


pending = PendingIdentity()


class ConversationStore(Generic[T]):
    """One value per conversation, in this process only, forgotten after `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def put(self, conversation_id: str, value: T) -> None:
        """Keep the conversation's value (replacing any earlier one)."""
        with self._lock:
            self._data[conversation_id] = (time.monotonic(), value)

    def get(self, conversation_id: str) -> T | None:
        """The conversation's live value, or None."""
        with self._lock:
            got = self._data.get(conversation_id)
            if got is not None and time.monotonic() - got[0] > self.ttl:
                del self._data[conversation_id]
                return None
            return got[1] if got else None

    def pop(self, conversation_id: str) -> T | None:
        """Take the conversation's value out."""
        with self._lock:
            got = self._data.pop(conversation_id, None)
            return got[1] if got and time.monotonic() - got[0] <= self.ttl else None


# live verification handles (the tracker holds only a masked marker); the card system's session expires too
handles: ConversationStore[VerifiedCitizen] = ConversationStore(ttl=1800.0)
# a loss report's result, from the code form's validation to the action that tells it (the same turn)
loss_outcomes: ConversationStore[LossResult] = ConversationStore(ttl=300.0)
NEEDS_VERIFICATION = {
    "loss": "我可以现在帮您办理临时挂失。为保护您的信息安全，先核验一下身份（随时说“取消”可退出）。",
    "progress": "我可以帮您查询本人的社保卡进度。为保护您的信息安全，先核验一下身份（随时说“取消”可退出）。",
}
_card_system = None
_card_lock = threading.Lock()


def card_system():
    """The card-system adapter selected by configuration (SQL by default)."""
    global _card_system
    with _card_lock:
        if _card_system is None:
            from cardsys.adapter import SqlCardSystem

            _card_system = SqlCardSystem.from_settings()
        return _card_system


def keypad_only(tracker: Tracker) -> bool:
    """The caller can only press keys (the phone gateway has no speech model): no name can be given.

    The gateway says so in the message's metadata ({"speech": false}); the path it selects asks for more
    (a one-time code to the registered phone instead of the name), so a client that lies gains nothing.
    """
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return channel_of(tracker) == "phone" and isinstance(metadata, dict) and metadata.get("speech") is False


def six_digits(value: Any, tracker: Tracker) -> str | None:
    """A one-time code from the slot value or the message (typed, spoken or keyed), or None."""
    digits = normalize_digits(str(value or "")) or normalize_digits(tracker.latest_message.get("text") or "")
    return digits if re.fullmatch(r"\d{6}", digits or "") else None


def ask_for_code(dispatcher: CollectingDispatcher, conversation_id: str, text: str) -> None:
    """Ask for a one-time code (with the phone gateway's keypad hint) and note that this turn has asked."""
    dispatcher.utter_message(text=text, json_message={"voice": {"expect": "code"}})
    pending.put(conversation_id, "code_prompted", "1")


def asked_for_code(conversation_id: str) -> bool:
    """True (once) when this turn already asked for the code: the form's own ask then stays silent."""
    if not pending.get(conversation_id).get("code_prompted"):
        return False
    pending.put(conversation_id, "code_prompted", "")
    return True


def reset_identity(conversation_id: str) -> list[EventType]:
    """Forget the identity answers (slots and raw values)."""
    pending.drop(conversation_id)
    return [SlotSet(s, None) for s in IDENTITY_SLOTS]


async def end_verification(conversation_id: str) -> list[EventType]:
    """Revoke the conversation's verification (in the card system too) and forget the identity answers."""
    citizen = handles.pop(conversation_id)
    if citizen is not None:
        try:
            await asyncio.to_thread(card_system().end_verification, citizen)
        except Exception:  # the card system is down: the handle is gone here and expires there
            log.warning("could not revoke a verification in the card system", exc_info=True)
    return reset_identity(conversation_id) + [SlotSet("verified_ref", None)]


class _KbGuided:
    """Mixin: give the goal's knowledge-base guidance, remember the goal, then verification follows.

    Not an Action itself: rasa-sdk registers every Action subclass, and this one has no name.
    """

    canonical_question = ""
    goal = ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Guidance first (so the citizen knows what happens), then a new verification (the form, by rules).

        Any earlier verification of this conversation is revoked first: whoever asks now proves who
        they are now (on a shared terminal, the previous citizen's card stays closed).
        """
        events = await end_verification(tracker.sender_id)
        kb = kb_service.get()
        if kb is not None:
            decision = kb.decide(self.canonical_question)
            if decision.hits:
                utter_entry(dispatcher, decision.hits[0].entry, decision.confidence, "goal")
        dispatcher.utter_message(text=NEEDS_VERIFICATION[self.goal])
        return events + [SlotSet("card_goal", self.goal)]


class ActionCardLossEntry(_KbGuided, Action):
    """The citizen's own card is lost: explain, then verify and offer a temporary loss report."""

    canonical_question = "社保卡丢了，第一时间应该做什么？"
    goal = "loss"

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_loss_entry"


class ActionCardProgressEntry(_KbGuided, Action):
    """The citizen asks how far their card has got: verify, then look it up."""

    canonical_question = "怎么查询社保卡制卡进度"
    goal = "progress"

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_progress_entry"


class ValidateVerifyIdentityForm(FormValidationAction):
    """Checks each identity answer; slots keep masked values, raw ones wait in `pending`."""

    def name(self) -> str:
        """Validation action of verify_identity_form."""
        return "validate_verify_identity_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: dict) -> list[str]:
        """ID number, name, phone's last four; keypad-only callers: ID number, last four, then an SMS code."""
        if keypad_only(tracker):
            return list(KEYPAD_IDENTITY)
        return [slot for slot in domain_slots if slot not in KEYPAD_IDENTITY or slot in SPOKEN_IDENTITY]

    async def validate_id_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: dict) -> dict[str, Any]:
        """18 digits with a valid GB 11643 check digit; spoken and keypad digits are normalised."""
        text = tracker.latest_message.get("text") or ""
        candidate = extract_id_number(str(value or "")) or extract_id_number(text)
        if candidate and is_valid_id(candidate):
            pending.put(tracker.sender_id, "id_number", candidate)
            return {"id_number": mask_id_number(candidate)}
        reason = explain_invalid(candidate) if candidate else "没有识别到 18 位号码"
        dispatcher.utter_message(text=f"身份证号码好像不对（{reason}），请再核对一下重新输入。")
        return {"id_number": None}

    async def validate_person_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict) -> dict[str, Any]:
        """A Chinese name of 2-6 characters, with phrases like 我叫 removed."""
        text = NAME_PREFIX.sub("", re.sub(r"[\s，。,.!！?？]", "", str(value or "")))
        m = NAME_RE.fullmatch(text) or NAME_RE.fullmatch(NAME_PREFIX.sub("", re.sub(r"[\s，。,.!！?？]", "", tracker.latest_message.get("text") or "")))
        if not m or m.group(0) in NOT_NAMES:
            dispatcher.utter_message(text="没听清您的姓名，请只说或输入身份证上的姓名，例如：张三。")
            return {"person_name": None}
        pending.put(tracker.sender_id, "person_name", m.group(0))
        return {"person_name": mask_name(m.group(0))}

    async def validate_phone_last4(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict) -> dict[str, Any]:
        """Exactly four digits (spoken or typed)."""
        last4 = extract_last4(str(value or "")) or extract_last4(tracker.latest_message.get("text") or "")
        if not last4:
            dispatcher.utter_message(text="请输入登记手机号码的最后 4 位数字。")
            return {"phone_last4": None}
        pending.put(tracker.sender_id, "phone_last4", last4)
        return {"phone_last4": "****"}

    async def validate_identity_code(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: dict) -> dict[str, Any]:
        """Six digits (keypad callers' second factor instead of the name); the card system checks them."""
        digits = six_digits(value, tracker)
        if digits is None:
            ask_for_code(dispatcher, tracker.sender_id, KEYPAD_CODE_QUESTION)
            return {"identity_code": None}
        pending.put(tracker.sender_id, "identity_code", digits)
        return {"identity_code": "******"}


class ActionVerifyIdentity(Action):
    """Check the answers with the card system, then continue with the goal or ask again."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_verify_identity"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Verified: continue with the goal. Wrong: ask again. Too many failures: offer a person."""
        cid = tracker.sender_id
        goal = tracker.get_slot("card_goal") or "progress"
        next_action = {"loss": "action_card_loss_confirm", "progress": "action_card_progress"}.get(goal, "action_card_progress")
        raw = pending.get(cid)
        by_code = bool(raw.get("identity_code"))  # a keypad caller: ID number, last four, then the SMS code
        if not all(raw.get(k) for k in (KEYPAD_IDENTITY if by_code else SPOKEN_IDENTITY)):
            dispatcher.utter_message(text="核验信息已过期，请重新输入。")
            return reset_identity(cid) + [FollowupAction("verify_identity_form")]
        system = card_system()
        where = {"channel": channel_of(tracker), "conversation_id": cid, "source": source_of(tracker)}
        if by_code:
            result = await asyncio.to_thread(system.verify_code, raw["id_number"], raw["identity_code"], **where)
        else:
            result = await asyncio.to_thread(system.verify, raw["id_number"], raw["person_name"], raw["phone_last4"], **where)
        pending.drop(cid)
        if result.ok and result.citizen is not None:
            previous = handles.pop(cid)
            if previous is not None:  # a new identity in this conversation: the old one's access ends now
                await asyncio.to_thread(system.end_verification, previous)
            handles.put(cid, result.citizen)
            dispatcher.utter_message(text=f"身份核验通过（{result.masked_id}）。")
            return [SlotSet("verified_ref", result.masked_id), SlotSet("id_number", result.masked_id),
                    SlotSet("person_name", result.masked_name or None), SlotSet("phone_last4", "****"),
                    FollowupAction(next_action)]
        if result.code == "slow_down":  # repeated failures for this citizen: wait, or a person now
            dispatcher.utter_message(text=result.message, buttons=[HUMAN_BUTTON])
            return reset_identity(cid) + [SlotSet("card_goal", None)]
        dispatcher.utter_message(text=result.message)
        if result.code == "locked":
            return reset_identity(cid) + [SlotSet("card_goal", None), SlotSet("handoff_reason", "身份核验多次失败"),
                                          FollowupAction("action_handoff_to_human")]
        return reset_identity(cid) + [FollowupAction("verify_identity_form")]


def reverify(goal: str) -> list[EventType]:
    """Forget a verification that is no longer valid and ask again, keeping the citizen's goal."""
    return [SlotSet("verified_ref", None), SlotSet("card_goal", goal), FollowupAction("verify_identity_form")]


async def _verified(dispatcher: CollectingDispatcher, tracker: Tracker) -> VerifiedCitizen | None:
    """This conversation's live verification (the tracker's marker alone opens nothing)."""
    citizen = handles.get(tracker.sender_id)
    if citizen is None or citizen.conversation_id != tracker.sender_id:
        dispatcher.utter_message(text=VerificationRequired().message)
        return None
    return citizen


class ActionCardProgress(Action):
    """Tell the verified citizen where their card is and what to do next."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_progress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Look up the application progress and the card status."""
        citizen = await _verified(dispatcher, tracker)
        if citizen is None:
            return reverify("progress")
        try:
            progress = await asyncio.to_thread(card_system().application_progress, citizen)
        except VerificationRequired as exc:
            dispatcher.utter_message(text=exc.message)
            return reverify("progress")
        lines = [progress.message]
        if progress.what_to_bring:
            lines.append("领卡请带：" + "、".join(progress.what_to_bring) + "。")
        if progress.next_step:
            lines.append(progress.next_step)
        dispatcher.utter_message(text="\n".join(lines), json_message={"card": {"stage": progress.stage, "step": progress.step,
                                                                               "total_steps": progress.total_steps}})
        return [SlotSet("card_goal", None)]


class ActionCardLossConfirm(Action):
    """Show the card that would be reported and ask for explicit confirmation."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_loss_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Ask 确认挂失 / 取消."""
        citizen = await _verified(dispatcher, tracker)
        if citizen is None:
            return reverify("loss")
        status = await asyncio.to_thread(card_system().card_status, citizen)
        if not status.can_report_loss:
            dispatcher.utter_message(text=status.message)
            return [SlotSet("card_goal", None)]
        dispatcher.utter_message(
            text=f"您名下卡号{status.masked_card_number}的社保卡当前状态为“{status.status}”。"
                 "确认要办理临时挂失吗？挂失后这张卡的社保和金融功能将暂停使用。",
            buttons=[{"title": "确认挂失", "payload": "/affirm"}, {"title": "取消", "payload": "/deny"}],
            json_message={"voice": {"expect": "yes_no"}})
        return []


class ActionCardLossSendCode(Action):
    """The citizen confirmed: send the one-time code to the registered phone, then ask for it."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_loss_send_code"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Sent: the code form follows. Not sent (no SMS service, asked too soon): say why and offer a person."""
        citizen = await _verified(dispatcher, tracker)
        if citizen is None:
            return reverify("loss")
        try:
            sent = await asyncio.to_thread(card_system().send_change_code, citizen)
        except VerificationRequired as exc:
            dispatcher.utter_message(text=exc.message)
            return reverify("loss")
        if not sent.ok:
            dispatcher.utter_message(text=sent.message, buttons=[HUMAN_BUTTON])
            return [SlotSet("card_goal", None)]
        ask_for_code(dispatcher, tracker.sender_id, sent.message)
        return [SlotSet("loss_code", None), FollowupAction("loss_code_form")]


class ValidateLossCodeForm(FormValidationAction):
    """The one-time code: six digits, typed, spoken or keyed; the slot keeps only a mask."""

    def name(self) -> str:
        """Validation action of loss_code_form."""
        return "validate_loss_code_form"

    async def validate_loss_code(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: dict) -> dict[str, Any]:
        """Six digits, checked by the card system with the report itself.

        A wrong code keeps the form asking (no re-activation, which would re-read the same message);
        any other outcome (reported, refused, code spent) ends the form and `action_card_report_loss`
        says it.
        """
        digits = six_digits(value, tracker)
        if digits is None:
            ask_for_code(dispatcher, tracker.sender_id, "请输入短信里的 6 位数字验证码。")
            return {"loss_code": None}
        citizen = handles.get(tracker.sender_id)
        if citizen is None:  # expired meanwhile: the report action asks for a new verification
            return {"loss_code": "******"}
        try:
            result = await asyncio.to_thread(card_system().report_temporary_loss, citizen, digits)
        except VerificationRequired:
            return {"loss_code": "******"}
        if result.code == "code_wrong":
            ask_for_code(dispatcher, tracker.sender_id, result.message)
            return {"loss_code": None}
        loss_outcomes.put(tracker.sender_id, result)
        return {"loss_code": "******"}


class ActionAskLossCode(Action):
    """Ask for the code again (the form asks with it)."""

    def name(self) -> str:
        """action_ask_<form>_<slot>."""
        return "action_ask_loss_code_form_loss_code"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Ask, with the keypad hint for the phone gateway, unless the turn's last message already asked."""
        if asked_for_code(tracker.sender_id):
            return []
        dispatcher.utter_message(text="请输入短信验证码（6 位数字）。", json_message={"voice": {"expect": "code"}})
        return []


class ActionCardReportLoss(Action):
    """Record the temporary loss with the code from the citizen's phone."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_report_loss"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Say the outcome of the report the code form made: done, refused, or the code is spent."""
        result = loss_outcomes.pop(tracker.sender_id)
        if result is None:  # no report was made (the verification expired meanwhile)
            if await _verified(dispatcher, tracker) is None:
                return reverify("loss")
            dispatcher.utter_message(text=texts.CHANGE_CODE_GONE, buttons=[HUMAN_BUTTON])
            return [SlotSet("loss_code", None), SlotSet("card_goal", None)]
        if result.code.startswith("code_"):
            dispatcher.utter_message(text=result.message, buttons=[HUMAN_BUTTON])
            return [SlotSet("loss_code", None), SlotSet("card_goal", None)]
        text = result.message + ("\n" + "\n".join(result.next_steps) if result.next_steps else "")
        dispatcher.utter_message(text=text, json_message={"card": {"loss": result.code, "status": result.status_after}})
        return [SlotSet("loss_code", None), SlotSet("card_goal", None)]


class ActionCancelCardService(Action):
    """The citizen cancels: stop the form, forget the answers."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_cancel_card_service"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Deactivate the form, revoke any verification and forget the identity answers."""
        dispatcher.utter_message(text="好的，已取消本次办理，您的信息不会保留。还有其他问题可以继续问我。")
        return ([ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("card_goal", None)]
                + await end_verification(tracker.sender_id))


class _AskSlot:
    """Mixin: ask for one identity slot; `expect` tells the phone gateway which keypad/grammar to use."""

    slot = ""
    question = ""
    expect: str | None = None

    def name(self) -> str:
        """action_ask_<form>_<slot>: Rasa's form asks with it."""
        return f"action_ask_verify_identity_form_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Ask the question (with the phone hint)."""
        dispatcher.utter_message(text=self.question, json_message={"voice": {"expect": self.expect}} if self.expect else None)
        return []


class ActionAskIdNumber(_AskSlot, Action):
    """Ask for the ID number."""

    slot, expect = "id_number", "id_number"
    question = "请输入您的 18 位身份证号码。电话里可以直接说，或按键输入、以 # 号结束，X 用 * 号代替。"


class ActionAskPersonName(_AskSlot, Action):
    """Ask for the name on the ID card."""

    slot, expect = "person_name", "free"  # spoken, never keypad digits
    question = "请告诉我身份证上的姓名。"


class ActionAskIdentityCode(Action):
    """Keypad callers: send a one-time code to the registered phone (if ID number and last four match), ask for it."""

    def name(self) -> str:
        """action_ask_<form>_<slot>: Rasa's form asks with it."""
        return "action_ask_verify_identity_form_identity_code"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """The first time: send the code (the same answer whether or not the data matched). Then: ask again."""
        cid = tracker.sender_id
        if asked_for_code(cid):  # the validation already asked again in this turn
            return []
        raw = pending.get(cid)
        if raw.get("code_sent"):
            dispatcher.utter_message(text=KEYPAD_CODE_QUESTION, json_message={"voice": {"expect": "code"}})
            return []
        if not (raw.get("id_number") and raw.get("phone_last4")):
            dispatcher.utter_message(text="核验信息已过期，请重新输入。")
            return reset_identity(cid) + [FollowupAction("verify_identity_form")]
        sent = await asyncio.to_thread(card_system().send_code, raw["id_number"], phone_last4=raw["phone_last4"],
                                       channel=channel_of(tracker), conversation_id=cid, source=source_of(tracker))
        if not sent.ok:  # no SMS here, too soon, or this ID is slowed down: a person can still help
            why = texts.KEYPAD_CODE_UNAVAILABLE if sent.code == "unavailable" else sent.message
            dispatcher.utter_message(text=why + "转人工服务请按零。", buttons=[HUMAN_BUTTON])
            return ([ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("card_goal", None)]
                    + reset_identity(cid))
        pending.put(cid, "code_sent", "1")
        dispatcher.utter_message(text=sent.message, json_message={"voice": {"expect": "code"}})
        return []


class ActionAskPhoneLast4(_AskSlot, Action):
    """Ask for the last 4 digits of the registered phone."""

    slot, expect = "phone_last4", "phone_number"
    question = "请输入您在社保卡系统登记的手机号码的后 4 位。"


_ = ActionAnswerFromKb  # questions asked mid-form are answered by the knowledge action (rules)
