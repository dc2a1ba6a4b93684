"""Whose units a trace reaches: the reads the access policy's answers are made of.

A trace's result holds units of several organisations. ``party_view`` says, for one of them, how
many units it owns or received (definite, potential) and how many units of each other organisation
its own lots went into; ``units_of`` is the condition on ``Unit`` for the first kind. Both are
set-based: one grouped query over the result's members per question, never one per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from cells.models import Lot
from packs.models import ContainerPacking, ShipmentItem, Unit, UnitPacking
from traceability.core.db import any_sql, cursor_planned_without
from traceability.genealogy.forward import Forward, forward_trace, members
from traceability.genealogy.models import SegmentMember


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


def received_units(organisation_id: int) -> QuerySet[Unit]:
    """The units shipped to an organisation: loose, or packed in a container it received, at any
    depth of nesting (a subquery; the containers' closure is one query per level)."""
    containers = set(
        ShipmentItem.objects.filter(shipment__consignee_id=organisation_id, container__isnull=False).values_list(
            "container_id", flat=True
        )
    )
    level = containers
    while level:
        level = set(ContainerPacking.objects.filter(parent_id__any=level).values_list("child_id", flat=True))
        level -= containers
        containers |= level
    loose = ShipmentItem.objects.filter(shipment__consignee_id=organisation_id, unit__isnull=False)
    packed = UnitPacking.objects.filter(container_id__any=containers) if containers else UnitPacking.objects.none()
    return Unit.objects.filter(Q(pk__in=loose.values("unit_id")) | Q(pk__in=packed.values("unit_id")))


def units_of(organisation_id: int) -> Q:
    """The units an organisation owns or received, as a condition on ``Unit``."""
    return Q(owner_id=organisation_id) | Q(pk__in=received_units(organisation_id))


def party_view(forward: Forward, organisation_id: int) -> PartyView:
    """``organisation_id``'s share of ``forward``: its own units counted, and others' units its lots
    went into counted per owner (the party's lots among those the trace reached, the subject
    included, traced again at the same position: the segments both traces reach hold them).

    Counted per owner over the segments, with no condition on the party's units in the query: a
    ``units_of`` subquery made the planner hash every unit the party owns (130 ms at 10k affected
    units in the 200k-unit bench world, against 7 ms). Units it received from others are counted
    apart, and only when it has received anything.
    """
    by_owner = _counts_by_owner(forward, set(forward.segments))
    definite, potential = by_owner.get(organisation_id, (0, 0))
    if ShipmentItem.objects.filter(shipment__consignee_id=organisation_id).exists():
        received = _counts_by_owner(forward, set(forward.segments), only=Q(pk__in=received_units(organisation_id)))
        definite += sum(d for owner, (d, _) in received.items() if owner != organisation_id)
        potential += sum(p for owner, (_, p) in received.items() if owner != organisation_id)
    own_lots = set(
        Lot.objects.filter(pk__any=frozenset(forward.lots), owner_id=organisation_id).values_list("pk", flat=True)
    )
    others: dict[int, tuple[int, int]] = {}
    if own_lots:
        downstream = forward_trace(snapshot=forward.snapshot, seed_lot_ids=own_lots)
        segments = forward.segments.keys() & downstream.segments.keys()
        linked = downstream.units.keys() & forward.units.keys()
        others = _counts_by_owner(forward, segments, linked=linked)
        others.pop(organisation_id, None)
    return PartyView(
        organisation_id=organisation_id,
        definite_units=definite,
        potential_units=potential,
        others=tuple(OthersCount(owner, d, p) for owner, (d, p) in sorted(others.items())),
    )


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
    # Units reached through unit links (refurbished ones) are no segment's members: counted apart,
    # unless a segment counted them already.
    linked = set(forward.units) if linked is None else linked
    if linked:
        in_segments_too = (
            set(
                members(forward.snapshot, sorted(segments))
                .filter(unit_id__any=frozenset(linked))
                .values_list("unit_id", flat=True)
            )
            if segments
            else set()
        )
        for owner, unit in units.filter(pk__any=frozenset(linked)).values_list("owner_id", "pk"):
            if unit not in in_segments_too:
                counts.setdefault(owner, [0, 0])[0 if forward.units[unit].definite else 1] += 1
    return {owner: (d, p) for owner, (d, p) in counts.items()}
