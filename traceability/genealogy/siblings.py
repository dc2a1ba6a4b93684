"""A unit's siblings: the units that share an input lot with it."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from packs.models import Unit
from traceability.genealogy.models import (
    SegmentInput,
    SegmentMember,
)
from traceability.genealogy.snapshot import Snapshot


@dataclass(frozen=True)
class Siblings:
    shared_lots: list[int]  # the unit's direct input lots
    units: dict[int, list[int]]  # sibling -> the shared lots it was made from, in unit id order
    next_after: int | None  # the cursor of the next page, or None on the last one


def siblings(
    *, snapshot: Snapshot, unit_id: int, after: int = 0, limit: int = 100, among: QuerySet[Unit] | None = None
) -> Siblings:
    """One page of the units sharing a direct input lot with the unit, with the lots they share;
    only those ``among`` (all by default).

    Direct inputs (the cell or module lots the unit was built from) are what "sibling" means to a
    QA team; sharing a material lot further up is the forward trace of that lot. Three queries.
    The page is cut among ``among`` in the query, so its cursor never points past units the reader
    may not see (a page of hidden siblings, or a cursor at one, would say they exist).
    """
    shared_lots, pairs = _pairs(snapshot=snapshot, unit_id=unit_id, among=among)
    if pairs is None:
        return Siblings([], {}, None)
    # Each sibling has at most one pair per shared lot, so this many pairs hold ``limit`` whole units.
    rows = (
        pairs.filter(unit_id__gt=after)
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


def siblings_count(*, snapshot: Snapshot, unit_id: int, among: QuerySet[Unit] | None = None) -> int:
    """How many units share a direct input lot with the unit (of those ``among``), as ``siblings``
    pages them: two queries (the unit's lots, then one count), whatever their number."""
    _, pairs = _pairs(snapshot=snapshot, unit_id=unit_id, among=among)
    return 0 if pairs is None else pairs.values("unit_id").distinct().count()


def _pairs(
    *, snapshot: Snapshot, unit_id: int, among: QuerySet[Unit] | None
) -> tuple[list[int], QuerySet[SegmentMember] | None]:
    """The unit's direct input lots (one query), and the memberships of the other units of ``among``
    made from any of them (a query not yet run): None when the unit has no input lot."""
    if among is not None and not among.query.where and not among.query.is_sliced:
        # Every unit (a reader who sees all: ``Q()``): a semi-join on the unit table would probe
        # it once per candidate pair and keep them all (~0.5 ms per page on the 1M bench world).
        among = None
    own = SegmentMember.objects.filter(snapshot.valid(), unit_id=unit_id).values("segment_id")
    shared_lots = sorted(set(SegmentInput.objects.filter(segment_id__in=own).values_list("lot_id", flat=True)))
    if not shared_lots:
        return [], None
    pairs = (
        SegmentMember.objects.filter(snapshot.valid(), segment__inputs__lot_id__any=frozenset(shared_lots))
        .filter(**({} if among is None else {"unit__in": among.values("pk")}))
        .exclude(unit_id=unit_id)
    )
    return shared_lots, pairs
