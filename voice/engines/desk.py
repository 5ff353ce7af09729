"""The expert seat: hand-off tickets to the web app's agent desk (HTTP) or kept in memory."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from common.handoff import HANDOFF_PATH, HandoffRequest
from common.privacy import mask_slots, mask_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscriptLine:
    """One line of a call transcript."""

    role: str  # "caller" or "bot"
    text: str
    ts: float


@dataclass(frozen=True)
class HandoffTicket:
    """What the agent desk shows when a call is handed over; personal numbers are masked."""

    conversation_id: str
    reason: str
    summary: str
    slots: dict[str, Any] = field(default_factory=dict)
    transcript: tuple[TranscriptLine, ...] = ()
    channel: str = "phone"

    def request(self) -> HandoffRequest:
        """The hand-off request (common/handoff.py) for the web app, masked."""
        return HandoffRequest(
            conversation_id=self.conversation_id,
            channel=self.channel,
            reason=self.reason,
            summary=mask_text(self.summary),
            slots=mask_slots(self.slots),
            transcript=tuple(
                {"role": line.role, "text": mask_text(line.text), "ts": line.ts} for line in self.transcript
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON body of POST /api/handoff, masked."""
        return self.request().to_json()


class HandoffDesk(Protocol):
    """Receives hand-off tickets."""

    async def hand_off(self, ticket: HandoffTicket) -> None:
        """Deliver one ticket; raise on failure (the call store keeps it either way)."""


# pauses (seconds) before the next attempts when the web app is unreachable or busy (a restart, its database
# restarting: measured 2-8 s): about 12 s in all, then the call is transferred without a ticket (recorded)
RETRY_PAUSES = (0.5, 1.0, 2.0, 3.0, 5.0)


def _transient(exc: Exception) -> bool:
    """Unreachable, timed out, or answered 5xx / 429: worth trying again."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


class HttpHandoffDesk:
    """POST {WEBAPP_URL}/api/handoff (common/handoff.py) with the service token.

    Tried again while the web app is unreachable or answers 5xx (RETRY_PAUSES): the web app keeps one open
    hand-off per conversation, so a request that arrived although its answer was lost is not doubled.
    """

    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient | None = None,
                 retry_pauses: tuple[float, ...] = RETRY_PAUSES) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = client or httpx.AsyncClient(timeout=5.0)
        self.retry_pauses = retry_pauses

    async def _post(self, ticket: HandoffTicket) -> None:
        response = await self.client.post(
            f"{self.base_url}{HANDOFF_PATH}",
            json=ticket.to_json(),
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()

    async def hand_off(self, ticket: HandoffTicket) -> None:
        """Send the ticket; raises httpx.HTTPError when the web app refuses, or is still down after the retries."""
        for pause in (*self.retry_pauses, None):
            try:
                await self._post(ticket)
                return
            except httpx.HTTPError as exc:
                if pause is None or not _transient(exc):
                    raise
                log.warning("call %s: hand-off not delivered (%s); trying again in %.1f s",
                            ticket.conversation_id, type(exc).__name__, pause)
                await asyncio.sleep(pause)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self.client.aclose()


class InMemoryHandoffDesk:
    """Keeps tickets in a list: for tests and VOICE_HANDOFF=local (the call store persists them)."""

    def __init__(self) -> None:
        self.tickets: list[HandoffTicket] = []

    async def hand_off(self, ticket: HandoffTicket) -> None:
        """Remember the ticket."""
        self.tickets.append(ticket)
