"""Run with the Rasa environment's Python by tests/service/test_masking_stores.py (not a test itself).

Starts logging as `rasa run --debug` does, then loads our channels and tracker store as Rasa does (which
installs the masking), then logs what Rasa logs about each citizen's turn (its own code where it can be
called alone) and saves each turn through MaskingSQLTrackerStore into the SQLite file named on stdin.

stdin: {"db": path, "citizens": [{"sender", "sentence", "id_number", "phone", "name"}, ...]}
Output: Rasa's log lines on stdout and stderr, then "saved <n>" on stdout.
"""
import asyncio
import json
import logging
import logging.config
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def main() -> None:
    """Log and store every citizen's turn."""
    job = json.load(sys.stdin)
    import rasa.utils.io
    from rasa.utils.log_utils import configure_structlog

    rasa.utils.io.configure_colored_logging(logging.DEBUG)  # what rasa/__main__.py does before any command
    configure_structlog(logging.DEBUG)

    from rasa.core.processor import MessageProcessor, structlogger
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from sanic.log import LOGGING_CONFIG_DEFAULTS

    import bot.channels.web  # noqa: F401  credentials.yml: Rasa imports our channels
    from bot.tracker_store import MaskingSQLTrackerStore  # endpoints.yml: and our tracker store

    logging.config.dictConfig(LOGGING_CONFIG_DEFAULTS)  # Sanic's loggers and handlers, made when the server starts
    domain = Domain.load(str(ROOT / "domain.yml"))
    store = MaskingSQLTrackerStore(domain=domain, host=f"sqlite:///{job['db']}")
    log = logging.getLogger("rasa.core.processor")
    for c in job["citizens"]:
        text = c["sentence"]
        entities = [{"entity": "id_number", "value": c["id_number"], "start": 0, "end": 1, "extractor": "RegexEntityExtractor"},
                    {"entity": "phone", "value": c["phone"], "start": 1, "end": 2, "extractor": "RegexEntityExtractor"},
                    {"entity": "person_name", "value": c["name"], "start": 2, "end": 3, "extractor": "RegexEntityExtractor"}]
        intent = {"name": "inform", "confidence": 0.97}
        parse = {"text": text, "intent": intent, "entities": entities, "intent_ranking": [intent]}
        log.debug(f"Received user message '{text}' with intent '{intent}' and entities '{entities}'")
        structlogger.debug("processor.message.parse", parse_data_text=text, parse_data_intent=intent,
                           parse_data_entities=entities)
        events = [UserUttered(text, intent, entities, parse, input_channel="web", metadata={"said": text}),
                  SlotSet("id_number", c["id_number"]), SlotSet("phone_last4", c["phone"][-4:]),
                  SlotSet("person_name", c["name"]), SlotSet("loss_code", text), SlotSet("handoff_reason", text),
                  BotUttered(f"您说的是：{text}")]
        tracker = DialogueStateTracker.from_events(c["sender"], events, slots=domain.slots)
        MessageProcessor._log_slots(tracker)
        structlogger.debug("processor.extract.slots", rasa_events=events[1:])
        try:
            raise ValueError(f"cannot handle {text}")
        except ValueError:
            logging.getLogger("sanic.error").exception("Exception occurred while handling uri")
        await store.save(tracker)
    print(f"saved {len(job['citizens'])}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    asyncio.run(main())
