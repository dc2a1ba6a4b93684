"""The GraphQL API's writes: findings, moves, runs and exports, through the services and the checks
REST's views use, each refusal a typed payload error that writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from cells.models import Inspection
from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role, TokenScope
from suppliers.services import api_token_issue
from tests.factories import CellLotFactory, OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import member, urn
from tests.trace_world import add_competitor, build_world
from traceability.core.models import Job
from traceability.investigations.models import Export, Finding, Investigation, InvestigationTransition, TraceRun
from traceability.investigations.services import finding_seeds

pytestmark = pytest.mark.django_db

RECORD = """mutation Record($subject: String!, $description: String!, $inspections: [Int!]) {
  recordFinding(subject: $subject, category: METALLIC_DEBRIS, severity: CRITICAL, description: $description,
                inspections: $inspections) {
    findingId runId investigation { number status owner { slug } finding { subject inquiry } }
    errors { code message field } } }"""
MOVE = """mutation Move($number: Int!, $to: InvestigationMove!, $note: String) {
  moveInvestigation(investigation: $number, to: $to, note: $note) {
    investigation { number status } errors { code message field } } }"""
TRACE = """mutation Trace($number: Int!) {
  startTrace(investigation: $number) { run { number status position } errors { code message field } } }"""
EXPORT = """mutation Export($number: Int!) {
  startExport(investigation: $number, format: CSV) { jobId errors { code message field } } }"""


@pytest.fixture()
def world():
    w = add_competitor(build_world())
    w.regulator = OrganisationFactory(role=Role.REGULATOR)  # an ``all`` grant
    return w


def _key(organisation: Any, *, role: str = MemberRole.QA, scope: str = TokenScope.WRITE) -> str:
    user = member(organisation)
    Membership.objects.filter(user=user, organisation=organisation).update(role=role)
    membership = Membership.objects.get(user=user, organisation=organisation)
    key = api_token_issue(membership=membership, scope=scope)
    assert key is not None
    return key


def _ask(key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = Client().post(
        "/graphql/",
        {"query": query, "variables": variables},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload  # type: ignore[no-any-return]


def _codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]


def _written() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (Finding, Investigation, InvestigationTransition, TraceRun, Job, Export)
    )


def test_a_brands_qa_engineer_records_a_finding_traces_it_again_reviews_and_closes_it(world):
    key = _key(world.brand)

    # given a finding recorded on the brand's cell lot: its investigation opened and traced
    recorded = _ask(key, RECORD, subject=urn(world.c1.identity), description="Fe 45 µm in X-ray")
    assert recorded["errors"] == []
    investigation = recorded["investigation"]
    assert investigation["owner"]["slug"] == world.brand.slug
    assert investigation["finding"] == {"subject": urn(world.c1.identity), "inquiry": False}
    number = investigation["number"]

    # while its first run traces, another is refused; once it has finished, one starts
    assert _codes(_ask(key, TRACE, number=number)) == ["trace_in_progress"]
    run_job(TraceRun.objects.get(pk=recorded["runId"]).job)
    again = _ask(key, TRACE, number=number)
    assert again["errors"] == [] and again["run"]["status"] == "queued"
    run_job(TraceRun.objects.get(pk=again["run"]["number"]).job)

    # then the QA engineer reviews it and closes it, with a note kept in its history
    assert _ask(key, MOVE, number=number, to="UNDER_REVIEW")["investigation"]["status"] == "under_review"
    closed = _ask(key, MOVE, number=number, to="CLOSED", note="supplier's 8D accepted")
    assert closed["investigation"] == {"number": number, "status": "closed"}
    assert InvestigationTransition.objects.filter(investigation_id=number, note="supplier's 8D accepted").exists()

    # and a closed investigation moves nowhere and traces no more
    before = _written()
    assert _codes(_ask(key, MOVE, number=number, to="UNDER_REVIEW")) == ["invalid_transition"]
    assert _codes(_ask(key, TRACE, number=number)) == ["invalid_transition"]
    assert _written() == before


def test_exports_start_for_the_owner_and_for_a_regulator_once_a_run_has_finished(world):
    brand = _key(world.brand)
    number = _ask(brand, RECORD, subject=urn(world.c1.identity), description="debris")["investigation"]["number"]
    assert _codes(_ask(brand, EXPORT, number=number)) == ["no_finished_run"]
    run_job(TraceRun.objects.get(investigation_id=number).job)

    mine = _ask(brand, EXPORT, number=number)
    theirs = _ask(_key(world.regulator), EXPORT, number=number)

    assert mine["errors"] == [] and theirs["errors"] == []
    assert Job.objects.get(pk=mine["jobId"]).owner_id == world.brand.pk
    assert Job.objects.get(pk=theirs["jobId"]).owner_id == world.regulator.pk  # the regulator's own job
    assert Export.objects.filter(job_id__in=[mine["jobId"], theirs["jobId"]], format="csv").count() == 2


@pytest.mark.parametrize(
    ("caller", "mutation", "expected"),
    [
        ("viewer", RECORD, "read_only"),
        ("read token", RECORD, "read_only"),
        ("distributor", RECORD, "read_only"),  # its viewer role refuses first, as REST's permission does
        ("distributor qa", RECORD, "no_findings"),
        ("other brand", MOVE, "not_found"),
        ("other brand", TRACE, "not_found"),
        ("other brand", EXPORT, "not_found"),
        ("regulator", MOVE, "read_only"),  # it reads the brand's investigation through its grant
        ("regulator", TRACE, "read_only"),
        ("regulator viewer", EXPORT, "read_only"),
        ("viewer", MOVE, "read_only"),
    ],
)
def test_refusals_are_typed_payload_errors_that_write_nothing(world, caller, mutation, expected):
    # given the brand's investigation of its cell lot, traced
    recorded = _ask(_key(world.brand), RECORD, subject=urn(world.c1.identity), description="debris")
    number = recorded["investigation"]["number"]
    run_job(TraceRun.objects.get(pk=recorded["runId"]).job)
    key = {
        "viewer": lambda: _key(world.brand, role=MemberRole.VIEWER),
        "read token": lambda: _key(world.brand, scope=TokenScope.READ),
        "distributor": lambda: _key(world.d1, role=MemberRole.VIEWER),
        "distributor qa": lambda: _key(world.d1),
        "other brand": lambda: _key(world.other_brand),
        "regulator": lambda: _key(world.regulator),
        "regulator viewer": lambda: _key(world.regulator, role=MemberRole.VIEWER),
    }[caller]()
    before = _written()

    payload = _ask(key, mutation, number=number, to="CLOSED", subject=urn(world.c1.identity), description="x")

    assert _codes(payload) == [expected]
    assert payload["errors"][0]["message"]
    assert _written() == before


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"subject": "urn:epc:class:lgtin:4012345.012345.NOPE"}, "unknown_subject", "subject"),
        ({"subject": "urn:epc:id:sgtin:12"}, "invalid_identifier", "subject"),
        ({"description": " "}, "blank", "description"),
        ({"description": "x" * 20_001}, "max_length", "description"),
        ({"description": "a\x00b"}, "control_character", "description"),
        ({"inspections": [0, 7_777]}, "unknown_inspection", "inspections"),
    ],
)
def test_a_finding_with_a_bad_argument_is_refused_naming_it(world, variables, code, field):
    key = _key(world.brand)
    before = _written()
    payload = _ask(key, RECORD, **{"subject": urn(world.c1.identity), "description": "debris", **variables})
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert _written() == before


def test_a_finding_on_another_brands_unit_is_answered_as_an_unknown_subject(world):
    # U9 is the second brand's: the brand may not raise a finding on it, nor learn that it exists
    before = _written()
    u9 = Unit.objects.get(pk=world.u[9])
    payload = _ask(_key(world.brand), RECORD, subject=urn(u9.identity), description="x")
    assert _codes(payload) == ["unknown_subject"]
    assert _written() == before


def test_another_brands_inspection_is_answered_as_an_id_that_names_nothing(world):
    # the second brand's own inspection of its own lot: the brand may not trace that lot, so citing
    # the inspection (whose results the finding's evidence would show) reads as citing no inspection
    lot = CellLotFactory(owner=world.other_brand)
    theirs = Inspection.objects.create(
        owner=world.other_brand,
        lot=lot,
        method="xray",
        outcome="fail",
        inspected_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
    )
    key, before = _key(world.brand), _written()
    answers = [
        _ask(key, RECORD, subject=urn(world.c1.identity), description="debris", inspections=[pk])
        for pk in (theirs.pk, theirs.pk + 1_000)
    ]
    assert [
        [(e["code"], e["message"].replace(str(pk), "N")) for e in a["errors"]]
        for a, pk in zip(answers, (theirs.pk, theirs.pk + 1_000), strict=True)
    ] == [[("unknown_inspection", "no inspection has id N")]] * 2
    assert _written() == before


RECORD_ON = """mutation Record($subject: String, $supplier: String, $site: ID, $from: DateTime, $to: DateTime) {
  recordFinding(subject: $subject, supplier: $supplier, site: $site, windowFrom: $from, windowTo: $to,
                category: METALLIC_DEBRIS, severity: HIGH, description: "debris from the cathode line") {
    findingId investigation { number owner { slug } finding { subject } } errors { code message field } } }"""


def _plant_of_m1(world: Any) -> str:
    """A plant of M1's supplier, M1 made there: the Site id the graph gives it."""
    from graphql_relay import to_global_id

    from cells.models import Lot
    from tests.factories import SiteFactory

    plant = SiteFactory(owner=world.m1.owner, name="Cathode plant")
    Lot.objects.filter(pk=world.m1.pk).update(site=plant)
    return to_global_id("Site", plant.pk)


@pytest.mark.parametrize("named", ["supplier", "site"])
def test_a_finding_on_all_lots_of_a_supplier_or_a_site_in_a_window_is_recorded_as_rest_records_it(world, named):
    # given M1's supplier and its plant: M1 reaches the brand's units
    value = world.m1.owner.slug if named == "supplier" else _plant_of_m1(world)
    window = {"from": "2024-01-01T00:00:00+00:00", "to": "2024-06-30T00:00:00+00:00"}

    # when the brand's QA engineer records a finding on the supplier's lots (or the plant's) of a window
    payload = _ask(_key(world.brand), RECORD_ON, **{named: value}, **window)

    # then it is recorded with its window, its investigation opened and traced from M1
    assert payload["errors"] == []
    finding = Finding.objects.get(pk=payload["findingId"])
    assert (finding.subject_kind, finding.window_from, finding.window_to) == (
        named,
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 6, 30, tzinfo=dt.UTC),
    )
    expected = world.m1.owner.slug if named == "supplier" else "Cathode plant"
    assert payload["investigation"]["finding"]["subject"] == expected
    assert TraceRun.objects.filter(investigation=finding.investigation).count() == 1
    assert finding_seeds(finding) == ([world.m1.pk], [])


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({}, "subject_required", "subject"),
        ({"subject": "M1", "supplier": "SUPPLIER"}, "subject_required", "subject"),
        ({"subject": "M1", "from": "2024-01-01T00:00:00+00:00"}, "window_not_applicable", "windowFrom"),
        (
            {"supplier": "SUPPLIER", "from": "2024-02-01T00:00:00+00:00", "to": "2024-01-01T00:00:00+00:00"},
            "invalid_window",
            "windowTo",
        ),
        ({"supplier": "nobody"}, "does_not_exist", "supplier"),
        ({"site": "U2l0ZTo5OTk5OTk="}, "does_not_exist", "site"),  # Site:999999
        ({"site": "Lot:1"}, "does_not_exist", "site"),
        ({"supplier": "a\x00b"}, "control_character", "supplier"),
    ],
)
def test_a_supplier_or_site_finding_with_a_bad_argument_is_refused_naming_it(world, variables, code, field):
    before = _written()
    variables = {k: world.m1.owner.slug if v == "SUPPLIER" else v for k, v in variables.items()}
    payload = _ask(_key(world.brand), RECORD_ON, **variables)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert _written() == before


@pytest.mark.parametrize("named", ["supplier", "site"])
def test_a_party_that_may_trace_no_lot_of_a_supplier_or_site_is_answered_as_for_an_unknown_subject(world, named):
    # given M1's supplier and plant, whose lots reach the brands' units and not a third brand's
    value = world.m1.owner.slug if named == "supplier" else _plant_of_m1(world)
    stranger = OrganisationFactory(role=Role.BRAND)
    before = _written()

    # when the third brand records a finding on them
    payload = _ask(_key(stranger), RECORD_ON, **{named: value})

    # then it is told what an unknown subject is told, and nothing is written
    assert payload["errors"] == [
        {"code": "unknown_subject", "message": f"no lot of {named} {value!r} is known to you", "field": named}
    ]
    assert _written() == before


def test_a_scoped_regulators_inquiry_on_a_supplier_is_held_to_its_grants_and_an_empty_window_reads_as_outside(world):
    from cells.models import Lot
    from traceability.access.models import GrantScope
    from traceability.access.services import grant_add

    # given a regulator of Germany, where D1 (U1..U3, made from M1) is; C4's supplier reaches only D2's units
    type(world.d1).objects.filter(pk=world.d1.pk).update(country="DE")
    type(world.d2).objects.filter(pk=world.d2.pk).update(country="FR")
    germany = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=germany, scope=GrantScope.JURISDICTION, jurisdiction="DE")
    everywhere = world.regulator
    for supplier in (world.m1.owner, world.c4.owner):  # made in 2024 (an undated lot is in every window)
        Lot.objects.filter(owner=supplier).update(
            produced_from=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), produced_to=dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
        )
    covered, outside = world.m1.owner.slug, world.c4.owner.slug
    empty = {"from": "1990-01-01T00:00:00+00:00", "to": "1990-01-02T00:00:00+00:00"}
    before = _written()

    # when it asks about a supplier outside its grant, and about the covered one in a window it made nothing in
    refused = _ask(_key(germany), RECORD_ON, supplier=outside)
    nothing_then = _ask(_key(germany), RECORD_ON, supplier=covered, **empty)
    # and a regulator who sees every lot asks for the same empty window
    told_empty = _ask(_key(everywhere), RECORD_ON, supplier=covered, **empty)

    # then both of the first are the same answer, not "has no lots in the window"; only the second learns it
    assert [e["code"] for e in refused["errors"] + nothing_then["errors"]] == ["unknown_subject"] * 2
    assert refused["errors"][0]["message"] == f"no lot of supplier {outside!r} is known to be within your grants"
    assert nothing_then["errors"][0]["message"].replace(covered, "S") == refused["errors"][0]["message"].replace(
        outside, "S"
    )
    assert [(e["code"], e["field"]) for e in told_empty["errors"]] == [("empty_subject", "supplier")]
    assert _written() == before

    # and the covered supplier's lots of 2024 are its to inquire into
    recorded = _ask(_key(germany), RECORD_ON, supplier=covered, **{"from": "2024-01-01T00:00:00+00:00"})
    assert recorded["errors"] == [] and Finding.objects.get(pk=recorded["findingId"]).inquiry
