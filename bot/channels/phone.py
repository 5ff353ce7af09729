"""The phone channel: the voice gateway's entry point into Rasa.

POST /webhooks/phone/webhook with {"sender": <call id>, "message", "metadata"}; every turn is
recorded with input_channel "phone" so that actions shape answers for speech (short voice
answers, spoken button options, keypad prompts).
"""

from bot.channels.rich_rest import RichRestInput


class PhoneInput(RichRestInput):
    """Input channel for calls coming from the voice gateway."""

    @classmethod
    def name(cls) -> str:
        """Channel name, also the URL prefix /webhooks/phone/."""
        return "phone"
