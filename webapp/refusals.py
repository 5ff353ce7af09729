"""The one error of the web app's services: a change that did not happen, with the words to show."""
from __future__ import annotations


class Refused(Exception):
    """A change that did not happen, with the words to show; kind: not_found | forbidden | conflict.

    Someone else was first (a simultaneous claim, a work order another agent took), the record is not
    the agent's, or it does not exist. The desk's routes answer 404 / 403 / 409 by kind.
    """

    def __init__(self, message: str, kind: str = "conflict") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind
