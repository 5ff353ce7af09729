"""Desk accounts from the command line (the only way to create real ones; demo accounts are for development).

    python -m webapp.accounts list
    python -m webapp.accounts add USER --name 坐席三号 --role agent --queues 社保卡,综合   (password asked twice)
    python -m webapp.accounts passwd USER
    python -m webapp.accounts disable USER
    python -m webapp.accounts enable USER
    python -m webapp.accounts logout USER      (ends every open desk session of the account, e.g. a lost laptop)

A password change and disabling an account also end the account's open desk sessions at once.

The password is read from the terminal, or from standard input with --password-stdin (for scripts);
it is never taken as an argument (it would stay in the shell history and the process list).
Uses WEBAPP_DATABASE_URL like the web app.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from common.handoff import QUEUES
from webapp.auth import end_desk_sessions, hash_password
from webapp.settings import ROOT
from webapp.store import Agent, AuditEvent, Store

MIN_PASSWORD = 10
ROLES = ("agent", "supervisor")


class AccountError(ValueError):
    """What to fix, in words."""


def check_password_strength(username: str, password: str) -> None:
    """Raise AccountError unless the password is long enough and not the user name."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if username.lower() in password.lower() or password.lower().endswith("-demo"):
        raise AccountError("the password must not contain the user name or look like a demo password")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def run(argv: list[str], store: Store | None = None) -> str:
    """Do one command; returns what to print. Raises AccountError."""
    ap = argparse.ArgumentParser(prog="python -m webapp.accounts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    add = sub.add_parser("add")
    add.add_argument("username")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--queues", default="综合", help=f"comma-separated, of {','.join(QUEUES)}")
    add.add_argument("--password-stdin", action="store_true")
    pw = sub.add_parser("passwd")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    for name in ("disable", "enable", "logout"):
        sub.add_parser(name).add_argument("username")
    args = ap.parse_args(argv)
    if store is None:
        import os

        store = Store(os.environ.get("WEBAPP_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'webapp.db'}"))

    if args.cmd == "list":
        rows = store.call(lambda s: [(a.username, a.display_name, a.role, ",".join(a.queues or []), a.active)
                                     for a in s.query(Agent).order_by(Agent.username)])
        return "\n".join(f"{u}\t{n}\t{r}\t{q}\t{'active' if on else 'disabled'}" for u, n, r, q, on in rows)

    username = args.username.strip()
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AccountError("user names are letters, digits, '-', '_' or '.' (at most 64)")

    if args.cmd == "add":
        queues = [q.strip() for q in args.queues.split(",") if q.strip()]
        unknown = [q for q in queues if q not in QUEUES]
        if unknown or not queues:
            raise AccountError(f"unknown queues {unknown}; choose from {','.join(QUEUES)}")
        password = _password(args)
        check_password_strength(username, password)

        def add_agent(s) -> None:
            if s.get(Agent, username) is not None:
                raise AccountError(f"{username} exists already (use passwd, enable or disable)")
            s.add(Agent(username=username, display_name=args.name[:64], password_hash=hash_password(password),
                        role=args.role, queues=queues))
            s.add(AuditEvent(agent="accounts-cli", action="account_added", target=username, detail=args.role))
        store.call(add_agent)
        return f"added {username} ({args.role}; queues {','.join(queues)})"

    def change(fn, action: str) -> str:
        def do(s) -> None:
            agent = s.get(Agent, username)
            if agent is None:
                raise AccountError(f"no account {username}")
            fn(agent)
            ended = end_desk_sessions(s, username) if action != "account_enabled" else 0
            s.add(AuditEvent(agent="accounts-cli", action=action, target=username, detail=f"{ended} sessions ended"))
            return ended
        ended = store.call(do)
        return f"{action.replace('account_', '')}: {username}" + (f" ({ended} open sessions ended)" if ended else "")

    if args.cmd == "passwd":
        password = _password(args)
        check_password_strength(username, password)
        return change(lambda a: setattr(a, "password_hash", hash_password(password)), "account_password_changed")
    if args.cmd == "disable":
        return change(lambda a: setattr(a, "active", False), "account_disabled")
    if args.cmd == "logout":
        return change(lambda a: None, "account_logged_out")
    return change(lambda a: setattr(a, "active", True), "account_enabled")


def main() -> int:
    """Command-line entry."""
    try:
        print(run(sys.argv[1:]))
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
