"""`python -m voice`: start the phone gateway, or refuse with one sentence that says what to fix.

Without a Mandarin Vosk model the gateway serves callers by keypad (recognition: none); a
VOSK_MODEL_PATH that is set but wrong is a mistake and stops the start.
`python -m voice --check-model` only checks that a Vosk model is found (exit 0) and prints its path.
`python -m voice --check` checks everything the start needs (settings, model or keypad menu, speech)
and prints the phone service's mode in one line, without serving.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from common.privacy import install_masking
from voice.engines.recognition import ModelMissing, resolve_model_path
from voice.engines.synthesis import SpeechUnavailable
from voice.ivr.menu import MenuError
from voice.settings import Settings, SettingsError

log = logging.getLogger("voice")


def find_model(settings: Settings) -> Path | None:
    """The Vosk model to load, or None when none is installed (keypad mode); ModelMissing if VOSK_MODEL_PATH is wrong."""
    try:
        return resolve_model_path(settings.vosk_model_path)
    except ModelMissing:
        if settings.vosk_model_path:
            raise
        return None


def check(settings: Settings, model_path: Path | None) -> str:
    """What the start needs, without loading the model: the keypad menu when there is none, and speech."""
    from voice.engines.synthesis import Pyttsx3Engine
    from voice.ivr.live import LiveMenu

    if model_path is None:
        LiveMenu(settings).load()
    Pyttsx3Engine(settings.tts_voice, settings.tts_rate).start()
    return "none" if model_path is None else f"vosk:{model_path.name}"


def mode_line(recognition: str) -> str:
    """The phone service's mode in words, for the log and scripts/run.sh."""
    if recognition == "none":
        return "keypad only (recognition: none; no Mandarin Vosk model installed, see docs/voice.md)"
    return f"speech and keypad (recognition: {recognition})"


def main(argv: list[str] | None = None) -> int:
    """Validate settings and the model (or the keypad menu), then serve until interrupted."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check-model"]:
        try:
            print(resolve_model_path(Settings.from_env({**os.environ, "VOICE_HANDOFF": "local"}).vosk_model_path))
        except (SettingsError, ModelMissing) as exc:
            print(f"voice gateway: {exc}", file=sys.stderr)
            return 2
        return 0
    if args not in ([], ["--check"]):
        print("usage: python -m voice [--check | --check-model]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_masking()  # also Sanic's loggers and handlers, configured later by app.run
    try:
        settings = Settings.from_env()
        model_path = find_model(settings)
        if args == ["--check"]:
            print(mode_line(check(settings, model_path)))
            return 0
        from voice.app import build_services, create_app

        services = build_services(settings, model_path)
        services.speech.start()
    except (SettingsError, ModelMissing, MenuError, SpeechUnavailable) as exc:
        print(f"voice gateway not started: {exc}", file=sys.stderr)
        return 2
    if services.menu is not None:
        log.warning("No Mandarin Vosk model installed: callers are served by keypad only (recognition: none); "
                    "install a model to let them speak (docs/voice.md).")
        log.info("keypad menu from the %s: %d services on the main menu, questions ranked by %s (%s)",
                 services.menu.content, len(services.menu.root.options), services.menu.ranked_by, services.menu.note)
        if services.live_menu is not None and services.live_menu.published is not None:
            log.info("keypad menu follows the desk's publications in %s (checked every %g s)",
                     services.live_menu.published.shown, services.live_menu.interval)
    app = create_app(services)
    log.info("phone service: %s; Rasa %s", mode_line(services.recognition), settings.rasa_url)
    app.run(host=settings.http_host, port=settings.http_port, single_process=True,
            access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
