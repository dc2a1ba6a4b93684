"""What is wrong with an EPCIS document: every problem names the event, the place and the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from traceability.events.limits import escaped


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document.

    ``where`` is a JSON pointer into the JSON binding (``/epcisBody/eventList/3/epcList/0``) or,
    for an XML document, the element's path with its line (``EPCISBody/EventList/ObjectEvent[4]/
    epcList/epc[1] (line 52)``). ``event_index`` counts events from 0 in document order, and
    ``event_id`` is the event's ``eventID`` when it has one.
    """

    where: str
    message: str
    event_index: int | None = None
    event_id: str | None = None

    @property
    def order(self) -> int:
        """Where the problem falls in the document: the document's own problems first, then by event."""
        return -1 if self.event_index is None else self.event_index

    def __str__(self) -> str:
        event = ""
        if self.event_index is not None:
            event = f"event {self.event_index}" + (f" ({self.event_id})" if self.event_id else "") + ": "
        return f"{event}{self.where or '/'}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """As the capture keeps it: a NUL or control character the problem quotes is written as its
        escape, since the database stores none (``limits``)."""
        return {
            "event_index": self.event_index,
            "event_id": None if self.event_id is None else escaped(self.event_id),
            "where": escaped(self.where),
            "message": escaped(self.message),
        }


class DocumentRejected(ValueError):
    """A document that cannot be applied; nothing of it was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"document rejected, {len(self.problems)} problem(s): {shown}{more}")
