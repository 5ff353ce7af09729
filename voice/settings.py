"""Settings of the phone gateway, read from environment variables by `Settings.from_env()` at start.

Every key is in docs/voice.md and .env.example; how they are read is common/settings.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.events import EventSettings
from common.secrets import Secret
from common.settings import Env, SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent
__all__ = ["ENV_KEYS", "REPO_ROOT", "ListenTimings", "Settings", "SettingsError", "load_settings"]


@dataclass(frozen=True)
class ListenTimings:
    """Endpointing and barge-in thresholds (milliseconds unless named otherwise)."""

    speech_threshold_dbfs: float = -38.0
    min_speech_ms: int = 200
    eou_silence_ms: int = 500
    eou_silence_number_ms: int = 1200
    eou_silence_complete_ms: int = 300  # once the words so far already answer the prompt completely
    max_utterance_ms: int = 15000
    no_input_timeout_ms: int = 7000
    keypad_timeout_ms: int = 10000


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from the environment; see docs/voice.md for each key."""

    http_host: str = "127.0.0.1"
    http_port: int = 8081
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = 9092
    vosk_model_path: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_s: float = 10.0
    webapp_url: str = "http://127.0.0.1:8080"
    service_token: Secret = field(default_factory=Secret)
    channel_token: Secret = field(default_factory=Secret)
    media_stream_token: Secret = field(default_factory=lambda: Secret("dev-media-stream-token"))
    audiosocket_peers: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    max_calls: int = 50
    handoff_backend: str = "http"
    handoff_queue: str = "shebao-experts"
    queue_map: dict[str, str] = field(default_factory=dict)
    tts_voice: str = "sit/cmn-latn-pinyin"
    tts_rate: int = 170
    tts_cache_entries: int = 512
    confirm_below: float = 0.6
    no_input_max_reprompts: int = 2
    db_path: Path = REPO_ROOT / "var" / "voice_calls.sqlite3"
    open_grammar: tuple[str, ...] = ()
    timings: ListenTimings = field(default_factory=ListenTimings)
    # call events for the analytics (common/events.py) where Rasa's broker publishes; a constructed Settings
    # publishes nothing, from_env() does (RASA_EVENTS_URL, RASA_EVENTS_QUEUE)
    events: EventSettings = field(default_factory=EventSettings)
    # keys the hash of the caller's number stored with the call (voice/store.py caller_key): repeat callers
    # can be counted, the number cannot be recovered without it
    caller_key_secret: Secret = field(default_factory=lambda: Secret("dev-voice-caller-key"))
    # bounds of every call (docs/reliability.md "Bounded everything"): nothing from the peer this long ends the call
    # politely; frames a call may queue (beyond, caller audio is dropped); keys buffered before they are submitted;
    # the longest AudioSocket message and media-stream WebSocket frame taken (longer ones are dropped)
    max_silence_s: float = 300.0
    inbox_frames: int = 500
    keypad_max_digits: int = 32
    audiosocket_max_message_bytes: int = 1280
    media_stream_max_frame_bytes: int = 65536
    # keypad mode: the desk's knowledge tables (knowledge/editorial.py); the menu answers with the published
    # entries and is rebuilt when the publication stamp moves (read every kb_watch_seconds). "": the content files
    kb_database_url: str = field(default="", repr=False)  # may hold a password
    kb_watch_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("service_token", "channel_token", "media_stream_token", "caller_key_secret"):
            if not isinstance(getattr(self, name), Secret):  # tests may pass plain strings
                object.__setattr__(self, name, Secret(getattr(self, name)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | Env | None = None) -> Settings:
        """Read and validate the settings (default: os.environ); raise SettingsError naming the fix."""
        env, d = Env.of(environ), cls()
        backend = env.choice("VOICE_HANDOFF", d.handoff_backend, ("http", "local"))
        # no development default here: the web app's hand-off API needs the token it was given
        token = env.secret("SERVICE_TOKEN") if env.text("SERVICE_TOKEN") else Secret()
        if backend == "http" and not token:
            raise SettingsError(
                "Set SERVICE_TOKEN to the web app's service token, or VOICE_HANDOFF=local "
                "to keep hand-offs in the local call store only."
            )
        channel_token = env.secret("CHANNEL_TOKEN")
        media_token = env.secret("MEDIA_STREAM_TOKEN")
        peers = tuple(p.strip() for p in env.text("AUDIOSOCKET_PEERS", ",".join(d.audiosocket_peers)).split(",") if p.strip())
        try:
            for p in peers:
                ipaddress.ip_network(p, strict=False)
        except ValueError as exc:
            raise SettingsError(f"Set AUDIOSOCKET_PEERS to addresses or networks, e.g. 10.0.0.5,10.1.0.0/24 ({exc}).") from exc
        queue = env.text("VOICE_HANDOFF_QUEUE", d.handoff_queue)
        if not queue.replace("-", "").replace("_", "").isalnum():
            raise SettingsError("Set VOICE_HANDOFF_QUEUE to letters, digits, '-' or '_' only.")
        queue_map: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in env.text("VOICE_QUEUE_MAP").split(","))):
            bot_queue, _, pbx_queue = pair.partition("=")
            if not pbx_queue.replace("-", "").replace("_", "").isalnum() or not pbx_queue.isascii():
                raise SettingsError("Set VOICE_QUEUE_MAP as bot=pbx pairs, e.g. 养老=shebao-pension,社保卡=shebao-card.")
            queue_map[bot_queue.strip()] = pbx_queue.strip()
        t = d.timings
        timings = ListenTimings(
            speech_threshold_dbfs=env.number("VOICE_SPEECH_THRESHOLD_DBFS", t.speech_threshold_dbfs),
            min_speech_ms=env.integer("VOICE_MIN_SPEECH_MS", t.min_speech_ms, minimum=0),
            eou_silence_ms=env.integer("VOICE_EOU_SILENCE_MS", t.eou_silence_ms, minimum=1),
            eou_silence_number_ms=env.integer("VOICE_EOU_SILENCE_NUMBER_MS", t.eou_silence_number_ms, minimum=1),
            eou_silence_complete_ms=env.integer("VOICE_EOU_SILENCE_COMPLETE_MS", t.eou_silence_complete_ms, minimum=1),
            max_utterance_ms=env.integer("VOICE_MAX_UTTERANCE_MS", t.max_utterance_ms, minimum=1),
            no_input_timeout_ms=env.integer("VOICE_NO_INPUT_TIMEOUT_MS", t.no_input_timeout_ms, minimum=1),
            keypad_timeout_ms=env.integer("VOICE_KEYPAD_TIMEOUT_MS", t.keypad_timeout_ms, minimum=1),
        )
        grammar_file = env.text("VOICE_GRAMMAR_FILE")
        open_grammar: tuple[str, ...] = ()
        if grammar_file:
            path = Path(grammar_file)
            if not path.is_file():
                raise SettingsError(f"VOICE_GRAMMAR_FILE={grammar_file} does not exist: fix the path or unset it.")
            lines = path.read_text(encoding="utf-8").splitlines()
            open_grammar = tuple(x.strip() for x in lines if x.strip() and not x.startswith("#"))
        return cls(
            http_host=env.text("VOICE_HTTP_HOST", d.http_host),
            http_port=env.integer("VOICE_HTTP_PORT", d.http_port, minimum=0),
            audiosocket_host=env.text("AUDIOSOCKET_HOST", d.audiosocket_host),
            audiosocket_port=env.integer("AUDIOSOCKET_PORT", d.audiosocket_port, minimum=0),
            vosk_model_path=env.text("VOSK_MODEL_PATH", d.vosk_model_path),
            rasa_url=env.url("RASA_URL", d.rasa_url).rstrip("/"),
            rasa_timeout_s=env.number("VOICE_RASA_TIMEOUT_S", d.rasa_timeout_s, positive=True),
            webapp_url=env.url("WEBAPP_URL", d.webapp_url).rstrip("/"),
            service_token=token,
            channel_token=channel_token,
            media_stream_token=media_token,
            audiosocket_peers=peers,
            max_calls=env.integer("VOICE_MAX_CALLS", d.max_calls, minimum=1),
            handoff_backend=backend,
            handoff_queue=queue,
            queue_map=queue_map,
            tts_voice=env.text("VOICE_TTS_VOICE", d.tts_voice),
            tts_rate=env.integer("VOICE_TTS_RATE", d.tts_rate, minimum=1),
            tts_cache_entries=env.integer("VOICE_TTS_CACHE_ENTRIES", d.tts_cache_entries, minimum=0),
            confirm_below=env.number("VOICE_CONFIRM_BELOW", d.confirm_below, minimum=0),
            no_input_max_reprompts=env.integer("VOICE_NO_INPUT_MAX_REPROMPTS", d.no_input_max_reprompts, minimum=0),
            db_path=env.path("VOICE_DB_PATH", d.db_path),
            open_grammar=open_grammar,
            timings=timings,
            events=EventSettings.from_env(env, default_url=f"sqlite:///{REPO_ROOT / 'var' / 'rasa_events.db'}"),
            caller_key_secret=env.secret("VOICE_CALLER_KEY_SECRET"),
            max_silence_s=env.number("VOICE_MAX_SILENCE_S", d.max_silence_s, positive=True),
            inbox_frames=env.integer("VOICE_INBOX_FRAMES", d.inbox_frames, minimum=10),
            keypad_max_digits=env.integer("VOICE_KEYPAD_MAX_DIGITS", d.keypad_max_digits, minimum=18),
            audiosocket_max_message_bytes=env.integer("AUDIOSOCKET_MAX_MESSAGE_BYTES", d.audiosocket_max_message_bytes,
                                                      minimum=320),
            media_stream_max_frame_bytes=env.integer("MEDIA_STREAM_MAX_FRAME_BYTES", d.media_stream_max_frame_bytes,
                                                     minimum=1024),
            kb_database_url=env.url("KB_DATABASE_URL", d.kb_database_url, schemes=("sqlite", "postgresql")),
            kb_watch_seconds=env.number("KB_WATCH_SECONDS", d.kb_watch_seconds, minimum=0),
        )


def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
    """The gateway's settings, read and checked like every service's (`Settings.from_env`)."""
    return Settings.from_env(env)


# Every environment key read above, for the documentation drift test.
ENV_KEYS = (
    "VOICE_HTTP_HOST", "VOICE_HTTP_PORT", "AUDIOSOCKET_HOST", "AUDIOSOCKET_PORT",
    "VOSK_MODEL_PATH", "RASA_URL", "VOICE_RASA_TIMEOUT_S", "WEBAPP_URL", "SERVICE_TOKEN",
    "VOICE_HANDOFF", "VOICE_HANDOFF_QUEUE", "VOICE_QUEUE_MAP", "VOICE_TTS_VOICE", "VOICE_TTS_RATE",
    "VOICE_TTS_CACHE_ENTRIES", "VOICE_CONFIRM_BELOW", "VOICE_NO_INPUT_MAX_REPROMPTS",
    "VOICE_DB_PATH", "VOICE_SPEECH_THRESHOLD_DBFS", "VOICE_MIN_SPEECH_MS",
    "VOICE_EOU_SILENCE_MS", "VOICE_EOU_SILENCE_NUMBER_MS", "VOICE_EOU_SILENCE_COMPLETE_MS", "VOICE_MAX_UTTERANCE_MS",
    "VOICE_NO_INPUT_TIMEOUT_MS", "VOICE_KEYPAD_TIMEOUT_MS", "VOICE_GRAMMAR_FILE",
    "CHANNEL_TOKEN", "MEDIA_STREAM_TOKEN", "AUDIOSOCKET_PEERS", "VOICE_MAX_CALLS",
    "RASA_EVENTS_URL", "RASA_EVENTS_QUEUE", "VOICE_CALLER_KEY_SECRET",
    "VOICE_MAX_SILENCE_S", "VOICE_INBOX_FRAMES", "VOICE_KEYPAD_MAX_DIGITS", "AUDIOSOCKET_MAX_MESSAGE_BYTES",
    "MEDIA_STREAM_MAX_FRAME_BYTES", "KB_DATABASE_URL", "KB_WATCH_SECONDS",
)
