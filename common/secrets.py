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
| VOICE_CALLER_KEY_SECRET | — | keys the hash of a caller's number (voice/store.py: repeat callers without the number) |

In development each has a fixed default starting with "dev-" so that `make run` works with nothing
set. With APP_ENV=production (common/settings.py: the one APP_ENV rule) a missing, short or development
value stops the service at start (`python -m common.secrets check` does the same for scripts/run.sh).
Values travel as `Secret`, which shows no value in repr(), str(), f-strings or logs; `.reveal()` is
called only where the value is sent or compared.
"""
from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Mapping

from common.settings import SettingsError, is_production

DEV_DEFAULTS = {
    "CHANNEL_TOKEN": "dev-channel-token",
    "ACTION_TOKEN": "dev-action-token",
    "RASA_TOKEN": "dev-rasa-token",
    "SERVICE_TOKEN": "dev-service-token",
    "MEDIA_STREAM_TOKEN": "dev-media-stream-token",
    "SESSION_SECRET": "dev-session-secret-change-me",
    "VOICE_CALLER_KEY_SECRET": "dev-voice-caller-key",
}
MIN_PRODUCTION_LENGTH = 16


class Secret:
    """A secret value that shows no value in repr(), str(), f-strings or logs; `.reveal()` where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret = "") -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        """The value, for the one place that sends or compares it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other.reveal()
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(self._value)


class SecretError(SettingsError):
    """A secret that must not be used in this environment, naming the variable to set."""


def problem(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the secret cannot be used here, or None."""
    env = os.environ if env is None else env
    if not is_production(env):
        return None
    value = env.get(name, "").strip()
    if not value:
        return f"Set {name} to a random value of at least {MIN_PRODUCTION_LENGTH} characters (it is not set, and APP_ENV=production)."
    if value.startswith("dev-") or value == DEV_DEFAULTS[name]:
        return f"Set {name} to a random value of at least {MIN_PRODUCTION_LENGTH} characters (it still has a development value, and APP_ENV=production)."
    if len(value) < MIN_PRODUCTION_LENGTH:
        return f"Set {name} to a random value of at least {MIN_PRODUCTION_LENGTH} characters (it is shorter, and APP_ENV=production)."
    return None


def secret(name: str, env: Mapping[str, str] | None = None) -> Secret:
    """The secret's value (its development default in development); SecretError where it must not be used."""
    env = os.environ if env is None else env
    why = problem(name, env)
    if why:
        raise SecretError(why)
    return Secret(env.get(name, "").strip() or DEV_DEFAULTS[name])


def same(presented: object, expected: str | Secret) -> bool:
    """Constant-time comparison of a presented secret with the expected one (False for non-strings)."""
    expected = expected.reveal() if isinstance(expected, Secret) else expected
    if not isinstance(presented, str) or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """`python -m common.secrets check`: exit 1 listing every secret that cannot be used here."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["check"]:
        print("usage: python -m common.secrets check", file=sys.stderr)
        return 2
    try:
        problems = [p for p in (problem(n) for n in DEV_DEFAULTS) if p]
    except SettingsError as e:  # an unknown APP_ENV
        problems = [str(e)]
    for p in problems:
        print(f"[secrets] {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
