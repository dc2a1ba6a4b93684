"""Admin for the genealogy and its ledger, and the site's header.

Everything here is written only by services (ledger writes serialised on ``LedgerHead``), so every
admin is view-only, for superusers too. A wrong record is corrected by retracting it with a reason
(the Transformation list's action, through ``events.corrections``), which appends to the ledger.
Staff see their organisations' rows only (``OrganisationScopedAdminMixin``); the structures no
organisation owns (ledger head, segments, learnt prefixes) only operators see.
``Transformation`` reaches millions of rows: its admin skips the unfiltered
count, joins what it lists, searches exactly and has no date hierarchy (see ``packs.admin``).

``SegmentMember`` is not registered: it has a composite primary key, and Django 5.2's
``AdminSite.register`` raises ImproperlyConfigured for such models ("has a composite primary key,
so it cannot be registered with admin"); its change URLs could not name a row anyway. Instead the
Segment page lists the segment's first members and the Unit page (``packs.admin``'s, extended here
with what the genealogy knows of the unit) the unit's memberships, read-only, in one query each.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils.html import format_html, format_html_join

from packs.admin import UnitAdmin as PacksUnitAdmin
from packs.admin import admin_link
from packs.models import Unit
from suppliers.admin import LoadedRowsInlineMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin
from traceability.access.models import Grant
from traceability.core.models import AuditEntry, Job
from traceability.events.corrections import transformations_retract_by_operator
from traceability.events.models import EpcisCapture, EpcisEvent, EpcisEventEpc
from traceability.genealogy.models import (
    LotLink,
    RepeatedUnit,
    Segment,
    SegmentInput,
    SegmentMember,
    Transformation,
    UnitLink,
)
from traceability.genealogy.writes import GenealogyError
from traceability.investigations.models import (
    Export,
    Finding,
    FindingAttachment,
    Investigation,
    InvestigationTransition,
    SupplierResponse,
    SupplierResponseRevision,
    TraceRun,
    TraceRunSegment,
)
from traceability.ledger.models import LearntCompanyPrefix, LedgerEntry, LedgerHead

admin.site.site_header = "Cell traceability ledger"
admin.site.site_title = "Cell traceability ledger"
admin.site.index_title = "Ledger administration"

#: How many members the segment page shows (one query, whatever the segment's size).
MEMBERS_SHOWN = 50


class NumericIdSearchMixin:
    """A search term of digits also matches the primary key, through its index (no text cast)."""

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and len(term) < 19:
            results |= queryset.filter(pk=int(term))
        return results, may_have_duplicates


@admin.register(LedgerHead)
class LedgerHeadAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ()
    list_display = ("id", "position")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(NumericIdSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("organisation",)
    list_display = ("position", "recorded_at", "source", "organisation", "actor", "summary")
    list_filter = ("source", "organisation")
    list_select_related = ("organisation", "actor")
    show_full_result_count = False
    search_fields = ("summary",)
    search_help_text = "Position (number) or words of the summary."
    date_hierarchy = "recorded_at"


class LotLinkInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = LotLink
    fields = ("input_lot", "output_lot", "exposure")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("input_lot", "output_lot")


class UnitLinkInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = UnitLink
    fields = ("input_unit", "output_unit", "exposure")
    readonly_fields = fields
    raw_id_fields = ("input_unit", "output_unit")
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("input_unit", "output_unit")


#: The most records one retraction takes from the list: a page-sized correction, not "select all"
#: across a million rows by a slip of the hand.
RETRACTED_AT_ONCE = 1_000


class RetractionActionForm(ActionForm):
    """The changelist action bar, with the reason a retraction records."""

    reason = forms.CharField(
        label="Reason:",
        # Checked by the action, which says what is missing; a required field here would make
        # Django answer "No action selected" instead.
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "why the records are wrong (required)"}),
    )


@admin.register(Transformation)
class TransformationAdmin(NumericIdSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "reference",
        "owner",
        "occurred_at",
        "exposure",
        "input_count",
        "output_count",
        "recorded_position_id",
        "retracted",
    )
    list_display_links = ("id", "reference")
    list_filter = ("kind", "exposure", ("retracted_position", admin.EmptyFieldListFilter), "owner")
    list_select_related = ("owner",)
    ordering = ("-id",)
    sortable_by = ("id",)
    show_full_result_count = False
    search_fields = ("reference__exact", "work_order__number__exact")
    search_help_text = "Id, exact reference (eventID, transformationID, record number) or work-order number."
    raw_id_fields = ("work_order", "recorded_position", "retracted_position")
    inlines = (LotLinkInline, UnitLinkInline)
    action_form = RetractionActionForm
    actions = ("retract",)

    @admin.display(boolean=True, description="retracted")
    def retracted(self, obj: Transformation) -> bool:
        return obj.retracted

    def has_retract_permission(self, request) -> bool:
        # The records are view only; retracting one appends to the ledger, which the change
        # permission grants (staff, on their organisations' records: the list is scoped).
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(description="Retract with a reason (appends to the ledger)", permissions=["retract"])
    def retract(self, request, queryset):
        reason = (request.POST.get("reason") or "").strip()
        if not reason:
            self.message_user(request, "Nothing retracted: give the reason for the retraction.", messages.ERROR)
            return
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: RETRACTED_AT_ONCE + 1])
        if len(ids) > RETRACTED_AT_ONCE:
            self.message_user(
                request, f"Nothing retracted: select at most {RETRACTED_AT_ONCE:,} records at a time.", messages.ERROR
            )
            return
        try:
            entry = transformations_retract_by_operator(transformation_ids=ids, reason=reason, user=request.user)
        except GenealogyError as exc:
            self.message_user(request, f"Nothing retracted: {exc}.", messages.ERROR)
            return
        self.message_user(
            request, f"{len(ids)} record(s) retracted at ledger position {entry.position}.", messages.SUCCESS
        )


@admin.register(LotLink)
class LotLinkAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("transformation__owner",)
    list_display = ("id", "input_lot", "output_lot", "exposure", "transformation")
    list_filter = ("exposure", "input_lot__kind", "output_lot__kind")
    list_select_related = ("input_lot", "output_lot", "transformation")
    search_fields = ("input_lot__identity", "input_lot__code", "output_lot__identity", "output_lot__code")
    search_help_text = "Identity or code of the input or output lot."
    raw_id_fields = ("transformation", "input_lot", "output_lot")


@admin.register(UnitLink)
class UnitLinkAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("transformation__owner",)
    list_display = ("id", "input_unit", "output_unit", "exposure", "transformation")
    list_filter = ("exposure",)
    list_select_related = ("input_unit", "output_unit", "transformation")
    search_fields = (
        "input_unit__serial__exact",
        "input_unit__identity__exact",
        "output_unit__serial__exact",
        "output_unit__identity__exact",
    )
    search_help_text = "Exact serial or identity of the input or output unit."
    raw_id_fields = ("transformation", "input_unit", "output_unit")


class SegmentInputInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = SegmentInput
    fields = ("lot",)
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("lot")


@admin.register(Segment)
class SegmentAdmin(NumericIdSearchMixin, OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ()  # shared by the units of every brand built from the same lots
    list_display = ("id", "exposure", "unit_count", "last_transformation_id", "input_key")
    list_filter = ("exposure",)
    show_full_result_count = False
    search_fields = ("input_key__exact", "inputs__lot__identity", "inputs__lot__code")
    search_help_text = "Id, input key, or identity or code of an input lot."
    fields = ("input_key", "exposure", "unit_count", "last_transformation_id", "first_members")
    readonly_fields = fields
    inlines = (SegmentInputInline,)

    @admin.display(description=f"first {MEMBERS_SHOWN} members")
    def first_members(self, obj: Segment) -> str:
        # SegmentMember cannot be registered (composite primary key): its rows are shown here, in
        # primary-key order (an index-only range of the segment), one query for MEMBERS_SHOWN rows.
        members = list(
            SegmentMember.objects.filter(segment_id=obj.pk)
            .select_related("unit", "transformation")
            .order_by("unit_id", "transformation_id")[:MEMBERS_SHOWN]
        )
        if not members:
            return "None"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    admin_link(self.admin_site, member.unit),
                    admin_link(self.admin_site, member.transformation),
                    "retracted" if member.transformation.retracted else "",
                )
                for member in members
            ),
        )
        return format_html(
            "<table><thead><tr><th>unit</th><th>transformation</th><th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(RepeatedUnit)
class RepeatedUnitAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ()
    """Units the trace's sums count more than once (see ``genealogy.Sums``); written by the services."""

    list_display = ("unit",)
    list_select_related = ("unit",)
    show_full_result_count = False
    search_fields = ("unit__identity", "unit__serial")
    search_help_text = "Identity or serial of the unit."
    raw_id_fields = ("unit",)


@admin.register(SegmentInput)
class SegmentInputAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ()
    list_display = ("id", "segment", "lot")
    list_filter = ("lot__kind", "segment__exposure")
    list_select_related = ("segment", "lot")
    search_fields = ("lot__identity", "lot__code")
    search_help_text = "Identity or code of the input lot."
    raw_id_fields = ("segment", "lot")


@admin.register(Job)
class JobAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "phase",
        "percent",
        "attempts",
        "owner",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "kind", "owner")
    list_select_related = ("owner", "created_by")
    search_fields = ("kind", "phase", "error")
    search_help_text = "Job id, kind, phase or error text."
    date_hierarchy = "created_at"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            job_id = uuid.UUID(search_term.strip())
        except ValueError:
            return results, may_have_duplicates
        return results | queryset.filter(pk=job_id), may_have_duplicates


@admin.register(LearntCompanyPrefix)
class LearntCompanyPrefixAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ()
    list_display = ("prefix", "learnt_from", "learnt_at")
    search_fields = ("prefix__startswith", "learnt_from")
    search_help_text = "Prefix digits (their beginning) or the URN it was learnt from."
    date_hierarchy = "learnt_at"


# --- findings, investigations, trace runs: recorded through the services (REST, CLI), viewed here ---


class FindingAttachmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FindingAttachment
    fields = ("name", "file", "content_type", "size", "sha256", "uploaded_by", "uploaded_at")
    extra = 0


@admin.register(FindingAttachment)
class FindingAttachmentAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("finding__owner",)
    list_display = ("id", "name", "finding", "content_type", "size", "uploaded_by", "uploaded_at")
    list_filter = ("content_type",)
    list_select_related = ("finding", "uploaded_by")
    search_fields = ("name", "sha256__exact")
    search_help_text = "File name, or exact SHA-256."
    date_hierarchy = "uploaded_at"


@admin.register(Finding)
class FindingAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    inlines = [FindingAttachmentInline]
    list_display = ("id", "category", "severity", "subject_kind", "subject", "owner", "raised_by", "raised_at")
    list_filter = ("category", "severity", "subject_kind", "owner")
    list_select_related = ("owner", "raised_by", "subject_lot", "subject_unit", "subject_organisation", "subject_site")
    search_fields = ("description", "subject_lot__code", "subject_lot__identity", "subject_unit__serial__exact")
    search_help_text = "Description, lot code or identity, or exact unit serial."
    date_hierarchy = "raised_at"

    @admin.display(description="subject")
    def subject(self, obj: Finding) -> object:
        return obj.subject_lot or obj.subject_unit or obj.subject_organisation or obj.subject_site


class InvestigationTransitionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InvestigationTransition
    fields = ("from_status", "to_status", "at", "by", "note")
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")


@admin.register(Investigation)
class InvestigationAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "finding", "status", "owner", "opened_at", "preview")
    list_filter = ("status", "owner")
    list_select_related = ("finding", "owner")
    search_fields = ("finding__description",)
    search_help_text = "Text of the finding's description."
    date_hierarchy = "opened_at"
    inlines = (InvestigationTransitionInline,)


@admin.register(InvestigationTransition)
class InvestigationTransitionAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("investigation__owner",)
    list_display = ("investigation", "from_status", "to_status", "at", "by")
    list_filter = ("to_status",)
    list_select_related = ("investigation", "by")
    date_hierarchy = "at"


class SupplierResponseRevisionInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = SupplierResponseRevision
    fields = (("number", "status", "by", "at"), "changed", "containment", "root_cause", "corrective_action")
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")


@admin.register(SupplierResponse)
class SupplierResponseAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """A supplier's 8D response: its responder's, and read by the investigation's owner."""

    organisation_paths = ("owner", "investigation__owner")
    list_display = ("id", "investigation", "owner", "revision", "opened_at")
    list_filter = ("owner",)
    list_select_related = ("investigation", "owner")
    date_hierarchy = "opened_at"
    inlines = (SupplierResponseRevisionInline,)


@admin.register(SupplierResponseRevision)
class SupplierResponseRevisionAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("response__owner", "response__investigation__owner")
    list_display = ("response", "number", "status", "by", "at")
    list_filter = ("status",)
    list_select_related = ("response", "by")
    date_hierarchy = "at"


@admin.register(TraceRun)
class TraceRunAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("investigation__owner",)
    list_display = ("id", "investigation", "position", "definite_units", "potential_units", "consignees", "created_at")
    list_select_related = ("investigation", "job")
    readonly_fields = ("segments_reached",)
    date_hierarchy = "created_at"

    @admin.display(description="segments reached")
    def segments_reached(self, obj: TraceRun) -> str:
        # TraceRunSegment has a composite primary key, which the admin cannot register (see the
        # module docstring): the first rows are shown here, in one query.
        rows = list(TraceRunSegment.objects.filter(run=obj).order_by("segment_id")[: MEMBERS_SHOWN + 1])
        if not rows:
            return "-"
        table = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((row.segment_id, row.exposure, row.via_lot_id) for row in rows[:MEMBERS_SHOWN]),
        )
        more = format_html("<p>First {} shown.</p>", MEMBERS_SHOWN) if len(rows) > MEMBERS_SHOWN else ""
        return format_html("<table><tr><th>segment</th><th>exposure</th><th>via lot</th></tr>{}</table>{}", table, more)


@admin.register(Export)
class ExportAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("run__investigation__owner",)
    list_display = ("id", "run", "format", "file", "created_at")
    list_filter = ("format",)
    list_select_related = ("run",)
    raw_id_fields = ("job", "run")
    date_hierarchy = "created_at"


# --- EPCIS: captured through /epcis/ or import_epcis, viewed here ------------------------------------


@admin.register(EpcisCapture)
class EpcisCaptureAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "owner", "created_by", "created_at", "error_behaviour", "events", "captured", "repeated")
    list_filter = ("owner", "error_behaviour")
    list_select_related = ("owner", "created_by")
    date_hierarchy = "created_at"


class EpcisEventEpcInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = EpcisEventEpc
    fields = ("role", "epc")


@admin.register(EpcisEvent)
class EpcisEventAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("capture__owner",)
    list_display = ("event_id", "type", "event_time", "action", "biz_step", "record_time", "declared_at")
    list_filter = ("type", "action", "biz_step")
    search_fields = ("=event_id", "=transformation_id")
    search_help_text = "The exact eventID (or event hash) or transformationID."
    date_hierarchy = "event_time"
    raw_id_fields = ("capture", "record", "recorded_position")
    inlines = [EpcisEventEpcInline]


@admin.register(EpcisEventEpc)
class EpcisEventEpcAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("event__capture__owner",)
    list_display = ("epc", "role", "event")
    list_filter = ("role",)
    search_fields = ("=epc",)
    search_help_text = "The canonical identifier exactly, e.g. sgtin:04012345123456:S1."
    list_select_related = ("event",)
    raw_id_fields = ("event",)


MEMBERSHIPS_SHOWN = 50

# The reference apps do not know the genealogy (they import only ``core`` and ``gs1``), so the
# unit's page gains its segment memberships here, where both are known.
admin.site.unregister(Unit)


@admin.register(Unit)
class UnitAdmin(PacksUnitAdmin):
    readonly_fields = (*PacksUnitAdmin.readonly_fields, "segment_memberships")
    fieldsets = (
        *PacksUnitAdmin.fieldsets[:-1],
        ("Where it went, what it is made of", {"fields": ("packings", "segment_memberships")}),
    )

    @admin.display(description="segment memberships")
    def segment_memberships(self, obj: Unit) -> str:
        # SegmentMember has a composite primary key, which Django 5.2's admin refuses to register
        # (AdminSite.register raises ImproperlyConfigured), so a unit's memberships are shown here,
        # read-only: at most MEMBERSHIPS_SHOWN rows, in one query.
        if obj.pk is None:
            return "-"
        members = list(
            SegmentMember.objects.filter(unit_id=obj.pk)
            .select_related("segment", "transformation")
            .order_by("transformation_id", "segment_id")[: MEMBERSHIPS_SHOWN + 1]
        )
        if not members:
            return "None"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    admin_link(self.admin_site, member.segment),
                    member.segment.get_exposure_display(),
                    admin_link(self.admin_site, member.transformation),
                    "retracted" if member.transformation.retracted else "",
                )
                for member in members[:MEMBERSHIPS_SHOWN]
            ),
        )
        more = f"First {MEMBERSHIPS_SHOWN} shown." if len(members) > MEMBERSHIPS_SHOWN else ""
        return format_html(
            "<table><thead><tr><th>segment</th><th>exposure</th><th>transformation</th><th></th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            more,
        )


# --- the audit trail: appended by the services, never changed (on PostgreSQL a trigger refuses it) ---


@admin.register(AuditEntry)
class AuditEntryAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every organisation's entries: for the operator's superusers only. An organisation's admins
    read their own through ``GET /api/v1/audit/``."""

    organisation_paths = ()  # the whole trail: superusers only

    list_display = ("at", "action", "username", "organisation", "source", "request_id", "identifiers")
    list_filter = ("action", "source", "organisation")
    list_select_related = ("organisation",)
    fields = ("at", "action", "username", "user", "organisation", "source", "request_id", "identifiers", "detail")
    readonly_fields = fields
    show_full_result_count = False
    search_fields = ("=request_id", "=username")
    search_help_text = "The exact request id or username."
    date_hierarchy = "at"

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


# --- regulators' grants: given by ``manage.py grant add`` (audited), never edited -----------------------


@admin.register(Grant)
class GrantAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """What each regulator may read; a regulator's staff see their own organisation's grants."""

    organisation_paths = ("regulator",)
    list_display = ("regulator", "scope", "jurisdiction", "investigation", "granted_at", "revoked_at")
    list_filter = ("scope", "regulator")
    list_select_related = ("regulator",)
    fields = ("regulator", "scope", "jurisdiction", "investigation", "granted_at", "revoked_at")
    readonly_fields = fields
