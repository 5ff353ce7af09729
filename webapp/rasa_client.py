"""Talks to the Rasa server's web channel on behalf of the citizen chat."""
from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached or answered with an error."""


class RasaClient:
    """POST /webhooks/web/webhook with the conversation id as sender; returns Rasa's messages."""

    def __init__(self, base_url: str, timeout: float = 30.0, channel_token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"X-Channel-Token": channel_token} if channel_token else {}
        self.timeout = httpx.Timeout(timeout, connect=3.0)
        self._http: httpx.AsyncClient | None = None

    @property
    def _client(self) -> httpx.AsyncClient:
        """The connection pool, (re)created on first use in the running event loop."""
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(timeout=self.timeout)
        return self._http

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None,
                   channel: str = "web") -> list[dict[str, Any]]:
        """One citizen turn; raises RasaUnavailable when Rasa cannot answer."""
        try:
            r = await self._client.post(f"{self.base_url}/webhooks/{channel}/webhook",
                                        json={"sender": sender, "message": text, "metadata": metadata or {}},
                                        headers=self.headers)
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaUnavailable(str(exc)) from exc
        if not isinstance(data, list):
            raise RasaUnavailable("unexpected reply from Rasa")
        return data

    async def healthy(self) -> bool:
        """True when the Rasa server answers its status page."""
        try:
            r = await self._client.get(f"{self.base_url}/", timeout=3)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def close(self) -> None:
        """Release the connection pool."""
        if self._http is not None:
            await self._http.aclose()
