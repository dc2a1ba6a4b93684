"""The read models every interface renders: one unit's or lot's upstream and siblings (genealogy),
and a trace's affected units, consignees and counts (investigations)."""

import datetime as dt
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection
from packs.models import Unit
from tests.factories import CertificateFactory, SiteFactory
from tests.jobs_support import run_job
from tests.trace_world import AT, add_competitor, build_world
from traceability import genealogy
from traceability.genealogy import (
    CertificateSummary,
    InspectionResult,
    LotSummary,
    PathStep,
    SiteSummary,
    UnitSummary,
    party_of,
    siblings_page,
    upstream_read,
)
from traceability.investigations.selectors import (
    AffectedConsignee,
    AffectedUnitFilters,
    AffectedUnitRow,
    MonthCount,
    ProductModelCount,
    RunNotFinished,
    Shipped,
    WorkOrderCount,
    affected_breakdown,
    affected_consignees,
    affected_unit_rows,
    affected_units_page,
    finished_run_party_page,
    finished_run_result,
    finished_run_unit,
)
from traceability.investigations.services import finding_record

pytestmark = pytest.mark.django_db


def _step(source, target, record, exposure="definite"):
    return PathStep(source=source, target=target, record=record, exposure=exposure)


def _forward_from(lot):
    return genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk], seed_unit_ids=[])


def test_upstream_of_a_lot_names_each_lot_above_it_with_supplier_site_inspections_and_certificates():
    # given M2, upstream of cell lot C1, made at a site, inspected three times (two at the same hour),
    # its supplier certified
    w = build_world()
    site = SiteFactory(owner=w.m2.owner, name="Ningde 2")
    w.m2.site, w.m2.produced_from = site, dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    w.m2.save()
    inspected = [
        Inspection.objects.create(
            owner=w.m2.owner,
            lot=w.m2,
            method=method,
            outcome="pass",
            inspected_at=dt.datetime(2024, 2, day, tzinfo=dt.UTC),
        )
        for method, day in (("ocv", 20), ("xray", 10), ("ct", 20))
    ]
    certificate = CertificateFactory(owner=w.m2.owner, scheme="un38.3", number="UN-1")
    # when
    upstream = upstream_read(subject=w.c1)
    # then
    assert upstream.subject == LotSummary(w.c1.pk, w.c1.identity, "C1", "cell")
    assert upstream.position == 1
    assert [(found.lot.code, found.level, found.exposure, found.supplier) for found in upstream.lots] == [
        ("M2", 1, "definite", party_of(w.m2.owner)),
        ("M1", 2, "definite", party_of(w.m1.owner)),
    ]
    m2 = upstream.lots[0]
    assert (m2.site, m2.produced_from, m2.produced_to) == (
        SiteSummary(site.pk, "Ningde 2", site.gln),
        dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
        None,
    )
    assert m2.inspections == tuple(
        InspectionResult(i.pk, i.method, "pass", {}, None, i.inspected_at)
        for i in (inspected[1], inspected[0], inspected[2])  # oldest first, then by id
    )
    assert m2.certificates == (CertificateSummary("un38.3", "UN-1", "valid", certificate.valid_to),)
    assert upstream.lots[1].path == (
        _step(w.c1.identity, w.m2.identity, "cell line 1"),
        _step(w.m2.identity, w.m1.identity, "calcination"),
    )
    assert upstream.units == ()


def test_upstream_of_a_refurbished_unit_names_the_unit_it_was_made_from():
    # given U8, refurbished from U1
    w = build_world()
    gtin = w.work_order.product_model.gtin
    # when
    upstream = upstream_read(subject=Unit.objects.get(serial="U8"))
    # then
    assert upstream.subject == UnitSummary(w.u[8], f"sgtin:{gtin}:U8", "U8", gtin)
    assert [(found.unit, found.exposure, found.path) for found in upstream.units] == [
        (
            UnitSummary(w.u[1], f"sgtin:{gtin}:U1", "U1", gtin),
            "definite",
            (_step(f"sgtin:{gtin}:U8", f"sgtin:{gtin}:U1", "refurbish U1"),),
        )
    ]
    assert [(found.lot.code, found.level) for found in upstream.lots] == [("MOD1", 2), ("C1", 3), ("M2", 4), ("M1", 5)]
    assert upstream.identities() == [f"sgtin:{gtin}:U8", *(f.lot.identity for f in upstream.lots), f"sgtin:{gtin}:U1"]


def test_a_siblings_page_holds_only_the_units_it_may_show():
    # given U4, made from C2 and C4 with U5, U6 (and U7 from C4 alone)
    w = build_world()
    c2, c4 = (LotSummary(lot.pk, lot.identity, lot.code, "cell") for lot in (w.c2, w.c4))
    # when U5 is not the caller's to see
    page = siblings_page(
        unit=Unit.objects.get(serial="U4"), visible_units=Unit.objects.exclude(serial="U5"), after=0, limit=10
    )
    # then
    assert page.shared_lots == (c2, c4)
    assert [(s.unit.serial, s.shared_lots) for s in page.siblings] == [("U6", (c2, c4)), ("U7", (c4,))]
    assert page.next_after is None


def test_affected_unit_rows_read_each_unit_with_its_path_and_who_received_it():
    # given
    w = build_world()
    gtin, model = w.work_order.product_model.gtin, w.work_order.product_model
    page = genealogy.affected_units(_forward_from(w.m1))
    # when
    rows = affected_unit_rows(page)
    with CaptureQueriesContext(connection) as unshipped:
        without_shipments = affected_unit_rows(page, shipments=False)
    # then
    assert rows[0] == AffectedUnitRow(
        unit_id=w.u[1],
        identity=f"sgtin:{gtin}:U1",
        serial="U1",
        gtin=gtin,
        product_model=model.model_number,
        work_order=w.work_order.number,
        exposure="definite",
        path=(
            _step(w.m1.identity, w.m2.identity, "calcination"),
            _step(w.m2.identity, w.c1.identity, "cell line 1"),
            _step(w.c1.identity, w.mod1.identity, "module line"),
            _step(w.mod1.identity, f"sgtin:{gtin}:U1", "build U1"),
        ),
        shipments=(Shipped(w.d1.pk, w.d1.slug, w.d1.name, AT + dt.timedelta(days=2)),),
    )
    assert [(row.serial, row.exposure, [s.slug for s in row.shipments]) for row in rows] == [
        ("U1", "definite", [w.d1.slug]),
        ("U2", "definite", [w.d1.slug]),
        ("U3", "definite", [w.d1.slug]),
        ("U4", "potential", [w.d2.slug]),
        ("U5", "potential", [w.d2.slug]),
        ("U6", "potential", [w.d2.slug]),
        ("U8", "definite", []),
    ]
    assert without_shipments == [replace(row, shipments=()) for row in rows]
    assert not any("shipmentitem" in query["sql"].lower() for query in unshipped.captured_queries)


def test_a_filtered_page_keeps_the_units_that_pass_every_filter_and_says_where_to_carry_on():
    # given
    w = build_world()
    forward = _forward_from(w.m1)
    filters = AffectedUnitFilters(exposure="potential", consignee=w.d2.slug, work_order=w.work_order.number)
    # when
    first = affected_units_page(forward=forward, after=0, limit=2, filters=filters)
    second = affected_units_page(forward=forward, after=first.next_after, limit=2, filters=filters)
    nothing = affected_units_page(forward=forward, after=0, limit=2, filters=replace(filters, work_order="WO-NONE"))
    # then
    assert ([row.serial for row in first.rows], first.next_after) == (["U4", "U5"], w.u[5])
    assert ([row.serial for row in second.rows], second.next_after) == (["U6"], None)
    assert (nothing.rows, nothing.next_after) == ((), None)


def test_consignees_and_counts_of_a_trace_are_typed_rows():
    # given
    w = build_world()
    forward = _forward_from(w.m1)
    model = w.work_order.product_model
    # when
    consignees = affected_consignees(forward=forward)
    breakdown = affected_breakdown(forward=forward)
    # then
    assert consignees == [
        AffectedConsignee(party_of(w.d1), 3, AT + dt.timedelta(days=2), AT + dt.timedelta(days=2)),
        AffectedConsignee(party_of(w.d2), 3, AT + dt.timedelta(days=3), AT + dt.timedelta(days=3)),
    ]
    assert breakdown.product_models == (
        ProductModelCount(units=7, definite=4, potential=3, model_number=model.model_number, name=model.name),
    )
    assert breakdown.work_orders == (WorkOrderCount(units=7, definite=4, potential=3, number=w.work_order.number),)
    assert breakdown.production_months == (MonthCount(units=7, definite=4, potential=3, month="2024-03"),)
    assert breakdown.consignees == tuple(consignees)


def test_a_run_still_tracing_has_no_result_to_read():
    # given a finding whose run has not run yet
    w = build_world()
    finding = finding_record(
        owner=w.brand,
        subject=w.m1,
        category="metallic_debris",
        severity="critical",
        description="Fe 45 µm",
        submit=lambda job: None,
    )
    run = finding.investigation.runs.get()
    # when / then
    with pytest.raises(RunNotFinished) as refused:
        finished_run_result(run=run)
    assert str(refused.value) == (
        f"run {run.pk} has not finished (its job is queued, 0%): its result is complete once the job has succeeded"
    )


def _finished_run(w):
    finding = finding_record(
        owner=w.brand,
        subject=w.m1,
        category="metallic_debris",
        severity="critical",
        description="Fe 45 µm",
        submit=lambda job: None,
    )
    run = finding.investigation.runs.select_related("job", "investigation").get()
    run_job(run.job)
    run.refresh_from_db()
    return run


def test_one_unit_of_a_finished_run_is_read_as_its_page_of_units_reads_it():
    # given brand A's finished run on M1, and brand B's units built from C1 too
    w = add_competitor(build_world())
    run = _finished_run(w)
    page = affected_units_page(forward=finished_run_result(run=run), after=0, limit=50)
    own = genealogy.units_of(w.brand.pk)
    # when each unit is read alone, in full and as brand A's part
    whole = [finished_run_unit(run=run, unit_id=row.unit_id) for row in page.rows]
    as_owner = [finished_run_unit(run=run, unit_id=w.u[n], party_id=w.brand.pk, shown=own) for n in (1, 4, 8)]
    # then each is the page's row (who received it is not read), its path from M1 included
    assert whole == [replace(row, shipments=()) for row in page.rows]
    assert [row.serial for row in page.rows] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8", "U9", "U10"]
    assert as_owner == [replace(row, shipments=()) for row in page.rows if row.serial in ("U1", "U4", "U8")]
    assert [step.exposure for step in whole[3].path] == ["definite", "potential", "potential"]
    # and as the owner's page reads it in one statement, where it can (PostgreSQL)
    party_page = finished_run_party_page(run=run, party_id=w.brand.pk, after=0, limit=50).page
    if party_page is not None:
        assert as_owner == [replace(row, shipments=()) for row in party_page.rows if row.serial in ("U1", "U4", "U8")]


def test_a_unit_the_run_does_not_reach_or_the_reader_may_not_see_is_none():
    # given
    w = add_competitor(build_world())
    run = _finished_run(w)
    own = genealogy.units_of(w.brand.pk)
    # when / then: U7 (built from C4 alone) is not downstream of M1; no unit is numbered 0
    assert finished_run_unit(run=run, unit_id=w.u[7]) is None
    assert finished_run_unit(run=run, unit_id=0) is None
    # brand B's U9 is reached, but brand A does not see it
    assert finished_run_unit(run=run, unit_id=w.u[9]) is not None
    assert finished_run_unit(run=run, unit_id=w.u[9], party_id=w.brand.pk, shown=own) is None
