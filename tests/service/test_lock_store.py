"""A conversation's lock after a Rasa replica died holding it (bot/lock_store.py), on the real Redis.

Checked in the Rasa environment: a ticket issued and never released (its replica was killed), then the
conversation's next message asks for the lock, as `rasa run` does through endpoints.production.yml. Rasa's own
RedisLockStore is measured beside ours in the same run, so the test also shows the defect it works around.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV", ROOT / ".venv" / "rasa")) / "bin" / "python"
REDIS_DB = 6

PROBE = r"""
import asyncio, json, sys, time
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

kind, cid = sys.argv[1], sys.argv[2]
store = LockStore.create(EndpointConfig(url="127.0.0.1", type=kind, port=6379, db=int(sys.argv[3]), key_prefix="locktest"))
store.issue_ticket(cid, 2)  # a replica took the conversation's lock and was killed

async def next_message():
    started = time.monotonic()
    async with store.lock(cid, lock_lifetime=2):
        pass
    return round(time.monotonic() - started, 1)

async def two_in_order():  # the lock still orders a live conversation's messages
    order = []
    async def turn(name, hold):
        async with store.lock(cid + "-live", lock_lifetime=10):
            order.append(name + ":start"); await asyncio.sleep(hold); order.append(name + ":end")
    await asyncio.gather(turn("a", 0.5), turn("b", 0))
    return order

try:
    waited = asyncio.run(asyncio.wait_for(next_message(), 8))
except asyncio.TimeoutError:
    waited = None
print(json.dumps({"waited": waited, "order": asyncio.run(two_in_order())}))
"""


def run_probe(kind: str) -> dict:
    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa environment is not built (make envs)")
    try:
        import redis

        redis.Redis(port=6379, socket_connect_timeout=2).ping()
    except Exception as e:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable on 127.0.0.1:6379: {e}")
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379: {e}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([str(RASA_PYTHON), "-c", PROBE, kind, f"probe-{uuid.uuid4().hex}", str(REDIS_DB)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_next_message_is_served_once_the_dead_replicas_ticket_expires() -> None:
    ours = run_probe("bot.lock_store.HotlineRedisLockStore")
    assert ours["waited"] is not None and 1.5 <= ours["waited"] <= 4, ours
    assert ours["order"] == ["a:start", "a:end", "b:start", "b:end"], ours


def test_rasas_own_redis_lock_store_waits_for_ever_there() -> None:
    """The defect bot/lock_store.py works around: if this starts to pass, Rasa fixed it and ours can go."""
    theirs = run_probe("redis")
    assert theirs["waited"] is None, theirs
