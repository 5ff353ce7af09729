"""The web chat channel: the web app's entry point into Rasa.

The citizen's browser talks to our web app (which keeps the transcript and routes hand-offs to
the agent desk); the web app forwards each message to POST /webhooks/web/webhook.
Turns are recorded with input_channel "web".
"""

from bot.channels.rich_rest import RichRestInput


class WebChatInput(RichRestInput):
    """Input channel for the citizen web chat (via the web app)."""

    @classmethod
    def name(cls) -> str:
        """Channel name, also the URL prefix /webhooks/web/."""
        return "web"
