"""`type: pika` in endpoints.yml: Rasa's own RabbitMQ broker gets masked events (bot/tracker_store.py
`_stream_new_events`), so production can use it without analytics/rasa_broker.py."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.unit.test_events import AMQP_URL, rabbitmq_reachable

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV", ROOT / ".venv" / "rasa")) / "bin" / "python"
RAW_ID, RAW_PHONE = "370102199003071238", "13912345678"


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa environment is not built (make setup)")
@pytest.mark.skipif(not rabbitmq_reachable(), reason="RabbitMQ is not listening on 127.0.0.1:5672")
def test_rasas_pika_broker_publishes_masked_events(tmp_path: Path):
    import pika

    queue = f"test_pika_mask_{uuid.uuid4().hex[:8]}"
    job = {"db": str(tmp_path / "tracker.db"), "queue": queue, "sender": "c-pika",
           "text": f"我的身份证{RAW_ID}，电话{RAW_PHONE}", "phone": RAW_PHONE}
    done = subprocess.run([str(RASA_PYTHON), str(ROOT / "tests" / "analytics" / "rasa_pika_probe.py")], input=json.dumps(job),
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0 and "published 2" in done.stdout, done.stderr[-2000:]
    con = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = con.channel()
        bodies = []
        while True:
            method, _props, body = ch.basic_get(queue=queue, auto_ack=True)
            if method is None:
                break
            bodies.append(json.loads(body))
        ch.queue_delete(queue=queue)
    finally:
        con.close()
    kinds = [b["event"] for b in bodies]
    assert "user" in kinds and "slot" in kinds, kinds
    text = json.dumps(bodies, ensure_ascii=False)
    assert RAW_ID not in text and RAW_PHONE not in text
    user = next(b for b in bodies if b["event"] == "user")
    assert "1238" in user["text"] and "139****5678" in user["text"] and user["sender_id"] == "c-pika"
