"""The action server process: rasa-sdk's app, answering only Rasa.

`python -m rasa_sdk` would listen on every interface, accept action calls from anyone (a forged
tracker is enough to open a hand-off or run a card action for any conversation) and echo the request
body — a tracker with the citizen's words — in its error replies. Here the same app:
- listens on ACTION_HOST (127.0.0.1 by default);
- takes /webhook and /actions only with the action token (header X-Action-Token = ACTION_TOKEN, which
  Rasa sends as endpoints.yml tells it; common/secrets.py);
- answers errors without the request body.

    python -m actions.server -p 5055
"""
from __future__ import annotations

import argparse
import logging

from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.executor import ActionExecutor
from sanic import Request, Sanic, response

from actions.settings import load_settings, use
from common.secrets import same
from common.settings import SettingsError

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Action-Token"
GUARDED = ("/webhook", "/actions")


def create_app(token: str, preload: bool = False) -> Sanic:
    """rasa-sdk's app with our actions, guarded by the action token."""
    executor = ActionExecutor()
    executor.register_package("actions")
    app = create_sdk_app(executor, cors_origins=[])

    @app.on_request
    async def guard(request: Request):
        if request.path.rstrip("/") in GUARDED and not same(request.headers.get(TOKEN_HEADER), token):
            log.warning("action server: %s without a valid action token refused (peer %s)", request.path, request.ip)
            return response.json({"error": "a valid X-Action-Token header is required"}, status=401)
        return None

    @app.on_response
    async def no_echo(request: Request, resp):
        # rasa-sdk's error handler answers with the request body (the tracker, with the citizen's words)
        if resp.status >= 500:
            return response.json({"error": "internal error"}, status=resp.status)
        return None

    if preload:
        @app.before_server_start
        async def index(app: Sanic) -> None:
            from actions.kb_service import kb_service

            kb_service.start()

    return app


def main() -> None:
    """Read the settings (stop with one sentence if one is wrong), parse -p/--port, run in one process."""
    try:
        settings = use(load_settings())
    except SettingsError as e:
        raise SystemExit(f"action server not started: {e}") from None
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--port", type=int, default=settings.port)
    ap.add_argument("--host", default=settings.host)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings.action_token.reveal(), preload=settings.kb_preload)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
