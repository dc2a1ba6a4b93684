"""The backward trace: from a unit or lot to every lot upstream of it, with the links between them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cells.models import Lot
from traceability.genealogy.forward import _carry, walk
from traceability.genealogy.models import (
    Exposure,
    LotLink,
    SegmentMember,
    UnitLink,
)
from traceability.genealogy.snapshot import Snapshot
from traceability.genealogy.trace import Link, Reached, combine, extend, reach


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
        units = reach([unit_id], walk(UnitLink, snapshot, [unit_id], forward=False))
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
    upstream = walk(LotLink, snapshot, seed_lots, forward=False) if seed_lots else []
    lots: dict[int, Reached] = dict(seed_lots)
    for start, start_reached in seed_lots.items():
        for node, via in reach([start], upstream).items():
            lots[node] = combine(lots.get(node), _carry(start_reached, via.path))
    if lot_id is not None:
        lots.pop(lot_id, None)
    if unit_id is not None:
        units.pop(unit_id, None)
    return Backward(snapshot=snapshot, lots=lots, units=units)


def lots_by_id(ids: Iterable[int]) -> dict[int, Lot]:
    return {lot.pk: lot for lot in Lot.objects.filter(pk__any=set(set(ids))).select_related("owner", "site")}
