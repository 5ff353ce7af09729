"""The desk leaks nothing: queue-scoped live events and work orders, login throttling, no user probing,
no demo accounts in production, same-origin requests only, an audit trail, accounts from the command line, and
pages that run only their own script files (Content-Security-Policy)."""
from __future__ import annotations

import asyncio
import io
import json
import re

import bcrypt
import pytest
import websockets
from sqlalchemy import delete, select

from tests.service.test_desk import TOKEN, browser, handoff, login
from webapp.accounts import AccountError, run
from webapp.app import create_app
from webapp.auth import COOKIE
from webapp.settings import Settings
from webapp.store import LoginFailure, Store


async def test_live_events_reach_only_the_agents_of_the_queue(app):
    import httpx

    from tests.voice.doubles import serve

    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async def agent(user: str) -> dict:
            r = await http.post("/desk/login", json={"username": user, "password": f"{user}-demo"})
            http.cookies.clear()
            return {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}

        card, pension = await agent("agent1"), await agent("agent2")
        base = f"ws://127.0.0.1:{port}/desk/ws"
        async with websockets.connect(base, additional_headers=card) as ws1, \
                websockets.connect(base, additional_headers=pension) as ws2:
            await ws1.recv(), await ws2.recv()  # hello
            first = await http.get("/api/chat/state")
            cid = first.json()["cid"]
            r = await http.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "channel": "web",
                                                                     "queue": "社保卡", "reason": "市民要求人工"})
            assert r.status_code == 200
            await http.post("/api/chat/message", json={"text": "我叫张三 身份证丢了"})
            seen1 = [json.loads(await asyncio.wait_for(ws1.recv(), 3)) for _ in range(2)]
            assert {e["type"] for e in seen1} == {"queue_changed", "citizen_message"}
            with pytest.raises(asyncio.TimeoutError):  # the other queue's agent hears nothing of it
                await asyncio.wait_for(ws2.recv(), 1.0)


async def test_work_orders_of_other_queues_are_neither_listed_nor_changed(app):
    card, pension = await login(app, "agent1", "agent1-demo"), await login(app, "agent2", "agent2-demo")
    _, r = await app.asgi_client.post("/desk/api/workorders", headers=card,
                                      json={"title": "补卡未寄到 张三", "category": "社保卡", "detail": "电话13812345678"})
    wid = r.json["id"]
    _, listed = await app.asgi_client.get("/desk/api/workorders", headers=pension)
    assert wid not in [w["id"] for w in listed.json["workorders"]]
    _, r = await app.asgi_client.post(f"/desk/api/workorders/{wid}", headers=pension, json={"status": "closed"})
    assert r.status == 404
    sup = await login(app, "supervisor", "supervisor-demo")
    _, listed = await app.asgi_client.get("/desk/api/workorders", headers=sup)
    assert wid in [w["id"] for w in listed.json["workorders"]]


async def test_repeated_wrong_passwords_slow_that_user_down_but_not_others(app):
    for _ in range(5):
        _, r = await app.asgi_client.post("/desk/login", json={"username": "agent1", "password": "guess"})
        assert r.status == 401
    _, r = await app.asgi_client.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
    assert r.status == 429 and int(r.headers["retry-after"]) > 0 and "分钟" in r.json["error"]
    # every test request comes from one address: forget its count, keep the user name's
    await app.ctx.store.run(lambda s: s.execute(delete(LoginFailure).where(LoginFailure.kind == "address")))
    assert (await login(app, "agent2", "agent2-demo"))["Cookie"].startswith(COOKIE)


async def test_replicas_share_the_login_throttle(tmp_path):
    """Two web-app processes on one database (replicas behind a load balancer): guesses spread over both count once."""
    db = f"sqlite:///{tmp_path}/shared.db"
    first, second = create_app(Settings(database_url=db), name="replica_a"), create_app(Settings(database_url=db), name="replica_b")
    for replica in (first, second, first, second, first):
        _, r = await replica.asgi_client.post("/desk/login", json={"username": "agent1", "password": "guess"})
        assert r.status == 401
    for replica in (first, second):
        _, r = await replica.asgi_client.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        assert r.status == 429 and int(r.headers["retry-after"]) > 0
    rows = await first.ctx.store.run(lambda s: list(s.scalars(select(LoginFailure.key_hash))))
    assert rows and not any("agent1" in key for key in rows)  # hashes only: nothing typed is stored


async def test_an_unknown_user_name_costs_a_password_check_like_a_known_one(app, monkeypatch):
    calls = []
    real = bcrypt.checkpw

    def counting(pw, hashed):
        calls.append(hashed)
        return real(pw, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    for user in ("agent1", "nobody-here"):
        _, r = await app.asgi_client.post("/desk/login", json={"username": user, "password": "wrong-password"})
        assert r.status == 401 and r.json["error"] == "用户名或密码错误"
    assert len(calls) == 2


async def test_demo_accounts_are_disabled_in_production_and_real_ones_work(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path}/p.db"
    create_app(Settings(database_url=db), name="dev_first")  # a database created in development
    monkeypatch.setattr("sys.stdin", io.StringIO("a-Real-passw0rd-here\n"))
    run(["add", "zhangli", "--name", "张丽", "--queues", "社保卡,综合", "--password-stdin"], Store(db))
    prod = create_app(Settings(database_url=db, dev_mode=False), name="prod_next")
    _, r = await prod.asgi_client.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
    assert r.status == 401
    _, r = await prod.asgi_client.post("/desk/login", json={"username": "zhangli", "password": "a-Real-passw0rd-here"})
    assert r.status == 200 and r.json["role"] == "agent"


@pytest.mark.parametrize("path,body", [("/desk/login", {"username": "agent1", "password": "agent1-demo"}),
                                       ("/api/chat/message", {"text": "转人工"})])
async def test_requests_from_another_site_are_refused(app, path, body):
    _, r = await app.asgi_client.post(path, json=body, headers={"Origin": "https://evil.example"})
    assert r.status == 403
    _, r = await app.asgi_client.post(path, json=body, headers={"Origin": "http://mockserver:1234"})
    assert r.status == 200


async def test_opening_a_conversation_is_audited_for_the_supervisor(app):
    cid, _ = await browser(app)
    info = await handoff(app, cid)
    card = await login(app, "agent1", "agent1-demo")
    await app.asgi_client.get(f"/desk/api/handoffs/{info['id']}", headers=card)
    _, r = await app.asgi_client.get("/desk/api/audit", headers=card)
    assert r.status == 403
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get("/desk/api/audit?agent=agent1", headers=sup)
    actions = [(e["action"], e["target"]) for e in r.json["events"]]
    assert ("open_conversation", cid) in actions and ("login", "") in actions


def test_accounts_command_refuses_weak_passwords_and_unknown_queues(tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path}/a.db")
    for argv, password in ((["add", "li", "--name", "李", "--password-stdin"], "short\n"),
                           (["add", "li", "--name", "李", "--password-stdin"], "li-is-my-password\n"),
                           (["add", "li", "--name", "李", "--queues", "外卖", "--password-stdin"], "long-enough-pass\n")):
        monkeypatch.setattr("sys.stdin", io.StringIO(password))
        with pytest.raises(AccountError):
            run(argv, store)
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-pass\n"))
    assert "added li" in run(["add", "li", "--name", "李", "--password-stdin"], store)
    assert "disabled" in run(["disable", "li"], store)
    assert run(["list"], store).split("\t")[-1] == "disabled"



async def test_logging_out_ends_the_session_on_the_server_not_only_in_the_browser(app):
    first, second = await login(app, "agent1", "agent1-demo"), await login(app, "agent1", "agent1-demo")
    _, r = await app.asgi_client.get("/desk/api/me", headers=first)
    assert r.status == 200
    _, r = await app.asgi_client.post("/desk/logout", headers=first)
    assert r.status == 200
    app.asgi_client.cookies.clear()
    # a copy of the cookie (another tab, a shared PC, a stolen value) opens nothing after logout
    _, r = await app.asgi_client.get("/desk/api/me", headers=first)
    assert r.status == 401
    _, r = await app.asgi_client.get("/desk/api/me", headers=second)  # the agent's other login is its own
    assert r.status == 200
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get("/desk/api/audit?agent=agent1", headers=sup)
    assert "logout" in [e["action"] for e in r.json["events"]]


async def test_a_validly_signed_cookie_without_its_server_session_opens_nothing(app):
    from webapp.auth import read_session_claims, sign_session

    secret = app.ctx.settings.session_secret.reveal()
    agent1 = await login(app, "agent1", "agent1-demo")
    sid = read_session_claims(agent1["Cookie"].split("=", 1)[1], secret)["s"]
    for forged in (sign_session("agent1", secret),  # no session id (a cookie from before sessions were kept)
                   sign_session("agent1", secret, sid="made-up-session-id"),
                   sign_session("supervisor", secret, sid=sid)):  # agent1's session presented as another agent
        _, r = await app.asgi_client.get("/desk/api/me", headers={"Cookie": f"{COOKIE}={forged}"})
        assert r.status == 401, forged


@pytest.mark.parametrize("command", [["passwd", "agent2", "--password-stdin"], ["disable", "agent2"],
                                     ["logout", "agent2"]])
async def test_a_password_change_a_disabled_account_or_a_forced_logout_ends_open_sessions(app, monkeypatch, command):
    agent2, agent1 = await login(app, "agent2", "agent2-demo"), await login(app, "agent1", "agent1-demo")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-New-passw0rd-here\n"))
    said = run(command, app.ctx.store)
    assert "1 open sessions ended" in said
    _, r = await app.asgi_client.get("/desk/api/me", headers=agent2)
    assert r.status == 401
    _, r = await app.asgi_client.get("/desk/api/me", headers=agent1)  # nobody else is logged out
    assert r.status == 200


async def test_the_live_feed_closes_when_its_session_ends(app):
    import httpx

    from tests.voice.doubles import serve

    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        card = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
        http.cookies.clear()
        async with websockets.connect(f"ws://127.0.0.1:{port}/desk/ws", additional_headers=card) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            assert (await http.post("/desk/logout", headers=card)).status_code == 200
            # the next event is not delivered: the feed says the login ended and closes
            cid = (await http.get("/api/chat/state")).json()["cid"]
            await http.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "channel": "web",
                                                                 "queue": "社保卡", "reason": "市民要求人工"})
            last = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert last["type"] == "error" and "重新登录" in last["text"]
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)


async def test_the_chat_tells_the_bot_the_client_address_and_a_client_cannot_choose_it(app, monkeypatch):
    from webapp.rasa_client import RasaClient

    seen: list[dict] = []

    async def recording_send(self, sender, text, metadata=None, channel="web"):
        seen.append(metadata or {})
        return [{"recipient_id": sender, "text": "好的"}]

    monkeypatch.setattr(RasaClient, "send", recording_send)
    app.asgi_client.cookies.clear()
    _, r = await app.asgi_client.post("/api/chat/message", json={"text": "查社保卡进度", "source": "web:9.9.9.9"},
                                      headers={"X-Forwarded-For": "6.6.6.6"})
    assert r.status == 200
    # the TCP peer's address (no trusted proxy is configured here), never the header's or the body's
    source = seen[0]["source"]
    assert source.startswith("web:") and len(source) > 4 and "6.6.6.6" not in source and "9.9.9.9" not in source


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: sources}."""
    out = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *sources = part.split()
        out[name] = sources
    return out


@pytest.mark.parametrize("user", [None, "agent1", "supervisor"])
async def test_every_desk_page_runs_only_its_own_script_files(app, user):
    """The login page, the desk and its dashboard (the supervisor's desk page) send a policy without 'unsafe-inline'
    or 'unsafe-eval', and hold nothing it would block: no inline script, style or handler, only same-origin files."""
    headers = await login(app, user, f"{user}-demo") if user else {}
    _, r = await app.asgi_client.get("/desk/login" if user is None else "/desk", headers=headers)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    csp = policy(r.headers["content-security-policy"])
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert csp[directive] == ["'self'"], directive
    assert csp["object-src"] == csp["base-uri"] == csp["frame-ancestors"] == ["'none'"]
    assert not [s for sources in csp.values() for s in sources if s.startswith("'unsafe") or s in ("*", "http:", "https:")]
    assert r.headers["x-content-type-options"] == "nosniff"
    page = r.body.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all(re.search(r'\bsrc="/static/[\w.-]+\.js"', attrs) and not body.strip() for attrs, body in scripts)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", page, re.I)
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):  # every file it loads is there, same origin
        _, f = await app.asgi_client.get(src)
        assert f.status == 200, src
