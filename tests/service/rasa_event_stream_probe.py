"""Run with the Rasa environment's Python by tests/service/test_masking_stores.py (not a test itself).

Saves a conversation turn by turn (three turns, then a new session, then two more turns) through
MaskingSQLTrackerStore with our SQL event broker, as the Rasa server does; before each save it computes what
Rasa 3.6's own `stream_events` would publish (the stored session loaded again and diffed with the tracker).
stdin: {"tracker_db": path, "events_db": path, "id_number": "...", "phone": "..."}
Output (stdout, last line): JSON {"expected": [event dicts, masked, in order], "stored": n}.
"""
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def main() -> None:
    job = json.load(sys.stdin)
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker, TrackerEventDiffEngine

    from analytics.rasa_broker import MaskingSQLEventBroker
    from bot.tracker_store import MaskingSQLTrackerStore, mask_event

    domain = Domain.load(str(ROOT / "domain.yml"))
    broker = MaskingSQLEventBroker(db=job["events_db"])
    store = MaskingSQLTrackerStore(domain=domain, host=f"sqlite:///{job['tracker_db']}", event_broker=broker)
    sender, expected, clock = "conv-stream", [], 1_700_000_000.0

    def turn(i: int) -> list:
        nonlocal clock
        clock += 10
        text = f"第{i}句 身份证{job['id_number']} 电话{job['phone']}"
        return [UserUttered(text, {"name": "inform", "confidence": 0.9}, timestamp=clock),
                SlotSet("id_number", job["id_number"], timestamp=clock + 1),
                ActionExecuted("utter_greet", timestamp=clock + 2), BotUttered(f"好的 {i}", timestamp=clock + 3),
                ActionExecuted("action_listen", timestamp=clock + 4)]

    async def save(tracker: DialogueStateTracker) -> None:
        rasa_way = TrackerEventDiffEngine.event_difference(await store.retrieve(sender), tracker)
        expected.extend(mask_event(e).as_dict() for e in rasa_way)
        await store.save(tracker)

    tracker = DialogueStateTracker.from_events(sender, [ActionExecuted("action_session_start", timestamp=clock),
                                                        SessionStarted(timestamp=clock),
                                                        ActionExecuted("action_listen", timestamp=clock)], slots=domain.slots)
    for i in range(5):
        if i == 3:  # a new session: Rasa counts and diffs from the latest SessionStarted on
            clock += 3600
            tracker = await store.retrieve(sender)
            for e in (ActionExecuted("action_session_start", timestamp=clock), SessionStarted(timestamp=clock),
                      ActionExecuted("action_listen", timestamp=clock)):
                tracker.update(e)
        elif i:
            tracker = await store.retrieve(sender)  # the next message: the tracker as the next turn loads it
        for e in turn(i):
            tracker.update(e)
        await save(tracker)
    full = await store.retrieve_full_tracker(sender)
    print(json.dumps({"expected": expected, "stored": len(full.events)}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    asyncio.run(main())
