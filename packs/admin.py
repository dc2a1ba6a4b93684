"""Admin for product models, work orders, units, containers, packing and shipments.

Product models are reference data (editable, never deleted while named). The rest are ledger facts,
view only for everyone, work orders included: once units name one, it is a production fact.

``Unit``, ``UnitPacking`` and ``ShipmentItem`` reach millions of rows, so their admins:

* skip the second, unfiltered ``COUNT(*)`` (``show_full_result_count = False``);
* join what each row shows (``list_select_related``), so a page costs the same few queries at any size;
* search with index-friendly lookups (exact, or prefix on the unique ``identity``) instead of
  ``icontains``, which would scan the whole table;
* sort only on indexed columns and carry no date hierarchy (its MIN/MAX and DISTINCT-date queries
  scan the table on every page load);
* take foreign keys to them through raw-id widgets, never selects or autocompletes; inlines label
  those widgets from joined rows (``LoadedRowsInlineMixin``), not with one query per row.
"""

from __future__ import annotations

import re
from typing import ClassVar

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from packs.models import Container, ContainerPacking, ProductModel, Shipment, ShipmentItem, Unit, UnitPacking, WorkOrder
from suppliers.admin import (
    IdentifierSearchMixin,
    LoadedRowsInlineMixin,
    OrganisationScopedAdminMixin,
    ReadOnlyAdminMixin,
    ReferenceDataAdminMixin,
)

#: How many segment memberships the unit page shows (one query, whatever the unit's history).
_GTIN = re.compile(r"^\d{8}$|^\d{12,14}$")


def admin_change_url(admin_site: AdminSite, obj: models.Model) -> str:
    try:
        return reverse(f"{admin_site.name}:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def admin_link(admin_site: AdminSite, obj: models.Model | None) -> str:
    if obj is None:
        return "-"
    url = admin_change_url(admin_site, obj)
    return format_html('<a href="{}">{}</a>', url, obj) if url else str(obj)


def changelist_link(admin_site: AdminSite, model: type[models.Model], text: str, **filters: object) -> str:
    url = reverse(f"{admin_site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


@admin.register(ProductModel)
class ProductModelAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
    list_display = ("name", "model_number", "gtin", "capacity_mah", "owner")
    list_filter = ("owner",)
    list_select_related = ("owner",)
    search_fields = ("name", "model_number", "gtin", "owner__name")
    search_help_text = "Name, model number, GTIN or owner name."
    autocomplete_fields = ("owner", "certificates")


@admin.register(WorkOrder)
class WorkOrderAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("number", "product_model", "owner", "site", "started_at", "finished_at", "planned_quantity")
    list_filter = ("owner", "product_model")
    list_select_related = ("product_model", "owner", "site__owner")
    search_fields = ("number", "product_model__name", "product_model__model_number")
    search_help_text = "Work-order number, product name or model number."
    date_hierarchy = "started_at"
    autocomplete_fields = ("owner", "product_model", "site")


@admin.register(Unit)
class UnitAdmin(IdentifierSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("identity", "serial", "gtin", "product_model", "owner", "work_order", "produced_at")
    list_filter = ("owner", "product_model")
    list_select_related = ("product_model", "owner", "work_order")
    sortable_by = ("identity", "serial")
    show_full_result_count = False
    # Exact identity and exact serial both use an index; a bare GTIN is matched through the prefix
    # of the identity (sgtin:<gtin14>:...), which uses the unique index too (get_search_results).
    search_fields = ("identity__exact", "serial__exact")
    search_help_text = "Exact serial, EPC URN, GS1 Digital Link, identity (sgtin:10614141123459:400) or a GTIN."
    autocomplete_fields = ("owner", "product_model", "work_order", "site")
    readonly_fields: ClassVar[tuple[str, ...]] = ("packings",)
    fieldsets = (
        (
            None,
            {"fields": ("owner", "identity", "serial", "gtin", "product_model", "work_order", "site", "produced_at")},
        ),
        ("Where it went", {"fields": ("packings",)}),
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Unit], search_term: str
    ) -> tuple[QuerySet[Unit], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if _GTIN.match(term):
            results |= queryset.filter(identity__startswith=f"sgtin:{term.zfill(14)}:")
        return results, may_have_duplicates

    @admin.display(description="packing")
    def packings(self, obj: Unit) -> str:
        if obj.pk is None:
            return "-"
        return changelist_link(
            self.admin_site, UnitPacking, "containers this unit was packed in", unit__id__exact=obj.pk
        )


class ContainerChildInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = ContainerPacking
    fk_name = "parent"
    fields = ("child", "packed_at", "unpacked_at")
    raw_id_fields = ("child",)
    extra = 0
    verbose_name = "packed container"
    verbose_name_plural = "containers packed inside"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContainerPacking]:
        return super().get_queryset(request).select_related("child")


@admin.register(Container)
class ContainerAdmin(IdentifierSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("identity", "sscc", "kind", "owner", "site", "created_at")
    list_filter = ("kind", "owner")
    list_select_related = ("owner", "site__owner")
    search_fields = ("identity__startswith", "sscc__startswith")
    search_help_text = "SSCC, EPC URN, GS1 Digital Link or identity (sscc:106141412345678908), or their beginning."
    date_hierarchy = "created_at"
    autocomplete_fields = ("owner", "site")
    readonly_fields = ("unit_packings",)
    inlines = (ContainerChildInline,)

    @admin.display(description="units")
    def unit_packings(self, obj: Container) -> str:
        if obj.pk is None:
            return "-"
        return changelist_link(
            self.admin_site, UnitPacking, "units packed in this container", container__id__exact=obj.pk
        )


@admin.register(UnitPacking)
class UnitPackingAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("container__owner", "unit__owner")
    list_display = ("id", "unit", "container", "packed_at", "unpacked_at")
    list_display_links = ("id",)
    list_filter = (("unpacked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("unit", "container")
    ordering = ("-id",)
    sortable_by = ("id",)
    show_full_result_count = False
    search_fields = (
        "unit__serial__exact",
        "unit__identity__exact",
        "container__identity__exact",
        "container__sscc__exact",
    )
    search_help_text = "Exact unit serial or identity, or exact container identity or SSCC."
    raw_id_fields = ("unit", "container")


@admin.register(ContainerPacking)
class ContainerPackingAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("parent__owner", "child__owner")
    list_display = ("child", "parent", "packed_at", "unpacked_at")
    list_filter = (("unpacked_at", admin.EmptyFieldListFilter), "parent__kind")
    list_select_related = ("child", "parent")
    search_fields = (
        "child__identity__startswith",
        "child__sscc__startswith",
        "parent__identity__startswith",
        "parent__sscc__startswith",
    )
    search_help_text = "SSCC or identity of either container, or their beginning."
    date_hierarchy = "packed_at"
    autocomplete_fields = ("parent", "child")


class ShipmentItemInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = ShipmentItem
    fields = ("container", "unit")
    raw_id_fields = ("container", "unit")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShipmentItem]:
        return super().get_queryset(request).select_related("container", "unit")


@admin.register(Shipment)
class ShipmentAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("owner", "consignee")  # the sender's and the consignee's
    list_display = ("reference", "owner", "consignee", "ship_from", "ship_to", "shipped_at", "received_at")
    list_filter = ("owner", "consignee", ("received_at", admin.EmptyFieldListFilter))
    list_select_related = ("owner", "consignee", "ship_from__owner", "ship_to__owner")
    search_fields = ("reference", "owner__name", "consignee__name")
    search_help_text = "Shipment reference, shipper or consignee name."
    date_hierarchy = "shipped_at"
    autocomplete_fields = ("owner", "consignee", "ship_from", "ship_to")
    inlines = (ShipmentItemInline,)


@admin.register(ShipmentItem)
class ShipmentItemAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("shipment__owner", "shipment__consignee")
    list_display = ("id", "shipment", "container", "unit")
    list_display_links = ("id",)
    list_filter = (("container", admin.EmptyFieldListFilter), ("unit", admin.EmptyFieldListFilter))
    list_select_related = ("shipment__consignee", "container", "unit")
    ordering = ("-id",)
    sortable_by = ("id",)
    show_full_result_count = False
    search_fields = (
        "shipment__reference__exact",
        "container__identity__exact",
        "container__sscc__exact",
        "unit__serial__exact",
        "unit__identity__exact",
    )
    search_help_text = "Exact shipment reference, container identity or SSCC, unit serial or identity."
    raw_id_fields = ("shipment", "container", "unit")
