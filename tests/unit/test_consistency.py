"""Docs and code that drift apart are bugs: domain vs registered actions, settings vs .env.example."""
import re
from pathlib import Path

import yaml
from rasa_sdk.executor import ActionExecutor

from actions.settings import load_settings as load_actions
from analytics.settings import load_settings as load_analytics
from cardsys.settings import load_settings as load_cardsys
from common.settings import Env
from voice.settings import load_settings as load_voice
from webapp.settings import load_settings as load_webapp

ROOT = Path(__file__).resolve().parents[2]


def test_domain_actions_are_exactly_the_registered_ones():
    executor = ActionExecutor()
    executor.register_package("actions")  # what `python -m rasa_sdk --actions actions` does
    registered = set(executor.actions)
    domain = set(yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["actions"])
    assert domain == registered


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    used = set()
    for load in (load_actions, load_webapp, load_cardsys, load_analytics, load_voice):
        env = Env({"VOICE_HANDOFF": "local"})
        load(env)  # the keys each service's load_settings actually reads (common/settings.py)
        used |= set(env.keys_read)
    assert {"WEBAPP_PORT", "EMBEDDING_MODEL", "CARDSYS_DATABASE_URL", "ANALYTICS_TIMEZONE", "VOICE_HTTP_PORT"} <= used
    for f in ["scripts/env.sh", "endpoints.yml"]:
        text = (ROOT / f).read_text(encoding="utf-8")
        used |= set(re.findall(r'environ\.get\("([A-Z_]+)"', text)) | set(re.findall(r"\$\{([A-Z_]+)\}", text))
        used |= set(re.findall(r'^export ([A-Z_]+)=', text, re.M))
    # the production profile's launcher reads its own settings (PROD_*) from the environment
    used |= set(re.findall(r'e\.get\("(PROD_[A-Z_]+)"', (ROOT / "scripts" / "run_prod.py").read_text(encoding="utf-8")))
    assert "PROD_HOSTS" in used
    internal = {"RASA_TELEMETRY_ENABLED", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM",
                "SANIC_HOST", "PYTHONPATH", "RASA_VENV", "SVC_VENV"}
    assert used - internal - documented == set()


def test_every_response_and_action_in_rules_exists_in_domain():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    known = set(domain["actions"]) | set(domain["responses"]) | set(domain.get("forms", {})) | {"action_listen"}
    for f in (ROOT / "data" / "rules").glob("*.yml"):
        for rule in yaml.safe_load(f.read_text(encoding="utf-8"))["rules"]:
            for step in rule["steps"]:
                if "action" in step:
                    assert step["action"] in known, f"{f.name}: {step['action']}"
