"""The admin: every model's pages render, searches find the right rows, big tables stay O(1) in queries."""

from __future__ import annotations

import datetime as dt
import re
import types
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cells.models import CellLot, CellModel, Inspection, Material, MaterialLot, Measurement, ModuleLot, Spec
from packs.models import Container, ContainerPacking, ProductModel, Shipment, ShipmentItem, Unit, UnitPacking, WorkOrder
from suppliers.models import (
    Certificate,
    CertificateStatus,
    CertificateStatusChange,
    Membership,
    Organisation,
    OrganisationRole,
    Role,
    Site,
)
from suppliers.services import api_token_create, certificate_change_status
from traceability.access.models import Grant, GrantScope
from traceability.core.models import AuditEntry, Job
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

APPS = ("suppliers", "cells", "packs", "traceability")
REGISTERED = [
    "suppliers.Organisation",
    "suppliers.Site",
    "suppliers.Certificate",
    "suppliers.CertificateStatusChange",
    "suppliers.Membership",
    "suppliers.ApiToken",
    "cells.Material",
    "cells.CellModel",
    "cells.Lot",
    "cells.MaterialLot",
    "cells.CellLot",
    "cells.ModuleLot",
    "cells.Inspection",
    "cells.Spec",
    "cells.Measurement",
    "packs.ProductModel",
    "packs.WorkOrder",
    "packs.Unit",
    "packs.Container",
    "packs.UnitPacking",
    "packs.ContainerPacking",
    "packs.Shipment",
    "packs.ShipmentItem",
    "traceability.LedgerHead",
    "traceability.LedgerEntry",
    "traceability.Transformation",
    "traceability.LotLink",
    "traceability.UnitLink",
    "traceability.Segment",
    "traceability.SegmentInput",
    "traceability.RepeatedUnit",
    "traceability.Job",
    "traceability.LearntCompanyPrefix",
    "traceability.Finding",
    "traceability.FindingAttachment",
    "traceability.Investigation",
    "traceability.InvestigationTransition",
    "traceability.SupplierResponse",
    "traceability.SupplierResponseRevision",
    "traceability.TraceRun",
    "traceability.Export",
    "traceability.EpcisCapture",
    "traceability.EpcisEvent",
    "traceability.EpcisEventEpc",
    "traceability.AuditEntry",
    "traceability.Grant",
]
READ_ONLY = [
    "suppliers.CertificateStatusChange",
    "cells.Lot",
    "cells.Measurement",
    "traceability.LedgerHead",
    "traceability.LedgerEntry",
    "traceability.Transformation",
    "traceability.LotLink",
    "traceability.UnitLink",
    "traceability.Segment",
    "traceability.SegmentInput",
    "traceability.RepeatedUnit",
    "traceability.Job",
    "traceability.LearntCompanyPrefix",
    "traceability.Finding",
    "traceability.FindingAttachment",
    "traceability.Investigation",
    "traceability.InvestigationTransition",
    "traceability.SupplierResponse",
    "traceability.SupplierResponseRevision",
    "traceability.TraceRun",
    "traceability.Export",
    "traceability.EpcisCapture",
    "traceability.EpcisEvent",
    "traceability.EpcisEventEpc",
    "traceability.AuditEntry",
    "traceability.Grant",
]
GTIN = "04012345123456"
OTHER_GTIN = "04012345999993"
NOW = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def make_world() -> types.SimpleNamespace:
    """One row (at least) of every model, with plain ORM creates."""
    w = types.SimpleNamespace()
    w.brand = Organisation.objects.create(
        name="Volta Brands",
        slug="volta",
        country="DE",
        gs1_company_prefix="4012345",
        pgln="4012345000009",
    )
    w.maker = Organisation.objects.create(
        name="Cellco",
        slug="cellco",
        country="CN",
        gs1_company_prefix="0614141",
    )
    w.distributor = Organisation.objects.create(name="Shopco", slug="shopco")
    OrganisationRole.objects.bulk_create(
        OrganisationRole(organisation=organisation, role=role)
        for organisation, role in ((w.brand, Role.BRAND), (w.maker, Role.CELL_MAKER), (w.distributor, Role.DISTRIBUTOR))
    )
    w.site = Site.objects.create(owner=w.brand, name="Plant 1", gln="4012345000016")
    w.certificate = Certificate.objects.create(
        owner=w.brand,
        scheme="ccc",
        number="2024010701234567",
        issuer="CQC",
        scope="PowerCore 10000",
        valid_from=dt.date(2024, 1, 1),
        valid_to=dt.date(2029, 1, 1),
    )
    w.other_certificate = Certificate.objects.create(
        owner=w.brand,
        scheme="un38.3",
        number="UN-77",
        issuer="TÜV",
        scope="cells",
        valid_from=dt.date(2024, 1, 1),
        valid_to=dt.date(2029, 1, 1),
    )
    CertificateStatusChange.objects.create(
        certificate=w.certificate, from_status="", to_status="valid", reason="issued", changed_at=NOW
    )
    w.material = Material.objects.create(owner=w.maker, name="NMC811 cathode", kind="cathode", gtin="00614141000036")
    w.cell_model = CellModel.objects.create(
        owner=w.maker, name="INR21700-50E", chemistry="NMC", format="21700", capacity_mah=5000
    )
    w.material_lot = MaterialLot.objects.create(
        owner=w.maker,
        identity="lgtin:00614141000036:CAT-7",
        code="CAT-7",
        gtin="00614141000036",
        material=w.material,
        produced_from=NOW,
    )
    w.cell_lot = CellLot.objects.create(
        owner=w.maker, identity="own-lot:cellco:C-2024-11", code="C-2024-11", cell_model=w.cell_model, produced_from=NOW
    )
    w.module_lot = ModuleLot.objects.create(
        owner=w.brand, identity="own-lot:volta:M-1", code="M-1", description="2P module", cells_per_module=2
    )
    inspection = Inspection.objects.create(
        owner=w.maker, lot=w.cell_lot, method="xray", outcome="pass", inspected_at=NOW
    )
    Spec.objects.create(owner=w.maker, material=w.material, property="moisture", unit="ppm", maximum=200)
    Measurement.objects.create(
        inspection=inspection, property="max_particle", value=12, unit="µm", maximum=50, passed=True
    )
    w.product = ProductModel.objects.create(owner=w.brand, name="PowerCore 10000", model_number="A1263", gtin=GTIN)
    w.product.certificates.add(w.certificate)
    w.work_order = WorkOrder.objects.create(
        owner=w.brand, number="WO-1", product_model=w.product, site=w.site, started_at=NOW
    )
    w.unit = Unit.objects.create(
        owner=w.brand,
        identity=f"sgtin:{GTIN}:400",
        serial="400",
        gtin=GTIN,
        product_model=w.product,
        work_order=w.work_order,
        site=w.site,
        produced_at=NOW,
    )
    w.refurbished = Unit.objects.create(
        owner=w.brand, identity=f"sgtin:{OTHER_GTIN}:4001", serial="4001", gtin=OTHER_GTIN, product_model=w.product
    )
    w.pallet = Container.objects.create(
        owner=w.brand, identity="sscc:340123450000000017", sscc="340123450000000017", kind="pallet"
    )
    w.carton = Container.objects.create(
        owner=w.brand, identity="sscc:340123450000000024", sscc="340123450000000024", kind="carton", created_at=NOW
    )
    ContainerPacking.objects.create(parent=w.pallet, child=w.carton, packed_at=NOW)
    UnitPacking.objects.create(container=w.carton, unit=w.unit, packed_at=NOW)
    w.shipment = Shipment.objects.create(owner=w.brand, reference="DESADV-1", consignee=w.distributor, shipped_at=NOW)
    ShipmentItem.objects.create(shipment=w.shipment, container=w.pallet)
    ShipmentItem.objects.create(shipment=w.shipment, unit=w.refurbished)
    LedgerHead.objects.update_or_create(id=1, defaults={"position": 1})
    w.entry = LedgerEntry.objects.create(position=1, recorded_at=NOW, source="manual", summary="build of WO-1")
    w.transformation = Transformation.objects.create(
        owner=w.brand,
        kind="work_order",
        reference="WO-1",
        work_order=w.work_order,
        occurred_at=NOW,
        input_count=1,
        output_count=1,
        exposure="definite",
        recorded_position=w.entry,
    )
    LotLink.objects.create(
        transformation=w.transformation, input_lot=w.material_lot, output_lot=w.cell_lot, exposure="definite"
    )
    UnitLink.objects.create(
        transformation=w.transformation, input_unit=w.unit, output_unit=w.refurbished, exposure="definite"
    )
    w.segment = Segment.objects.create(input_key="a" * 64, exposure="definite", unit_count=1)
    SegmentInput.objects.create(segment=w.segment, lot=w.cell_lot)
    SegmentMember.objects.create(segment=w.segment, unit=w.unit, transformation=w.transformation)
    RepeatedUnit.objects.create(unit=w.unit)
    w.job = Job.objects.create(kind="demo", owner=w.brand)
    w.regulator = Organisation.objects.create(name="SAMR", slug="samr", country="CN")
    OrganisationRole.objects.create(organisation=w.regulator, role=Role.REGULATOR)
    Grant.objects.create(regulator=w.regulator, scope=GrantScope.ALL)
    membership = Membership.objects.create(
        user=get_user_model().objects.create(username="qa-engineer"), organisation=w.brand
    )
    api_token_create(membership=membership)
    LearntCompanyPrefix.objects.create(prefix="4012345", learnt_from="urn:epc:id:sgtin:4012345.012345.400")
    finding = Finding.objects.create(
        owner=w.brand,
        subject_kind="lot",
        subject_lot=w.cell_lot,
        category="metallic_debris",
        severity="high",
        description="debris in cell lot",
        raised_at=NOW,
    )
    FindingAttachment.objects.create(
        finding=finding,
        file="findings/2025/05/report.pdf",
        name="report.pdf",
        content_type="application/pdf",
        size=1,
        sha256="0" * 64,
        uploaded_at=NOW,
    )
    investigation = Investigation.objects.create(owner=w.brand, finding=finding, opened_at=NOW)
    InvestigationTransition.objects.create(investigation=investigation, to_status="open", at=NOW)
    response = SupplierResponse.objects.create(investigation=investigation, owner=w.maker, opened_at=NOW, revision=1)
    SupplierResponseRevision.objects.create(
        response=response, number=1, status="draft", containment="C-2024-11 held", changed=["containment"], at=NOW
    )
    run = TraceRun.objects.create(investigation=investigation, job=Job.objects.create(kind="trace_run"), position=1)
    TraceRunSegment.objects.create(run=run, segment=w.segment, exposure="definite", via_lot=w.cell_lot, path=[])
    Export.objects.create(job=Job.objects.create(kind="export"), run=run, format="csv", file="exports/x.csv")
    w.capture = EpcisCapture.objects.create(owner=w.brand, job=w.job, document="epcis/x", events=1, captured=1)
    w.event = EpcisEvent.objects.create(
        event_id="urn:uuid:admin-1",
        type="ObjectEvent",
        event_time=NOW,
        time_zone_offset="+00:00",
        record_time=NOW,
        action="ADD",
        biz_step="commissioning",
        body={"type": "ObjectEvent", "epcList": [f"https://id.gs1.org/01/{GTIN}/21/S1"]},
        owner=w.brand,
        capture=w.capture,
        recorded_position=w.entry,
    )
    EpcisEventEpc.objects.create(event=w.event, role="epc", epc=f"sgtin:{GTIN}:S1")
    AuditEntry.objects.create(
        action="epcis.capture", organisation=w.brand, identifiers=[f"capture:{w.capture.pk}"], source="api"
    )
    return w


def make_units(world: types.SimpleNamespace, count: int, start: int = 1000) -> list[Unit]:
    return Unit.objects.bulk_create(
        Unit(
            owner=world.brand,
            identity=f"sgtin:{GTIN}:{n}",
            serial=str(n),
            gtin=GTIN,
            product_model=world.product,
            work_order=world.work_order,
            site=world.site,
            produced_at=NOW,
        )
        for n in range(start, start + count)
    )


def make_transformations(world: types.SimpleNamespace, count: int, start: int = 1000) -> list[Transformation]:
    return Transformation.objects.bulk_create(
        Transformation(
            owner=world.brand,
            kind="build_record",
            reference=f"B-{n}",
            occurred_at=NOW,
            input_count=1,
            output_count=1,
            exposure="definite",
            recorded_position=world.entry,
        )
        for n in range(start, start + count)
    )


def changelist_url(label: str) -> str:
    app_label, model_name = label.lower().split(".")
    return reverse(f"admin:{app_label}_{model_name}_changelist")


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_every_model_but_those_with_composite_keys_is_registered():
    # given
    models = {m._meta.label for name in APPS for m in apps.get_app_config(name).get_models()}

    # when
    registered = {m._meta.label for m in admin.site._registry if m._meta.app_label in APPS}

    # then
    assert registered == set(REGISTERED)
    assert models - registered == {
        "suppliers.OrganisationRole",  # edited inline on its organisation
        "traceability.SegmentMember",
        "traceability.SegmentContainer",
        "traceability.SegmentOwner",
        "traceability.TraceRunSegment",
        "traceability.TraceRunUnit",
        "traceability.TraceRunCountry",
        "traceability.TraceRunPart",
    }


def test_django_admin_refuses_composite_primary_keys():
    # given
    site = admin.AdminSite(name="probe")

    # when / then
    with pytest.raises(ImproperlyConfigured, match="composite primary key"):
        site.register(SegmentMember)


@pytest.mark.django_db
def test_admin_site_has_the_ledger_header(admin_client):
    # when
    response = admin_client.get(reverse("admin:index"))

    # then
    assert response.status_code == 200
    assert "Cell traceability ledger" in response.text


@pytest.mark.django_db
@pytest.mark.parametrize("label", REGISTERED)
def test_changelist_and_change_page_render(admin_client, label):
    # given
    make_world()
    model = apps.get_model(label)
    obj = model._default_manager.order_by("pk").first()
    opts = model._meta

    # when
    changelist = admin_client.get(changelist_url(label))
    change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]))

    # then
    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("label", READ_ONLY)
def test_ledger_admins_are_view_only(admin_client, label):
    # given
    make_world()
    app_label, model_name = label.lower().split(".")

    # when
    add = admin_client.get(reverse(f"admin:{app_label}_{model_name}_add"))
    changelist = admin_client.get(changelist_url(label))

    # then
    assert add.status_code == 403
    assert "delete_selected" not in changelist.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "term", "expected"),
    [
        ("packs.Unit", "400", lambda w: [w.unit]),
        ("packs.Unit", f"sgtin:{GTIN}:400", lambda w: [w.unit]),
        ("packs.Unit", GTIN.lstrip("0"), lambda w: [w.unit]),
        ("packs.Unit", OTHER_GTIN, lambda w: [w.refurbished]),
        ("cells.CellLot", "C-2024-11", lambda w: [w.cell_lot]),
        ("cells.Lot", "CAT-7", lambda w: [w.material_lot.lot_ptr]),
        ("cells.Lot", "own-lot:volta:M-1", lambda w: [w.module_lot.lot_ptr]),
        ("cells.MaterialLot", "00614141000036", lambda w: [w.material_lot]),
        ("cells.Inspection", "C-2024-11", lambda w: list(Inspection.objects.all())),
        ("packs.Container", "340123450000000024", lambda w: [w.carton]),
        ("packs.Container", "sscc:340123450000000017", lambda w: [w.pallet]),
        ("packs.UnitPacking", "400", lambda w: list(UnitPacking.objects.filter(unit=w.unit))),
        ("packs.ShipmentItem", "340123450000000017", lambda w: list(ShipmentItem.objects.filter(container=w.pallet))),
        ("packs.Shipment", "DESADV-1", lambda w: [w.shipment]),
        ("packs.ProductModel", GTIN, lambda w: [w.product]),
        ("suppliers.Certificate", "2024010701234567", lambda w: [w.certificate]),
        ("suppliers.Organisation", "4012345000009", lambda w: [w.brand]),
        ("suppliers.Site", "4012345000016", lambda w: [w.site]),
        ("traceability.Transformation", "WO-1", lambda w: [w.transformation]),
        ("traceability.LedgerEntry", "1", lambda w: [w.entry]),
        ("traceability.Segment", "C-2024-11", lambda w: [w.segment]),
        ("traceability.LotLink", "CAT-7", lambda w: list(LotLink.objects.all())),
        ("traceability.UnitLink", "4001", lambda w: list(UnitLink.objects.all())),
    ],
)
def test_changelist_search_finds_the_row(admin_client, label, term, expected):
    # given
    world = make_world()

    # when
    response = admin_client.get(changelist_url(label), {"q": term})

    # then
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == expected(world)


@pytest.mark.django_db
def test_job_search_by_id(admin_client):
    # given
    world = make_world()
    Job.objects.create(kind="demo")

    # when
    response = admin_client.get(changelist_url("traceability.Job"), {"q": str(world.job.pk)})

    # then
    assert list(response.context["cl"].result_list) == [world.job]


@pytest.mark.django_db
def test_unit_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    # given
    world = make_world()
    make_units(world, 3)  # 5 units
    url = changelist_url("packs.Unit")
    with_5 = queries_for(admin_client, url)
    make_units(world, 45, start=5000)  # 50 units

    # when
    with django_assert_max_num_queries(with_5):
        response = admin_client.get(url)

    # then
    assert response.status_code == 200
    assert response.context["cl"].result_count == 50
    assert queries_for(admin_client, url) == with_5


@pytest.mark.django_db
@pytest.mark.parametrize("label", ["packs.UnitPacking", "packs.ShipmentItem", "traceability.Transformation"])
def test_big_table_changelists_queries_do_not_grow_with_rows(admin_client, label):
    # given
    world = make_world()
    url = changelist_url(label)
    before = queries_for(admin_client, url)

    # when
    units = make_units(world, 40)
    UnitPacking.objects.bulk_create(UnitPacking(container=world.carton, unit=u, packed_at=NOW) for u in units)
    ShipmentItem.objects.bulk_create(ShipmentItem(shipment=world.shipment, unit=u) for u in units)
    make_transformations(world, 40)

    # then
    assert queries_for(admin_client, url) == before


def add_shipment_items(w, n):
    units = make_units(w, n)
    ShipmentItem.objects.bulk_create(ShipmentItem(shipment=w.shipment, unit=u) for u in units)


def add_cartons(w, n):
    cartons = Container.objects.bulk_create(
        Container(owner=w.brand, identity=f"own-code:volta:C{k}", kind="carton") for k in range(n)
    )
    ContainerPacking.objects.bulk_create(ContainerPacking(parent=w.pallet, child=c, packed_at=NOW) for c in cartons)


def add_sites(w, n):
    Site.objects.bulk_create(Site(owner=w.brand, name=f"Warehouse {k}") for k in range(n))


def add_status_changes(w, n):
    CertificateStatusChange.objects.bulk_create(
        CertificateStatusChange(certificate=w.certificate, from_status="valid", to_status="valid", changed_at=NOW)
        for _ in range(n)
    )


def add_inspections(w, n):
    Inspection.objects.bulk_create(
        Inspection(owner=w.maker, lot=w.cell_lot, method="ocv", outcome="pass", inspected_at=NOW) for _ in range(n)
    )


def add_unit_links(w, n):
    units = make_units(w, n)
    UnitLink.objects.bulk_create(
        UnitLink(transformation=w.transformation, input_unit=w.unit, output_unit=u, exposure="definite") for u in units
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url_name", "parent", "add_rows", "shown"),
    [
        ("admin:packs_shipment_change", "shipment", add_shipment_items, "1039"),
        ("admin:packs_container_change", "pallet", add_cartons, "C39"),
        ("admin:suppliers_organisation_change", "brand", add_sites, "Warehouse 39"),
        ("admin:suppliers_certificate_change", "certificate", add_status_changes, "issued"),
        ("admin:cells_celllot_change", "cell_lot", add_inspections, "Open-circuit voltage"),
        ("admin:traceability_transformation_change", "transformation", add_unit_links, "1039"),
    ],
)
def test_change_page_queries_do_not_grow_with_inline_rows(admin_client, url_name, parent, add_rows, shown):
    # given
    world = make_world()
    url = reverse(url_name, args=[getattr(world, parent).pk])
    before = queries_for(admin_client, url)

    # when
    add_rows(world, 40)
    response = admin_client.get(url)

    # then
    assert shown in response.text
    assert queries_for(admin_client, url) == before


@pytest.mark.django_db
def test_unit_page_shows_at_most_50_segment_memberships_in_one_query(admin_client):
    # given
    world = make_world()
    url = reverse("admin:packs_unit_change", args=[world.unit.pk])
    with_1 = queries_for(admin_client, url)
    segments = Segment.objects.bulk_create(
        Segment(input_key=f"{n:064d}", exposure="potential", unit_count=1) for n in range(60)
    )
    SegmentMember.objects.bulk_create(
        SegmentMember(segment=s, unit=world.unit, transformation=world.transformation) for s in segments
    )

    # when
    response = admin_client.get(url)

    # then
    assert response.status_code == 200
    assert len(re.findall(r"/admin/traceability/segment/\d+/change/", response.text)) == 50
    assert "First 50 shown." in response.text
    assert "Potential" in response.text
    assert queries_for(admin_client, url) == with_1


@pytest.mark.django_db
def test_segment_page_shows_its_first_50_members(admin_client):
    # given
    world = make_world()
    units = make_units(world, 60)
    SegmentMember.objects.bulk_create(
        SegmentMember(segment=world.segment, unit=u, transformation=world.transformation) for u in units
    )

    # when
    response = admin_client.get(reverse("admin:traceability_segment_change", args=[world.segment.pk]))

    # then
    assert response.status_code == 200
    assert len(re.findall(r"/admin/packs/unit/\d+/change/", response.text)) == 50
    assert "C-2024-11" in response.text  # the segment's input lot


@pytest.mark.django_db
def test_certificate_status_is_not_an_editable_field(admin_client):
    # given
    world = make_world()

    # when
    response = admin_client.get(reverse("admin:suppliers_certificate_change", args=[world.certificate.pk]))

    # then
    assert "status" not in response.context["adminform"].form.fields
    assert 'name="status"' not in response.text


def status_history(certificate: Certificate) -> list[tuple[str, str, str, int | None]]:
    """(from, to, reason, changed_by) of each entry of ``certificate``'s status history, oldest first."""
    return list(
        CertificateStatusChange.objects.filter(certificate=certificate)
        .order_by("id")
        .values_list("from_status", "to_status", "reason", "changed_by")
    )


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("suspend", CertificateStatus.VALID, CertificateStatus.SUSPENDED),
        ("revoke", CertificateStatus.VALID, CertificateStatus.REVOKED),
        ("reinstate", CertificateStatus.SUSPENDED, CertificateStatus.VALID),
    ],
)
def test_status_actions_change_the_status_and_write_the_history(admin_client, admin_user, action, before, after):
    # given a certificate in status `before`
    certificate = make_world().other_certificate
    if before != CertificateStatus.VALID:
        certificate_change_status(certificate=certificate, status=before, reason="set up")
    history = status_history(certificate)

    # when
    response = admin_client.post(
        changelist_url("suppliers.Certificate"),
        {"action": action, "_selected_action": [certificate.pk], "reason": "audit finding 7"},
        follow=True,
    )

    # then
    certificate.refresh_from_db()
    assert certificate.status == after
    assert status_history(certificate) == [*history, (before, after, "audit finding 7", admin_user.pk)]
    assert shown_messages(response) == [f"1 certificate(s) set {after.label.lower()}."]


@pytest.mark.django_db
def test_status_action_needs_a_reason(admin_client):
    # given
    certificate = make_world().certificate
    history = status_history(certificate)

    # when
    response = admin_client.post(
        changelist_url("suppliers.Certificate"),
        {"action": "revoke", "_selected_action": [certificate.pk], "reason": "  "},
        follow=True,
    )

    # then
    certificate.refresh_from_db()
    assert certificate.status == CertificateStatus.VALID
    assert status_history(certificate) == history
    assert shown_messages(response) == ["Nothing changed: give a reason for setting certificates revoked."]


@pytest.mark.django_db
def test_a_revoked_certificate_stays_revoked_and_the_admin_says_why(admin_client):
    # given a revoked certificate and a suspended one, both selected to be reinstated
    world = make_world()
    certificate_change_status(certificate=world.certificate, status=CertificateStatus.REVOKED, reason="forged")
    certificate_change_status(certificate=world.other_certificate, status=CertificateStatus.SUSPENDED, reason="audit")
    revoked_history = status_history(world.certificate)

    # when
    response = admin_client.post(
        changelist_url("suppliers.Certificate"),
        {
            "action": "reinstate",
            "_selected_action": [world.certificate.pk, world.other_certificate.pk],
            "reason": "appeal upheld",
        },
        follow=True,
    )

    # then the suspended one is reinstated; the revoked one is not, and its history is unchanged
    world.certificate.refresh_from_db()
    world.other_certificate.refresh_from_db()
    assert (world.certificate.status, world.other_certificate.status) == (
        CertificateStatus.REVOKED,
        CertificateStatus.VALID,
    )
    assert status_history(world.certificate) == revoked_history
    assert shown_messages(response) == [
        "1 certificate(s) set valid.",
        "Not changed: 3C / CCC 2024010701234567: certificate 2024010701234567: cannot go from revoked to valid"
        " (allowed: none, it is final)",
    ]


@pytest.mark.django_db
def test_a_certificate_already_in_the_status_is_left_alone(admin_client):
    # given a suspended certificate
    certificate = make_world().other_certificate
    certificate_change_status(certificate=certificate, status=CertificateStatus.SUSPENDED, reason="audit")
    history = status_history(certificate)

    # when it is suspended again
    response = admin_client.post(
        changelist_url("suppliers.Certificate"),
        {"action": "suspend", "_selected_action": [certificate.pk], "reason": "audit, again"},
        follow=True,
    )

    # then
    assert status_history(certificate) == history
    assert shown_messages(response) == ["1 certificate(s) were already suspended."]


@pytest.mark.django_db
def test_unit_packings_link_filters_the_unit_packing_changelist(admin_client):
    # given
    world = make_world()
    make_units(world, 3)

    # when
    response = admin_client.get(changelist_url("packs.UnitPacking"), {"unit__id__exact": world.unit.pk})

    # then
    assert response.status_code == 200
    assert [p.unit_id for p in response.context["cl"].result_list] == [world.unit.pk]


class _FormFields(HTMLParser):
    """The name → value pairs a browser would post for the admin's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "button", "checkbox", "file"}:
            self.data[name] = a.get("value") or ""
        elif tag == "input" and name and a.get("type") == "checkbox" and "checked" in a:
            self.data[name] = a.get("value") or "on"
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.removeprefix("\n")


def posted_form(response) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(response.text)
    return {k: v for k, v in parser.data.items() if "__prefix__" not in k and k != "csrfmiddlewaretoken"}


@pytest.mark.django_db
def test_shipment_inline_cannot_add_an_item(admin_client):
    # given
    world = make_world()
    url = reverse("admin:packs_shipment_change", args=[world.shipment.pk])
    data = posted_form(admin_client.get(url))
    new = int(data["items-TOTAL_FORMS"])
    data |= {"items-TOTAL_FORMS": str(new + 1), f"items-{new}-shipment": str(world.shipment.pk)}
    data |= {f"items-{new}-id": "", f"items-{new}-container": str(world.carton.pk), f"items-{new}-unit": ""}

    # when
    response = admin_client.post(url, data)

    # then shipments are ledger facts: view only, for superusers too
    assert response.status_code == 403
    assert set(world.shipment.items.values_list("container_id", "unit_id")) == {
        (world.pallet.pk, None),
        (None, world.refurbished.pk),
    }


@pytest.mark.django_db
def test_cell_lot_change_form_is_refused_with_its_inspections(admin_client):
    # given
    world = make_world()
    add_inspections(world, 3)
    url = reverse("admin:cells_celllot_change", args=[world.cell_lot.pk])
    response = admin_client.get(url)
    data = posted_form(response)
    data["quantity"] = "1200.000"

    # when
    response = admin_client.post(url, data)

    # then lots are ledger facts: view only, for superusers too
    assert response.status_code == 403
    world.cell_lot.refresh_from_db()
    assert world.cell_lot.quantity is None
    assert Inspection.objects.filter(lot=world.cell_lot, owner=world.maker).count() == 4
