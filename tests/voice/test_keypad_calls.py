"""Service tests: whole calls in keypad mode (no speech model) over /media-stream of the real app.

The menu is the real one, generated from the knowledge base (content order: no analytics store);
speech is real (pyttsx3/espeak-ng); Rasa and the desk are the in-process fakes of tests.voice.doubles.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from knowledge.schema import load_entries
from tests.voice.conftest import mandarin_model_path
from tests.voice.doubles import MediaStreamCaller, fake_desk_app, fake_rasa_app, free_port, serve
from tests.voice.test_media_stream import TOKEN, saved_call
from voice.app import create_app
from voice.audio import level_dbfs
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import HttpHandoffDesk
from voice.engines.synthesis import Pyttsx3Engine, SpeechCache
from voice.ivr.menu import Answer, GeneratedMenu, Menu, build_menu, load_layout
from voice.ivr.service import menu_prompt
from voice.session import Services
from voice.settings import ListenTimings, Settings
from voice.speech_text import reply_text
from voice.store import CallStore

pytestmark = pytest.mark.asyncio
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def menu() -> GeneratedMenu:
    return build_menu(load_entries(), load_layout())


def keypad_services(tmp_path: Path, menu: GeneratedMenu, rasa_port: int, desk_port: int) -> Services:
    settings = Settings(handoff_backend="http", service_token="x", db_path=tmp_path / "calls.sqlite3",
                        timings=ListenTimings(no_input_timeout_ms=15000))
    return Services(settings=settings, recognizers=None, speech=SpeechCache(Pyttsx3Engine(settings.tts_voice)),
                    bot=RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}"),
                    desk=HttpHandoffDesk(f"http://127.0.0.1:{desk_port}", TOKEN), store=CallStore(settings.db_path),
                    menu=menu)


async def press(caller: MediaStreamCaller, keys: str) -> float:
    """Press keys over whatever the bot says; returns when the bot's answer starts (speech energy)."""
    loop = asyncio.get_running_loop()
    await caller.press(keys, gap_s=0.05)
    pressed = loop.time()
    first = await caller.wait_for_audio(pressed, timeout=10)
    await asyncio.sleep(0.6)
    assert level_dbfs(caller.audio(first, first + 0.6)) > -35, f"the answer to {keys!r} was silent"
    return first - pressed


async def test_keypad_call_walks_the_menu_hears_an_answer_and_reaches_a_person(tmp_path: Path, menu: GeneratedMenu) -> None:
    rasa, desk = fake_rasa_app(), fake_desk_app(TOKEN)
    card = menu.root.options[0]
    assert isinstance(card, Menu) and card.title == "社保卡业务"
    password = card.options[2]
    assert isinstance(password, Menu) and password.title == "社保卡密码和解锁"
    question = password.options[0]
    assert isinstance(question, Answer)
    async with serve(rasa) as rasa_port, serve(desk) as desk_port:
        services = keypad_services(tmp_path, menu, rasa_port, desk_port)
        async with serve(create_app(services, name=f"voice_{uuid.uuid4().hex[:8]}", audiosocket=False)) as port:
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                await caller.wait_for_audio(0, timeout=10)  # the greeting and the main menu
                waits = [await press(caller, keys) for keys in ("1", "3", "1", "9", "*", "5")]
                await caller.press("0")
                await asyncio.wait_for(caller.closed.wait(), timeout=20)
    assert health["recognition"] == "none" and health["keypad_menu"] == "content order"
    assert max(waits) < 1.5, waits  # key → the bot's first audio
    assert [m["mark"]["name"] for m in caller.events("mark")] == ["transfer:shebao-experts"]
    assert rasa.ctx.requests == []  # the menu answers from the knowledge base itself
    saved = await saved_call(services.store, caller.call_sid)
    assert (saved["outcome"], saved["reason"]) == ("transferred", "caller_pressed_0")
    lines = [(line["role"], line["text"]) for line in saved["transcript"]]
    assert [text for role, text in lines if role == "caller"] == ["1", "3", "1", "9", "*", "5"]
    bot = [text for role, text in lines if role == "bot"]
    answer = reply_text({"text": question.voice_answer})
    assert bot[0].startswith("您好，这里是济南市社会保障服务中心按键自助服务。社保卡业务，请按一；")
    assert bot[2].startswith(reply_text({"text": menu_prompt(password, top=False)}))
    assert bot[3].startswith(answer) and bot[4].startswith(answer)  # the answer, and 9: again
    assert bot[5] == reply_text({"text": menu_prompt(password, top=False)})  # *: back to the questions
    assert bot[6].startswith("您按的键无效") and bot[-1] == "正在为您转接人工服务，请稍候。"
    ticket = desk.ctx.tickets[0]
    assert ticket["reason"] == "caller_pressed_0" and ticket["conversation_id"] == caller.call_sid
    assert ticket["summary"].startswith("电话来电（按键服务）。来电人依次按键：1、3、1、9、*、5。")


async def test_keypad_call_reports_a_lost_card_through_the_bot_with_the_id_on_the_keypad(
        tmp_path: Path, menu: GeneratedMenu) -> None:
    rasa, desk = fake_rasa_app(), fake_desk_app(TOKEN)
    async with serve(rasa) as rasa_port, serve(desk) as desk_port:
        services = keypad_services(tmp_path, menu, rasa_port, desk_port)
        async with serve(create_app(services, name=f"voice_{uuid.uuid4().hex[:8]}", audiosocket=False)) as port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                await caller.wait_for_audio(0, timeout=10)
                for keys in ("1", "1", "1", "37010219900101123*#"):  # 社保卡业务 › 社保卡挂失 › 办理挂失, the ID
                    await press(caller, keys)
                await caller.press("2")  # the fake bot's second button: 不用了 → goodbye
                await asyncio.wait_for(caller.closed.wait(), timeout=20)
    sent = [(r["message"], r["metadata"]["input"]) for r in rasa.ctx.requests]
    assert sent == [("/report_card_loss", "keypad"), ("37010219900101123X", "keypad"), ("/goodbye", "keypad")]
    assert [m["mark"]["name"] for m in caller.events("mark")] == ["hangup"]
    saved = await saved_call(services.store, caller.call_sid)
    assert saved["outcome"] == "completed" and saved["slots"]["id_number"] == "身份证尾号123X"
    assert "37010219900101123X" not in str(saved)
    bot = [line["text"] for line in saved["transcript"] if line["role"] == "bot"]
    assert "以井号键结束" in bot[-3]  # the ID question with the keypad hint
    assert bot[-2].endswith("转人工，请按一；不用了，请按二。返回请按星号键，重听请按九，转人工请按零。")


async def test_without_a_model_the_gateway_process_starts_in_keypad_mode(tmp_path: Path) -> None:
    """`python -m voice` on a machine with no Mandarin model: it serves (keypad only) and says so."""
    if mandarin_model_path() is not None:
        pytest.skip("a Mandarin Vosk model is installed here: the gateway starts in speech mode")
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng (scripts/voice/setup_system.sh)")
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "VOSK_MODEL_PATH": "", "VOICE_HANDOFF": "local",
           "VOICE_HTTP_PORT": str(port), "AUDIOSOCKET_PORT": str(free_port()), "VOICE_DB_PATH": str(tmp_path / "c.db"),
           "ANALYTICS_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "PYTHONPATH": str(REPO),
           "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}"}  # the desk's tables, seeded by the gateway
    check = subprocess.run([sys.executable, "-m", "voice", "--check"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0 and check.stdout.startswith("keypad only (recognition: none"), check.stderr
    wrong = subprocess.run([sys.executable, "-m", "voice", "--check"], cwd=REPO, capture_output=True, text=True,
                           env={**env, "VOSK_MODEL_PATH": str(tmp_path / "missing")}, timeout=120)
    assert wrong.returncode == 2 and "voice gateway not started: VOSK_MODEL_PATH=" in wrong.stderr
    log = open(tmp_path / "voice.log", "wb")  # noqa: SIM115 (closed below)
    gateway = subprocess.Popen([sys.executable, "-m", "voice"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = None
        async with httpx.AsyncClient() as http:
            for _ in range(240):
                assert gateway.poll() is None, (tmp_path / "voice.log").read_text(errors="replace")[-2000:]
                try:
                    health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.5)
        # Sanic (uvloop) can lose a SIGTERM that arrives within a moment of its first answer (seen about once
        # in a dozen starts: the process then idles in run_forever); a second later it always stops at once.
        await asyncio.sleep(1.0)
    finally:
        gateway.terminate()
        try:
            gateway.wait(timeout=30)
        finally:
            gateway.kill()
            log.close()
    assert health is not None and health["recognition"] == "none" and health["keypad_menu"] == "content order"
    assert health["keypad_content"].startswith("publication ")  # the published entries, seeded from the files
    logged = (tmp_path / "voice.log").read_text()
    assert "callers are served by keypad only (recognition: none)" in logged
    assert "keypad menu follows the desk's publications" in logged
