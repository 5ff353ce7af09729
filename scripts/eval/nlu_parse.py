"""Parse texts with the trained Rasa model (run with the Rasa environment's Python).

    .venv/rasa/bin/python scripts/eval/nlu_parse.py build/rasa-models/current.tar.gz < texts.json > intents.json

Input: a JSON list of texts on stdin. Output: a line "RESULT <JSON list of {"intent", "confidence"} in the same order>".
The same NLU pipeline as the running Rasa server (config.yml), without the HTTP hop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys


async def _parse(model: str, texts: list[str]) -> list[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    out = []
    for t in texts:
        r = await agent.parse_message(t)
        out.append({"intent": r["intent"]["name"], "confidence": round(float(r["intent"].get("confidence") or 0), 4)})
    return out


def main() -> None:
    logging.disable(logging.WARNING)
    texts = json.load(sys.stdin)
    result = asyncio.run(_parse(sys.argv[1], texts))
    print("RESULT " + json.dumps(result, ensure_ascii=False))  # Rasa logs to stdout too


if __name__ == "__main__":
    main()
