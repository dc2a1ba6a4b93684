"""A request that must check whether its caller may trace a subject before it answers traces it once:
the access policy's check hands the trace it made to the answer (``SubjectCheck.forward``)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from graphql_relay import to_global_id

from cells.models import Lot
from packs.models import Container, Unit
from suppliers.models import Membership, Organisation, Role, Site
from suppliers.services import api_token_issue
from tests.factories import OrganisationFactory, SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, more_units, raise_finding, urn
from tests.trace_world import add_competitor, build_world
from traceability.access.models import GrantScope
from traceability.access.policy import Actor, granted_identifiers, upstream_traceable
from traceability.access.services import grant_add
from traceability.genealogy.models import SegmentInput
from traceability.investigations.models import Finding, Investigation, TraceRun
from traceability.investigations.services import finding_record, trace_run_start

pytestmark = pytest.mark.django_db

COUNT = """query C($lot: String!) { lot(identifier: $lot) { downstream { totalCount definiteCount } } }"""


def _traces(captured: CaptureQueriesContext) -> int:
    """Forward traces among the captured queries: each reads the segments of the lots it reached once."""
    return sum(SegmentInput._meta.db_table in query["sql"] for query in captured.captured_queries)


@pytest.mark.parametrize("caller", ["brand", "other brand"])
def test_a_lots_downstream_asked_by_a_party_that_does_not_own_it_is_traced_once(caller):
    # given material lot M1, a supplier's, in both brands' units
    w = add_competitor(build_world())
    organisation = {"brand": w.brand, "other brand": w.other_brand}[caller]
    key = api_token_issue(membership=Membership.objects.get(user=member(organisation), organisation=organisation))
    # when
    with CaptureQueriesContext(connection) as captured:
        response = Client().post(
            "/graphql/",
            {"query": COUNT, "variables": {"lot": urn(w.m1.identity)}},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {key}",
        )
    # then it may trace the lot (its units are downstream), and traced it once to check and answer
    assert response.status_code == 200 and "errors" not in response.json(), response.json()
    counted = response.json()["data"]["lot"]["downstream"]
    assert (
        counted
        == {"brand": {"totalCount": 7, "definiteCount": 4}, "other brand": {"totalCount": 2, "definiteCount": 2}}[
            caller
        ]
    )
    assert _traces(captured) == 1


@pytest.mark.parametrize("subject", ["subject_supplier", "subject_site"])
def test_a_finding_on_a_suppliers_or_sites_lots_is_traced_once_in_the_request(subject, monkeypatch):
    # given the cell maker's lots, or those of C1's site, none of them the brand's: the access check
    # traces them to find the brand's units
    from traceability import genealogy

    w = build_world()
    site = SiteFactory(owner=w.c1.owner)
    Lot.objects.filter(pk=w.c1.pk).update(site=site)  # C1 made at the maker's plant
    named = {"subject_supplier": w.c1.owner.slug, "subject_site": site.pk}[subject]
    traces = []
    real = genealogy.forward_trace

    def counted(**kwargs):
        traces.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(genealogy, "forward_trace", counted)
    # when
    response = raise_finding(client_for(member(w.brand)), None, **{subject: named})
    # then the check's trace is the preview's, and the run traces at its position
    assert response.status_code == 201, response.json()
    assert len(traces) == 1
    run = TraceRun.objects.get(pk=response.json()["run"])
    preview = run.investigation.preview
    assert preview["position"] == run.position == traces[0]["snapshot"].position
    monkeypatch.undo()
    run_job(run.job)
    run.refresh_from_db()
    assert (run.definite_units, run.potential_units) == (preview["definite_units"], preview["potential_units"])
    assert run.definite_units + run.potential_units > 0


INQUIRE = """mutation Inquire($supplier: String, $site: ID) {
  recordFinding(supplier: $supplier, site: $site, category: METALLIC_DEBRIS, severity: HIGH, description: "Fe") {
    findingId errors { code message field } } }"""


def _inquiry_through(interface: str, user, named: str, party: Organisation | Site) -> int:
    """Record a finding on every lot of a supplier or site (``named``) as ``user`` through ``interface``:
    its number."""
    match interface:
        case "REST":
            value = party.slug if named == "supplier" else party.pk
            response = raise_finding(client_for(user), None, **{f"subject_{named}": value})
            assert response.status_code == 201, response.json()
            return int(response.json()["id"])
        case "page":
            client = Client()
            client.force_login(user)
            body = {"category": "metallic_debris", "severity": "high", "description": "Fe 45 µm"}
            value = party.slug if named == "supplier" else party.pk
            response = client.post("/finding/new/", {**body, "subject_kind": named, named: value})
            assert response.status_code == 302, response.content.decode()
            return Finding.objects.get(investigation__pk=int(response["Location"].strip("/").rsplit("/", 1)[1])).pk
    key = api_token_issue(membership=Membership.objects.get(user=user))
    value = party.slug if named == "supplier" else to_global_id("Site", party.pk)
    answer = Client().post(
        "/graphql/",
        {"query": INQUIRE, "variables": {named: value}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    recorded = answer.json()["data"]["recordFinding"]
    assert recorded["errors"] == [], recorded
    return int(recorded["findingId"])


@pytest.mark.parametrize("named", ["supplier", "site"])
@pytest.mark.parametrize("interface", ["REST", "page", "GraphQL"])
def test_a_jurisdiction_scoped_regulators_inquiry_on_a_supplier_or_site_is_traced_once_in_the_request(
    interface, named, monkeypatch
):
    # given a regulator of Germany, where distributor D1 sold units built from material lot M1, made at
    # its supplier's plant: its grant covers the supplier (or plant) only as far as the trace of the
    # lots reaches Germany
    from traceability import genealogy

    w = build_world()
    type(w.d1).objects.filter(pk=w.d1.pk).update(country="DE")
    plant = SiteFactory(owner=w.m1.owner)
    Lot.objects.filter(pk=w.m1.pk).update(site=plant)
    party = {"supplier": w.m1.owner, "site": plant}[named]
    lots = Lot.objects.filter(owner=w.m1.owner) if named == "supplier" else Lot.objects.filter(site=plant)
    germany = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=germany, scope=GrantScope.JURISDICTION, jurisdiction="DE")
    regulator = member(germany)
    traces = []
    real = genealogy.forward_trace

    def counted(**kwargs):
        traces.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(genealogy, "forward_trace", counted)
    # when it records an inquiry on the supplier's (or plant's) lots
    number = _inquiry_through(interface, regulator, named, party)
    # then the grant's check traced the lots, and that trace is the preview's and the run's position
    assert len(traces) == 1
    assert traces[0]["seed_lot_ids"] == sorted(lots.values_list("pk", flat=True))
    finding = Finding.objects.select_related("investigation").get(pk=number)
    assert (finding.inquiry, finding.owner_id, finding.subject_kind) == (True, germany.pk, named)
    run = TraceRun.objects.select_related("job").get(investigation=finding.investigation)
    preview = finding.investigation.preview
    assert preview["position"] == run.position == traces[0]["snapshot"].position
    assert "DE" in preview["countries"]
    monkeypatch.undo()
    run_job(run.job)
    run.refresh_from_db()
    assert (run.definite_units, run.potential_units) == (preview["definite_units"], preview["potential_units"])
    assert run.definite_units + run.potential_units > 0


def _covered(actor: Actor) -> dict[str, set[int]]:
    """The units, lots and containers whose identifiers ``granted_identifiers`` lets ``actor`` read."""
    condition = granted_identifiers(actor)
    assert condition is not None
    return {
        model.__name__: set(model.objects.annotate(epc=F("identity")).filter(condition).values_list("pk", flat=True))
        for model in (Unit, Lot, Container)
    }


def _granted(regulator: int, investigations: set[int]) -> Actor:
    return Actor(organisation_id=regulator, regulator=True, investigation_ids=frozenset(investigations))


def test_a_regulators_investigation_grants_are_traced_together_once_for_what_their_events_name(monkeypatch):
    # given a regulator granted two investigations: the brand's of cell lot C4, and of unit U1
    from traceability import genealogy

    w = build_world()
    regulator = OrganisationFactory(role=Role.REGULATOR)
    granted = [
        finding_record(
            owner=w.brand,
            subject=subject,
            category="metallic_debris",
            severity="high",
            description="Fe 45 µm",
            submit=lambda job: None,
        ).investigation.pk
        for subject in (w.c4, Unit.objects.get(pk=w.u[1]))
    ]
    each = [_covered(_granted(regulator.pk, {investigation})) for investigation in granted]
    traces = []
    real = genealogy.forward_trace

    def counted(**kwargs):
        traces.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(genealogy, "forward_trace", counted)
    # when
    both = _covered(_granted(regulator.pk, set(granted)))
    # then what both grants cover is what each covers, found in one trace
    assert len(traces) == 1
    assert both == {kind: each[0][kind] | each[1][kind] for kind in both}
    assert both["Unit"] == {w.u[i] for i in (1, 4, 5, 6, 7, 8)}
    assert both["Container"] == {w.k1.pk, w.k2.pk, w.p1.pk}


def _finding_traced(w, subject) -> Investigation:
    """The brand's finding on ``subject`` with its first run finished."""
    investigation = finding_record(
        owner=w.brand,
        subject=subject,
        category="metallic_debris",
        severity="high",
        description="Fe 45 µm",
        submit=lambda job: None,
    ).investigation
    run_job(TraceRun.objects.get(investigation=investigation).job)
    return investigation


def _counting_traces(monkeypatch) -> list[dict]:
    from traceability import genealogy

    traces: list[dict] = []
    real = genealogy.forward_trace

    def counted(**kwargs):
        traces.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(genealogy, "forward_trace", counted)
    return traces


def test_a_regulators_lookups_under_an_investigation_grant_trace_nothing_once_its_run_has_finished(monkeypatch):
    # given a regulator granted the brand's investigation of M1, whose run has finished
    w = build_world()
    investigation = _finding_traced(w, w.m1)
    regulator = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=regulator, scope="investigation", investigation=investigation)
    client = client_for(member(regulator))
    actor = _granted(regulator.pk, {investigation.pk})
    traces = _counting_traces(monkeypatch)
    # when it looks up units and lots, inside the run's reach and outside it
    looked_up = {
        unit: client.get(f"/api/v1/units/{urn(Unit.objects.get(pk=w.u[unit]).identity)}/backward/").status_code
        for unit in (1, 4, 8, 7)
    }
    lots = {lot.code: upstream_traceable(actor, lot) for lot in (w.m1, w.m2, w.c2, w.c3, w.mod1, w.c4, w.m3)}
    # then each is answered as the run reached it (U8 refurbished from U1; C3 made into no unit;
    # U7, C4 and M3 not downstream of M1), and nothing was traced to answer
    assert looked_up == {1: 200, 4: 200, 8: 200, 7: 404}
    assert lots == {"M1": True, "M2": True, "C2": True, "C3": True, "MOD1": True, "C4": False, "M3": False}
    assert traces == []


def test_a_regulators_investigation_grant_covers_what_its_latest_finished_run_reached():
    # given a regulator granted the brand's investigation of M1, whose run has finished, and a unit
    # built from module lot MOD1 after it
    w = build_world()
    investigation = _finding_traced(w, w.m1)
    actor = _granted(OrganisationFactory(role=Role.REGULATOR, all_grant=False).pk, {investigation.pk})
    later = Unit.objects.get(pk=more_units(w, 1)[0])
    # when it is looked up before a second run, while one traces, and once it has finished
    before = upstream_traceable(actor, later)
    rerun = trace_run_start(investigation=investigation, submit=lambda job: None)
    tracing = upstream_traceable(actor, later)
    run_job(rerun.job)
    after = upstream_traceable(actor, later)
    # then it is covered once a finished run reached it, not before (a trace now would reach it)
    assert (before, tracing, after) == (False, False, True)
    assert upstream_traceable(actor, Unit.objects.get(pk=w.u[1])) is True
