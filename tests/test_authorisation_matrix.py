"""Who may see what, asked of every REST read of an investigation and of recording findings, as each
party of a chain (DESIGN.md, "Who sees what"; issue 12's authorisation matrix).

The world (tests/trace_world.py) is brand A's: U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4, shipped to distributors D1 and D2. Brand B (the competitor) built U9 and U10 from the
same cell lot C1 and shipped U9 to its own distributor. Each party asks as itself; every answer is
checked for what it must not carry: another party's serials, identities, consignees, work orders and
counts.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cells.models import Lot
from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn, written
from tests.trace_world import add_competitor, build_world
from traceability.access.models import Grant
from traceability.access.services import grant_add, grant_revoke
from traceability.core.models import AuditEntry, Job
from traceability.investigations.models import Finding, Investigation, TraceRun

pytestmark = pytest.mark.django_db


def _member(organisation, role: str) -> Any:
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture()
def chain():
    w = add_competitor(build_world())
    w.brand_b, w.b_order, w.d_b = w.other_brand, w.other_order, w.other_distributor
    regulator = OrganisationFactory(role=Role.REGULATOR)
    w.clients = {
        "anonymous": client_for(None),
        "own_viewer": client_for(_member(w.brand, MemberRole.VIEWER)),
        "own_qa": client_for(_member(w.brand, MemberRole.QA)),
        "competitor": client_for(_member(w.brand_b, MemberRole.QA)),
        "stranger": client_for(_member(OrganisationFactory(role=Role.BRAND), MemberRole.QA)),
        "supplier": client_for(_member(w.m1.owner, MemberRole.QA)),
        "distributor": client_for(_member(w.d1, MemberRole.QA)),
        "regulator": client_for(_member(regulator, MemberRole.QA)),
    }
    return w


def _traced(w: SimpleNamespace, caller: str, lot) -> dict[str, Any]:
    response = raise_finding(w.clients[caller], urn(lot.identity))
    assert response.status_code == 201, response.json()
    run_job(TraceRun.objects.get(pk=response.json()["run"]).job)
    return response.json()


def _strings(body: Any) -> set[str]:
    if isinstance(body, dict):
        return {s for value in body.values() for s in _strings(value)}
    if isinstance(body, list):
        return {s for value in body for s in _strings(value)}
    return {body} if isinstance(body, str) else set()


def _units_of(owner) -> set[str]:
    """What names an organisation's units in an answer: serial, identity, EPC URN, Digital Link."""
    names = set()
    for unit in Unit.objects.filter(owner=owner):
        names |= {unit.serial, unit.identity, urn(unit.identity)}
    return names


def _foreign(w: SimpleNamespace, *, to: str) -> set[str]:
    """What party ``to`` must never read: the other brand's units, consignees and work orders."""
    a = _units_of(w.brand) | {w.d1.slug, w.d2.slug, w.work_order.number}
    b = _units_of(w.brand_b) | {w.d_b.slug, w.b_order.number}
    return {"own_viewer": b, "own_qa": b, "competitor": a, "supplier": a | b, "distributor": b | {w.d2.slug}}.get(
        to, set()
    )


READS = [
    "/api/v1/findings/{finding}/",
    "/api/v1/investigations/{investigation}/",
    "/api/v1/runs/{run}/",
    "/api/v1/runs/{run}/units/",
    "/api/v1/runs/{run}/consignees/",
    "/api/v1/runs/{run}/breakdown/",
]
EXPECTED = {
    "anonymous": 401,
    "own_viewer": 200,
    "own_qa": 200,
    "competitor": 404,
    "stranger": 404,
    "supplier": 404,
    "distributor": 404,
    "regulator": 200,
}
# A finding about a party's lot is told to that party: it reads the finding (read-only, its share
# counted as ``result_scope`` counts it), never the recorder's investigation or runs.
NOTIFIED = {("supplier", "/api/v1/findings/{finding}/"): 200}


@pytest.mark.parametrize("caller", list(EXPECTED))
def test_brand_as_investigation_is_read_by_its_own_members_and_regulators_only(chain, caller):
    # given brand A's finding on M1, traced
    created = _traced(chain, "own_qa", chain.m1)
    ids = {"finding": created["id"], "investigation": created["investigation"], "run": created["run"]}
    # when
    for path in READS:
        response = chain.clients[caller].get(path.format(**ids))
        # then
        assert response.status_code == NOTIFIED.get((caller, path), EXPECTED[caller]), (path, response.json())
        assert not (_strings(response.json()) & _foreign(chain, to=caller)), path
        if response.status_code == 404:
            assert response.json()["code"] == "not_found"


def test_competitor_tracing_the_shared_cell_lot_sees_its_own_units_and_nothing_of_brand_a(chain):
    # given brand B records a finding on C1, the cell lot in both brands' units
    created = _traced(chain, "competitor", chain.c1)
    client = chain.clients["competitor"]
    # when
    answers = [created] + [
        client.get(
            path.format(run=created["run"], investigation=created["investigation"], finding=created["id"])
        ).json()
        for path in READS
    ]
    units = client.get(f"/api/v1/runs/{created['run']}/units/").json()["results"]
    run = client.get(f"/api/v1/runs/{created['run']}/").json()
    consignees = client.get(f"/api/v1/runs/{created['run']}/consignees/").json()["results"]
    # then B reads its two units and its own distributor, counted as its own, and no trace of A
    assert sorted(u["serial"] for u in units) == ["U10", "U9"]
    assert (run["definite_units"], run["potential_units"], run["consignees"], run["others"]) == (2, 0, 1, [])
    assert [c["organisation"] for c in consignees] == [chain.d_b.slug]
    for answer in answers:
        assert not (_strings(answer) & _foreign(chain, to="competitor"))


def test_the_lots_supplier_sees_how_many_units_of_each_customer_carry_it_and_no_serial(chain):
    # given M1's maker records a finding on its own lot
    created = _traced(chain, "supplier", chain.m1)
    client = chain.clients["supplier"]
    # when
    run = client.get(f"/api/v1/runs/{created['run']}/").json()
    units = client.get(f"/api/v1/runs/{created['run']}/units/").json()
    consignees = client.get(f"/api/v1/runs/{created['run']}/consignees/").json()
    breakdown = client.get(f"/api/v1/runs/{created['run']}/breakdown/").json()
    # then
    assert units["results"] == []
    assert consignees["results"] == []
    assert (run["definite_units"], run["potential_units"], run["consignees"]) == (0, 0, 0)
    assert sorted((o["organisation"], o["definite_units"], o["potential_units"]) for o in run["others"]) == sorted(
        [(chain.brand.slug, 4, 3), (chain.brand_b.slug, 2, 0)]
    )
    assert breakdown["work_orders"] == [] and breakdown["consignees"] == []
    for answer in (created, run, units, consignees, breakdown):
        assert not (_strings(answer) & _foreign(chain, to="supplier"))


@pytest.mark.parametrize(
    ("caller", "lot", "status", "code"),
    [
        ("own_qa", "m1", 201, None),
        ("competitor", "c1", 201, None),  # its units carry C1
        ("competitor", "c4", 400, "unknown_subject"),  # only brand A's units carry C4
        ("stranger", "m1", 400, "unknown_subject"),
        ("supplier", "m1", 201, None),
        ("supplier", "c4", 400, "unknown_subject"),
        ("distributor", "m1", 403, "no_findings"),
        ("own_viewer", "m1", 403, "read_only"),
        ("regulator", "m1", 201, None),  # its inquiry: an `all` grant covers any subject
        ("anonymous", "m1", 401, "not_authenticated"),
    ],
)
def test_who_may_record_a_finding_on_what(chain, caller, lot, status, code):
    # given
    before = written()
    # when
    response = raise_finding(chain.clients[caller], urn(getattr(chain, lot).identity))
    # then
    assert response.status_code == status, response.json()
    if code is not None:
        assert response.json()["code"] == code
        assert written() == before
    if code == "unknown_subject":
        # the same words as for a lot that does not exist
        assert response.json()["message"] == f"no lot or unit is known as {urn(getattr(chain, lot).identity)!r}"


@pytest.mark.parametrize(
    ("caller", "unit", "status"),
    [
        ("own_qa", 1, 200),
        ("distributor", 1, 200),
        ("distributor", 4, 404),
        ("competitor", 1, 404),
        ("competitor", 9, 200),
    ],
)
def test_a_units_upstream_is_read_by_its_owner_and_whoever_received_it(chain, caller, unit, status):
    identity = Unit.objects.get(pk=chain.u[unit]).identity
    response = chain.clients[caller].get(f"/api/v1/units/{urn(identity)}/backward/")
    assert response.status_code == status


# --- regulators within their grants ------------------------------------------------------------------
# D1 is in Germany, D2 in France, brand B's distributor in the US: brand A's finding on M1 reaches all
# three; its finding on C4 reaches only U4..U6 (France) and U7 (never shipped).

REGULATORS = ["regulator_all", "regulator_investigation", "regulator_jurisdiction_in", "regulator_out_of_scope"]


def _regulator(grants: list[dict[str, Any]], role: str = MemberRole.QA) -> tuple[Any, Any]:
    organisation = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    for cover in grants:
        grant_add(regulator=organisation, **cover)
    return organisation, client_for(_member(organisation, role))


@pytest.fixture()
def graded(chain):
    """``chain`` with countries, brand A's traced findings on M1 (``a``) and C4 (``a_c4``), brand B's on
    C1 (``b``), and a regulator per kind of grant (``regulator_all`` is the chain's ``regulator``)."""
    for organisation, country in ((chain.d1, "DE"), (chain.d2, "FR"), (chain.d_b, "US")):
        organisation.country = country
        organisation.save(update_fields=["country"])
    chain.a = _traced(chain, "own_qa", chain.m1)
    chain.a_c4 = _traced(chain, "own_qa", chain.c4)
    chain.b = _traced(chain, "competitor", chain.c1)
    a, b = (
        Investigation.objects.get(pk=chain.a["investigation"]),
        Investigation.objects.get(pk=chain.b["investigation"]),
    )
    chain.regulators = {
        "regulator_investigation": _regulator([{"scope": "investigation", "investigation": a}]),
        "regulator_jurisdiction_in": _regulator([{"scope": "jurisdiction", "jurisdiction": "DE"}]),
        # a market none of the units went to, and another brand's investigation
        "regulator_out_of_scope": _regulator(
            [{"scope": "jurisdiction", "jurisdiction": "JP"}, {"scope": "investigation", "investigation": b}]
        ),
    }
    chain.clients["regulator_all"] = chain.clients["regulator"]
    chain.clients.update({name: client for name, (_, client) in chain.regulators.items()})
    return chain


def _ids(created: dict[str, Any]) -> dict[str, Any]:
    return {"finding": created["id"], "investigation": created["investigation"], "run": created["run"]}


def _affected_serials() -> set[str]:
    return {"U1", "U2", "U3", "U4", "U5", "U6", "U8", "U9", "U10"}  # of M1, both brands


@pytest.mark.parametrize(
    ("caller", "status"),
    [("regulator_all", 200), ("regulator_investigation", 200), ("regulator_jurisdiction_in", 200)]
    + [("regulator_out_of_scope", 404)],
)
def test_a_regulator_reads_an_investigation_its_grants_cover_in_full_and_no_other(graded, caller, status):
    # given brand A's traced finding on M1, which reached Germany
    client = graded.clients[caller]
    # when
    answers = {path: client.get(path.format(**_ids(graded.a))) for path in READS}
    # then
    assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(READS, status)
    run = answers["/api/v1/runs/{run}/"].json()
    if status == 404:
        job = TraceRun.objects.get(pk=graded.a["run"]).job_id
        assert client.get(f"/api/v1/jobs/{job}/").status_code == 404
        everything = _units_of(graded.brand) | _units_of(graded.brand_b) | {graded.d1.slug, graded.work_order.number}
        for response in answers.values():
            assert response.json()["code"] == "not_found"
            assert not (_strings(response.json()) & everything)
        return
    # in scope, it sees all: both brands' units, every consignee, the whole count
    units = client.get(f"/api/v1/runs/{graded.a['run']}/units/").json()["results"]
    consignees = answers["/api/v1/runs/{run}/consignees/"].json()["results"]
    assert {u["serial"] for u in units} == _affected_serials()
    assert (run["definite_units"], run["potential_units"], run["consignees"], run["others"]) == (6, 3, 3, [])
    assert {c["organisation"] for c in consignees} == {graded.d1.slug, graded.d2.slug, graded.d_b.slug}
    investigation = answers["/api/v1/investigations/{investigation}/"].json()
    assert (investigation["preview"]["definite_units"], investigation["preview"]["others"]) == (6, [])
    assert client.get(f"/api/v1/jobs/{run['job']['id']}/").status_code == 200  # the run's job


def test_a_jurisdiction_regulator_lists_a_finding_reaching_it_before_its_run_has_finished(graded):
    # given brand B's new finding on C1 (its units, and brand A's in Germany), its run not yet traced
    response = raise_finding(graded.clients["competitor"], urn(graded.c1.identity), severity="low")
    # when
    listed = graded.clients["regulator_jurisdiction_in"].get("/api/v1/findings/").json()["results"]
    # then
    assert TraceRun.objects.get(pk=response.json()["run"]).job.status == "queued"
    assert response.json()["id"] in {f["id"] for f in listed}


@pytest.mark.parametrize(
    ("caller", "listed"),
    [
        ("regulator_all", {"a", "a_c4", "b"}),
        ("regulator_investigation", {"a"}),
        ("regulator_jurisdiction_in", {"a", "b"}),  # A's C4 finding reached France only
        ("regulator_out_of_scope", {"b"}),  # its investigation grant; nothing went to Japan
    ],
)
def test_a_regulator_lists_the_findings_its_grants_cover(graded, caller, listed):
    # when
    response = graded.clients[caller].get("/api/v1/findings/")
    # then
    assert response.status_code == 200
    assert {f["id"] for f in response.json()["results"]} == {getattr(graded, name)["id"] for name in listed}
    outside = {"a", "a_c4", "b"} - listed
    for name in outside:  # and each one it does not list answers as unknown
        ids = _ids(getattr(graded, name))
        for path in READS:
            assert graded.clients[caller].get(path.format(**ids)).status_code == 404, (name, path)


@pytest.mark.parametrize(
    ("caller", "unit", "status"),
    [
        ("regulator_jurisdiction_in", 1, 200),  # on pallet P1 to D1, in Germany
        ("regulator_jurisdiction_in", 4, 404),  # to D2, in France
        ("regulator_investigation", 1, 200),  # its investigation (on M1) reached U1
        ("regulator_investigation", 7, 404),  # built from C4 alone: not downstream of M1
        ("regulator_all", 4, 200),
    ],
)
def test_a_regulator_looks_up_the_units_its_grants_cover(graded, caller, unit, status):
    identity = Unit.objects.get(pk=graded.u[unit]).identity
    response = graded.clients[caller].get(f"/api/v1/units/{urn(identity)}/backward/")
    assert response.status_code == status


# --- inquiries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "lot", "status"),
    [
        ("regulator_all", "c4", 201),
        ("regulator_investigation", "m1", 201),  # the subject of its investigation
        ("regulator_investigation", "c4", 400),
        ("regulator_jurisdiction_in", "m1", 201),  # upstream of units sold into Germany
        ("regulator_jurisdiction_in", "c1", 201),
        ("regulator_jurisdiction_in", "c4", 400),  # its units went to France, or nowhere
        ("regulator_out_of_scope", "m1", 400),
        ("regulator_out_of_scope", "c1", 201),  # the subject of brand B's investigation, granted
    ],
)
def test_a_regulator_opens_an_inquiry_on_a_subject_its_grants_cover(graded, caller, lot, status):
    # given
    before = written()
    subject = urn(getattr(graded, lot).identity)
    # when
    response = raise_finding(graded.clients[caller], subject)
    # then
    assert response.status_code == status, response.json()
    if status == 400:
        body = response.json()  # in the same words as for a lot that does not exist
        assert (body["code"], body["field"]) == ("unknown_subject", "subject")
        assert body["message"] == f"no lot or unit is known as {subject!r}"
        assert written() == before
        return
    inquiry = Finding.objects.get(pk=response.json()["id"])
    assert (inquiry.inquiry, response.json()["inquiry"]) == (True, True)
    assert inquiry.owner.slug == response.json()["owner"] != graded.brand.slug
    assert Investigation.objects.get(finding=inquiry).owner == inquiry.owner


def test_an_inquiry_is_the_regulators_own_seen_by_no_party_and_traced_and_exported_in_full(graded):
    # given a jurisdiction regulator's inquiry on M1
    client = graded.clients["regulator_jurisdiction_in"]
    created = raise_finding(client, urn(graded.m1.identity)).json()
    run_job(TraceRun.objects.get(pk=created["run"]).job)
    ids = _ids(created)
    # when it reads, traces again and exports it
    run = client.get(f"/api/v1/runs/{created['run']}/").json()
    units = client.get(f"/api/v1/runs/{created['run']}/units/").json()["results"]
    rerun = client.post(f"/api/v1/investigations/{created['investigation']}/runs/")
    run_job(TraceRun.objects.get(pk=rerun.json()["id"]).job)
    export = client.post(
        f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"}, format="json"
    )
    run_job(Job.objects.get(pk=export.json()["id"]))
    download = client.get(f"/api/v1/jobs/{export.json()['id']}/download/")
    # then it sees the whole result, from the preview its answer carried on, and its file holds every
    # affected unit
    assert (created["preview"]["definite_units"], created["preview"]["potential_units"]) == (6, 3)
    assert (run["definite_units"], run["potential_units"], run["others"]) == (6, 3, [])
    assert {u["serial"] for u in units} == _affected_serials()
    assert (rerun.status_code, export.status_code, download.status_code) == (202, 202, 200)
    exported = b"".join(download.streaming_content).decode()
    assert all(serial in exported for serial in _affected_serials())
    assert Job.objects.get(pk=export.json()["id"]).owner == Finding.objects.get(pk=created["id"]).owner
    # and no party of the chain, nor another regulator without an all grant, learns of it: not even
    # one whose jurisdiction the inquiry's units reached
    graded.clients["another_in_germany"] = _regulator([{"scope": "jurisdiction", "jurisdiction": "DE"}])[1]
    for party in (
        "another_in_germany",
        "own_qa",
        "competitor",
        "supplier",
        "distributor",
        "regulator_out_of_scope",
        "regulator_investigation",
    ):
        party_client = graded.clients[party]
        assert created["id"] not in {f["id"] for f in party_client.get("/api/v1/findings/").json()["results"]}
        for path in READS:
            assert party_client.get(path.format(**ids)).status_code == 404, (party, path)
    assert graded.clients["regulator_all"].get(f"/api/v1/findings/{created['id']}/").status_code == 200


def test_a_regulator_writes_only_its_own_inquiries(graded):
    # given brand A's investigation, which the regulator reads through its grant
    client = graded.clients["regulator_investigation"]
    investigation = graded.a["investigation"]
    viewer = _regulator([{"scope": "all"}], role=MemberRole.VIEWER)[1]
    before = written()
    # when
    rerun = client.post(f"/api/v1/investigations/{investigation}/runs/")
    moved = client.post(f"/api/v1/investigations/{investigation}/transitions/", {"to": "closed"}, format="json")
    csv_import = client.post("/api/v1/csv/shipments/", b"x", content_type="text/csv")
    by_viewer = raise_finding(viewer, urn(graded.m1.identity))
    # then refused as read-only, and nothing written
    assert [r.status_code for r in (rerun, moved, csv_import, by_viewer)] == [403] * 4
    assert {r.json()["code"] for r in (rerun, moved, csv_import, by_viewer)} == {"read_only"}
    assert rerun.json()["message"] == (
        "regulators read the investigations their grants cover; they write only their own inquiries"
    )
    assert written() == before
    # but an export is a file of what it reads, its own
    export = client.post(f"/api/v1/investigations/{investigation}/exports/", {"format": "json"}, format="json")
    assert export.status_code == 202
    assert Job.objects.get(pk=export.json()["id"]).owner == graded.regulators["regulator_investigation"][0]


# --- revoked and expired grants ----------------------------------------------------------------------


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_a_revoked_or_expired_grant_covers_nothing(graded, ended):
    # given the regulator's investigation grant, revoked or past its expiry
    regulator, client = graded.regulators["regulator_investigation"]
    grant = Grant.objects.get(regulator=regulator)
    if ended == "revoked":
        grant_revoke(regulator=regulator, scope="investigation", investigation=grant.investigation)
    else:
        Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # when
    listed = client.get("/api/v1/findings/").json()["results"]
    reads = [client.get(path.format(**_ids(graded.a))).status_code for path in READS]
    inquiry = raise_finding(client, urn(graded.m1.identity))
    # then
    assert (listed, reads) == ([], [404] * len(READS))
    assert (inquiry.status_code, inquiry.json()["code"]) == (400, "unknown_subject")


def test_a_regulator_with_several_grants_reads_their_union(graded):
    # given one regulator granted Japan, brand B's investigation and then brand A's C4 one
    regulator, client = graded.regulators["regulator_out_of_scope"]
    grant_add(
        regulator=regulator,
        scope="investigation",
        investigation=Investigation.objects.get(pk=graded.a_c4["investigation"]),
    )
    # when
    listed = {f["id"] for f in client.get("/api/v1/findings/").json()["results"]}
    # then
    assert listed == {graded.b["id"], graded.a_c4["id"]}


# --- the audit trail ---------------------------------------------------------------------------------


def test_a_regulator_reads_the_audit_entries_its_grants_cover(graded):
    # given each regulator has read brand A's M1 investigation once
    for caller in REGULATORS:
        graded.clients[caller].get(f"/api/v1/investigations/{graded.a['investigation']}/")
    organisations = {name: org for name, (org, _) in graded.regulators.items()}
    every = set(AuditEntry.objects.values_list("pk", flat=True))
    # when
    trails = {
        caller: graded.clients[caller].get("/api/v1/audit/", {"limit": 1000}).json()["results"] for caller in REGULATORS
    }
    # then an all grant reads every entry; the others their own and those naming an investigation they cover
    assert {e["id"] for e in trails["regulator_all"]} == every

    def named(entries: list[dict[str, Any]]) -> set[str]:
        return {i for e in entries for i in e["identifiers"] if i.startswith("investigation:")}

    def own(caller: str, entries: list[dict[str, Any]]) -> set[str]:
        return {e["organisation"] for e in entries} - {graded.brand.slug, graded.brand_b.slug}

    a, a_c4, b = (f"investigation:{getattr(graded, n)['investigation']}" for n in ("a", "a_c4", "b"))
    assert named(trails["regulator_investigation"]) == {a}
    assert named(trails["regulator_jurisdiction_in"]) == {a, b}
    assert named(trails["regulator_out_of_scope"]) == {b}
    for caller in ("regulator_investigation", "regulator_jurisdiction_in", "regulator_out_of_scope"):
        assert own(caller, trails[caller]) == {organisations[caller].slug}
        # its own read of A's investigation is there, whether its grant covered it or not
        assert any(e["action"] == "read.api" for e in trails[caller])
        assert a_c4 not in named(trails[caller])


def test_a_regulator_does_not_read_another_regulators_entries_about_an_investigation_both_cover(graded):
    # given the jurisdiction regulator exports brand A's M1 investigation, which the investigation
    # regulator's grant covers too
    investigation = graded.a["investigation"]
    exporter = graded.clients["regulator_jurisdiction_in"]
    export = exporter.post(f"/api/v1/investigations/{investigation}/exports/", {"format": "json"}, format="json")
    assert export.status_code == 202, export.json()
    exporting = graded.regulators["regulator_jurisdiction_in"][0].slug
    assert AuditEntry.objects.filter(action="export.start", organisation__slug=exporting).exists()
    # when the other regulator reads the trail
    trail = graded.clients["regulator_investigation"].get("/api/v1/audit/", {"limit": 1000}).json()["results"]
    # then it reads brand A's entries about the investigation, and nothing of the other regulator's
    assert any(e["organisation"] == graded.brand.slug for e in trail)
    assert exporting not in {e["organisation"] for e in trail}


def test_a_scoped_regulators_findings_list_costs_the_same_queries_however_many_it_lists(graded):
    # given the jurisdiction regulator lists two findings; then brand A records three more on M1
    client = graded.clients["regulator_jurisdiction_in"]
    with CaptureQueriesContext(connection) as few:
        assert len(client.get("/api/v1/findings/").json()["results"]) == 2
    for _ in range(3):
        _traced(graded, "own_qa", graded.m1)
    client = client_for(client.user)  # a new request: the caller is read again
    # when
    with CaptureQueriesContext(connection) as many:
        listed = client.get("/api/v1/findings/").json()["results"]
    # then
    assert len(listed) == 5
    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("caller", "supplier_of", "status"),
    [
        ("regulator_jurisdiction_in", "m1", 201),  # its lots reach Germany
        ("regulator_jurisdiction_in", "c4", 400),  # C4's maker made only C4: France, or nowhere
        ("regulator_investigation", "m1", 400),  # its investigation's subject is the lot, not its maker
    ],
)
def test_a_regulators_inquiry_on_all_lots_of_a_supplier_is_held_to_its_grants_too(graded, caller, supplier_of, status):
    # given
    before = written()
    supplier = getattr(graded, supplier_of).owner.slug
    # when
    response = raise_finding(graded.clients[caller], None, subject_supplier=supplier)
    # then
    assert response.status_code == status, response.json()
    if status == 400:
        assert response.json() == {
            "code": "unknown_subject",
            "message": f"no lot of supplier {supplier!r} is known to be within your grants",
            "field": "subject_supplier",
            "errors": [
                {
                    "code": "unknown_subject",
                    "message": f"no lot of supplier {supplier!r} is known to be within your grants",
                    "field": "subject_supplier",
                }
            ],
        }
        assert written() == before


def test_a_regulators_inquiry_on_an_empty_window_of_a_supplier_it_covers_reads_as_one_it_does_not(graded):
    # given: M1's maker is within the jurisdiction regulator's grant, C4's is not
    client = graded.clients["regulator_jurisdiction_in"]
    covered, outside = graded.m1.owner.slug, graded.c4.owner.slug
    for supplier in (graded.m1.owner, graded.c4.owner):  # lots made in 2024 (undated lots are in every window)
        Lot.objects.filter(owner=supplier).update(
            produced_from=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), produced_to=dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
        )
    before = written()
    window = {"window_from": "1990-01-01T00:00:00Z", "window_to": "1990-01-02T00:00:00Z"}
    # when: it asks for a window in which the covered supplier made nothing
    empty = raise_finding(client, None, subject_supplier=covered, **window)
    refused = raise_finding(client, None, subject_supplier=outside, **window)
    # then: the same answer as for the supplier outside its grant, not "has no lots in the window"
    assert [r.status_code for r in (empty, refused)] == [400, 400]
    assert empty.json()["code"] == refused.json()["code"] == "unknown_subject"
    assert empty.json()["message"].replace(covered, "S") == refused.json()["message"].replace(outside, "S")
    assert written() == before
