"""One way for every service to read its settings from the environment, and the one APP_ENV rule.

Each service has a frozen `Settings` dataclass whose field defaults are the documented defaults
(`.env.example`) and a `load_settings(env=None)` that its entry point calls at start:

    def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
        env, d = Env.of(env), Settings()
        return Settings(port=env.integer("WEBAPP_PORT", d.port, minimum=1), ...)

Nothing is read at import time. An empty variable counts as unset. A malformed value raises one
`SettingsError` whose message names the variable and what to set it to, so the service stops at start
with one sentence to act on.

APP_ENV is `development` (the default when unset or empty) or `production`; anything else (a typo,
"staging", "prod") is refused rather than guessed. Staging and test installations that hold real
data run with APP_ENV=production. `is_production()` is the one test every service uses: production
refuses development secrets (common/secrets.py), has no demo desk accounts, no file SMS gateway and
no synthetic card data.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # common.secrets imports this module
    from common.secrets import Secret

APP_ENVS = ("development", "production")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to set it to."""


def app_env(environ: Mapping[str, str] | None = None) -> str:
    """APP_ENV: "development" (unset or empty) or "production"; SettingsError for anything else."""
    environ = os.environ if environ is None else environ
    value = (environ.get("APP_ENV") or "").strip() or "development"
    if value not in APP_ENVS:
        raise SettingsError(f"Set APP_ENV to development or production (got {value!r}); "
                            "staging and test installations with real data use production.")
    return value


def is_production(environ: Mapping[str, str] | None = None) -> bool:
    """True when APP_ENV=production: real secrets, no demo accounts, no synthetic data."""
    return app_env(environ) == "production"


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _names(values: Iterable[str]) -> str:
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class Env:
    """Typed reads of environment variables (default: os.environ); each bad value raises SettingsError."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.keys_read: list[str] = []  # every variable asked for, in order: the documentation tests use it

    @classmethod
    def of(cls, env: Mapping[str, str] | Env | None) -> Env:
        """`env` itself if it is an Env, else an Env over the mapping (None: os.environ)."""
        return env if isinstance(env, Env) else cls(env)

    def _raw(self, key: str) -> str:
        if key not in self.keys_read:
            self.keys_read.append(key)
        return str(self.environ.get(key) or "").strip()

    def app_env(self) -> str:
        """APP_ENV checked by the one rule (`app_env`)."""
        self._raw("APP_ENV")
        return app_env(self.environ)

    @property
    def is_production(self) -> bool:
        """True when APP_ENV=production (SettingsError for an unknown APP_ENV)."""
        return self.app_env() == "production"

    def text(self, key: str, default: str = "") -> str:
        """The stripped value, or the default when unset or empty."""
        return self._raw(key) or default

    def path(self, key: str, default: Path) -> Path:
        """A file or folder path, or the default when unset or empty."""
        raw = self._raw(key)
        return Path(raw) if raw else default

    def integer(self, key: str, default: int, minimum: int | None = None) -> int:
        """A whole number, at least `minimum` when given."""
        raw = self._raw(key)
        at_least = "" if minimum is None else f" of at least {minimum}"
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise SettingsError(f"Set {key} to a whole number{at_least} (got {raw!r}).") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"Set {key} to a whole number{at_least} (got {raw or str(value)!r}).")
        return value

    def number(self, key: str, default: float, minimum: float | None = None, positive: bool = False) -> float:
        """A decimal number, at least `minimum` and above 0 when `positive`."""
        raw = self._raw(key)
        bound = " above 0" if positive else "" if minimum is None else f" of at least {minimum:g}"
        try:
            value = float(raw) if raw else float(default)
        except ValueError:
            raise SettingsError(f"Set {key} to a number{bound} (got {raw!r}).") from None
        if value != value or (positive and value <= 0) or (minimum is not None and value < minimum):
            raise SettingsError(f"Set {key} to a number{bound} (got {raw or str(value)!r}).")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        """A yes/no switch: 1/true/yes/on or 0/false/no/off."""
        raw = self._raw(key).lower()
        if not raw:
            return default
        if raw in TRUE_WORDS or raw in FALSE_WORDS:
            return raw in TRUE_WORDS
        raise SettingsError(f"Set {key} to 1 or 0 (got {raw!r}).")

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        """One of `choices`."""
        choices = tuple(choices)
        value = self._raw(key) or default
        if value not in choices:
            raise SettingsError(f"Set {key} to {_names(choices)} (got {value!r}).")
        return value

    def url(self, key: str, default: str = "", schemes: Iterable[str] | None = ("http", "https"),
            example: str = "") -> str:
        """A URL with one of `schemes` (a "+driver" suffix allowed; None: any scheme); "" when unset with no default."""
        value = self._raw(key) or default
        if not value:
            return ""
        scheme, sep, _ = value.partition("://")
        allowed = None if schemes is None else tuple(schemes)
        if not sep or not scheme or (allowed is not None and scheme.split("+")[0].lower() not in allowed):
            starting = "" if allowed is None else " starting with " + " or ".join(f"{s}://" for s in allowed)
            hint = f", e.g. {example}" if example else ""
            raise SettingsError(f"Set {key} to a URL{starting}{hint} (got {redact_url(value)!r}).")
        return value

    def secret(self, key: str) -> Secret:
        """A secret: the shared ones (common/secrets.py) with their production check, others as given ("" when unset)."""
        from common.secrets import DEV_DEFAULTS, Secret, secret

        raw = self._raw(key)
        if key in DEV_DEFAULTS:
            self._raw("APP_ENV")
            return secret(key, self.environ)
        return Secret(raw)
