"""Sets of lots and containers a scoped read is bounded by: what is upstream of a set of units, and
the containers that carried units somewhere (issue 12: a regulator's grant covers units sold into
its jurisdiction and the lots upstream of them, an investigation's subject and what it reached).

Set-based, whatever the number of units: the units come in as a subquery and are never read into
Python; each function is a fixed number of queries, one per level of container nesting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from django.db.models import Q, QuerySet

from packs.models import ShipmentItem, Unit, UnitPacking
from traceability.genealogy.forward import walk
from traceability.genealogy.models import LotLink, SegmentInput, SegmentMember, UnitLink
from traceability.genealogy.packing import containers_around, containers_within
from traceability.genealogy.receipts import into_countries
from traceability.genealogy.snapshot import Snapshot
from traceability.genealogy.trace import Link

K = TypeVar("K")


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


def lots_upstream_each(
    seeds: Mapping[K, tuple[Iterable[int], Iterable[int]]], *, snapshot: Snapshot
) -> dict[K, frozenset[int]]:
    """For each key's (lots, units), the lots upstream of them at ``snapshot``: those each lot was
    made from, at any depth (not the lot itself), and as ``lots_upstream_of`` says for the units.
    A fixed number of queries whatever the number of keys (none without seeds): a unit walk, the
    segments holding the units and their inputs, and a lot walk, each for every key at once; each
    key's share is then found in the links read."""
    lot_seeds = {key: frozenset(lots) for key, (lots, _) in seeds.items()}
    unit_seeds = {key: frozenset(units) for key, (_, units) in seeds.items()}
    subject_units = frozenset().union(*unit_seeds.values())
    rebuilt = _links_from(walk(UnitLink, snapshot, subject_units, forward=False) if subject_units else [])
    units_of = {key: _reached(units, rebuilt) | units for key, units in unit_seeds.items()}
    every_unit = frozenset().union(*units_of.values())
    made: dict[int, set[int]] = {}
    if every_unit:
        members = SegmentMember.objects.filter(snapshot.valid(), unit_id__any=every_unit)
        segments: dict[int, set[int]] = {}
        for unit, segment in members.values_list("unit_id", "segment_id"):
            segments.setdefault(segment, set()).add(unit)
        inputs = SegmentInput.objects.filter(segment_id__any=frozenset(segments)) if segments else None
        for segment, lot in inputs.values_list("segment_id", "lot_id") if inputs is not None else []:
            for unit in segments[segment]:
                made.setdefault(unit, set()).add(lot)
    direct = {key: frozenset(lot for unit in units for lot in made.get(unit, ())) for key, units in units_of.items()}
    starts = frozenset().union(*lot_seeds.values(), *direct.values())
    inputs_of = _links_from(walk(LotLink, snapshot, starts, forward=False) if starts else [])
    return {key: _reached(lot_seeds[key] | direct[key], inputs_of) | direct[key] for key in seeds}


def _links_from(links: Iterable[Link]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for link in links:
        found.setdefault(link.source, set()).add(link.target)
    return found


def _reached(starts: Iterable[int], links: Mapping[int, set[int]]) -> frozenset[int]:
    """What ``links`` reach from ``starts`` in one step or more (not the starts themselves, unless
    reached again)."""
    reached: set[int] = set()
    todo = [target for start in starts for target in links.get(start, ())]
    while todo:
        node = todo.pop()
        if node not in reached:
            reached.add(node)
            todo.extend(links.get(node, ()))
    return frozenset(reached)


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
