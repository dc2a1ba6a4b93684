"""Admin for materials, cell models, lots of every kind and their inspections.

Each lot kind has its own admin; the base ``Lot`` admin is a list of every lot (filter by kind)
that links each row to its kind's admin, and is what lot autocompletes search. Lots are ledger
facts: view only, for everyone. Materials and cell models are reference data: editable, never
deleted while named. An inspection result is recorded here and then stands as it was recorded
(findings cite it as evidence): added, never changed or deleted; its measured values with it. A
spec (the limits of a material's or cell model's property) is reference data: editable, and an
inspection keeps the limits it was judged against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from cells.models import CellLot, CellModel, Inspection, Lot, Material, MaterialLot, Measurement, ModuleLot, Spec
from suppliers.admin import (
    IdentifierSearchMixin,
    LoadedRowsInlineMixin,
    OrganisationScopedAdminMixin,
    ReadOnlyAdminMixin,
    ReferenceDataAdminMixin,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

LOT_SEARCH_FIELDS = ("identity", "code", "gtin")
LOT_SEARCH_HELP = "Lot code, GTIN, EPC URN, GS1 Digital Link or identity (lgtin:04012345123456:L1)."


@admin.register(Material)
class MaterialAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
    list_display = ("name", "kind", "owner", "gtin")
    list_filter = ("kind", "owner")
    list_select_related = ("owner",)
    search_fields = ("name", "gtin", "owner__name")
    search_help_text = "Material name, GTIN or owner name."
    autocomplete_fields = ("owner",)


@admin.register(CellModel)
class CellModelAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
    list_display = ("name", "chemistry", "format", "capacity_mah", "nominal_voltage", "gtin", "owner")
    list_filter = ("chemistry", "format", "owner")
    list_select_related = ("owner",)
    search_fields = ("name", "gtin", "owner__name")
    search_help_text = "Cell model name, GTIN or owner name."
    autocomplete_fields = ("owner",)


class InspectionInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.StackedInline):
    model = Inspection
    fk_name = "lot"
    fields = (
        ("method", "outcome", "inspected_at"),
        ("owner", "site", "sample_size"),
        "measurements",
        "notes",
        "attachment",
    )
    autocomplete_fields = ("owner", "site")
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Inspection]:
        return super().get_queryset(request).select_related("owner", "site__owner")


@admin.register(Lot)
class LotAdmin(IdentifierSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every lot, whatever its kind; each row links to its kind's own page (``kind page`` column)."""

    list_display = ("identity", "code", "kind", "gtin", "owner", "produced_from", "quantity", "uom", "edit_link")
    list_filter = ("kind", "owner")
    list_select_related = ("owner",)
    search_fields = LOT_SEARCH_FIELDS
    search_help_text = LOT_SEARCH_HELP
    date_hierarchy = "produced_from"
    inlines = (InspectionInline,)

    @admin.display(description="kind page")
    def edit_link(self, obj: Lot) -> str:
        try:
            url = reverse(f"{self.admin_site.name}:cells_{obj.kind}lot_change", args=[obj.pk])
        except NoReverseMatch:
            return "-"
        return format_html('<a href="{}">{} lot</a>', url, obj.kind)


class LotKindAdmin(IdentifierSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the three lot kinds' admins share."""

    # Typed as any length: each kind's admin extends them.
    list_filter: ClassVar[tuple[str, ...]] = ("owner",)
    search_fields: ClassVar[tuple[str, ...]] = LOT_SEARCH_FIELDS
    search_help_text = LOT_SEARCH_HELP
    date_hierarchy = "produced_from"
    autocomplete_fields: ClassVar[tuple[str, ...]] = ("owner", "site")
    inlines = (InspectionInline,)
    lot_fields = ("owner", "identity", "code", "gtin", "site", ("produced_from", "produced_to"), ("quantity", "uom"))
    kind_fields: tuple = ()

    def get_fieldsets(self, request: HttpRequest, obj: Lot | None = None) -> _FieldsetSpec:
        return [
            (None, {"fields": self.lot_fields}),
            (self.model._meta.verbose_name.capitalize(), {"fields": self.kind_fields}),
        ]


@admin.register(MaterialLot)
class MaterialLotAdmin(LotKindAdmin):
    list_display = ("identity", "code", "material", "owner", "site", "produced_from", "quantity", "uom")
    list_filter = ("material__kind", "owner")
    list_select_related = ("material", "owner", "site__owner")
    search_fields = (*LOT_SEARCH_FIELDS, "material__name")
    autocomplete_fields = ("owner", "site", "material")
    kind_fields = ("material",)


@admin.register(CellLot)
class CellLotAdmin(LotKindAdmin):
    list_display = ("identity", "code", "cell_model", "owner", "site", "produced_from", "quantity", "uom")
    list_filter = ("cell_model__chemistry", "cell_model__format", "owner")
    list_select_related = ("cell_model", "owner", "site__owner")
    search_fields = (*LOT_SEARCH_FIELDS, "cell_model__name")
    autocomplete_fields = ("owner", "site", "cell_model")
    kind_fields = ("cell_model",)


@admin.register(ModuleLot)
class ModuleLotAdmin(LotKindAdmin):
    list_display = ("identity", "code", "description", "cells_per_module", "owner", "site", "produced_from", "quantity")
    list_select_related = ("owner", "site__owner")
    search_fields = (*LOT_SEARCH_FIELDS, "description")
    kind_fields = ("description", "cells_per_module")


@admin.register(Inspection)
class InspectionAdmin(OrganisationScopedAdminMixin, admin.ModelAdmin):
    list_display = ("lot", "method", "outcome", "inspected_at", "sample_size", "owner", "site")
    list_filter = ("method", "outcome", "lot__kind", "owner")
    list_select_related = ("lot", "owner", "site__owner")
    search_fields = ("lot__identity", "lot__code", "notes")
    search_help_text = "Lot identity, lot code or notes."
    date_hierarchy = "inspected_at"
    autocomplete_fields = ("lot", "owner", "site")

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False  # findings cite it: a result stands as recorded (a new inspection, if need be)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(Spec)
class SpecAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
    list_display = ("property", "unit", "minimum", "maximum", "material", "cell_model", "owner")
    list_filter = ("owner",)
    list_select_related = ("material", "cell_model", "owner")
    search_fields = ("property", "material__name", "cell_model__name")
    search_help_text = "Property, material name or cell model name."
    autocomplete_fields = ("owner", "material", "cell_model")


@admin.register(Measurement)
class MeasurementAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("inspection__owner",)
    list_display = ("inspection", "property", "value", "unit", "minimum", "maximum", "passed")
    list_filter = ("passed",)
    list_select_related = ("inspection__lot",)
    search_fields = ("property", "inspection__lot__code")
    search_help_text = "Property or lot code."
