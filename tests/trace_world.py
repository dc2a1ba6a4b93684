"""A small hand-built world with definite and potential paths of depth four and more.

M1 precursor ──def──▶ M2 cathode ──def──▶ C1 cell lot ──def──▶ MOD1 module ──def──▶ U1 U2 U3
                        │                                                    (build records)
                        └──pot──▶ C2, C3 (M2 + M3 anode → C2 + C3: several in, several out)
C2 + C4 ──pot──▶ U4 U5 U6 (one work-order record, two lots, three units)
C4 ──def──▶ U7 (build record: not downstream of M1)
U1 ──def──▶ U8 (refurbished)
U1..U3 in carton K1 on pallet P1 shipped to distributor D1; U4..U6 in carton K2 shipped to D2.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from django.db import transaction

from packs.models import Container, ContainerPacking, Shipment, ShipmentItem
from suppliers.models import Role
from tests.factories import (
    CellLotFactory,
    MaterialLotFactory,
    ModuleLotFactory,
    OrganisationFactory,
    WorkOrderFactory,
    with_check_digit,
)
from traceability.genealogy.commissioning import units_create, units_pack
from traceability.genealogy.models import RecordKind
from traceability.genealogy.writes import UnitBuild, transformation_record, unit_builds_record
from traceability.ledger.services import ledger_append

AT = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)


def build_world() -> SimpleNamespace:
    w = SimpleNamespace()
    w.m1, w.m2, w.m3 = MaterialLotFactory(code="M1"), MaterialLotFactory(code="M2"), MaterialLotFactory(code="M3")
    w.c1, w.c2, w.c3, w.c4 = (CellLotFactory(code=f"C{i}") for i in range(1, 5))
    w.mod1 = ModuleLotFactory(code="MOD1")
    w.work_order = WorkOrderFactory()
    w.brand = w.work_order.owner
    with transaction.atomic():
        units = units_create(
            owner=w.brand,
            product_model=w.work_order.product_model,
            work_order=w.work_order,
            serials=[f"U{i}" for i in range(1, 9)],
            produced_at=AT,
        )
    w.u = dict(zip(range(1, 9), units, strict=True))
    with transaction.atomic():
        w.entry = ledger_append(source="manual", summary="trace world")

        def record(reference, **kwargs):
            return transformation_record(
                entry=w.entry, owner=w.brand, kind=RecordKind.MANUAL, reference=reference, occurred_at=AT, **kwargs
            )

        w.t_m1_m2 = record("calcination", input_lot_ids=[w.m1.pk], output_lot_ids=[w.m2.pk])
        w.t_m2_c1 = record("cell line 1", input_lot_ids=[w.m2.pk], output_lot_ids=[w.c1.pk])
        w.t_c2_c3 = record("cell line 2", input_lot_ids=[w.m2.pk, w.m3.pk], output_lot_ids=[w.c2.pk, w.c3.pk])
        w.t_c1_mod = record("module line", input_lot_ids=[w.c1.pk], output_lot_ids=[w.mod1.pk])
        unit_builds_record(
            entry=w.entry,
            owner=w.brand,
            builds=[
                UnitBuild(reference=f"build U{i}", unit_id=w.u[i], lot_ids=frozenset({w.mod1.pk}), occurred_at=AT)
                for i in (1, 2, 3)
            ]
            + [UnitBuild(reference="build U7", unit_id=w.u[7], lot_ids=frozenset({w.c4.pk}), occurred_at=AT)],
        )
        w.t_wo = transformation_record(
            entry=w.entry,
            owner=w.brand,
            kind=RecordKind.WORK_ORDER,
            reference=w.work_order.number,
            occurred_at=AT,
            input_lot_ids=[w.c2.pk, w.c4.pk],
            output_unit_ids=[w.u[4], w.u[5], w.u[6]],
            work_order_id=w.work_order.pk,
        )
        w.t_refurb = record("refurbish U1", input_unit_ids=[w.u[1]], output_unit_ids=[w.u[8]])
    _pack_and_ship(w)
    return w


def _pack_and_ship(w: SimpleNamespace) -> None:
    prefix = w.brand.gs1_company_prefix
    w.d1 = OrganisationFactory(role=Role.DISTRIBUTOR, pgln=with_check_digit(f"{prefix}00091"))
    w.d2 = OrganisationFactory(role=Role.DISTRIBUTOR, pgln=with_check_digit(f"{prefix}00092"))

    def container(serial, kind):
        sscc = with_check_digit(f"0{prefix}{serial:0{16 - len(prefix)}d}")
        return Container.objects.create(owner=w.brand, identity=f"sscc:{sscc}", sscc=sscc, kind=kind)

    w.k1, w.k2, w.p1 = container(1, "carton"), container(2, "carton"), container(3, "pallet")
    with transaction.atomic():
        units_pack(packings=[(w.k1.pk, w.u[i], AT) for i in (1, 2, 3)] + [(w.k2.pk, w.u[i], AT) for i in (4, 5, 6)])
    ContainerPacking.objects.create(parent=w.p1, child=w.k1, packed_at=AT)
    first = Shipment.objects.create(
        owner=w.brand, reference="DA-1", consignee=w.d1, shipped_at=AT + dt.timedelta(days=2)
    )
    second = Shipment.objects.create(
        owner=w.brand, reference="DA-2", consignee=w.d2, shipped_at=AT + dt.timedelta(days=3)
    )
    ShipmentItem.objects.create(shipment=first, container=w.p1)
    ShipmentItem.objects.create(shipment=second, container=w.k2)


def add_competitor(w: SimpleNamespace) -> SimpleNamespace:
    """A second brand whose units U9 and U10 were built from cell lot C1 too (one build record each);
    U9 shipped loose to the second brand's own distributor."""
    w.other_order = WorkOrderFactory()
    w.other_brand = w.other_order.owner
    w.other_distributor = OrganisationFactory(role=Role.DISTRIBUTOR)
    with transaction.atomic():
        u9, u10 = units_create(
            owner=w.other_brand,
            product_model=w.other_order.product_model,
            work_order=w.other_order,
            serials=["U9", "U10"],
            produced_at=AT,
        )
        entry = ledger_append(source="manual", summary="second brand")
        unit_builds_record(
            entry=entry,
            owner=w.other_brand,
            builds=[
                UnitBuild(reference=f"build {u}", unit_id=u, lot_ids=frozenset({w.c1.pk}), occurred_at=AT)
                for u in (u9, u10)
            ],
        )
    shipment = Shipment.objects.create(
        owner=w.other_brand, reference="B-1", consignee=w.other_distributor, shipped_at=AT + dt.timedelta(days=5)
    )
    ShipmentItem.objects.create(shipment=shipment, unit_id=u9)
    w.u[9], w.u[10] = u9, u10
    return w
