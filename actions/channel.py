"""Who is talking to the bot: the channel (web or phone) and the source our own front ends vouch for."""
from __future__ import annotations

import re

from rasa_sdk import Tracker

SOURCE_RE = re.compile(r"(web|phone):[0-9A-Za-z.:+_\-]{1,64}")  # web:<client address> / phone:<caller number>


def channel_of(tracker: Tracker) -> str:
    """web or phone."""
    return "phone" if tracker.get_latest_input_channel() == "phone" else "web"


def source_of(tracker: Tracker) -> str:
    """Where the message came from, as our own front ends tell it (web:<client address>, phone:<caller number>).

    Set by the web app and the phone gateway in the message's metadata; Rasa's channels take it only from
    callers holding the channel token, so a citizen cannot choose it. "" when unknown or malformed.
    """
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    source = metadata.get("source") if isinstance(metadata, dict) else None
    return source if isinstance(source, str) and SOURCE_RE.fullmatch(source) else ""
