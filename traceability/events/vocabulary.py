"""The EPCIS document envelope and its date-times, as capture, CSV, query and export write them."""

from __future__ import annotations

import datetime as dt
from typing import Any

GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def epcis_document(events: list[dict[str, Any]], *, context: Any = None) -> dict[str, Any]:
    """An EPCISDocument holding ``events``, created now."""
    return {
        "@context": context or [GS1_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_iso(dt.datetime.now(dt.UTC)),
        "epcisBody": {"eventList": events},
    }


def utc_iso(value: dt.datetime) -> str:
    """A date-time as EPCIS documents write it (``Z`` for UTC)."""
    return value.isoformat().replace("+00:00", "Z")


def listed(value: Any) -> list[Any]:
    """A JSON-LD value that may be one item or a list (``@context``), as a list."""
    return value if isinstance(value, list) else [value] if value else []
