"""The desk's login throttle: counted in the database, doubling waits, per user name and per address."""
import datetime as dt

from webapp.auth import LoginThrottle
from webapp.store import Store

T0 = dt.datetime(2026, 12, 6, 9, 0, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def test_waits_start_after_the_free_failures_double_and_are_capped(tmp_path):
    throttle = LoginThrottle(Store(f"sqlite:///{tmp_path}/t.db"), free=3, window=900, cap=240, per_address=100)
    for i in range(3):
        assert await throttle.wait("agent1", "10.0.0.1", now=at(i)) == 0
        await throttle.failed("agent1", "10.0.0.1", now=at(i))
    assert await throttle.wait("agent1", "10.0.0.9", now=at(2)) == 60  # the third failure: one minute, from any address
    assert await throttle.wait("AGENT1 ", "10.0.0.9", now=at(32)) == 30  # the name as typed, case and spaces aside
    assert await throttle.wait("agent1", "10.0.0.9", now=at(62)) == 0
    await throttle.failed("agent1", "10.0.0.9", now=at(62))
    assert await throttle.wait("agent1", "10.0.0.9", now=at(62)) == 120  # doubles
    for i in range(3):
        await throttle.failed("agent1", "10.0.0.9", now=at(63 + i))
    assert await throttle.wait("agent1", "10.0.0.9", now=at(65)) == 240  # capped
    assert await throttle.wait("agent2", "10.0.0.9", now=at(65)) == 0  # another user is not slowed down
    assert await throttle.wait("agent1", "10.0.0.9", now=at(65 + 900)) == 0  # outside the window: forgotten


async def test_a_success_clears_the_name_and_one_address_is_limited_across_names(tmp_path):
    throttle = LoginThrottle(Store(f"sqlite:///{tmp_path}/t.db"), free=2, per_address=4)
    for name in ("a", "b", "c", "d"):
        await throttle.failed(name, "10.0.0.1", now=at(0))
    assert await throttle.wait("e", "10.0.0.1", now=at(1)) == 59  # a fifth name from the same address waits
    assert await throttle.wait("e", "10.0.0.2", now=at(1)) == 0
    await throttle.failed("a", "10.0.0.2", now=at(1))
    assert await throttle.wait("a", "10.0.0.3", now=at(1)) == 60
    await throttle.succeeded("a")
    assert await throttle.wait("a", "10.0.0.3", now=at(1)) == 0
