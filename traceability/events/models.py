"""EPCIS documents received and the events they carried, indexed by canonical identifier."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from suppliers.models import Organisation
from traceability.genealogy.models import Transformation
from traceability.ledger.models import LedgerEntry


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
    # In the default storage, so the worker that applies it reads what the web received (they may
    # not share a disk). Named by a random hex: the capture's id is not known when it is kept.
    document = models.FileField(upload_to="epcis/%Y/%m/", max_length=300, help_text="The document as received.")
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
    sent without one, so a repeat is recognised either way. It is unique per ``owner`` (the
    capturing organisation), not across the ledger: another organisation's event with the same
    identifier is an event of its own, so that nothing answers a party that another's exists
    (issue 12), and a repeat or an ``errorDeclaration`` reaches only the sender's own event.
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
    # The capture's owner, kept on the event for UNIQUE(event_id, owner). Unconstrained and not
    # indexed alone: no query reads events by owner alone (they read by capture, which is indexed).
    owner = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
        related_name="+",
        help_text="The organisation that captured it (its capture's owner).",
    )
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
        # event_id first: the index serves a capture's repeat check (event_id = ANY, owner =) and the
        # query interface's EQ_eventID and GET /epcis/events/<id>, which read by event_id alone.
        constraints = [models.UniqueConstraint(fields=["event_id", "owner"], name="epcisevent_event_id_owner_unique")]
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
