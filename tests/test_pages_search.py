"""The regulator's desk searches across organisations (issue 15): a bare serial or lot code names the
units and lots of every organisation its grants cover, one opening its page, several listed with
their owners to pick from; a party's bare code stays its own.

The world (tests/trace_world.py): brand A's U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4, U1 sold into Germany, U4 into France; brand B's U9 and U10 built from C1. Here brand
B has a unit serialled U1 too (another GTIN, sold nowhere), and another supplier a lot coded M1.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Role
from tests.factories import MaterialLotFactory, OrganisationFactory, WorkOrderFactory
from tests.test_pages import _main, _member, _page_client, _regulator, _text, chain  # noqa: F401  (a fixture)
from traceability.genealogy.commissioning import units_create
from traceability.ledger.selectors import identifier_render

pytestmark = pytest.mark.django_db

AT = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def _unit_serialled(serial: str, owner=None) -> Unit:
    """A unit of another organisation (its own trade item) with ``serial``, built from nothing, sold nowhere."""
    order = WorkOrderFactory() if owner is None else WorkOrderFactory(owner=owner)
    [unit] = units_create(
        owner=order.owner, product_model=order.product_model, serials=[serial], produced_at=AT, work_order=order
    )
    return Unit.objects.select_related("owner").get(pk=unit)


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture)
    w = chain
    w.other_u1 = _unit_serialled("U1", owner=w.other_brand)
    w.other_m1 = MaterialLotFactory(code="M1")
    w.users["regulator_investigation"] = _regulator([{"scope": "investigation", "investigation": w.investigation}])
    w.users["attacker"] = _member(OrganisationFactory(role=Role.BRAND))
    return w


def _matches(response) -> list[tuple[str, str, str, str]]:
    """The listed matches: (code, kind, owner, link)."""
    table = _main(_text(response)).split('id="matches"', 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in table.split("<tr>")[2:]:
        link = row.split('href="', 1)[1].split('"', 1)[0]
        cells = [cell.split("</td>", 1)[0] for cell in row.split("<td>")[1:]]
        rows.append((cells[0].split(">", 1)[1].split("<", 1)[0], cells[1], cells[2], link))
    return rows


def _link(view: str, identity: str) -> str:
    return f"/{view}/?" + urlencode({"id": identifier_render(identity, form="digital_link")})


def test_a_regulator_with_an_all_grant_is_listed_every_organisations_unit_and_lot_by_the_code_with_its_owner(world):
    w = world
    client = _page_client(w.users["regulator_all"])
    u1 = Unit.objects.select_related("owner").get(pk=w.u[1])
    # when
    units = client.get("/search/", {"q": "U1"})
    lots = client.get("/search/", {"q": "M1"})
    # then each is listed with its owner, linked by its Digital Link, to pick from
    assert units.status_code == 200
    assert "Everything known as “U1” within your grants" in _text(units)
    assert sorted(_matches(units)) == sorted(
        [
            ("U1", "Unit", u1.owner.name, _link("unit", u1.identity)),
            ("U1", "Unit", w.other_brand.name, _link("unit", w.other_u1.identity)),
        ]
    )
    assert sorted(_matches(lots)) == sorted(
        [
            ("M1", "Lot", w.m1.owner.name, _link("lot", w.m1.identity)),
            ("M1", "Lot", w.other_m1.owner.name, _link("lot", w.other_m1.identity)),
        ]
    )
    # and each link opens its page
    for _code, _kind, _owner, link in _matches(units) + _matches(lots):
        assert client.get(link).status_code == 200, link


@pytest.mark.parametrize(
    ("query", "lands_on"),
    [
        ("U1", "/unit/"),  # brand A's, sold into Germany; brand B's U1 was sold nowhere
        ("M1", "/lot/"),  # the supplier's lot whose units were sold into Germany; the other M1's were not
        ("U4", None),  # sold into France
        ("C4", None),  # its units went to France
    ],
)
def test_a_regulator_with_a_jurisdiction_grant_finds_only_what_was_sold_into_it(world, query, lands_on):
    client = _page_client(world.users["regulator_jurisdiction_in"])
    # when
    response = client.get("/search/", {"q": query})
    # then
    if lands_on is None:
        assert response.status_code == 404
        assert f"Nothing you may open is known as “{query}”." in _text(response)
        return
    assert (response.status_code, response["Location"]) == (302, lands_on + "?" + urlencode({"id": query}))
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("query", "lands_on"),
    [
        ("M1", "/lot/"),  # the investigation's subject (the other supplier's M1 is not)
        ("U1", "/unit/"),  # brand A's U1, which the investigation's trace reaches; brand B's U1 it does not
        ("U9", "/unit/"),  # brand B's unit built from C1, reached too
        ("C4", None),  # a lot the investigation is not about
    ],
)
def test_a_regulator_with_an_investigation_grant_finds_its_subject_and_what_its_trace_reaches(world, query, lands_on):
    client = _page_client(world.users["regulator_investigation"])
    response = client.get("/search/", {"q": query})
    if lands_on is None:
        assert response.status_code == 404
        return
    assert (response.status_code, response["Location"]) == (302, lands_on + "?" + urlencode({"id": query}))
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("caller", "query", "lands_on"),
    [
        ("own", "U1", "/unit/"),  # its own U1, never brand B's
        ("own", "M1", None),  # its supplier's lot code: not its own
        ("competitor", "U1", "/unit/"),  # its own U1
        ("attacker", "U1", None),
        ("attacker", "M1", None),
        ("attacker", "U9", None),
    ],
)
def test_a_party_finds_only_its_own_codes_and_nothing_foreign_appears(world, caller, query, lands_on):
    w = world
    client = _page_client(w.users[caller])
    # when
    response = client.get("/search/", {"q": query})
    # then
    if lands_on is None:
        assert response.status_code == 404
        page = _main(_text(response))
        assert f"Nothing you may open is known as “{query}”." in page
        for foreign in (w.brand.name, w.other_brand.name, w.m1.owner.name, w.other_m1.owner.name):
            assert foreign not in page
        return
    assert (response.status_code, response["Location"]) == (302, lands_on + "?" + urlencode({"id": query}))
    opened = _main(_text(client.get(response["Location"])))
    own = Unit.objects.get(owner=w.brand if caller == "own" else w.other_brand, serial="U1")
    assert identifier_render(own.identity, form="digital_link") in opened


@pytest.mark.parametrize("caller", ["regulator_all", "regulator_jurisdiction_in", "regulator_investigation"])
def test_a_regulators_search_costs_the_same_queries_whatever_the_number_of_organisations_sharing_the_code(
    world, caller
):
    client = _page_client(world.users[caller])
    client.get("/search/", {"q": "U1"})  # the session and the caller, read once before counting

    def counted() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/search/", {"q": "U1"}).status_code in (200, 302)
            assert client.get("/search/", {"q": "M1"}).status_code in (200, 302, 404)
        return len(queries)

    before = counted()
    # given five more organisations' units serialled U1 and lots coded M1
    for _ in range(5):
        _unit_serialled("U1")
        MaterialLotFactory(code="M1")
    # then
    assert counted() == before
    if caller == "regulator_all":
        assert len(_matches(client.get("/search/", {"q": "U1"}))) == 7
        assert Lot.objects.filter(code="M1").count() == 7
