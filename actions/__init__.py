"""The action server (rasa-sdk): custom actions, one module per user goal.

rasa-sdk registers every Action subclass found in this package's modules.
Start with: python -m actions.server -p 5055 (rasa-sdk's app, answering only Rasa: actions/server.py)
"""
import os

from common.privacy import install_masking

# before anything logs: every record of the process is masked, rasa-sdk's and Sanic's loggers included
install_masking()

# Index at start, not on the first question, but only in Sanic's serving worker: the main process
# imports this package too, and a second copy of the model there would double the memory.
if os.environ.get("KB_PRELOAD") == "1" and os.environ.get("SANIC_WORKER_NAME"):
    from actions.kb_service import kb_service

    kb_service.start()
