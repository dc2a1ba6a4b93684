"""Whose units a trace reaches: the reads the access policy's answers are made of.

A trace's result holds units of several organisations. ``party_view`` says, for one of them, how
many units it owns or received (definite, potential) and how many units of each other organisation
its own lots went into; ``units_of`` is the condition on ``Unit`` for the first kind. Both are
set-based: counts are summed per segment from the party roll-up (``SegmentOwner``), and only the
segments and units whose sums are not exact are grouped from members; never one query per unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db import connection
from django.db.models import Q, QuerySet

from cells.models import Lot
from packs.models import ShipmentItem, Unit, UnitPacking
from traceability.core.db import any_sql, cursor_planned_without
from traceability.genealogy.counts import sums_of
from traceability.genealogy.forward import Forward, downstream, forward_trace, members
from traceability.genealogy.models import SegmentMember, SegmentOwner
from traceability.genealogy.packing import containers_within
from traceability.genealogy.receipts import into_countries, to_organisation


@dataclass(frozen=True)
class OthersCount:
    """Affected units of another organisation, shown to a party only as how many."""

    organisation_id: int
    definite_units: int
    potential_units: int


@dataclass(frozen=True)
class PartyView:
    """One organisation's share of a trace's result."""

    organisation_id: int
    definite_units: int  # of the units it owns or received
    potential_units: int
    others: tuple[OthersCount, ...]  # the units of others its own lots went into


def received_units(organisation_id: int, *, containers: frozenset[int] | None = None) -> QuerySet[Unit]:
    """The units shipped to an organisation: loose, or packed in a container it received, at any
    depth of nesting (``_shipped_units``; ``containers``: its ``received_containers``, when the
    caller read them already)."""
    return _shipped_units(to_organisation(organisation_id, through="shipment__"), containers=containers)


def received_containers(organisation_id: int) -> frozenset[int]:
    """The ids of the containers shipped to an organisation, and of those packed in them at any depth
    of nesting (one query per level)."""
    shipped = ShipmentItem.objects.filter(
        to_organisation(organisation_id, through="shipment__"), container__isnull=False
    )
    return containers_within(shipped.values_list("container_id", flat=True))


def units_sold_into(countries: Iterable[str]) -> QuerySet[Unit]:
    """The units shipped into any of ``countries`` (``receipts.into_countries``), loose or packed at
    any depth (as ``received_units``)."""
    wanted = sorted(set(countries))
    if not wanted:
        return Unit.objects.none()
    return _shipped_units(into_countries(wanted, through="shipment__"))


def _shipped_units(items: Q, *, containers: frozenset[int] | None = None) -> QuerySet[Unit]:
    """The units the shipment items matching ``items`` name, loose or packed at any depth (a
    subquery; the items and each level of the containers' closure are one query each). None when
    nothing was shipped: a brand's ``units_of`` is then its own units alone, with no subquery for
    the planner to hash every packing of the ledger over."""
    loose: set[int] = set()
    named: set[int] = set()
    for container, unit in ShipmentItem.objects.filter(items).values_list("container_id", "unit_id").order_by():
        if container is not None:
            named.add(container)
        else:
            loose.add(unit)
    if containers is None:
        containers = containers_within(named)
    if not (loose or containers):
        return Unit.objects.none()
    packed = UnitPacking.objects.filter(container_id__any=containers) if containers else UnitPacking.objects.none()
    return Unit.objects.filter(Q(pk__any=frozenset(loose)) | Q(pk__in=packed.values("unit_id")))


def units_packed_in(container_id: int) -> QuerySet[Unit]:
    """The units packed in a container, or in those packed in it at any depth (one query per level
    of nesting; the units a subquery)."""
    containers = containers_within({container_id})
    return Unit.objects.filter(pk__in=UnitPacking.objects.filter(container_id__any=containers).values("unit_id"))


def units_of(organisation_id: int, *, containers: frozenset[int] | None = None) -> Q:
    """The units an organisation owns or received, as a condition on ``Unit`` (``containers``: its
    ``received_containers``, when read already)."""
    return Q(owner_id=organisation_id) | Q(pk__in=received_units(organisation_id, containers=containers))


def party_view(forward: Forward, organisation_id: int) -> PartyView:
    """``organisation_id``'s share of ``forward``: its own units counted, and others' units its lots
    went into counted per owner (the part of the result downstream of the party's lots among those
    the trace reached, the subject included, told from what the trace walked: ``downstream``; when
    the trace's subject is the party's own lots, that is the whole result).

    Counted per owner from the segments' stored totals where they are exact, as the unscoped count
    sums them (``_counts_summed``): a segment of one owner's units by its total, a mixed one from
    the party roll-up (``SegmentOwner``), with no condition on the party's units in any query: a
    ``units_of`` subquery made the planner hash every unit the party owns (130 ms at 10k affected
    units in the 200k-unit bench world, against 7 ms). Units it received from others are counted
    apart, unit by unit, and only when it has received anything. The second trace from the party's
    own lots that this replaced cost a cell maker's share of the 1M bench trace ~45 ms more than a
    brand's (CPU time, on a busy machine); it now costs 5-8 ms more.
    """
    single = _single_owners(forward)
    owned = _mixed_owner_counts(forward, single)
    by_owner = _counts_summed(forward, set(forward.segments), single=single, owned=owned)
    definite, potential = by_owner.get(organisation_id, (0, 0))
    if received_anything(organisation_id):
        received = _counts_by_owner(forward, set(forward.segments), only=Q(pk__in=received_units(organisation_id)))
        definite += sum(d for owner, (d, _) in received.items() if owner != organisation_id)
        potential += sum(p for owner, (_, p) in received.items() if owner != organisation_id)
    own_lots = set(
        Lot.objects.filter(pk__any=frozenset(forward.lots), owner_id=organisation_id)
        .values_list("pk", flat=True)
        .order_by()
    )
    others: dict[int, tuple[int, int]] = {}
    if own_lots and _seeded_by(forward, own_lots):
        others = dict(by_owner)
    elif own_lots:
        segments, linked = _downstream_part(forward, own_lots)
        whole = segments == forward.segments.keys() and linked == forward.units.keys()
        others = (
            dict(by_owner) if whole else _counts_summed(forward, segments, single=single, owned=owned, linked=linked)
        )
    others.pop(organisation_id, None)
    return PartyView(
        organisation_id=organisation_id,
        definite_units=definite,
        potential_units=potential,
        others=tuple(OthersCount(owner, d, p) for owner, (d, p) in sorted(others.items())),
    )


def _downstream_part(forward: Forward, lots: set[int]) -> tuple[set[int], set[int]]:
    """The segments of ``forward`` downstream of ``lots`` (some of the lots it reached) and the
    units it reached through unit links from them: from what the trace walked when it kept that
    (``downstream``, no query), else by tracing ``lots`` again at the same position."""
    if (part := downstream(forward, lots)) is not None:
        return part
    again = forward_trace(snapshot=forward.snapshot, seed_lot_ids=lots)
    return forward.segments.keys() & again.segments.keys(), again.units.keys() & forward.units.keys()


def _seeded_by(forward: Forward, lots: set[int]) -> bool:
    """Whether everything ``forward`` reached is downstream of ``lots``: its seeds (the lots and
    units reached by no link, so with no path) are all among them. A result read back without its
    paths looks seeded by every lot it reached: then it is only when the party owns them all."""
    return all(reached.path or lot in lots for lot, reached in forward.lots.items()) and all(
        reached.path for reached in forward.units.values()
    )


def received_anything(organisation_id: int) -> bool:
    """Whether any shipment was addressed to the organisation: one query."""
    return ShipmentItem.objects.filter(to_organisation(organisation_id, through="shipment__")).exists()


def party_part(forward: Forward, organisation_id: int) -> Forward:
    """The part of ``forward`` that can hold the units ``organisation_id`` owns or received: its
    segments with a party roll-up row of that owner (every segment, when it received anything),
    and the units reached through unit links. A listing of the party's units scans these instead
    of every unit of the result (the other brands' too). Two queries.

    A party that received nothing has only its own units to list: the part keeps its owner, and
    the roll-up's bounds of its units per segment (read in the same query), so a page merges the
    party's own rows (``affected``) instead of every owner's and filtering them afterwards."""
    if forward.part_of == organisation_id:  # taken already (a run's result read as the part)
        return forward
    if received_anything(organisation_id):
        return replace(forward, part_of=organisation_id)
    bounds = {
        segment: (first, last, count)
        for segment, first, last, count in SegmentOwner.objects.filter(
            segment_id__any=frozenset(forward.segments), owner_id=organisation_id
        ).values_list("segment_id", "first_unit_id", "last_unit_id", "unit_count")
    }
    return replace(
        forward,
        segments={s: reached for s, reached in forward.segments.items() if s in bounds},
        sums=None,
        owner_id=organisation_id,
        part_of=organisation_id,
        bounds=bounds,
    )


def segment_owner_counts(segment_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Segment -> owner -> member rows of that owner's units ever written: one query, the party
    roll-up's rows of the segments.

    On PostgreSQL the roll-up's key is probed once per segment (a lateral subquery the planner
    cannot flatten): asked for ``segment_id = ANY(ids)``, it read the whole roll-up instead, 73k
    rows for the ~1,500 mixed segments of a million-unit trace in the 10M-unit bench world (15 ms,
    against 3.5 ms; with the planner's sequential scans switched off, 5 ms and three more round
    trips for the transaction that holds the setting)."""
    ids = frozenset(segment_ids)
    counts: dict[int, dict[int, int]] = {}
    if not ids:
        return counts
    table = SegmentOwner._meta.db_table
    in_ids, params = any_sql("segment_id", ids, connection)
    if connection.vendor == "postgresql":  # ``params`` is the ids as one array literal
        sql = (
            f"SELECT s.id, o.owner_id, o.unit_count FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN LATERAL"
            f" (SELECT owner_id, unit_count FROM {table} WHERE segment_id = s.id OFFSET 0) o"
        )
    else:
        sql = f"SELECT segment_id, owner_id, unit_count FROM {table} WHERE {in_ids}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for segment, owner, count in cursor.fetchall():
            counts.setdefault(segment, {})[owner] = count
    return counts


def _single_owners(forward: Forward) -> dict[int, int]:
    """Segment -> the organisation owning all its units (``Segment.owner`` where not
    ``owners_mixed``), as the trace read them with the segments' inputs; none for a result that
    kept no walk (a stored run's)."""
    if forward.walked is None:
        return {}
    return {
        segment: owner
        for segment, _, _, _, _, owner, mixed in forward.walked.segment_inputs
        if owner is not None and not mixed
    }


def _mixed_owner_counts(forward: Forward, single: dict[int, int]) -> dict[int, dict[int, int]]:
    """``segment_owner_counts`` of the clean segments of ``forward`` not in ``single`` (units of
    several organisations, or whose owner the trace did not read): the only segments
    ``_counts_summed`` needs the party roll-up for."""
    return segment_owner_counts(segment for segment in sums_of(forward).clean if segment not in single)


def _counts_summed(
    forward: Forward,
    segments: set[int],
    *,
    single: dict[int, int],
    owned: dict[int, dict[int, int]],
    linked: set[int] | None = None,
) -> dict[int, tuple[int, int]]:
    """What ``_counts_by_owner`` answers (without ``only``), summed where a segment's totals are
    exact: a clean segment (``Sums``) adds its stored total to its owner's count when its units are
    one organisation's (``single``: ``_single_owners``), else each owner's count from the party
    roll-up (``owned``: ``_mixed_owner_counts``), with no join of its members. Dirty segments are counted
    unit by unit (``_counts_by_owner`` on just those), and units with several rows settled once, at
    their best exposure, as ``affected_counts`` settles them."""
    sums = sums_of(forward)
    clean = {segment for segment in segments if segment in sums.clean}
    exact = _counts_by_owner(forward, segments - clean, linked=set())
    counts = {owner: [d, p] for owner, (d, p) in exact.items()}
    for segment in clean:
        slot = 0 if forward.segments[segment].definite else 1
        if (owner := single.get(segment)) is not None:
            counts.setdefault(owner, [0, 0])[slot] += sums.clean[segment]
            continue
        for other, count in owned.get(segment, {}).items():
            counts.setdefault(other, [0, 0])[slot] += count
    repeated = {unit: [s for s in rows if s in segments] for unit, rows in sums.repeated.items()}
    repeated = {unit: rows for unit, rows in repeated.items() if any(s in clean for s in rows)}
    if repeated:  # counted once per row by the sums: settled once, under the unit's owner
        owner_of = dict(Unit.objects.filter(pk__any=frozenset(repeated)).values_list("pk", "owner_id"))
        for unit, rows in repeated.items():
            tally = counts[owner_of[unit]]
            for segment in rows:
                if segment in clean:
                    tally[0 if forward.segments[segment].definite else 1] -= 1
            if counted := [segment for segment in rows if segment not in clean]:
                tally[0 if any(forward.segments[segment].definite for segment in counted) else 1] -= 1
            tally[0 if any(forward.segments[segment].definite for segment in rows) else 1] += 1
    _linked_count(forward, segments, set(forward.units) if linked is None else linked, Unit.objects.all(), counts)
    return {owner: (d, p) for owner, (d, p) in counts.items() if d or p}


def _counts_by_owner(
    forward: Forward, segments: set[int], *, only: Q | None = None, linked: set[int] | None = None
) -> dict[int, tuple[int, int]]:
    """(definite, potential) units per owner among the members of ``segments`` (and the units
    reached through unit links, ``linked``; all of ``forward.units`` when None), those matching
    ``only`` when given, each unit once, definite when any of its segments is (as exposed to the
    trace's subject)."""
    counts: dict[int, list[int]] = {}
    units = Unit.objects.filter(only) if only is not None else Unit.objects.all()
    if segments:
        definite = {s for s in segments if forward.segments[s].definite}
        in_segments, params = any_sql("m.segment_id", segments, connection)
        in_definite, definite_params = any_sql("m.segment_id", definite, connection)
        valid, valid_params = forward.snapshot.valid_sql("m.transformation_id")
        chosen, chosen_params = "", ()
        if only is not None:
            chosen_sql, chosen_params = units.values("pk").query.sql_with_params()
            chosen = f" WHERE u.id IN ({chosen_sql})"
        # Each member's unit by its primary key: planned freely, PostgreSQL hashed a scan of every
        # unit in the ledger (the 200k-unit bench world: 47 ms for 10k members; 10M units would scan 10M).
        with cursor_planned_without("seqscan", "hashjoin", "mergejoin") as cursor:
            cursor.execute(
                f"SELECT u.owner_id, SUM(x.definite), COUNT(*) - SUM(x.definite) FROM ("
                f" SELECT m.unit_id, MAX(CASE WHEN {in_definite} THEN 1 ELSE 0 END) AS definite"
                f" FROM {SegmentMember._meta.db_table} m WHERE {in_segments} AND {valid} GROUP BY m.unit_id"
                f") x JOIN {Unit._meta.db_table} u ON u.id = x.unit_id{chosen} GROUP BY u.owner_id",
                [*definite_params, *params, *valid_params, *chosen_params],
            )
            counts = {owner: [int(d), int(p)] for owner, d, p in cursor.fetchall()}
    _linked_count(forward, segments, set(forward.units) if linked is None else linked, units, counts)
    return {owner: (d, p) for owner, (d, p) in counts.items()}


def _linked_count(
    forward: Forward, segments: set[int], linked: set[int], units: QuerySet[Unit], counts: dict[int, list[int]]
) -> None:
    """Add to ``counts`` the ``linked`` units among ``units``: units reached through unit links
    (refurbished ones) are no segment's members, so they are counted apart. One that ``segments``
    counted already is definite when either way to it is, as ``affected_counts`` has it: a unit
    counted potential by its segments but reached definitely through a unit link moves across."""
    if not linked:
        return
    through_segments: dict[int, bool] = {}  # unit -> definite through ``segments``
    if segments:
        rows = members(forward.snapshot, sorted(segments)).filter(unit_id__any=frozenset(linked))
        for unit, segment in rows.values_list("unit_id", "segment_id"):
            through_segments[unit] = through_segments.get(unit, False) or forward.segments[segment].definite
    for owner, unit in units.filter(pk__any=frozenset(linked)).values_list("owner_id", "pk"):
        definite = forward.units[unit].definite
        if unit not in through_segments:
            counts.setdefault(owner, [0, 0])[0 if definite else 1] += 1
        elif definite and not through_segments[unit]:
            counts[owner][0] += 1
            counts[owner][1] -= 1
