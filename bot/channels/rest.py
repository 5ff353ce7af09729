"""REST for integrations (POST /webhooks/rest/webhook), replacing Rasa's built-in `rest` channel.

Rasa's own REST channel takes the sender id from whoever posts, with no credential, so any client
that reaches it could write into, read or silence any conversation. This one asks for the channel
token like our web and phone channels (X-Channel-Token) and records turns as input_channel "rest".
"""

from bot.channels.rich_rest import RichRestInput


class TokenRestInput(RichRestInput):
    """REST input channel for trusted integrations holding the channel token."""

    @classmethod
    def name(cls) -> str:
        """Channel name, also the URL prefix /webhooks/rest/."""
        return "rest"
