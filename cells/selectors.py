"""Reads of lots' limits and inspections, as the supplier portal and the REST API show them."""

from __future__ import annotations

from django.db.models import QuerySet

from cells.models import Inspection, Lot, LotKind, Spec


def lot_specs(*, lot: Lot) -> QuerySet[Spec]:
    """The limits ``lot``'s values are checked against: its material's, or its cell model's (a
    module lot has none). One query."""
    if lot.kind == LotKind.MATERIAL:
        return Spec.objects.filter(material__lots__pk=lot.pk)
    if lot.kind == LotKind.CELL:
        return Spec.objects.filter(cell_model__lots__pk=lot.pk)
    return Spec.objects.none()


def lot_inspections(*, lot: Lot) -> QuerySet[Inspection]:
    """The inspections of ``lot`` its owner made, newest first, each with its measured values and
    who recorded it: two queries, whatever their number."""
    return (
        Inspection.objects.filter(lot=lot, owner_id=lot.owner_id)
        .select_related("recorded_by")
        .prefetch_related("results")
        .order_by("-inspected_at", "-id")
    )
