"""The EPCIS document envelope and its date-times, as capture, CSV, query and export write them;
and what the rules of capture read of an event (``CapturedEvent``, the parties it names)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from traceability.events.models import EpcisRole
from traceability.gs1 import identifiers
from traceability.gs1.cbv import cbv_bare

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


class CapturedEvent(Protocol):
    """What derivation and the ownership rules read of a captured event: a new one on its way to
    the store (``capture._Event``) or a stored ``EpcisEvent``."""

    event_id: str
    type: str
    action: str
    event_time: dt.datetime
    body: dict[str, Any]


Side = Literal["source", "destination"]
SIDES: tuple[Side, ...] = ("source", "destination")

# The source and destination types that name a party (CBV 2.0, 8.6): who owns or holds the goods,
# the owner first where both are named.
PARTY_TYPES = ("owning_party", "possessing_party")


def parties_named(event: dict[str, Any], side: Side) -> Iterator[str]:
    """The parties of an event's ``sourceList`` or ``destinationList``, as sent."""
    for entry in event.get(f"{side}List") or ():
        if cbv_bare(entry.get("type", "")) in PARTY_TYPES and (party := entry.get(side)):
            yield party


def party_gln(text: str) -> str | None:
    """The GLN a party names (a PGLN or an SGLN, as sent); None when it names none the ledger reads."""
    try:
        return getattr(identifiers.parse(text).identity, "gln", None)
    except identifiers.InvalidIdentifier:
        return None


def party_glns(event: dict[str, Any], side: Side) -> Iterator[str]:
    """The GLNs of the parties of an event's ``sourceList`` or ``destinationList``."""
    for party in parties_named(event, side):
        if gln := party_gln(party):
            yield gln
