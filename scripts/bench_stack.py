"""Service benchmarks against a running stack (scripts/bench_stack.sh starts one on its own ports).

Prints and writes docs/bench_stack.md:
- REST webhook latency p50/p95 over 200 sequential messages, with Rasa's /model/parse (NLU only) as the
  baseline measured in the same run;
- RSS memory of the Rasa server, the action server and the web app;
- hand-off: citizen "转人工" on the chat WebSocket -> event on the agent desk WebSocket, and an agent
  reply -> the citizen's chat WebSocket (issue 4 targets: each within 1 s);
- with BARE_RASA_URL (bench/bare_bot served by scripts/bench_stack.sh): our REST turn against a bare Rasa bot in
  the same run, the same messages interleaved (A B A B …) so that machine drift hits both alike: sequential p50
  in conversations of 8 messages, then messages per second with 10 concurrent senders (issue 17 targets: p50 ≤
  1.5× the bare bot's, throughput ≥ 0.7×).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
RASA = os.environ["RASA_URL"]
WEB = os.environ["WEBAPP_URL"]
TOKEN = os.environ.get("RASA_TOKEN", "dev-rasa-token")
CHANNEL = {"X-Channel-Token": os.environ.get("CHANNEL_TOKEN", "dev-channel-token")}
MESSAGES = ["你好", "社保卡丢了咋办", "电子社保卡怎么领", "失业金怎么申请", "谢谢", "明天天气怎么样", "退休年龄怎么算", "再见"]


def pct(values: list[float], p: float) -> float:
    """Percentile by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Sanic runs a main and a worker process), in MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


BARE = os.environ.get("BARE_RASA_URL", "")


def _turn(c: httpx.Client, url: str, sender: str, text: str) -> float:
    t0 = time.perf_counter()
    r = c.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, headers=CHANNEL)
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def against_bare(n: int = 200, senders: int = 10, seconds: float = 20.0) -> dict[str, dict[str, float]]:
    """Our turn and the bare bot's, interleaved: sequential latency, then throughput of concurrent senders."""
    from concurrent.futures import ThreadPoolExecutor

    targets = {"ours": RASA, "bare": BARE}
    seq: dict[str, list[float]] = {k: [] for k in targets}
    run = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=60) as c:
        for k, url in targets.items():  # warm-up
            _turn(c, url, f"warm-{run}-{k}", MESSAGES[0])
        for i in range(n):
            for k, url in targets.items():
                seq[k].append(_turn(c, url, f"seq-{run}-{k}-{i // len(MESSAGES)}", MESSAGES[i % len(MESSAGES)]))
    out: dict[str, dict[str, float]] = {}
    for k, url in targets.items():
        stop = time.perf_counter() + seconds
        lat: list[float] = []

        def sender(j: int, url: str = url, k: str = k, stop: float = stop, lat: list[float] = lat) -> None:
            with httpx.Client(timeout=60) as c:
                i = 0
                while time.perf_counter() < stop:
                    lat.append(_turn(c, url, f"load-{run}-{k}-{j}-{i // len(MESSAGES)}", MESSAGES[(i + j) % len(MESSAGES)]))
                    i += 1

        t0 = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            list(pool.map(sender, range(senders)))
        out[k] = {"seq_p50": pct(seq[k], 50), "seq_p95": pct(seq[k], 95), "rps": len(lat) / (time.perf_counter() - t0),
                  "conc_p50": pct(lat, 50), "conc_p95": pct(lat, 95), "n": len(lat)}
    return out


def webhook_latency(n: int = 200) -> tuple[list[float], list[float]]:
    """Sequential REST webhook turns and /model/parse calls (ms)."""
    rest, parse = [], []
    with httpx.Client(timeout=60) as c:
        for i in range(n):
            text = MESSAGES[i % len(MESSAGES)]
            sender = f"bench-{i // len(MESSAGES)}"
            rest.append(_turn(c, RASA, sender, text))
            t0 = time.perf_counter()
            c.post(f"{RASA}/model/parse", params={"token": TOKEN}, json={"text": text}).raise_for_status()
            parse.append((time.perf_counter() - t0) * 1000)
    return rest, parse


async def handoff_latency(rounds: int = 10) -> tuple[list[float], list[float]]:
    """Citizen request -> desk event, and agent reply -> citizen page (ms)."""
    to_desk, to_citizen = [], []
    async with httpx.AsyncClient(base_url=WEB, timeout=30) as http:
        r = await http.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
        r.raise_for_status()
        cookie = f"desk_session={r.cookies['desk_session']}"
        ws_base = WEB.replace("http", "ws")
        async with websockets.connect(ws_base + "/desk/ws", additional_headers={"Cookie": cookie}) as desk:
            await desk.recv()  # hello
            for _ in range(rounds):
                # a citizen's browser: the web app chooses the conversation and signs it in a cookie
                async with httpx.AsyncClient(base_url=WEB) as citizen:
                    first = await citizen.get("/api/chat/state")
                cid = first.json()["cid"]
                chat_cookie = f"chat_session={first.cookies['chat_session']}"
                async with websockets.connect(f"{ws_base}/ws/chat", additional_headers={"Cookie": chat_cookie}) as chat:
                    await chat.recv()  # state
                    t0 = time.perf_counter()
                    await chat.send(json.dumps({"type": "message", "text": "转人工"}))
                    while json.loads(await desk.recv()).get("type") != "queue_changed":
                        pass
                    to_desk.append((time.perf_counter() - t0) * 1000)
                    q = (await http.get("/desk/api/queues", headers={"Cookie": cookie})).json()
                    hid = next(h["id"] for hs in q["queues"].values() for h in hs if h["conversation_id"] == cid)
                    (await http.post(f"/desk/api/handoffs/{hid}/claim", headers={"Cookie": cookie})).raise_for_status()
                    t0 = time.perf_counter()
                    send = asyncio.create_task(http.post(f"/desk/api/handoffs/{hid}/reply", headers={"Cookie": cookie},
                                                         json={"text": "您好，坐席为您服务"}))
                    while True:
                        ev = json.loads(await chat.recv())
                        if ev.get("type") == "message" and ev["message"]["role"] == "agent":
                            break
                    to_citizen.append((time.perf_counter() - t0) * 1000)
                    await send
                    await http.post(f"/desk/api/handoffs/{hid}/resolve", headers={"Cookie": cookie})
                # drain desk events of this round
                try:
                    while True:
                        await asyncio.wait_for(desk.recv(), 0.2)
                except asyncio.TimeoutError:
                    pass
    return to_desk, to_citizen


def main() -> int:
    """Measure and write the report."""
    pids = [int(p) for p in Path(os.environ.get("RUN_DIR", "var"), "pids").read_text().split()]
    names = ["action server", "Rasa server", "web app"]
    rest, parse = webhook_latency()
    bare = against_bare() if BARE else None
    to_desk, to_citizen = asyncio.run(handoff_latency())
    mem = {n: rss_mb(p) for n, p in zip(names, pids, strict=False)}
    extra = os.environ.get("BENCH_EXTRA", "")
    lines = ["# Stack benchmark", "",
             f"Produced by `make bench` (scripts/bench_stack.sh → scripts/bench_stack.py) on {date.today()}, "
             f"{os.cpu_count()} cores, the real Rasa server + action server + web app on 127.0.0.1.", "",
             "| measure | p50 | p95 | n |", "|---|---|---|---|",
             f"| REST webhook turn (ms), 200 sequential messages | {pct(rest, 50):.0f} | {pct(rest, 95):.0f} | {len(rest)} |",
             f"| baseline: /model/parse NLU only (ms), same run | {pct(parse, 50):.0f} | {pct(parse, 95):.0f} | {len(parse)} |",
             f"| hand-off: citizen 转人工 → desk event (ms) | {pct(to_desk, 50):.0f} | {pct(to_desk, 95):.0f} | {len(to_desk)} |",
             f"| agent reply → citizen page (ms) | {pct(to_citizen, 50):.0f} | {pct(to_citizen, 95):.0f} | {len(to_citizen)} |",
             "", "| process | RSS (MB) |", "|---|---|"] + [f"| {n} | {m:.0f} |" for n, m in mem.items()]
    if bare:
        o, b = bare["ours"], bare["bare"]
        lines += ["", "Our REST turn against a bare Rasa bot (bench/bare_bot: five intents, Jieba + DIET, rules, in-memory "
                  "tracker store, no action server), same run, same messages interleaved; sequential: 200 messages in "
                  "conversations of 8; concurrent: 10 senders for 20 s each:", "",
                  "| | sequential p50 / p95 (ms) | messages/s, 10 senders | concurrent p50 / p95 (ms) |", "|---|---|---|---|",
                  f"| bare Rasa | {b['seq_p50']:.0f} / {b['seq_p95']:.0f} | {b['rps']:.1f} | {b['conc_p50']:.0f} / {b['conc_p95']:.0f} |",
                  f"| ours | {o['seq_p50']:.0f} / {o['seq_p95']:.0f} | {o['rps']:.1f} | {o['conc_p50']:.0f} / {o['conc_p95']:.0f} |",
                  f"| ours / bare (targets ≤ 1.5×, ≥ 0.7×) | **{o['seq_p50'] / b['seq_p50']:.2f}×** | **{o['rps'] / b['rps']:.2f}×** | |"]
    if extra:
        lines += ["", extra]
    lines += ["", f"Mean REST turn {statistics.mean(rest):.0f} ms. Targets (issue 4): hand-off to desk ≤ 1 s, reply to citizen ≤ 1 s."]
    out = ROOT / "docs" / "bench_stack.md"
    mark = "<!-- notes: written by hand, kept when the benchmark rewrites the tables above -->"
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    notes = old[old.index(mark):] if mark in old else mark + "\n"
    out.write_text("\n".join(lines) + "\n\n" + notes, encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
