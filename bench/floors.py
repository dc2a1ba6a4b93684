"""The floors: what bare SQL on this machine takes for each step of a forward trace.

Every figure is the median of ``runs`` timed runs (after one untimed warm-up run), in milliseconds,
on the bench world. The subjects (lots whose forward reach is closest to 10k / 100k / 1M units, and
the lot that reaches most) are found once and kept in ``bench_subjects``.

The queries follow PERFORMANCE.md: the lot graph is walked first and its lot ids passed on as an
array (``= ANY(%s)``), never as ``IN (subquery of a recursive CTE)``, whose row estimate makes
PostgreSQL scan every member; units come from segment members (index-only scan of the primary key
on (segment_id, unit_id, transformation_id)). The floors ignore ledger positions and retractions
(the bench world has neither) and packing and shipping times, so they are a lower bound for a trace
at the head of the ledger. The floors' session runs with ``jit = off`` (see ``prepare``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

TARGETS = (("10k", 10_000), ("100k", 100_000), ("1M", 1_000_000))

WALK = """
    WITH RECURSIVE walk(lot_id) AS (
        SELECT %s::bigint
        UNION
        SELECT l.output_lot_id FROM traceability_lotlink l JOIN walk w ON l.input_lot_id = w.lot_id
    )
    SELECT lot_id FROM walk
"""
SEGMENTS = "SELECT DISTINCT segment_id FROM traceability_segmentinput WHERE lot_id = ANY(%s::bigint[])"
WRITE_UNITS = """
    INSERT INTO bench_floor_result (unit_id)
    SELECT DISTINCT unit_id FROM traceability_segmentmember WHERE segment_id = ANY(%s::bigint[])
"""
COUNT_SEGMENTS = "SELECT coalesce(sum(unit_count), 0) FROM traceability_segment WHERE id = ANY(%s::bigint[])"
COUNT_MEMBERS = "SELECT count(*) FROM traceability_segmentmember WHERE segment_id = ANY(%s::bigint[])"
COUNT_DISTINCT = "SELECT count(DISTINCT unit_id) FROM traceability_segmentmember WHERE segment_id = ANY(%s::bigint[])"

# Consignees of the units in bench_floor_result, at any nesting depth of containers, grouped per
# carton first: the units' cartons (one join over the units, its range bounded by constants, since
# affected units are made in runs), then the containers holding those cartons level by level (arrays
# of ids), then the shipments naming any of them; plus shipments naming loose units.
RESULT_RANGE = "SELECT min(unit_id), max(unit_id) FROM bench_floor_result"
CARTONS_OF_RESULT = """
    SELECT DISTINCT p.container_id
    FROM packs_unitpacking p JOIN bench_floor_result r ON r.unit_id = p.unit_id
    WHERE p.unit_id BETWEEN %s AND %s
"""
PARENTS = "SELECT DISTINCT parent_id FROM packs_containerpacking WHERE child_id = ANY(%s::bigint[])"
CONSIGNEES_OF_CONTAINERS = """
    SELECT s.consignee_id
    FROM packs_shipmentitem i JOIN packs_shipment s ON s.id = i.shipment_id
    WHERE i.container_id = ANY(%s::bigint[])
    UNION
    SELECT s.consignee_id
    FROM packs_shipmentitem i JOIN packs_shipment s ON s.id = i.shipment_id
    WHERE i.unit_id IS NOT NULL AND i.unit_id IN (SELECT unit_id FROM bench_floor_result)
"""
# The same answer carrying every unit up the container tree (what joining per unit does).
CONSIGNEES_PER_UNIT = """
    WITH RECURSIVE holders(unit_id, container_id) AS (
        SELECT p.unit_id, p.container_id
        FROM packs_unitpacking p JOIN bench_floor_result r ON r.unit_id = p.unit_id
        WHERE p.unit_id BETWEEN %(lo)s AND %(hi)s
        UNION
        SELECT h.unit_id, cp.parent_id FROM packs_containerpacking cp JOIN holders h ON cp.child_id = h.container_id
    )
    SELECT s.consignee_id
    FROM holders h
    JOIN packs_shipmentitem i ON i.container_id = h.container_id
    JOIN packs_shipment s ON s.id = i.shipment_id
    UNION
    SELECT s.consignee_id
    FROM packs_shipmentitem i JOIN packs_shipment s ON s.id = i.shipment_id
    WHERE i.unit_id IS NOT NULL AND i.unit_id IN (SELECT unit_id FROM bench_floor_result)
"""


@dataclass(frozen=True)
class Subject:
    label: str
    target: int | None
    lot_id: int
    lot_kind: str
    lot_code: str
    lots: int
    segments: int
    units: int


def ensure_tables(conn: psycopg.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS bench_subjects (
               label text PRIMARY KEY, target bigint, lot_id bigint NOT NULL, lot_kind text NOT NULL,
               lot_code text NOT NULL, lots int NOT NULL, segments int NOT NULL, units bigint NOT NULL)"""
    )
    # A bare heap table, as a result table at its cheapest: no index, no constraint.
    conn.execute("CREATE TABLE IF NOT EXISTS bench_floor_result (unit_id bigint)")
    conn.commit()


def walk(conn: psycopg.Connection, lot_id: int) -> list[int]:
    return [row[0] for row in conn.execute(WALK, [lot_id])]


def segments_of(conn: psycopg.Connection, lot_ids: list[int]) -> list[int]:
    return [row[0] for row in conn.execute(SEGMENTS, [lot_ids])]


def subjects(conn: psycopg.Connection) -> list[Subject]:
    """The subjects, picked once per world: the lot (any level) whose reach is closest to each target."""
    prepare(conn)
    ensure_tables(conn)
    rows = conn.execute(
        "SELECT label, target, lot_id, lot_kind, lot_code, lots, segments, units FROM bench_subjects "
        "ORDER BY units, label"
    ).fetchall()
    if rows:
        return [Subject(*row) for row in rows]
    started = time.perf_counter()
    # Forward reach of every lot: the lot graph walked from each lot at once, then the segments its
    # lots feed and their unit counts. A unit is a member of one segment in the bench world, so the
    # sum of unit counts is the number of distinct units; the picks are counted exactly below.
    reach = conn.execute(
        """
        WITH RECURSIVE reach(root, lot_id) AS (
            SELECT id, id FROM cells_lot
            UNION
            SELECT r.root, l.output_lot_id FROM reach r JOIN traceability_lotlink l ON l.input_lot_id = r.lot_id
        ), lots AS (
            SELECT root, count(*) AS lots FROM reach GROUP BY root
        ), segs AS (
            SELECT DISTINCT r.root, si.segment_id
            FROM reach r JOIN traceability_segmentinput si ON si.lot_id = r.lot_id
        )
        SELECT l.root, l.lots, count(s.segment_id), coalesce(sum(seg.unit_count), 0)::bigint
        FROM lots l
        LEFT JOIN segs s ON s.root = l.root
        LEFT JOIN traceability_segment seg ON seg.id = s.segment_id
        GROUP BY l.root, l.lots
        """
    ).fetchall()
    reach = [r for r in reach if r[3] > 0]
    largest = max(reach, key=lambda r: (r[3], -r[0]))
    picks: list[tuple[str, int | None, tuple]] = []
    for label, target in TARGETS:
        if target <= 0.7 * largest[3]:
            best = min(reach, key=lambda r, t=target: (abs(math.log(r[3] / t)), r[0]))
            picks.append((label, target, best))
    picks.append(("largest", None, largest))
    result = []
    for label, target, (lot_id, _lots, _segments, _units) in picks:
        lot_ids = walk(conn, lot_id)
        segment_ids = segments_of(conn, lot_ids)
        units = conn.execute(COUNT_DISTINCT, [segment_ids]).fetchone()[0]
        kind, code = conn.execute("SELECT kind, code FROM cells_lot WHERE id = %s", [lot_id]).fetchone()
        result.append(Subject(label, target, lot_id, kind, code, len(lot_ids), len(segment_ids), units))
    with conn.cursor().copy("COPY bench_subjects FROM STDIN") as copy:
        for s in result:
            copy.write_row((s.label, s.target, s.lot_id, s.lot_kind, s.lot_code, s.lots, s.segments, s.units))
    conn.commit()
    print(f"floors: picked {len(result)} subjects from {len(reach):,} lots in {time.perf_counter() - started:.1f} s")
    return sorted(result, key=lambda s: (s.units, s.label))


def median_ms(fn: Callable[[], object], runs: int, setup: Callable[[], None] | None = None) -> float:
    """Median of ``runs`` timed calls after one untimed warm-up; ``fn`` may return its own ms (a number)."""
    times = []
    for i in range(runs + 1):
        if setup:
            setup()
        started = time.perf_counter()
        own = fn()
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(own, int | float) and not isinstance(own, bool):
            elapsed = float(own)  # the callable timed itself
        if i:
            times.append(elapsed)
    return statistics.median(times)


def consignees_by_carton(conn: psycopg.Connection) -> set[int]:
    lo, hi = conn.execute(RESULT_RANGE).fetchone()
    cartons = [row[0] for row in conn.execute(CARTONS_OF_RESULT, [lo, hi])] if lo is not None else []
    seen, level = set(cartons), cartons
    while level:  # pallets holding the cartons, and whatever holds those
        level = [c for (c,) in conn.execute(PARENTS, [level]) if c not in seen]
        seen.update(level)
    found = {row[0] for row in conn.execute(CONSIGNEES_OF_CONTAINERS, [list(seen)])}
    conn.commit()
    return found


def consignees_per_unit(conn: psycopg.Connection) -> set[int]:
    lo, hi = conn.execute(RESULT_RANGE).fetchone()
    found = {row[0] for row in conn.execute(CONSIGNEES_PER_UNIT, {"lo": lo or 0, "hi": hi or 0})}
    conn.commit()
    return found


def prepare(conn: psycopg.Connection) -> None:
    """Session settings of the floors: no JIT (it adds ~80 ms of compilation to any plan costed
    above 100,000, which is most of them at this scale, and wins nothing on these queries)."""
    conn.execute("SET jit = off")
    conn.commit()


def _truncate(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE bench_floor_result")
    conn.commit()


# The floors ``measure`` can be asked for; "count" measures "count_members" too, "consignees" both ways.
FLOORS = ("walk", "count", "write", "consignees")


def measure(
    conn: psycopg.Connection, subject: Subject, runs: int = 5, only: frozenset[str] | None = None
) -> dict[str, float]:
    """The floors for one subject, in ms (medians); the keys are the README's names. ``only``: just
    those of ``FLOORS`` (the consignees need the write's result table, so they take the write too)."""
    prepare(conn)
    lot = subject.lot_id
    out: dict[str, float] = {}
    wanted = frozenset(FLOORS) if only is None else only | ({"write"} if "consignees" in only else set())

    out["walk"] = median_ms(lambda: walk(conn, lot), runs)
    if wanted <= {"walk"}:
        return out

    def count_segments() -> None:
        conn.execute(COUNT_SEGMENTS, [segments_of(conn, walk(conn, lot))]).fetchone()

    def count_members() -> None:
        conn.execute(COUNT_MEMBERS, [segments_of(conn, walk(conn, lot))]).fetchone()

    if "count" in wanted:
        out["count"] = median_ms(count_segments, runs)
        out["count_members"] = median_ms(count_members, runs)
    if "write" not in wanted:
        return out

    def write() -> None:
        conn.execute(WRITE_UNITS, [segments_of(conn, walk(conn, lot))])
        conn.commit()

    out["write"] = median_ms(write, runs, setup=lambda: _truncate(conn))
    written = conn.execute("SELECT count(*) FROM bench_floor_result").fetchone()[0]
    if written != subject.units:
        raise RuntimeError(f"floor wrote {written} units for lot {lot}, expected {subject.units}")
    if "consignees" not in wanted:
        return out

    # Consignees of the affected units, starting from the result table the write floor left behind.
    conn.execute("ANALYZE bench_floor_result")
    conn.commit()
    by_carton, per_unit = consignees_by_carton(conn), consignees_per_unit(conn)
    if by_carton != per_unit:
        raise RuntimeError("the two consignee queries disagree")
    out["consignees_found"] = len(by_carton)
    out["consignees"] = median_ms(lambda: consignees_by_carton(conn), runs)
    out["consignees_per_unit"] = median_ms(lambda: consignees_per_unit(conn), runs)
    return out
