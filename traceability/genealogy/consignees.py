"""Who received the units a trace reaches, directly or inside containers at any nesting depth."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from packs.models import ShipmentItem, UnitPacking
from suppliers.models import Organisation
from traceability.core.db import any_sql, cursor_planned_without
from traceability.genealogy.affected import segment_exposures
from traceability.genealogy.counts import sums_of
from traceability.genealogy.forward import Forward, members
from traceability.genealogy.models import (
    SegmentContainer,
    SegmentMember,
)
from traceability.genealogy.packing import containers_nesting
from traceability.genealogy.snapshot import Snapshot


@dataclass(frozen=True)
class Consignee:
    organisation_id: int
    units: int
    first_shipped_at: dt.datetime
    last_shipped_at: dt.datetime
    # The countries of the sites its shipments were addressed to (``Shipment.ship_to``), if any.
    ship_to_countries: frozenset[str] = frozenset()


def consignees(forward: Forward, *, party_id: int | None = None) -> list[Consignee]:
    """Who received the affected units: directly, or inside a carton or pallet at any depth.

    Set-based, grouping per carton before anything else is joined (PERFORMANCE.md): the roll-up
    per container, one query per level of nesting, then the shipments of those containers and of
    loose units. A carton reaching a consignee by several ways (itself and on a pallet) counts once.
    With ``party_id``, only the shipments that party sent or received count: its own consignees.
    """
    units_in = affected_per_container(forward)
    # Up from the cartons; the closure is taken below, downward from the few containers that were
    # shipped, so the work follows the shipments, not the cartons.
    children_of = containers_nesting(units_in.keys())
    fields = ("container_id", "unit_id", "shipment__consignee_id", "shipment__shipped_at", "shipment__ship_to__country")
    items = ShipmentItem.objects.all()
    if party_id is not None:
        items = items.filter(Q(shipment__owner_id=party_id) | Q(shipment__consignee_id=party_id))
    shipped = items.filter(container_id__any=units_in.keys() | children_of.keys()).values_list(*fields)
    # Loose units shipped on their own: each probed against the members' unit index. In one query
    # with the containers (an OR), PostgreSQL scanned every shipment item (1.7 s at 1M units).
    affected_unit = Exists(members(forward.snapshot, forward.segment_ids()).filter(unit_id=OuterRef("unit_id")))
    loose_units = Q(unit_id__isnull=False) & (affected_unit | Q(unit_id__any=forward.units.keys()))
    loose = items.filter(loose_units)
    cartons: dict[int, set[int]] = defaultdict(set)
    units: dict[int, set[int]] = defaultdict(set)
    dates: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    countries: dict[int, set[str]] = defaultdict(set)
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

    for container, unit, consignee, shipped_at, country in itertools.chain(shipped, loose.values_list(*fields)):
        if country:
            countries[consignee].add(country)
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
                ship_to_countries=frozenset(countries[org]),
            )
            for org, (first, last) in dates.items()
        ),
        key=lambda c: (-c.units, c.organisation_id),
    )


def consignee_countries(found: Iterable[Consignee]) -> frozenset[str]:
    """The countries units were sold into: each consignee organisation's own, and those of the sites
    its shipments were addressed to (one query, for the organisations' countries)."""
    found = list(found)
    if not found:
        return frozenset()
    registered = Organisation.objects.filter(pk__in=sorted({c.organisation_id for c in found})).exclude(country="")
    shipped_to = {country for consignee in found for country in consignee.ship_to_countries}
    return frozenset(registered.values_list("country", flat=True)) | frozenset(shipped_to)


def affected_per_container(forward: Forward) -> dict[int, int]:
    """Affected units per container they were packed in, from the (segment, container) roll-up.

    Clean segments are summed from ``SegmentContainer``; dirty ones are joined member by member;
    repeated units, counted once per (member row × packing) by both, are brought back to one.
    """
    snapshot, sums = forward.snapshot, sums_of(forward)
    rolled: dict[int, int] = {}
    if sums.clean:
        # Raw rows into a dict: tens of thousands of containers at a million units, where the ORM's
        # per-row work cost more than the query.
        in_segments, params = any_sql("segment_id", sums.clean.keys(), connection)
        # A probe of the covering index per segment (30 ms for 6,771 segments), not the planner's
        # scan of the whole roll-up (85 ms, and growing with the ledger).
        with cursor_planned_without("seqscan") as cursor:
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
    units_in_segments = (
        sums.repeated.keys() | segment_exposures(forward, forward.units.keys() - sums.repeated.keys()).keys()
    )
    for unit in forward.units.keys() - units_in_segments:
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
    with cursor_planned_without("hashjoin", "mergejoin") as cursor:
        cursor.execute(f"{sql} GROUP BY p.container_id", params)
        return cursor.fetchall()
