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

import hashlib
from collections.abc import Iterable
from typing import Any

from packs.models import Shipment, ShipmentItem
from suppliers.models import Organisation
from traceability.events.vocabulary import PARTY_TYPES, CapturedEvent, Side, party_gln, party_glns
from traceability.gs1.cbv import canonical_epc, cbv_bare
from traceability.ledger.services import BATCH_SIZE

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
        known={gln for row in rows for gln in party_glns(row.body, "source")},
        registered={gln for row in rows for gln in party_glns(row.body, "destination")},
    )
    planned: list[tuple[Shipment, list[ShipmentItem]]] = []
    for row in rows:
        consignee = _party(row.body, "destination", parties)
        if consignee is None:
            continue  # who received it is not said: nothing to notify
        sender = _party(row.body, "source", parties) or owner
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


def _party(event: dict[str, Any], side: Side, parties: dict[str, Organisation]) -> Organisation | None:
    """The organisation a side of the event names: its owning party, else its possessing party."""
    entries = {cbv_bare(e.get("type", "")): e.get(side, "") for e in event.get(f"{side}List") or ()}
    for kind in PARTY_TYPES:
        if (gln := party_gln(entries.get(kind, ""))) and gln in parties:
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
