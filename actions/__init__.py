"""The action server (rasa-sdk): custom actions, one module per user goal.

rasa-sdk registers every Action subclass found in this package's modules.
Start with: python -m rasa_sdk --actions actions --port 5055
"""
import os

from common.privacy import install_masking

install_masking()

if os.environ.get("KB_PRELOAD") == "1":  # the action server indexes at start, not on the first question
    from actions.kb_service import kb_service

    kb_service.start()
