"""Finished power banks: product models, work orders, units, packing and shipping.

``Unit`` and ``UnitPacking`` are the ledger's largest tables (10 million rows at national scale).
Their foreign keys carry no database constraint: each costs about 5 µs per inserted row, so the
services that write them in bulk check references once per batch instead (see PERFORMANCE.md).
"""

from __future__ import annotations

from django.db import models

from suppliers.models import Certificate, Organisation, Owned, Site


class ProductModel(Owned):
    name = models.CharField(max_length=200, help_text='Marketing name, e.g. "PowerCore 10000".')
    model_number = models.CharField(max_length=64, help_text='e.g. "A1263".')
    gtin = models.CharField("GTIN", max_length=14, unique=True, null=True, blank=True)
    capacity_mah = models.PositiveIntegerField("capacity (mAh)", null=True, blank=True)
    certificates = models.ManyToManyField(Certificate, blank=True, related_name="product_models")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "model_number"], name="productmodel_unique_number_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_number})"


class WorkOrder(Owned):
    number = models.CharField(max_length=64)
    product_model = models.ForeignKey(ProductModel, on_delete=models.PROTECT, related_name="work_orders")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    planned_quantity = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "number"]
        constraints = [models.UniqueConstraint(fields=["owner", "number"], name="workorder_unique_number_per_owner")]

    def __str__(self) -> str:
        return f"WO {self.number}"


class Unit(models.Model):
    """One power bank. GS1-serialised units are keyed on (GTIN, serial); others on the owner's serial.

    ``identity`` is the canonical key from ``traceability.gs1.identifiers``: ``sgtin:<gtin14>:<serial>``
    or ``own-serial:<owner slug>:<serial>``.
    """

    owner = models.ForeignKey(Organisation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    identity = models.CharField(max_length=80, unique=True)
    serial = models.CharField(max_length=20, db_index=True)
    gtin = models.CharField("GTIN", max_length=14, null=True, blank=True)
    product_model = models.ForeignKey(
        ProductModel, on_delete=models.DO_NOTHING, db_constraint=False, related_name="units"
    )
    work_order = models.ForeignKey(
        WorkOrder, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="units"
    )
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    produced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["identity"]

    def __str__(self) -> str:
        return self.serial


class ContainerKind(models.TextChoices):
    CARTON = "carton", "Carton"
    PALLET = "pallet", "Pallet"
    OTHER = "other", "Other logistic unit"


class Container(Owned):
    """A carton or pallet: an SSCC (``sscc:<18 digits>``) or the owner's own code."""

    identity = models.CharField(max_length=80, unique=True)
    sscc = models.CharField("SSCC", max_length=18, null=True, blank=True, unique=True)
    kind = models.CharField(max_length=8, choices=ContainerKind.choices)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["identity"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.sscc or self.identity}"


class UnitPacking(models.Model):
    """A unit inside a container from ``packed_at`` until ``unpacked_at`` (open while it stays)."""

    container = models.ForeignKey(
        Container, on_delete=models.DO_NOTHING, db_constraint=False, related_name="unit_packings"
    )
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, related_name="packings")
    packed_at = models.DateTimeField()
    unpacked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["container", "packed_at", "id"]

    def __str__(self) -> str:
        return f"{self.unit_id} in {self.container_id}"


class ContainerPacking(models.Model):
    """A carton inside a pallet (or any container inside another, at any depth), over time."""

    parent = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="child_packings")
    child = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="parent_packings")
    packed_at = models.DateTimeField()
    unpacked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["parent", "packed_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(parent=models.F("child")), name="containerpacking_not_self")
        ]

    def __str__(self) -> str:
        return f"{self.child} in {self.parent}"


class Shipment(Owned):
    """Goods sent by ``owner`` to ``consignee``; its items are containers or loose units."""

    reference = models.CharField(max_length=64, help_text="Despatch advice or bill of lading number.")
    consignee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="received_shipments")
    ship_from = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    ship_to = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    shipped_at = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-shipped_at", "reference"]
        constraints = [models.UniqueConstraint(fields=["owner", "reference"], name="shipment_unique_reference")]

    def __str__(self) -> str:
        return f"Shipment {self.reference} to {self.consignee}"


class ShipmentItem(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    container = models.ForeignKey(Container, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(container__isnull=False, unit__isnull=True)
                | models.Q(container__isnull=True, unit__isnull=False),
                name="shipmentitem_container_xor_unit",
            )
        ]

    def __str__(self) -> str:
        return f"{self.container or self.unit} in {self.shipment}"
