"""Materials and cells: material lots feed cell lots, cell lots may feed module lots.

Every kind of lot shares one table (``Lot``, multi-table inheritance) so that the genealogy names a
lot by one id, whatever its level; the kind-specific facts sit in the child tables.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from suppliers.models import Owned, Site


class MaterialKind(models.TextChoices):
    CATHODE = "cathode", "Cathode active material"
    ANODE = "anode", "Anode active material"
    SEPARATOR = "separator", "Separator"
    ELECTROLYTE = "electrolyte", "Electrolyte"
    FOIL = "foil", "Current-collector foil"
    PRECURSOR = "precursor", "Precursor"
    OTHER = "other", "Other"


class Material(Owned):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=MaterialKind.choices)
    gtin = models.CharField("GTIN", max_length=14, null=True, blank=True, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="material_unique_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Chemistry(models.TextChoices):
    LCO = "LCO", "Lithium cobalt oxide"
    NMC = "NMC", "Nickel manganese cobalt"
    NCA = "NCA", "Nickel cobalt aluminium"
    LFP = "LFP", "Lithium iron phosphate"
    LMO = "LMO", "Lithium manganese oxide"
    LIPO = "LiPo", "Lithium polymer (LCO pouch)"


class CellFormat(models.TextChoices):
    C18650 = "18650", "18650 cylindrical"
    C21700 = "21700", "21700 cylindrical"
    POUCH = "pouch", "Pouch"
    PRISMATIC = "prismatic", "Prismatic"


class CellModel(Owned):
    name = models.CharField(max_length=200)
    chemistry = models.CharField(max_length=8, choices=Chemistry.choices)
    format = models.CharField(max_length=16, choices=CellFormat.choices)
    capacity_mah = models.PositiveIntegerField("capacity (mAh)")
    nominal_voltage = models.DecimalField(max_digits=4, decimal_places=2, default=3.7)
    gtin = models.CharField("GTIN", max_length=14, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="cellmodel_unique_name_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.format} {self.chemistry} {self.capacity_mah} mAh)"


class LotKind(models.TextChoices):
    MATERIAL = "material", gettext_lazy("Material lot")
    CELL = "cell", gettext_lazy("Cell lot")
    MODULE = "module", gettext_lazy("Module lot")


class Lot(Owned):
    """A lot of anything the genealogy links: the identity is GS1 (GTIN + lot) or the owner's own code.

    ``identity`` is the canonical key from ``traceability.gs1.identifiers`` (``lgtin:<gtin14>:<lot>`` or
    ``own-lot:<owner slug>:<code>``), unique across the ledger, so an EPC URN and a Digital Link of
    the same lot find the same row.
    """

    kind = models.CharField(max_length=8, choices=LotKind.choices, editable=False, db_index=True)
    identity = models.CharField(max_length=80, unique=True)
    code = models.CharField(max_length=20, db_index=True, help_text="The lot number as printed (GS1 AI 10).")
    gtin = models.CharField("GTIN", max_length=14, null=True, blank=True)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    produced_from = models.DateTimeField(null=True, blank=True)
    produced_to = models.DateTimeField(null=True, blank=True)
    quantity = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    uom = models.CharField(
        "unit of measure", max_length=3, blank=True, help_text="UN/CEFACT Rec. 20 code (KGM, MTR, EA, ...)"
    )

    class Meta:
        ordering = ["identity"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(produced_to__gte=models.F("produced_from"))
                | models.Q(produced_from__isnull=True)
                | models.Q(produced_to__isnull=True),
                name="lot_production_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.code}"


class MaterialLot(Lot):
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="lots")

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = LotKind.MATERIAL
        super().save(*args, **kwargs)


class CellLot(Lot):
    cell_model = models.ForeignKey(CellModel, on_delete=models.PROTECT, related_name="lots")

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = LotKind.CELL
        super().save(*args, **kwargs)


class ModuleLot(Lot):
    description = models.CharField(max_length=200, blank=True)
    cells_per_module = models.PositiveSmallIntegerField(default=1)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = LotKind.MODULE
        super().save(*args, **kwargs)


class InspectionMethod(models.TextChoices):
    XRAY = "xray", gettext_lazy("X-ray")
    CT = "ct", gettext_lazy("CT scan")
    OCV = "ocv", gettext_lazy("Open-circuit voltage")
    INTERNAL_RESISTANCE = "ir", gettext_lazy("Internal resistance")
    SELF_DISCHARGE = "self_discharge", gettext_lazy("Self-discharge")
    VISUAL = "visual", gettext_lazy("Visual")
    ANALYSIS = "analysis", gettext_lazy("Certificate of analysis")
    OTHER = "other", gettext_lazy("Other")


class InspectionOutcome(models.TextChoices):
    PASS = "pass", gettext_lazy("Pass")
    FAIL = "fail", gettext_lazy("Fail")
    INCONCLUSIVE = "inconclusive", gettext_lazy("Inconclusive")


class Inspection(Owned):
    """An inspection result on a lot; ``owner`` is the organisation that inspected."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="inspections")
    method = models.CharField(max_length=16, choices=InspectionMethod.choices)
    outcome = models.CharField(max_length=16, choices=InspectionOutcome.choices)
    measurements = models.JSONField(
        default=dict, blank=True, help_text='Measured values with units, e.g. {"ocv_v": 3.62, "max_particle_um": 45}.'
    )
    sample_size = models.PositiveIntegerField(null=True, blank=True)
    inspected_at = models.DateTimeField()
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    notes = models.TextField(blank=True)
    attachment = models.FileField(upload_to="inspections/%Y/%m/", null=True, blank=True)
    attachment_name = models.CharField(max_length=255, blank=True, help_text="The file's name as uploaded.")
    attachment_content_type = models.CharField(max_length=100, blank=True, help_text="Read from its bytes.")
    attachment_size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    attachment_sha256 = models.CharField(max_length=64, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True, help_text="When the ledger received it.")

    class Meta:
        ordering = ["-inspected_at", "id"]
        indexes = [models.Index(fields=["lot", "inspected_at"])]

    def __str__(self) -> str:
        return f"{self.get_method_display()} of {self.lot}: {self.get_outcome_display()}"


class Spec(Owned):
    """A limit of one property of a material's (or a cell model's) lots: what a certificate of
    analysis or an inspection result is checked against, in one unit, with a minimum, a maximum or
    both (inclusive). Owned by the material's or cell model's owner, who writes the limits its lots
    are held to; a value outside them is recorded as failing, not refused (``Measurement``)."""

    material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.PROTECT, related_name="specs")
    cell_model = models.ForeignKey(CellModel, null=True, blank=True, on_delete=models.PROTECT, related_name="specs")
    property = models.SlugField(
        max_length=64, help_text='What is measured, as results name it: "moisture", "fe_particle_size".'
    )
    unit = models.CharField(max_length=16, help_text='The unit values are given in, as written: "ppm", "µm", "V".')
    minimum = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    maximum = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["property", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(material__isnull=False, cell_model__isnull=True)
                | models.Q(material__isnull=True, cell_model__isnull=False),
                name="spec_of_one_material_or_cell_model",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum__isnull=False) | models.Q(maximum__isnull=False),
                name="spec_has_a_limit",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum__lte=models.F("maximum"))
                | models.Q(minimum__isnull=True)
                | models.Q(maximum__isnull=True),
                name="spec_minimum_within_maximum",
            ),
            models.UniqueConstraint(fields=["material", "property"], name="spec_once_per_material_property"),
            models.UniqueConstraint(fields=["cell_model", "property"], name="spec_once_per_cell_model_property"),
        ]

    def __str__(self) -> str:
        low = "" if self.minimum is None else f"{self.minimum} ≤ "
        high = "" if self.maximum is None else f" ≤ {self.maximum}"
        return f"{low}{self.property}{high} {self.unit}"


class Measurement(models.Model):
    """One measured value of an inspection, with the limits it was checked against as they were then
    (a spec may be changed later; the result stands as it was judged) and whether it is within them."""

    inspection = models.ForeignKey(Inspection, on_delete=models.PROTECT, related_name="results")
    property = models.SlugField(max_length=64)
    value = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=16)
    minimum = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    maximum = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    passed = models.BooleanField()

    class Meta:
        ordering = ["inspection", "property"]
        constraints = [
            models.UniqueConstraint(fields=["inspection", "property"], name="measurement_once_per_inspection")
        ]

    def __str__(self) -> str:
        return f"{self.property} = {self.value} {self.unit} ({'pass' if self.passed else 'fail'})"
