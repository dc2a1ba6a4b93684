"""The forward trace: from seed lots and units to the segments and units they reach, set-based."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import QuerySet

from cells.models import Lot
from packs.models import Unit
from traceability.core.db import any_sql, in_cte_sql
from traceability.genealogy.models import (
    Exposure,
    LotLink,
    Segment,
    SegmentInput,
    SegmentMember,
    UnitLink,
)
from traceability.genealogy.snapshot import Snapshot
from traceability.genealogy.trace import Link, Reached, SegmentReached, combine, extend, reach, segments_reached

if TYPE_CHECKING:
    from traceability.genealogy.counts import Sums


def walk(
    model: type[LotLink] | type[UnitLink], snapshot: Snapshot, seeds: Iterable[int], *, forward: bool
) -> list[Link]:
    """Every valid link reachable from ``seeds`` over lot links or unit links, in either
    direction: one recursive query (its ``UNION`` drops repeated rows, so a cycle that slipped
    into the data ends the walk)."""
    what, kinds = ("lot", "LL") if model is LotLink else ("unit", "UU")
    source, target = (f"input_{what}_id", f"output_{what}_id")
    if not forward:
        source, target = target, source
    seeded, seed_params = any_sql("l.id", seeds, connection)
    valid, valid_params = snapshot.valid_sql("l.transformation_id")
    nodes, links = (Lot if model is LotLink else Unit)._meta.db_table, model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE reached(node) AS ("
            f" SELECT l.id FROM {nodes} l WHERE {seeded}"
            f" UNION SELECT l.{target} FROM {links} l JOIN reached r ON l.{source} = r.node WHERE {valid}"
            f") SELECT l.{source}, l.{target}, l.exposure = %s, l.transformation_id FROM {links} l"
            f" WHERE {in_cte_sql(f'l.{source}', 'reached', 'node', connection)} AND {valid}",
            [*seed_params, *valid_params, Exposure.DEFINITE.value, *valid_params],
        )
        return [Link(s, t, bool(d), record, kinds) for s, t, d, record in cursor.fetchall()]


@dataclass(frozen=True)
class Walked:
    """What a forward trace walked on its way, kept so that a part of its result can be told
    without walking again: which part is downstream of some of the lots it reached
    (``downstream``). A result read back from a run has none of it."""

    lot_links: list[Link]  # every valid lot link out of a reached lot
    segment_inputs: list[tuple[int, int, bool, int, int, int | None, bool]]  # ``_segment_inputs`` of the lots
    unit_starts: list[tuple[int, int]]  # (unit, segment): valid member rows of units with unit links out
    unit_links: list[Link]  # every valid unit link reachable from those units (and the subject units)


@dataclass
class Forward:
    """What a forward trace reached: lots, segments (their units), and units reached unit-to-unit."""

    snapshot: Snapshot
    lots: dict[int, Reached]
    segments: dict[int, SegmentReached]
    units: dict[int, Reached]  # subject units and units reached through unit links only
    # segment -> (unit_count, last_transformation_id), read with the segments when there is no cost
    sizes: dict[int, tuple[int, int]] | None = None
    sums: Sums | None = field(default=None, repr=False, compare=False)  # filled on first use
    # A stored result reads its segments' paths only for the segments a page needs.
    path_loader: Callable[[set[int]], dict[int, tuple[Link, ...]]] | None = field(default=None, repr=False)
    # ``party_part`` of a party that received nothing: the segments list only this owner's units,
    # and ``bounds`` holds each segment's (smallest, largest unit id, member rows) of that owner.
    owner_id: int | None = None
    part_of: int | None = None  # the party whose ``party_part`` this is, once taken (whole or not)
    bounds: dict[int, tuple[int, int, int]] | None = field(default=None, repr=False, compare=False)
    walked: Walked | None = field(default=None, repr=False, compare=False)

    def segment_ids(self, *, definite: bool | None = None) -> list[int]:
        return sorted(s for s, r in self.segments.items() if definite is None or r.definite == definite)

    def seed_lot_ids(self) -> frozenset[int]:
        """The lots it was traced from: those reached with no step."""
        return frozenset(lot for lot, reached in self.lots.items() if not reached.path)

    def segment_paths(self, segment_ids: set[int]) -> dict[int, tuple[Link, ...]]:
        if self.path_loader is not None:
            return self.path_loader(segment_ids)
        return {segment: self.segments[segment].path for segment in segment_ids}


def forward_trace(
    *, snapshot: Snapshot, seed_lot_ids: Iterable[int] = (), seed_unit_ids: Iterable[int] = ()
) -> Forward:
    """Everything downstream of the seeds: one query per level of the lot graph, one for the
    segments, and for unit-to-unit links one per level from the affected units."""
    seeds = sorted(set(seed_lot_ids))
    lot_links = walk(LotLink, snapshot, seeds, forward=True) if seeds else []
    lots = reach(seeds, lot_links) if seeds else {}
    inputs = _segment_inputs(lots.keys()) if lots else []
    sizes = {segment: (count, last) for segment, _, _, count, last, _, _ in inputs}
    segments = segments_reached(lots, ((segment, lot, definite) for segment, lot, definite, _, _, _, _ in inputs))
    units, unit_starts, unit_links = _units_through_unit_links(snapshot, segments, sorted(set(seed_unit_ids)))
    return Forward(
        snapshot=snapshot,
        lots=lots,
        segments=segments,
        units=units,
        sizes=sizes,
        walked=Walked(lot_links, inputs, unit_starts, unit_links),
    )


def downstream(forward: Forward, lot_ids: Iterable[int]) -> tuple[set[int], set[int]] | None:
    """The segments and the units reached through unit links (``forward.units``) of ``forward``
    that are downstream of ``lot_ids``, lots it reached: what a trace from those lots at the same
    position reaches of it, told from what ``forward`` walked, with no query. Everything
    downstream of a reached lot was reached too, and the walk kept every link out of it, so the
    links walked already close over it. None when ``forward`` kept no walk (a stored result)."""
    walked = forward.walked
    if walked is None:
        return None
    lots = set(lot_ids) & forward.lots.keys()
    outgoing: dict[int, list[int]] = {}
    for link in walked.lot_links:
        outgoing.setdefault(link.source, []).append(link.target)
    frontier = list(lots)
    while frontier:
        frontier = [target for lot in frontier for target in outgoing.get(lot, ()) if target not in lots]
        lots.update(frontier)
    segments = {segment for segment, lot, *_ in walked.segment_inputs if lot in lots} & forward.segments.keys()
    return segments, _linked_from(walked, segments) & forward.units.keys()


def _linked_from(walked: Walked, segments: set[int]) -> set[int]:
    """The units reached through unit links from the members of ``segments`` (as
    ``_units_through_unit_links`` reaches them: from each start, not counting the start itself)."""
    starts = {unit for unit, segment in walked.unit_starts if segment in segments}
    if not starts:
        return set()
    outgoing: dict[int, list[int]] = {}
    for link in walked.unit_links:
        outgoing.setdefault(link.source, []).append(link.target)
    linked: set[int] = set()
    for start in starts:
        seen: set[int] = set()
        frontier = [start]
        while frontier:
            frontier = [target for unit in frontier for target in outgoing.get(unit, ()) if target not in seen]
            seen.update(frontier)
        linked |= seen - {start}
    return linked


def _segment_inputs(lot_ids: Iterable[int]) -> list[tuple[int, int, bool, int, int, int | None, bool]]:
    """(segment, input lot, definite?, unit count, newest record, owner, owners mixed?) of every
    segment the lots feed.

    Raw rows: a million-unit trace reads ~14,000 of them, where the ORM's per-row work cost more
    than the query. The owner columns are on the segment rows read anyway: a party's share sums
    the segments of one owner without reading the party roll-up (``parties``)."""
    in_lots, params = any_sql("i.lot_id", lot_ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.segment_id, i.lot_id, s.exposure = %s, s.unit_count, s.last_transformation_id,"
            f" s.owner_id, s.owners_mixed"
            f" FROM {SegmentInput._meta.db_table} i JOIN {Segment._meta.db_table} s ON s.id = i.segment_id"
            f" WHERE {in_lots}",
            [Exposure.DEFINITE.value, *params],
        )
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return rows
    return [  # SQLite: 0 / 1
        (segment, lot, bool(definite), count, last, owner, bool(mixed))
        for segment, lot, definite, count, last, owner, mixed in rows
    ]


def _units_through_unit_links(
    snapshot: Snapshot, segments: dict[int, SegmentReached], seed_units: list[int]
) -> tuple[dict[int, Reached], list[tuple[int, int]], list[Link]]:
    """The subject units, and units made from affected units (refurbished): unit links are rare,
    so only affected units that have outgoing links are looked at, found in one query. With them,
    what was walked: the (unit, segment) rows of those units, and the unit links."""
    starts: dict[int, Reached] = {unit: Reached(True, ()) for unit in seed_units}
    rows: list[tuple[int, int]] = []
    sources = sorted(set(UnitLink.objects.filter(snapshot.valid()).values_list("input_unit_id", flat=True)))
    if segments and sources:
        members_rows = (
            SegmentMember.objects.filter(
                snapshot.valid(), segment_id__any=set(segments), unit_id__any=frozenset(sources)
            )
            .values_list("unit_id", "segment_id", "transformation_id")
            .order_by()
        )
        for unit, segment, record in members_rows:
            rows.append((unit, segment))
            via = segments[segment]
            step = Link(via.via_lot, unit, via.definite, record, "LU")
            starts[unit] = combine(starts.get(unit), Reached(via.definite, (*via.path, step)))
    if not starts:
        return {}, rows, []
    links = walk(UnitLink, snapshot, starts, forward=True)
    result = {unit: starts[unit] for unit in seed_units}
    for start, start_reached in starts.items():
        for node, route in reach([start], links).items():
            if node != start:
                result[node] = combine(result.get(node), _carry(start_reached, route.path))
    return result, rows, links


def _carry(reached: Reached, path: Iterable[Link]) -> Reached:
    for link in path:
        reached = extend(reached, link)
    return reached


def members(snapshot: Snapshot, segment_ids: Sequence[int]) -> QuerySet[SegmentMember]:
    return SegmentMember.objects.filter(snapshot.valid(), segment_id__any=set(segment_ids)).order_by()


def forward_unit_ids(forward: Forward) -> QuerySet:
    """The affected units as a subquery (segments' members valid at the snapshot)."""
    return members(forward.snapshot, forward.segment_ids()).values("unit_id")
