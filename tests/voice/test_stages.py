"""Stage tests: frames in, frames out."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.voice.doubles import CollectingSink, ScriptedBot, ScriptedRecognizerFactory, ToneEngine, tone_pcm8k
from voice.audio import silence
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.frames import (
    AudioIn,
    AudioOut,
    BotReply,
    CallerTurn,
    CallStarted,
    Dtmf,
    EndCall,
    Frame,
    Hangup,
    HumanRequested,
    KeypadEntry,
    ListenFor,
    PlaybackFinished,
    SpeakText,
    SpeechStarted,
    Tick,
    Transcript,
    UtteranceDiscarded,
    UtteranceEnded,
    UtteranceStarted,
)
from voice.pipeline import run_stages
from voice.settings import ListenTimings, Settings
from voice.stages.dialogue import Dialogue, expectation_of
from voice.stages.endpointer import Endpointer
from voice.stages.formatter import SpeechFormatter
from voice.stages.handoff import Handoff
from voice.stages.keypad import KeypadCollector
from voice.stages.normaliser import NumberNormaliser
from voice.stages.player import Player
from voice.stages.recogniser import Recogniser
from voice.stages.recorder import Recorder
from voice.stages.synthesiser import Synthesiser
from voice.store import CallRecord, CallStore

pytestmark = pytest.mark.asyncio


def audio(pcm: bytes, start: float = 0.0) -> list[AudioIn]:
    """20 ms AudioIn frames with arrival times, as a transport would make them."""
    return [AudioIn(pcm=pcm[i : i + 320], at=start + i / 16000) for i in range(0, len(pcm), 320)]


def kinds(frames: list[Frame]) -> list[str]:
    return [type(f).__name__ for f in frames if not isinstance(f, (AudioIn, Tick))]


# --- Endpointer ---------------------------------------------------------------------------

async def test_endpointer_marks_speech_and_its_end() -> None:
    frames = audio(silence(200) + tone_pcm8k(300, 600) + silence(600))
    out = await run_stages([Endpointer(ListenTimings(eou_silence_ms=500))], frames)
    assert kinds(out) == ["UtteranceStarted", "SpeechStarted", "UtteranceEnded"]
    ended = next(f for f in out if isinstance(f, UtteranceEnded))
    assert ended.speech_ms == 600
    assert ended.at - ended.last_voice_at == pytest.approx(0.5, abs=0.03)
    assert sum(isinstance(f, AudioIn) for f in out) == len(frames)  # audio passes through


async def test_a_short_noise_is_not_speech_and_never_barges_in() -> None:
    frames = audio(silence(100) + tone_pcm8k(300, 100) + silence(600))
    out = await run_stages([Endpointer(ListenTimings(min_speech_ms=200))], frames)
    assert kinds(out) == ["UtteranceStarted", "UtteranceDiscarded"]


async def test_end_of_utterance_waits_longer_when_a_number_is_asked() -> None:
    frames = [ListenFor(expect="id_number", eou_silence_ms=1200), *audio(tone_pcm8k(300, 400) + silence(800))]
    out = await run_stages([Endpointer(ListenTimings())], frames)
    assert "UtteranceEnded" not in kinds(out)  # 800 ms of pause between digit groups is not the end


async def test_the_clock_ends_an_utterance_when_audio_stops_arriving() -> None:
    # Asterisk sends nothing while the caller is silent.
    frames = [*audio(tone_pcm8k(300, 400)), Tick(now=0.5), Tick(now=0.95)]
    out = await run_stages([Endpointer(ListenTimings(eou_silence_ms=500))], frames)
    assert kinds(out) == ["UtteranceStarted", "SpeechStarted", "UtteranceEnded"]
    assert next(f for f in out if isinstance(f, UtteranceEnded)).at == 0.95


# --- Recogniser ---------------------------------------------------------------------------

async def test_recogniser_transcribes_each_utterance_with_preroll() -> None:
    factory = ScriptedRecognizerFactory([("你好", 0.9)])
    stage = Recogniser(factory)
    pre = audio(tone_pcm8k(300, 100))
    speech = [replace(f, voiced=True) for f in audio(tone_pcm8k(300, 300))]
    trailing = audio(silence(600))
    frames = [*pre, UtteranceStarted(at=0.1), *speech, *trailing, UtteranceEnded(at=1, speech_ms=300, last_voice_at=0.5)]
    out = await run_stages([stage], frames)
    assert [f for f in out if isinstance(f, Transcript)] == [Transcript("你好", 0.9, True, 1)]
    assert stage.cpu_audio_ms == 600  # 100 ms pre-roll + 300 ms speech + 200 ms of the trailing silence


async def test_recogniser_drops_discarded_noise_and_uses_the_prompt_grammar() -> None:
    factory = ScriptedRecognizerFactory([("不该出现", 1.0)])
    frames = [ListenFor(grammar=("是", "不是")), UtteranceStarted(at=0), *audio(tone_pcm8k(300, 100)), UtteranceDiscarded(at=0.4)]
    out = await run_stages([Recogniser(factory)], frames)
    assert not [f for f in out if isinstance(f, Transcript)]
    assert factory.grammars == [("是", "不是")]


# --- NumberNormaliser and KeypadCollector -------------------------------------------------

async def test_normaliser_keeps_only_the_number_when_one_was_asked() -> None:
    out = await run_stages([NumberNormaliser()], [
        Transcript("我 想 问 一下 两 个 问题"),
        ListenFor(expect="phone_number"),
        Transcript("我 的 手机 是 幺 三 八 幺 二 三 四 五 六 七 八"),
    ])
    texts = [f.text for f in out if isinstance(f, Transcript)]
    assert texts == ["我想问一下两个问题", "13812345678"]


async def test_keypad_collects_an_id_number_with_star_as_x_and_hash_to_finish() -> None:
    keys = [Dtmf(d, at=i) for i, d in enumerate("37010219900101123*#")]
    out = await run_stages([KeypadCollector(10000)], [ListenFor(expect="id_number"), *keys])
    assert [f for f in out if isinstance(f, KeypadEntry)] == [KeypadEntry("37010219900101123X", at=18)]


async def test_keypad_zero_means_a_person_except_inside_a_phone_number() -> None:
    stage = KeypadCollector(10000)
    out = await run_stages([stage], [Dtmf("0"), ListenFor(expect="phone_number"), *[Dtmf(d) for d in "0531#"],
                                      ListenFor(expect="id_number"), Dtmf("0")])
    assert kinds(out)[-1] == "HumanRequested"
    assert [f.digits for f in out if isinstance(f, KeypadEntry)] == ["0531"]
    assert sum(isinstance(f, HumanRequested) for f in out) == 2


async def test_keypad_submits_after_a_quiet_spell_without_hash() -> None:
    out = await run_stages([KeypadCollector(2000)], [ListenFor(expect="card_number"), Dtmf("1", at=0), Dtmf("2", at=1),
                                                     Tick(now=2.5), Tick(now=3.1)])
    assert [f.digits for f in out if isinstance(f, KeypadEntry)] == ["12"]


# --- Dialogue -----------------------------------------------------------------------------

def dialogue(bot: ScriptedBot, **timing: Any) -> tuple[Dialogue, list[Frame]]:
    fed_back: list[Frame] = []
    settings = Settings(handoff_backend="local", timings=ListenTimings(**timing))
    return Dialogue(bot, settings, fed_back.append), fed_back


def said(frames: list[Frame]) -> list[str]:
    return [" ".join(m.get("text", "") for m in f.messages) for f in frames if isinstance(f, BotReply)]


@pytest.mark.parametrize("caller, source", [("+86 138-0000-1234", "phone:+8613800001234"), ("", None),
                                             ("anonymous", None)])
async def test_the_callers_number_travels_to_the_bot_as_the_source_for_verification_limits(caller, source) -> None:
    bot = ScriptedBot([[{"text": "好的"}]])
    stage, _ = dialogue(bot)
    await run_stages([stage], [CallStarted("call-2", "media_stream", caller=caller), Transcript("查社保卡", 0.9)])
    assert bot.sent[0][2].get("source") == source


async def test_greeting_then_a_bot_turn_with_the_call_id_as_sender() -> None:
    bot = ScriptedBot([[{"text": "您好，请问办理什么业务？"}]])
    stage, fed_back = dialogue(bot)
    out = await run_stages([stage], [CallStarted("call-1", "test"), Transcript("社保卡 挂失", 0.9)])
    assert said(out)[0].startswith("您好，这里是济南市社会保障服务中心")
    assert bot.sent == [("call-1", "社保卡 挂失", {"input": "speech"})]
    assert [f for f in out if isinstance(f, CallerTurn)] == [CallerTurn("社保卡 挂失", "speech")]
    assert said(out)[-1] == "您好，请问办理什么业务？"
    assert all(isinstance(f, ListenFor) for f in fed_back)


async def test_number_question_listens_longer_and_adds_the_keypad_hint() -> None:
    bot = ScriptedBot([[{"text": "请说出您的身份证号码。"}]])
    stage, fed_back = dialogue(bot)
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("挂失", 0.9)])
    assert fed_back[-1].expect == "id_number"
    assert fed_back[-1].eou_silence_ms == 1200
    assert "以井号键结束" in said(out)[-1]


async def test_no_input_reprompts_the_last_question_then_hands_off() -> None:
    stage, _ = dialogue(ScriptedBot(), no_input_timeout_ms=1000)
    frames: list[Frame] = [CallStarted("c", "t")]
    for n in range(3):
        frames += [PlaybackFinished(utterance_id=n, at=10.0 * n), Tick(now=10.0 * n + 1.1)]
    out = await run_stages([stage], frames)
    replies = said(out)
    assert replies[1].startswith("抱歉，我没有听到您的声音。") and "请问您要咨询什么" in replies[1]
    assert replies[2].startswith("抱歉，我没有听到您的声音。")
    assert [f for f in out if isinstance(f, EndCall)] == [EndCall("transfer", "shebao-experts", "no_input")]


async def test_no_input_timer_stops_while_the_caller_speaks() -> None:
    stage, _ = dialogue(ScriptedBot(), no_input_timeout_ms=1000)
    out = await run_stages([stage], [CallStarted("c", "t"), PlaybackFinished(1, at=0), SpeechStarted(at=0.5), Tick(now=5)])
    assert len(said(out)) == 1  # only the greeting


async def test_low_confidence_is_confirmed_before_it_goes_to_the_bot() -> None:
    bot = ScriptedBot()
    stage, _ = dialogue(bot)
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("养老 保险", 0.3), KeypadEntry("1")])
    assert "我听到的是：养老 保险。对吗？" in said(out)[1]
    assert [t for _, t, _ in bot.sent] == ["养老 保险"]


async def test_rejected_confirmation_asks_again_without_a_bot_turn() -> None:
    bot = ScriptedBot()
    stage, _ = dialogue(bot)
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("养老", 0.3), Transcript("不对", 1.0)])
    assert said(out)[-1].startswith("好的，请再说一遍。")
    assert bot.sent == []


async def test_keypad_digit_picks_a_button() -> None:
    bot = ScriptedBot([[{"text": "请选择", "buttons": [{"title": "挂失", "payload": "/card_loss"},
                                                       {"title": "养老", "payload": "/pension"}]}]])
    stage, fed_back = dialogue(bot)
    await run_stages([stage], [CallStarted("c", "t"), Transcript("办 卡", 0.9), KeypadEntry("2")])
    assert bot.sent[-1][1:] == ("/pension", {"input": "keypad"})


async def _menu_listen(open_grammar: tuple[str, ...]) -> ListenFor:
    bot = ScriptedBot([[{"text": "没有找到答案，您可以换个说法再问，或者转人工。",
                         "buttons": [{"title": "转人工", "payload": "/request_human"}]}]])
    fed_back: list[Frame] = []
    stage = Dialogue(bot, Settings(handoff_backend="local", open_grammar=open_grammar), fed_back.append)
    await run_stages([stage], [CallStarted("c", "t"), Transcript("办 卡", 0.9)])
    return [f for f in fed_back if isinstance(f, ListenFor)][-1]


async def test_a_menu_listens_for_its_options_and_for_a_new_question() -> None:
    listen = await _menu_listen(("养老保险", "社保卡挂失"))
    assert "转人工" in listen.grammar and "养老保险" in listen.grammar and "社保卡挂失" in listen.grammar
    assert listen.choices == ("/request_human",)
    # without a configured phrase list the caller is heard free-form (options are matched in the text)
    assert (await _menu_listen(())).grammar == ()


async def test_a_confirmation_listens_for_its_answers_only() -> None:
    bot = ScriptedBot([[{"text": "确认挂失吗？", "buttons": [{"title": "确认", "payload": "/affirm"}],
                         "custom": {"voice": {"expect": "yes_no"}}}]])
    fed_back: list[Frame] = []
    stage = Dialogue(bot, Settings(handoff_backend="local", open_grammar=("养老保险",)), fed_back.append)
    await run_stages([stage], [CallStarted("c", "t"), Transcript("挂失", 0.9)])
    grammar = [f for f in fed_back if isinstance(f, ListenFor)][-1].grammar
    assert "确认" in grammar and "养老保险" not in grammar


async def test_bot_handoff_becomes_a_transfer_after_its_message() -> None:
    bot = ScriptedBot([[{"text": "正在为您转接。", "custom": {"handoff": {"queue": "pension-desk", "reason": "asked"}}}]])
    stage, _ = dialogue(bot)
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("人工", 1.0), Transcript("还在吗", 1.0)])
    assert [k for k in kinds(out) if k != "Transcript"][-2:] == ["BotReply", "EndCall"]
    end = next(f for f in out if isinstance(f, EndCall))
    assert (end.queue, end.reason) == ("pension-desk", "asked")
    assert len(bot.sent) == 1  # nothing goes to the bot after the hand-off


async def test_bot_queue_names_map_to_pbx_queues_and_unavailable_desk_keeps_the_bot() -> None:
    bot = ScriptedBot([
        [{"text": "抱歉，人工客服系统暂时连接不上。", "custom": {"handoff": {"queue": "综合", "status": "unavailable"}}}],
        [{"text": "正在为您转接。", "custom": {"handoff": {"queue": "养老", "status": "queued", "id": 7}}}],
    ])
    fed_back: list[Frame] = []
    settings = Settings(handoff_backend="local", queue_map={"养老": "shebao-pension"})
    out = await run_stages([Dialogue(bot, settings, fed_back.append)],
                           [CallStarted("c", "t"), Transcript("转人工", 1.0), Transcript("转人工", 1.0)])
    ends = [f for f in out if isinstance(f, EndCall)]
    assert len(ends) == 1 and ends[0].queue == "shebao-pension"


@pytest.mark.parametrize("said_", ["转人工", "我要投诉你们"])
async def test_a_request_for_a_person_the_bot_left_unanswered_transfers_the_call_with_a_ticket(said_) -> None:
    # the action server is down: Rasa's hand-off action fails and its answer is empty
    bot = ScriptedBot([[]])
    record, desk = CallRecord(call_id="c"), InMemoryHandoffDesk()
    stage = Dialogue(bot, Settings(handoff_backend="local"), lambda frame: None)
    out = await run_stages([stage, Handoff(desk, record)], [CallStarted("c", "t"), Transcript(said_, 1.0)])
    end = next(f for f in out if isinstance(f, EndCall))
    assert end.action == "transfer" and end.reason == "caller_asked"
    assert "转接人工" in said(out)[-1]
    [ticket] = desk.tickets
    assert ticket.conversation_id == "c" and "智能客服未能转接" in ticket.summary and record.handoff_status == "sent"


async def test_an_empty_answer_to_a_question_keeps_the_caller_with_the_bot() -> None:
    stage, _ = dialogue(ScriptedBot([[]]))
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("社保卡怎么补办", 1.0)])
    assert not any(isinstance(f, EndCall) for f in out)


async def test_a_ticket_made_by_the_bot_is_not_sent_twice() -> None:
    record, desk = CallRecord(call_id="c"), InMemoryHandoffDesk()
    await run_stages([Handoff(desk, record)], [EndCall("transfer", "q", "r", details={"status": "queued", "id": 7})])
    assert desk.tickets == [] and record.handoff_status == "created by the bot (7)"


async def test_bot_down_transfers_the_caller() -> None:
    from voice.engines.bot import BotUnavailable

    class DownBot(ScriptedBot):
        async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
            raise BotUnavailable("connection refused")

    stage, _ = dialogue(DownBot())
    out = await run_stages([stage], [CallStarted("c", "t"), Transcript("你好", 1.0)])
    assert "系统暂时繁忙" in said(out)[-1]
    assert next(f for f in out if isinstance(f, EndCall)).reason == "bot_unavailable"


async def test_zero_on_the_keypad_reaches_a_person() -> None:
    stage, _ = dialogue(ScriptedBot())
    out = await run_stages([stage], [CallStarted("c", "t"), HumanRequested()])
    assert next(f for f in out if isinstance(f, EndCall)).reason == "caller_pressed_0"


async def test_expectation_from_custom_or_text() -> None:
    assert expectation_of(({"text": "好的", "custom": {"voice": {"expect": "phone_number"}}},)) == "phone_number"
    assert expectation_of(({"text": "请告诉我您的手机号。"},)) == "phone_number"
    assert expectation_of(({"text": "身份证可以在服务大厅补办。"},)) == "free"
    menu = {"text": "您的身份证号已收到，还需要转人工吗？", "buttons": [{"title": "转人工", "payload": "/h"}]}
    assert expectation_of((menu,)) == "free"


# --- Formatter, Synthesiser, Player -------------------------------------------------------

async def test_formatter_prefers_the_voice_answer_and_speaks_buttons() -> None:
    reply = BotReply(messages=(
        {"text": "详见 https://x.invalid", "custom": {"kb": {"id": "k1", "score": 0.9, "voice_answer": "请拨打12333。"}}},
        {"text": "还有别的问题吗", "buttons": [{"title": "没有了", "payload": "/bye"}]},
    ))
    out = await run_stages([SpeechFormatter()], [reply])
    assert out == [SpeakText("请拨打幺二三三三。还有别的问题吗。请说没有了，或者按一。", utterance_id=1)]


async def test_synthesiser_makes_8khz_audio_per_sentence_and_caches_it() -> None:
    engine = ToneEngine()
    stage = Synthesiser(SpeechCache(engine))
    out = await run_stages([stage], [SpeakText("这是第一句话。这是第二句话！", 1), SpeakText("这是第一句话。", 2)])
    chunks = [f for f in out if isinstance(f, AudioOut)]
    assert [(c.utterance_id, c.last) for c in chunks] == [(1, False), (1, True), (2, True)]
    assert len(chunks[0].pcm) == 2 * int(8000 * 0.06 * 7)  # seven characters of tone, at 8 kHz
    assert engine.texts == ["这是第一句话。", "这是第二句话！"]  # the repeat came from the cache


async def test_player_paces_20ms_frames_and_reports_the_end() -> None:
    sink, fed_back = CollectingSink(), []
    player = Player(sink, fed_back.append)
    await run_stages([player], [AudioOut(tone_pcm8k(440, 200), utterance_id=7, last=True)])
    await player.task
    times = [t for t, _ in sink.frames]
    assert len(times) == 10 and all(len(p) == 320 for _, p in sink.frames)
    assert times[-1] - times[0] == pytest.approx(0.18, abs=0.06)  # real-time pace, not a burst
    assert isinstance(fed_back[-1], PlaybackFinished) and not fed_back[-1].interrupted


async def test_barge_in_stops_playback_at_once_and_clears_the_platform_buffer() -> None:
    sink, fed_back = CollectingSink(), []
    player = Player(sink, fed_back.append)
    await run_stages([player], [AudioOut(tone_pcm8k(440, 2000), utterance_id=3, last=True)])
    await asyncio.sleep(0.1)
    await run_stages([player], [SpeechStarted(at=1.0)])
    sent = len(sink.frames)
    await asyncio.sleep(0.1)
    assert len(sink.frames) <= sent + 1 and sent < 20
    assert sink.clears == 1
    assert fed_back[-1] == PlaybackFinished(utterance_id=3, at=1.0, interrupted=True)


async def test_player_ends_the_call_after_the_last_words() -> None:
    sink = CollectingSink()
    player = Player(sink, lambda f: None)
    await run_stages([player], [AudioOut(tone_pcm8k(440, 100), 1, True), EndCall("transfer", "shebao-experts", "x")])
    await asyncio.wait_for(sink.ended_event.wait(), 2)
    assert sink.ended == ("transfer", "shebao-experts") and len(sink.frames) == 5


# --- Recorder and Handoff -----------------------------------------------------------------

async def test_transfer_sends_a_masked_ticket_and_the_call_is_saved(tmp_path) -> None:
    record, desk = CallRecord(), InMemoryHandoffDesk()
    store = CallStore(tmp_path / "calls.sqlite3")
    stages = [Recorder(record, store), Handoff(desk, record)]
    await run_stages(stages, [
        CallStarted("call-9", "test"),
        ListenFor(expect="id_number"),
        CallerTurn("370102199001011234", "keypad"),
        BotReply(messages=({"text": "正在为您转接。"},)),
        EndCall("transfer", "shebao-experts", "caller_pressed_0"),
        Hangup(),
    ])
    ticket = desk.tickets[0].to_json()
    assert ticket["conversation_id"] == "call-9" and ticket["channel"] == "phone"
    assert ticket["slots"] == {"id_number": "身份证尾号1234"}
    assert [line["role"] for line in ticket["transcript"]] == ["caller", "bot"]
    assert "370102199001011234" not in str(ticket)
    saved = store.load("call-9")
    assert saved["outcome"] == "transferred" and saved["handoff_status"] == "sent"
    assert saved["transcript"][0]["text"] == "身份证尾号1234"


async def test_a_desk_failure_is_recorded_and_the_transfer_goes_on(tmp_path) -> None:
    class BrokenDesk:
        async def hand_off(self, ticket: object) -> None:
            raise ConnectionError("web app down")

    record = CallRecord(call_id="c")
    out = await run_stages([Handoff(BrokenDesk(), record)], [EndCall("transfer", "q", "r")])
    assert kinds(out) == ["EndCall"]
    assert record.handoff_status.startswith("failed")


async def test_a_call_cut_by_a_dying_gateway_keeps_what_was_said_and_is_closed_at_the_next_start(tmp_path) -> None:
    class Events:
        def __init__(self) -> None:
            self.published: list[tuple[str, str, dict]] = []

        def publish(self, kind: str, sender: str, data: dict, at: float | None = None) -> None:
            self.published.append((kind, sender, data))

    store = CallStore(tmp_path / "calls.sqlite3")
    # the gateway dies after one turn: no Hangup ever reaches the recorder
    await run_stages([Recorder(CallRecord(), store)], [
        CallStarted("cut-1", "test"), CallerTurn("社保卡丢了", "speech"), BotReply(messages=({"text": "可以挂失。"},))])
    running = store.load("cut-1")
    assert running["ended_at"] == 0 and [t["text"] for t in running["transcript"]] == ["社保卡丢了", "可以挂失。"]
    await run_stages([Recorder(CallRecord(), store)], [CallStarted("done-1", "test"), Hangup()])
    # the next start (voice/app.py) closes the cut call, and only it, and tells the analytics
    events = Events()
    restarted = CallStore(tmp_path / "calls.sqlite3", events=events)
    assert restarted.close_interrupted(1_000.0) == ["cut-1"]
    closed = restarted.load("cut-1")
    assert (closed["outcome"], closed["reason"], closed["ended_at"]) == ("interrupted", "gateway_stopped", 1_000.0)
    assert len(closed["transcript"]) == 2 and restarted.load("done-1")["outcome"] == "caller_hangup"
    assert [(k, s, d["outcome"], d["turns"]) for k, s, d in events.published] == [("call_ended", "cut-1", "interrupted", 2)]
    assert restarted.close_interrupted(2_000.0) == []


async def test_caller_hangup_is_saved(tmp_path) -> None:
    store = CallStore(tmp_path / "calls.sqlite3")
    await run_stages([Recorder(CallRecord(), store)], [CallStarted("c2", "test"), Hangup()])
    assert store.load("c2")["outcome"] == "caller_hangup"


# --- A complete answer ends the utterance sooner ---------------------------------------------

async def test_a_complete_answer_is_recognised_only_when_it_is_whole() -> None:
    from voice.stages.recogniser import answers_completely

    spoken_id = "三 七 零 一 零 二 一 九 九 零 零 一 零 一 一 二 三 四"  # 370102199001011234: its check character is 1, not 4
    valid = "37010219900101108X"
    assert not answers_completely("id_number", spoken_id)
    assert answers_completely("id_number", "我的身份证号是 " + " ".join(valid.replace("X", "叉")))
    assert not answers_completely("id_number", " ".join(valid[:17]))  # one character still to come
    assert answers_completely("phone_number", "幺 三 八 幺 二 三 四 五 六 七 八")
    assert not answers_completely("phone_number", "幺 三 八 幺 二 三 四 五 六 七")
    assert answers_completely("yes_no", "是") and answers_completely("yes_no", "不 是")
    assert not answers_completely("yes_no", "是 我 想 问 一下")  # more is coming: wait for it
    assert not answers_completely("free", "社保卡丢了")
    assert not answers_completely("code", "一 二 三 四 五 六")  # codes keep the long pause


async def test_the_endpointer_ends_a_complete_answer_after_a_short_pause() -> None:
    from voice.frames import AnswerComplete

    timings = ListenTimings(eou_silence_complete_ms=300)
    speech = audio(tone_pcm8k(300, 400))
    pause = audio(silence(800), start=0.4)
    said = [ListenFor(expect="id_number", eou_silence_ms=1200), *speech]
    out = await run_stages([Endpointer(timings)], [*said, AnswerComplete(at=0.4), *pause])
    ended = next(f for f in out if isinstance(f, UtteranceEnded))
    assert ended.at - ended.last_voice_at == pytest.approx(0.3, abs=0.03)
    out = await run_stages([Endpointer(timings)], [*said, *pause])  # not complete: the long pause is kept
    assert "UtteranceEnded" not in kinds(out)
    # and the next utterance starts with the long pause again
    stage = Endpointer(timings)
    out = await run_stages([stage], [*said, AnswerComplete(at=0.4), *pause, *audio(tone_pcm8k(300, 400) + silence(800), 2)])
    assert kinds(out).count("UtteranceEnded") == 1


async def test_a_spoken_id_number_ends_the_turn_300_ms_after_its_last_digit() -> None:
    """Endpointer and recogniser in a real pipeline: the recogniser's partial result feeds back to the head."""
    from voice.pipeline import Pipeline

    valid = " ".join("37010219900101108X".replace("X", "叉"))
    factory = ScriptedRecognizerFactory([(valid, 0.9)], partials=[valid[:20], valid])
    got: list[Frame] = []

    class Collect:
        async def process(self, frame: Frame):  # type: ignore[no-untyped-def]
            got.append(frame)
            yield frame

    pipeline = Pipeline([])
    pipeline.stages = [Endpointer(ListenTimings(eou_silence_complete_ms=300)),
                       Recogniser(factory, push=pipeline.push), Collect()]  # type: ignore[list-item]
    runner = asyncio.create_task(pipeline.run())
    frames = [ListenFor(expect="id_number", eou_silence_ms=1200, grammar=("一",)),
              *audio(tone_pcm8k(300, 500)), *audio(silence(1500), start=0.5), Hangup()]
    for frame in frames:  # in real time order: each frame handled before the next arrives
        pipeline.push(frame)
        while pipeline._inbox.qsize():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.002)
    await asyncio.wait_for(runner, 5)
    ended = next(f for f in got if isinstance(f, UtteranceEnded))
    assert ended.at - ended.last_voice_at == pytest.approx(0.3, abs=0.03)  # not 1.2 s
    assert [f.text for f in got if isinstance(f, Transcript) and f.final] == [valid]
