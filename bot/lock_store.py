"""Rasa's Redis lock store, with the wait for a dead replica's ticket fixed (endpoints: deploy/k8s/endpoints.production.yml).

With several Rasa replicas, a conversation's messages are handled one at a time through a queue of tickets in
Redis (rasa.core.lock_store.RedisLockStore). When a replica dies while it holds a conversation's ticket, the next
message of that conversation waits for that ticket to expire (TICKET_LOCK_LIFETIME). Rasa 3.6 then looks, once a
second, for the moment the dead ticket has expired and its own has not: both were issued with the same lifetime,
about one second apart, so that window is often missed, and once both have expired the lock holds no ticket, its
"now serving" is 0 and the waiter is never served: the citizen's message hangs until the channel times out.
Found by tests/prod (kill -9 of a Rasa replica under load).

Here a ticket is served when no earlier ticket of the conversation is still alive, whether or not its own has
expired meanwhile; the rest is Rasa's. Used as `type: bot.lock_store.HotlineRedisLockStore` with the same keys
as Rasa's `type: redis`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)


def served(lock: TicketLock | None, ticket: int) -> bool:
    """True when no ticket issued before `ticket` is still alive (the conversation is this ticket's turn)."""
    if lock is None:
        return True
    return not any(t.number < ticket and not t.has_expired() for t in lock.tickets)


class HotlineRedisLockStore(RedisLockStore):
    """RedisLockStore whose waiters are served once every earlier ticket is done or expired."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # loaded by module path: Rasa passes the endpoint config
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    async def _acquire_lock(self, conversation_id: str, ticket: int, wait_time_in_seconds: float) -> TicketLock:
        while True:
            lock = self.get_lock(conversation_id)
            if served(lock, ticket):
                logger.debug("Acquired lock for conversation '%s'.", conversation_id)
                return lock if lock is not None else TicketLock(conversation_id)
            logger.debug("Waiting for the lock of conversation '%s' (ticket %s).", conversation_id, ticket)
            await asyncio.sleep(wait_time_in_seconds)
            self.update_lock(conversation_id)
