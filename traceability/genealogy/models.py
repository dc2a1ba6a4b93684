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

from django.db import models
from django.utils.translation import gettext_lazy

from cells.models import Lot
from packs.models import Unit, WorkOrder
from suppliers.models import Organisation, Owned
from traceability.ledger.models import LedgerEntry


class Exposure(models.TextChoices):
    DEFINITE = "definite", gettext_lazy("Definite")
    POTENTIAL = "potential", gettext_lazy("Potential")


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
    # Whose units it holds, so a party's share of a trace sums segments as the unscoped count does
    # instead of joining every member with its unit. A segment's units are one organisation's in
    # practice (a work order is one brand's); when two organisations' units join it, it is counted
    # unit by unit. No database constraint, as for the hot tables' other references.
    owner = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        help_text="The owner of its units (of one of them when they are mixed; none while it has no members).",
    )
    owners_mixed = models.BooleanField(default=False, help_text="Units of more than one organisation joined it.")

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


class SegmentOwner(models.Model):
    """The party roll-up: how many member rows of a segment are each organisation's units.

    Written with the members (``writes._members_written``), so a party's share of a trace sums
    these per owner instead of joining every member with its unit, also where a segment holds two
    brands' units (``Segment.owners_mixed``). It counts every member row ever written, as
    ``Segment.unit_count`` does: exact for a segment whose rows are all valid at a trace's
    position (``counts.Sums.clean``); other segments, and ``RepeatedUnit``s, are settled exactly.
    The smallest and largest unit ids among those rows bound where the segment's units lie, so a
    page of units in id order probes only the segments that can hold it (``affected``).
    """

    pk = models.CompositePrimaryKey("segment_id", "owner_id")
    segment = models.ForeignKey(
        Segment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    owner = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    unit_count = models.BigIntegerField(
        help_text="Member rows ever written of this owner's units, retracted ones included."
    )
    first_unit_id = models.BigIntegerField(help_text="The smallest unit id among those rows.")
    last_unit_id = models.BigIntegerField(help_text="The largest unit id among those rows.")

    def __str__(self) -> str:
        return f"segment {self.segment_id}: {self.unit_count} units of organisation {self.owner_id}"


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
