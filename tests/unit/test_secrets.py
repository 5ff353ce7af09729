"""Shared secrets: development defaults, production refusals, constant-time comparison."""
import pytest

from common.secrets import DEV_DEFAULTS, Secret, SecretError, main, problem, same, secret

PROD = {"APP_ENV": "production"}


def test_development_uses_the_fixed_defaults():
    for name, value in DEV_DEFAULTS.items():
        assert secret(name, {}) == value and value.startswith("dev-")


@pytest.mark.parametrize("value", ["", "   ", "dev-channel-token", "dev-anything-at-all-long", "short-secret"])
def test_production_refuses_missing_development_and_short_secrets(value):
    env = {**PROD, "CHANNEL_TOKEN": value}
    assert problem("CHANNEL_TOKEN", env)
    with pytest.raises(SecretError, match="CHANNEL_TOKEN"):
        secret("CHANNEL_TOKEN", env)


def test_production_accepts_a_real_secret_and_hides_it():
    s = secret("ACTION_TOKEN", {**PROD, "ACTION_TOKEN": "9f8e7d6c5b4a39281706f5e4"})
    assert isinstance(s, Secret) and s == "9f8e7d6c5b4a39281706f5e4"
    assert "9f8e" not in repr(s)


def test_check_command_lists_every_unusable_secret(monkeypatch, capsys):
    for name in DEV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("RASA_TOKEN", "a-real-secret-of-enough-length")
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "RASA_TOKEN" not in err and all(n in err for n in DEV_DEFAULTS if n != "RASA_TOKEN")
    monkeypatch.setenv("APP_ENV", "development")
    assert main(["check"]) == 0


@pytest.mark.parametrize("presented,ok", [("abc", True), ("abd", False), ("", False), (None, False), (b"abc", False),
                                          ("abcd", False)])
def test_same(presented, ok):
    assert same(presented, "abc") is ok
    assert same("abc", "") is False
