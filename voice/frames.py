"""Typed frames: the only things that travel through a call's pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # signed 16-bit mono: 320 bytes

# menu: one key is the whole answer (keypad mode: 1-8 choose, 9 repeats, * goes back, 0 is a person)
Expectation = Literal["free", "id_number", "phone_number", "card_number", "code", "yes_no", "menu"]
NUMBER_EXPECTATIONS: tuple[str, ...] = ("id_number", "phone_number", "card_number", "code")  # code: an SMS one-time code
DTMF_DIGITS = frozenset("0123456789*#")  # the keys of a phone; transports drop anything else (A-D included)


class Frame:
    """Base class of everything that flows through a pipeline."""


# --- from the transport -------------------------------------------------------------------

@dataclass(frozen=True)
class CallStarted(Frame):
    """A call was connected; always the first frame of a call."""

    call_id: str
    transport: str
    caller: str = ""
    source: str = ""  # web:<client address> from our own web softphone (a token-holding front end), else ""


@dataclass(frozen=True)
class AudioIn(Frame):
    """Caller audio: signed 16-bit little-endian PCM, 8 kHz mono; `at` is the arrival time."""

    pcm: bytes
    at: float = 0.0
    voiced: bool = False  # set by the Endpointer


@dataclass(frozen=True)
class Dtmf(Frame):
    """One keypad digit pressed by the caller (0-9, *, #)."""

    digit: str
    at: float = 0.0


@dataclass(frozen=True)
class Hangup(Frame):
    """The call is over (caller hung up, or our side ended it); always the last frame."""

    at: float = 0.0


@dataclass(frozen=True)
class Tick(Frame):
    """A clock frame injected every 100 ms so timeouts work while no audio arrives."""

    now: float


# --- listening ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ListenFor(Frame):
    """What the bot expects next; re-enters the pipeline at the head to tune every stage."""

    expect: Expectation = "free"
    eou_silence_ms: int = 500
    grammar: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # button payloads, chosen by keypad digit 1..n


@dataclass(frozen=True)
class UtteranceStarted(Frame):
    """The first voiced audio after silence (not yet confirmed as speech)."""

    at: float


@dataclass(frozen=True)
class SpeechStarted(Frame):
    """Voiced audio lasted the minimum-speech guard: the caller is talking (barge-in)."""

    at: float


@dataclass(frozen=True)
class UtteranceEnded(Frame):
    """End of the caller's utterance after the end-of-utterance silence."""

    at: float
    speech_ms: int
    last_voice_at: float


@dataclass(frozen=True)
class AnswerComplete(Frame):
    """The recogniser already holds a complete answer to the current prompt (a valid ID number, a phone number,
    是/不是): re-enters at the head so the endpointer ends the utterance after a short silence."""

    at: float


@dataclass(frozen=True)
class UtteranceDiscarded(Frame):
    """A voiced burst too short to be speech (noise, a cough); nothing was said."""

    at: float


@dataclass(frozen=True)
class Transcript(Frame):
    """Recognised text; partial results have final=False."""

    text: str
    confidence: float = 1.0
    final: bool = True
    at: float = 0.0


@dataclass(frozen=True)
class KeypadEntry(Frame):
    """Digits typed on the keypad, terminated by # (or one digit for a menu choice)."""

    digits: str
    at: float = 0.0


@dataclass(frozen=True)
class HumanRequested(Frame):
    """The caller pressed 0 to reach a person."""

    at: float = 0.0


# --- the conversation ---------------------------------------------------------------------

@dataclass(frozen=True)
class CallerTurn(Frame):
    """What the caller said or typed, as sent to the bot."""

    text: str
    source: Literal["speech", "keypad"]
    at: float = 0.0


@dataclass(frozen=True)
class BotReply(Frame):
    """Messages to speak, in Rasa REST format ({text, buttons, custom})."""

    messages: tuple[dict[str, Any], ...]
    at: float = 0.0


@dataclass(frozen=True)
class EndCall(Frame):
    """Our side ends the call once queued audio has played: transfer to a queue or hang up."""

    action: Literal["transfer", "hangup"]
    queue: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# --- speaking -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeakText(Frame):
    """Speakable text (numbers spelt out, no URLs) for the synthesiser."""

    text: str
    utterance_id: int = 0


@dataclass(frozen=True)
class AudioOut(Frame):
    """Bot audio, 8 kHz signed 16-bit PCM; `last` marks the end of one utterance."""

    pcm: bytes
    utterance_id: int = 0
    last: bool = False


@dataclass(frozen=True)
class PlaybackFinished(Frame):
    """The bot stopped speaking (played out, or cut by barge-in); re-enters at the head."""

    utterance_id: int
    at: float
    interrupted: bool = False
