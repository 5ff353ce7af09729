"""Run with the Rasa environment's Python by tests/service/test_malformed_input.py (not a test itself).

Mounts our web channel (bot/channels) on a Sanic app as Rasa does, with a message handler that records what
would reach the NLU, sends the bodies named on stdin, and prints one JSON line per answer:
{"status", "body", "reached_nlu"}.
stdin: {"token": str, "max_chars": int, "bodies": [{"raw": str} | {"json": any}, ...]}
"""
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


async def main() -> None:
    """Send each body to /webhooks/web/webhook and print the answers."""
    job = json.load(sys.stdin)
    import aiohttp
    from sanic import Sanic

    from bot.channels.web import WebChatInput

    reached: list[str] = []

    async def on_message(message) -> None:
        reached.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "好的")

    channel = WebChatInput(token=job["token"], max_chars=job["max_chars"])
    app = Sanic("probe")
    app.blueprint(channel.blueprint(on_message), url_prefix="/webhooks/web")
    server = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    await server.startup()
    port = server.server.sockets[0].getsockname()[1]
    headers = {"X-Channel-Token": job["token"], "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for body in job["bodies"]:
            data = body["raw"].encode() if "raw" in body else json.dumps(body["json"]).encode()
            before = len(reached)
            async with http.post(f"http://127.0.0.1:{port}/webhooks/web/webhook", data=data, headers=headers) as r:
                answer = await r.json(content_type=None)
            print(json.dumps({"status": r.status, "body": answer, "reached_nlu": len(reached) > before},
                             ensure_ascii=False))
    server.close()


asyncio.run(main())
