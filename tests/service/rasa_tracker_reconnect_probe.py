"""Run with the Rasa environment's Python by tests/service/test_masking_stores.py (not a test itself).

Saves a conversation through MaskingSQLTrackerStore on the PostgreSQL URL given on stdin, then has every other
connection to that database terminated (what a database restart does to a pool), then reads the conversation
back through the same store. Prints "retrieved <n events>" or the error.
"""
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


async def main() -> None:
    job = json.load(sys.stdin)
    import sqlalchemy as sa
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.tracker_store import MaskingSQLTrackerStore

    store = MaskingSQLTrackerStore(domain=Domain.load(str(ROOT / "domain.yml")), host=job["url"])
    tracker = DialogueStateTracker.from_events("reconnect-1", [ActionExecuted("action_listen"), UserUttered("社保卡丢了")])
    await store.save(tracker)
    killer = sa.create_engine(job["url"])
    with killer.connect() as c:
        killed = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    killer.dispose()
    print(f"terminated {killed}", flush=True)
    try:
        again = await store.retrieve("reconnect-1")
        print(f"retrieved {len(again.events) if again else 0}")
    except Exception as exc:  # noqa: BLE001 - the test reads the line
        print(f"error {type(exc).__name__}: {str(exc).splitlines()[0]}")


asyncio.run(main())
