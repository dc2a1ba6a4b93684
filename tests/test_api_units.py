"""GET /units/{ident}/backward/ and /siblings/: one unit's upstream lots and its siblings."""

import datetime as dt
import json
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from cells.models import Inspection
from packs.models import Unit
from suppliers.models import Role, TokenScope
from suppliers.services import api_token_create
from tests.factories import CertificateFactory, OrganisationFactory, SiteFactory
from tests.test_api_support import client_for, member, urn, written
from tests.trace_world import build_world
from traceability.access.models import GrantScope
from traceability.access.services import grant_add
from traceability.api import selectors as api_selectors
from traceability.api.serializers import BackwardSerializer, SiblingsSerializer
from traceability.ledger.selectors import PrefixLength

pytestmark = pytest.mark.django_db


def _ident(value):
    return quote(value, safe="")


def test_backward_lists_every_upstream_lot_with_supplier_site_window_inspections_and_certificates():
    # given the cell lot C1 made at a site in March 2024, X-rayed, by a maker holding a UN 38.3 certificate
    w = build_world()
    site = SiteFactory(owner=w.c1.owner, name="Ningde 2")
    w.c1.site, w.c1.produced_from, w.c1.produced_to = (
        site,
        dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 15, tzinfo=dt.UTC),
    )
    w.c1.save()
    Inspection.objects.create(
        owner=w.c1.owner,
        lot=w.c1,
        method="xray",
        outcome="fail",
        measurements={"max_particle_um": 45},
        sample_size=32,
        inspected_at=dt.datetime(2024, 2, 20, tzinfo=dt.UTC),
    )
    certificate = CertificateFactory(owner=w.c1.owner, scheme="un38.3", number="UN-1", status="suspended")
    gtin = w.work_order.product_model.gtin
    client = client_for(member(w.brand))
    # when
    response = client.get(f"/api/v1/units/{_ident(urn(f'sgtin:{gtin}:U2'))}/backward/")
    # then
    body = response.json()
    assert response.status_code == 200
    assert body["subject"] == {
        "serial": "U2",
        "gtin": gtin,
        "identity": f"sgtin:{gtin}:U2",
        "epc": urn(f"sgtin:{gtin}:U2"),
        "digital_link": f"https://id.gs1.org/01/{gtin}/21/U2",
    }
    assert [(lot["code"], lot["level"], lot["exposure"], lot["supplier"]["organisation"]) for lot in body["lots"]] == [
        ("MOD1", 1, "definite", w.mod1.owner.slug),
        ("C1", 2, "definite", w.c1.owner.slug),
        ("M2", 3, "definite", w.m2.owner.slug),
        ("M1", 4, "definite", w.m1.owner.slug),
    ]
    c1 = body["lots"][1]
    assert c1 == {
        "identity": w.c1.identity,
        "code": "C1",
        "kind": "cell",
        "epc": urn(w.c1.identity),
        "digital_link": f"https://id.gs1.org/01/{w.c1.gtin}/10/C1",
        "level": 2,
        "exposure": "definite",
        "supplier": {"organisation": w.c1.owner.slug, "name": w.c1.owner.name, "roles": ["cell_maker"]},
        "site": {"id": site.pk, "name": "Ningde 2", "gln": site.gln},
        "produced_from": "2024-02-01T00:00:00Z",
        "produced_to": "2024-02-15T00:00:00Z",
        "inspections": [
            {
                "id": w.c1.inspections.get().pk,
                "method": "xray",
                "outcome": "fail",
                "measurements": {"max_particle_um": 45},
                "sample_size": 32,
                "inspected_at": "2024-02-20T00:00:00Z",
            }
        ],
        "certificates": [
            {"scheme": "un38.3", "number": "UN-1", "status": "suspended", "valid_to": str(certificate.valid_to)}
        ],
        "path": [
            {"from": f"sgtin:{gtin}:U2", "to": w.mod1.identity, "record": "build U2", "exposure": "definite"},
            {"from": w.mod1.identity, "to": w.c1.identity, "record": "module line", "exposure": "definite"},
        ],
    }
    assert body["units"] == []


@pytest.mark.parametrize("form", ["epc", "digital_link", "serial"])
def test_a_unit_is_named_by_urn_digital_link_or_serial(form):
    # given
    w = build_world()
    gtin = w.work_order.product_model.gtin
    ident = {
        "epc": urn(f"sgtin:{gtin}:U8"),
        "digital_link": f"https://id.gs1.org/01/{gtin}/21/U8",
        "serial": "U8",
    }[form]
    # when
    response = client_for(member(w.brand)).get(f"/api/v1/units/{_ident(ident)}/backward/")
    # then the refurbished unit's upstream: U1, and through it MOD1, C1, M2, M1
    assert response.status_code == 200
    assert [lot["code"] for lot in response.json()["lots"]] == ["MOD1", "C1", "M2", "M1"]
    assert [(u["serial"], u["exposure"]) for u in response.json()["units"]] == [("U1", "definite")]


def test_backward_of_a_unit_costs_no_more_queries_with_more_inspections_and_certificates():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    with CaptureQueriesContext(connection) as bare:
        client.get("/api/v1/units/U2/backward/")
    for lot in (w.mod1, w.c1, w.m2, w.m1):
        CertificateFactory(owner=lot.owner)
        for _ in range(3):
            Inspection.objects.create(
                owner=lot.owner,
                lot=lot,
                method="ocv",
                outcome="pass",
                inspected_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            )
    # when
    with CaptureQueriesContext(connection) as rich:
        body = client.get("/api/v1/units/U2/backward/").json()
    # then
    assert sum(len(lot["inspections"]) for lot in body["lots"]) == 12
    assert len(rich) == len(bare)


def test_siblings_share_a_direct_input_lot():
    # given
    w = build_world()
    gtin = w.work_order.product_model.gtin
    # when
    response = client_for(member(w.brand)).get("/api/v1/units/U4/siblings/")
    # then
    body = response.json()
    assert response.status_code == 200
    assert body["subject"]["identity"] == f"sgtin:{gtin}:U4"
    assert [(lot["code"], lot["kind"]) for lot in body["shared_lots"]] == [("C2", "cell"), ("C4", "cell")]
    assert [(s["serial"], s["shared_lots"]) for s in body["siblings"]] == [
        ("U5", [w.c2.identity, w.c4.identity]),
        ("U6", [w.c2.identity, w.c4.identity]),
        ("U7", [w.c4.identity]),
    ]
    assert body["siblings"][0]["epc"] == urn(f"sgtin:{gtin}:U5")
    assert body["next"] is None


def test_siblings_come_a_page_at_a_time_and_the_pages_add_up():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    # when the pages are followed from the first
    pages, url = [], "/api/v1/units/U4/siblings/?limit=2"
    while url:
        pages.append(client.get(url).json())
        url = pages[-1]["next"]
    # then
    assert [[s["serial"] for s in page["siblings"]] for page in pages] == [["U5", "U6"], ["U7"]]
    assert pages[0]["next"] == f"http://testserver/api/v1/units/U4/siblings/?after={w.u[6]}&limit=2"
    assert client.get("/api/v1/units/U4/siblings/?limit=0").json()["field"] == "limit"


@pytest.mark.parametrize(
    ("ident", "status", "code", "message"),
    [
        ("NOPE-1", 404, "unknown_subject", "no unit is known as 'NOPE-1'"),
        ("urn:epc:id:sgtin:0614141.112345.400", 404, "unknown_subject", None),
        ("urn:epc:id:sgtin:0614141.112345", 400, "invalid_identifier", None),
        ("LOT", 400, "unsupported_identifier", None),
    ],
)
def test_an_unknown_or_malformed_ident_is_refused(ident, status, code, message):
    # given
    w = build_world()
    ident = urn(w.c1.identity) if ident == "LOT" else ident
    before = written()
    # when
    responses = [
        client_for(member(w.brand)).get(f"/api/v1/units/{_ident(ident)}/{part}/") for part in ("backward", "siblings")
    ]
    # then
    for response in responses:
        assert response.status_code == status
        assert (response.json()["code"], response.json()["field"]) == (code, "ident")
        assert message is None or response.json()["message"] == message
    assert written() == before


def test_another_organisations_unit_is_answered_like_an_unknown_one_but_a_regulator_sees_it():
    # given
    w = build_world()
    gtin = w.work_order.product_model.gtin
    ident = _ident(urn(f"sgtin:{gtin}:U2"))
    # when
    other = client_for(member(OrganisationFactory())).get(f"/api/v1/units/{ident}/backward/")
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR))).get(f"/api/v1/units/{ident}/backward/")
    by_serial = client_for(member(OrganisationFactory(role=Role.REGULATOR))).get("/api/v1/units/U2/siblings/")
    # then
    assert other.status_code == 404
    assert other.json() == {
        "code": "unknown_subject",
        "message": f"no unit is known as {urn(f'sgtin:{gtin}:U2')!r}",
        "field": "ident",
    }
    assert (regulator.status_code, len(regulator.json()["lots"])) == (200, 4)
    assert (by_serial.status_code, [s["serial"] for s in by_serial.json()["siblings"]]) == (200, ["U1", "U3"])


@pytest.mark.parametrize("serial", ["U2", "U8"])
def test_backward_answers_exactly_what_its_documented_serializer_gives(serial):
    # given a world with a site, production window, inspection and certificate upstream of U2,
    # and U8 refurbished from U1 (the view renders the selector's dict without the serializer)
    w = build_world()
    w.c1.site = SiteFactory(owner=w.c1.owner)
    w.c1.produced_from = dt.datetime(2024, 2, 1, 8, 30, tzinfo=dt.UTC)
    w.c1.save()
    Inspection.objects.create(
        owner=w.c1.owner, lot=w.c1, method="xray", outcome="fail", inspected_at=dt.datetime(2024, 2, 20, tzinfo=dt.UTC)
    )
    CertificateFactory(owner=w.c1.owner)
    unit = Unit.objects.get(serial=serial)
    # when
    body = client_for(member(w.brand)).get(f"/api/v1/units/{serial}/backward/").content
    # then
    payload = api_selectors.unit_backward(unit, prefix_length=PrefixLength())
    assert payload["lots"] and (serial == "U2" or payload["units"])
    assert json.loads(body) == json.loads(JSONRenderer().render(BackwardSerializer(payload).data))


def test_siblings_answer_exactly_what_their_documented_serializer_gives():
    # given
    w = build_world()
    unit = Unit.objects.get(serial="U4")
    # when
    body = client_for(member(w.brand)).get("/api/v1/units/U4/siblings/?limit=2").json()
    # then
    payload = api_selectors.unit_siblings(
        unit, visible_units=Unit.objects.all(), prefix_length=PrefixLength(), after=0, limit=2
    )
    assert payload.pop("next_after") is not None
    payload["next"] = body["next"]
    assert body == json.loads(JSONRenderer().render(SiblingsSerializer(payload).data))


def _regulator_token_client() -> APIClient:
    """A script of a regulator holding an ``all`` grant, calling with a read token (the bench's reader)."""
    regulator = OrganisationFactory(role=Role.REGULATOR)
    grant_add(regulator=regulator, scope=GrantScope.ALL)
    _, key = api_token_create(membership=member(regulator).memberships.get(), scope=TokenScope.READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.parametrize(("part", "expected"), [("backward", 13), ("siblings", 9)])
def test_a_regulators_token_read_of_a_unit_costs_fixed_queries_none_repeated(part, expected):
    # given a regulator's script (an `all` grant) reading one unit, the REST reads the bench times
    build_world()
    client = _regulator_token_client()
    assert client.get(f"/api/v1/units/U2/{part}/").status_code == 200  # a first call warms what is kept
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/units/U2/{part}/")
    # then the token's one query says who calls, for whom and with what grants: the caller, its
    # roles and its grants are not read again, and no statement is made twice
    assert response.status_code == 200
    statements = [q["sql"] for q in queries]
    assert len(statements) == expected, "\n".join(statements)
    assert len(set(statements)) == len(statements)
    assert [s for s in statements if "suppliers_membership" in s or "traceability_grant" in s] == [
        s for s in statements if "suppliers_apitoken" in s
    ]
    assert "ORDER BY" not in next(s for s in statements if "suppliers_apitoken" in s)  # a unique key: no sort
    # and the regulator's read is audited: one entry, its only write
    assert [s.split(" (")[0] for s in statements if not s.lstrip("(").startswith(("SELECT", "WITH"))] == [
        'INSERT INTO "traceability_auditentry"'
    ]


def test_siblings_of_a_reader_who_sees_every_unit_are_cut_without_probing_the_unit_table():
    # given a regulator with an `all` grant, and a brand seeing only its own units
    w = build_world()
    regulator, brand = _regulator_token_client(), client_for(member(w.brand))
    # when
    with CaptureQueriesContext(connection) as everything:
        all_seen = regulator.get("/api/v1/units/U4/siblings/")
    with CaptureQueriesContext(connection) as scoped:
        own_seen = brand.get("/api/v1/units/U4/siblings/")
    # then the regulator's page query has no semi-join on the units (all of them qualify), while the
    # brand's keeps its condition: what the brand sees is cut in the query, as before
    assert all_seen.json()["siblings"] == own_seen.json()["siblings"] != []

    def page_query(queries: CaptureQueriesContext) -> str:
        return next(q["sql"] for q in queries if q["sql"].startswith("SELECT DISTINCT"))

    assert "packs_unit" not in page_query(everything)
    assert "packs_unit" in page_query(scoped)
