"""Service tests: whole calls over the Twilio-compatible /media-stream WebSocket of the real app."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.voice.doubles import (
    MediaStreamCaller,
    ScriptedRecognizerFactory,
    espeak_pcm8k,
    fake_desk_app,
    fake_rasa_app,
    serve,
    tone_pcm8k,
)
from voice.app import create_app
from voice.audio import level_dbfs
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import HttpHandoffDesk
from voice.engines.synthesis import Pyttsx3Engine, SpeechCache
from voice.session import Services
from voice.settings import ListenTimings, Settings
from voice.store import CallStore

pytestmark = pytest.mark.asyncio
TOKEN = "test-service-token"


def services_for(settings: Settings, recognizers: object, rasa_url: str, desk_url: str) -> Services:
    """Real speech, bot client, desk client and store; recognisers chosen by the test."""
    return Services(
        settings=settings,
        recognizers=recognizers,  # type: ignore[arg-type]
        speech=SpeechCache(Pyttsx3Engine(settings.tts_voice)),
        bot=RasaPhoneChannel(rasa_url),
        desk=HttpHandoffDesk(desk_url, TOKEN),
        store=CallStore(settings.db_path),
    )


async def saved_call(store: CallStore, call_id: str) -> dict:
    """The call's final record, waiting briefly: it is complete once the hang-up has gone through (a running call's
    row has ended_at 0)."""
    for _ in range(100):
        record = store.load(call_id)
        if record is not None and record["ended_at"] > 0:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} was not saved")


def gateway(services: Services) -> object:
    return create_app(services, name=f"voice_{uuid.uuid4().hex[:8]}", audiosocket=False)


def make_settings(tmp_path: Path) -> Settings:
    return Settings(handoff_backend="http", service_token="x", db_path=tmp_path / "calls.sqlite3",
                    timings=ListenTimings(no_input_timeout_ms=15000))


async def test_full_call_greeting_barge_in_keypad_and_transfer(tmp_path: Path) -> None:
    rasa, desk = fake_rasa_app(), fake_desk_app(TOKEN)
    recognizers = ScriptedRecognizerFactory([("社保卡 挂失", 0.95)])
    async with serve(rasa) as rasa_port, serve(desk) as desk_port:
        services = services_for(make_settings(tmp_path), recognizers,
                                f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{desk_port}")
        async with serve(gateway(services)) as port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                loop = asyncio.get_running_loop()
                # 1. The caller hears the greeting: real speech energy, paced at 50 frames a second.
                first = await caller.wait_for_audio(0, timeout=5)
                await asyncio.sleep(1.0)
                greeting = caller.audio(first, first + 1.0)
                assert len(greeting) >= 320 * 40
                assert level_dbfs(greeting) > -35
                assert len(caller.media_times(first)) <= 56  # not dumped faster than real time

                # 2. The caller talks over it: the gateway clears the platform's buffer and stops.
                spoke_at = loop.time()
                speech_end = await caller.say(tone_pcm8k(300, 600, level=0.3), trailing_silence_ms=700)
                assert caller.events("clear"), "barge-in did not clear the stream"
                clear_at = next(t for t, m in caller.received if m.get("event") == "clear")
                assert clear_at - spoke_at < 0.8  # 200 ms minimum-speech guard + processing
                assert not caller.media_times(clear_at + 0.1) or caller.media_times(clear_at + 0.1)[0] > speech_end

                # 3. The bot answers: it asks for the ID number, and offers the keypad.
                answer_at = await caller.wait_for_audio(speech_end, timeout=5)
                assert answer_at - speech_end < 1.5

                # 4. Keypad, typed over the prompt (keys barge in too): the ID number with * as X
                #    and # to finish; then 1 picks the first button, "转人工".
                await caller.press("37010219900101123*#", gap_s=0.05)
                menu_at = await caller.wait_for_audio(loop.time(), timeout=5)
                assert len(caller.events("clear")) == 2
                await caller.press("1")
                await asyncio.wait_for(caller.closed.wait(), timeout=20)
                assert caller.media_times(menu_at + 0.5), "the transfer announcement was not spoken"

            marks = [m["mark"]["name"] for m in caller.events("mark")]
            assert marks == ["transfer:shebao-experts"]
            async with httpx.AsyncClient() as http:
                route = await http.get(f"http://127.0.0.1:{port}/calls/{caller.call_sid}/route")
                health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
            assert route.text == "shebao-experts"
            assert health["status"] == "ok"

    sent = [(r["sender"], r["message"], r["metadata"]["input_channel"]) for r in rasa.ctx.requests]
    assert sent == [(caller.call_sid, "社保卡挂失", "phone"),
                    (caller.call_sid, "37010219900101123X", "phone"),
                    (caller.call_sid, "/human_handoff", "phone")]
    ticket = desk.ctx.tickets[0]
    assert ticket["conversation_id"] == caller.call_sid and ticket["channel"] == "phone"
    assert ticket["slots"]["id_number"] == "身份证尾号123X"
    assert "37010219900101123X" not in str(ticket)
    assert [line["role"] for line in ticket["transcript"]][:3] == ["bot", "caller", "bot"]
    saved = await saved_call(services.store, caller.call_sid)
    assert saved["outcome"] == "transferred" and saved["handoff_status"] == "sent"


async def test_caller_hangup_mid_call_is_saved(tmp_path: Path) -> None:
    rasa, desk = fake_rasa_app(), fake_desk_app(TOKEN)
    async with serve(rasa) as rasa_port, serve(desk) as desk_port:
        services = services_for(make_settings(tmp_path), ScriptedRecognizerFactory(),
                                f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{desk_port}")
        async with serve(gateway(services)) as port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                await caller.wait_for_audio(0, timeout=5)
            saved = await saved_call(services.store, caller.call_sid)
    assert saved["outcome"] == "caller_hangup"
    assert saved["transcript"][0]["role"] == "bot"


@pytest.mark.vosk
async def test_real_speech_through_real_vosk_reaches_the_bot(tmp_path: Path, ko_model: object) -> None:
    """No Mandarin model can be had here: Korean speech, the Korean PyPI model and a phrase list."""
    rasa, desk = fake_rasa_app(), fake_desk_app(TOKEN)
    settings = replace(make_settings(tmp_path), open_grammar=("안녕하세요", "상담원 연결", "보험료 조회", "감사합니다"))
    async with serve(rasa) as rasa_port, serve(desk) as desk_port:
        services = services_for(settings, ko_model, f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{desk_port}")
        async with serve(gateway(services)) as port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                await caller.wait_for_audio(0, timeout=5)
                await caller.say(espeak_pcm8k("상담원 연결", "ko"), trailing_silence_ms=900)
                await asyncio.wait_for(caller.closed.wait(), timeout=20)
    assert [r["message"] for r in rasa.ctx.requests] == ["상담원 연결"]
    assert (await saved_call(services.store, caller.call_sid))["outcome"] == "transferred"


def _real_rasa_url() -> str | None:
    if os.environ.get("RUN_RASA_TESTS") != "1":
        return None
    url = os.environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/")
    try:
        ok = httpx.get(f"{url}/webhooks/phone/", timeout=3).status_code == 200
    except httpx.HTTPError:
        ok = False
    return url if ok else None


class RecordingRasa(RasaPhoneChannel):
    """The real client, keeping every reply so the test can check what Rasa itself said."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.replies: list[list[dict]] = []

    async def send(self, sender: str, text: str, metadata: dict) -> list[dict]:
        reply = await super().send(sender, text, metadata)
        self.replies.append(reply)
        return reply


@pytest.mark.rasa
async def test_call_against_the_real_rasa_phone_channel(tmp_path: Path) -> None:
    url = _real_rasa_url()
    if url is None:
        pytest.skip("needs the real Rasa server: set RUN_RASA_TESTS=1 and RASA_URL to a Rasa serving the phone channel")
    desk = fake_desk_app(TOKEN)
    recognizers = ScriptedRecognizerFactory([("你好", 0.95), ("转 人工", 0.95)])
    bot = RecordingRasa(url)
    async with serve(desk) as desk_port:
        services = services_for(make_settings(tmp_path), recognizers, url, f"http://127.0.0.1:{desk_port}")
        services.bot = bot
        async with serve(gateway(services)) as port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                await caller.wait_for_audio(0, timeout=5)
                for _ in range(2):  # "你好", then "转人工"
                    await asyncio.sleep(0.5)
                    speech_end = await caller.say(tone_pcm8k(300, 600), trailing_silence_ms=700)
                    await caller.wait_for_audio(speech_end, timeout=20)
                handoff = next((m["custom"]["handoff"] for m in bot.replies[-1]
                                if isinstance(m.get("custom"), dict) and "handoff" in m["custom"]), None)
                assert handoff is not None, f"Rasa did not hand over on 转人工: {bot.replies[-1]}"
                if handoff.get("status") == "unavailable":  # the agent desk is not running: the 0 key still works
                    await caller.wait_quiet(timeout=60)
                    await caller.press("0")
                await asyncio.wait_for(caller.closed.wait(), timeout=40)
    assert bot.replies[0] and bot.replies[0][0].get("text"), "Rasa gave no answer to 你好"
    saved = await saved_call(services.store, caller.call_sid)
    assert saved["outcome"] == "transferred"
    assert [line["role"] for line in saved["transcript"]][:3] == ["bot", "caller", "bot"]
