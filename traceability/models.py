"""The genealogy: one directed acyclic graph of "made from" facts, and the ledger that orders them.

Physical design, after PERFORMANCE.md (measured at 10 million units):

* Lot → lot links (``LotLink``) and unit → unit links (``UnitLink``, refurbishment) are few and
  are stored one row per link.
* Lot → unit links are not stored per (unit, lot) pair. Units built from the same set of input
  lots with the same exposure share one ``Segment`` (its inputs in ``SegmentInput``); a unit joins
  a segment through ``SegmentMember``, which names the transformation (the record) the link came
  from. Counting the units behind a lot is then an index-only scan of ``SegmentMember``.
* Every write to the ledger takes the next ``LedgerEntry`` position while holding the lock on
  ``LedgerHead``, so writes are serialised and transformation ids grow with ledger position: a
  trace at position P counts members whose transformation id is at most the last id recorded at
  P and whose transformation was not retracted at or before P.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from cells.models import Lot
from packs.models import Unit, WorkOrder
from suppliers.models import Organisation, Owned


class LedgerSource(models.TextChoices):
    DEMO = "demo", "Demo world"
    EPCIS = "epcis", "EPCIS capture"
    CSV = "csv", "CSV import"
    MANUAL = "manual", "Manual entry"
    JOB = "job", "Background job"


class LedgerHead(models.Model):
    """The single row whose lock serialises ledger writes; ``position`` is the last one taken."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    position = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="ledgerhead_singleton")]

    def __str__(self) -> str:
        return f"Ledger head at {self.position}"


class LedgerEntry(models.Model):
    """One committed write to the ledger; its position is what trace runs record to be reproducible."""

    position = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=LedgerSource.choices)
    summary = models.CharField(max_length=300)
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-position"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.position} {self.summary}"


class Exposure(models.TextChoices):
    DEFINITE = "definite", "Definite"
    POTENTIAL = "potential", "Potential"


def exposure_name(definite: bool) -> str:
    """``"definite"`` or ``"potential"``: a trace's yes/no as rows, pages and files spell it."""
    return (Exposure.DEFINITE if definite else Exposure.POTENTIAL).value


def exposure_of(*, input_count: int, output_count: int) -> Exposure:
    """The link rule: one input or one output makes every input-output link certain."""
    if input_count < 1 or output_count < 1:
        raise ValueError("a transformation has at least one input and one output")
    return Exposure.DEFINITE if input_count == 1 or output_count == 1 else Exposure.POTENTIAL


class RecordKind(models.TextChoices):
    EPCIS_TRANSFORMATION = "epcis", "EPCIS TransformationEvent (or transformationID group)"
    WORK_ORDER = "work_order", "Work-order record"
    BUILD_RECORD = "build_record", "Unit build record"
    MANUAL = "manual", "Manual record"


class Transformation(Owned):
    """One record that some inputs were made into some outputs: the source every link names.

    Its exposure follows the link rule from the counts of all its inputs and outputs, lots and
    units together. A retracted transformation (an EPCIS errorDeclaration, a corrected work order)
    stops counting from ``retracted_position`` on; its rows stay, so earlier traces reproduce.
    """

    kind = models.CharField(max_length=16, choices=RecordKind.choices)
    reference = models.CharField(
        max_length=200, help_text="eventID, transformationID, work-order or build-record number."
    )
    work_order = models.ForeignKey(WorkOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField()
    input_count = models.PositiveIntegerField()
    output_count = models.PositiveIntegerField()
    exposure = models.CharField(max_length=9, choices=Exposure.choices)
    # No database constraint on the hot tables' references (as for segment members): a million-record
    # import wrote them all from rows it had just read or made, and their deferred checks at commit
    # were a tenth of its time.
    recorded_position = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, db_constraint=False, related_name="+", db_index=True
    )
    retracted_position = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retraction_reason = models.TextField(blank=True)
    segment = models.ForeignKey(
        "Segment",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="The segment its lot → unit links went into (a record writes at most one).",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "reference"], name="transformation_unique_reference"),
            models.CheckConstraint(
                condition=models.Q(input_count__gte=1, output_count__gte=1), name="transformation_has_io"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"

    @property
    def retracted(self) -> bool:
        return self.retracted_position_id is not None


class LotLink(models.Model):
    """``output_lot`` was made from ``input_lot`` (material → cell, cell → module, ...)."""

    transformation = models.ForeignKey(Transformation, on_delete=models.PROTECT, related_name="lot_links")
    # No single-column indexes: the unique constraint leads with input_lot, the index below with
    # output_lot, and both cover what a walk reads.
    input_lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="output_links", db_index=False)
    output_lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="input_links", db_index=False)
    exposure = models.CharField(max_length=9, choices=Exposure.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["input_lot", "output_lot", "transformation"], name="lotlink_unique"),
            models.CheckConstraint(condition=~models.Q(input_lot=models.F("output_lot")), name="lotlink_not_self"),
        ]
        indexes = [models.Index(fields=["output_lot", "input_lot", "transformation"], name="lotlink_backward")]

    def __str__(self) -> str:
        return f"{self.input_lot_id} → {self.output_lot_id} ({self.exposure})"


class UnitLink(models.Model):
    """``output_unit`` was made from ``input_unit``: a refurbished or rebuilt power bank."""

    transformation = models.ForeignKey(Transformation, on_delete=models.PROTECT, related_name="unit_links")
    input_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="output_links")
    output_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="input_links")
    exposure = models.CharField(max_length=9, choices=Exposure.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["input_unit", "output_unit", "transformation"], name="unitlink_unique"),
            models.CheckConstraint(condition=~models.Q(input_unit=models.F("output_unit")), name="unitlink_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.input_unit_id} → {self.output_unit_id} ({self.exposure})"


class Segment(models.Model):
    """Units that were made from one set of input lots with one exposure.

    ``input_key`` (a digest of the exposure and the sorted input lot ids) makes the set unique, so
    every transformation with the same inputs and exposure adds its units to the same segment.
    """

    input_key = models.CharField(max_length=64, unique=True, editable=False)
    exposure = models.CharField(max_length=9, choices=Exposure.choices)
    input_lots = models.ManyToManyField(Lot, through="SegmentInput", related_name="segments")
    unit_count = models.BigIntegerField(default=0, help_text="Members ever written, retracted ones included.")
    last_transformation_id = models.BigIntegerField(
        default=0, help_text="The newest record among its members: at older positions, count them one by one."
    )

    def __str__(self) -> str:
        return f"Segment {self.pk} ({self.exposure}, {self.unit_count} units)"


class SegmentInput(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="inputs")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lot", "segment"], name="segmentinput_unique")]

    def __str__(self) -> str:
        return f"lot {self.lot_id} in segment {self.segment_id}"


class SegmentMember(models.Model):
    """A unit made from its segment's inputs, by ``transformation``.

    The composite primary key is the only index: (segment, unit, transformation) answers "which
    units does this segment reach, under which records" with an index-only scan. No foreign-key
    constraints: the bulk writer checks references once per batch.
    """

    pk = models.CompositePrimaryKey("segment_id", "unit_id", "transformation_id")
    # No index of its own: the primary key leads with segment_id. A separate one made the planner
    # skip the index-only scan of the key (seen in the 10M-unit bench world).
    segment = models.ForeignKey(
        Segment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="members"
    )
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    transformation = models.ForeignKey(
        Transformation, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["unit"], name="segmentmember_unit")]

    def __str__(self) -> str:
        return f"unit {self.unit_id} in segment {self.segment_id}"


class SegmentContainer(models.Model):
    """The consignee roll-up: how many (member row, packing) pairs put a segment's units in a container.

    Written with the members and with the packings, whichever comes second, so "who received
    the units of these segments" groups per (segment, container) before joining anything
    (PERFORMANCE.md: group before you join). It counts every member row ever written; segments
    with rows not valid at a trace's position, and ``RepeatedUnit``s, are settled exactly.
    """

    pk = models.CompositePrimaryKey("segment_id", "container_id")
    segment = models.ForeignKey(
        Segment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    container = models.ForeignKey(
        "packs.Container", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    rows = models.IntegerField()  # at most a segment's units in one container; SUM(int) stays bigint, not numeric

    class Meta:
        # Covering: summing the roll-up of thousands of segments is then an index-only scan.
        indexes = [models.Index(fields=["segment"], include=["container", "rows"], name="segmentcontainer_cover")]

    def __str__(self) -> str:
        return f"segment {self.segment_id}: {self.rows} in container {self.container_id}"


class RepeatedUnit(models.Model):
    """A unit with more than one member row or more than one packing.

    Counts summed per segment (``Segment.unit_count``, ``SegmentContainer.rows``) count such a
    unit more than once; the trace settles these few units one by one.
    """

    unit = models.OneToOneField(
        Unit, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    def __str__(self) -> str:
        return f"unit {self.unit_id} (repeated)"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """A unit of background work: its progress and outcome live here, not in a result backend."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    phase = models.CharField(max_length=100, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    owner = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status}, {self.percent}%)"


class LearntCompanyPrefix(models.Model):
    """A GS1 Company Prefix seen spelled out in an EPC URN a partner sent.

    A Digital Link does not say where the company prefix ends, so URNs rendered for its digits use
    the prefixes registered by organisations, then these, then GS1's published length table.
    """

    prefix = models.CharField(max_length=12, primary_key=True)
    learnt_from = models.CharField(max_length=200, help_text="The first URN that spelled it out.")
    learnt_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        return self.prefix


# --- Findings, investigations and trace runs ---------------------------------------------------------


class FindingCategory(models.TextChoices):
    METALLIC_DEBRIS = "metallic_debris", "Metallic debris"
    SEPARATOR_DEFECT = "separator_defect", "Separator defect"
    ELECTROLYTE_CONTAMINATION = "electrolyte_contamination", "Electrolyte contamination"
    OVERHEATING_INCIDENT = "overheating_incident", "Overheating incident"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class SubjectKind(models.TextChoices):
    LOT = "lot", "A lot (material, cell or module)"
    UNIT = "unit", "A unit"
    SUPPLIER = "supplier", "All lots of a supplier"
    SITE = "site", "All lots made at a site"


class Finding(Owned):
    """A defect found on a subject: the start of every investigation.

    The subject is one lot or unit, or all lots of a supplier or a site; ``window_from`` and
    ``window_to`` narrow it to lots whose production window overlaps them.
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
    OPEN = "open", "Open"
    TRACING = "tracing", "Tracing"
    TRACED = "traced", "Traced"
    UNDER_REVIEW = "under_review", "Under review"
    CLOSED = "closed", "Closed"


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


# --- EPCIS events ------------------------------------------------------------------------------------


class EpcisEventType(models.TextChoices):
    OBJECT = "ObjectEvent"
    AGGREGATION = "AggregationEvent"
    TRANSACTION = "TransactionEvent"
    TRANSFORMATION = "TransformationEvent"
    ASSOCIATION = "AssociationEvent"


class CaptureErrorBehaviour(models.TextChoices):
    ROLLBACK = "rollback", "All or nothing"
    PROCEED = "proceed", "Apply the valid events, report the others"


class EpcisCapture(models.Model):
    """One EPCIS document received (``POST /epcis/capture``, one event, or ``import_epcis``).

    Its job applies it; ``problems`` lists what was wrong, each naming the event and the place.
    """

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.OneToOneField("Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    error_behaviour = models.CharField(
        max_length=8, choices=CaptureErrorBehaviour.choices, default=CaptureErrorBehaviour.ROLLBACK
    )
    document_path = models.CharField(max_length=300, help_text="The document as received, under the data folder.")
    events = models.PositiveIntegerField(default=0, help_text="Events in the document.")
    captured = models.PositiveIntegerField(default=0, help_text="Events stored by this capture.")
    repeated = models.PositiveIntegerField(default=0, help_text="Events the ledger had already: left as they were.")
    declared = models.PositiveIntegerField(default=0, help_text="Stored events this capture declared erroneous.")
    problems = models.JSONField(default=list, blank=True)
    entry = models.ForeignKey(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    context = models.JSONField(
        default=list, blank=True, help_text="The document's @context: query answers declare its extension prefixes."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"EPCIS capture {self.pk} ({self.events} events)"


class EpcisEvent(models.Model):
    """One captured EPCIS event. ``body`` is the event in the JSON binding, as it was received.

    ``event_id`` is its ``eventID``, or the standard's event hash (``ni:///sha-256;…``) for an event
    sent without one, so a repeat is recognised either way.
    """

    # Indexes: only those a query or capture reads by (see Meta). Every index is written for each of
    # a million imported events; an index on type, bizStep or disposition (a handful of values each)
    # is never chosen by the planner, and PostgreSQL's LIKE companions of indexed text are never used.
    event_id = models.CharField(max_length=255)
    hashed_id = models.BooleanField(default=False, help_text="event_id is the event hash, not a sent eventID.")
    type = models.CharField(max_length=20, choices=EpcisEventType.choices)
    event_time = models.DateTimeField(db_index=True)
    time_zone_offset = models.CharField(max_length=6)
    record_time = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=8, blank=True)
    biz_step = models.CharField(max_length=255, blank=True, help_text="CBV values in the bare form.")
    disposition = models.CharField(max_length=255, blank=True)
    transformation_id = models.CharField(max_length=255, blank=True)
    declared_at = models.DateTimeField(null=True, blank=True, help_text="When it was declared erroneous.")
    declaration = models.JSONField(null=True, blank=True, help_text="The errorDeclaration that retracted it.")
    body = models.JSONField()
    # Unconstrained in the database, as Transformation.recorded_position is (and for the same reason).
    capture = models.ForeignKey(EpcisCapture, on_delete=models.PROTECT, db_constraint=False, related_name="+")
    recorded_position = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+"
    )
    record = models.ForeignKey(
        Transformation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
        help_text="The genealogy record derived from it (a TransformationEvent, or its transformationID group).",
    )

    class Meta:
        ordering = ["record_time", "id"]
        constraints = [models.UniqueConstraint(fields=["event_id"], name="epcisevent_event_id_unique")]
        indexes = [models.Index(fields=["transformation_id"], name="epcisevent_transformation")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class EpcisRole(models.TextChoices):
    """Where an identifier sits in an event, for the MATCH_ query parameters."""

    EPC = "epc", "epcList"
    PARENT = "parent", "parentID"
    CHILD = "child", "childEPCs"
    INPUT = "input", "inputEPCList"
    OUTPUT = "output", "outputEPCList"
    CLASS = "class", "quantityList"
    CHILD_CLASS = "child_class", "childQuantityList"
    INPUT_CLASS = "input_class", "inputQuantityList"
    OUTPUT_CLASS = "output_class", "outputQuantityList"


class EpcisEventEpc(models.Model):
    """One identifier named by an event, in canonical form (an EPC URN and a Digital Link of the same
    thing give the same ``epc``): the index the MATCH_ queries read."""

    event = models.ForeignKey(EpcisEvent, on_delete=models.CASCADE, db_constraint=False, related_name="epcs")
    role = models.CharField(max_length=12, choices=EpcisRole.choices)
    epc = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["epc", "role"], name="epcisepc_lookup")]

    def __str__(self) -> str:
        return f"{self.epc} ({self.role}) in {self.event_id}"
