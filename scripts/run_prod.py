"""The production profile on one host: `make run-prod` (docs/deploy.md, "The production profile on one host").

The topology of deploy/k8s on this machine's real services, with APP_ENV=production:

    HAProxy (TLS on the web front, health checks, L7 retries)
      web   https://127.0.0.1:<base+443>  → web app ×2   (chat, desk, WebSockets; /media-stream → voice gateway)
      rasa  http://127.0.0.1:<base+5>     → Rasa ×2      (Redis lock store, PostgreSQL tracker store, RabbitMQ broker)
      actions http://127.0.0.1:<base+55>  → action server ×2
    voice gateway ×1 (AudioSocket on <base+92> for the PBX; its HTTP behind the web front)
    analytics ingester every ANALYTICS_EVERY seconds (drains the RabbitMQ queue into the analytics store)

Every service reaches the others through the proxy, so a dead replica is taken out for all of them.
With PROD_HOSTS=netns (root only) each Rasa server, action server and web app runs in a network namespace of its
own, a host of its own on a bridge (10.77.<n>.0/24, the host at .1): the services reach each other and
PostgreSQL, Redis and RabbitMQ only over that network, through HAProxy on the bridge address (TCP forwarders for
the stores), as separate machines would. Databases
(PostgreSQL: <prefix>_rasa, _hotline, _cards, _analytics) are created when missing; secrets are generated once
into <dir>/secrets.env (mode 600) and reused; a self-signed certificate for the web front is made once.

    python scripts/run_prod.py                 foreground, Ctrl-C stops everything
    python scripts/run_prod.py --detach        start, wait until every service is healthy, return (<dir>/pids: name pid)
    python scripts/run_prod.py --stop          stop a detached profile

Settings (environment; defaults for this machine kind's local services):
    PROD_DIR=var/prod  PROD_PORT_BASE=20000  PROD_DB_PREFIX=hotline_prod
    PROD_PG_ADMIN_URL=postgresql://127.0.0.1:5432/postgres   (creates the databases; the services use the same server)
    PROD_REDIS_HOST=127.0.0.1  PROD_REDIS_PASSWORD=  PROD_REDIS_HUB_DB=2   (the lock store uses db 1)
    PROD_RABBITMQ_HOST=127.0.0.1  PROD_RABBITMQ_USER=guest  PROD_RABBITMQ_PASSWORD=guest  PROD_EVENTS_QUEUE=hotline_prod_events
    PROD_HOSTS=loopback (or netns)  PROD_ANALYTICS_EVERY=300   CARDSYS_SMS_GATEWAY (production: http with CARDSYS_SMS_URL, or off; default off)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAMES = ("RASA_TOKEN", "CHANNEL_TOKEN", "ACTION_TOKEN", "SERVICE_TOKEN", "MEDIA_STREAM_TOKEN", "SESSION_SECRET",
                "VOICE_CALLER_KEY_SECRET")
RASA_MODEL = ROOT / "build" / "rasa-models" / "current.tar.gz"
# PROD_HOSTS=netns: each replica's host number on the profile's bridge
HOST_NUMBERS = {"rasa-1": 11, "rasa-2": 12, "actions-1": 21, "actions-2": 22, "webapp-1": 31, "webapp-2": 32}


@dataclass(frozen=True)
class Ports:
    """Every port of the profile from one base (PROD_PORT_BASE), all on 127.0.0.1."""

    base: int

    @property
    def web(self) -> int:  # HAProxy, TLS: citizens' chat, the desk, /media-stream
        return self.base + 443

    @property
    def rasa(self) -> int:  # HAProxy → the Rasa replicas
        return self.base + 5

    @property
    def actions(self) -> int:  # HAProxy → the action servers
        return self.base + 55

    @property
    def audiosocket(self) -> int:  # the voice gateway's AudioSocket, for the PBX
        return self.base + 92

    @property
    def voice_http(self) -> int:  # the voice gateway's HTTP (behind the web front)
        return self.base + 81

    @property
    def webapp_internal(self) -> int:  # HAProxy → the web apps, plain HTTP for our own services (hand-offs, events)
        return self.base + 80

    def replicas(self, kind: str) -> list[int]:
        first = {"rasa": 6, "actions": 56, "webapp": 82}[kind]
        return [self.base + first, self.base + first + 1]


@dataclass
class Config:
    dir: Path
    ports: Ports
    prefix: str
    pg_admin: str
    redis_host: str
    redis_password: str
    hub_db: int
    rabbit_host: str
    rabbit_user: str
    rabbit_password: str
    queue: str
    analytics_every: int
    hosts: str = "loopback"

    @classmethod
    def from_env(cls) -> Config:
        e = os.environ
        d = Path(e.get("PROD_DIR", "var/prod"))
        return cls(dir=d if d.is_absolute() else ROOT / d, ports=Ports(int(e.get("PROD_PORT_BASE", "20000"))),
                   prefix=e.get("PROD_DB_PREFIX", "hotline_prod"),
                   pg_admin=e.get("PROD_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/postgres"),
                   redis_host=e.get("PROD_REDIS_HOST", "127.0.0.1"), redis_password=e.get("PROD_REDIS_PASSWORD", ""),
                   hub_db=int(e.get("PROD_REDIS_HUB_DB", "2")), rabbit_host=e.get("PROD_RABBITMQ_HOST", "127.0.0.1"),
                   rabbit_user=e.get("PROD_RABBITMQ_USER", "guest"), rabbit_password=e.get("PROD_RABBITMQ_PASSWORD", "guest"),
                   queue=e.get("PROD_EVENTS_QUEUE", "hotline_prod_events"),
                   analytics_every=int(e.get("PROD_ANALYTICS_EVERY", "300")), hosts=e.get("PROD_HOSTS", "loopback"))

    def database(self, name: str, driver: str) -> str:
        """The URL of the profile's database `name` as the services reach it, with the given driver."""
        parts = urlsplit(self.pg_admin)
        netloc = parts.netloc
        if self.netns:  # through HAProxy's forwarder on the bridge
            netloc = (netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else "") + f"{self.gateway}:5432"
        return urlunsplit((driver, netloc, f"/{self.prefix}_{name}", parts.query, ""))

    @property
    def netns(self) -> bool:
        return self.hosts == "netns"

    @property
    def net(self) -> int:
        """The profile's subnet number (10.77.<net>.0/24), from its port base so that two profiles differ."""
        return (self.ports.base // 1000) % 250

    @property
    def gateway(self) -> str:
        """Where the services find HAProxy (and through it each other and the stores)."""
        return f"10.77.{self.net}.1" if self.netns else "127.0.0.1"

    def address(self, service: str) -> str:
        """The service's own address: its namespace's on the bridge, or loopback."""
        return f"10.77.{self.net}.{HOST_NUMBERS[service]}" if self.netns else "127.0.0.1"

    def namespace(self, service: str) -> str:
        return f"hl{self.net}-{service}"

    @property
    def store_hosts(self) -> tuple[str, str, str]:
        """(Redis, RabbitMQ, PostgreSQL host) as the services reach them."""
        if self.netns:
            return self.gateway, self.gateway, self.gateway
        return self.redis_host, self.rabbit_host, urlsplit(self.pg_admin).hostname or "127.0.0.1"

    @property
    def web_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.web}"

    @property
    def certificate(self) -> Path:  # certificate + key, for HAProxy
        return self.dir / "tls" / "web.pem"

    @property
    def ca(self) -> Path:  # the certificate alone: what clients trust
        return self.dir / "tls" / "web.crt"


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    health: str  # URL answered 200 when ready
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, log_dir: Path) -> None:
        log = open(log_dir / f"{self.name}.log", "a", encoding="utf-8")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def wait_healthy(self, log_dir: Path, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {log_dir / (self.name + '.log')}")
            if self.name == "haproxy":  # its stats socket answers (the servers behind it come later)
                with contextlib.suppress(OSError, IndexError):
                    proxy_status(Path(self.health))
                    return
            elif http_ok(self.health) and (not self.name.startswith("actions") or self.knowledge_ready(deadline)):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s; see {log_dir / (self.name + '.log')}")


    def knowledge_ready(self, deadline: float) -> bool:
        """An action server is ready when one real knowledge action call returns (the index is loaded)."""
        body = json.dumps({"next_action": "action_answer_from_kb", "sender_id": "warmup", "domain": {},
                           "tracker": {"sender_id": "warmup", "slots": {}, "events": [], "latest_action_name": "action_listen",
                                       "latest_message": {"text": "社保卡", "intent": {"name": "ask_question"}, "entities": []}}})
        req = urllib.request.Request(self.health.replace("/health", "/webhook"), data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Action-Token": self.env["ACTION_TOKEN"]})
        try:
            with urllib.request.urlopen(req, timeout=max(1.0, deadline - time.time())) as r:  # noqa: S310 - loopback
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False


def http_ok(url: str, cafile: Path | None = None) -> bool:
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(url, timeout=3, context=ctx) as r:  # noqa: S310 - our own loopback URLs
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def load_secrets(cfg: Config) -> dict[str, str]:
    """The profile's secrets: from the environment when set there, else generated once into <dir>/secrets.env."""
    path = cfg.dir / "secrets.env"
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                stored[k] = v
    missing = [n for n in SECRET_NAMES if n not in stored]
    if missing:
        stored.update({n: secrets.token_urlsafe(24) for n in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# generated by scripts/run_prod.py; keep private\n")
            f.writelines(f"{k}={v}\n" for k, v in stored.items())
    out = {}
    for n in SECRET_NAMES:
        given = os.environ.get(n, "")
        out[n] = given if given and not given.startswith("dev-") else stored[n]
    return out


def make_certificate(cfg: Config) -> None:
    """A self-signed certificate for the web front (once): the desk's cookies are Secure in production."""
    if cfg.certificate.exists():
        return
    cfg.certificate.parent.mkdir(parents=True, exist_ok=True)
    key, crt = cfg.certificate.with_suffix(".key"), cfg.ca
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    fd = os.open(cfg.certificate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(crt.read_bytes() + key.read_bytes())
    key.unlink()


def create_databases(cfg: Config) -> None:
    import psycopg  # the services' environment has it

    with psycopg.connect(cfg.pg_admin, autocommit=True, connect_timeout=5) as admin:
        have = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
        for name in ("rasa", "hotline", "cards", "analytics"):
            if f"{cfg.prefix}_{name}" not in have:
                admin.execute(f'CREATE DATABASE "{cfg.prefix}_{name}"')


def haproxy_config(cfg: Config) -> str:
    p = cfg.ports
    servers = {kind: "\n".join(f"    server {kind}-{i + 1} {cfg.address(f'{kind}-{i + 1}')}:{port} check"
                                for i, port in enumerate(p.replicas(kind)))
               for kind in ("rasa", "actions", "webapp")}
    gw = cfg.gateway
    return f"""# generated by scripts/run_prod.py from its settings; rewritten at every start
global
    maxconn 4096
    stats socket {cfg.dir / 'haproxy.sock'} mode 600 level admin
    pidfile {cfg.dir / 'haproxy.pid'}

defaults
    mode http
    log stdout format raw local0 info
    option httplog
    option dontlognull
    timeout connect 3s
    timeout client 120s
    timeout server 120s
    timeout tunnel 3600s
    timeout http-keep-alive 10s
    # a dead replica is taken out by the checks (1 s apart, 2 failures); a request whose server refused the
    # connection or closed it without an answer is sent once more, to the other replica
    default-server inter 1s fall 2 rise 2
    # (the whole request is read before a server is chosen, so that it can be sent again)
    option http-buffer-request
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response

frontend web
    bind 127.0.0.1:{p.web} ssl crt {cfg.certificate}
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    use_backend voice if {{ path_beg /media-stream }}
    default_backend webapp

backend webapp
    balance roundrobin
    option httpchk GET /health
{servers['webapp']}

backend voice
    option httpchk GET /health
    server voice-1 127.0.0.1:{p.voice_http} check

frontend webapp_internal
    bind {gw}:{p.webapp_internal}
    option forwardfor
    default_backend webapp

frontend rasa
    bind {gw}:{p.rasa}
    default_backend rasa

backend rasa
    balance roundrobin
    option httpchk GET /
{servers['rasa']}

frontend actions
    bind {gw}:{p.actions}
    default_backend actions

backend actions
    balance roundrobin
    option httpchk GET /health
{servers['actions']}
""" + (store_forwarders(cfg) if cfg.netns else "")


def store_forwarders(cfg: Config) -> str:
    """PROD_HOSTS=netns: PostgreSQL, Redis and RabbitMQ on the bridge address, forwarded to where they run."""
    pg = urlsplit(cfg.pg_admin)
    out = """
defaults
    mode tcp
    timeout connect 3s
    timeout client 1h
    timeout server 1h
"""
    for name, port, target in (("postgresql", 5432, f"{pg.hostname or '127.0.0.1'}:{pg.port or 5432}"),
                               ("redis", 6379, f"{cfg.redis_host}:6379"), ("rabbitmq", 5672, f"{cfg.rabbit_host}:5672")):
        out += f"""
listen {name}
    bind {cfg.gateway}:{port}
    server {name} {target}
"""
    return out


def network_up(cfg: Config) -> None:
    """PROD_HOSTS=netns: the bridge and one namespace per replica (root only); rebuilt from scratch."""
    network_down(cfg)
    bridge, n = f"hlbr{cfg.net}", cfg.net
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    run("ip", "link", "add", bridge, "type", "bridge")
    run("ip", "addr", "add", f"{cfg.gateway}/24", "dev", bridge)
    run("ip", "link", "set", bridge, "up")
    for service in HOST_NUMBERS:
        ns, veth = cfg.namespace(service), f"hl{n}{service[0]}{service[-1]}"
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
        run("ip", "link", "set", veth + "p", "netns", ns)
        run("ip", "link", "set", veth, "master", bridge, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{cfg.address(service)}/24", "dev", veth + "p")
        run("ip", "netns", "exec", ns, "ip", "link", "set", veth + "p", "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")


def network_down(cfg: Config) -> None:
    for service in HOST_NUMBERS:
        subprocess.run(["ip", "netns", "del", cfg.namespace(service)], capture_output=True)
        # the cable goes at once, even while a dying process still holds its namespace
        subprocess.run(["ip", "link", "del", host_link(cfg, service)], capture_output=True)
    subprocess.run(["ip", "link", "del", f"hlbr{cfg.net}"], capture_output=True)


def host_link(cfg: Config, service: str) -> str:
    """The host side of a replica's network cable (PROD_HOSTS=netns): `ip link set … down` cuts it off."""
    return f"hl{cfg.net}{service[0]}{service[-1]}"


def topology(cfg: Config, tokens: dict[str, str]) -> list[list[Service]]:
    """The services in start order; the services of one inner list start together."""
    p, py = cfg.ports, os.environ.get("SVC_VENV", str(ROOT / ".venv" / "svc")) + "/bin/python"
    rasa_bin = os.environ.get("RASA_VENV", str(ROOT / ".venv" / "rasa")) + "/bin/rasa"
    common = dict(os.environ, **tokens)
    gw = cfg.gateway
    redis_host, rabbit_host, _ = cfg.store_hosts
    common.update(
        APP_ENV="production", PYTHONPATH=str(ROOT), RASA_TELEMETRY_ENABLED="false",
        RASA_URL=f"http://{gw}:{p.rasa}", ACTION_SERVER_URL=f"http://{gw}:{p.actions}/webhook",
        WEBAPP_URL=f"http://{gw}:{p.webapp_internal}", TRACKER_STORE_URL=cfg.database("rasa", "postgresql"),
        WEBAPP_DATABASE_URL=cfg.database("hotline", "postgresql+psycopg"),
        KB_DATABASE_URL=cfg.database("hotline", "postgresql+psycopg"),
        CARDSYS_DATABASE_URL=cfg.database("cards", "postgresql+psycopg"),
        ANALYTICS_DATABASE_URL=cfg.database("analytics", "postgresql+psycopg"),
        RASA_EVENTS_URL=f"amqp://{quote(cfg.rabbit_user)}:{quote(cfg.rabbit_password)}@{rabbit_host}:5672/",
        RASA_EVENTS_QUEUE=cfg.queue, REDIS_HOST=redis_host, REDIS_PASSWORD=cfg.redis_password,
        RABBITMQ_HOST=rabbit_host, RABBITMQ_USER=cfg.rabbit_user, RABBITMQ_PASSWORD=cfg.rabbit_password,
        HUB_REDIS_URL=f"redis://{':' + quote(cfg.redis_password) + '@' if cfg.redis_password else ''}{redis_host}:6379/{cfg.hub_db}",
        CARDSYS_SMS_GATEWAY=os.environ.get("CARDSYS_SMS_GATEWAY", "off"),
        VOICE_HTTP_PORT=str(p.voice_http), AUDIOSOCKET_PORT=str(p.audiosocket),
        VOICE_DB_PATH=str(cfg.dir / "voice_calls.sqlite3"),
    )
    if common["CARDSYS_SMS_GATEWAY"] == "log":
        common["CARDSYS_SMS_GATEWAY"] = "off"  # production refuses the file outbox

    def env(**extra: str) -> dict[str, str]:
        return dict(common, **extra)

    def host(service: str, argv: list[str]) -> list[str]:
        """The command as run on the service's own host (its network namespace with PROD_HOSTS=netns)."""
        return ["ip", "netns", "exec", cfg.namespace(service), *argv] if cfg.netns else argv

    webapps = [Service(f"webapp-{i + 1}", host(f"webapp-{i + 1}", [py, "-m", "webapp"]),
                       env(WEBAPP_PORT=str(port), WEBAPP_HOST=cfg.address(f"webapp-{i + 1}"), SANIC_PROXIES_COUNT="1",
                           HOTLINE_OUTBOX_DIR=str(cfg.dir / f"outbox-webapp-{i + 1}")),
                       f"http://{cfg.address(f'webapp-{i + 1}')}:{port}/health") for i, port in enumerate(p.replicas("webapp"))]
    actions = [Service(f"actions-{i + 1}", host(f"actions-{i + 1}", [py, "-m", "actions.server", "-p", str(port)]),
                       env(KB_PRELOAD="1", ACTION_HOST=cfg.address(f"actions-{i + 1}")),
                       f"http://{cfg.address(f'actions-{i + 1}')}:{port}/health") for i, port in enumerate(p.replicas("actions"))]
    rasas = [Service(f"rasa-{i + 1}", host(f"rasa-{i + 1}", [rasa_bin, "run", "--enable-api", "--auth-token", tokens["RASA_TOKEN"],
                                                            "-i", cfg.address(f"rasa-{i + 1}"),
                                       "-p", str(port), "--model", str(RASA_MODEL), "--credentials", "credentials.yml",
                                       "--endpoints", "deploy/k8s/endpoints.production.yml"]),
                     # a replica killed while it held a conversation's lock: the next replica waits this long at most
                     env(TICKET_LOCK_LIFETIME=os.environ.get("TICKET_LOCK_LIFETIME", "20")),
                     f"http://{cfg.address(f'rasa-{i + 1}')}:{port}/") for i, port in enumerate(p.replicas("rasa"))]
    voice = Service("voice", [py, "-m", "voice"], env(HOTLINE_OUTBOX_DIR=str(cfg.dir / "outbox-voice")),
                    f"http://127.0.0.1:{p.voice_http}/health")
    haproxy = Service("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(cfg.dir / "haproxy.cfg")],
                      env(), str(cfg.dir / "haproxy.sock"))
    # HAProxy first (the services find each other, and with PROD_HOSTS=netns the stores, through it); then one
    # replica of each kind before the second (the first creates the tables)
    return [[haproxy], [webapps[0]], [webapps[1], actions[0]], [actions[1]], [rasas[0]], [rasas[1], voice]]


def haproxy_command(sock: Path, command: str) -> str:
    """One command on HAProxy's admin socket (`show stat`, `disable server rasa/rasa-2` …) and its answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return raw.decode()


def proxy_stats(sock: Path) -> dict[tuple[str, str], dict[str, str]]:
    """HAProxy's `show stat` as {(proxy, server): row} (rows of FRONTEND and BACKEND included)."""
    lines = haproxy_command(sock, "show stat").lstrip("# ").splitlines()
    head = lines[0].split(",")
    rows = [dict(zip(head, line.split(","), strict=False)) for line in lines[1:] if line]
    return {(r["pxname"], r["svname"]): r for r in rows}


def proxy_status(sock: Path) -> dict[str, str]:
    """{server: status} of every server behind HAProxy."""
    return {sv: r["status"] for (_, sv), r in proxy_stats(sock).items() if sv not in ("FRONTEND", "BACKEND")}


def wait_proxy_up(sock: Path, timeout: float = 30) -> None:
    deadline, status = time.time() + timeout, {}
    while time.time() < deadline:
        status = proxy_status(sock)
        if status and all(v in ("UP", "no check") for v in status.values()):  # the stores' forwarders: no check
            return
        time.sleep(0.5)
    raise RuntimeError(f"HAProxy does not see every replica up after {timeout:.0f} s: {status}")


def stop_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + 20
    for pid in pids:
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def analytics_loop(cfg: Config, env: dict[str, str]) -> list[str]:
    py = os.environ.get("SVC_VENV", str(ROOT / ".venv" / "svc")) + "/bin/python"
    return ["bash", "-c", f"while true; do '{py}' -m analytics.ingest --source rasa,webapp,voice; sleep {cfg.analytics_every}; done"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detach", action="store_true", help="start, wait until healthy, return")
    ap.add_argument("--stop", action="store_true", help="stop a detached profile (its pids file)")
    args = ap.parse_args(argv)
    cfg = Config.from_env()
    pid_file = cfg.dir / "pids"
    if args.stop:
        if pid_file.exists():
            stop_pids([int(line.split()[1]) for line in pid_file.read_text().splitlines() if line.strip()])
            pid_file.unlink()
        if (cfg.dir / "network").exists():  # it ran on namespaces: take them down (its port base numbers them)
            cfg.hosts, cfg.ports = "netns", Ports(int((cfg.dir / "network").read_text().split()[0]))
            network_down(cfg)
            (cfg.dir / "network").unlink()
        print("[prod] stopped")
        return 0
    if cfg.netns and (os.geteuid() != 0 or not shutil.which("ip")):
        print("[prod] PROD_HOSTS=netns needs root and iproute2 (network namespaces)", file=sys.stderr)
        return 1
    if not RASA_MODEL.exists():
        print("[prod] no trained Rasa model: run `make train` first", file=sys.stderr)
        return 1
    if not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists():
        print("[prod] HAProxy is not installed: run `make system-deps`", file=sys.stderr)
        return 1
    p = cfg.ports
    busy = [port for port in (p.web, p.webapp_internal, p.rasa, p.actions, p.audiosocket, p.voice_http, *p.replicas("rasa"),
                              *p.replicas("actions"), *p.replicas("webapp")) if not port_free(port)]
    if busy:
        print(f"[prod] ports in use: {busy} (another profile running? set PROD_PORT_BASE)", file=sys.stderr)
        return 1
    log_dir = cfg.dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    tokens = load_secrets(cfg)
    make_certificate(cfg)
    try:
        create_databases(cfg)
    except Exception as e:  # noqa: BLE001 - one sentence for the operator
        print(f"[prod] PostgreSQL at {cfg.pg_admin} refused to create the databases: {e}", file=sys.stderr)
        return 1
    if cfg.netns:
        try:
            network_up(cfg)
        except subprocess.CalledProcessError as e:
            print(f"[prod] could not build the namespaces: {' '.join(e.cmd)}: {e.stderr.decode().strip()}", file=sys.stderr)
            network_down(cfg)
            return 1
        (cfg.dir / "network").write_text(f"{cfg.ports.base}\n")
    (cfg.dir / "haproxy.cfg").write_text(haproxy_config(cfg), encoding="utf-8")
    stages = topology(cfg, tokens)
    started: list[Service] = []

    def stop_all(*_: object) -> None:
        stop_pids([s.proc.pid for s in reversed(started) if s.proc is not None])
        if cfg.netns:
            network_down(cfg)
            (cfg.dir / "network").unlink(missing_ok=True)

    t0 = time.time()
    try:
        for stage in stages:
            for s in stage:
                s.start(log_dir)
                started.append(s)
                print(f"[prod] started {s.name} (pid {s.proc.pid})", flush=True)
            for s in stage:
                s.wait_healthy(log_dir, 300 if s.name.startswith(("rasa", "actions")) else 90)
                print(f"[prod] {s.name} is up ({time.time() - t0:.0f} s)", flush=True)
        wait_proxy_up(cfg.dir / "haproxy.sock")
    except (RuntimeError, OSError) as e:
        print(f"[prod] {e}", file=sys.stderr)
        stop_all()
        return 1
    ingester = Service("analytics", analytics_loop(cfg, started[0].env), started[0].env, "")
    ingester.start(log_dir)
    started.append(ingester)
    pid_file.write_text("".join(f"{s.name} {s.proc.pid}\n" for s in started))  # the tests kill replicas by name
    print(f"""
  Production profile (APP_ENV=production){" on network namespaces " + cfg.gateway + "/24" if cfg.netns else " on 127.0.0.1"}, up in {time.time() - t0:.0f} s:
  Citizen chat:   {cfg.web_url}/          (TLS, self-signed: {cfg.ca})
  Agent desk:     {cfg.web_url}/desk      (accounts: APP_ENV=production {os.environ.get('SVC_VENV', '.venv/svc')}/bin/python -m webapp.accounts add …,
                                          with WEBAPP_DATABASE_URL={cfg.database('hotline', 'postgresql+psycopg')})
  Rasa (2):       http://{cfg.gateway}:{p.rasa}   Action servers (2): http://{cfg.gateway}:{p.actions}
  Phone:          AudioSocket 127.0.0.1:{p.audiosocket}, media stream {cfg.web_url.replace('https', 'wss')}/media-stream
  HAProxy:        socket {cfg.dir / 'haproxy.sock'} (show stat), logs {log_dir}/, secrets {cfg.dir / 'secrets.env'}
""", flush=True)
    if args.detach:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while all(s.proc.poll() is None for s in started if s.name in ("haproxy",)):
            time.sleep(1)
        print("[prod] HAProxy stopped; stopping everything", file=sys.stderr)
    except KeyboardInterrupt:
        print("\n[prod] stopping…")
    stop_all()
    pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
