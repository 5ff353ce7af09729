"""The web app with the agent desk, on its own SQLite file, Rasa replaced by an echo (desk service tests)."""
from __future__ import annotations

import pytest

from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings


@pytest.fixture()
def app(tmp_path, monkeypatch):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    return create_app(Settings(database_url=f"sqlite:///{tmp_path}/d.db"), name=f"d{abs(hash(tmp_path)) % 10**8}")
