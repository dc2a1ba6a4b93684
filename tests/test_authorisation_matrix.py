"""Who may see what, asked of every REST read of an investigation and of recording findings, as each
party of a chain (DESIGN.md, "Who sees what"; issue 12's authorisation matrix).

The world (tests/trace_world.py) is brand A's: U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4, shipped to distributors D1 and D2. Brand B (the competitor) built U9 and U10 from the
same cell lot C1 and shipped U9 to its own distributor. Each party asks as itself; every answer is
checked for what it must not carry: another party's serials, identities, consignees, work orders and
counts.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn, written
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import TraceRun

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
        ("regulator", "m1", 403, "read_only"),
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
