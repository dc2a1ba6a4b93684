"""Whom a finding concerns is one definition in the access policy (``findings_told``), asked both by
the listings of findings told (REST's ``/api/v1/supplier/findings/``, the supplier portal, the
finding itself) and by the 8D response (``response_access``): a supplier whose lot is upstream of
the subject (the material lot a cell lot was made from: where a contamination may have come from)
is told of the finding and responds to it; one whose lots are no part of the subject is told of
nothing and may not respond, and nothing is written.

The world is tests/trace_world.py's: M1 → M2 → C1 → MOD1 → brand A's U1..U8, C1 → brand B's U9, U10;
M3 fed C2 and C3 only. Each lot's maker is its own organisation.
"""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.trace_world import add_competitor, build_world
from traceability.access.policy import Actor, ResponseAccess, findings_concerning, response_access
from traceability.investigations.models import Finding, Investigation, SupplierResponse, TraceRun

pytestmark = pytest.mark.django_db

LISTED = "/api/v1/supplier/findings/"


def _user(organisation):
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=MemberRole.QA)
    return user


@pytest.fixture
def world():
    w = add_competitor(build_world())
    w.users = {
        "brand": _user(w.brand),
        "module maker": _user(w.mod1.owner),
        "cell maker": _user(w.c1.owner),
        "material supplier": _user(w.m1.owner),  # M1, two steps upstream of C1
        "calciner": _user(w.m2.owner),  # M2, one step upstream of C1
        "co-supplier": _user(w.m3.owner),  # M3: no part of C1
        "competitor": _user(w.other_brand),  # built U9 and U10 from C1: downstream, no supplier
        "distributor": _user(w.d1),
        "regulator": _user(OrganisationFactory(role=Role.REGULATOR)),
    }
    return w


def _traced(w, subject: str | None, **fields) -> int:
    created = raise_finding(client_for(w.users["brand"]), subject, **fields)
    assert created.status_code == 201, created.json()
    run_job(TraceRun.objects.get(pk=created.json()["run"]).job)
    return created.json()["id"]  # type: ignore[no-any-return]


def _told(w, caller: str, finding: int) -> dict[str, object]:
    """Whether each interface tells ``caller`` of ``finding``, and what its response POST answers."""
    user = w.users[caller]
    api = client_for(user)
    listed = [row["id"] for row in api.get(LISTED).json()["results"]]
    about = [row["id"] for row in api.get("/api/v1/findings/", {"about": "my_lots"}).json()["results"]]
    page = Client()
    page.force_login(user)
    portal = html.unescape(page.get("/supplier/").content.decode())
    responded = api.post(f"/api/v1/findings/{finding}/responses/", {"containment": "held"}, format="json")
    investigation = Investigation.objects.select_related("finding").get(finding_id=finding)
    membership = Membership.objects.select_related("organisation").get(user=user)
    actor = Actor.of(membership.organisation, membership.role)
    return {
        "listed": finding in listed,
        "about my lots": finding in about,
        "portal": f'id="finding-{finding}"' in portal,
        "policy": Finding.objects.filter(findings_concerning(actor), pk=finding).exists(),
        "responds": response_access(actor, investigation) is ResponseAccess.OWN,
        "response": responded.status_code,
        "read": api.get(f"/api/v1/findings/{finding}/").status_code,
    }


TOLD = {"listed": True, "about my lots": True, "portal": True, "policy": True, "responds": True, "response": 201}
NOT_TOLD = {
    "listed": False,
    "about my lots": False,
    "portal": False,
    "policy": False,
    "responds": False,
    "response": 404,
}

ON_C1 = {
    "module maker": TOLD,  # the trace reached brand A's units through MOD1
    "cell maker": TOLD,  # its lot is the subject
    "material supplier": TOLD,  # upstream of the subject
    "calciner": TOLD,  # upstream of the subject
    "co-supplier": NOT_TOLD,
    "competitor": NOT_TOLD,
    "distributor": NOT_TOLD,
    "regulator": {**NOT_TOLD, "response": 403},  # it sees all: it reads every response, answers none
    "brand": {**NOT_TOLD, "response": 403},  # its own finding: it reads every response, answers none
}


@pytest.mark.parametrize(("caller", "told"), list(ON_C1.items()))
def test_a_finding_on_a_cell_lot_is_listed_to_exactly_those_who_may_respond_to_it(world, caller, told):
    # given brand A's finding on cell lot C1, traced
    finding = _traced(world, urn(world.c1.identity))
    before = SupplierResponse.objects.count()
    # when
    found = _told(world, caller, finding)
    # then every interface agrees with the 8D response's right, and a refusal writes nothing
    assert {k: v for k, v in found.items() if k != "read"} == told
    assert found["read"] == (200 if told["listed"] or told["response"] == 403 else 404)
    assert SupplierResponse.objects.count() == before + (1 if told["response"] == 201 else 0)


def test_an_upstream_supplier_is_told_its_share_was_not_counted_not_that_the_finding_is_untraced(world):
    # given brand A's finding on C1, traced: the result is counted from C1 on, so M1's maker (upstream)
    # has no share stored, where C1's maker has its own
    finding = _traced(world, urn(world.c1.identity))
    # when
    rows = {
        caller: next(r for r in client_for(world.users[caller]).get(LISTED).json()["results"] if r["id"] == finding)
        for caller in ("material supplier", "cell maker")
    }
    page = Client()
    page.force_login(world.users["material supplier"])
    portal = html.unescape(page.get("/supplier/").content.decode())
    row = portal.split(f'id="finding-{finding}"', 1)[1].split("</tr>", 1)[0]
    # then
    assert rows["material supplier"]["share"] is None and rows["cell maker"]["share"] is not None
    assert "not counted for your lots" in row and "not traced yet" not in row


@pytest.mark.parametrize("unit", [1, 8], ids=["U1", "U8 refurbished from U1"])
def test_the_suppliers_upstream_of_a_unit_are_told_of_a_finding_on_it_and_one_not_upstream_is_not(world, unit):
    # given brand A's finding on unit U1 (MOD1 ← C1 ← M2 ← M1), or on U8, rebuilt from U1
    identity = Unit.objects.get(pk=world.u[unit]).identity
    finding = _traced(world, urn(identity), category="overheating_incident")
    # when
    found = {caller: _told(world, caller, finding) for caller in ("module maker", "material supplier", "co-supplier")}
    # then
    assert {caller: (f["listed"], f["portal"], f["response"]) for caller, f in found.items()} == {
        "module maker": (True, True, 201),
        "material supplier": (True, True, 201),
        "co-supplier": (False, False, 404),
    }


def test_a_finding_on_a_supplier_tells_those_upstream_of_the_lots_in_its_window_only(world):
    # given the cell maker's C1 (made from M2 ← M1) made in March and its C4 (made from nothing
    # recorded) in June, and brand A's findings on all of the cell maker's lots of March, then of June
    w = world
    for lot, month in ((w.c1, 3), (w.c4, 6)):
        lot.owner = w.c1.owner
        lot.produced_from = dt.datetime(2026, month, 1, tzinfo=dt.UTC)
        lot.produced_to = dt.datetime(2026, month, 28, tzinfo=dt.UTC)
        lot.save(update_fields=["owner", "produced_from", "produced_to"])
    findings = {
        month: _traced(
            w,
            None,
            subject_supplier=w.c1.owner.slug,
            window_from=f"2026-0{month}-10T00:00:00Z",
            window_to=f"2026-0{month}-20T00:00:00Z",
        )  # fmt: skip
        for month in (3, 6)
    }
    # when
    found = {month: _told(w, "material supplier", finding) for month, finding in findings.items()}
    # then March's names C1, which M1 went into: M1's maker is told of it and responds; June's names
    # only C4, which M1 is no part of
    assert {month: (f["listed"], f["portal"], f["response"]) for month, f in found.items()} == {
        3: (True, True, 201),
        6: (False, False, 404),
    }


def test_the_supplier_listing_costs_the_same_queries_whatever_the_number_of_findings_upstream(world):
    # given findings on C1, U1 and MOD1 (each kind of walk), then on each twice more
    w = world
    api = client_for(w.users["material supplier"])
    counted = []
    subjects = [urn(w.c1.identity), urn(Unit.objects.get(pk=w.u[1]).identity), urn(w.mod1.identity)]
    for findings in (3, 6):
        for i in range(findings):
            _traced(w, subjects[i % len(subjects)])
        # when
        with CaptureQueriesContext(connection) as queries:
            listed = api.get(LISTED).json()["results"]
        counted.append((len(queries), len(listed)))
    # then
    assert [rows for _, rows in counted] == [3, 9]
    assert counted[0][0] == counted[1][0]
