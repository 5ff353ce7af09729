"""Settings of the phone gateway, read once from environment variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from common.secrets import SecretError, secret

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says what to fix."""


class Secret(str):
    """A string whose repr hides its value, so settings can be logged safely."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"

    def __str__(self) -> str:
        return self.__repr__()

    def reveal(self) -> str:
        """The secret value, for the one place that sends it."""
        return str.__str__(self)


def _int(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"Set {key} to a whole number (got {raw!r}).") from None


def _float(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"Set {key} to a number (got {raw!r}).") from None


def _url(env: dict[str, str], key: str, default: str) -> str:
    value = env.get(key, "").strip() or default
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"Set {key} to an http:// or https:// URL (got {value!r}).")
    return value.rstrip("/")


@dataclass(frozen=True)
class ListenTimings:
    """Endpointing and barge-in thresholds (milliseconds unless named otherwise)."""

    speech_threshold_dbfs: float = -38.0
    min_speech_ms: int = 200
    eou_silence_ms: int = 500
    eou_silence_number_ms: int = 1200
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
    service_token: Secret = field(default_factory=lambda: Secret(""))
    channel_token: Secret = field(default_factory=lambda: Secret(""))
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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read and validate the settings; raise SettingsError naming the fix."""
        env = dict(os.environ if environ is None else environ)
        backend = env.get("VOICE_HANDOFF", "http").strip() or "http"
        if backend not in ("http", "local"):
            raise SettingsError(f"Set VOICE_HANDOFF to 'http' or 'local' (got {backend!r}).")
        token = Secret(env.get("SERVICE_TOKEN", "").strip())
        if backend == "http" and not token:
            raise SettingsError(
                "Set SERVICE_TOKEN to the web app's service token, or VOICE_HANDOFF=local "
                "to keep hand-offs in the local call store only."
            )
        try:
            channel_token = Secret(secret("CHANNEL_TOKEN", env))
            media_token = Secret(secret("MEDIA_STREAM_TOKEN", env))
        except SecretError as exc:
            raise SettingsError(str(exc)) from exc
        peers = tuple(p.strip() for p in env.get("AUDIOSOCKET_PEERS", "127.0.0.1/32,::1/128").split(",") if p.strip())
        try:
            for p in peers:
                ipaddress.ip_network(p, strict=False)
        except ValueError as exc:
            raise SettingsError(f"Set AUDIOSOCKET_PEERS to addresses or networks, e.g. 10.0.0.5,10.1.0.0/24 ({exc}).") from exc
        queue = env.get("VOICE_HANDOFF_QUEUE", "shebao-experts").strip()
        if not queue.replace("-", "").replace("_", "").isalnum():
            raise SettingsError("Set VOICE_HANDOFF_QUEUE to letters, digits, '-' or '_' only.")
        queue_map: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in env.get("VOICE_QUEUE_MAP", "").split(","))):
            bot_queue, _, pbx_queue = pair.partition("=")
            if not pbx_queue.replace("-", "").replace("_", "").isalnum() or not pbx_queue.isascii():
                raise SettingsError("Set VOICE_QUEUE_MAP as bot=pbx pairs, e.g. 养老=shebao-pension,社保卡=shebao-card.")
            queue_map[bot_queue.strip()] = pbx_queue.strip()
        timings = ListenTimings(
            speech_threshold_dbfs=_float(env, "VOICE_SPEECH_THRESHOLD_DBFS", -38.0),
            min_speech_ms=_int(env, "VOICE_MIN_SPEECH_MS", 200),
            eou_silence_ms=_int(env, "VOICE_EOU_SILENCE_MS", 500),
            eou_silence_number_ms=_int(env, "VOICE_EOU_SILENCE_NUMBER_MS", 1200),
            max_utterance_ms=_int(env, "VOICE_MAX_UTTERANCE_MS", 15000),
            no_input_timeout_ms=_int(env, "VOICE_NO_INPUT_TIMEOUT_MS", 7000),
            keypad_timeout_ms=_int(env, "VOICE_KEYPAD_TIMEOUT_MS", 10000),
        )
        db_raw = env.get("VOICE_DB_PATH", "").strip()
        grammar_file = env.get("VOICE_GRAMMAR_FILE", "").strip()
        open_grammar: tuple[str, ...] = ()
        if grammar_file:
            path = Path(grammar_file)
            if not path.is_file():
                raise SettingsError(f"VOICE_GRAMMAR_FILE={grammar_file} does not exist: fix the path or unset it.")
            lines = path.read_text(encoding="utf-8").splitlines()
            open_grammar = tuple(x.strip() for x in lines if x.strip() and not x.startswith("#"))
        return cls(
            http_host=env.get("VOICE_HTTP_HOST", "127.0.0.1").strip() or "127.0.0.1",
            http_port=_int(env, "VOICE_HTTP_PORT", 8081),
            audiosocket_host=env.get("AUDIOSOCKET_HOST", "127.0.0.1").strip() or "127.0.0.1",
            audiosocket_port=_int(env, "AUDIOSOCKET_PORT", 9092),
            vosk_model_path=env.get("VOSK_MODEL_PATH", "").strip(),
            rasa_url=_url(env, "RASA_URL", "http://127.0.0.1:5005"),
            rasa_timeout_s=_float(env, "VOICE_RASA_TIMEOUT_S", 10.0),
            webapp_url=_url(env, "WEBAPP_URL", "http://127.0.0.1:8080"),
            service_token=token,
            channel_token=channel_token,
            media_stream_token=media_token,
            audiosocket_peers=peers,
            max_calls=_int(env, "VOICE_MAX_CALLS", 50),
            handoff_backend=backend,
            handoff_queue=queue,
            queue_map=queue_map,
            tts_voice=env.get("VOICE_TTS_VOICE", "sit/cmn-latn-pinyin").strip() or "sit/cmn-latn-pinyin",
            tts_rate=_int(env, "VOICE_TTS_RATE", 170),
            tts_cache_entries=_int(env, "VOICE_TTS_CACHE_ENTRIES", 512),
            confirm_below=_float(env, "VOICE_CONFIRM_BELOW", 0.6),
            no_input_max_reprompts=_int(env, "VOICE_NO_INPUT_MAX_REPROMPTS", 2),
            db_path=Path(db_raw) if db_raw else REPO_ROOT / "var" / "voice_calls.sqlite3",
            open_grammar=open_grammar,
            timings=timings,
        )


# Every environment key read above, for the documentation drift test.
ENV_KEYS = (
    "VOICE_HTTP_HOST", "VOICE_HTTP_PORT", "AUDIOSOCKET_HOST", "AUDIOSOCKET_PORT",
    "VOSK_MODEL_PATH", "RASA_URL", "VOICE_RASA_TIMEOUT_S", "WEBAPP_URL", "SERVICE_TOKEN",
    "VOICE_HANDOFF", "VOICE_HANDOFF_QUEUE", "VOICE_QUEUE_MAP", "VOICE_TTS_VOICE", "VOICE_TTS_RATE",
    "VOICE_TTS_CACHE_ENTRIES", "VOICE_CONFIRM_BELOW", "VOICE_NO_INPUT_MAX_REPROMPTS",
    "VOICE_DB_PATH", "VOICE_SPEECH_THRESHOLD_DBFS", "VOICE_MIN_SPEECH_MS",
    "VOICE_EOU_SILENCE_MS", "VOICE_EOU_SILENCE_NUMBER_MS", "VOICE_MAX_UTTERANCE_MS",
    "VOICE_NO_INPUT_TIMEOUT_MS", "VOICE_KEYPAD_TIMEOUT_MS", "VOICE_GRAMMAR_FILE",
    "CHANNEL_TOKEN", "MEDIA_STREAM_TOKEN", "AUDIOSOCKET_PEERS", "VOICE_MAX_CALLS",
)
