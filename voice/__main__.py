"""`python -m voice`: start the phone gateway, or refuse with one sentence that says what to fix.

`python -m voice --check-model` only checks that a Vosk model is found (exit 0) and prints its path.
"""

from __future__ import annotations

import logging
import os
import sys

from common.privacy import install_masking
from voice.recognition import ModelMissing, resolve_model_path
from voice.settings import Settings, SettingsError
from voice.tts import SpeechUnavailable


def main(argv: list[str] | None = None) -> int:
    """Validate settings and the model, then serve until interrupted."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check-model"]:
        try:
            print(resolve_model_path(Settings.from_env({**os.environ, "VOICE_HANDOFF": "local"}).vosk_model_path))
        except (SettingsError, ModelMissing) as exc:
            print(f"voice gateway: {exc}", file=sys.stderr)
            return 2
        return 0
    if args:
        print("usage: python -m voice [--check-model]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_masking()  # also Sanic's loggers and handlers, configured later by app.run
    try:
        settings = Settings.from_env()
        model_path = resolve_model_path(settings.vosk_model_path)
        from voice.app import build_services, create_app

        services = build_services(settings, model_path)
        services.speech.start()
    except (SettingsError, ModelMissing, SpeechUnavailable) as exc:
        print(f"voice gateway not started: {exc}", file=sys.stderr)
        return 2
    app = create_app(services)
    logging.getLogger(__name__).info("Vosk model %s; Rasa %s", model_path, settings.rasa_url)
    app.run(host=settings.http_host, port=settings.http_port, single_process=True,
            access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
