"""Load test of the production profile (issue 17 item 4): open-loop arrivals, one and two replicas, in one run.

    .venv/svc/bin/python scripts/bench_load.py [--rates 2,4,6,8,10,12,14] [--step-seconds 30]   (make load-bench)

Starts the production profile (scripts/run_prod.py) on its own ports, databases and queue, pins each Rasa server
with its action server to one core (taskset: pair 1 on CPU 0, pair 2 on CPU 1; HAProxy, the web apps and this
generator float), then measures two configurations behind the same HAProxy:

- one replica: rasa-2 and actions-2 disabled in HAProxy (its admin socket), so pair 1 serves alone on one core;
- two replicas: both pairs, one core each.

For each, messages arrive as a Poisson process at a fixed rate (open loop: a slow answer does not slow the
arrivals) for `--step-seconds`, rate after rate, until p95 > 1 s or more than 1 % fail. A message is a realistic
mix (knowledge questions in citizens' words, card transactions started, hand-offs, greetings, noise) from a
pool of conversations; a conversation never has two messages in flight (a citizen waits for the answer). The
maximum sustained rate is the highest rate with p95 ≤ 1 s and no failure. The generator's own CPU is printed
beside each step. Results: docs/bench_scale.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
from run_prod import haproxy_command  # scripts/ (this script's folder) is on sys.path

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "var" / "bench_load"
BASE = 23000
PREFIX = "hotline_bench"
REPORT = ROOT / "docs" / "bench_scale.md"

# (weight, messages): what citizens send, as the hotline's mix (card ≈ 40 % of business questions)
MIX = [
    (40, ["社保卡丢了咋办", "俺的社保卡密码忘了咋整", "社保卡补办要多长时间能拿到", "电子社保卡咋领 用啥app",
          "社保卡在外地能用吗", "社保卡金融功能怎么激活", "新生儿怎么办社保卡", "社保卡被锁了怎么解"]),
    (30, ["俺想查查灵活就业咋交养老", "失业了那个钱能领几个月", "退休年龄怎么算", "医保卡能在外地看病吗",
          "在青岛交了五年养老回济南了还算数吗", "生育津贴咋申请", "工伤认定要啥材料", "养老保险断交了能补吗"]),
    (10, ["我要挂失社保卡", "帮我查一下社保卡办到哪了"]),  # card transactions: ask for the ID number next
    (5, ["转人工", "我要投诉"]),  # hand-offs to the desk
    (10, ["你好", "谢谢", "好的", "再见"]),
    (5, ["明天天气怎么样", "asdkjh 的了是", "。。。"]),
]


def pick(rng: random.Random) -> str:
    weights = [w for w, _ in MIX]
    return rng.choice(rng.choices([m for _, m in MIX], weights=weights)[0])


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def haproxy(cmd: str) -> str:
    return haproxy_command(DIR / "haproxy.sock", cmd)


def group_pids(leader: int) -> list[int]:
    """Every process of a service's process group (Sanic runs a main and worker processes)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getpgid(int(p.name)) == leader:
                    out.append(int(p.name))
            except ProcessLookupError:
                pass
    return out


def pin(pids: dict[str, int]) -> dict[str, str]:
    placed = {}
    for name, cpu in (("rasa-1", 0), ("actions-1", 0), ("rasa-2", 1), ("actions-2", 1)):
        for pid in group_pids(pids[name]):
            subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, capture_output=True)
        placed[name] = f"CPU {cpu}"
    return placed


async def step(rasa: str, token: str, rate: float, seconds: float, rng: random.Random, senders: list[str]) -> dict:
    """One rate: Poisson arrivals for `seconds`; returns latency figures of the answers."""
    busy: set[str] = set()
    lat: list[float] = []
    failed: list[str] = []
    skipped = 0
    tasks = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=400)) as client:

        async def send(sender: str, text: str) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.post(rasa + "/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                      headers={"X-Channel-Token": token})
                if r.status_code != 200 or not r.json():
                    failed.append(f"{r.status_code} {text}")
                else:
                    lat.append((time.perf_counter() - t0) * 1000)
            except httpx.HTTPError as e:
                failed.append(f"{type(e).__name__} {text}")
            finally:
                busy.discard(sender)

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        t = start
        while t - start < seconds:
            t += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, t - time.perf_counter()))
            free = [s for s in rng.sample(senders, 8) if s not in busy]
            if not free:
                skipped += 1
                continue
            busy.add(free[0])
            tasks.append(asyncio.create_task(send(free[0], pick(rng))))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    n = len(lat) + len(failed)
    # answered per second of the arrival window (all of them answered: the offered rate as drawn)
    return {"rate": rate, "sent": n, "answered_per_s": round(len(lat) / seconds, 2), "p50": round(pct(lat, 50)),
            "p95": round(pct(lat, 95)), "failed": len(failed), "fail_examples": failed[:3], "skipped": skipped,
            "generator_cpu": round((cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall, 3)}


def run_config(name: str, rasa: str, token: str, rates: list[float], seconds: float) -> list[dict]:
    rng = random.Random(20261207)  # the same arrivals and messages for both configurations
    run = os.urandom(3).hex()  # new conversations every run (a longer tracker makes every turn slower)
    senders = [f"load-{run}-{name}-{i}" for i in range(400)]
    rows = []
    for rate in rates:
        row = asyncio.run(step(rasa, token, rate, seconds, rng, senders))
        rows.append(row)
        print(f"[load] {name}: {rate:>5.1f}/s → answered {row['answered_per_s']}/s, p50 {row['p50']} ms, "
              f"p95 {row['p95']} ms, failed {row['failed']}, generator {row['generator_cpu']} cores", flush=True)
        if row["p95"] > 1000 or row["failed"] > 0.01 * max(1, row["sent"]):
            break
    return rows


def sustained(rows: list[dict]) -> dict | None:
    ok = [r for r in rows if r["p95"] <= 1000 and r["failed"] == 0]
    return ok[-1] if ok else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="2,4,6,8,10,12,14,16,20")
    ap.add_argument("--step-seconds", type=float, default=30)
    ap.add_argument("--keep", action="store_true", help="leave the profile running afterwards")
    args = ap.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",")]
    env = dict(os.environ, PROD_DIR=str(DIR), PROD_PORT_BASE=str(BASE), PROD_DB_PREFIX=PREFIX,
               PROD_EVENTS_QUEUE=f"{PREFIX}_events", PROD_REDIS_HUB_DB="4", PROD_ANALYTICS_EVERY="3600")
    for k in ("RASA_TOKEN", "CHANNEL_TOKEN", "ACTION_TOKEN", "SERVICE_TOKEN", "MEDIA_STREAM_TOKEN", "SESSION_SECRET",
              "VOICE_CALLER_KEY_SECRET"):
        env.pop(k, None)
    subprocess.run([sys.executable, "scripts/run_prod.py", "--stop"], cwd=ROOT, env=env, check=False)
    t0 = time.time()
    r = subprocess.run([sys.executable, "scripts/run_prod.py", "--detach"], cwd=ROOT, env=env, text=True, capture_output=True)
    if r.returncode:
        print(r.stdout, r.stderr, file=sys.stderr)
        return 1
    up = time.time() - t0
    secrets = dict(line.split("=", 1) for line in (DIR / "secrets.env").read_text().splitlines() if "=" in line and not line.startswith("#"))
    pids = {k: int(v) for k, v in (line.split() for line in (DIR / "pids").read_text().splitlines() if line.strip())}
    rasa, token = f"http://127.0.0.1:{BASE + 5}", secrets["CHANNEL_TOKEN"]
    try:
        placed = pin(pids)
        for text in ("你好", "社保卡丢了咋办", "转人工"):  # warm both pairs
            for i in range(4):
                httpx.post(rasa + "/webhooks/rest/webhook", json={"sender": f"warm-{i}", "message": text},
                           headers={"X-Channel-Token": token}, timeout=60)
        for srv in ("rasa/rasa-2", "actions/actions-2"):
            haproxy(f"disable server {srv}")
        one = run_config("one", rasa, token, rates, args.step_seconds)
        for srv in ("rasa/rasa-2", "actions/actions-2"):
            haproxy(f"enable server {srv}")
        time.sleep(3)
        two = run_config("two", rasa, token, rates, args.step_seconds)
    finally:
        if not args.keep:
            subprocess.run([sys.executable, "scripts/run_prod.py", "--stop"], cwd=ROOT, env=env, check=False)
            drop_databases(env)
    write_report(one, two, placed, up, args)
    return 0


def drop_databases(env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(env.get("PROD_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/postgres"), autocommit=True) as admin:
        for name in ("rasa", "hotline", "cards", "analytics"):
            admin.execute(f'DROP DATABASE IF EXISTS "{PREFIX}_{name}" WITH (FORCE)')


def write_report(one: list[dict], two: list[dict], placed: dict[str, str], up: float, args: argparse.Namespace) -> None:
    s1, s2 = sustained(one), sustained(two)
    eff = (s2["answered_per_s"] / s1["answered_per_s"] / 2) if s1 and s2 else None

    def table(rows: list[dict]) -> str:
        out = ["| offered msg/s | answered msg/s | p50 ms | p95 ms | failed | generator CPU (cores) |", "|---|---|---|---|---|---|"]
        out += [f"| {r['rate']:g} | {r['answered_per_s']} | {r['p50']} | {r['p95']} | {r['failed']} | {r['generator_cpu']} |" for r in rows]
        return "\n".join(out)

    head = f"""# Load and scale: the production profile under open-loop load

Run {date.today().isoformat()} on this machine (2 cores) by `make load-bench` (`scripts/bench_load.py --rates {args.rates}
--step-seconds {args.step_seconds:g}`): the production profile (`make run-prod`: HAProxy, web apps ×2, Rasa ×2 with the
Redis lock store, PostgreSQL tracker store and RabbitMQ broker, action servers ×2) started by the benchmark (up in
{up:.0f} s); Rasa server + action server pair 1 pinned to CPU 0, pair 2 to CPU 1 ({", ".join(f"{k} {v}" for k, v in placed.items())});
HAProxy, the web apps and the load generator float over both cores. One replica = pair 2 disabled in HAProxy.
Messages: Poisson arrivals at each offered rate for {args.step_seconds:g} s, the REST channel through HAProxy, a mix of
knowledge questions (70 %), card transactions started (10 %), hand-offs (5 %), greetings (10 %) and noise (5 %) over
400 conversations, never two messages of one conversation in flight.

| | max sustained msg/s at p95 ≤ 1 s, no failure | p50 / p95 ms there |
|---|---|---|
| one replica (1 core) | {s1['answered_per_s'] if s1 else '—'} | {f"{s1['p50']} / {s1['p95']}" if s1 else '—'} |
| two replicas (1 core each) | {s2['answered_per_s'] if s2 else '—'} | {f"{s2['p50']} / {s2['p95']}" if s2 else '—'} |
| efficiency per added core | {f"{eff:.2f}" if eff else '—'} (two replicas' rate / (2 × one replica's)) | |

## One replica

{table(one)}

## Two replicas

{table(two)}
"""
    notes = ""
    if REPORT.exists() and "<!-- notes" in REPORT.read_text(encoding="utf-8"):
        notes = REPORT.read_text(encoding="utf-8").split("<!-- notes", 1)[1]
        notes = "\n<!-- notes" + notes
    else:
        notes = "\n<!-- notes: written by hand, kept when the benchmark rewrites the tables above -->\n"
    REPORT.write_text(head + notes, encoding="utf-8")
    print(head)


if __name__ == "__main__":
    sys.exit(main())
