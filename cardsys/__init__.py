"""Card information system adapter: identity verification, card status, application progress, loss reports.

A library with no Rasa or web-framework imports; the action server calls it. Start with
`SqlCardSystem.from_settings()` (CARDSYS_DATABASE_URL) and `python -m cardsys.seed` for demo data.
`cardsys.idnumber` and `cardsys.numbers` are pure Python and import nothing else, so they also
work on the Rasa side (Python 3.10, SQLAlchemy 1.4); the names below are imported lazily for that reason.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CardSystem": "cardsys.adapter", "SqlCardSystem": "cardsys.adapter",
    "ApplicationProgress": "cardsys.results", "CardStatus": "cardsys.results", "CitizenLookup": "cardsys.results",
    "CodeSent": "cardsys.results", "LossResult": "cardsys.results", "VerificationRequired": "cardsys.results",
    "VerificationResult": "cardsys.results", "VerifiedCitizen": "cardsys.results",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the public names on first use."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cardsys' has no attribute {name!r}")
