"""The web app's OpenAPI description matches its routes, and schemathesis finds no server error against it.

The fuzzing run is bounded (examples per operation and a time budget) and reproducible (fixed seed).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
from pathlib import Path

import httpx
import yaml

from tests.service.test_desk import TOKEN
from webapp.auth import COOKIE

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "webapp" / "openapi.yaml").read_text(encoding="utf-8"))
NOT_DESCRIBED = {"/ws/chat", "/desk/ws"}  # WebSockets (see the document's description)
# `make fuzz` runs longer, with a fresh seed (docs/reliability.md "Fuzzers"); `make test` runs this short form
EXAMPLES = os.environ.get("FUZZ_SCHEMATHESIS_EXAMPLES", "12")
MAX_TIME = os.environ.get("FUZZ_SCHEMATHESIS_SECONDS", "90")
SEED = str(random.randrange(1 << 30)) if os.environ.get("FUZZ_SEED") == "random" else "20261206"


def _routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        path = re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", path)
        if path in NOT_DESCRIBED or path.startswith("/static"):
            continue
        out |= {(m.lower(), path) for m in route.methods if m not in ("HEAD", "OPTIONS")}
    return out


def test_every_route_is_described_and_nothing_else(app):
    described = {(method, path) for path, ops in SPEC["paths"].items() for method in ops}
    assert _routes(app) == described


async def test_the_served_document_is_the_description(app):
    _, r = await app.asgi_client.get("/openapi.json")
    assert r.status == 200 and r.json == SPEC


async def test_schemathesis_finds_no_server_error(app, tmp_path):
    from tests.voice.doubles import serve

    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
        cookie = r.cookies[COOKIE]
        sup = {"Cookie": f"{COOKIE}={cookie}"}
        http.cookies.clear()
        # records the documented example ids (1) name, so the fuzzer reaches past "not found"
        cid = (await http.get("/api/chat/state")).json()["cid"]
        assert (await http.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "queue": "社保卡"})).status_code == 200
        assert (await http.post("/desk/api/handoffs/1/claim", headers=sup)).status_code == 200
        assert (await http.post("/desk/api/workorders", headers=sup, json={"title": "回电", "category": "社保卡"})).status_code == 200
        cmd = [str(Path(sys.executable).with_name("st")), "run", f"http://127.0.0.1:{port}/openapi.json",
               "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--max-time", MAX_TIME, "--seed", SEED,
               "--workers", "1", "--exclude-path", "/desk/logout", "--exclude-path", "/desk/login",
               "-H", f"Cookie: {COOKIE}={cookie}", "-H", f"Authorization: {TOKEN['Authorization']}",
               "--report", "ndjson", "--report-dir", str(tmp_path)]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    cwd=tmp_path)  # its cache stays out of the checkout
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=float(MAX_TIME) + 310)
    text = out.decode("utf-8", "replace")
    print(text[-3000:])
    assert proc.returncode == 0, text[-3000:]
    # it really exercised the API: thousands of generated requests, all answered without a server error
    summary = re.search(r"(\d+) generated, (\d+) passed", text)
    assert summary and int(summary.group(1)) >= 1000 and summary.group(1) == summary.group(2), text[-1500:]
    events = [json.loads(line) for f in tmp_path.glob("*.ndjson") for line in f.read_text().splitlines() if line]
    assert events
