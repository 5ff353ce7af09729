"""Agent accounts and sessions: bcrypt password hashes, HMAC-signed session cookies."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time

import bcrypt
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from common.handoff import QUEUES
from webapp.store import Agent, DeskSession, LoginFailure, Store
from webapp.store import now as utcnow

log = logging.getLogger(__name__)

COOKIE = "desk_session"
SESSION_SECONDS = 12 * 3600
# demo accounts exist only in development mode (APP_ENV=development); README lists them
DEMO_AGENTS = [
    ("agent1", "坐席一号", "agent1-demo", "agent", ["社保卡", "综合"]),
    ("agent2", "坐席二号", "agent2-demo", "agent", ["养老", "失业", "工伤"]),
    ("supervisor", "值班长", "supervisor-demo", "supervisor", list(QUEUES)),
]


def hash_password(password: str) -> str:
    """bcrypt hash of a password."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=10)).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    """True when the password matches the stored hash."""
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


def ensure_demo_agents(s: Session) -> None:
    """Create the demo accounts if they do not exist (development mode only)."""
    for username, name, password, role, queues in DEMO_AGENTS:
        if s.get(Agent, username) is None:
            s.add(Agent(username=username, display_name=name, password_hash=hash_password(password), role=role, queues=queues))


def disable_demo_agents(s: Session) -> list[str]:
    """Production: switch off every account that still has its published demo password; returns their names.

    A database first created in development keeps the demo accounts; their passwords are in the README.
    """
    disabled = []
    for username, _, password, _, _ in DEMO_AGENTS:
        agent = s.get(Agent, username)
        if agent is not None and agent.active and check_password(password, agent.password_hash):
            agent.active = False
            disabled.append(username)
    return disabled


def prepare_demo_agents(store: Store, dev_mode: bool) -> None:
    """At start: the demo accounts in development; in production, any still holding its published password is disabled."""
    if dev_mode:
        store.call(ensure_demo_agents)
        return
    for name in store.call(disable_demo_agents):
        log.warning("desk: demo account %s still had its published password and was disabled "
                    "(production; create real accounts with `python -m webapp.accounts`)", name)


# checked when the user name is unknown, so that a failed login takes as long either way
_DUMMY_HASH = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=10)).decode("ascii")


def check_login(agent: Agent | None, password: str) -> bool:
    """True for an active agent with this password; as slow for an unknown or inactive one (no user probing)."""
    ok = check_password(password, agent.password_hash if agent is not None else _DUMMY_HASH)
    return ok and agent is not None and agent.active


class LoginThrottle:
    """Failed desk logins slow down further tries, per user name and per client address.

    After `free` failures within `window` seconds, each further try must wait: 1 minute, doubling with
    every failure, at most `cap` seconds. A success clears the user name's count. The failures are rows
    of the web app's database (`LoginFailure`), so replicas behind a load balancer share one count: an
    attacker gains nothing by spreading guesses over them.
    """

    def __init__(self, store: Store, free: int = 5, window: float = 900.0, cap: float = 900.0,
                 per_address: int = 30) -> None:
        self.store = store
        self.free, self.window, self.cap, self.per_address = free, window, cap, per_address

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        """(kind, sha256) of the typed user name and of the client address: nothing typed is stored."""
        return [("user", hashlib.sha256(("u:" + username.strip().lower()).encode("utf-8")).hexdigest()),
                ("address", hashlib.sha256(("a:" + address).encode("utf-8")).hexdigest())]

    async def wait(self, username: str, address: str, now: dt.datetime | None = None) -> int:
        """Seconds to wait before this login may be tried (0: go ahead)."""
        at = now or utcnow()
        since = at - dt.timedelta(seconds=self.window)
        keys = self._keys(username, address)

        def recent(s: Session) -> list[list[dt.datetime]]:
            return [list(s.scalars(select(LoginFailure.at).where(LoginFailure.key_hash == key, LoginFailure.at > since)
                                   .order_by(LoginFailure.at))) for _, key in keys]

        longest = 0.0
        for fails, free in zip(await self.store.run(recent), (self.free, self.per_address), strict=True):
            if len(fails) >= free:
                delay = min(self.cap, 60.0 * 2 ** (len(fails) - free))
                longest = max(longest, (fails[-1] - at).total_seconds() + delay)
        return int(longest + 0.999) if longest > 0 else 0

    async def failed(self, username: str, address: str, now: dt.datetime | None = None) -> None:
        """Count a failed login (and drop failures older than the window)."""
        at = now or utcnow()

        def record(s: Session) -> None:
            s.add_all([LoginFailure(kind=kind, key_hash=key, at=at) for kind, key in self._keys(username, address)])
            s.execute(delete(LoginFailure).where(LoginFailure.at < at - dt.timedelta(seconds=self.window)))

        await self.store.run(record)

    async def succeeded(self, username: str) -> None:
        """Forget the user name's failures."""
        kind, key = self._keys(username, "")[0]
        await self.store.run(lambda s: s.execute(delete(LoginFailure).where(LoginFailure.kind == kind,
                                                                            LoginFailure.key_hash == key)))


def sign_session(username: str, secret: str, now: float | None = None, sid: str = "") -> str:
    """A cookie value naming the agent and its server-side session, valid for SESSION_SECONDS, signed (HMAC-SHA256)."""
    claims = {"u": username, "s": sid, "exp": int((now or time.time()) + SESSION_SECONDS)}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_session_claims(value: str | None, secret: str, now: float | None = None) -> dict | None:
    """The claims of a valid, unexpired cookie ({"u": user name, "s": session id, "exp"}); None otherwise."""
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or data.get("exp", 0) < (now or time.time()):
        return None
    return data


def new_session_id() -> str:
    """A random desk session id (its sha256 is what the store keeps)."""
    return secrets.token_urlsafe(24)


def session_hash(sid: str) -> str:
    """The stored form of a desk session id."""
    return hashlib.sha256(sid.encode()).hexdigest()


def open_desk_session(s: Session, username: str, address: str = "") -> str:
    """Record a new desk session for the agent; returns its id (for the cookie)."""
    sid = new_session_id()
    s.add(DeskSession(id_hash=session_hash(sid), username=username, address=address[:64],
                      expires_at=utcnow() + dt.timedelta(seconds=SESSION_SECONDS)))
    return sid


def desk_session_valid(s: Session, username: str, sid: str) -> bool:
    """True while the session exists for this agent, has not ended and has not expired."""
    if not sid:
        return False
    row = s.get(DeskSession, session_hash(sid))
    return row is not None and row.username == username and row.ended_at is None and row.expires_at > utcnow()


def end_desk_sessions(s: Session, username: str, sid: str | None = None) -> int:
    """End one session (logout) or every open session of the agent (password change, disabled, lost device)."""
    q = select(DeskSession).where(DeskSession.username == username, DeskSession.ended_at.is_(None))
    if sid is not None:
        q = q.where(DeskSession.id_hash == session_hash(sid))
    rows = s.scalars(q).all()
    for row in rows:
        row.ended_at = utcnow()
    # forget sessions that ended or expired more than a day ago
    cutoff = utcnow() - dt.timedelta(days=1)
    s.execute(delete(DeskSession).where(DeskSession.username == username,
                                        or_(DeskSession.ended_at < cutoff, DeskSession.expires_at < cutoff)))
    return len(rows)


# --- citizens' chat conversations ---------------------------------------------------------------
# A conversation id names a transcript, a Rasa tracker and any verified card session: whoever holds
# it reads and writes that conversation. So the server chooses it (random, 192 bits) and hands it to
# the citizen's browser only in an HttpOnly cookie signed with SESSION_SECRET; the chat APIs take the
# conversation from that cookie, never from the request.
CHAT_COOKIE = "chat_session"
CHAT_COOKIE_SECONDS = 30 * 24 * 3600


def new_chat_id() -> str:
    """A fresh, unguessable conversation id (url-safe, 32 characters)."""
    return "c" + secrets.token_urlsafe(24)[:31]


def sign_chat(cid: str, secret: str) -> str:
    """The cookie value for a conversation id: the id and its HMAC-SHA256."""
    mac = hmac.new(secret.encode(), f"chat|{cid}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"{cid}.{mac}"


def read_chat(value: str | None, secret: str) -> str | None:
    """The conversation id of a valid cookie; None when missing or forged."""
    if not value or "." not in value or len(value) > 200:
        return None
    cid, mac = value.rsplit(".", 1)
    expected = hmac.new(secret.encode(), f"chat|{cid}".encode(), hashlib.sha256).hexdigest()[:40]
    return cid if hmac.compare_digest(mac, expected) else None
