"""A REST input channel whose replies keep text, buttons and custom payload in ONE message.

Rasa's CollectingOutputChannel splits a bot message with text and a custom payload into two
REST messages. Our clients (web app, voice gateway) need the knowledge entry id, score and
voice answer next to the text they belong to, so our channels collect whole messages.
"""
import copy
import logging
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


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
    """Base for our REST-style channels (web, phone): one JSON list of whole messages per turn."""

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
            body = request.json if isinstance(request.json, dict) else {}
            sender_id, text = body.get("sender"), body.get("message")
            if not isinstance(sender_id, str) or not sender_id or not isinstance(text, str):
                return response.json({"error": "sender and message are required strings"}, status=400)
            collector = WholeMessageCollector()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender_id, input_channel=self.name(),
                                metadata=body.get("metadata") if isinstance(body.get("metadata"), dict) else None)
                )
            except CancelledError:
                logger.error("%s channel: message handling timed out", self.name())
            except Exception:  # keep the channel answering; Rasa logs the cause
                logger.exception("%s channel: message handling failed", self.name())
            return response.json(copy.deepcopy(collector.messages))

        return bp
