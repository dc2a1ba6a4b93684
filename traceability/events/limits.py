"""What an EPCIS input may hold beyond what the standard says, so hostile or broken input is refused
before any work starts, naming what, where and why, instead of failing deep in a job or the database.

The standard bounds none of these; the ledger's storage and the Python that reads it do:

- Nesting: a JSON reader, a schema validator and a serialiser recurse once per level, so
  ``'[' * 100000`` exhausted Python's stack (RecursionError). The deepest part of a standard event
  (a sensor report) sits 8 levels into its document; ``MAX_DEPTH`` leaves room for extensions.
- Text: PostgreSQL stores no NUL character (U+0000), in text or in jsonb, and XML 1.0 carries no
  other C0 control character but tab, line feed and carriage return, nor a lone surrogate: an
  event holding one could not be stored, or not be exported in the XML binding.
- Identifiers: eventIDs, EPCs, classes, locations and parties are stored in columns of 255
  characters; an eventID or transformationID also names its genealogy record (200 characters,
  with room left for "recorded again at <position>"). GS1's own keys are far shorter (an SGTIN
  serial is at most 20 characters); only private URIs come near.
- Time: a date-time becomes a UTC instant in the database; ``0001-01-01T00:00:00+14:00`` is before
  year 1 in UTC (OverflowError). Instants from 1900 to 2999 cover every real event with room.
"""

from __future__ import annotations

import datetime as dt
import re

MAX_DEPTH = 32
"""Arrays and objects nested in one document (the document itself is level 1)."""

IDENTIFIER_MAX = 255
RECORD_NAME_MAX = 160
"""eventID and transformationID: they also name the genealogy record derived from the event."""

EVENT_TYPE_MAX = 20
"""An extension event type is stored in a column of 20 characters (the standard's longest is 19)."""

CHECKED_FIRST_MAX = 8 * 1024 * 1024
"""A capture document up to this size is checked in the request (read whole: about 0.1 s for 8 MB);
a larger one by its job, which leaves the ledger unchanged when it refuses it."""

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)

# NUL and the C0 controls XML 1.0 forbids (tab, LF and CR are allowed), and lone surrogates.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def text_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as EPCIS text, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    character, place = found.group(), found.start()
    if character == "\x00":
        return f"contains a NUL character (U+0000) at position {place}, which the ledger cannot store"
    if "\ud800" <= character <= "\udfff":
        return f"contains a lone surrogate (U+{ord(character):04X}) at position {place}, which is not a character"
    return (
        f"contains the control character U+{ord(character):04X} at position {place}; EPCIS text may hold"
        " no control character but tab, line feed and carriage return"
    )


def escaped(text: str) -> str:
    """``text`` with each character ``text_reason`` refuses written as its escape (``\\u0000``)."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def time_reason(value: dt.datetime) -> str | None:
    """Why an aware date-time is outside the instants the ledger stores, or None."""
    offset = value.utcoffset()
    if offset is None:
        return None
    # Compared without converting: 0001-01-01T00:00:00+14:00 has no UTC form in Python's range.
    naive_utc_floor, naive_utc_ceiling = (
        (EARLIEST + offset).replace(tzinfo=None),
        (LATEST + offset).replace(tzinfo=None),
    )
    if naive_utc_floor <= value.replace(tzinfo=None) < naive_utc_ceiling:
        return None
    return f"is outside the instants the ledger stores, {_shown(EARLIEST)} to before {_shown(LATEST)}"


def parsed_time(text: str) -> dt.datetime | None:
    """An RFC 3339 date-time with its offset, or None when ``text`` is not one."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _shown(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
