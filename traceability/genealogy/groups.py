"""The units a forward trace reaches, counted by what they are: product model, work order, site and
month of production, each unit once, definite when any path to it is (as ``affected_counts``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth

from packs.models import Unit
from traceability.core.db import cursor_planned_without
from traceability.genealogy.affected import segment_exposures
from traceability.genealogy.counts import sums_of
from traceability.genealogy.forward import Forward, members

GroupKey = tuple[int, int | None, int | None, str | None]


@dataclass(frozen=True)
class UnitGroup:
    """Affected units sharing a product model, work order, site and month of production."""

    product_model_id: int
    work_order_id: int | None
    site_id: int | None
    month: str | None  # YYYY-MM of production, in the current time zone; None: not recorded
    units: int
    definite: int


def affected_groups(forward: Forward, *, only: Q | None = None) -> list[UnitGroup]:
    """The affected units of ``forward`` (those matching ``only``, a condition on ``Unit``, when
    given) counted per (product model, work order, site, month of production): two queries.

    One GROUP BY over the member rows of the reached segments, each joined with its unit by
    primary key, leaving out the few units a GROUP BY over rows would miscount (``Sums.repeated``:
    several valid rows in the reached segments; and the units reached through unit links, which
    have no row or a second way in); those are settled one by one and read in one more query.
    Grouped over the units instead (``pk IN (members) OR pk IN (linked)``), PostgreSQL could not
    hash the members' subquery and ran it again for every unit of the ledger: 14.6 s at 100k
    affected units in the bench world, over 40 minutes at 1M.
    """
    sums = sums_of(forward)
    apart = sums.repeated.keys() | forward.units.keys()
    counts: dict[GroupKey, list[int]] = {}
    fields = ("unit__product_model_id", "unit__work_order_id", "unit__site_id", "month")
    if segment_ids := forward.segment_ids():
        rows = members(forward.snapshot, segment_ids)
        if apart:
            rows = rows.exclude(unit_id__any=frozenset(apart))
        if only is not None:
            rows = rows.filter(unit_id__in=Unit.objects.filter(only).order_by().values("pk"))
        definite = Q(segment_id__any=frozenset(forward.segment_ids(definite=True)))
        grouped = (
            rows.annotate(month=TruncMonth("unit__produced_at"))
            .values(*fields)
            .annotate(units=Count("unit_id"), definite=Count("unit_id", filter=definite))
            .values_list(*fields, "units", "definite")
        )
        # Each member's unit by its primary key: planned freely, PostgreSQL hashed a scan of every
        # unit of the ledger to meet them (as ``parties._counts_by_owner`` found).
        with cursor_planned_without("seqscan", "hashjoin", "mergejoin"):
            for model, order, site, month, units, definites in grouped:
                counts[(model, order, site, _month(month))] = [units, definites]
    if apart:
        _settle_apart(forward, sums.repeated, only, counts)
    return [UnitGroup(*key, units, definite) for key, (units, definite) in counts.items()]


def _settle_apart(
    forward: Forward, repeated: dict[int, list[int]], only: Q | None, counts: dict[GroupKey, list[int]]
) -> None:
    """Add to ``counts`` the units left out of the GROUP BY, each once at its best exposure: through
    the reached segments (its rows there) or through unit links, definite when either way is."""
    definite = {unit: any(forward.segments[s].definite for s in segments) for unit, segments in repeated.items()}
    linked = forward.units.keys() - definite.keys()
    definite |= segment_exposures(forward, linked)
    for unit, reached in forward.units.items():
        definite[unit] = definite.get(unit, False) or reached.definite
    units = Unit.objects.filter(only) if only is not None else Unit.objects.all()
    read = (
        units.filter(pk__any=frozenset(definite))
        .annotate(month=TruncMonth("produced_at"))
        .order_by()
        .values_list("pk", "product_model_id", "work_order_id", "site_id", "month")
    )
    for unit, model, order, site, month in read:
        group = counts.setdefault((model, order, site, _month(month)), [0, 0])
        group[0] += 1
        group[1] += definite[unit]


def _month(value: object) -> str | None:
    return f"{value:%Y-%m}" if value is not None else None
