"""Custom actions as a live chat needs them (bot/action_guard.py): Rasa gives up on an action after
RASA_ACTION_TIMEOUT_S, not after its own 300 s, and a failed action ends the turn with one marked message
instead of being predicted again and again.

Checked in the Rasa environment itself: loading our tracker store (as `rasa run` does through endpoints.yml)
installs the guard; the probe runs Rasa's RemoteAction against an action server that never answers and
against one that is down. The whole turn is checked in the running stack (tests/e2e/test_bot_outages.py).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.action_guard import DEFAULT_SECONDS, FAILED_TEXT, seconds
from common.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV", ROOT / ".venv" / "rasa")) / "bin" / "python"

PROBE = r"""
import asyncio, json, socket, time
import bot.tracker_store  # what `rasa run` loads from endpoints.yml
from rasa.core.actions.action import RemoteAction
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

async def run(name, url):
    started = time.monotonic()
    events = await RemoteAction(name, EndpointConfig(url)).run(
        CollectingOutputChannel(), TemplatedNaturalLanguageGenerator({}), DialogueStateTracker("probe", []),
        Domain.empty())
    return {"name": name, "seconds": round(time.monotonic() - started, 1),
            "events": [e.as_dict() for e in events]}

async def main():
    silent = await asyncio.start_server(lambda r, w: asyncio.sleep(3600), "127.0.0.1", 0)
    hung = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}/webhook"
    with socket.socket() as s:  # a port nobody listens on: the action server is down
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}/webhook"
    print(json.dumps([await run("action_answer_from_kb", hung), await run("action_handoff_to_human", down),
                      await run("action_session_start", hung)]))

asyncio.run(main())
"""


def test_the_timeout_is_read_from_the_environment() -> None:
    assert seconds({}) == DEFAULT_SECONDS and seconds({"RASA_ACTION_TIMEOUT_S": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SettingsError, match="RASA_ACTION_TIMEOUT_S"):
            seconds({"RASA_ACTION_TIMEOUT_S": bad})


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa environment is not built (make setup)")
def test_a_hung_or_absent_action_server_ends_the_turn_within_the_timeout_with_a_marked_answer() -> None:
    env = {**os.environ, "RASA_ACTION_TIMEOUT_S": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(RASA_PYTHON), "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # Rasa's own timeout (300 s) would fail here
    assert done.returncode == 0, done.stderr[-2000:]
    hung, down, session = json.loads(done.stdout.strip().splitlines()[-1])
    for failed in (hung, down):
        kinds = [e["event"] for e in failed["events"]]
        assert kinds == ["bot", "followup"], failed
        assert failed["events"][0]["text"] == FAILED_TEXT
        assert failed["events"][0]["data"]["custom"] == {"action_failed": failed["name"]}
        assert failed["events"][1]["name"] == "action_listen"  # the turn ends: no retry of the failed action
    assert 1.5 <= hung["seconds"] < 10 and down["seconds"] < 2
    # a failed session start is Rasa's own: the conversation starts anyway
    assert [e["event"] for e in session["events"]][:2] == ["session_started", "action"], session
