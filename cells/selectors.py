"""Reads of lots' limits and inspections, as the supplier portal and the REST API show them, and of
the limits each material and cell model holds its lots to."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from cells.models import CellModel, Inspection, Lot, LotKind, Material, Spec


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


def materials_limits(*, within: Q) -> QuerySet[Material]:
    """The materials ``within`` names (the access policy's ``limits_readable``), by name, each with
    its limits by property (``specs``): two queries, whatever their number."""
    return Material.objects.filter(within).order_by("name", "pk").prefetch_related(_specs())


def cell_models_limits(*, within: Q) -> QuerySet[CellModel]:
    """The cell models ``within`` names, by name, each with its limits by property: two queries."""
    return CellModel.objects.filter(within).order_by("name", "pk").prefetch_related(_specs())


def _specs() -> Prefetch:
    return Prefetch("specs", queryset=Spec.objects.order_by("property", "pk"))
