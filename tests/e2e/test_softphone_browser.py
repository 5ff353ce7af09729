"""The browser softphone (/phone) in headless Chromium against the running stack and its voice gateway.

Chromium's fake microphone plays a WAV made here (espeak-ng speech, or a tone); the page streams it as 8 kHz μ-law through the web
app to the gateway, plays the bot's audio, shows the transcript, and sends keypad presses as DTMF.
"""
from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gateway(stack) -> dict:
    """The running voice gateway's /health; skipped when scripts/run.sh could not start it (espeak-ng missing)."""
    url = f"http://127.0.0.1:{os.environ.get('VOICE_HTTP_PORT', '8081')}/health"
    try:
        return httpx.get(url, timeout=3).json()
    except (httpx.HTTPError, ValueError):
        pytest.skip(f"the voice gateway is not running at {url} (scripts/run.sh starts it when espeak-ng is installed)")


def caller_wav(path: Path, seconds: float = 3.0, rate: int = 48000) -> Path:
    """What Chromium's fake microphone plays (looped): Mandarin speech from espeak-ng, else a 440 Hz tone.

    Speech, because the page asks for noise suppression, which soon turns a steady tone down.
    """
    espeak = shutil.which("espeak-ng")
    if espeak:
        subprocess.run([espeak, "-v", "cmn", "-w", str(path), "你好，我想问一下社保卡丢了怎么办，谢谢。"],
                       check=True, capture_output=True, timeout=30)
        return path
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(int(seconds * rate))))
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.sync_api import sync_playwright

    wav = caller_wav(tmp_path_factory.mktemp("mic") / "caller.wav")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=args)
        yield b
        b.close()


def number(page, name: str) -> float:
    value = page.get_attribute("#phone", f"data-{name}")
    return float(value) if value else 0.0


def bot_lines(page) -> list[str]:
    return page.locator("#transcript .line.bot .text").all_inner_texts()


def test_a_browser_call_hears_the_bot_is_heard_and_the_keypad_changes_what_the_bot_says(stack, gateway, browser):
    page = browser.new_page()
    frames: list[str] = []  # everything the page's WebSocket receives
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.goto(stack["webapp"] + "/phone")
    assert page.inner_text("#call") == "拨打"
    page.click("#call")
    page.wait_for_selector("#phone[data-state='in-call']", timeout=15_000)
    assert page.inner_text("#call") == "挂断"

    # the greeting: its line in the transcript, its audio received, decoded and played
    page.wait_for_selector("#transcript .line.bot", timeout=15_000)
    greeting = bot_lines(page)[0]
    assert "社会保障" in greeting or "社保" in greeting
    page.wait_for_function("document.getElementById('phone').dataset.framesReceived >= 100", timeout=15_000)
    assert number(page, "samples-decoded") == 160 * number(page, "frames-received")
    page.wait_for_function("document.getElementById('phone').dataset.samplesPlayed >= 8000", timeout=15_000)

    # the fake microphone's sound reaches the gateway: it reports a second of loud audio back
    page.wait_for_function("document.getElementById('phone').dataset.heardFrames >= 50", timeout=15_000)
    assert number(page, "heard-level") > -45  # the WAV's sound, not silence (-120) or line noise
    assert number(page, "frames-sent") >= 50
    assert "能听到您" in page.inner_text("#mic")

    # a key: in keypad mode 1 opens 社保卡业务, whose first option is 社保卡挂失; with a speech model, the bot answers it
    before = len(bot_lines(page))
    page.click(".keypad button[data-key='1']")
    page.wait_for_function(f"document.querySelectorAll('#transcript .line.bot').length > {before}", timeout=20_000)
    page.wait_for_selector("#transcript .line.caller", timeout=5_000)
    assert page.locator("#transcript .line.caller .text").all_inner_texts()[0] == "按键 1"
    reply = bot_lines(page)[-1]
    assert reply != greeting
    if gateway["recognition"] == "none":
        assert "社保卡挂失" in reply and "社保卡挂失" not in greeting
    assert number(page, "clears") >= 1  # the key cut the greeting short: queued audio was dropped

    page.click("#call")
    page.wait_for_selector("#phone[data-state='ended']", timeout=5_000)
    assert "挂断" in page.inner_text("#status")

    # the browser never held the gateway's token: not in the page, not in anything the relay sent it
    token = os.environ.get("MEDIA_STREAM_TOKEN", "dev-media-stream-token")
    assert len(frames) > 100 and not any(token in f for f in frames)
    assert token not in page.content()
    page.close()
