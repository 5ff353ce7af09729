"""Agent accounts and sessions: bcrypt password hashes, HMAC-signed session cookies."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import bcrypt
from sqlalchemy.orm import Session

from webapp.store import Agent

COOKIE = "desk_session"
SESSION_SECONDS = 12 * 3600
# demo accounts exist only in development mode (APP_ENV=development); README lists them
DEMO_AGENTS = [
    ("agent1", "坐席一号", "agent1-demo", "agent", ["社保卡", "综合"]),
    ("agent2", "坐席二号", "agent2-demo", "agent", ["养老", "失业", "工伤"]),
    ("supervisor", "值班长", "supervisor-demo", "supervisor", ["社保卡", "养老", "失业", "工伤", "综合"]),
]
QUEUES = ["社保卡", "养老", "失业", "工伤", "综合"]


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


def sign_session(username: str, secret: str, now: float | None = None) -> str:
    """A cookie value naming the agent, valid for SESSION_SECONDS, tamper-proof with HMAC-SHA256."""
    body = base64.urlsafe_b64encode(json.dumps({"u": username, "exp": int((now or time.time()) + SESSION_SECONDS)}).encode()).decode()
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_session(value: str | None, secret: str, now: float | None = None) -> str | None:
    """The agent's username from a valid, unexpired cookie; None otherwise."""
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    if data.get("exp", 0) < (now or time.time()):
        return None
    return data.get("u")
