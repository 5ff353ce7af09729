"""The shared secrets between our services, their development defaults, and the production check.

Every door between two of our processes asks for a secret, because any process that can reach a port
may lie about who it is:

| secret | who presents it | to whom |
|---|---|---|
| CHANNEL_TOKEN | web app, voice gateway, REST integrations | Rasa's input channels (header X-Channel-Token) |
| ACTION_TOKEN | Rasa | the action server (header X-Action-Token, endpoints.yml) |
| RASA_TOKEN | operators' tools | Rasa's HTTP API (--auth-token) |
| SERVICE_TOKEN | action server, voice gateway | the web app's hand-off API |
| MEDIA_STREAM_TOKEN | the PBX's media-stream client | the voice gateway's media-stream WebSocket |
| SESSION_SECRET | — | signs desk sessions and citizens' chat cookies |

In development each has a fixed default starting with "dev-" so that `make run` works with nothing
set. With APP_ENV other than development a missing, short or development value stops the service
at start (`python -m common.secrets check` does the same for scripts/run.sh).
"""
from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Mapping

DEV_DEFAULTS = {
    "CHANNEL_TOKEN": "dev-channel-token",
    "ACTION_TOKEN": "dev-action-token",
    "RASA_TOKEN": "dev-rasa-token",
    "SERVICE_TOKEN": "dev-service-token",
    "MEDIA_STREAM_TOKEN": "dev-media-stream-token",
    "SESSION_SECRET": "dev-session-secret-change-me",
}
MIN_PRODUCTION_LENGTH = 16


class Secret(str):
    """A string that does not show its value in repr() or logs."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"


class SecretError(ValueError):
    """A secret that must not be used in this environment, naming the variable to set."""


def is_production(env: Mapping[str, str] | None = None) -> bool:
    """True unless APP_ENV is development (the default)."""
    env = os.environ if env is None else env
    return env.get("APP_ENV", "development") != "development"


def problem(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the secret cannot be used here, or None."""
    env = os.environ if env is None else env
    if not is_production(env):
        return None
    value = env.get(name, "").strip()
    if not value:
        return f"{name} is not set (required when APP_ENV is not development)"
    if value.startswith("dev-") or value == DEV_DEFAULTS[name]:
        return f"{name} still has a development value"
    if len(value) < MIN_PRODUCTION_LENGTH:
        return f"{name} is shorter than {MIN_PRODUCTION_LENGTH} characters"
    return None


def secret(name: str, env: Mapping[str, str] | None = None) -> Secret:
    """The secret's value (its development default in development); SecretError where it must not be used."""
    env = os.environ if env is None else env
    why = problem(name, env)
    if why:
        raise SecretError(why)
    return Secret(env.get(name, "").strip() or DEV_DEFAULTS[name])


def same(presented: object, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one (False for non-strings)."""
    if not isinstance(presented, str) or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """`python -m common.secrets check`: exit 1 listing every secret that cannot be used here."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["check"]:
        print("usage: python -m common.secrets check", file=sys.stderr)
        return 2
    problems = [p for p in (problem(n) for n in DEV_DEFAULTS) if p]
    for p in problems:
        print(f"[secrets] {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
