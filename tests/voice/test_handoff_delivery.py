"""A phone hand-off reaches the desk through a web-app restart: the ticket is tried again on 5xx and on a
connection error, never on a refusal, and a request whose answer was lost is not doubled (the web app keeps one
open hand-off per conversation; tests/service/test_handoff_concurrency.py)."""
from __future__ import annotations

import httpx
import pytest

from voice.engines.desk import HandoffTicket, HttpHandoffDesk


def desk_answering(statuses: list[int | Exception], seen: list[dict]) -> HttpHandoffDesk:
    """An HttpHandoffDesk whose web app answers the given statuses (or raises) in turn."""
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"auth": request.headers.get("authorization"), "body": request.content})
        answer = statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"id": 7} if answer == 200 else {"error": "x"})
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpHandoffDesk("http://webapp", "tok", client=client, retry_pauses=(0.01, 0.01, 0.01))


TICKET = HandoffTicket(conversation_id="CA123", reason="caller_asked", summary="电话来电，身份证370102199003071238")


async def test_a_restarting_web_app_gets_the_ticket_on_a_later_attempt():
    seen: list[dict] = []
    desk = desk_answering([httpx.ConnectError("refused"), 503, 200], seen)
    await desk.hand_off(TICKET)
    assert len(seen) == 3 and all(s["auth"] == "Bearer tok" for s in seen)
    assert len({s["body"] for s in seen}) == 1 and b"370102199003071238" not in seen[0]["body"]  # same, masked


async def test_a_refusal_is_not_tried_again_and_a_dead_desk_gives_up():
    seen: list[dict] = []
    with pytest.raises(httpx.HTTPStatusError):
        await desk_answering([400, 200], seen).hand_off(TICKET)
    assert len(seen) == 1
    seen.clear()
    with pytest.raises(httpx.ConnectError):
        await desk_answering([httpx.ConnectError("refused")] * 4, seen).hand_off(TICKET)
    assert len(seen) == 4  # the first attempt and three retries
