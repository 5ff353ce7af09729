"""Custom actions as a live chat needs them: a short timeout, and a clear answer when an action fails.

Rasa 3.6 waits up to `rasa.core.constants.DEFAULT_REQUEST_TIMEOUT` (300 s) for every custom action and has no
setting for it; and when an action fails (action server down, timed out, crashed) it drops the action's events
and predicts again, so a failing fallback action (ours is the knowledge action, config.yml) is tried up to
MAX_NUMBER_OF_PREDICTIONS times in one turn: a minute of silence, then nothing. `install()` changes both in the
Rasa process:
- the timeout: `RemoteAction.run` reads the module global `rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT` at
  each call; it is set from RASA_ACTION_TIMEOUT_S (default 6 s; our actions answer in tens of milliseconds, a
  card-system call in well under a second);
- a failed custom action ends the turn with one bot message, marked `{"action_failed": <action>}` so that the
  web app and the voice gateway know (they open the hand-off themselves when the citizen asked for a person,
  docs/reliability.md); a failed `action_session_start` falls back to Rasa's own session start. An action
  that rejects itself (ActionExecutionRejection) is left to Rasa's policies as before.
Installed when Rasa loads our tracker store (bot/tracker_store.py), i.e. in every `rasa run` and `rasa test`.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from common.settings import Env

log = logging.getLogger(__name__)
DEFAULT_SECONDS = 6.0
FAILED_TEXT = "抱歉，系统暂时没能处理您的问题，请稍后再问一次；需要人工的话请说“转人工”。"


def seconds(environ: dict[str, str] | None = None) -> float:
    """The configured timeout (RASA_ACTION_TIMEOUT_S, > 0)."""
    return Env(environ if environ is not None else os.environ).number("RASA_ACTION_TIMEOUT_S", DEFAULT_SECONDS,
                                                                      positive=True)


def install(environ: dict[str, str] | None = None) -> float:
    """Make Rasa's custom-action calls time out after `seconds()` and end the turn when one fails."""
    import rasa.core.actions.action as rasa_action  # the Rasa process only
    from rasa.shared.core.events import BotUttered, FollowupAction

    rasa_action.DEFAULT_REQUEST_TIMEOUT = timeout = seconds(environ)
    remote = rasa_action.RemoteAction
    if getattr(remote.run, "guarded", False):
        return timeout
    run = remote.run

    async def guarded_run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list:
        try:
            return await run(self, output_channel, nlg, tracker, domain)
        except rasa_action.ActionExecutionRejection:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the action server ends the turn with an answer
            log.error("custom action %s failed (%s: %s); the turn ends with a notice", self.name(),
                      type(exc).__name__, exc)
            if self.name() == rasa_action.ACTION_SESSION_START_NAME:
                return await rasa_action.ActionSessionStart().run(output_channel, nlg, tracker, domain)
            return [BotUttered(FAILED_TEXT, {"custom": {"action_failed": self.name()}}),
                    FollowupAction(rasa_action.ACTION_LISTEN_NAME)]

    guarded_run.guarded = True  # type: ignore[attr-defined]
    remote.run = guarded_run
    log.info("custom actions time out after %.1f s (RASA_ACTION_TIMEOUT_S); a failed one ends the turn", timeout)
    return timeout
