"""Input and output serializers, kept apart: inputs parse and validate, outputs only describe.

Outputs that render identifiers take the company-prefix resolver from the context
(``prefix_length``), built once per request, so rendering a page of URNs costs no queries.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from cells.models import Inspection, InspectionMethod, Lot, Measurement, Spec
from packs.models import Unit
from packs.selectors import Standing
from suppliers.models import CertificateScheme, CertificateStatus, Organisation, Site
from traceability.access.policy import finding_read_in_full, inspections_citable, job_progress
from traceability.api.errors import invalid
from traceability.core.limits import DB_INT_MAX, control_character
from traceability.core.models import Job, JobKind, JobStatus
from traceability.investigations.exports import ExportFormat
from traceability.investigations.models import (
    Finding,
    FindingAttachment,
    FindingCategory,
    Investigation,
    InvestigationStatus,
    InvestigationTransition,
    ResponseStatus,
    Severity,
    SubjectKind,
    SupplierResponse,
    SupplierResponseRevision,
    TraceRun,
)
from traceability.investigations.responses import STEP_FIELDS, response_latest
from traceability.investigations.selectors import run_diff_shown
from traceability.investigations.services import finding_subject_lots
from traceability.ledger.selectors import SubjectError, identifier_or_none, subject_find

UNITS_PAGE_MAX = 1_000
# A finding's description and a transition's note: a few pages of text, not a document (attach one).
TEXT_MAX_LENGTH = 20_000

# --- inputs -------------------------------------------------------------------------------------------


def no_control_characters(value: str) -> None:
    """Text may hold tabs and line breaks, no other control character (``core.limits``)."""
    if found := control_character(value, text=True):
        raise serializers.ValidationError(
            f"contains the control character U+{ord(found):04X}: text may hold tabs and line breaks, no other",
            code="control_character",
        )


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=TEXT_MAX_LENGTH, validators=[no_control_characters], **kwargs)


class FindingInput(serializers.Serializer):
    """A finding names exactly one subject: a lot or unit by identifier, a supplier, or a site."""

    subject = serializers.CharField(
        required=False,
        max_length=TEXT_MAX_LENGTH,
        validators=[no_control_characters],
        help_text="EPC URN, GS1 Digital Link, or a lot code or serial of your organisation.",
    )
    subject_supplier = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organisation.objects.all(), required=False, help_text="All lots of a supplier."
    )
    subject_site = serializers.PrimaryKeyRelatedField(
        queryset=Site.objects.all(), required=False, help_text="All lots made at a site."
    )
    window_from = serializers.DateTimeField(required=False, help_text="Lots produced from (supplier or site).")
    window_to = serializers.DateTimeField(required=False, help_text="Lots produced until (supplier or site).")
    category = serializers.ChoiceField(choices=FindingCategory.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    description = _text()
    inspections = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=DB_INT_MAX),
        required=False,
        default=list,
        help_text="Inspection ids.",
    )

    def validate_subject(self, value: str) -> Lot | Unit:
        organisation = self.context["organisation"]
        try:
            return subject_find(value, owner=organisation)
        except SubjectError as exc:  # an input's refusal is a validation error, listed with the others
            raise serializers.ValidationError(exc.message, code=exc.code) from None

    def validate_inspections(self, value: list[int]) -> list[int]:
        ids = sorted(set(value))
        # An id beyond the database's integer range names no inspection; asked for, it would overflow.
        low, high = connection.ops.integer_field_range(Inspection._meta.pk.get_internal_type())
        possible = [pk for pk in ids if (low is None or pk >= low) and (high is None or pk <= high)]
        # Only those the caller may cite are known to it (``inspections_citable``: its own, or of a
        # lot it may trace); others read as ids that name nothing.
        known = inspections_citable(self.context["actor"], possible)
        if missing := [pk for pk in ids if pk not in known]:
            raise serializers.ValidationError(
                f"no inspection has id {', '.join(map(str, missing))}", code="unknown_inspection"
            )
        return ids

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        named = [name for name in ("subject", "subject_supplier", "subject_site") if attrs.get(name) is not None]
        if len(named) != 1:
            raise invalid(
                "subject",
                "name exactly one subject: subject (a lot or unit), subject_supplier or subject_site"
                + (f"; got {', '.join(named)}" if named else ""),
                "subject_required",
            )
        windowed = [name for name in ("window_from", "window_to") if attrs.get(name) is not None]
        if windowed and named == ["subject"]:
            raise invalid(
                windowed[0],
                "a production window narrows a supplier or site subject; a lot or unit is one subject already",
                "window_not_applicable",
            )
        if attrs.get("window_from") and attrs.get("window_to") and attrs["window_to"] < attrs["window_from"]:
            raise invalid("window_to", "the window ends before it starts", "invalid_window")
        attrs["subject"] = attrs.pop(named[0])
        attrs["named"] = named[0]
        attrs.pop("subject_supplier", None)
        attrs.pop("subject_site", None)
        # A supplier or site subject's lots (in its window), for the access policy to judge before
        # anyone is told whether there are any: an empty one is refused after that (``empty_subject``).
        attrs["lot_ids"] = finding_subject_lots(
            attrs["subject"], window_from=attrs.get("window_from"), window_to=attrs.get("window_to")
        )
        return attrs


class TransitionInput(serializers.Serializer):
    # Tracing and traced are set by runs (POST …/runs/ and the run's job), never by hand.
    to = serializers.ChoiceField(choices=[InvestigationStatus.UNDER_REVIEW, InvestigationStatus.CLOSED])
    note = _text(required=False, allow_blank=True, default="")


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)


class UnitsPageQuery(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        max_value=DB_INT_MAX,
        required=False,
        default=0,
        help_text="Cursor: the last unit id of the previous page.",
    )
    limit = serializers.IntegerField(
        min_value=1, required=False, default=100, help_text=f"Page size, capped at {UNITS_PAGE_MAX}."
    )

    def validate_limit(self, value: int) -> int:
        return min(value, UNITS_PAGE_MAX)


# --- outputs: findings and investigations -------------------------------------------------------------


def _enum(choices: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "string", "enum": [value for value, _ in choices]}


# Statuses named once in the schema: spectacular would otherwise name each "status" field's enum
# after the field, colliding between jobs and investigations.
@extend_schema_field(_enum(InvestigationStatus.choices), component_name="InvestigationStatus")
class InvestigationStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=InvestigationStatus.choices, **kwargs)


@extend_schema_field(_enum(JobStatus.choices), component_name="JobStatus")
class JobStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=JobStatus.choices, **kwargs)


@extend_schema_field(_enum(ResponseStatus.choices), component_name="ResponseStatus")
class ResponseStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ResponseStatus.choices, **kwargs)


# Who did something is a SET_NULL foreign key: a record may outlive the account, or name none.
NO_ACCOUNT = "Username; null when no account is on record (recorded without one, or since deleted)."


def _render(canonical: str | None, form: str, context: dict[str, Any]) -> str | None:
    if canonical is None:
        return None
    return identifier_or_none(canonical, form=form, prefix_length=context["prefix_length"])


class SubjectSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SubjectKind.choices)
    identity = serializers.CharField(allow_null=True, help_text="Canonical identity of the lot or unit.")
    code = serializers.CharField(allow_null=True, help_text="Lot code or serial as printed.")
    epc = serializers.CharField(allow_null=True)
    digital_link = serializers.CharField(allow_null=True)
    supplier = serializers.CharField(allow_null=True, help_text="Organisation slug, for a supplier subject.")
    site = serializers.IntegerField(allow_null=True, help_text="Site id, for a site subject.")


class OthersSerializer(serializers.Serializer):
    organisation = serializers.CharField(help_text="Slug of the organisation whose units these are.")
    definite_units = serializers.IntegerField()
    potential_units = serializers.IntegerField()


# What a reader is shown of a result nobody counted its share of: nothing of anyone's.
NOTHING_COUNTED = {"definite_units": 0, "potential_units": 0, "consignees": 0, "others": []}


def scoped_counts(counts: dict[str, Any], view: dict[str, Any] | None, context: dict[str, Any]) -> dict[str, Any]:
    """A result's counts as the caller may see them: all of them only when the access policy said
    so (``full_view`` true in the context: a regulator in scope, the operator); otherwise the
    caller's own share (``view``, the stored party view) and others only as counts per organisation
    its lots went into. Fails closed: a context without the policy's answer, or a result with no
    stored share, shows nothing of the result's units at all (never the whole of it)."""
    if context.get("full_view") is True:
        return {**counts, "others": []}
    if view is None:
        return {**counts, **NOTHING_COUNTED}
    return {
        **counts,
        "definite_units": view["definite_units"],
        "potential_units": view["potential_units"],
        "consignees": view["consignees"],
        "others": view["others"],
    }


class PreviewSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    definite_units = serializers.IntegerField(help_text="Of the units you own or received (all, for a regulator).")
    potential_units = serializers.IntegerField()
    consignees = serializers.IntegerField()
    others = OthersSerializer(
        many=True, help_text="Units of other organisations your lots went into, counted per organisation."
    )

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        return super().to_representation(scoped_counts(instance, instance.get("party_view"), self.context))


class AttachmentInput(serializers.Serializer):
    file = serializers.FileField(help_text="The file of evidence (multipart/form-data).", allow_empty_file=True)


class AttachmentSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=NO_ACCOUNT
    )
    download = serializers.SerializerMethodField(help_text="Where to fetch the file.")

    class Meta:
        model = FindingAttachment
        fields = ["id", "name", "content_type", "size", "sha256", "uploaded_by", "uploaded_at", "download"]
        read_only_fields = fields

    def get_download(self, attachment: FindingAttachment) -> str:
        return reverse(
            "api:finding-attachment",
            kwargs={"pk": attachment.finding_id, "attachment": attachment.pk},
            request=self.context.get("request"),
        )


class ShareSerializer(serializers.Serializer):
    """A party's share of a finding's latest finished run, as the access policy scopes it."""

    position = serializers.IntegerField(help_text="The ledger position the run traced at.")
    definite_units = serializers.IntegerField(help_text="Of the units you own or received.")
    potential_units = serializers.IntegerField()
    consignees = serializers.IntegerField(help_text="Who received your affected units.")
    others = OthersSerializer(
        many=True, help_text="Units of other organisations your lots went into, counted per organisation."
    )


# What a party told of a finding about its lots does not read: the recorder's own (access.policy).
RECORDERS_OWN = {"owner": None, "raised_by": None, "inspections": [], "attachments": [], "investigation": None}


class FindingSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="Who recorded it; null when you were told of it."
    )
    subject = serializers.SerializerMethodField()
    raised_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=NO_ACCOUNT
    )
    investigation = serializers.IntegerField(
        source="investigation.pk", read_only=True, allow_null=True, help_text="The recorder's; null when told of it."
    )
    attachments = AttachmentSerializer(many=True, read_only=True)
    status = InvestigationStatusField(source="investigation.status", read_only=True)
    access = serializers.SerializerMethodField(
        help_text=(
            "`full`: yours (or you read every finding); `notified`: another organisation's finding about your"
            " lots, read-only: who recorded it, its attachments, inspections and investigation stay the recorder's."
        )
    )
    share = serializers.SerializerMethodField(
        help_text=(
            "When you were told of it: your share of its latest finished run (your units, your consignees,"
            " and the units of others your lots went into), as the run counted it when it finished; null"
            " otherwise."
        )
    )

    class Meta:
        model = Finding
        fields = [
            "id",
            "owner",
            "subject",
            "window_from",
            "window_to",
            "category",
            "severity",
            "description",
            "inspections",
            "attachments",
            "raised_by",
            "raised_at",
            "inquiry",
            "investigation",
            "status",
            "access",
            "share",
        ]
        read_only_fields = fields

    def _full(self, finding: Finding) -> bool:
        actor = self.context.get("actor")
        return actor is None or finding_read_in_full(actor, finding.owner_id)

    def to_representation(self, instance: Finding) -> dict[str, Any]:
        data = super().to_representation(instance)
        return data if self._full(instance) else {**data, **RECORDERS_OWN}

    @extend_schema_field(serializers.ChoiceField(choices=["full", "notified"]))
    def get_access(self, finding: Finding) -> str:
        return "full" if self._full(finding) else "notified"

    @extend_schema_field(ShareSerializer(allow_null=True))
    def get_share(self, finding: Finding) -> dict[str, Any] | None:
        share = self.context.get("shares", {}).get(finding.pk)
        return ShareSerializer(share).data if share is not None else None

    @extend_schema_field(SubjectSerializer)
    def get_subject(self, finding: Finding) -> dict[str, Any]:
        thing = finding.subject_lot or finding.subject_unit
        identity = thing.identity if thing else None
        return {
            "kind": finding.subject_kind,
            "identity": identity,
            "code": finding.subject_lot.code if finding.subject_lot else getattr(finding.subject_unit, "serial", None),
            "epc": _render(identity, "epc", self.context),
            "digital_link": _render(identity, "digital_link", self.context),
            "supplier": finding.subject_organisation.slug if finding.subject_organisation else None,
            "site": finding.subject_site_id,
        }


class JobSerializer(serializers.ModelSerializer):
    status = JobStatusField(read_only=True)
    download = serializers.SerializerMethodField(
        help_text="Where to fetch the file of a finished export; null for any other job."
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "phase",
            "percent",
            "done",
            "total",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Job) -> dict[str, Any]:
        data = super().to_representation(instance)
        # A trace's or an export's figures may count others' units: the policy says what this reader sees.
        full = bool(self.context.get("full_view"))
        data["done"], data["total"], data["phase"] = job_progress(instance, full=full)
        return data

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download(self, job: Job) -> str | None:
        # Only a finished export job asks for its Export: a list of runs' jobs costs no query.
        if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED:
            return None
        export = getattr(job, "export", None)
        if export is None or not export.file:
            return None
        return reverse("api:job-download", kwargs={"pk": job.pk}, request=self.context.get("request"))


class RunDiffSerializer(serializers.Serializer):
    from_position = serializers.IntegerField(help_text="The previous run's ledger position.")
    to_position = serializers.IntegerField(help_text="This run's ledger position.")
    added = serializers.IntegerField(
        allow_null=True, help_text="Units newly exposed; null unless you see the result whole (a regulator in scope)."
    )
    gone = serializers.IntegerField(allow_null=True, help_text="Units no longer exposed; null as `added`.")
    exposure_changed = serializers.IntegerField(
        allow_null=True, help_text="Units whose exposure changed (definite, potential); null as `added`."
    )
    added_sample = serializers.ListField(
        child=serializers.IntegerField(), help_text="Unit ids: those you see in full of the first 20 added."
    )
    gone_sample = serializers.ListField(child=serializers.IntegerField(), help_text="As `added_sample`.")
    exposure_changed_sample = serializers.ListField(child=serializers.IntegerField(), help_text="As `added_sample`.")


class RunSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True)
    diff = serializers.SerializerMethodField(
        help_text=(
            "Units added, gone and changed since the previous run, as you may see them: null for a first run,"
            " and when none of the units that changed is yours to see."
        )
    )
    others = OthersSerializer(
        many=True,
        read_only=True,
        default=list,
        help_text="Units of other organisations your lots went into, counted per organisation.",
    )

    def to_representation(self, instance: TraceRun) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.definite_units is None:  # not finished: nothing counted yet
            return {**data, "others": []}
        return scoped_counts(data, instance.party_view or None, self.context)

    @extend_schema_field(RunDiffSerializer(allow_null=True))
    def get_diff(self, run: TraceRun) -> dict[str, Any] | None:
        # As the investigation page shows it (the domain's read): the access policy's scope says which
        # sampled units are shown and whether the counts are. Fails closed: no scope, no diff.
        scope = self.context.get("scope")
        if scope is None:
            return None
        shown = run_diff_shown(run=run, shown=scope.units_shown(), full=scope.full)
        return shown.as_stored() if shown is not None else None

    class Meta:
        model = TraceRun
        fields = [
            "id",
            "investigation",
            "position",
            "previous",
            "created_at",
            "definite_units",
            "potential_units",
            "consignees",
            "others",
            "diff",
            "job",
        ]
        read_only_fields = fields


class TransitionSerializer(serializers.ModelSerializer):
    from_status = serializers.CharField(read_only=True, help_text="Empty for the transition that opened it.")
    to_status = InvestigationStatusField(read_only=True)
    by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username; null for the moves runs make, or when no account is on record.",
    )

    class Meta:
        model = InvestigationTransition
        fields = ["from_status", "to_status", "at", "by", "note"]
        read_only_fields = fields


class InvestigationSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = InvestigationStatusField(read_only=True)
    opened_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=NO_ACCOUNT
    )
    finding = FindingSerializer(read_only=True)
    preview = PreviewSerializer(read_only=True)
    latest_run = serializers.SerializerMethodField()
    transitions = TransitionSerializer(many=True, read_only=True)

    class Meta:
        model = Investigation
        fields = ["id", "owner", "status", "opened_at", "opened_by", "finding", "preview", "latest_run", "transitions"]
        read_only_fields = fields

    @extend_schema_field(RunSerializer(allow_null=True))
    def get_latest_run(self, investigation: Investigation) -> dict[str, Any] | None:
        runs = getattr(investigation, "recent_runs", None)
        run = runs[0] if runs is not None else investigation.runs.select_related("job").order_by("-created_at").first()
        return RunSerializer(run, context=self.context).data if run else None


class FindingCreatedSerializer(FindingSerializer):
    preview = PreviewSerializer(source="investigation.preview", read_only=True)
    run = serializers.SerializerMethodField()

    class Meta(FindingSerializer.Meta):
        fields = [*FindingSerializer.Meta.fields, "preview", "run"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.INT)
    def get_run(self, finding: Finding) -> int | None:
        return finding.investigation.runs.order_by("-created_at").values_list("pk", flat=True).first()


# --- outputs: affected units, consignees, breakdown ---------------------------------------------------


class PathStepSerializer(serializers.Serializer):
    from_ = serializers.CharField(help_text="Canonical identity of the input.")
    to = serializers.CharField(help_text="Canonical identity of the output.")
    record = serializers.CharField(help_text="The record that made the link (event, work order, build record).")
    exposure = serializers.ChoiceField(choices=["definite", "potential"])

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so the field is declared as from_ and renamed here.
        fields = super().get_fields()
        return {"from": fields.pop("from_"), **fields}


class ShippedSerializer(serializers.Serializer):
    organisation = serializers.CharField(help_text="Slug of the consignee.")
    name = serializers.CharField()
    shipped_at = serializers.DateTimeField()


class AffectedUnitSerializer(serializers.Serializer):
    serial = serializers.CharField()
    gtin = serializers.CharField(allow_null=True)
    identity = serializers.CharField()
    epc = serializers.CharField(allow_null=True, help_text="EPC URN; null for units with own serials.")
    digital_link = serializers.CharField(allow_null=True)
    exposure = serializers.ChoiceField(choices=["definite", "potential"])
    product_model = serializers.CharField(help_text="Model number.")
    work_order = serializers.CharField(allow_null=True)
    path = PathStepSerializer(many=True, help_text="From the finding's subject to the unit.")
    consignees = ShippedSerializer(many=True)


class UnitsPageSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    position = serializers.IntegerField()
    next = serializers.URLField(allow_null=True, help_text="The next page; null after the last one.")
    results = AffectedUnitSerializer(many=True)


class ConsigneeSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="Its roles in the chain.")
    pgln = serializers.CharField(allow_null=True, help_text="Party GLN as an EPC URN.")
    units = serializers.IntegerField()
    first_shipped_at = serializers.DateTimeField()
    last_shipped_at = serializers.DateTimeField()
    ship_to_countries = serializers.ListField(
        child=serializers.CharField(),
        help_text=(
            "ISO 3166-1 alpha-2 codes of the countries of the sites its shipments of affected units were"
            " addressed to, alphabetically; empty when none named a site (or the run was stored before they were kept)."
        ),
    )


class CountsSerializer(serializers.Serializer):
    units = serializers.IntegerField()
    definite = serializers.IntegerField()
    potential = serializers.IntegerField()


class ProductModelCountSerializer(CountsSerializer):
    model_number = serializers.CharField()
    name = serializers.CharField()


class WorkOrderCountSerializer(CountsSerializer):
    number = serializers.CharField(allow_null=True)


class SiteCountSerializer(CountsSerializer):
    site = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)


class MonthCountSerializer(CountsSerializer):
    month = serializers.CharField(allow_null=True, help_text="YYYY-MM of production.")


class ConsigneeCountSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    name = serializers.CharField()
    units = serializers.IntegerField()


class BreakdownSerializer(serializers.Serializer):
    product_models = ProductModelCountSerializer(many=True)
    work_orders = WorkOrderCountSerializer(many=True)
    sites = SiteCountSerializer(many=True)
    production_months = MonthCountSerializer(many=True)
    consignees = ConsigneeCountSerializer(many=True)


# --- outputs: one unit upstream and its siblings ------------------------------------------------------


class UnitSummarySerializer(serializers.Serializer):
    serial = serializers.CharField()
    gtin = serializers.CharField(allow_null=True)
    identity = serializers.CharField()
    epc = serializers.CharField(allow_null=True)
    digital_link = serializers.CharField(allow_null=True)


class LotSummarySerializer(serializers.Serializer):
    identity = serializers.CharField()
    code = serializers.CharField()
    kind = serializers.CharField()
    epc = serializers.CharField(allow_null=True)
    digital_link = serializers.CharField(allow_null=True)


class SupplierSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="Its roles in the chain.")


class SiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    gln = serializers.CharField(allow_null=True)


class InspectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField()
    outcome = serializers.CharField()
    measurements = serializers.JSONField()
    sample_size = serializers.IntegerField(allow_null=True)
    inspected_at = serializers.DateTimeField()


class CertificateSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField()
    valid_to = serializers.DateField()


class UpstreamLotSerializer(LotSummarySerializer):
    level = serializers.IntegerField(help_text="Links between the unit and the lot.")
    exposure = serializers.ChoiceField(choices=["definite", "potential"])
    supplier = SupplierSerializer()
    site = SiteSerializer(allow_null=True)
    produced_from = serializers.DateTimeField(allow_null=True)
    produced_to = serializers.DateTimeField(allow_null=True)
    inspections = InspectionSerializer(many=True)
    certificates = CertificateSerializer(many=True, help_text="The supplier's certificates.")
    path = PathStepSerializer(many=True)


class UpstreamUnitSerializer(UnitSummarySerializer):
    exposure = serializers.ChoiceField(choices=["definite", "potential"])
    path = PathStepSerializer(many=True)


class BackwardSerializer(serializers.Serializer):
    subject = UnitSummarySerializer()
    position = serializers.IntegerField()
    lots = UpstreamLotSerializer(many=True)
    units = UpstreamUnitSerializer(many=True, help_text="Units a refurbished unit was made from.")


class SiblingSerializer(UnitSummarySerializer):
    shared_lots = serializers.ListField(child=serializers.CharField(), help_text="Canonical identities.")


class SiblingsSerializer(serializers.Serializer):
    subject = UnitSummarySerializer()
    position = serializers.IntegerField()
    shared_lots = LotSummarySerializer(many=True)
    siblings = SiblingSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")


# --- a unit's certificates ----------------------------------------------------------------------------


class UnitCertificatesQuery(serializers.Serializer):
    scheme = serializers.ChoiceField(
        choices=CertificateScheme.choices, required=False, help_text="One scheme; every scheme when left out."
    )
    on = serializers.DateField(required=False, help_text="The day asked about (YYYY-MM-DD); today when left out.")


class CertificateCoverageSerializer(serializers.Serializer):
    product_models = serializers.ListField(child=serializers.CharField(), help_text="Model numbers.")
    cell_models = serializers.ListField(child=serializers.CharField(), help_text="Cell model names.")
    sites = SiteSerializer(many=True, help_text="The holder's sites it covers; empty: every site of the holder.")


class CertificateDetailSerializer(serializers.Serializer):
    scheme = serializers.ChoiceField(choices=CertificateScheme.choices)
    number = serializers.CharField()
    holder = serializers.CharField(help_text="Slug of the certified organisation.")
    issuer = serializers.CharField(help_text="The certification body, as printed on the certificate.")
    issued_by = serializers.CharField(
        allow_null=True, help_text="Slug of the registered certification body; null when the ledger does not have it."
    )
    status = serializers.ChoiceField(choices=CertificateStatus.choices, help_text="As its history last set it.")
    valid_from = serializers.DateField()
    valid_to = serializers.DateField()
    covers = CertificateCoverageSerializer()


class UnitCertificateSerializer(serializers.Serializer):
    scheme = serializers.ChoiceField(choices=CertificateScheme.choices)
    standing = serializers.ChoiceField(
        choices=Standing.choices,
        help_text="valid, suspended, revoked, expired (past its validity, whatever its status), or none.",
    )
    certificate = CertificateDetailSerializer(allow_null=True, help_text="The certificate the answer rests on.")


class UnitCertificatesSerializer(serializers.Serializer):
    subject = UnitSummarySerializer()
    on = serializers.DateField()
    certificates = UnitCertificateSerializer(many=True, help_text="One answer per scheme asked.")


# --- the supplier's side of a finding: 8D responses, findings about its lots, inspections -------------


class ResponseInput(serializers.Serializer):
    """A revision of your 8D response: the steps you change (at least one), each as it now reads."""

    team = _text(required=False, allow_blank=True, help_text="D1: who works on the problem.")
    problem = _text(required=False, allow_blank=True, help_text="D2: the problem as you describe it.")
    containment = _text(required=False, allow_blank=True, help_text="D3: what contains it now.")
    root_cause = _text(required=False, allow_blank=True, help_text="D4: why it happened and was not detected.")
    corrective_action = _text(required=False, allow_blank=True, help_text="D5: the permanent action chosen.")
    implementation = _text(required=False, allow_blank=True, help_text="D6: how it was implemented and validated.")
    implemented_on = serializers.DateField(required=False, allow_null=True, help_text="D6: when it took effect.")
    prevention = _text(required=False, allow_blank=True, help_text="D7: what keeps it from happening again.")
    status = ResponseStatusField(
        required=False, help_text="`submitted` once every step from D3 to D7 is answered; `draft` to reopen it."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = self.initial_data if isinstance(self.initial_data, dict) else {}
        if unknown := sorted(set(given) - set(self.fields)):
            raise invalid(
                unknown[0],
                f"{unknown[0]!r} is not a step of an 8D response (they are: {', '.join(self.fields)})",
                "unknown_field",
            )
        if not attrs:
            raise serializers.ValidationError("give at least one step of the response to change", code="empty")
        return attrs


class ResponseRevisionSerializer(serializers.ModelSerializer):
    status = ResponseStatusField(read_only=True)
    by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True, help_text=NO_ACCOUNT)
    changed = serializers.ListField(child=serializers.CharField(), help_text="The steps this revision changed.")

    class Meta:
        model = SupplierResponseRevision
        fields = ["number", "status", *STEP_FIELDS, "changed", "by", "at"]
        read_only_fields = fields


class SupplierResponseSerializer(serializers.ModelSerializer):
    """A supplier's 8D response: its latest revision's steps at the top level, and every revision."""

    responder = serializers.SlugRelatedField(source="owner", slug_field="slug", read_only=True)
    finding = serializers.IntegerField(source="investigation.finding_id", read_only=True)
    latest = serializers.SerializerMethodField(help_text="What the response says now: its latest revision.")
    revisions = ResponseRevisionSerializer(many=True, read_only=True, help_text="Every revision, oldest first.")

    class Meta:
        model = SupplierResponse
        fields = ["id", "responder", "finding", "opened_at", "revision", "latest", "revisions"]
        read_only_fields = fields

    @extend_schema_field(ResponseRevisionSerializer)
    def get_latest(self, response: SupplierResponse) -> dict[str, Any]:
        return ResponseRevisionSerializer(response_latest(response)).data


class ResponseSummarySerializer(serializers.Serializer):
    revision = serializers.IntegerField(help_text="The number of its latest revision.")
    status = ResponseStatusField()
    opened_at = serializers.DateTimeField()


class ConcerningFindingSerializer(FindingSerializer):
    """A finding another organisation recorded about your lots, as your portal lists it: the defect,
    its status, how many units of each of your customers it reaches (``share.others``), and where
    your own 8D response stands."""

    response = serializers.SerializerMethodField(help_text="Your 8D response to it; null before you write one.")

    class Meta(FindingSerializer.Meta):
        fields = [
            "id",
            "subject",
            "window_from",
            "window_to",
            "category",
            "severity",
            "description",
            "raised_at",
            "status",
            "share",
            "response",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Finding) -> dict[str, Any]:
        return serializers.ModelSerializer.to_representation(self, instance)

    @extend_schema_field(ResponseSummarySerializer(allow_null=True))
    def get_response(self, finding: Finding) -> dict[str, Any] | None:
        response = self.context.get("responses", {}).get(finding.pk)
        return ResponseSummarySerializer(response).data if response is not None else None


class MeasuredInput(serializers.Serializer):
    property = serializers.CharField(max_length=64, help_text="A property the lot has a limit for.")
    value = serializers.JSONField(help_text="The measured value: a number, or its decimal text.")
    unit = serializers.CharField(max_length=16, help_text="The limit's unit, as it is written.")


class ResultsField(serializers.ListField):
    """The measured values: a JSON array, or (in a multipart form, beside the file) its JSON text."""

    child = MeasuredInput()

    def get_value(self, dictionary: Any) -> Any:
        # A form field holds one JSON text, not a list of form values (DRF's reading of a ListField).
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:
            given = dictionary.getlist(self.field_name)
            return given[0] if len(given) == 1 else given
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError(
                    "is not JSON: give an array of measured values", code="not_json"
                ) from None
        return super().to_internal_value(data)


class InspectionInput(serializers.Serializer):
    """Inspection results or a certificate of analysis of your lot: the measured values, each checked
    against the lot's limits, and optionally the document they came in."""

    results = ResultsField(allow_empty=False, max_length=200, help_text="The measured values.")
    inspected_at = serializers.DateTimeField(help_text="When the lot was inspected or analysed.")
    method = serializers.ChoiceField(choices=InspectionMethod.choices, default=InspectionMethod.ANALYSIS)
    sample_size = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_INT_MAX)
    notes = _text(required=False, allow_blank=True, default="")
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The certificate or report (multipart/form-data)."
    )


class MeasurementSerializer(serializers.ModelSerializer):
    value = serializers.DecimalField(max_digits=20, decimal_places=6, coerce_to_string=True)
    minimum = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True, coerce_to_string=True)
    maximum = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True, coerce_to_string=True)

    class Meta:
        model = Measurement
        fields = ["property", "value", "unit", "minimum", "maximum", "passed"]
        read_only_fields = fields


class SpecSerializer(serializers.ModelSerializer):
    minimum = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True, coerce_to_string=True)
    maximum = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True, coerce_to_string=True)

    class Meta:
        model = Spec
        fields = ["property", "unit", "minimum", "maximum"]
        read_only_fields = fields


class DocumentSerializer(serializers.Serializer):
    name = serializers.CharField(source="attachment_name")
    content_type = serializers.CharField(source="attachment_content_type")
    size = serializers.IntegerField(source="attachment_size")
    sha256 = serializers.CharField(source="attachment_sha256")


class LotInspectionSerializer(serializers.ModelSerializer):
    results = MeasurementSerializer(many=True, read_only=True)
    recorded_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=NO_ACCOUNT
    )
    document = serializers.SerializerMethodField(help_text="The certificate or report it came in; null if none.")

    class Meta:
        model = Inspection
        fields = [
            "id",
            "method",
            "outcome",
            "inspected_at",
            "sample_size",
            "notes",
            "results",
            "document",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DocumentSerializer(allow_null=True))
    def get_document(self, inspection: Inspection) -> dict[str, Any] | None:
        return DocumentSerializer(inspection).data if inspection.attachment else None


class LotInspectionsSerializer(serializers.Serializer):
    lot = serializers.CharField(help_text="The lot's canonical identity.")
    limits = SpecSerializer(many=True, help_text="The limits its values are checked against.")
    inspections = LotInspectionSerializer(many=True, help_text="Its owner's inspections, newest first.")
