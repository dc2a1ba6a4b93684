"""The EPCIS document envelope and its date-times, as capture, CSV, query and export write them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from traceability.events.models import EpcisRole

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


# Where each identifier list of an event sits, and its role in the index.
EPC_LISTS = {
    "epcList": EpcisRole.EPC,
    "childEPCs": EpcisRole.CHILD,
    "inputEPCList": EpcisRole.INPUT,
    "outputEPCList": EpcisRole.OUTPUT,
}
CLASS_LISTS = {
    "quantityList": EpcisRole.CLASS,
    "childQuantityList": EpcisRole.CHILD_CLASS,
    "inputQuantityList": EpcisRole.INPUT_CLASS,
    "outputQuantityList": EpcisRole.OUTPUT_CLASS,
}


def identifiers_named(event: dict[str, Any]) -> Iterator[tuple[EpcisRole, str]]:
    """(role, identifier as sent) of everything an event names: its parent, its EPC lists and the
    classes of its quantity lists."""
    if parent := event.get("parentID"):
        yield EpcisRole.PARENT, parent
    for key, role in EPC_LISTS.items():
        for epc in event.get(key) or ():
            yield role, epc
    for key, role in CLASS_LISTS.items():
        for item in event.get(key) or ():
            yield role, item["epcClass"]
