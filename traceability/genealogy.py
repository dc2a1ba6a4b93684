"""Reads over the genealogy that feed the pure trace algorithm, set-based.

Every read is taken *at a ledger position* (a ``Snapshot``): a record counts when it was recorded
at or before the position and had not been retracted by then. Because ledger writes are
serialised and transformation ids grow with position, "recorded at or before P" is
"transformation id ≤ the last id recorded at P", which SegmentMember's primary key answers in an
index-only scan; the retracted ids are few and are passed as constants.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from cells.models import Lot
from packs.models import ContainerPacking, ShipmentItem, Unit, UnitPacking
from traceability.lookups import any_sql, in_cte_sql
from traceability.models import (
    Exposure,
    LedgerHead,
    LotLink,
    RepeatedUnit,
    Segment,
    SegmentContainer,
    SegmentInput,
    SegmentMember,
    Transformation,
    UnitLink,
    exposure_name,
)
from traceability.trace import Link, Reached, SegmentReached, combine, extend, reach, segments_reached

PAGE = 5_000
REPEATED_AS_CONSTANTS = 20_000


@dataclass(frozen=True)
class Snapshot:
    position: int
    last_transformation_id: int
    retracted: frozenset[int] = field(default_factory=frozenset)

    def valid(self, prefix: str = "transformation") -> Q:
        """Rows whose transformation counts at this position (``prefix`` names the FK path)."""
        condition = Q(**{f"{prefix}_id__lte": self.last_transformation_id})
        if self.retracted:
            condition &= ~Q(**{f"{prefix}_id__in": sorted(self.retracted)})
        return condition

    def valid_sql(self, column: str) -> tuple[str, list]:
        """``valid`` for hand-written SQL: ``column`` names the transformation id."""
        sql, params = f"{column} <= %s", [self.last_transformation_id]
        if self.retracted:
            retracted, more = any_sql(column, self.retracted, connection)
            sql, params = f"{sql} AND NOT ({retracted})", [*params, *more]
        return sql, params


def ledger_snapshot(position: int | None = None) -> Snapshot:
    """The ledger as it stood at ``position`` (default: now). One query: every request that reads
    the genealogy starts here."""
    at, params = ("%s", [position]) if position is not None else (_HEAD_POSITION, [])
    records = Transformation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, {at}"
            f" UNION ALL SELECT 1, MAX(id) FROM {records} WHERE recorded_position_id <= {at}"
            f" UNION ALL SELECT 2, id FROM {records} WHERE retracted_position_id <= {at}",
            params * 3,
        )
        rows = cursor.fetchall()
    values: dict[int, list[int]] = defaultdict(list)
    for what, value in rows:
        values[what].append(value)
    return Snapshot(
        position=values[0][0],
        last_transformation_id=values[1][0] or 0,
        retracted=frozenset(values[2]),
    )


_HEAD_POSITION = f"COALESCE((SELECT position FROM {LedgerHead._meta.db_table} WHERE id = 1), 0)"


def _walk(
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


@dataclass
class Forward:
    """What a forward trace reached: lots, segments (their units), and units reached unit-to-unit."""

    snapshot: Snapshot
    lots: dict[int, Reached]
    segments: dict[int, SegmentReached]
    units: dict[int, Reached]  # subject units and units reached through unit links only
    # segment -> (unit_count, last_transformation_id), read with the segments when there is no cost
    sizes: dict[int, tuple[int, int]] | None = None
    sums: _Sums | None = field(default=None, repr=False, compare=False)  # filled on first use
    # A stored result reads its segments' paths only for the segments a page needs.
    path_loader: Callable[[set[int]], dict[int, tuple[Link, ...]]] | None = field(default=None, repr=False)

    def segment_ids(self, *, definite: bool | None = None) -> list[int]:
        return sorted(s for s, r in self.segments.items() if definite is None or r.definite == definite)

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
    lots = reach(seeds, _walk(LotLink, snapshot, seeds, forward=True)) if seeds else {}
    inputs = _segment_inputs(lots.keys()) if lots else []
    sizes = {segment: (count, last) for segment, _, _, count, last in inputs}
    segments = segments_reached(lots, ((segment, lot, definite) for segment, lot, definite, _, _ in inputs))
    units = _units_through_unit_links(snapshot, segments, sorted(set(seed_unit_ids)))
    return Forward(snapshot=snapshot, lots=lots, segments=segments, units=units, sizes=sizes)


def _segment_inputs(lot_ids: Iterable[int]) -> list[tuple[int, int, bool, int, int]]:
    """(segment, input lot, definite?, unit count, newest record) of every segment the lots feed.

    Raw rows: a million-unit trace reads ~14,000 of them, where the ORM's per-row work cost more
    than the query."""
    in_lots, params = any_sql("i.lot_id", lot_ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.segment_id, i.lot_id, s.exposure = %s, s.unit_count, s.last_transformation_id"
            f" FROM {SegmentInput._meta.db_table} i JOIN {Segment._meta.db_table} s ON s.id = i.segment_id"
            f" WHERE {in_lots}",
            [Exposure.DEFINITE.value, *params],
        )
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return rows
    return [(segment, lot, bool(definite), *rest) for segment, lot, definite, *rest in rows]  # SQLite: 0 / 1


def _units_through_unit_links(
    snapshot: Snapshot, segments: dict[int, SegmentReached], seed_units: list[int]
) -> dict[int, Reached]:
    """The subject units, and units made from affected units (refurbished): unit links are rare,
    so only affected units that have outgoing links are looked at, found in one query."""
    starts: dict[int, Reached] = {unit: Reached(True, ()) for unit in seed_units}
    sources = sorted(set(UnitLink.objects.filter(snapshot.valid()).values_list("input_unit_id", flat=True)))
    if segments and sources:
        rows = (
            SegmentMember.objects.filter(
                snapshot.valid(), segment_id__any=set(segments), unit_id__any=frozenset(sources)
            )
            .values_list("unit_id", "segment_id", "transformation_id")
            .order_by()
        )
        for unit, segment, record in rows:
            via = segments[segment]
            step = Link(via.via_lot, unit, via.definite, record, "LU")
            starts[unit] = combine(starts.get(unit), Reached(via.definite, (*via.path, step)))
    if not starts:
        return {}
    links = _walk(UnitLink, snapshot, starts, forward=True)
    result = {unit: starts[unit] for unit in seed_units}
    for start, start_reached in starts.items():
        for node, via in reach([start], links).items():
            if node != start:
                result[node] = combine(result.get(node), _carry(start_reached, via.path))
    return result


def _carry(reached: Reached, path: Iterable[Link]) -> Reached:
    for link in path:
        reached = extend(reached, link)
    return reached


def members(snapshot: Snapshot, segment_ids: Sequence[int]) -> QuerySet[SegmentMember]:
    return SegmentMember.objects.filter(snapshot.valid(), segment_id__any=set(segment_ids)).order_by()


@dataclass(frozen=True)
class _Sums:
    """How to count a forward result's segments at its snapshot without visiting every member.

    ``clean`` segments have every member row valid at the snapshot, so their stored totals are
    exact row counts; ``dirty`` ones (rows recorded after the snapshot, or by a record retracted by
    then) are counted row by row. Rows are not yet units: ``repeated`` holds the valid rows, in the
    reached segments, of units with more than one member row or packing, which the sums counted
    once per row; the callers settle those few units exactly.
    """

    clean: dict[int, int]
    dirty: list[int]
    repeated: dict[int, list[int]]  # unit -> the reached segments of its valid rows, one entry per row


def _sums(forward: Forward) -> _Sums:
    if forward.sums is None:
        forward.sums = _sums_read(forward)
    return forward.sums


def _sums_read(forward: Forward) -> _Sums:
    snapshot, segment_ids = forward.snapshot, forward.segment_ids()
    if not segment_ids:
        return _Sums({}, [], {})
    sizes = forward.sizes
    if sizes is None or not sizes.keys() >= forward.segments.keys():
        sizes = _segment_sizes(segment_ids)
    retracted_in = _segments_written_by(snapshot.retracted)
    clean, dirty = {}, []
    for segment in segment_ids:
        count, last = sizes.get(segment, (0, 0))
        if last > snapshot.last_transformation_id or segment in retracted_in:
            dirty.append(segment)
        else:
            clean[segment] = count
    repeated: dict[int, list[int]] = defaultdict(list)
    # Repeated units are few: as constants the members' unit index is probed for each; when there
    # are many, the database joins them.
    few = list(RepeatedUnit.objects.values_list("unit_id", flat=True)[: REPEATED_AS_CONSTANTS + 1])
    if not few:
        return _Sums(clean, dirty, {})
    if len(few) <= REPEATED_AS_CONSTANTS:
        rows = members(snapshot, segment_ids).filter(unit_id__any=frozenset(few))
    else:
        rows = members(snapshot, segment_ids).filter(unit_id__in=RepeatedUnit.objects.values("unit_id"))
    for unit, segment in rows.values_list("unit_id", "segment_id"):
        repeated[unit].append(segment)
    return _Sums(clean, dirty, dict(repeated))


def _segment_sizes(segment_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Segment -> (unit_count, last_transformation_id): one query, the ids as one parameter."""
    rows = Segment.objects.filter(pk__any=frozenset(segment_ids)).values_list(
        "pk", "unit_count", "last_transformation_id"
    )
    return {
        segment: (count, last)
        for segment, count, last in rows.values_list("pk", "unit_count", "last_transformation_id")
    }


def _segments_written_by(records: Iterable[int]) -> set[int]:
    ids = sorted(records)
    if not ids:
        return set()
    return set(
        Transformation.objects.filter(pk__any=frozenset(ids), segment__isnull=False).values_list(
            "segment_id", flat=True
        )
    )


def affected_counts(forward: Forward) -> tuple[int, int]:
    """(definitely, potentially) exposed units, each unit counted once at its best exposure.

    Sums of the segments' stored totals, corrected for the few segments and units that need it
    (see ``_Sums``): milliseconds at a million units, where counting distinct members took seconds.
    """
    snapshot, sums = forward.snapshot, _sums(forward)
    counts = {True: 0, False: 0}
    for segment, count in sums.clean.items():
        counts[forward.segments[segment].definite] += count
    if sums.dirty:
        exact = members(snapshot, sums.dirty).values("segment_id").annotate(n=Count("*")).values_list("segment_id", "n")
        for segment, count in exact:
            counts[forward.segments[segment].definite] += count
    best: dict[int, bool] = {}
    for unit, segments in sums.repeated.items():
        reached = [forward.segments[segment].definite for segment in segments]
        for definite in reached:
            counts[definite] -= 1
        best[unit] = any(reached)
        counts[best[unit]] += 1
    # Units reached only through unit links (and the subject units) are few: settle them here.
    if forward.units:
        in_segments = _segment_exposures(forward, forward.units.keys() - best.keys()) | best
        for unit, reached in forward.units.items():
            seen = in_segments.get(unit)
            if seen is None:
                counts[reached.definite] += 1
            elif reached.definite and not seen:
                counts[True] += 1
                counts[False] -= 1
    return counts[True], counts[False]


def _segment_exposures(forward: Forward, unit_ids: Iterable[int]) -> dict[int, bool]:
    """Those of ``unit_ids`` with a valid row in the reached segments, at their best exposure
    through segments (True: definite). A query per page of units."""
    best: dict[int, bool] = {}
    ordered, segment_ids = sorted(unit_ids), forward.segment_ids()
    for start in range(0, len(ordered) if segment_ids else 0, PAGE):
        rows = members(forward.snapshot, segment_ids).filter(unit_id__any=frozenset(ordered[start : start + PAGE]))
        for unit, segment in rows.values_list("unit_id", "segment_id"):
            best[unit] = best.get(unit, False) or forward.segments[segment].definite
    return best


@dataclass(frozen=True)
class AffectedUnit:
    unit_id: int
    definite: bool
    segment_id: int | None
    transformation_id: int | None
    path: tuple[Link, ...]


def affected_units(forward: Forward, *, after: int = 0, limit: int = PAGE) -> list[AffectedUnit]:
    """One page of affected units in id order, each once, at its best exposure. Two or three queries."""
    snapshot = forward.snapshot
    segment_ids = forward.segment_ids()
    page_ids = _first_members(snapshot, segment_ids, after=after, limit=limit) if segment_ids else []
    extra = sorted(u for u in forward.units if u > after)
    page_ids = sorted(set(page_ids) | set(extra))[:limit]
    if not page_ids:
        return []
    best: dict[int, AffectedUnit] = {}
    rows = (
        list(
            members(snapshot, segment_ids)
            .filter(unit_id__any=frozenset(page_ids))
            .values_list("unit_id", "segment_id", "transformation_id")
        )
        if segment_ids
        else []
    )
    paths = forward.segment_paths({segment for _, segment, _ in rows})
    for unit, segment, record in rows:
        reached = forward.segments[segment]
        path = (*paths[segment], Link(reached.via_lot, unit, reached.definite, record, "LU"))
        candidate = AffectedUnit(unit, reached.definite, segment, record, path)
        current = best.get(unit)
        if current is None or (not current.definite and candidate.definite):
            best[unit] = candidate
    for unit in page_ids:
        via_links = forward.units.get(unit)
        if via_links is not None and (unit not in best or (via_links.definite and not best[unit].definite)):
            best[unit] = AffectedUnit(unit, via_links.definite, None, None, via_links.path)
    return [best[unit] for unit in page_ids]


def _first_members(snapshot: Snapshot, segment_ids: list[int], *, after: int, limit: int) -> list[int]:
    """The ``limit`` smallest unit ids above ``after`` among the segments' valid members.

    Walking the unit index in order from ``after`` and filtering (the planner's choice) read 2.8M
    rows to find the first 100 units of a 10k-unit lot in the bench world (0.8 s). On PostgreSQL
    this is a merge of the segments' own ordered rows (``_first_members_merged``); elsewhere the
    result's rows are sorted (``ORDER BY unit_id + 0`` keeps the planner off the unit index).
    """
    valid, params = snapshot.valid_sql("transformation_id")
    merged = None
    if connection.vendor == "postgresql":
        merged = _first_members_merged(segment_ids, valid, params, after=after, limit=limit)
    if merged is not None:
        return merged
    in_segments, segment_params = any_sql("segment_id", segment_ids, connection)
    sql = f"SELECT unit_id FROM {SegmentMember._meta.db_table} WHERE {in_segments} AND unit_id > %s AND {valid}"
    params = [*segment_params, after, *params]
    fetch = limit
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} ORDER BY unit_id + 0 LIMIT %s", [*params, fetch])
            rows = [unit for (unit,) in cursor.fetchall()]
        units = list(dict.fromkeys(rows))  # a unit with rows in several segments comes once
        if len(units) >= limit or len(rows) < fetch:
            return units[:limit]
        fetch *= 2


def _first_members_merged(
    segment_ids: list[int], valid: str, valid_params: list, *, after: int, limit: int
) -> list[int] | None:
    """A k-way merge in one statement: each segment's first unit after ``after`` (one probe of
    its primary key each), the ``limit``-th smallest of those as a bound, then each segment's
    units up to the bound. Milliseconds at any size; None when units shared between segments
    left the page short (the caller then sorts)."""
    table = SegmentMember._meta.db_table
    rows_after = f"FROM {table} m WHERE m.segment_id = s.id AND m.unit_id > %s AND {valid}"
    sql = (
        "WITH firsts AS MATERIALIZED ("
        "  SELECT s.id, f.unit_id FROM unnest(%s::bigint[]) AS s(id)"
        f" CROSS JOIN LATERAL (SELECT m.unit_id {rows_after} ORDER BY m.unit_id LIMIT 1) f),"
        " bound AS (SELECT COALESCE(MAX(unit_id), 9223372036854775807) AS unit_id"
        "  FROM (SELECT unit_id FROM firsts ORDER BY unit_id OFFSET %s LIMIT 1) b),"
        " page AS (SELECT DISTINCT u.unit_id FROM firsts s CROSS JOIN LATERAL"
        # DISTINCT: two records may put one unit in the same segment (a row per record).
        f"  (SELECT DISTINCT m.unit_id {rows_after} AND m.unit_id <= (SELECT unit_id FROM bound)"
        "   ORDER BY m.unit_id LIMIT %s) u ORDER BY u.unit_id LIMIT %s)"
        " SELECT (SELECT COUNT(*) FROM firsts), page.unit_id FROM page ORDER BY page.unit_id"
    )
    ids = "{" + ",".join(map(str, segment_ids)) + "}"
    params = [ids, after, *valid_params, limit - 1, after, *valid_params, limit, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    units = [unit for _, unit in rows]
    if len(units) < limit and rows and rows[0][0] >= limit:
        return None  # units shared between segments made the bound too low
    return units


def all_affected_units(forward: Forward) -> Iterator[AffectedUnit]:
    after = 0
    while page := affected_units(forward, after=after):
        yield from page
        after = page[-1].unit_id


@dataclass(frozen=True)
class Diff:
    added: list[int]
    gone: list[int]
    exposure_changed: list[int]


def forward_diff(previous: Forward, current: Forward) -> Diff:
    """Units added, gone and with a changed exposure between two results, set-based.

    A segment reached with the same exposure by both, whose rows count the same at both
    positions, holds the same units at the same exposure in both; and a unit with rows only in
    such segments cannot have changed. So only the units of the other segments (and the units
    reached through unit links) are compared, row by row: the cost is the change, not the result.
    """
    a, b = previous.snapshot, current.snapshot
    changed_records = a.retracted ^ b.retracted
    low = min(a.last_transformation_id, b.last_transformation_id)
    both = previous.segments.keys() & current.segments.keys()
    settled = {
        segment
        for segment, (last, touched) in _segment_changes(both, changed_records).items()
        if previous.segments[segment].definite == current.segments[segment].definite and last <= low and not touched
    }
    changing = sorted((previous.segments.keys() | current.segments.keys()) - settled)
    candidates = set(previous.units) | set(current.units)
    for start in range(0, len(changing), 500):
        rows = SegmentMember.objects.filter(segment_id__any=frozenset(changing[start : start + 500])).values_list(
            "unit_id", flat=True
        )
        candidates.update(rows.order_by())
    before, after = _best_exposures(previous, candidates), _best_exposures(current, candidates)
    return Diff(
        added=sorted(after.keys() - before.keys()),
        gone=sorted(before.keys() - after.keys()),
        exposure_changed=sorted(u for u in after.keys() & before.keys() if after[u] != before[u]),
    )


def _segment_changes(segment_ids: Iterable[int], records: frozenset[int]) -> dict[int, tuple[int, bool]]:
    """Per segment: its newest record, and whether a record retracted in one snapshot only wrote it."""
    touched = _segments_written_by(records)
    ids = sorted(segment_ids)
    lasts = {segment: last for segment, (_, last) in _segment_sizes(ids).items()}
    return {segment: (lasts.get(segment, 0), segment in touched) for segment in ids}


def _best_exposures(forward: Forward, unit_ids: set[int]) -> dict[int, bool]:
    """Each of ``unit_ids`` that ``forward`` reaches, with its best exposure (True: definite)."""
    best = _segment_exposures(forward, unit_ids)
    for unit, reached in forward.units.items():
        best[unit] = best.get(unit, False) or reached.definite
    return best


# --- consignees --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consignee:
    organisation_id: int
    units: int
    first_shipped_at: dt.datetime
    last_shipped_at: dt.datetime


def consignees(forward: Forward) -> list[Consignee]:
    """Who received the affected units: directly, or inside a carton or pallet at any depth.

    Set-based, grouping per carton before anything else is joined (PERFORMANCE.md): the roll-up
    per container, one query per level of nesting, then the shipments of those containers and of
    loose units. A carton reaching a consignee by several ways (itself and on a pallet) counts once.
    """
    units_in = _affected_per_container(forward)
    children_of = _containers_nesting(units_in.keys())
    fields = ("container_id", "unit_id", "shipment__consignee_id", "shipment__shipped_at")
    shipped = ShipmentItem.objects.filter(container_id__any=units_in.keys() | children_of.keys()).values_list(*fields)
    # Loose units shipped on their own: each probed against the members' unit index. In one query
    # with the containers (an OR), PostgreSQL scanned every shipment item (1.7 s at 1M units).
    affected_unit = Exists(members(forward.snapshot, forward.segment_ids()).filter(unit_id=OuterRef("unit_id")))
    loose_units = Q(unit_id__isnull=False) & (affected_unit | Q(unit_id__any=forward.units.keys()))
    loose = ShipmentItem.objects.filter(loose_units)
    cartons: dict[int, set[int]] = defaultdict(set)
    units: dict[int, set[int]] = defaultdict(set)
    dates: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    under: dict[int, set[int]] = {}

    def cartons_under(container: int) -> set[int]:
        if container not in under:
            under[container] = set()  # ends a nesting cycle, should bad data hold one
            found = {container} if container in units_in else set()
            for child in children_of.get(container, ()):
                if child in children_of:
                    found |= cartons_under(child)
                else:
                    found.add(child)
            under[container] = found
        return under[container]

    for container, unit, consignee, shipped_at in itertools.chain(shipped, loose.values_list(*fields)):
        if container is not None:
            cartons[consignee] |= cartons_under(container)
        else:
            units[consignee].add(unit)
        first, last = dates.get(consignee, (shipped_at, shipped_at))
        dates[consignee] = (min(first, shipped_at), max(last, shipped_at))
    return sorted(
        (
            Consignee(
                organisation_id=org,
                units=sum(units_in[c] for c in cartons[org]) + len(units[org]),
                first_shipped_at=first,
                last_shipped_at=last,
            )
            for org, (first, last) in dates.items()
        ),
        key=lambda c: (-c.units, c.organisation_id),
    )


def _affected_per_container(forward: Forward) -> dict[int, int]:
    """Affected units per container they were packed in, from the (segment, container) roll-up.

    Clean segments are summed from ``SegmentContainer``; dirty ones are joined member by member;
    repeated units, counted once per (member row × packing) by both, are brought back to one.
    """
    snapshot, sums = forward.snapshot, _sums(forward)
    rolled: dict[int, int] = {}
    if sums.clean:
        # Raw rows into a dict: tens of thousands of containers at a million units, where the ORM's
        # per-row work cost more than the query.
        in_segments, params = any_sql("segment_id", sums.clean.keys(), connection)
        # A probe of the covering index per segment (30 ms for 6,771 segments), not the planner's
        # scan of the whole roll-up (85 ms, and growing with the ledger).
        with _cursor_planned_without("seqscan") as cursor:
            cursor.execute(
                f"SELECT container_id, SUM(rows) FROM {SegmentContainer._meta.db_table}"
                f" WHERE {in_segments} GROUP BY container_id",
                params,
            )
            rolled = dict(cursor.fetchall())
    if not (sums.dirty or sums.repeated or forward.units):
        return rolled  # the common case: the roll-up is the answer
    counts: dict[int, int] = defaultdict(int, rolled)
    if sums.dirty:
        for container, rows in _member_rows_per_container(snapshot, sums.dirty):
            counts[container] += rows
    packed = UnitPacking.objects.filter(unit_id__any=set(forward.units.keys() | sums.repeated.keys()))
    packings: dict[int, list[int]] = defaultdict(list)
    for unit, container in packed.values_list("unit_id", "container_id").order_by():
        packings[unit].append(container)
    for unit, segments in sums.repeated.items():
        for container in set(packings[unit]):
            counts[container] -= len(segments) * packings[unit].count(container) - 1
    in_segments = sums.repeated.keys() | _segment_exposures(forward, forward.units.keys() - sums.repeated.keys()).keys()
    for unit in forward.units.keys() - in_segments:
        for container in set(packings[unit]):
            counts[container] += 1
    return {container: n for container, n in counts.items() if n > 0}


def _member_rows_per_container(snapshot: Snapshot, segment_ids: list[int]) -> list[tuple[int, int]]:
    """(container, member rows × packings) for segments counted row by row: one join in SQL.

    Written with the segment ids as constants: as ``IN (subquery)`` PostgreSQL planned a
    semi-join over every packing row (PERFORMANCE.md saw the same with recursive CTEs).
    """
    in_segments, params = any_sql("m.segment_id", segment_ids, connection)
    valid, more = snapshot.valid_sql("m.transformation_id")
    sql = (
        f"SELECT p.container_id, COUNT(*)"
        f" FROM {SegmentMember._meta.db_table} m JOIN {UnitPacking._meta.db_table} p ON p.unit_id = m.unit_id"
        f" WHERE {in_segments} AND {valid}"
    )
    params += more
    # The planner hashes all 10M packings to meet 100k members (6.4 s at 100k units in the bench
    # world); one index probe per member is 0.5 s.
    with _cursor_planned_without("hashjoin", "mergejoin") as cursor:
        cursor.execute(f"{sql} GROUP BY p.container_id", params)
        return cursor.fetchall()


@contextmanager
def _cursor_planned_without(*plans: str) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL plans without ``plans`` (``"seqscan"``, ``"hashjoin"``).

    ``SET LOCAL`` lasts to the end of the transaction, not of a savepoint: inside a caller's
    transaction the settings are put back on leaving, so the caller's later statements are planned
    as usual; outside one, a transaction is opened for them. Elsewhere (SQLite) a plain cursor.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            yield cursor
            return
        inside = connection.in_atomic_block
        with transaction.atomic(savepoint=False):
            cursor.execute("; ".join(f"SET LOCAL enable_{plan} = off" for plan in plans))
            yield cursor
            if inside:
                cursor.execute("; ".join(f"SET LOCAL enable_{plan} TO DEFAULT" for plan in plans))


def _containers_nesting(cartons: Iterable[int]) -> dict[int, list[int]]:
    """The containers holding the cartons at any depth, each with the containers directly in it.

    Read upward one level of nesting per query; the closure is taken by the caller, downward from
    the few containers that were shipped, so the work follows the shipments, not the cartons.
    """
    children_of: dict[int, list[int]] = defaultdict(list)
    frontier = seen = set(cartons)
    while frontier:
        rows = ContainerPacking.objects.filter(child_id__any=frontier).values_list("child_id", "parent_id").order_by()
        for child, parent in rows:
            children_of[parent].append(child)
        frontier = children_of.keys() - seen
        seen = seen | frontier
    return children_of


def forward_unit_ids(forward: Forward) -> QuerySet:
    """The affected units as a subquery (segments' members valid at the snapshot)."""
    return members(forward.snapshot, forward.segment_ids()).values("unit_id")


# --- backward ---------------------------------------------------------------------------------------


@dataclass
class Backward:
    snapshot: Snapshot
    lots: dict[int, Reached]  # upstream lots, path from the subject upward
    units: dict[int, Reached]  # upstream units (for a refurbished unit)


def backward_trace(*, snapshot: Snapshot, unit_id: int | None = None, lot_id: int | None = None) -> Backward:
    """Everything upstream of a unit or a lot: one query per level."""
    seed_lots: dict[int, Reached] = {}
    units: dict[int, Reached] = {}
    if unit_id is not None:
        units = reach([unit_id], _walk(UnitLink, snapshot, [unit_id], forward=False))
        direct = (
            SegmentMember.objects.filter(snapshot.valid(), unit_id__any=set(units))
            .values_list("unit_id", "transformation_id", "segment__exposure", "segment__inputs__lot_id")
            .order_by()
        )
        for unit, record, exposure, lot in direct:
            carried = extend(units[unit], Link(unit, lot, exposure == Exposure.DEFINITE, record, "UL"))
            seed_lots[lot] = combine(seed_lots.get(lot), carried)
    if lot_id is not None:
        seed_lots[lot_id] = Reached(True, ())
    upstream = _walk(LotLink, snapshot, seed_lots, forward=False) if seed_lots else []
    lots: dict[int, Reached] = dict(seed_lots)
    for start, start_reached in seed_lots.items():
        for node, via in reach([start], upstream).items():
            lots[node] = combine(lots.get(node), _carry(start_reached, via.path))
    if lot_id is not None:
        lots.pop(lot_id, None)
    units.pop(unit_id, None)
    return Backward(snapshot=snapshot, lots=lots, units=units)


@dataclass(frozen=True)
class Siblings:
    shared_lots: list[int]  # the unit's direct input lots
    units: dict[int, list[int]]  # sibling -> the shared lots it was made from, in unit id order
    next_after: int | None  # the cursor of the next page, or None on the last one


def siblings(*, snapshot: Snapshot, unit_id: int, after: int = 0, limit: int = 100) -> Siblings:
    """One page of the units sharing a direct input lot with the unit, with the lots they share.

    Direct inputs (the cell or module lots the unit was built from) are what "sibling" means to a
    QA team; sharing a material lot further up is the forward trace of that lot. Three queries.
    """
    own = SegmentMember.objects.filter(snapshot.valid(), unit_id=unit_id).values("segment_id")
    shared_lots = sorted(set(SegmentInput.objects.filter(segment_id__in=own).values_list("lot_id", flat=True)))
    if not shared_lots:
        return Siblings([], {}, None)
    # Each sibling has at most one pair per shared lot, so this many pairs hold ``limit`` whole units.
    rows = (
        SegmentMember.objects.filter(
            snapshot.valid(), segment__inputs__lot_id__any=frozenset(shared_lots), unit_id__gt=after
        )
        .exclude(unit_id=unit_id)
        .values_list("unit_id", "segment__inputs__lot_id")
        .distinct()
        .order_by("unit_id", "segment__inputs__lot_id")[: limit * len(shared_lots) + 1]
    )
    units: dict[int, list[int]] = {}
    for sibling, lot in rows:
        if sibling not in units and len(units) == limit:
            return Siblings(shared_lots, units, next_after=max(units))
        units.setdefault(sibling, []).append(lot)
    return Siblings(shared_lots, units, next_after=None)


def lots_by_id(ids: Iterable[int]) -> dict[int, Lot]:
    return {lot.pk: lot for lot in Lot.objects.filter(pk__any=set(set(ids))).select_related("owner", "site")}


# --- explanations -------------------------------------------------------------------------------------


def explain_paths(
    paths: Sequence[tuple[Link, ...]], *, known: Mapping[tuple[str, int], str] | None = None
) -> list[list[dict[str, str]]]:
    """Paths as people read them: each step names both ends by canonical identity and the record.

    At most three queries for any number of paths (lots, units, records), so a page of units costs
    the same whatever its size; ``known`` names nodes the caller has loaded already, by
    ``("L" | "U", id)``, and saves their query.
    """
    known = known or {}
    wanted: dict[str, set[int]] = {"L": set(), "U": set()}
    record_ids = set()
    for path in paths:
        for link in path:
            wanted[link.kinds[0]].add(link.source)
            wanted[link.kinds[1]].add(link.target)
            record_ids.add(link.record)
    names = dict(known)
    for kind, model in (("L", Lot), ("U", Unit)):
        if missing := {node for node in wanted[kind] if (kind, node) not in known}:
            names.update(
                ((kind, pk), identity)
                for pk, identity in model.objects.filter(pk__any=missing).values_list("pk", "identity")
            )
    records = (
        dict(Transformation.objects.filter(pk__any=record_ids).values_list("pk", "reference")) if record_ids else {}
    )

    def name(kind: str, node: int) -> str:
        return names.get((kind, node), f"{'lot' if kind == 'L' else 'unit'}:{node}")

    return [
        [
            {
                "from": name(link.kinds[0], link.source),
                "to": name(link.kinds[1], link.target),
                "record": records.get(link.record, str(link.record)),
                "exposure": exposure_name(link.definite),
            }
            for link in path
        ]
        for path in paths
    ]
