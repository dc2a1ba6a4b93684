"""Findings, their evidence, the investigations they open and the trace runs that answer them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Organisation, Owned
from traceability.core.models import Job
from traceability.genealogy.models import Exposure, Segment


class FindingCategory(models.TextChoices):
    METALLIC_DEBRIS = "metallic_debris", gettext_lazy("Metallic debris")
    SEPARATOR_DEFECT = "separator_defect", gettext_lazy("Separator defect")
    ELECTROLYTE_CONTAMINATION = "electrolyte_contamination", gettext_lazy("Electrolyte contamination")
    OVERHEATING_INCIDENT = "overheating_incident", gettext_lazy("Overheating incident")
    OTHER = "other", gettext_lazy("Other")


class Severity(models.TextChoices):
    LOW = "low", gettext_lazy("Low")
    MEDIUM = "medium", gettext_lazy("Medium")
    HIGH = "high", gettext_lazy("High")
    CRITICAL = "critical", gettext_lazy("Critical")


class SubjectKind(models.TextChoices):
    LOT = "lot", "A lot (material, cell or module)"
    UNIT = "unit", "A unit"
    SUPPLIER = "supplier", "All lots of a supplier"
    SITE = "site", "All lots made at a site"


class Finding(Owned):
    """A defect found on a subject: the start of every investigation.

    The subject is one lot or unit, or all lots of a supplier or a site; ``window_from`` and
    ``window_to`` narrow it to lots whose production window overlaps them. A regulator's finding is
    an ``inquiry``: its own record, on a subject its grants cover, seen by no party of the chain.
    """

    subject_kind = models.CharField(max_length=8, choices=SubjectKind.choices)
    subject_lot = models.ForeignKey(Lot, null=True, blank=True, on_delete=models.PROTECT, related_name="findings")
    subject_unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject_organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="findings_about"
    )
    subject_site = models.ForeignKey(
        "suppliers.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="findings_about"
    )
    window_from = models.DateTimeField(null=True, blank=True)
    window_to = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=32, choices=FindingCategory.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    description = models.TextField()
    inspections = models.ManyToManyField("cells.Inspection", blank=True, related_name="findings")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    raised_at = models.DateTimeField()
    inquiry = models.BooleanField(default=False, help_text="A regulator's inquiry, not a party's finding.")

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(subject_kind="lot", subject_lot__isnull=False)
                    | models.Q(subject_kind="unit", subject_unit__isnull=False)
                    | models.Q(subject_kind="supplier", subject_organisation__isnull=False)
                    | models.Q(subject_kind="site", subject_site__isnull=False)
                ),
                name="finding_subject_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} ({self.get_severity_display()}) #{self.pk}"


class FindingAttachment(models.Model):
    """A file of evidence on a finding (a lab report, a photograph of the debris, an X-ray image),
    kept as uploaded. Attachments are added, never changed or removed: the investigation's record
    holds. The same bytes are attached to a finding once."""

    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(upload_to="findings/%Y/%m/")
    name = models.CharField(max_length=255, help_text="The file's name as uploaded.")
    content_type = models.CharField(max_length=100, help_text="What the content is, read from its bytes.")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "id"]
        constraints = [models.UniqueConstraint(fields=["finding", "sha256"], name="attachment_once_per_finding")]

    def __str__(self) -> str:
        return f"{self.name} on finding #{self.finding_id}"


class InvestigationStatus(models.TextChoices):
    OPEN = "open", gettext_lazy("Open")
    TRACING = "tracing", gettext_lazy("Tracing")
    TRACED = "traced", gettext_lazy("Traced")
    UNDER_REVIEW = "under_review", gettext_lazy("Under review")
    CLOSED = "closed", gettext_lazy("Closed")


class Investigation(Owned):
    finding = models.OneToOneField(Finding, on_delete=models.PROTECT, related_name="investigation")
    status = models.CharField(max_length=16, choices=InvestigationStatus.choices, default=InvestigationStatus.OPEN)
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    preview = models.JSONField(
        default=dict, blank=True, help_text="Impact preview counted when the finding was recorded."
    )

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"Investigation #{self.pk} ({self.get_status_display()})"


class InvestigationTransition(models.Model):
    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=InvestigationStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=InvestigationStatus.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["investigation", "at", "id"]

    def __str__(self) -> str:
        return f"{self.investigation}: {self.from_status or '-'} → {self.to_status}"


class TraceRun(models.Model):
    """One forward trace of an investigation's subject at one ledger position.

    The result is stored compactly, as the segments reached (``TraceRunSegment``) and the units
    reached through unit-to-unit links (``TraceRunUnit``); affected units are expanded from them on
    demand, always filtered to the records valid at ``position``, so the answer reproduces.
    """

    investigation = models.ForeignKey(Investigation, on_delete=models.PROTECT, related_name="runs")
    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="trace_run")
    position = models.BigIntegerField(help_text="Ledger position traced at.")
    last_transformation_id = models.BigIntegerField(default=0)
    retracted_transformation_ids = models.JSONField(default=list, blank=True)
    seed_lot_ids = models.JSONField(default=list, blank=True)
    seed_unit_ids = models.JSONField(default=list, blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    definite_units = models.BigIntegerField(null=True, blank=True)
    potential_units = models.BigIntegerField(null=True, blank=True)
    consignees = models.IntegerField(null=True, blank=True)
    diff = models.JSONField(default=dict, blank=True, help_text="What changed since the previous run.")
    party_view = models.JSONField(
        default=dict,
        blank=True,
        help_text="The investigation's owner's share of the result (genealogy.PartyView): what it is shown.",
    )
    # Counted when the run finishes, so a party reading the finding costs no trace: a GET of the
    # findings about its lots reads its share with the page, in one query.
    shares = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=(
            "The share of the result of each organisation told of the finding (by organisation id, in"
            " party_view's shape); null for a run finished before shares were stored."
        ),
    )
    # Counted when the run finishes, for every reader who sees the result whole (a regulator in
    # scope): a GROUP BY over a million units' rows took 1.2 s on the bench world, the consignees
    # 0.3 s more, on every read of a breakdown.
    breakdown = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=(
            "The result's units counted per product model, work order, site and month of production"
            ' ({"groups": [[product model id, work order id, site id, "YYYY-MM", units, definite], …]})'
            ' and who received them ({"consignees": [[organisation id, units, first, last shipped], …]}),'
            " as a reader who sees the whole result reads them; null for a run finished before they were stored."
        ),
    )
    # The same for the investigation's owner, when it reads only its share (a brand tracing a
    # supplier's lot): counted on every read, the brand's page of a million-unit run took 1.3 s.
    party_breakdown = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=(
            "breakdown's shape, of the units the investigation's owner owns or received and its own consignees;"
            " null for a run finished before it was stored, or whose owner reads the result whole."
        ),
    )
    parts_stored = models.BooleanField(
        default=False, db_default=False, help_text="Its owner's part (TraceRunPart) was stored when it finished."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Trace run {self.pk} at position {self.position}"


class TraceRunSegment(models.Model):
    """A segment a run reached: its units are affected with ``exposure``, explained by ``path``."""

    pk = models.CompositePrimaryKey("run_id", "segment_id")
    run = models.ForeignKey(TraceRun, on_delete=models.CASCADE, related_name="segments")
    segment = models.ForeignKey(Segment, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    exposure = models.CharField(max_length=9, choices=Exposure.choices)
    via_lot = models.ForeignKey(Lot, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    path = models.JSONField(help_text="Lot ids and transformation ids from the subject to ``via_lot``.")

    def __str__(self) -> str:
        return f"run {self.run_id} reached segment {self.segment_id} ({self.exposure})"


class TraceRunUnit(models.Model):
    """A unit a run reached through unit-to-unit links (refurbishment), or the subject unit itself."""

    pk = models.CompositePrimaryKey("run_id", "unit_id")
    run = models.ForeignKey(TraceRun, on_delete=models.CASCADE, related_name="units")
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    exposure = models.CharField(max_length=9, choices=Exposure.choices)
    path = models.JSONField()

    def __str__(self) -> str:
        return f"run {self.run_id} reached unit {self.unit_id} ({self.exposure})"


class TraceRunPart(models.Model):
    """A party's part of a run's result, stored when the run finishes: each segment the run reached
    that holds units of the party, with the party roll-up's smallest and largest unit id and member
    rows of them (``SegmentOwner``), in unit bound order. Stored for the investigation's owner, the
    one party that reads a run's units (regulators read them whole).

    A party's page of the result (``investigations.selectors.finished_run_party_page``) reads its
    first few segments by bound from here. Joining every segment the run reached with the roll-up
    instead read 6,532 of 25,380 segments for a brand's page of the largest bench result (57 ms).
    A run finished before these were stored has none (``TraceRun.parts_stored``), and its pages are
    read as before.
    """

    pk = models.CompositePrimaryKey("run_id", "owner_id", "first_unit_id", "segment_id")
    # No database constraints: a run's part is written in one INSERT … SELECT at its end, where a
    # check per row would cost about 5 µs each (6,532 rows for a brand's part of the largest bench result).
    run = models.ForeignKey(
        TraceRun, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="parts"
    )
    owner = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    first_unit_id = models.BigIntegerField()
    last_unit_id = models.BigIntegerField()
    unit_count = models.BigIntegerField(help_text="Member rows of the owner's units in the segment.")

    def __str__(self) -> str:
        return f"run {self.run_id}: segment {self.segment_id} holds units of organisation {self.owner_id}"


class TraceRunCountry(models.Model):
    """A country a run's affected units were sold into (its consignee's, or the site shipped to):
    what a regulator's jurisdiction grant is matched against, with no trace at read time."""

    pk = models.CompositePrimaryKey("run_id", "country")
    run = models.ForeignKey(TraceRun, on_delete=models.CASCADE, related_name="countries")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")

    class Meta:
        indexes = [models.Index(fields=["country", "run"], name="trace_run_country_first")]

    def __str__(self) -> str:
        return f"run {self.run_id} reached {self.country}"


class ExportFormat(models.TextChoices):
    CSV = "csv", gettext_lazy("CSV of affected units")
    JSON = "json", gettext_lazy("JSON of affected units")
    NOTIFICATIONS = "notifications", gettext_lazy("Notification list per consignee (JSON)")


class Export(models.Model):
    """A file of a trace run's result (the affected units, or the notification list), written by
    its export job; ``file`` is set, in the storage, when the job's last chunk commits."""

    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="export")
    run = models.ForeignKey(TraceRun, on_delete=models.PROTECT, related_name="exports")
    format = models.CharField(max_length=16, choices=ExportFormat.choices)
    file = models.FileField(upload_to="exports/", max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_format_display()} of trace run {self.run_id}"


class ResponseStatus(models.TextChoices):
    DRAFT = "draft", gettext_lazy("Draft: the supplier is working on it")
    SUBMITTED = "submitted", gettext_lazy("Submitted: every step from containment to prevention answered")


# The 8D steps a supplier's response answers (Ford's Eight Disciplines, as QA teams use them), as
# the fields of each revision; D8 (closure and recognition) is the investigation owner's to give.
EIGHT_D_STEPS = {
    "team": "D1 team",
    "problem": "D2 problem description",
    "containment": "D3 containment",
    "root_cause": "D4 root cause",
    "corrective_action": "D5 corrective action chosen",
    "implementation": "D6 corrective action implemented",
    "prevention": "D7 prevention",
}
# What a response must answer before it is submitted: from containment to prevention.
EIGHT_D_REQUIRED = ("containment", "root_cause", "corrective_action", "implementation", "prevention")


class SupplierResponse(Owned):
    """A supplier's structured answer (8D) to an investigation that concerns its lots: one per
    investigation and responding organisation (``owner``). What it says is its latest revision;
    every revision is kept as written, never changed (``SupplierResponseRevision``)."""

    investigation = models.ForeignKey(Investigation, on_delete=models.PROTECT, related_name="responses")
    opened_at = models.DateTimeField()
    revision = models.PositiveIntegerField(default=0, help_text="The number of its latest revision.")

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["investigation", "owner"], name="response_once_per_responder"),
        ]

    def __str__(self) -> str:
        return f"8D response of organisation {self.owner_id} to investigation #{self.investigation_id}"


class SupplierResponseRevision(models.Model):
    """One revision of a supplier's 8D response, whole: every step as it read after this change,
    which steps this revision changed, who wrote it and when."""

    response = models.ForeignKey(SupplierResponse, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ResponseStatus.choices)
    team = models.TextField(blank=True, help_text="D1: who works on the problem.")
    problem = models.TextField(blank=True, help_text="D2: the problem as the supplier describes it.")
    containment = models.TextField(blank=True, help_text="D3: what contains it now (lots held, sorted, recalled).")
    root_cause = models.TextField(blank=True, help_text="D4: why it happened, and why it was not detected.")
    corrective_action = models.TextField(blank=True, help_text="D5: the permanent action chosen, and its proof.")
    implementation = models.TextField(blank=True, help_text="D6: how the action was implemented and validated.")
    implemented_on = models.DateField(null=True, blank=True, help_text="D6: when it took effect.")
    prevention = models.TextField(blank=True, help_text="D7: what keeps it and its like from happening again.")
    changed = models.JSONField(default=list, help_text="The steps (field names) this revision changed.")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField()

    class Meta:
        ordering = ["response", "number"]
        constraints = [
            models.UniqueConstraint(fields=["response", "number"], name="response_revision_numbered_once"),
        ]

    def __str__(self) -> str:
        return f"revision {self.number} of {self.response}"
