"""Card-system settings: defaults, and one-sentence errors naming the variable to fix."""
from __future__ import annotations

import pytest

from cardsys.settings import load_settings, redact_url


def test_defaults_need_nothing_external(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CARDSYS_DATABASE_URL", "CARDSYS_SMS_GATEWAY", "APP_ENV"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("var/cardsys.db")
    assert s.sms_gateway == "log" and s.max_failures == 3


@pytest.mark.parametrize("env, names", [
    ({"CARDSYS_DATABASE_URL": "mysql://u:secret@h/db"}, "CARDSYS_DATABASE_URL"),
    ({"CARDSYS_SMS_GATEWAY": "carrier-pigeon"}, "CARDSYS_SMS_GATEWAY"),
    ({"APP_ENV": "production", "CARDSYS_SMS_GATEWAY": "log"}, "CARDSYS_SMS_GATEWAY"),
    ({"CARDSYS_SMS_GATEWAY": "http"}, "CARDSYS_SMS_URL"),
    ({"CARDSYS_SMS_GATEWAY": "http", "CARDSYS_SMS_URL": "https://sms.example/send"}, "CARDSYS_SMS_TOKEN"),
    ({"CARDSYS_MAX_FAILURES": "0"}, "CARDSYS_MAX_FAILURES"),
    ({"CARDSYS_MAX_FAILURES": "three"}, "CARDSYS_"),
])
def test_bad_settings_fail_with_the_name_of_the_fix(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=names) as e:
        load_settings()
    assert "secret" not in str(e.value)


def test_passwords_are_hidden_in_urls() -> None:
    assert redact_url("postgresql+psycopg://app:s3cret@db:5432/cards") == "postgresql+psycopg://app:***@db:5432/cards"
