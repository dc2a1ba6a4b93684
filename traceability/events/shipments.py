"""Shipments from EPCIS ObjectEvents: what a consignee trace reads.

A ``shipping`` event names what left (cartons, pallets or loose units in ``epcList``) and, in its
``destinationList``, who received it: the ``owning_party`` (else the ``possessing_party``) as a
PGLN, and the ``location`` as an SGLN. It becomes one ``Shipment`` from the sender (the source's
owning party, else the capturing organisation), referenced by its despatch advice or bill of
lading (``bizTransactionList``) or else its eventID. A ``receiving`` event with the same business
transaction marks the shipment received, when the capturing organisation is its consignee (a
receipt of what was not shipped to it is refused: ``ownership``).
Consignees the ledger does not know yet are registered, named after their GLN, for QA to complete;
their roles are what their events show (``parties``: units received make a distributor, lots the
party that consumes them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

from packs.models import Shipment, ShipmentItem
from suppliers.models import Organisation
from traceability.gs1 import identifiers
from traceability.gs1.cbv import canonical_epc, cbv_bare
from traceability.ledger.services import BATCH_SIZE


class CapturedEvent(Protocol):
    """What shipments read of a captured event (new, or stored)."""

    event_id: str
    event_time: dt.datetime
    body: dict[str, Any]


_PARTY_TYPES = ("owning_party", "possessing_party")
_REFERENCE_TYPES = ("desadv", "bol", "po", "inv")
_REFERENCE_LENGTH = Shipment._meta.get_field("reference").max_length


def shipments_derive(
    rows: Iterable[CapturedEvent], *, containers: dict[str, int], units: dict[str, int], owner: Organisation
) -> int:
    """Record the shipments the events describe; returns how many were new."""
    shipping = [row for row in rows if cbv_bare(row.body.get("bizStep", "")) == "shipping"]
    receiving = [row for row in rows if cbv_bare(row.body.get("bizStep", "")) == "receiving"]
    created = _shipments_record(shipping, containers=containers, units=units, owner=owner) if shipping else 0
    if receiving:
        _receipts_record(receiving, consignee=owner)
    return created


def _shipments_record(
    rows: list[CapturedEvent], *, containers: dict[str, int], units: dict[str, int], owner: Organisation
) -> int:
    parties = _organisations(
        known={gln for row in rows for gln in _party_glns(row.body, "sourceList")},
        registered={gln for row in rows for gln in _party_glns(row.body, "destinationList")},
    )
    planned: list[tuple[Shipment, list[ShipmentItem]]] = []
    for row in rows:
        consignee = _party(row.body, "destinationList", parties)
        if consignee is None:
            continue  # who received it is not said: nothing to notify
        sender = _party(row.body, "sourceList", parties) or owner
        items = [
            ShipmentItem(container_id=containers[c]) if c in containers else ShipmentItem(unit_id=units[c])
            for c in (canonical_epc(epc) for epc in row.body.get("epcList") or ())
            if c in containers or c in units
        ]
        shipment = Shipment(owner=sender, reference=_reference(row), consignee=consignee, shipped_at=row.event_time)
        planned.append((shipment, items))
    existing = set(
        Shipment.objects.filter(reference__in=[s.reference for s, _ in planned]).values_list("owner_id", "reference")
    )
    fresh = [(s, items) for s, items in planned if (s.owner_id, s.reference) not in existing]
    created = Shipment.objects.bulk_create([s for s, _ in fresh], batch_size=BATCH_SIZE)
    for shipment, (_, items) in zip(created, fresh, strict=True):
        for item in items:
            item.shipment = shipment
    ShipmentItem.objects.bulk_create([item for _, items in fresh for item in items], batch_size=BATCH_SIZE)
    return len(created)


def _receipts_record(rows: list[CapturedEvent], *, consignee: Organisation) -> None:
    """Mark received the shipments addressed to the capturing organisation. A receipt of what was
    not shipped to it was refused before (``ownership``); one of what was, under a reference that
    is none of its shipments', changes nothing, whoever's shipment has that reference (saying so
    would tell the capturer another organisation's shipment exists)."""
    received = {_reference(row): row.event_time for row in rows}
    shipments = list(Shipment.objects.filter(reference__in=received, received_at__isnull=True, consignee=consignee))
    for shipment in shipments:
        shipment.received_at = received[shipment.reference]
    Shipment.objects.bulk_update(shipments, ["received_at"], batch_size=BATCH_SIZE)


def _reference(row: CapturedEvent) -> str:
    """The despatch advice (or other business transaction) the shipment travels under, else its event."""
    transactions = {
        cbv_bare(t.get("type", "")): t.get("bizTransaction", "") for t in row.body.get("bizTransactionList") or ()
    }
    for kind in _REFERENCE_TYPES:
        if value := transactions.get(kind):
            return _fitted(value)
    return _fitted(row.event_id)


def _fitted(value: str) -> str:
    if _REFERENCE_LENGTH is None or len(value) <= _REFERENCE_LENGTH:
        return value
    return "sha1:" + hashlib.sha1(value.encode()).hexdigest()  # noqa: S324 (a name, not a secret)


def _party_glns(event: dict[str, Any], key: str) -> Iterable[str]:
    for entry in event.get(key) or ():
        if cbv_bare(entry.get("type", "")) in _PARTY_TYPES and (gln := _gln(entry.get(key[:-4], ""))):
            yield gln


def _gln(value: str) -> str | None:
    try:
        identity = identifiers.parse(value).identity
    except identifiers.InvalidIdentifier:
        return None
    return getattr(identity, "gln", None)


def _party(event: dict[str, Any], key: str, parties: dict[str, Organisation]) -> Organisation | None:
    entries = {cbv_bare(e.get("type", "")): e.get(key[:-4], "") for e in event.get(key) or ()}
    for kind in _PARTY_TYPES:
        if (gln := _gln(entries.get(kind, ""))) and gln in parties:
            return parties[gln]
    return None


def _organisations(*, known: set[str], registered: set[str]) -> dict[str, Organisation]:
    """Organisations by party GLN. Consignees (``registered``) the ledger does not know are registered,
    with no role until ``parties.roles_shown`` reads what they received; an unknown sender is not
    registered (the capturing organisation ships, then)."""
    found = {org.pgln: org for org in Organisation.objects.filter(pgln__in=known | registered) if org.pgln}
    missing = sorted(registered - found.keys())
    Organisation.objects.bulk_create(
        [Organisation(name=f"GLN {gln} (from EPCIS)", slug=f"gln-{gln}", pgln=gln) for gln in missing],
        ignore_conflicts=True,
    )
    if missing:
        found.update((org.pgln, org) for org in Organisation.objects.filter(pgln__in=missing) if org.pgln)
    return found
