"""The bot: one Rasa turn per caller input over the custom "phone" REST channel."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from common.secrets import secret


class BotUnavailable(RuntimeError):
    """Rasa did not answer; the call should go to a person."""


class BotClient(Protocol):
    """Sends one caller input and returns the bot's messages (Rasa REST format)."""

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One turn."""


class RasaPhoneChannel:
    """POST {RASA_URL}/webhooks/phone/webhook with the call id as sender."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None,
                 channel_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=timeout_s)
        # Rasa's channels answer only our services (bot/channels/rich_rest.py); default: CHANNEL_TOKEN
        token = secret("CHANNEL_TOKEN").reveal() if channel_token is None else channel_token
        self.headers = {"X-Channel-Token": token} if token else {}

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One turn; raises BotUnavailable on network errors or a non-2xx answer."""
        payload = {"sender": sender, "message": text, "metadata": {"input_channel": "phone", **metadata}}
        try:
            response = await self.client.post(f"{self.base_url}/webhooks/phone/webhook", json=payload,
                                              headers=self.headers)
            response.raise_for_status()
            messages = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BotUnavailable(f"Rasa at {self.base_url} failed: {exc!r}") from exc
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    async def is_up(self) -> bool:
        """True when the Rasa server answers its /status endpoint."""
        try:
            return (await self.client.get(f"{self.base_url}/status", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self.client.aclose()
