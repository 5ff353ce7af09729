"""Settings of the analytics: every key documented, bad values refused with one sentence."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.settings import load_settings
from common.settings import Env

ROOT = Path(__file__).resolve().parents[2]


def test_every_analytics_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    env = Env({})
    load_settings(env)  # the keys load_settings actually reads, not a pattern over its source
    used = set(env.keys_read)
    assert "ANALYTICS_DATABASE_URL" in used and used - documented == set()


def test_the_event_broker_url_comes_from_the_environment_with_a_default():
    assert "url: ${RASA_EVENTS_URL}" in (ROOT / "endpoints.yml").read_text(encoding="utf-8")
    assert re.search(r"^export RASA_EVENTS_URL=", (ROOT / "scripts" / "env.sh").read_text(encoding="utf-8"), re.M)


@pytest.mark.parametrize("key,value,named", [("ANALYTICS_TIMEZONE", "Mars/Olympus", "ANALYTICS_TIMEZONE"),
                                              ("ANALYTICS_DATABASE_URL", "var/analytics.db", "ANALYTICS_DATABASE_URL"),
                                              ("ANALYTICS_ABANDON_MINUTES", "half an hour", "ANALYTICS_ABANDON_MINUTES"),
                                              ("ANALYTICS_ALERT_WEBHOOK", "ftp://x", "ANALYTICS_ALERT_WEBHOOK")])
def test_a_bad_setting_is_refused_naming_the_variable(monkeypatch, key, value, named):
    monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=named):
        load_settings()
