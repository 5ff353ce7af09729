"""One style of settings for every service (common/settings.py): typed reads, one error type, one APP_ENV rule."""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from actions.settings import load_settings as load_actions
from analytics.settings import load_settings as load_analytics
from cardsys.seed import main as seed_main
from cardsys.settings import load_settings as load_cardsys
from common.secrets import DEV_DEFAULTS, Secret
from common.secrets import main as secrets_check
from common.settings import Env, SettingsError, app_env, is_production
from voice.settings import ENV_KEYS
from voice.settings import load_settings as load_voice
from webapp.auth import prepare_demo_agents
from webapp.settings import Settings as WebSettings
from webapp.settings import load_settings as load_webapp
from webapp.store import Agent, Store

ROOT = Path(__file__).resolve().parents[2]
VOICE_LOCAL = {"VOICE_HANDOFF": "local"}  # the voice gateway needs no web app token then
REAL = {name: f"{name.lower()}-9f8e7d6c5b4a3928" for name in DEV_DEFAULTS}  # usable production secrets
PRODUCTION = {"APP_ENV": "production", **REAL, "CARDSYS_SMS_GATEWAY": "off"}
Loader = Callable[[dict[str, str] | Env | None], object]


def _local_handoff(env: dict[str, str] | Env | None) -> dict[str, str] | Env:
    """The environment with VOICE_HANDOFF=local unless it names one (None: os.environ as it is now); an Env as given."""
    return env if isinstance(env, Env) else {**VOICE_LOCAL, **(os.environ if env is None else env)}

SERVICES: dict[str, Loader] = {
    "webapp": load_webapp,
    "voice": lambda env: load_voice(_local_handoff(env)),
    "actions": load_actions,
    "cardsys": load_cardsys,
    "analytics": load_analytics,
}


# --- the reader ---------------------------------------------------------------------------------

def test_an_empty_or_missing_variable_gives_the_default() -> None:
    env = Env({"A": "", "B": "  "})
    assert (env.integer("A", 7), env.number("B", 1.5), env.text("C", "x"), env.flag("A", True)) == (7, 1.5, "x", True)
    assert env.choice("A", "log", ("log", "off")) == "log" and env.url("C") == ""
    assert env.keys_read == ["A", "B", "C"]


@pytest.mark.parametrize("read, raw, fix", [
    (lambda e: e.integer("N", 1), "1.5", "a whole number"),
    (lambda e: e.integer("N", 1, minimum=5), "4", "a whole number of at least 5"),
    (lambda e: e.number("N", 1.0), "fast", "a number"),
    (lambda e: e.number("N", 1.0, positive=True), "0", "a number above 0"),
    (lambda e: e.flag("N"), "maybe", "1 or 0"),
    (lambda e: e.choice("N", "a", ("a", "b")), "c", "'a' or 'b'"),
    (lambda e: e.url("N"), "example.org", "a URL starting with http:// or https://"),
])
def test_every_reader_names_the_variable_and_what_to_set_it_to(read: Callable[[Env], object], raw: str, fix: str) -> None:
    with pytest.raises(SettingsError, match=f"^Set N to {re.escape(fix)} \\(got '{re.escape(raw)}'\\)"):
        read(Env({"N": raw}))


def test_a_url_error_hides_the_password() -> None:
    with pytest.raises(SettingsError, match="CARDSYS_DATABASE_URL") as e:
        load_cardsys({"CARDSYS_DATABASE_URL": "mysql://card:hunter2hunter2@db/cards"})
    assert "hunter2" not in str(e.value) and "mysql://card:***@db/cards" in str(e.value)


# --- every service: a malformed value stops it at start, naming the variable --------------------

@pytest.mark.parametrize("service, key, value", [
    ("webapp", "WEBAPP_PORT", "abc"),
    ("webapp", "RASA_URL", "localhost:5005"),
    ("webapp", "HANDOFF_WAIT_SECONDS", "0"),
    ("webapp", "HANDOFF_CALLBACK_HOURS", "a day"),
    ("webapp", "DESK_HOURS", "9-17"),
    ("webapp", "DESK_DAYS", "Mon-Fri"),
    ("webapp", "WEBAPP_DATABASE_URL", "var/webapp.db"),
    ("voice", "VOICE_HTTP_PORT", "eighty"),
    ("voice", "WEBAPP_URL", "127.0.0.1:8080"),
    ("voice", "VOICE_HANDOFF", "pigeon"),
    ("voice", "VOICE_CONFIRM_BELOW", "high"),
    ("actions", "EMBEDDING_THREADS", "two"),
    ("actions", "WEBAPP_URL", "127.0.0.1:8080"),
    ("actions", "EMBEDDING_PRECISION", "fp16"),
    ("actions", "KB_PRELOAD", "maybe"),
    ("actions", "KB_WATCH_SECONDS", "-1"),
    ("cardsys", "CARDSYS_OTP_TTL_SECONDS", "5min"),
    ("cardsys", "CARDSYS_SMS_URL", "sms.example/send"),
    ("cardsys", "CARDSYS_SMS_GATEWAY", "pigeon"),
    ("analytics", "ANALYTICS_ABANDON_MINUTES", "half an hour"),
    ("analytics", "RASA_EVENTS_URL", "var/rasa_events.db"),
    ("analytics", "ANALYTICS_ALERT_WEBHOOK", "ftp://x"),
])
def test_a_malformed_value_is_refused_naming_the_variable(service: str, key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"Set {key} to"):
        SERVICES[service]({key: value})


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_starts_with_nothing_set(service: str) -> None:
    assert SERVICES[service]({}) is not None


@pytest.mark.parametrize("service", SERVICES)
def test_settings_are_read_when_loaded_not_at_import(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "nonsense")
    with pytest.raises(SettingsError, match="APP_ENV"):
        SERVICES[service](None)  # os.environ as it is now
    assert SERVICES[service]({}) is not None  # a given mapping, not os.environ
    monkeypatch.delenv("APP_ENV")
    assert WebSettings().dev_mode and WebSettings().port == 8080  # a constructed Settings holds the documented defaults


def test_every_key_a_service_reads_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    for service, load in SERVICES.items():
        env = Env(VOICE_LOCAL if service == "voice" else {})
        load(env)
        assert env.keys_read and set(env.keys_read) - documented == set(), service


def test_the_voice_key_list_is_what_the_gateway_reads() -> None:
    env = Env(VOICE_LOCAL)
    load_voice(env)
    assert set(env.keys_read) - {"APP_ENV"} == set(ENV_KEYS)


# --- one APP_ENV rule --------------------------------------------------------------------------

@pytest.mark.parametrize("value, production", [(None, False), ("", False), ("development", False), ("production", True)])
def test_app_env_is_development_or_production(value: str | None, production: bool) -> None:
    env = {} if value is None else {"APP_ENV": value}
    assert is_production(env) is production and app_env(env) == ("production" if production else "development")


@pytest.mark.parametrize("value", ["staging", "test", "prod", "Production", "dev"])
def test_an_unknown_app_env_stops_every_service(value: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for load in SERVICES.values():
        with pytest.raises(SettingsError, match="Set APP_ENV to development or production"):
            load({"APP_ENV": value})
    monkeypatch.setenv("APP_ENV", value)
    assert secrets_check(["check"]) == 1 and "APP_ENV" in capsys.readouterr().err
    assert seed_main([]) == 2 and "APP_ENV" in capsys.readouterr().err


def test_production_means_production_for_every_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # secrets: a development value is refused by every service that reads one
    for service in ("webapp", "voice", "actions"):
        with pytest.raises(SettingsError, match="CHANNEL_TOKEN|SERVICE_TOKEN|ACTION_TOKEN"):
            SERVICES[service]({**PRODUCTION, "CHANNEL_TOKEN": DEV_DEFAULTS["CHANNEL_TOKEN"],
                               "SERVICE_TOKEN": DEV_DEFAULTS["SERVICE_TOKEN"], "ACTION_TOKEN": "short"})
    # the web app: no demo desk accounts, Secure cookies
    web = load_webapp(PRODUCTION)
    assert web.dev_mode is False and web.session_secret == REAL["SESSION_SECRET"]
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    prepare_demo_agents(store, web.dev_mode)
    assert store.call(lambda s: list(s.scalars(select(Agent.username)))) == []
    prepare_demo_agents(store, load_webapp({}).dev_mode)
    assert len(store.call(lambda s: list(s.scalars(select(Agent.username))))) == 3
    # the card system: production, so the file SMS gateway is refused
    assert load_cardsys(PRODUCTION).production is True and load_cardsys({}).production is False
    with pytest.raises(SettingsError, match="CARDSYS_SMS_GATEWAY"):
        load_cardsys({**PRODUCTION, "CARDSYS_SMS_GATEWAY": "log"})
    # the seed refuses; the secrets check passes with real secrets
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    assert seed_main([]) == 2 and "APP_ENV=production" in capsys.readouterr().err
    assert secrets_check(["check"]) == 0


# --- one secret type ---------------------------------------------------------------------------

def test_a_secret_hides_its_value_everywhere_but_reveal(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret("hunter2-hunter2-hunter2")
    old_styles = ["%s" % s, "{}".format(s)]  # noqa: UP031, UP032 - the older formatting styles are what is checked
    shown = [repr(s), str(s), f"{s}", f"{s:>30}", *old_styles, repr([s]), repr({"t": s})]
    assert all("hunter2" not in x for x in shown) and "**********" in str(s)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("token %s %r", s, s)
    assert "hunter2" not in caplog.text and "**********" in caplog.text
    assert s.reveal() == "hunter2-hunter2-hunter2" and s == "hunter2-hunter2-hunter2" and s != "hunter"
    assert not Secret("") and repr(Secret("")) == "Secret('')"


@pytest.mark.parametrize("service", ["webapp", "voice", "actions", "cardsys"])
def test_no_service_shows_a_secret_in_its_settings_repr(service: str) -> None:
    env = {**REAL, "CARDSYS_SMS_GATEWAY": "http",
           "CARDSYS_SMS_URL": "https://sms.example/send", "CARDSYS_SMS_TOKEN": "sms-token-9f8e7d6c5b4a"}
    settings = SERVICES[service](env)
    assert not any(value in repr(settings) for value in [*REAL.values(), "sms-token-9f8e7d6c5b4a"])
    secrets = [v for v in vars(settings).values() if isinstance(v, Secret)]
    assert secrets and all(v.reveal() in [*REAL.values(), "sms-token-9f8e7d6c5b4a"] for v in secrets)
