"""The findings that concern a supplier's lots, as its portal lists them (issue 15): per finding, how
many units of each of its customers it reaches, exactly as the access policy scopes what a party
told of a finding sees (its share of the latest finished run), and where its 8D response stands;
never a customer's serials or distributors. Those it does not concern list nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, traced, urn
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import TraceRun

pytestmark = pytest.mark.django_db

PATH = "/api/v1/supplier/findings/"


def qa(organisation, role=MemberRole.QA):
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return client_for(user)


@pytest.fixture
def world():
    """The brand's finding on material lot M1 (supplier S1's), traced."""
    w = add_competitor(build_world())
    w.brand_client = qa(w.brand)
    w.created = traced(w.brand_client, w)
    w.supplier = qa(w.m1.owner)
    return w


def test_the_supplier_lists_the_finding_with_how_many_units_of_each_customer_it_reaches(world):
    # given
    w = world
    # when
    response = w.supplier.get(PATH)
    # then its lot went into the brand's 4 definite and 3 potential units, and (through cell lot C1)
    # 2 of the competitor's; none of the units are its own
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row == {
        "id": w.created["id"],
        "subject": w.created["subject"],
        "window_from": None,
        "window_to": None,
        "category": "metallic_debris",
        "severity": "critical",
        "description": "Fe 45 µm",
        "raised_at": w.created["raised_at"],
        "status": "traced",
        "share": {
            "position": TraceRun.objects.get().position,
            "definite_units": 0,
            "potential_units": 0,
            "consignees": 0,
            "others": [
                {"organisation": w.brand.slug, "definite_units": 4, "potential_units": 3},
                {"organisation": w.other_brand.slug, "definite_units": 2, "potential_units": 0},
            ],
        },
        "response": None,
    }
    body = response.content.decode()
    assert not {f"U{i}" for i in range(1, 11)} & set(body.split('"'))
    for private in (w.d1.slug, w.d2.slug, w.other_distributor.slug, w.work_order.number):
        assert private not in body


def test_the_row_says_where_the_suppliers_response_stands(world):
    # given the supplier opened its response and revised it
    w = world
    path = f"/api/v1/findings/{w.created['id']}/responses/"
    assert w.supplier.post(path, {"containment": "M1 held"}, format="json").status_code == 201
    assert w.supplier.post(path, {"root_cause": "worn sieve"}, format="json").status_code == 200
    # when
    (row,) = w.supplier.get(PATH).json()["results"]
    # then
    assert (row["response"]["revision"], row["response"]["status"]) == (2, "draft")


def test_a_finding_not_yet_traced_is_listed_with_no_share(world):
    # given a second finding on M1, its run not finished
    w = world
    second = raise_finding(w.brand_client, urn(w.m1.identity)).json()
    # when
    rows = w.supplier.get(PATH).json()["results"]
    # then
    assert [(r["id"], r["share"]) for r in rows][0] == (second["id"], None)
    assert len(rows) == 2


def test_the_suppliers_own_findings_are_not_listed_as_concerning_it(world):
    # given the supplier's own finding on its lot
    w = world
    assert raise_finding(w.supplier, urn(w.m1.identity)).status_code == 201
    # when
    rows = w.supplier.get(PATH).json()["results"]
    # then
    assert [r["id"] for r in rows] == [w.created["id"]]


@pytest.mark.parametrize("party", ["co_supplier", "competitor", "distributor", "stranger", "regulator"])
def test_those_the_finding_does_not_concern_list_nothing(world, party):
    # given M3's supplier (its lot is no part of M1's trace), the competitor (its units carry M1, but
    # it makes no lot the finding names), a distributor that received the brand's units, a regulator
    w = world
    organisation = {
        "co_supplier": w.m3.owner,
        "competitor": w.other_brand,
        "distributor": w.d1,
        "stranger": OrganisationFactory(role=Role.MATERIAL_SUPPLIER),
        "regulator": OrganisationFactory(role=Role.REGULATOR),
    }[party]
    # when
    response = qa(organisation).get(PATH)
    # then
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_regulators_inquiry_is_listed_to_no_supplier(world):
    # given a regulator's inquiry on M1
    w = world
    assert raise_finding(qa(OrganisationFactory(role=Role.REGULATOR)), urn(w.m1.identity)).status_code == 201
    # when
    rows = w.supplier.get(PATH).json()["results"]
    # then
    assert [r["id"] for r in rows] == [w.created["id"]]


def test_an_unknown_query_parameter_is_refused(world):
    # when
    response = world.supplier.get(f"{PATH}?owner={world.brand.slug}")
    # then
    assert (response.status_code, response.json()["field"]) == (400, "owner")


def test_the_list_costs_the_same_queries_for_one_finding_or_many_with_responses(world):
    # given
    w = world

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = w.supplier.get(PATH)
        assert response.status_code == 200
        return len(captured)

    one = queries()
    # when four more findings on M1 are traced, and the supplier responds to two of them
    for n in range(4):
        created = traced(w.brand_client, w)
        if n % 2:
            path = f"/api/v1/findings/{created['id']}/responses/"
            assert w.supplier.post(path, {"containment": "held"}, format="json").status_code == 201
    # then
    assert len(w.supplier.get(PATH).json()["results"]) == 5
    assert queries() == one
