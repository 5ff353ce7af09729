"""A REST input channel whose replies keep text, buttons and custom payload in ONE message.

Rasa's CollectingOutputChannel splits a bot message with text and a custom payload into two
REST messages. Our clients (web app, voice gateway) need the knowledge entry id, score and
voice answer next to the text they belong to, so our channels collect whole messages.

Every message must carry the channel token (header X-Channel-Token, CHANNEL_TOKEN in the
environment, common/secrets.py): the sender id names a conversation, so whoever may post here may
speak in any conversation. Only our own services (the web app, which ties a conversation to the
citizen's signed cookie, and the voice gateway, which ties it to a call) hold the token.
"""
import copy
import json
import logging
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from common.secrets import same, secret
from common.settings import Env

logger = logging.getLogger(__name__)
TOKEN_HEADER = "X-Channel-Token"
MAX_TEXT_CHARS = 2000  # far above the chat's own limit: anything longer is not a citizen's message
MAX_METADATA_CHARS = 8000  # the web app and the gateway send a few fields (source, input, speech)
TOO_LONG = {"error": "message too long", "text": "消息太长了，请精简后再发送。"}


class WholeMessageCollector(CollectingOutputChannel):
    """Collects each bot message as one dict: text, buttons, image, custom together."""

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Store the message whole instead of splitting it by part."""
        self.messages.append(
            self._message(
                recipient_id,
                text=message.get("text"),
                image=message.get("image"),
                buttons=message.get("buttons") or message.get("quick_replies"),
                attachment=message.get("attachment"),
                custom=message.get("custom"),
            )
        )


class RichRestInput(RestInput):
    """Base for our REST-style channels (web, phone, rest): one JSON list of whole messages per turn."""

    def __init__(self, token: str | None = None, max_chars: int | None = None) -> None:
        self.token = token if token is not None else secret("CHANNEL_TOKEN").reveal()
        # CHANNEL_MAX_MESSAGE_CHARS: longer messages are refused (413) before any of it reaches the NLU
        self.max_chars = max_chars or Env.of(None).integer("CHANNEL_MAX_MESSAGE_CHARS", MAX_TEXT_CHARS, minimum=1)
        # the whole body, checked before it is parsed: the text at 6 bytes a character (escaped), metadata, slack
        self.max_body_bytes = 6 * self.max_chars + MAX_METADATA_CHARS + 1024

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """credentials.yml may name the token (`token: ...`); by default CHANNEL_TOKEN from the environment."""
        token = (credentials or {}).get("token")
        return cls(token=str(token) if token else None)

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """POST /webhooks/<name>/webhook {"sender","message","metadata"} -> [messages]."""
        bp = Blueprint(f"rich_rest_{self.name()}", __name__)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not same(request.headers.get(TOKEN_HEADER), self.token):
                logger.warning("%s channel: message without a valid channel token refused", self.name())
                return response.json({"error": "a valid X-Channel-Token header is required"}, status=401)
            if len(request.body or b"") > self.max_body_bytes:  # megabytes are refused unparsed
                return response.json({**TOO_LONG, "max_chars": self.max_chars}, status=413)
            try:
                body = request.json if isinstance(request.json, dict) else {}
            except Exception:  # malformed JSON body
                body = {}
            sender_id, text, metadata = body.get("sender"), body.get("message"), body.get("metadata")
            if not isinstance(sender_id, str) or not sender_id or not isinstance(text, str):
                return response.json({"error": "sender and message are required strings",
                                      "text": "请求格式不正确：需要 sender 和 message 两个文字字段。"}, status=400)
            if len(sender_id) > 128 or len(text) > self.max_chars or (
                    isinstance(metadata, dict) and len(json.dumps(metadata, ensure_ascii=False)) > MAX_METADATA_CHARS):
                return response.json({**TOO_LONG, "max_chars": self.max_chars}, status=413)
            collector = WholeMessageCollector()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender_id, input_channel=self.name(),
                                metadata=metadata if isinstance(metadata, dict) else None)
                )
            except CancelledError:
                logger.error("%s channel: message handling timed out", self.name())
            except Exception:  # keep the channel answering; Rasa logs the cause
                logger.exception("%s channel: message handling failed", self.name())
            return response.json(copy.deepcopy(collector.messages))

        return bp
