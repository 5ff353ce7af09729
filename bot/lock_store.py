"""A conversation lock for several Rasa replicas whose every step is atomic in Redis (deploy/k8s/endpoints.production.yml).

With several Rasa replicas, a conversation's messages must be handled one at a time: each replica loads the
tracker, adds the turn's events and saves; two turns of one conversation at once lose one turn's events (Rasa's
SQL tracker store saves "the events after the ones already stored", so the second save skips the first's count
of its own events: a citizen's message answered but missing from the conversation). Rasa 3.6's RedisLockStore
queues tickets for this, but two defects of it lost messages in our tests with two replicas (tests/prod):

1. **Tickets are issued by read-modify-write** (GET the lock, add a ticket, SET it back): two replicas receiving
   messages of one conversation at the same moment can both get ticket 0, and both are served at once. Seen as a
   message missing from the tracker after five concurrent messages of one sender.
2. **A killed replica's ticket**: the next message waits for it to expire, but polls once a second for the moment
   the dead ticket has expired and its own has not; both were issued with the same lifetime about together, and
   once both have expired the lock holds no ticket and the waiter is never served (the message hangs).

Here a ticket is a number from Redis' INCR (unique per conversation) plus a key of its own that expires after
TICKET_LOCK_LIFETIME seconds (a killed replica's ticket ends by itself); a message is served when no earlier
ticket of its conversation is still alive; its key is deleted when the turn is done. Every step is one Redis
command or one MULTI transaction, so no replica can overwrite another's. Used as
`type: bot.lock_store.HotlineRedisLockStore` with the keys of Rasa's `type: redis` (url = Redis' host, port,
db, password, key_prefix).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)


class HotlineRedisLockStore(RedisLockStore):
    """Per-conversation ticket queue in Redis with atomic issue and release; dead tickets expire by themselves."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # loaded by module path: Rasa passes the endpoint config
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    # keys: <prefix><conversation>:next (INCR counter), <prefix><conversation>:t:<n> (one per live ticket)
    def _next(self, conversation_id: str) -> str:
        return f"{self.key_prefix}{conversation_id}:next"

    def _ticket(self, conversation_id: str, number: int) -> str:
        return f"{self.key_prefix}{conversation_id}:t:{number}"

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """A new ticket, unique for the conversation, alive for `lock_lifetime` seconds unless released."""
        try:
            number = int(self.red.incr(self._next(conversation_id)))
            pipe = self.red.pipeline(transaction=True)
            pipe.set(self._ticket(conversation_id, number), "1", px=max(1, int(lock_lifetime * 1000)))
            # the counter outlives every ticket it numbered, and then goes (a conversation idle for a day)
            pipe.expire(self._next(conversation_id), max(86400, int(lock_lifetime) * 2))
            pipe.execute()
            return number
        except Exception as e:  # noqa: BLE001 - Rasa's contract: a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def served(self, conversation_id: str, ticket: int) -> bool:
        """True when no ticket issued before `ticket` is still alive (released or expired)."""
        if ticket <= 1:
            return True
        # tickets are numbered in order; only the ones still alive have a key. Look back until an earlier live one.
        earlier = [self._ticket(conversation_id, n) for n in range(max(1, ticket - 256), ticket)]
        return not any(self.red.mget(earlier))

    def release(self, conversation_id: str, ticket: int) -> None:
        self.red.delete(self._ticket(conversation_id, ticket))

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 0.05) -> AsyncGenerator[TicketLock, None]:
        """The conversation's turn: waits until every earlier message of it is done (or its replica is dead)."""
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            waited = 0.0
            while not self.served(conversation_id, ticket):
                await asyncio.sleep(wait_time_in_seconds)
                waited += wait_time_in_seconds
                wait_time_in_seconds = min(0.5, wait_time_in_seconds * 1.5)  # short waits first: turns take ~0.2 s
            if waited:
                logger.debug("Conversation '%s': ticket %s served after %.1f s.", conversation_id, ticket, waited)
            yield TicketLock(conversation_id)
        finally:
            self.release(conversation_id, ticket)
