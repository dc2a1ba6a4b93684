"""The domain's refusals, as types: each says what was refused and why, with a stable code.

A service or selector raises a ``DomainError`` subclass named for what happened (``TraceInProgress``,
``UnknownSubject``, ``NoFinishedRun``…); interfaces turn them into their own kind of error in one
place each, by type: REST in ``traceability.api.errors`` (a status per type, the body
``{"code", "message", "field"}``), the CLI in ``traceability.management.base`` (a ``CommandError``
with the message). No interface guesses a code from state or catches errors one by one.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A request the domain refuses.

    ``code`` is stable and snake_case (clients branch on it; the REST API returns it as it is);
    the message is one line for people; ``field`` names the input at fault, when the one raising
    knows it (an interface may name it otherwise: see ``traceability.api.errors.input_named``).
    """

    code: ClassVar[str] = "refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
