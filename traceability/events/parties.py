"""The roles a party's events show, given to the parties EPCIS capture registered (issue 12).

Capture registers a consignee it has never heard of (``shipments``), named after its party GLN for
QA to complete. What it is, the events say:

- what a party makes: the outputs of its TransformationEvents and the objects its ``ADD``
  ObjectEvents commission: material lots make it a material supplier, cell lots a cell maker,
  module lots a module assembler, serialised units (GTIN + serial) a brand / pack assembler;
- lots it ships (``shipping``, ``quantityList``) show the same roles as lots it makes;
- what it receives: units, loose or in cartons and pallets, make it a distributor (a ``shipping``
  event's destination, or its own ``receiving`` event); lots, in its own ``receiving`` event only,
  make it the party that consumes them (material lots a cell maker, cell and module lots a brand /
  pack assembler, which builds packs from cells or modules), never a distributor.

A maker role (``access.policy.MAKERS``) lets a party record findings, so it comes only from the
party's own captures (or its operator): another organisation's event adds at most a role that
records nothing, the distributor's of the units shipped to it. Else a shipment of a lot to any party
GLN would register a maker that may record findings on what it was "shipped". Only parties capture
registered and QA has not completed get roles this way: those whose slug is still the ``gln-<PGLN>``
capture gave them. An organisation registered by an operator has the roles its operator gave it:
another party's shipment must not change what it may do. Roles are added, never removed.
Set-based: one query for the lots' kinds, one for the consignees, one insert, whatever the number of
events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cells.models import Lot, LotKind
from suppliers.models import Organisation, OrganisationRole, Role
from traceability.events.models import EpcisEventType
from traceability.events.vocabulary import CLASS_LISTS, CapturedEvent, party_glns
from traceability.gs1 import identifiers
from traceability.gs1.cbv import canonical_epc, cbv_bare

# What making (or shipping) a lot of each kind shows its maker to be, and receiving one its consumer.
MAKES: dict[str, str] = {
    LotKind.MATERIAL: Role.MATERIAL_SUPPLIER,
    LotKind.CELL: Role.CELL_MAKER,
    LotKind.MODULE: Role.MODULE_ASSEMBLER,
}
CONSUMES: dict[str, str] = {LotKind.MATERIAL: Role.CELL_MAKER, LotKind.CELL: Role.BRAND, LotKind.MODULE: Role.BRAND}


def registered_by_capture(organisation: Organisation) -> bool:
    """Whether capture registered the organisation and QA has not completed it yet."""
    return bool(organisation.pgln) and organisation.slug == f"gln-{organisation.pgln}"


def roles_shown(
    rows: Iterable[CapturedEvent], *, owner: Organisation, lots: dict[str, int], units: dict[str, int]
) -> None:
    """Add to the capturing organisation the roles its events show, and to the consignees of the
    units it ships a distributor's, where capture registered them (``registered_by_capture``).
    ``lots`` and ``units``: the lots and units the events name, by canonical identity (capture has
    found or made them all)."""
    rows = list(rows)
    owner_shows = registered_by_capture(owner)
    made: set[int] = set()  # lots the capturer made or shipped
    received: set[int] = set()  # lots the capturer received
    shown: set[tuple[int, str]] = set()
    units_to: set[str] = set()  # consignee GLNs units were shipped to (lots shipped show it nothing)
    for row in rows:
        body, step = row.body, cbv_bare(row.body.get("bizStep", ""))
        commissions = (
            row.type == EpcisEventType.OBJECT and row.action == "ADD" and step not in ("shipping", "receiving")
        )
        if row.type == EpcisEventType.TRANSFORMATION or commissions:
            epcs, classes = ("epcList", "quantityList") if commissions else ("outputEPCList", "outputQuantityList")
            made |= _lots_in(body, (classes,), lots)
            if owner_shows and any(canonical_epc(e) in units for e in body.get(epcs) or ()):
                shown.add((owner.pk, Role.BRAND))
        if row.type != EpcisEventType.OBJECT:
            continue
        if step == "shipping":
            made |= _lots_in(body, CLASS_LISTS, lots)
            if any(_is_unit_or_container(e) for e in body.get("epcList") or ()):
                units_to.update(party_glns(body, "destination"))
        elif step == "receiving" and owner_shows:
            received |= _lots_in(body, CLASS_LISTS, lots)
            if any(_is_unit_or_container(e) for e in body.get("epcList") or ()):
                shown.add((owner.pk, Role.DISTRIBUTOR))
    if units_to:
        consignees = Organisation.objects.filter(pgln__in=sorted(units_to)).only("pk", "pgln", "slug")
        shown |= {(org.pk, Role.DISTRIBUTOR) for org in consignees if registered_by_capture(org)}
    if owner_shows and (made or received):
        lots_read = _lots_read(made | received)
        # What the capturer made or shipped counts when it is its own (a shipment of another's lot says nothing).
        shown |= {
            (owner.pk, MAKES[kind])
            for lot, (kind, lot_owner) in lots_read.items()
            if lot in made and lot_owner == owner.pk
        }
        shown |= {(owner.pk, CONSUMES[lots_read[lot][0]]) for lot in received if lot in lots_read}
    if not shown:
        return
    OrganisationRole.objects.bulk_create(
        [OrganisationRole(organisation_id=org, role=role) for org, role in sorted(shown)], ignore_conflicts=True
    )


def _lots_in(body: dict[str, Any], keys: Iterable[str], lots: dict[str, int]) -> set[int]:
    found = set()
    for key in keys:
        for item in body.get(key) or ():
            if (lot := lots.get(canonical_epc(item.get("epcClass", "")))) is not None:
                found.add(lot)
    return found


def _is_unit_or_container(text: str) -> bool:
    try:
        return isinstance(identifiers.parse(text).identity, identifiers.Sgtin | identifiers.Sscc)
    except identifiers.InvalidIdentifier:
        return False


def _lots_read(lot_ids: set[int]) -> dict[int, tuple[str, int]]:
    """Lot -> (kind, owner id): one query."""
    if not lot_ids:
        return {}
    rows = Lot.objects.filter(pk__any=frozenset(lot_ids)).values_list("pk", "kind", "owner_id")
    return {pk: (kind, lot_owner) for pk, kind, lot_owner in rows}
