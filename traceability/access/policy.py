"""Who may trace what: the one answer every interface asks for (DESIGN.md, "Who sees what").

A party may trace what it owns, received or consumed, and what is upstream of its own units; a
regulator, and the operator at the command line, may trace anything. Anything else answers as
unknown, so an interface that is refused says "not found", never "forbidden": existence does not
leak.

"Consumed" and "upstream of its own units" are one question asked of the forward trace the finding
would start anyway: does anything the subject reaches belong to the party (a lot it made from the
subject, a unit it built or received)? The trace's own reads answer it, set-based: the lots reached,
one existence probe of the reached segments' members for the party's units, and the consignees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from cells.models import Lot
from packs.models import ContainerPacking, ShipmentItem, Unit, UnitPacking
from suppliers.models import MemberRole, Organisation, Role
from traceability import genealogy
from traceability.core.db import any_sql
from traceability.genealogy.models import SegmentMember


@dataclass(frozen=True)
class Actor:
    """Who is asking: the organisation a user acts for and their role in it, a regulator, or the
    operator (a command run without ``--as``, which acts for no organisation and sees everything)."""

    organisation_id: int | None
    member_role: str | None = None
    regulator: bool = False
    operator: bool = False

    @classmethod
    def of(cls, organisation: Organisation | None, member_role: str | None = None) -> Actor:
        return cls(
            organisation_id=organisation.pk if organisation is not None else None,
            member_role=member_role,
            regulator=organisation is not None and organisation.role == Role.REGULATOR,
        )

    @property
    def sees_all(self) -> bool:
        return self.operator or self.regulator

    @property
    def may_write(self) -> bool:
        """QA engineers and organisation admins write; viewers and regulators read."""
        return self.operator or (not self.regulator and self.member_role in (MemberRole.QA, MemberRole.ADMIN))

    def owns(self, owner_id: int | None) -> bool:
        return self.organisation_id is not None and owner_id == self.organisation_id


OPERATOR = Actor(organisation_id=None, operator=True)


def trace_allowed(actor: Actor, *, lot_ids: Iterable[int] = (), unit_ids: Iterable[int] = ()) -> bool:
    """Whether ``actor`` may trace forward from these lots and units (all of them).

    Each seed must be the actor's own, or reach (at the ledger's head) something the actor owns or
    received: a lot it made from it, a unit it built from it, a unit shipped to it (the seed unit
    itself included).
    """
    lots, units = sorted(set(lot_ids)), sorted(set(unit_ids))
    if actor.sees_all:
        return True
    if actor.organisation_id is None or not (lots or units):
        return False
    org = actor.organisation_id
    owned_lots = set(Lot.objects.filter(pk__any=frozenset(lots), owner_id=org).values_list("pk", flat=True))
    owned_units = set(Unit.objects.filter(pk__any=frozenset(units), owner_id=org).values_list("pk", flat=True))
    snapshot = genealogy.ledger_snapshot()
    return all(
        _reaches_own(actor, genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot]))
        for lot in lots
        if lot not in owned_lots
    ) and all(
        _reaches_own(actor, genealogy.forward_trace(snapshot=snapshot, seed_unit_ids=[unit]), seed_unit=unit)
        for unit in units
        if unit not in owned_units
    )


def _reaches_own(actor: Actor, forward: genealogy.Forward, *, seed_unit: int | None = None) -> bool:
    org = actor.organisation_id
    downstream_lots = forward.lots.keys()
    if downstream_lots and Lot.objects.filter(pk__any=frozenset(downstream_lots), owner_id=org).exists():
        return True  # it made a lot from the subject
    segments = forward.segment_ids()
    if (
        segments
        and SegmentMember.objects.filter(
            forward.snapshot.valid(), segment_id__any=frozenset(segments), unit__owner_id=org
        ).exists()
    ):
        return True  # it built a unit from the subject
    reached_units = forward.units.keys() - {seed_unit}
    if reached_units and Unit.objects.filter(pk__any=frozenset(reached_units), owner_id=org).exists():
        return True  # it rebuilt a unit from the subject
    return any(consignee.organisation_id == org for consignee in genealogy.consignees(forward))


# --- what a result shows whom ----------------------------------------------------------------------


@dataclass(frozen=True)
class OthersCount:
    """Affected units of another organisation, shown to a party only as how many."""

    organisation_id: int
    definite_units: int
    potential_units: int


@dataclass(frozen=True)
class ResultScope:
    """What one party may see of a trace result.

    ``full``: everything (a regulator, the operator). Otherwise the units the party owns or received
    are shown in full (``units_shown``); the units of others that its own lots went into (it supplied
    them, directly or through what it made) are counted per organisation (``others``); anything else
    is not there at all, not even as a number.
    """

    full: bool
    organisation_id: int | None = None
    others: tuple[OthersCount, ...] = ()

    def units_shown(self) -> Q:
        """The units shown in full, as a filter on ``Unit``."""
        if self.full:
            return Q()
        if self.organisation_id is None:
            return Q(pk__in=[])
        return Q(owner_id=self.organisation_id) | Q(pk__in=received_units(self.organisation_id))


FULL = ResultScope(full=True)


def result_scope(actor: Actor, forward: genealogy.Forward) -> ResultScope:
    """How much of ``forward`` (a trace's result, at its own ledger position) ``actor`` may see."""
    if actor.sees_all:
        return FULL
    if actor.organisation_id is None:
        return ResultScope(full=False)
    return ResultScope(full=False, organisation_id=actor.organisation_id, others=tuple(_others_counted(actor, forward)))


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


def _others_counted(actor: Actor, forward: genealogy.Forward) -> list[OthersCount]:
    """Units of other organisations downstream of ``actor``'s own lots in this result, per owner.

    The party's lots among those the trace reached (the subject included) are traced again at the
    same position: the segments both traces reach hold the units its lots went into. One grouped
    query counts them per owner, each unit once, definite when any of its segments is.
    """
    org = actor.organisation_id
    own_lots = set(Lot.objects.filter(pk__any=frozenset(forward.lots), owner_id=org).values_list("pk", flat=True))
    if not own_lots:
        return []
    downstream = genealogy.forward_trace(snapshot=forward.snapshot, seed_lot_ids=own_lots)
    segments = forward.segments.keys() & downstream.segments.keys()
    definite = {s for s in segments if forward.segments[s].definite}  # exposure to the subject, not to the lot
    counts: dict[int, list[int]] = {}
    if segments:
        in_segments, params = any_sql("m.segment_id", segments, connection)
        in_definite, definite_params = any_sql("m.segment_id", definite, connection)
        valid, valid_params = forward.snapshot.valid_sql("m.transformation_id")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT u.owner_id, SUM(x.definite), COUNT(*) - SUM(x.definite) FROM ("
                f" SELECT m.unit_id, MAX(CASE WHEN {in_definite} THEN 1 ELSE 0 END) AS definite"
                f" FROM {SegmentMember._meta.db_table} m WHERE {in_segments} AND {valid} GROUP BY m.unit_id"
                f") x JOIN {Unit._meta.db_table} u ON u.id = x.unit_id WHERE u.owner_id <> %s GROUP BY u.owner_id",
                [*definite_params, *params, *valid_params, org],
            )
            counts = {owner: [int(d), int(p)] for owner, d, p in cursor.fetchall()}
    # Units reached through unit links (refurbished ones) are no segment's members: counted apart,
    # unless a segment counted them already.
    linked = frozenset(downstream.units.keys() & forward.units.keys())
    if linked:
        in_segments_too = set(
            genealogy.members(forward.snapshot, sorted(segments))
            .filter(unit_id__any=linked)
            .values_list("unit_id", flat=True)
        )
        for owner, unit in Unit.objects.filter(pk__any=linked).exclude(owner_id=org).values_list("owner_id", "pk"):
            if unit not in in_segments_too:
                counts.setdefault(owner, [0, 0])[0 if forward.units[unit].definite else 1] += 1
    return [OthersCount(owner, d, p) for owner, (d, p) in sorted(counts.items())]
