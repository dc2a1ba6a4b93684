"""Sets of lots and containers a scoped read is bounded by: what is upstream of a set of units, and
the containers that carried units somewhere (issue 12: a regulator's grant covers units sold into
its jurisdiction and the lots upstream of them, an investigation's subject and what it reached).

Set-based, whatever the number of units: the units come in as a subquery and are never read into
Python; each function is a fixed number of queries, one per level of container nesting.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from packs.models import ShipmentItem, Unit, UnitPacking
from traceability.genealogy.forward import walk
from traceability.genealogy.models import LotLink, SegmentInput, SegmentMember, UnitLink
from traceability.genealogy.packing import containers_around, containers_within
from traceability.genealogy.receipts import into_countries
from traceability.genealogy.snapshot import Snapshot


def lots_upstream_of(units: QuerySet[Unit], *, snapshot: Snapshot) -> frozenset[int]:
    """The lots any of ``units`` was made from, at any depth, at ``snapshot``: the inputs of the
    segments holding them (one query), those of the units they were rebuilt from (a refurbished
    unit: two queries, when there is one), and everything upstream of those lots (one recursive
    walk)."""
    unit_ids = units.values("pk")
    rebuilt_from = set(
        UnitLink.objects.filter(snapshot.valid(), output_unit__in=unit_ids).values_list("input_unit_id", flat=True)
    )
    if rebuilt_from:
        rebuilt_from |= {link.target for link in walk(UnitLink, snapshot, rebuilt_from, forward=False)}
    made = Q(unit__in=unit_ids)
    if rebuilt_from:
        made |= Q(unit_id__any=frozenset(rebuilt_from))
    members = SegmentMember.objects.filter(snapshot.valid(), made)
    direct = set(SegmentInput.objects.filter(segment__in=members.values("segment_id")).values_list("lot_id", flat=True))
    if not direct:
        return frozenset()
    return frozenset(direct | {link.target for link in walk(LotLink, snapshot, direct, forward=False)})


def containers_shipped_into(countries: Iterable[str]) -> frozenset[int]:
    """The containers shipped into any of ``countries`` (to a consignee registered there, or to a
    site there), and those packed in them at any depth: as ``units_sold_into`` reads a shipment."""
    wanted = sorted(set(countries))
    if not wanted:
        return frozenset()
    shipped = ShipmentItem.objects.filter(into_countries(wanted, through="shipment__"), container__isnull=False)
    return containers_within(shipped.values_list("container_id", flat=True))


def containers_holding(units: QuerySet[Unit]) -> frozenset[int]:
    """The containers any of ``units`` was ever packed in, and those they were packed in, at any
    depth (one query per level of nesting)."""
    return containers_around(
        UnitPacking.objects.filter(unit__in=units.values("pk")).values_list("container_id", flat=True)
    )
