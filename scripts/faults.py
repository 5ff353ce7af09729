"""The kill -9 fault-injection run (issue 15): real traffic while the services are killed and restarted.

    .venv/svc/bin/python scripts/faults.py [--minutes 10] [--short] [--seed N] [--calls N] [--keep] [--postgres]
                                           [--kill postgres,webapp]   # only these in the rotation
    .venv/svc/bin/python scripts/faults.py --soak [--minutes 30]     # the same traffic, no kills: memory and logs

With --soak nothing is killed: every service's resident memory is sampled every 15 s, and the run also fails
when a service's memory grew by more than 5 % after the warm-up (the first fifth of the run, at least two
minutes; the median of the first three samples after it against the median of the last three), or when a log
holds an ERROR line or a traceback (with no injected fault, every one is a finding).

One command: it starts its own stack (own ports, RUN_DIR=var/faults, its own SQLite databases; each service
started by this script with the same command as scripts/run.sh, so each can be killed on its own), runs mixed
traffic — web citizens with scripted conversations (knowledge questions, a card progress query, a card loss
report with a seeded citizen, 转人工), two agents on the desk claiming, replying and resolving, and keypad phone
calls through the voice gateway — and meanwhile kills one service at a time with SIGKILL (action server, Rasa,
web app, voice gateway in turn, at seeded random moments), restarts it after a short pause and records when it
was healthy again. With --postgres the web app's, the knowledge's, the card system's and Rasa's tracker
databases are on a private PostgreSQL server this script starts (initdb into var/faults/pg, port 25432, fsync on,
run as the postgres user), and that server is killed too (kill -9 of the postmaster, pg_ctl start after 1-5 s:
crash recovery) while the other services keep running and must reconnect by themselves. Then it checks what must hold after any crash, from the services' databases and from what
the clients saw, prints a table of figures and exits 1 if an invariant is violated:

- every citizen line the web app answered 200 is stored exactly once (no line lost, none duplicated);
- at most one open hand-off per conversation at any time, never more hand-offs than 转人工 lines, and each
  转人工 led to a hand-off or to a reply naming the 12345 hotline;
- a card is reported lost at most once (card system audit log), and every flow that was told so did it;
- every phone call that ended normally has its call record (calls cut by the gateway's kill are counted), and
  every call transferred to a person has its phone hand-off on the desk;
- a work order is filed once (never two for one hand-off, never the same off-hours message twice);
- a service that was not killed does not die (a service that exits by itself, e.g. during the database outage,
  is a finding; it is started again so that the run goes on);
- after each restart, the conversations waiting for the bot are answered again within 10 s of the restarted
  service being healthy (client-observed, the worst figure is printed).

Citizens send each line with a unique client_id and send it again with the same client_id while the web app
is unreachable or answers 503 "retry", as the chat page does (2, 4, 8 … at most 30 s, and at once when the
page's reconnect succeeds). A line the bot could not answer (the Rasa-down or failed text) is typed again as a
new line after a few seconds, as a citizen would; an answer the web app adds by itself is seen by polling.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN_DIR = "var/faults"
PORTS = {"RASA_PORT": 25005, "ACTION_PORT": 25055, "WEBAPP_PORT": 28080, "VOICE_HTTP_PORT": 28081,
         "AUDIOSOCKET_PORT": 29092}
ANSWER_AGAIN_S = 10.0  # the target: waiting conversations answered again this soon after a restart
RETYPE_AFTER_S = 3.0  # a citizen whose line got the "bot unavailable" text types it again after this long
GIVE_UP_S = 120.0  # a line not delivered after this long is counted as undelivered (never 200: not "lost")
HANDOFF_WAIT_S = 90.0  # how long a citizen waits for an agent after 转人工
KILL_ORDER = ("actions", "rasa", "webapp", "voice")
PG_PORT = 25432  # --postgres: the private server (never the machine's shared one at 5432)
PG_DIR = f"{RUN_DIR}/pg"
PG_DATABASES = ("hotline", "rasa", "cardsys")  # web app + knowledge, Rasa's tracker, card system
PG_SETTINGS = {"listen_addresses": "'127.0.0.1'", "port": str(PG_PORT), "unix_socket_directories": "''",
               "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "200",
               "shared_buffers": "'64MB'", "log_line_prefix": "'%m [%p] %d '"}
SOAK_SAMPLE_S = 15.0  # --soak: resident memory sampled this often
SOAK_GROWTH = 0.05  # --soak: at most this growth of resident memory after the warm-up
LOG_ERROR = re.compile(r"\bERROR\b|Traceback \(most recent call last\)|\bCRITICAL\b")
KNOWLEDGE = ("社保卡丢了怎么补办", "灵活就业怎么交养老保险", "失业金能领几个月", "电子社保卡怎么领",
             "医保报销比例是多少", "工伤认定需要什么材料")


# ---------------------------------------------------------------------------------------------- the stack
def stack_env(pg_port: int | None = None) -> dict[str, str]:
    """The environment of scripts/env.sh with this run's ports, run dir and databases (as scripts/test.sh does);
    with pg_port, the web app, knowledge, card system and Rasa tracker databases on that private PostgreSQL."""
    run = ROOT / RUN_DIR
    own = {k: str(v) for k, v in PORTS.items()}
    own.update(
        RASA_URL=f"http://127.0.0.1:{PORTS['RASA_PORT']}", WEBAPP_URL=f"http://127.0.0.1:{PORTS['WEBAPP_PORT']}",
        ACTION_SERVER_URL=f"http://127.0.0.1:{PORTS['ACTION_PORT']}/webhook", RUN_DIR=RUN_DIR,
        HANDOFF_WAIT_SECONDS="120", APP_ENV="development",
        TRACKER_STORE_URL=f"sqlite:///{run}/rasa_tracker.db", WEBAPP_DATABASE_URL=f"sqlite:///{run}/webapp.db",
        KB_DATABASE_URL=f"sqlite:///{run}/webapp.db", CARDSYS_DATABASE_URL=f"sqlite:///{run}/cardsys.db", CARDSYS_SMS_LOG=f"{run}/sms.log",
        VOICE_DB_PATH=f"{run}/voice_calls.sqlite3", RASA_EVENTS_URL=f"sqlite:///{run}/rasa_events.db")
    if pg_port:  # Rasa's tracker store speaks psycopg2 (its env), our services psycopg 3
        at = f"postgres@127.0.0.1:{pg_port}"
        own.update(TRACKER_STORE_URL=f"postgresql://{at}/rasa", WEBAPP_DATABASE_URL=f"postgresql+psycopg://{at}/hotline",
                   KB_DATABASE_URL=f"postgresql+psycopg://{at}/hotline",
                   CARDSYS_DATABASE_URL=f"postgresql+psycopg://{at}/cardsys")
    out = subprocess.run(["bash", "-c", ". scripts/env.sh && env -0"], cwd=ROOT, env={**os.environ, **own},
                         capture_output=True, check=True).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def service_table(env: dict[str, str]) -> dict[str, list[str]]:
    """Each service's command, as scripts/run.sh starts it."""
    svc, rasa = f"{env['SVC_VENV']}/bin/python", f"{env['RASA_VENV']}/bin/rasa"
    return {
        "actions": ["env", "KB_PRELOAD=1", svc, "-m", "actions.server", "-p", env["ACTION_PORT"]],
        "rasa": [rasa, "run", "--enable-api", "--auth-token", env["RASA_TOKEN"], "-i", "127.0.0.1", "-p",
                 env["RASA_PORT"], "--model", "build/rasa-models/current.tar.gz", "--credentials", "credentials.yml",
                 "--endpoints", "endpoints.yml"],
        "webapp": [svc, "-m", "webapp"],
        "voice": [svc, "-m", "voice"],
    }


def warm_up_body() -> dict[str, Any]:
    """One real knowledge action call (as scripts/run.sh's warm-up): it answers once the knowledge base is indexed."""
    return {"next_action": "action_answer_from_kb", "sender_id": "warmup", "domain": {},
            "tracker": {"sender_id": "warmup", "slots": {}, "events": [], "latest_action_name": "action_listen",
                        "latest_message": {"text": "社保卡", "intent": {"name": "ask_question"}, "entities": []}}}


@dataclass
class Service:
    """One service process: started, checked for health, killed with SIGKILL, started again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(ROOT / RUN_DIR / "log" / f"{self.name}.log", "a", encoding="utf-8")  # noqa: SIM115 - the child keeps it
        log.write(f"\n===== [faults] start {time.strftime('%H:%M:%S')}\n")
        log.flush()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def kill9(self) -> None:
        """kill -9 the service (its process group: `env` execs the server, so the group is that one process)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def healthy(self) -> bool:
        e = self.env
        try:
            if self.name == "actions":
                base = f"http://127.0.0.1:{e['ACTION_PORT']}"
                return (httpx.get(base + "/health", timeout=3).status_code == 200 and
                        httpx.post(base + "/webhook", json=warm_up_body(), headers={"X-Action-Token": e["ACTION_TOKEN"]},
                                   timeout=120).status_code == 200)
            url = {"rasa": f"{e['RASA_URL']}/status?token={e['RASA_TOKEN']}", "webapp": f"{e['WEBAPP_URL']}/health",
                   "voice": f"http://127.0.0.1:{e['VOICE_HTTP_PORT']}/health"}[self.name]
            return httpx.get(url, timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float = 240) -> float:
        """Blocks until healthy; returns the time (time.time()) it was. RuntimeError if it died or took too long."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {RUN_DIR}/log/{self.name}.log")
            if self.healthy():
                return time.time()
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s; see {RUN_DIR}/log/{self.name}.log")


class Postgres:
    """--postgres: a private PostgreSQL server in var/faults/pg, run as the postgres user (initdb refuses root);
    killed like a service (kill -9 of the postmaster) and started again with pg_ctl (crash recovery)."""

    name = "postgres"
    proc = None  # not a child of this script (pg_ctl daemonizes the postmaster): no memory samples

    def __init__(self, webapp_url: str, port: int = PG_PORT) -> None:
        self.folder, self.port, self.webapp_url = ROOT / PG_DIR, port, webapp_url
        self.log = ROOT / RUN_DIR / "log" / "postgres.log"
        self.bin = self.binaries()
        self.stragglers = 0  # backends still alive after the postmaster's kill, killed by us

    @staticmethod
    def binaries() -> Path:
        """The newest /usr/lib/postgresql/<version>/bin with initdb."""
        found = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
                       key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
        if not found:
            raise RuntimeError("--postgres needs the PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin)")
        return found[-1]

    def as_postgres(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """A PostgreSQL program as the postgres system user (initdb and the server refuse root)."""
        cmd = ["runuser", "-u", "postgres", "--", str(self.bin / argv[0]), *argv[1:]]
        return subprocess.run(cmd, cwd="/", capture_output=True, text=True, check=check, timeout=timeout)

    def create(self) -> None:
        """initdb (unless the folder holds a cluster, --keep), trust on 127.0.0.1 only, fsync on, our port."""
        if (self.folder / "PG_VERSION").exists():
            return
        if subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"], capture_output=True, text=True).stdout.strip():
            raise RuntimeError(f"port {self.port} is taken: another server (a private PostgreSQL left running?)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        subprocess.run(["chown", "postgres:postgres", str(self.folder), str(self.log)], check=True)
        self.as_postgres("initdb", "-D", str(self.folder), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--locale", "C")
        (self.folder / "pg_hba.conf").write_text("# scripts/faults.py: trust, TCP on 127.0.0.1 only\n"
                                                 "host all all 127.0.0.1/32 trust\n", encoding="utf-8")
        with (self.folder / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# scripts/faults.py\n" + "".join(f"{k} = {v}\n" for k, v in PG_SETTINGS.items()))
        subprocess.run(["chown", "postgres:postgres", str(self.folder / "pg_hba.conf"),
                        str(self.folder / "postgresql.conf")], check=True)

    def create_databases(self) -> None:
        import psycopg
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            have = {n for (n,) in c.execute("SELECT datname FROM pg_database")}
            for name in PG_DATABASES:
                if name not in have:
                    c.execute(f'CREATE DATABASE "{name}"')

    def start(self) -> None:
        """pg_ctl start without waiting (crash recovery runs; wait_healthy waits for it)."""
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n===== [faults] start {time.strftime('%H:%M:%S')}\n")
        self.as_postgres("pg_ctl", "-D", str(self.folder), "-l", str(self.log), "-W", "start")

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int((self.folder / "postmaster.pid").read_text().split()[0])
        return None

    def running(self) -> bool:
        """pg_ctl status: 0 running, 3 not running."""
        return self.as_postgres("pg_ctl", "-D", str(self.folder), "status", check=False).returncode == 0

    def kill9(self) -> None:
        """kill -9 of the postmaster; its backends exit on their own (postmaster death), the ones still alive after
        3 s are killed too, so that none keeps the shared memory or the port."""
        pid = self.postmaster_pid()
        if pid is None or not alive(pid):
            return
        children = [c for c in all_pids() if ppid(c) == pid]
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 3
        while time.time() < deadline and any(alive(c) for c in [pid, *children]):
            time.sleep(0.1)
        for c in children:
            if alive(c):
                self.stragglers += 1
                with contextlib.suppress(ProcessLookupError):
                    os.kill(c, signal.SIGKILL)
        deadline = time.time() + 5
        while time.time() < deadline and (self.running() or self.port_taken()):
            time.sleep(0.2)
        if self.running() or self.port_taken():
            raise RuntimeError(f"postgres still running or port {self.port} still taken after kill -9")

    def port_taken(self) -> bool:
        return bool(subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"], capture_output=True, text=True).stdout.strip())

    def healthy(self) -> bool:
        """pg_isready answers and so does the web app's /health."""
        if not self.ready():
            return False
        try:
            return httpx.get(self.webapp_url + "/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        return self.as_postgres("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2",
                                check=False).returncode == 0

    def wait_healthy(self, timeout: float = 240) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.healthy():
                return time.time()
            time.sleep(0.25)
        raise RuntimeError(f"postgres not healthy after {timeout:.0f} s; see {RUN_DIR}/log/postgres.log")

    def wait_healthy_db(self, timeout: float = 60) -> None:
        """The server alone accepts connections (before the stack runs, after it stopped)."""
        deadline = time.time() + timeout
        while not self.ready():
            if time.time() > deadline:
                raise RuntimeError(f"the private PostgreSQL did not start; see {RUN_DIR}/log/postgres.log")
            time.sleep(0.5)

    def stop(self) -> None:
        if (self.folder / "postmaster.pid").exists() and self.running():
            r = self.as_postgres("pg_ctl", "-D", str(self.folder), "-m", "fast", "-w", "-t", "30", "stop", check=False)
            if r.returncode != 0:
                self.as_postgres("pg_ctl", "-D", str(self.folder), "-m", "immediate", "-w", "stop", check=False)


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def ppid(pid: int) -> int | None:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@dataclass
class Clock:
    """When the traffic stops: the run's length, or later, so that every service is killed once and answers again."""

    stop_at: float


@dataclass
class Restart:
    service: str
    killed_at: float
    started_at: float = 0.0
    healthy_at: float = 0.0
    recovered_in: float | None = None  # worst time to answer again of the conversations that were waiting
    waiting: int = 0
    services_back: float | None = None  # postgres: every other service healthy again this long after it (s)
    worst_case: str = ""  # the conversation behind recovered_in, with its events
    overlap: list[str] = field(default_factory=list)  # services killed before that conversation was answered


# ---------------------------------------------------------------------------------------------- what clients saw
@dataclass
class Line:
    """One citizen line as the client sent it."""

    cid: str
    client_id: str
    text: str
    sent_at: float
    status: int = 0  # the final HTTP status (200: the web app took it)
    attempts: int = 0
    answer: str = ""  # bot | failed | silent | none (see answer_kind) | answered later (polled)
    reply: str = ""


@dataclass
class Record:
    """Everything the clients did and saw, for the checks."""

    lines: list[Line] = field(default_factory=list)
    # per conversation: (time, "fail" | "ok") — a failed bot answer or delivery, or an answer from the bot
    events: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    handoff_asks: dict[str, int] = field(default_factory=Counter)  # 转人工 lines taken (200) per conversation
    handoff_result: Counter = field(default_factory=Counter)
    losses_done: dict[str, str] = field(default_factory=dict)  # id number → conversation, when told it was done
    loss_flows: Counter = field(default_factory=Counter)
    calls: list[dict[str, Any]] = field(default_factory=list)
    desk: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


FAIL_MARKS = ("智能客服暂时无法连接", "暂时没能处理")


def not_an_answer(m: dict) -> bool:
    """A bot line that says it could not answer: the web app's empty-reply text, the bot's "an action failed"."""
    return bool(m["payload"].get("empty") or (m["payload"].get("custom") or {}).get("action_failed"))


def failed_answer(msgs: list[dict]) -> bool:
    """The web app's "bot unavailable / not handled" text, or a bot line that is not an answer."""
    return any((m["role"] == "system" and any(k in m["text"] for k in FAIL_MARKS)) or
               (m["role"] == "bot" and not_an_answer(m)) for m in msgs)


def bot_answer(msgs: list[dict]) -> bool:
    """A real answer of the bot."""
    return any(m["role"] == "bot" and not not_an_answer(m) for m in msgs)


def answer_kind(msgs: list[dict], mode: str) -> str:
    """bot (answered), failed (an "unavailable" or empty answer), silent (the bot serves the conversation but
    nothing answered the line), none (a person or a rating handles it)."""
    if bot_answer(msgs):
        return "bot"
    if failed_answer(msgs):
        return "failed"
    return "silent" if mode == "bot" and not any(m["role"] in ("system", "bot") for m in msgs) else "none"


class Citizen:
    """One browser (httpx client with the signed conversation cookie) running scripted conversations."""

    def __init__(self, base: str, rec: Record, clock: Clock, sms_log: Path) -> None:
        self.base, self.rec, self.clock, self.sms_log = base, rec, clock, sms_log
        self.http: httpx.AsyncClient | None = None
        self.cid = ""
        self.last_id = 0

    async def open(self) -> None:
        """A new conversation: a fresh browser (no cookie), its conversation id from GET /api/chat/state."""
        if self.http:
            await self.http.aclose()
        self.http = httpx.AsyncClient(base_url=self.base, timeout=60)
        while True:
            with contextlib.suppress(httpx.HTTPError):
                r = await self.http.get("/api/chat/state")
                if r.status_code == 200:
                    self.cid, msgs = r.json()["cid"], r.json()["messages"]
                    self.last_id = msgs[-1]["id"] if msgs else 0
                    return
            await asyncio.sleep(1)

    async def state(self) -> dict | None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            r = await self.http.get("/api/chat/state", timeout=5)
            if r.status_code == 200:
                return r.json()
        return None

    async def deliver(self, text: str, display: str | None = None) -> Line:
        """POST the line with a new client_id; the same client_id again while unreachable or told to retry."""
        line = Line(self.cid, uuid.uuid4().hex, text, time.time())
        self.rec.lines.append(line)
        delay = 2.0
        while time.time() - line.sent_at < GIVE_UP_S:
            line.attempts += 1
            try:
                r = await self.http.post("/api/chat/message", json={"text": text, "display": display,
                                                                    "client_id": line.client_id})
                line.status = r.status_code
                if r.status_code == 200:
                    msgs = r.json()["messages"]
                    if msgs:
                        self.last_id = max(self.last_id, max(m["id"] for m in msgs))
                    line.reply = "\n".join(m["text"] for m in msgs if m["role"] != "citizen")
                    line.answer = answer_kind(msgs, r.json().get("mode", ""))
                    kind = {"failed": "fail", "silent": "fail", "bot": "ok"}.get(line.answer, "-")
                    self.rec.events[self.cid].append((time.time(), kind))
                    return line
                if r.status_code < 500:
                    self.rec.errors.append(f"{self.cid}: {text!r} refused {r.status_code} {r.text[:100]}")
                    return line
            except httpx.HTTPError:
                line.status = -1
            self.rec.events[self.cid].append((time.time(), "fail"))
            await self._reconnect_or_wait(delay)
            delay = min(delay * 2, 30.0)
        return line

    async def _reconnect_or_wait(self, delay: float) -> None:
        """The page's back-off: wait `delay`, but send again at once when its reconnect (the state) succeeds."""
        end = time.time() + delay
        while time.time() < end:
            await asyncio.sleep(1)
            if await self.state() is not None:
                return

    async def ask(self, text: str, display: str | None = None) -> str:
        """A line the bot should answer: typed again while the answer is the "unavailable" text (or none
        comes), until the bot answers; returns what the bot said."""
        for _ in range(40):
            line = await self.deliver(text, display)
            if line.status != 200:
                return ""
            if line.answer == "bot":
                return line.reply
            if line.answer == "none":
                return line.reply  # handled elsewhere (a person, a rating)
            later = await self.wait_for_bot(RETYPE_AFTER_S)
            if later is not None:
                line.answer = "answered later"
                return later
            if time.time() > self.clock.stop_at + 60:
                return ""
        return ""

    async def wait_for_bot(self, seconds: float) -> str | None:
        """A bot line added to the transcript by itself within `seconds` (polled), or None."""
        end = time.time() + seconds
        while time.time() < end:
            await asyncio.sleep(0.5)
            st = await self.state()
            new = [m for m in (st or {}).get("messages", []) if m["id"] > self.last_id]
            if new:
                self.last_id = max(m["id"] for m in new)
                if bot_answer(new):
                    self.rec.events[self.cid].append((time.time(), "ok"))
                    return "\n".join(m["text"] for m in new if m["role"] == "bot" and not not_an_answer(m))
        return None

    # ------------------------------------------------------------------ the scripted conversations
    async def knowledge(self, rng: random.Random) -> None:
        await self.open()
        for q in rng.sample(KNOWLEDGE, 3):
            await self.ask(q)
            await asyncio.sleep(rng.uniform(0.5, 2))

    async def progress(self, person: tuple[str, str, str]) -> None:
        await self.open()
        await self.ask("我的卡办到哪了")
        for part in person:
            await self.ask(part)

    async def loss(self, person: tuple[str, str, str]) -> None:
        await self.open()
        self.rec.loss_flows["started"] += 1
        await self.ask("我的社保卡丢了")
        reply = ""
        for part in person:
            reply = await self.ask(part)
        if "确认要办理临时挂失吗" not in reply:
            self.rec.loss_flows["not verified"] += 1
            return
        asked = await self.ask("/affirm", display="确认挂失")
        code = latest_code(self.sms_log, person[2][-4:]) if "验证码" in asked else None
        if code is None:
            self.rec.loss_flows["no code"] += 1
            return
        done = await self.ask(code)
        if "临时挂失" in done and ("已经为您办理" in done or "不用重复办理" in done):
            self.rec.losses_done[person[0]] = self.cid
            self.rec.loss_flows["reported"] += 1
        else:
            self.rec.loss_flows["not done"] += 1

    async def person(self, rng: random.Random) -> None:
        """转人工, typed again while it reached neither a person nor the hotline reply; then wait for the agent."""
        await self.open()
        await self.ask(rng.choice(KNOWLEDGE))
        for _ in range(5):
            line = await self.deliver("转人工")
            if line.status != 200:
                self.rec.handoff_result["undelivered"] += 1
                return
            self.rec.handoff_asks[self.cid] += 1
            st = await self.state() or {}
            if st.get("mode") in ("human", "message"):
                self.rec.handoff_result["hand-off"] += 1
                break
            if "12345" in line.reply:
                self.rec.handoff_result["hotline reply"] += 1
                await asyncio.sleep(RETYPE_AFTER_S)
                continue
            self.rec.handoff_result["neither"] += 1
            self.rec.errors.append(f"{self.cid}: 转人工 answered {line.reply!r}")
            await asyncio.sleep(RETYPE_AFTER_S)
        else:
            return
        end = time.time() + HANDOFF_WAIT_S
        while time.time() < end:
            await asyncio.sleep(1)
            st = await self.state() or {}
            if st.get("mode") == "bot":
                return
            if any(m["role"] == "agent" for m in st.get("messages", []) if m["id"] > self.last_id):
                await self.deliver("好的，谢谢")
                return


def latest_code(log: Path, last4: str) -> str | None:
    """The newest one-time code sent to a phone ending in last4 (the development SMS outbox)."""
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    for line in reversed(lines):
        if f"****{last4} " in line and (m := re.search(r"验证码是?(\d{6})", line)):
            return m.group(1)
    return None


async def citizen_loop(n: int, base: str, rec: Record, clock: Clock, people: dict[str, list], sms_log: Path,
                       seed: int) -> None:
    """One citizen: knowledge, card progress, loss report, 转人工 in a seeded random order until the time is up."""
    rng = random.Random(seed * 100 + n)
    c = Citizen(base, rec, clock, sms_log)
    while time.time() < clock.stop_at:
        kind = rng.choice(("knowledge", "knowledge", "progress", "loss", "person"))
        try:
            if kind == "loss" and people["loss"]:
                await c.loss(people["loss"].pop())
            elif kind == "progress":
                await c.progress(rng.choice(people["progress"]))
            elif kind == "person":
                await c.person(rng)
            else:
                await c.knowledge(rng)
        except Exception as exc:  # noqa: BLE001 - a client bug is reported, the run goes on
            rec.errors.append(f"citizen {n} {kind}: {type(exc).__name__}: {exc}")
        await asyncio.sleep(rng.uniform(0.5, 2))
    if c.http:
        await c.http.aclose()


async def agent_loop(user: str, base: str, rec: Record, clock: Clock) -> None:
    """An agent on the desk: logs in (again after a web app restart if needed), claims, replies, resolves."""
    http = httpx.AsyncClient(base_url=base, timeout=30)
    logged_in = False
    while time.time() < clock.stop_at + 60:
        try:
            if not logged_in:
                r = await http.post("/desk/login", json={"username": user, "password": f"{user}-demo"})
                logged_in = r.status_code == 200
                if not logged_in:
                    await asyncio.sleep(2)
                    continue
            r = await http.get("/desk/api/queues")
            if r.status_code == 401:
                logged_in = False
                continue
            board = r.json()
            for h in board.get("mine", []):
                await serve_handoff(http, h, rec)
            waiting = [h for hs in board.get("queues", {}).values() for h in hs]
            if waiting:
                r = await http.post(f"/desk/api/handoffs/{waiting[0]['id']}/claim")
                rec.desk["claimed" if r.status_code == 200 else f"claim {r.status_code}"] += 1
                if r.status_code == 200:
                    await serve_handoff(http, waiting[0], rec)
            elif time.time() > clock.stop_at:
                break
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(1)
    await http.aclose()


async def serve_handoff(http: httpx.AsyncClient, h: dict, rec: Record) -> None:
    """Reply to a web citizen (a phone caller is talked to on the phone), then resolve."""
    hid = h["id"]
    if h.get("channel") != "phone":
        r = await http.post(f"/desk/api/handoffs/{hid}/reply", json={"text": "您好，我是人工客服，请问有什么可以帮您？"})
        rec.desk["replied" if r.status_code == 200 else f"reply {r.status_code}"] += 1
    await asyncio.sleep(3)
    r = await http.post(f"/desk/api/handoffs/{hid}/resolve")
    rec.desk["resolved" if r.status_code == 200 else f"resolve {r.status_code}"] += 1


async def call_loop(n: int, ws_url: str, rec: Record, clock: Clock, seed: int) -> None:
    """Keypad calls, one after another: dial in, menu keys, 0 for a person."""
    from tests.voice.doubles import MediaStreamCaller
    rng = random.Random(seed * 1000 + n)
    while time.time() < clock.stop_at:
        call = {"sid": f"CAfaults{uuid.uuid4().hex}", "started": time.time(), "end": "?"}
        rec.calls.append(call)
        try:
            async with MediaStreamCaller(ws_url, call_sid=call["sid"]) as caller:
                call["connected"] = True
                await caller.wait_for_audio(0, timeout=15)
                for key in rng.choice(("1", "2", "3")) + "9":
                    await asyncio.sleep(rng.uniform(1, 3))
                    await caller.press(key)
                await asyncio.sleep(rng.uniform(1, 3))
                await caller.press("0")
                await asyncio.wait_for(caller.closed.wait(), timeout=30)
                marks = [m["mark"]["name"] for m in caller.events("mark")]
                call["end"] = "transferred" if any(m.startswith("transfer") for m in marks) else "closed"
        except Exception as exc:  # noqa: BLE001 - a cut call (gateway killed) is what this run provokes
            call["end"] = f"cut ({type(exc).__name__})" if call.get("connected") else "not connected (gateway down)"
        call["ended"] = time.time()
        await asyncio.sleep(rng.uniform(1, 4))


# ---------------------------------------------------------------------------------------------- the faults
async def fault_loop(services: dict[str, Service], restarts: list[Restart], clock: Clock, rng: random.Random,
                     with_voice: bool, short: bool, rec: Record, pg: Postgres | None = None,
                     only: tuple[str, ...] = ()) -> None:
    """Kill one service at a time (in turn, at random moments), restart it after a short pause, wait for health;
    every service at least once (the traffic goes on 20 s after the last one is back). With pg, the database is
    in the rotation too: the other services keep running through its outage and must reconnect by themselves."""
    order = [s for s in (*KILL_ORDER, "postgres") if (with_voice or s != "voice") and (pg or s != "postgres")
             and (not only or s in only)]
    killable: dict[str, Service | Postgres] = {**services, **({"postgres": pg} if pg else {})}
    if not order:  # e.g. --kill voice --calls 0: nothing to kill, the traffic alone
        return
    gap = (5, 12) if short else (15, 35)
    i = 0
    await asyncio.sleep(rng.uniform(10, 20))
    while i < len(order) or time.time() < clock.stop_at - 25:
        await asyncio.to_thread(died_by_themselves, services, rec, "before a kill")
        svc = killable[order[i % len(order)]]
        r = Restart(svc.name, time.time())
        await asyncio.to_thread(svc.kill9)
        print(f"[faults] {time.strftime('%H:%M:%S', time.localtime(r.killed_at))} kill -9 {svc.name}", flush=True)
        await asyncio.sleep(rng.uniform(1, 5))
        r.started_at = time.time()
        await asyncio.to_thread(svc.start)
        r.healthy_at = await asyncio.to_thread(svc.wait_healthy)
        print(f"[faults] {time.strftime('%H:%M:%S')} {svc.name} healthy after {r.healthy_at - r.killed_at:.1f} s",
              flush=True)
        restarts.append(r)
        if svc is pg:  # every other service lived through the outage: still running, and healthy again by itself
            await asyncio.to_thread(died_by_themselves, services, rec, "during the database outage")
            r.services_back = await asyncio.to_thread(services_healthy, services, r.healthy_at, rec)
        clock.stop_at = max(clock.stop_at, r.healthy_at + 20)
        i += 1
        await asyncio.sleep(rng.uniform(*gap))


def died_by_themselves(services: dict[str, Service], rec: Record, when: str) -> None:
    """A service that exited although nobody killed it is a finding; it is started again so that the run goes on."""
    for svc in services.values():
        if svc.proc is not None and svc.proc.poll() is not None:
            tail = log_tail(ROOT / RUN_DIR / "log" / f"{svc.name}.log")
            rec.errors.append(f"DIED: {svc.name} exited by itself ({when}, code {svc.proc.returncode}); log: {tail}")
            print(f"[faults] {time.strftime('%H:%M:%S')} {svc.name} exited by itself ({when}); started again",
                  flush=True)
            svc.start()
            svc.wait_healthy()


def services_healthy(services: dict[str, Service], since: float, rec: Record, timeout: float = 60) -> float:
    """After the database is back: the time until every service answers its health check again (s); a service
    that does not within `timeout` is a finding."""
    pending = dict(services)
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        for name, svc in list(pending.items()):
            if svc.healthy():
                del pending[name]
        if pending:
            time.sleep(0.5)
    for name in pending:
        rec.errors.append(f"NOT RECOVERED: {name} not healthy {timeout:.0f} s after the database was back; "
                          f"log: {log_tail(ROOT / RUN_DIR / 'log' / f'{name}.log')}")
    return time.time() - since


def log_tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    return " / ".join(line.strip()[:160] for line in text[-lines:])


# ---------------------------------------------------------------------------------------------- the soak
def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (MiB), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


async def memory_loop(services: dict[str, Service], samples: dict[str, list[tuple[float, float]]], clock: Clock) -> None:
    """--soak: every SOAK_SAMPLE_S, each service's resident memory (time, MiB) until the traffic stops."""
    while time.time() < clock.stop_at:
        for name, svc in services.items():
            mib = rss_mib(svc.proc.pid) if svc.proc else None
            if mib is not None:
                samples[name].append((time.time(), mib))
        await asyncio.sleep(SOAK_SAMPLE_S)


def memory_growth(samples: list[tuple[float, float]], warm_until: float) -> tuple[float, float, float] | None:
    """(MiB after the warm-up, MiB at the end, growth) from the medians of three samples, None if too few."""
    after = [mib for at, mib in samples if at >= warm_until]
    if len(after) < 6:
        return None
    first, last = sorted(after[:3])[1], sorted(after[-3:])[1]
    return first, last, (last - first) / first


def log_errors(log_dir: Path) -> dict[str, list[str]]:
    """ERROR, CRITICAL and traceback lines of each service's log."""
    found: dict[str, list[str]] = {}
    for log in sorted(log_dir.glob("*.log")):
        hits = [line.strip()[:200] for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if LOG_ERROR.search(line)]
        if hits:
            found[log.stem] = hits
    return found


# ---------------------------------------------------------------------------------------------- the checks
def rows(url: str, sql: str) -> list[tuple]:
    """The rows of a query, through SQLAlchemy: a SQLite file or the private PostgreSQL, as the services see them."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql))]
    finally:
        engine.dispose()


def as_json(value: object) -> dict:
    """A JSON column: text on SQLite, already decoded on PostgreSQL."""
    if isinstance(value, (str, bytes)):
        return json.loads(value or "{}") or {}
    return value or {}


def stamp(value: object) -> float:
    """A DateTime column as seconds (text on SQLite, datetime on PostgreSQL); None (still open) is the far future."""
    if value is None:
        return float("inf")
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc).timestamp() if value.tzinfo is None else value.timestamp()


def check_lines(rec: Record, webapp_db: str) -> dict[str, int]:
    """Every line a client got a 200 for is stored once; no line stored twice (per conversation, by client_id)."""
    stored: Counter = Counter()
    for cid, text, payload in rows(webapp_db, "SELECT conversation_id, text, payload FROM messages WHERE role='citizen'"):
        client_id = as_json(payload).get("client_id")
        stored[(cid, client_id or f"text:{text}")] += 1
    taken = [ln for ln in rec.lines if ln.status == 200]
    lost = [ln for ln in taken if stored[(ln.cid, ln.client_id)] == 0]
    dup = {k: n for k, n in stored.items() if n > 1 and not k[1].startswith("text:")}
    silent = [ln for ln in taken if ln.answer == "silent"]
    for ln in silent[:10]:
        rec.errors.append(f"UNANSWERED line {ln.text!r} (client_id {ln.client_id}, {ln.attempts} attempts) of "
                          f"conversation {ln.cid}: stored, the bot serves the conversation, no answer came")
    for ln in lost[:10]:
        rec.errors.append(f"LOST line {ln.text!r} (client_id {ln.client_id}) of conversation {ln.cid}")
    for k, n in list(dup.items())[:10]:
        rec.errors.append(f"DUPLICATED line stored {n}x: conversation {k[0]} client_id {k[1]}")
    return {"sent": len(rec.lines), "taken": len(taken), "stored": sum(1 for ln in taken if stored[(ln.cid, ln.client_id)]),
            "lost": len(lost), "duplicated": len(dup), "undelivered": sum(1 for ln in rec.lines if ln.status != 200),
            "resends": sum(ln.attempts - 1 for ln in rec.lines),
            "answered": sum(1 for ln in taken if ln.answer == "bot"),
            "failed answers": sum(1 for ln in taken if ln.answer == "failed"),
            "silent": len(silent)}


def check_handoffs(rec: Record, webapp_db: str) -> dict[str, int]:
    """At most one open hand-off per conversation at a time, never more than it asked for."""
    per: dict[str, list[tuple]] = defaultdict(list)
    for cid, channel, status, created, closed in rows(
            webapp_db, "SELECT conversation_id, channel, status, created_at, resolved_at FROM handoffs ORDER BY id"):
        per[cid].append((channel, status, created, closed))
    overlapping = 0
    for cid, hs in per.items():
        opened = [h for h in hs if h[1] in ("queued", "claimed")]
        spans = sorted((stamp(h[2]), stamp(h[3])) for h in hs)
        overlap = len(opened) > 1 or any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
        if overlap:
            overlapping += 1
            rec.errors.append(f"DUPLICATED hand-off: conversation {cid} has overlapping hand-offs {hs}")
    too_many = [c for c, n in rec.handoff_asks.items() if len(per.get(c, [])) > n]
    for c in too_many:
        rec.errors.append(f"DUPLICATED hand-off: conversation {c} asked {rec.handoff_asks[c]}x, has {len(per[c])}")
    return {"web": sum(1 for hs in per.values() for h in hs if h[0] == "web"),
            "phone": sum(1 for hs in per.values() for h in hs if h[0] == "phone"),
            "duplicated": overlapping + len(too_many), "neither": rec.handoff_result["neither"]}


def check_losses(rec: Record, card_db: str) -> dict[str, int]:
    """A card is reported lost once: one 'reported' audit entry per citizen; each flow told so did it."""
    done = Counter(n for (n,) in rows(card_db, "SELECT c.id_number FROM cardsys_audit_log a JOIN cardsys_citizens c "
                                               "ON a.citizen_id = c.id WHERE a.action='temporary_loss' AND a.outcome='reported'"))
    dup = {k: n for k, n in done.items() if n > 1}
    for k, n in dup.items():
        rec.errors.append(f"DUPLICATED loss report: citizen …{k[-4:]} reported {n}x")
    missing = [k for k in rec.losses_done if done[k] == 0]
    for k in missing:
        rec.errors.append(f"LOST loss report: citizen …{k[-4:]} was told it was done, no audit entry")
    return {"reported": sum(done.values()), "duplicated": len(dup), "missing": len(missing)}


def check_workorders(rec: Record, webapp_db: str) -> dict[str, int]:
    """A work order is filed once: never two work orders for one hand-off (the callback), never one hand-off's
    work order claimed by two, never the same off-hours message filed twice in a conversation."""
    orders = rows(webapp_db, "SELECT id, conversation_id, created_by, title, detail FROM work_orders")
    linked = Counter(w for (w,) in rows(webapp_db, "SELECT workorder_id FROM handoffs WHERE workorder_id IS NOT NULL"))
    per_handoff = Counter(m.group(1) for _, _, by, _, detail in orders
                          if by == "citizen" and (m := re.search(r"转人工记录 #(\d+)", detail or "")))
    messages = Counter((cid, detail) for _, cid, by, title, detail in orders
                       if by == "citizen" and not (title or "").startswith("回电"))
    dup = ([f"work order {w} linked to {n} hand-offs" for w, n in linked.items() if n > 1] +
           [f"hand-off #{h} has {n} callback work orders" for h, n in per_handoff.items() if n > 1] +
           [f"conversation {c} filed the same message {n}x" for (c, _), n in messages.items() if n > 1])
    for d in dup:
        rec.errors.append(f"DUPLICATED work order: {d}")
    return {"stored": len(orders), "duplicated": len(dup)}


def check_calls(rec: Record, voice_db: Path, restarts: list[Restart], webapp_db: str) -> dict[str, int]:
    """Every call has its record: those that ended normally, and those the gateway's kill cut (a call that was
    connected when the gateway was killed, whatever the client saw). Every call transferred to a person has its
    phone hand-off on the desk (the gateway's ticket, conversation = call id)."""
    ticket = dict(rows(f"sqlite:///{voice_db}", "SELECT call_id, handoff_status FROM calls")) if voice_db.exists() else {}
    saved = set(ticket)
    on_desk = {c for (c,) in rows(webapp_db, "SELECT conversation_id FROM handoffs WHERE channel = 'phone'")}
    kills = [r.killed_at for r in restarts if r.service == "voice"]
    rec.calls = [c for c in rec.calls if c.get("connected")]  # a call the gateway never took is no call
    for c in rec.calls:
        if any(c["started"] <= k <= c.get("ended", time.time()) for k in kills):
            c["end"] = "cut by the gateway kill"
    cut = [c for c in rec.calls if c["end"].startswith("cut")]
    missing = [c for c in rec.calls if c["sid"] not in saved]
    for c in missing:
        rec.errors.append(f"LOST call record: {c['sid']} ({c['end']})")
    transferred = [c for c in rec.calls if c["end"] == "transferred"]
    no_handoff = [c for c in transferred if c["sid"] not in on_desk]
    for c in no_handoff:
        when = time.strftime("%H:%M:%S", time.localtime(c.get("ended", c["started"])))
        rec.errors.append(f"LOST phone hand-off: call {c['sid']} transferred (ended {when}) without a hand-off on "
                          f"the desk; gateway's ticket: {str(ticket.get(c['sid']))[:120]}")
    return {"placed": len(rec.calls), "transferred": len(transferred),
            "cut": len(cut), "cut with record": sum(1 for c in cut if c["sid"] in saved), "missing records": len(missing),
            "transferred without hand-off": len(no_handoff)}


def recovery(rec: Record, restarts: list[Restart]) -> None:
    """For each restart: of the conversations waiting when the service was healthy again (last event before it a
    failure, or a failure while it was down), the time to their next bot answer; the worst is the restart's figure."""
    for r in restarts:
        worst, waiting = 0.0, 0
        for cid, events in rec.events.items():
            before = [e for e in events if e[0] <= r.healthy_at and e[1] != "-"]
            if not before or before[-1][1] != "fail" or before[-1][0] < r.killed_at - 30:
                continue
            waiting += 1
            after = [t for t, kind in events if t > r.healthy_at and kind == "ok"]
            took = (after[0] - r.healthy_at) if after else float("inf")
            if took > worst:
                trace = " ".join(f"{t - r.healthy_at:+.1f}{k[0]}" for t, k in events
                                 if r.killed_at - 5 <= t <= r.healthy_at + min(took, 120) + 1 and k != "-")
                r.worst_case = f"conversation {cid}, its events (s from healthy; f=fail, o=ok): {trace}"
            worst = max(worst, took)
        r.recovered_in, r.waiting = (worst if waiting else None), waiting
        if r.recovered_in is not None:  # another kill before the worst one was answered: the figures overlap
            r.overlap = [o.service for o in restarts if r.healthy_at < o.killed_at < r.healthy_at + r.recovered_in]


# ---------------------------------------------------------------------------------------------- the run
def seeded_people(count: int = 300) -> dict[str, list]:
    """Seeded citizens (cardsys/seed.py, deterministic): cards that can be reported lost (one flow each, phone
    last digits unique so the SMS outbox is unambiguous), and cards in production for progress queries."""
    from cardsys.seed import synthetic_people
    people = synthetic_people(count)
    loss, seen = [], Counter(p.phone[-4:] for p in people)
    for p in people:
        if p.status in ("正常", "已领取") and seen[p.phone[-4:]] == 1:
            loss.append((p.id_number, p.name, p.phone[-4:]))
    progress = [(p.id_number, p.name, p.phone[-4:]) for p in people if p.status in ("制卡中", "待领取", "已寄送网点")]
    return {"loss": loss, "progress": progress}


async def traffic(env: dict[str, str], services: dict[str, Service], args: argparse.Namespace, rec: Record,
                  restarts: list[Restart], samples: dict[str, list[tuple[float, float]]],
                  pg: Postgres | None = None) -> None:
    clock = Clock(time.time() + args.minutes * 60)
    base = env["WEBAPP_URL"]
    people = seeded_people()
    random.Random(args.seed).shuffle(people["loss"])
    sms_log = Path(env["CARDSYS_SMS_LOG"])
    ws = f"ws://127.0.0.1:{env['VOICE_HTTP_PORT']}/media-stream"
    tasks = [citizen_loop(n, base, rec, clock, people, sms_log, args.seed) for n in range(args.citizens)]
    tasks += [agent_loop(u, base, rec, clock) for u in ("agent1", "agent2")]
    tasks += [call_loop(n, ws, rec, clock, args.seed) for n in range(args.calls)]
    if args.soak:
        tasks.append(memory_loop(services, samples, clock))
    else:
        tasks.append(fault_loop(services, restarts, clock, random.Random(args.seed), args.calls > 0, args.short, rec,
                                pg, args.kill))
    await asyncio.gather(*tasks)


def table(figures: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in figures)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in figures)


def soak_report(samples: dict[str, list[tuple[float, float]]], started: float, args: argparse.Namespace) -> bool:
    """--soak: print memory and log findings; True when one fails."""
    warm_until = started + max(120.0, args.minutes * 60 / 5)
    print("\n| service | RSS after warm-up (MiB) | RSS at the end (MiB) | growth | samples |\n|---|---|---|---|---|")
    broken = False
    for name, points in samples.items():
        growth = memory_growth(points, warm_until)
        if growth is None:
            print(f"| {name} | — | — | too few samples | {len(points)} |")
            broken = True
            continue
        first, last, rate = growth
        broken |= rate > SOAK_GROWTH
        print(f"| {name} | {first:.0f} | {last:.0f} | {rate:+.1%}{' **> 5 %**' if rate > SOAK_GROWTH else ''} | "
              f"{len(points)} |")
    errors = log_errors(ROOT / RUN_DIR / "log")
    print(f"\nerror lines in the logs: {sum(len(v) for v in errors.values())}")
    for name, hits in errors.items():
        print(f"- {name}: {len(hits)}, e.g. " + " / ".join(hits[:3]))
    return broken or bool(errors)


def report(rec: Record, restarts: list[Restart], env: dict[str, str], args: argparse.Namespace,
           pg: Postgres | None = None) -> int:
    recovery(rec, restarts)
    lines = check_lines(rec, env["WEBAPP_DATABASE_URL"])
    handoffs = check_handoffs(rec, env["WEBAPP_DATABASE_URL"])
    orders = check_workorders(rec, env["WEBAPP_DATABASE_URL"])
    losses = check_losses(rec, env["CARDSYS_DATABASE_URL"])
    calls = check_calls(rec, Path(env["VOICE_DB_PATH"]), restarts, env["WEBAPP_DATABASE_URL"]) if args.calls else {}
    slow = [r for r in restarts if r.recovered_in is not None and r.recovered_in > ANSWER_AGAIN_S]
    for r in slow:
        rec.errors.append(f"SLOW: after the {r.service} restart, {r.waiting} waiting conversation(s), the worst "
                          f"answered again {r.recovered_in:.1f} s after it was healthy"
                          f"{' (meanwhile killed: ' + ', '.join(r.overlap) + ')' if r.overlap else ''}; {r.worst_case}")
    worst = max((r.recovered_in for r in restarts if r.recovered_in is not None), default=None)
    killed = Counter(r.service for r in restarts)
    figures = [
        ("run", f"{args.minutes:g} min, seed {args.seed}, {args.citizens} web citizens, 2 agents, {args.calls} call lines, "
                f"databases: {'private PostgreSQL (call store, Rasa events: SQLite)' if pg else 'SQLite'}"
                f"{', killed: ' + ', '.join(args.kill) if args.kill else ''}"),
        ("processes killed / restarted healthy", f"{len(restarts)} / {sum(1 for r in restarts if r.healthy_at)} "
                                                 f"({', '.join(f'{k} {v}' for k, v in killed.items())})"),
        ("back healthy after kill (s, worst)", f"{max((r.healthy_at - r.killed_at for r in restarts), default=0):.1f}"),
        ("citizen lines sent / 200 / stored", f"{lines['sent']} / {lines['taken']} / {lines['stored']}"),
        ("lines resent (same client_id)", lines["resends"]),
        ("lines never delivered (no 200)", lines["undelivered"]),
        ("lines answered by the bot / 'unavailable' answers", f"{lines['answered']} / {lines['failed answers']}"),
        ("lines stored but never answered (bot mode)", lines["silent"]),
        ("lost lines", lines["lost"]),
        ("duplicated lines", lines["duplicated"]),
        ("转人工: hand-off / hotline reply / neither", f"{rec.handoff_result['hand-off']} / "
                                                     f"{rec.handoff_result['hotline reply']} / {handoffs['neither']}"),
        ("hand-offs stored: web / phone", f"{handoffs['web']} / {handoffs['phone']}"),
        ("duplicated hand-offs", handoffs["duplicated"]),
        ("work orders stored / duplicated", f"{orders['stored']} / {orders['duplicated']}"),
        ("desk: claimed / replied / resolved", f"{rec.desk['claimed']} / {rec.desk['replied']} / {rec.desk['resolved']}"),
        ("loss flows started / reported", f"{rec.loss_flows['started']} / {rec.loss_flows['reported']}"),
        ("loss reports in the card system", losses["reported"]),
        ("duplicated loss reports", losses["duplicated"]),
    ]
    if calls:
        figures += [("calls placed / transferred to a person", f"{calls['placed']} / {calls['transferred']}"),
                    ("calls cut by the gateway kill (with record)", f"{calls['cut']} ({calls['cut with record']})"),
                    ("calls without a call record (lost records)", calls["missing records"]),
                    ("calls transferred without a hand-off on the desk (lost hand-offs)",
                     calls["transferred without hand-off"])]
    if pg:
        back = [r.services_back for r in restarts if r.services_back is not None]
        figures += [("postgres: backends killed after the postmaster's kill", pg.stragglers),
                    ("postgres: every service healthy after the database (s, worst)",
                     f"{max(back):.1f}" if back else "—")]
    figures += [("worst time to answer again after a restart (s)", "—" if worst is None else f"{worst:.1f}")]
    print("\n| figure | value |\n|---|---|\n" + table(figures))
    print("\n| restart | down (s) | waiting conversations | answered again after healthy (s) |\n|---|---|---|---|")
    for r in restarts:
        again = "—" if r.recovered_in is None else f"{r.recovered_in:.1f}"
        print(f"| {r.service} | {r.healthy_at - r.killed_at:.1f} | {r.waiting} | {again} |")
    other = Counter(k for k in rec.loss_flows if k not in ("started", "reported"))
    if other:
        print("loss flows not completed: " + ", ".join(f"{k} {rec.loss_flows[k]}" for k in other))
    violated = [e for e in rec.errors if e.split(":")[0].split(" ")[0] in ("LOST", "DUPLICATED", "SLOW", "UNANSWERED",
                                                                           "DIED", "NOT")]
    if rec.errors:
        print("\nfindings:\n" + "\n".join(f"- {e}" for e in rec.errors[:60]))
    broken = (lines["lost"] or lines["duplicated"] or lines["silent"] or handoffs["duplicated"] or handoffs["neither"] or losses["duplicated"]
              or losses["missing"] or (calls and (calls["missing records"] or calls["transferred without hand-off"]))
              or slow or orders["duplicated"]
              or any(e.startswith(("DIED", "NOT RECOVERED")) for e in rec.errors))
    print(f"\n{'FAILED' if broken else 'OK'}: {len(violated)} invariant finding(s)")
    return 1 if broken else 0


def stopped(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="traffic and faults this long (default 10)")
    ap.add_argument("--short", action="store_true", help="2 minutes (make test)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--citizens", type=int, default=4, help="web citizens at once (default 4)")
    ap.add_argument("--calls", type=int, default=None, help="phone calls at once, 0-10 (default 10, the issue's "
                                                            "target; 3 with --short or --soak; 0 leaves calls out)")
    ap.add_argument("--keep", action="store_true", help=f"keep {RUN_DIR} from the last run (default: start afresh) "
                                                        f"and, with --postgres, the server's folder {PG_DIR}")
    ap.add_argument("--soak", action="store_true", help="no kills: memory of every service and errors in the logs "
                                                        "(use with --minutes 30)")
    ap.add_argument("--postgres", action="store_true", help=f"databases on a private PostgreSQL ({PG_DIR}, port "
                                                            f"{PG_PORT}) that is killed too")
    ap.add_argument("--kill", default="", help="only these services, in turn (comma-separated, of "
                                               f"{', '.join(KILL_ORDER)}, postgres; default all)")
    args = ap.parse_args(argv)
    args.kill = tuple(k.strip() for k in args.kill.split(",") if k.strip())
    if unknown := [k for k in args.kill if k not in (*KILL_ORDER, "postgres")]:
        ap.error(f"--kill: unknown service(s) {', '.join(unknown)}")
    if "postgres" in args.kill and not args.postgres:
        ap.error("--kill postgres needs --postgres")
    if args.short:
        args.minutes = 2.0
    if args.calls is None:
        args.calls = 3 if args.short or args.soak else 10
    args.calls = max(0, min(args.calls, 10))
    if not (ROOT / "build/rasa-models/current.tar.gz").exists() or not (ROOT / "var/kb_cache").exists():
        print("[faults] needs build/rasa-models/current.tar.gz and var/kb_cache: make setup train", file=sys.stderr)
        return 2
    run = ROOT / RUN_DIR
    if (ROOT / PG_DIR / "postmaster.pid").exists():  # a server left by an interrupted run
        Postgres("").stop()
    if not args.keep:
        subprocess.run(["rm", "-rf", str(run)], check=True)
    (run / "log").mkdir(parents=True, exist_ok=True)
    env = stack_env(PG_PORT if args.postgres else None)
    pg = Postgres(env["WEBAPP_URL"]) if args.postgres else None
    signal.signal(signal.SIGTERM, stopped)  # `kill` of this script stops its stack too (the finally below)
    try:
        if pg:
            pg.create()
            pg.start()
            pg.wait_healthy_db()
            pg.create_databases()
            print(f"[faults] private PostgreSQL {pg.bin.parent.name} on 127.0.0.1:{PG_PORT} ({PG_DIR})", flush=True)
        subprocess.run([f"{env['SVC_VENV']}/bin/python", "-m", "cardsys.seed", "--count", "300"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        return run_stack(env, args, pg)
    finally:
        if pg:
            pg.stop()
            if not args.keep:
                subprocess.run(["rm", "-rf", str(pg.folder)], check=True)


def run_stack(env: dict[str, str], args: argparse.Namespace, pg: Postgres | None) -> int:
    """Start the services, run the traffic and the faults, stop them, check and report."""
    services = {name: Service(name, argv, env) for name, argv in service_table(env).items()}
    if not args.calls:
        del services["voice"]
    rec, restarts = Record(), []
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    started = time.time()
    try:
        for svc in services.values():
            svc.start()
        for svc in services.values():
            t0 = time.time()
            svc.wait_healthy(300)
            print(f"[faults] {svc.name} healthy ({time.time() - t0:.0f} s)", flush=True)
        print(f"[faults] traffic for {args.minutes:g} min: {args.citizens} citizens, 2 agents, {args.calls} call lines"
              f"{', databases on the private PostgreSQL' if pg else ''}", flush=True)
        started = time.time()
        asyncio.run(traffic(env, services, args, rec, restarts, samples, pg))
    except RuntimeError as exc:  # a service that does not come back is a finding, reported with the rest
        rec.errors.append(f"NOT RECOVERED: {exc}")
        print(f"[faults] {exc}", file=sys.stderr)
    finally:
        for svc in services.values():
            svc.stop()
    if pg and not pg.running():  # the run ended while the database was down: start it to read the checks
        pg.start()
        pg.wait_healthy_db()
    code = report(rec, restarts, env, args, pg)
    if args.soak and soak_report(samples, started, args):
        code = 1
    return 1 if any(e.startswith("NOT RECOVERED") for e in rec.errors) else code


if __name__ == "__main__":
    sys.exit(main())
