"""Run with the Rasa environment's Python by tests/analytics/test_pika_masking.py (not a test itself).

Saves one citizen turn holding a raw ID and phone number through MaskingSQLTrackerStore with Rasa 3.6's own
PikaEventBroker (`type: pika` in endpoints.yml), so the test can read what reached RabbitMQ.

stdin: {"db": path, "queue": name, "sender": id, "text": citizen text, "phone": raw number}
Output: "published <n>" on stdout.
"""
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def main() -> None:
    """Save the turn; Rasa streams its new events to the broker on save."""
    job = json.load(sys.stdin)
    sys.path.insert(0, str(ROOT))
    from rasa.core.brokers.pika import PikaEventBroker
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.tracker_store import MaskingSQLTrackerStore

    broker = PikaEventBroker("127.0.0.1", "guest", "guest", port=5672, queues=[job["queue"]], connection_attempts=1,
                             event_loop=asyncio.get_running_loop())
    await broker.connect()
    store = MaskingSQLTrackerStore(host=f"sqlite:///{job['db']}", event_broker=broker)
    tracker = DialogueStateTracker.from_events(job["sender"], [ActionExecuted("action_listen")])
    events = [UserUttered(job["text"], intent={"name": "ask_question", "confidence": 1.0},
                          parse_data={"text": job["text"], "intent": {"name": "ask_question", "confidence": 1.0},
                                      "entities": []}),
              SlotSet("phone", job["phone"])]
    for e in events:
        tracker.update(e)
    await store.save(tracker)
    await asyncio.sleep(0.5)  # the broker publishes in background tasks
    await broker.close()
    print(f"published {len(events)}")


if __name__ == "__main__":
    asyncio.run(main())
