"""The units a forward trace reaches, a page at a time in unit order, with their exposure and path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection

from packs.models import Unit
from traceability.core.db import any_sql
from traceability.genealogy.forward import Forward, members
from traceability.genealogy.models import SegmentMember, SegmentOwner
from traceability.genealogy.snapshot import Snapshot
from traceability.genealogy.trace import Link

PAGE = 5_000
# A member row ``m`` whose unit is the owner's (one parameter: the owner's id).
_OWNED = f"EXISTS (SELECT 1 FROM {Unit._meta.db_table} u WHERE u.id = m.unit_id AND u.owner_id = %s)"


def segment_exposures(forward: Forward, unit_ids: Iterable[int]) -> dict[int, bool]:
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
    page_ids = (
        _first_members(
            snapshot, segment_ids, after=after, limit=limit, owner_id=forward.owner_id, bounds=forward.bounds
        )
        if segment_ids
        else []
    )
    extra = sorted(u for u in forward.units if u > after)
    page_ids = sorted(set(page_ids) | set(extra))[:limit]
    if not page_ids:
        return []
    best: dict[int, AffectedUnit] = {}
    # In (segment, record) order, so that of a unit's rows of the same exposure the same one always
    # gives its path (``investigations.selectors.finished_run_party_page`` picks it alike).
    rows = (
        sorted(
            members(snapshot, segment_ids)
            .filter(unit_id__any=frozenset(page_ids))
            .values_list("segment_id", "transformation_id", "unit_id")
        )
        if segment_ids
        else []
    )
    paths = forward.segment_paths({segment for segment, _, _ in rows})
    for segment, record, unit in rows:
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


def _first_members(
    snapshot: Snapshot,
    segment_ids: list[int],
    *,
    after: int,
    limit: int,
    owner_id: int | None = None,
    bounds: dict[int, tuple[int, int, int]] | None = None,
) -> list[int]:
    """The ``limit`` smallest unit ids above ``after`` among the segments' valid members (with
    ``owner_id``, among those of that owner's units; ``bounds``: the roll-up's bounds, read already).

    Only the segments that can hold them are asked: by the unit id bounds of the party roll-up
    (``SegmentOwner``), those whose units reach past ``after``, smallest lower bound first, until
    they hold ``limit`` rows (twice as many rows while the page comes out short); then any other
    segment whose lower bound is not above the page's last unit, until none is (so the page is
    exact whatever was retracted). A page of a 400k-unit result in the bench world asks 3 to 15 of
    its 2,568 segments. A segment with no roll-up row is always asked.
    """
    if bounds is None:
        bounds = _unit_bounds(segment_ids)
    live = sorted(
        (max(first, after + 1), segment, count) for segment, (first, last, count) in bounds.items() if last > after
    )
    chosen = [segment for segment in segment_ids if segment not in bounds]
    taken, target, next_live = 0, limit, 0
    while True:
        while next_live < len(live) and (taken < target or not chosen):
            chosen.append(live[next_live][1])
            taken += live[next_live][2]
            next_live += 1
        units = _first_members_of(snapshot, chosen, after=after, limit=limit, owner_id=owner_id) if chosen else []
        if len(units) < limit:  # short: the rows counted include those up to ``after``; ask more
            if next_live == len(live):
                return units
            target = 2 * taken + limit
            continue
        more = 0
        while next_live < len(live) and live[next_live][0] <= units[-1]:
            chosen.append(live[next_live][1])
            taken += live[next_live][2]
            next_live, more = next_live + 1, more + 1
        if not more:
            return units


def _unit_bounds(segment_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Segment -> (smallest unit id, largest unit id, member rows) ever written: one query."""
    in_segments, params = any_sql("segment_id", segment_ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT segment_id, MIN(first_unit_id), MAX(last_unit_id), SUM(unit_count)"
            f" FROM {SegmentOwner._meta.db_table} WHERE {in_segments} GROUP BY segment_id",
            params,
        )
        return {segment: (int(first), int(last), int(count)) for segment, first, last, count in cursor.fetchall()}


def _first_members_of(
    snapshot: Snapshot, segment_ids: list[int], *, after: int, limit: int, owner_id: int | None = None
) -> list[int]:
    """``_first_members`` of exactly these segments.

    Walking the unit index in order from ``after`` and filtering (the planner's choice) read 2.8M
    rows to find the first 100 units of a 10k-unit lot in the bench world (0.8 s). On PostgreSQL
    this is a merge of the segments' own ordered rows (``_first_members_merged``); elsewhere the
    result's rows are sorted (``ORDER BY unit_id + 0`` keeps the planner off the unit index).
    """
    if connection.vendor == "postgresql":
        merged = _first_members_merged(snapshot, segment_ids, after=after, limit=limit, owner_id=owner_id)
        if merged is not None:
            return merged
    valid, params = snapshot.valid_sql("transformation_id")
    if owner_id is not None:  # the owner's units only: each row's unit is probed by its primary key
        valid = f"{valid} AND {_OWNED}"
        params = [*params, owner_id]
    in_segments, segment_params = any_sql("segment_id", segment_ids, connection)
    sql = f"SELECT unit_id FROM {SegmentMember._meta.db_table} m WHERE {in_segments} AND unit_id > %s AND {valid}"
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
    snapshot: Snapshot, segment_ids: list[int], *, after: int, limit: int, owner_id: int | None
) -> list[int] | None:
    """A k-way merge in one statement (``merge_sql``). Milliseconds at any size; None when units
    shared between segments left the page short (the caller then sorts)."""
    sql = (
        f"WITH {merge_sql('page', 'SELECT unnest(%(segments)s::bigint[]), %(after)s + 1')}"
        " SELECT (SELECT COUNT(*) FROM page_firsts), page.unit_id FROM page ORDER BY page.unit_id"
    )
    params = merge_params(snapshot, owner_id)
    params.update(segments="{" + ",".join(map(str, segment_ids)) + "}", after=after, want=limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    units = [unit for _, unit in rows]
    if len(units) < limit and rows and rows[0][0] >= limit:
        return None  # units shared between segments made the bound too low
    return units


def merge_sql(name: str, segments: str) -> str:
    """Common table expressions of PostgreSQL for the smallest ``%(want)s`` unit ids above
    ``%(after)s`` among the valid member rows of the segments that ``segments`` selects (a query of
    two columns: a segment id, and the smallest unit id to look from, above ``after``),
    ``%(owner)s``'s units only unless it is NULL: a k-way merge.

    ``{name}_firsts`` holds each segment's first unit after the cursor (one probe of its primary
    key each); the ``want``-th smallest of those bounds the page (``{name}_bound``); ``{name}`` is
    then each segment's units up to the bound, the smallest ``want`` of them. Fewer than ``want``
    rows in ``{name}`` while ``{name}_firsts`` has ``want`` or more: units shared between segments
    made the bound too low, and the page is not known. Parameters: ``merge_params`` with ``after``
    and ``want``.
    """
    rows_after = (
        f"FROM {SegmentMember._meta.db_table} m WHERE m.segment_id = s.id AND m.unit_id >= s.lo"
        " AND m.transformation_id <= %(last)s AND NOT (m.transformation_id = ANY(%(retracted)s::bigint[]))"
        # the owner's units only: each row's unit is probed by its primary key
        f" AND (%(owner)s::bigint IS NULL OR {_OWNED.replace('%s', '%(owner)s')})"
    )
    return (
        f"{name}_firsts AS MATERIALIZED ("
        f" SELECT s.id, s.lo, f.unit_id FROM ({segments}) AS s(id, lo)"
        f" CROSS JOIN LATERAL (SELECT m.unit_id {rows_after} ORDER BY m.unit_id LIMIT 1) f),"
        f" {name}_bound AS (SELECT COALESCE(MAX(unit_id), 9223372036854775807) AS unit_id"
        f" FROM (SELECT unit_id FROM {name}_firsts ORDER BY unit_id OFFSET %(want)s - 1 LIMIT 1) b),"
        f" {name} AS MATERIALIZED (SELECT DISTINCT u.unit_id FROM {name}_firsts s CROSS JOIN LATERAL"
        # DISTINCT: two records may put one unit in the same segment (a row per record).
        f" (SELECT DISTINCT m.unit_id {rows_after} AND m.unit_id <= (SELECT unit_id FROM {name}_bound)"
        f" ORDER BY m.unit_id LIMIT %(want)s) u ORDER BY u.unit_id LIMIT %(want)s)"
    )


def merge_params(snapshot: Snapshot, owner_id: int | None) -> dict[str, int | str | None]:
    """``merge_sql``'s parameters of the snapshot and the owner."""
    return {
        "last": snapshot.last_transformation_id,
        "retracted": "{" + ",".join(map(str, sorted(snapshot.retracted))) + "}",
        "owner": owner_id,
    }


def all_affected_units(forward: Forward) -> Iterator[AffectedUnit]:
    after = 0
    while page := affected_units(forward, after=after):
        yield from page
        after = page[-1].unit_id
