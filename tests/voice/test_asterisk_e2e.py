"""End to end through a real Asterisk: SIP call in, AudioSocket to the gateway, keypad, transfer to a queue."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROOT = Path(os.environ.get("ASTERISK_CHROOT", "/var/cache/shebao-asterisk"))

pytestmark = pytest.mark.asterisk


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (chroot and unshare -n)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (scripts/setup_system.sh)"
    if importlib.util.find_spec("pjsua2") is None:
        return "needs the SIP caller library: pip install pjsua2-python"
    if shutil.which("espeak-ng") is None:
        return "needs espeak-ng (scripts/setup_system.sh)"
    return None


def _ensure_chroot() -> None:
    """Build the cached Asterisk chroot once (about a minute); later runs reuse it."""
    if (CHROOT / ".shebao-ready").exists():
        return
    if os.environ.get("ASTERISK_BUILD", "1") == "0" or shutil.which("debootstrap") is None:
        pytest.skip(f"no Asterisk chroot at {CHROOT}: run scripts/voice/build_asterisk_chroot.sh")
    subprocess.run(["bash", str(REPO / "scripts" / "voice" / "build_asterisk_chroot.sh")], check=True, timeout=900)


def run_call(scenario: str) -> dict:
    """One scripted SIP call through the real Asterisk; the script's JSON report."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    _ensure_chroot()
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "voice" / "asterisk_e2e.py"), "--chroot", str(CHROOT),
                          "--scenario", scenario], capture_output=True, text=True, timeout=240, cwd=REPO)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the end-to-end run:\n{run.stderr[-3000:]}"
    report = json.loads(lines[-1])
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, f"failed checks {failed}; report: {json.dumps(report, ensure_ascii=False)}"
    return report


def test_sip_call_hears_greeting_uses_keypad_and_reaches_the_expert_queue() -> None:
    report = run_call("spoken")
    assert report["rasa_messages"][-1] == "/human_handoff"


def test_keypad_mode_sip_call_walks_the_menu_hears_an_answer_and_presses_0_for_a_person() -> None:
    """No speech model: the generated menu by keys, an entry's voice answer, then 0 → the expert queue."""
    report = run_call("keypad")
    assert report["recognition"] == "none" and report["expected"]["service"] == "社保卡密码和解锁"
    assert report["call"]["reason"] == "caller_pressed_0"
