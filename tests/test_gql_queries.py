"""Query counts of the GraphQL API's connections: a page costs the same number of queries whatever
its size (every edge is built from the set-based read models, never a query per edge), and the
sign-in throttling the REST API has."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Lot
from packs.models import Shipment, ShipmentItem, Unit
from suppliers.models import Membership, Role
from suppliers.services import api_token_issue
from tests.factories import CertificateFactory, OrganisationFactory, SiteFactory
from tests.test_api_support import member, more_units, urn
from tests.trace_world import AT, add_competitor, build_world

pytestmark = pytest.mark.django_db

DOWNSTREAM = """query D($lot: String!, $first: Int) { lot(identifier: $lot) { id identity owner { slug }
  downstream(first: $first) { totalCount definiteCount potentialCount others { organisation { slug } definiteCount }
    edges { cursor node { exposure productModel workOrder unit { id identity serial gtin }
      path { from to record exposure } } }
    pageInfo { hasNextPage endCursor } } } }"""
COUNT_SIBLINGS = """query C($unit: String!) { unit(identifier: $unit) { siblings { totalCount } } }"""
SIBLINGS = """query S($unit: String!, $first: Int) { unit(identifier: $unit) { id
  siblings(first: $first) { totalCount edges { cursor node { id identity serial } }
    pageInfo { hasNextPage endCursor } } } }"""


def _key(organisation: Any) -> str:
    membership = Membership.objects.get(user=member(organisation), organisation=organisation)
    return api_token_issue(membership=membership)


def _queries(key: str, query: str, **variables: Any) -> tuple[int, dict[str, Any]]:
    client = Client()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/graphql/",
            {"query": query, "variables": variables},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {key}",
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert "errors" not in body, body
    return len(captured), body["data"]


@pytest.fixture()
def world():
    w = add_competitor(build_world())
    more_units(w, 30)
    w.regulator = OrganisationFactory(role=Role.REGULATOR)
    return w


@pytest.mark.parametrize("caller", ["regulator", "brand", "cell_maker"])
def test_a_downstream_page_costs_the_same_queries_whatever_its_size(world, caller):
    key = _key({"regulator": world.regulator, "brand": world.brand, "cell_maker": world.c1.owner}[caller])
    # The domain's page asks more segments (or batches, for a party) while it comes out short: a
    # query per segment or batch, never per unit, so the larger page costs no more.
    small, small_data = _queries(key, DOWNSTREAM, lot=urn(world.m1.identity), first=10)
    large, large_data = _queries(key, DOWNSTREAM, lot=urn(world.m1.identity), first=35)
    if caller != "cell_maker":  # the cell maker sees counts of its customers' units, no serial
        assert len(small_data["lot"]["downstream"]["edges"]) == 10
        assert len(large_data["lot"]["downstream"]["edges"]) == 35
    assert large <= small


def test_a_siblings_page_costs_the_same_queries_whatever_its_size(world):
    key = _key(world.brand)
    small, small_data = _queries(key, SIBLINGS, unit="U1", first=2)
    large, large_data = _queries(key, SIBLINGS, unit="U1", first=25)
    assert len(small_data["unit"]["siblings"]["edges"]) == 2
    assert len(large_data["unit"]["siblings"]["edges"]) == 25
    assert large == small


@pytest.mark.parametrize(("caller", "expected"), [("regulator", 32), ("brand", 32), ("d1", 2)])
def test_siblings_total_count_is_how_many_siblings_the_caller_sees(world, caller, expected):
    # given U1 built from MOD1 with U2, U3 and 30 more of the brand's units; the distributor D1
    # received U1..U3 only
    key = _key(getattr(world, caller))
    unit = urn(Unit.objects.get(pk=world.u[1]).identity)

    # when the caller pages through them all, and asks for the count alone
    paged, whole = _queries(key, SIBLINGS, unit=unit, first=1000)
    counted, alone = _queries(key, COUNT_SIBLINGS, unit=unit)

    # then the count is how many siblings the caller is shown (the brand's all, D1's the two it
    # received), the same asked alone, which reads no page
    siblings = whole["unit"]["siblings"]
    assert siblings["totalCount"] == len(siblings["edges"]) == expected
    assert alone["unit"]["siblings"]["totalCount"] == expected
    assert counted < paged


def test_failed_token_sign_ins_are_throttled_as_the_rest_api_throttles_them(settings):
    settings.LEDGER_SIGNIN_FAILURES = 3
    client = Client()
    for _ in range(3):
        response = client.post(
            "/graphql/", {"query": "{ __typename }"}, content_type="application/json", HTTP_AUTHORIZATION="Token bad"
        )
        assert response.status_code == 401
    refused = client.post(
        "/graphql/", {"query": "{ __typename }"}, content_type="application/json", HTTP_AUTHORIZATION="Token bad"
    )
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["errors"][0]["extensions"]["code"] == "throttled"
    assert "data" not in refused.json()


def test_counts_alone_read_no_page_of_units(world):
    key = _key(world.regulator)
    counts = "query C($lot: String!) { lot(identifier: $lot) { downstream { totalCount definiteCount } } }"
    paged = "query P($lot: String!) { lot(identifier: $lot) { downstream(first: 1) { totalCount edges { cursor } } } }"
    counted, data = _queries(key, counts, lot=urn(world.m1.identity))
    with_page, _ = _queries(key, paged, lot=urn(world.m1.identity))
    assert data["lot"]["downstream"]["totalCount"] == 39  # U1-U6, U8, U9, U10 and 30 more from MOD1
    assert counted < with_page


def test_an_oversized_body_is_refused_unread():
    response = Client().post(
        "/graphql/", {"query": "{ __typename }", "pad": "x" * 1_100_000}, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "body_too_large"
    assert "data" not in response.json()


DASHBOARD = """query Dashboard($number: Int!, $first: Int) {
  investigation(number: $number) {
    id number status openedAt owner { slug }
    finding { number category severity description inquiry subject raisedAt }
    latestRun {
      id number position status percent definiteCount potentialCount consigneeCount
      affectedUnits(first: $first) {
        totalCount definiteCount potentialCount
        edges { cursor node { exposure productModel workOrder unit { identity serial }
          path { from to record exposure } } }
        pageInfo { hasNextPage endCursor }
      }
      consignees { organisation { slug name } units firstShippedAt lastShippedAt }
      breakdown {
        productModels { key name units definite potential }
        workOrders { key units definite potential }
        sites { key name units }
        productionMonths { key units }
        consignees { organisation { slug } units }
      }
    }
  }
}"""


def _traced_investigation(world) -> Any:
    from tests.jobs_support import run_job
    from traceability.investigations.models import TraceRun
    from traceability.investigations.services import finding_record

    finding = finding_record(
        owner=world.brand,
        subject=world.m1,
        category="metallic_debris",
        severity="critical",
        description="Fe 45 µm",
        submit=lambda job: None,
    )
    run_job(TraceRun.objects.get(investigation=finding.investigation).job)
    return finding.investigation


def test_a_regulators_dashboard_query_takes_a_fixed_number_of_queries_whatever_the_page_size(world):
    # given the brand's investigation of M1, traced, and a regulator who reads the whole ledger
    investigation = _traced_investigation(world)
    key = _key(world.regulator)

    # when the regulator asks for its dashboard with a small page and a large one
    small, small_data = _queries(key, DASHBOARD, number=investigation.pk, first=5)
    large, large_data = _queries(key, DASHBOARD, number=investigation.pk, first=35)

    # then every part is there, and the larger page costs no more queries
    dashboard = large_data["investigation"]
    assert dashboard["status"] == "traced" and dashboard["owner"]["slug"] == world.brand.slug
    assert dashboard["finding"]["subject"] == urn(world.m1.identity)
    assert dashboard["finding"]["category"] == "METALLIC_DEBRIS"
    run = dashboard["latestRun"]
    assert (run["status"], run["percent"]) == ("succeeded", 100)
    assert run["affectedUnits"]["totalCount"] == run["definiteCount"] + run["potentialCount"] == 39
    assert (
        len(run["affectedUnits"]["edges"]) == 35
        and len(small_data["investigation"]["latestRun"]["affectedUnits"]["edges"]) == 5
    )
    assert {c["organisation"]["slug"] for c in run["consignees"]} == {
        world.d1.slug,
        world.d2.slug,
        world.other_distributor.slug,
    }
    assert sum(m["units"] for m in run["breakdown"]["productModels"]) == 39
    assert large <= small


def test_an_investigation_is_null_to_whom_it_is_not_readable_and_its_owner_sees_its_share(world):
    investigation = _traced_investigation(world)
    _, other = _queries(_key(world.other_brand), DASHBOARD, number=investigation.pk, first=5)
    assert other == {"investigation": None}
    _, own = _queries(_key(world.brand), DASHBOARD, number=investigation.pk, first=50)
    run = own["investigation"]["latestRun"]
    # the brand's own units (U1-U6, U8 and 30 more), not the second brand's U9 and U10
    assert run["affectedUnits"]["totalCount"] == run["definiteCount"] + run["potentialCount"] == 37
    assert "U9" not in {e["node"]["unit"]["serial"] for e in run["affectedUnits"]["edges"]}
    assert sum(m["units"] for m in run["breakdown"]["productModels"]) == 37


CONSIGNEES = """query C($number: Int!) { investigation(number: $number) { latestRun {
  consignees { organisation { slug } shipToCountries }
  breakdown { consignees { organisation { slug } shipToCountries } } } } }"""


@pytest.mark.parametrize("caller", ["regulator", "brand"])
def test_a_runs_consignees_name_the_countries_their_shipments_were_addressed_to(world, caller):
    # given D1's shipment addressed to its warehouses in Italy and France, the others' to no site; the
    # regulator reads the run whole as stored, the brand its share counted from the result
    Shipment.objects.filter(consignee=world.d1).update(ship_to=SiteFactory(owner=world.d1, country="IT"))
    shipment = Shipment.objects.get(consignee=world.d1)
    shipment.pk, shipment.reference = None, "DA-1b"
    shipment.ship_to = SiteFactory(owner=world.d1, country="FR")
    shipment.save()
    ShipmentItem.objects.create(shipment=shipment, unit_id=world.u[8])
    investigation = _traced_investigation(world)
    # when
    _, data = _queries(_key(getattr(world, caller)), CONSIGNEES, number=investigation.pk)
    # then
    run = data["investigation"]["latestRun"]
    countries = {c["organisation"]["slug"]: c["shipToCountries"] for c in run["consignees"]}
    assert countries[world.d1.slug] == ["FR", "IT"]
    assert countries[world.d2.slug] == []
    assert run["breakdown"]["consignees"] == run["consignees"]


UNIT_FIELDS = """id identity serial owner { slug sites { name } members { role count } }
  productModel { modelNumber owner { slug } } workOrder { number site { name } productModel { name } }
  site { name owner { slug } } producedAt packing { container kind packedAt }
  shipments { consignee { slug } shippedAt }"""
DOWNSTREAM_UNITS = (
    "query D($lot: String!, $first: Int) { lot(identifier: $lot) { downstream(first: $first) {"
    " edges { node { unit { " + UNIT_FIELDS + " } } } } } }"
)
SIBLINGS_UNITS = (
    "query S($unit: String!, $first: Int) { unit(identifier: $unit) { siblings(first: $first) {"
    " edges { node { " + UNIT_FIELDS + " } } } } }"
)
UPSTREAM_DETAILS = """query U($unit: String!) { unit(identifier: $unit) { upstream {
  identity kind site { name } producedFrom producedTo cellModel { name format owner { slug } }
  inspections { method outcome measurements inspectedBy { slug } site { name } }
  owner { slug certificates { number scheme status holder { slug } issuedBy { slug }
    productModels { modelNumber owner { slug } } cellModels { name } sites { name } history { toStatus } } }
  certificates { number } } } }"""


def test_a_page_of_units_reads_each_relation_once_whatever_the_page_holds(world):
    # given units of two brands, models and work orders on the page, shipped to three distributors
    key = _key(world.regulator)

    # when a page of 10 units and a page of 35 ask every relation of each unit
    small, small_data = _queries(key, DOWNSTREAM_UNITS, lot=urn(world.m1.identity), first=10)
    large, large_data = _queries(key, DOWNSTREAM_UNITS, lot=urn(world.m1.identity), first=35)

    # then every unit has its own, and the larger page costs no more queries
    units = [edge["node"]["unit"] for edge in large_data["lot"]["downstream"]["edges"]]
    assert len(units) == 35
    assert {u["owner"]["slug"] for u in units} == {world.brand.slug, world.other_brand.slug}
    assert len({u["productModel"]["modelNumber"] for u in units}) == 2
    assert {s["consignee"]["slug"] for u in units for s in u["shipments"]} == {
        world.d1.slug,
        world.d2.slug,
        world.other_distributor.slug,
    }
    assert all(p["kind"] == "carton" for u in units for p in u["packing"])
    assert large <= small


def test_a_page_of_siblings_reads_each_relation_once_whatever_the_page_holds(world):
    key = _key(world.brand)
    small, _ = _queries(key, SIBLINGS_UNITS, unit="U1", first=2)
    large, data = _queries(key, SIBLINGS_UNITS, unit="U1", first=25)
    assert len(data["unit"]["siblings"]["edges"]) == 25
    assert large <= small


def _supplied(world: Any, certificates: int, inspections: int) -> None:
    """Every supplier of C1, M1 and MOD1 given a site with ``certificates`` more certificates, and
    each of those lots ``inspections`` more inspections."""
    lot_rows = list(Lot.objects.select_related("owner").filter(pk__in=[world.c1.pk, world.m1.pk, world.mod1.pk]))
    for owner in {lot.owner for lot in lot_rows}:
        owner_site = SiteFactory(owner=owner)
        for _ in range(certificates):
            CertificateFactory(owner=owner).sites.add(owner_site)
    for lot in lot_rows:
        for _ in range(inspections):
            Inspection.objects.create(
                owner=lot.owner, lot=lot, method="xray", outcome="fail", inspected_at=AT, measurements={"um": 45}
            )


def test_upstream_lots_read_their_details_in_a_batch_per_relation(world):
    # given U1's upstream lots, each supplier with a certificate and each lot with an inspection
    key = _key(world.regulator)
    _supplied(world, certificates=1, inspections=1)
    before, data = _queries(key, UPSTREAM_DETAILS, unit="U1")
    lots = data["unit"]["upstream"]
    assert {lot["kind"] for lot in lots} >= {"cell", "material"}
    assert any(lot["cellModel"] for lot in lots)

    # when they get three more certificates and two more inspections each
    _supplied(world, certificates=3, inspections=2)
    after, data = _queries(key, UPSTREAM_DETAILS, unit="U1")

    # then all are shown, for no more queries
    shown = data["unit"]["upstream"]
    assert sum(len(lot["inspections"]) for lot in shown) == 3 * 3
    certified = [lot for lot in shown if lot["identity"] == urn(world.c1.identity)][0]["owner"]["certificates"]
    assert len(certified) == 4 and all(c["history"] is not None for c in certified)
    assert after == before


def test_a_document_sent_again_is_neither_parsed_nor_validated_again(world):
    from unittest import mock

    from traceability.gql import views

    # given a query no test has sent before (the cache lives as long as the process)
    key = _key(world.regulator)
    query = "query Again($lot: String!) { lot(identifier: $lot) { cachedAlias: identity } } # " + str(id(world))
    with mock.patch.object(views, "validate", wraps=views.validate) as validated:
        # when it is sent twice
        _, first = _queries(key, query, lot=urn(world.m1.identity))
        _, again = _queries(key, query, lot=urn(world.m1.identity))
        # and an invalid document twice
        for _ in range(2):
            response = Client().post(
                "/graphql/",
                {"query": "query Bad { lot { nope } } # " + str(id(world))},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {key}",
            )
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["code"] == "invalid_query"

    # then each was validated once, and answered alike every time
    assert validated.call_count == 2
    assert first == again == {"lot": {"cachedAlias": urn(world.m1.identity)}}
