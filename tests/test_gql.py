"""The GraphQL API over HTTP, as a regulator's script speaks to it: gql's requests transport against
a live server, with the API tokens the REST API takes.

The world is tests/trace_world.py's (definite and potential paths four and five links deep), with a
second brand on cell lot C1 where a test needs a shared lot. The client validates every request
against the reviewed snapshot, schema.graphql, so a test also fails when the contract it relies on
is not the one served.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from django.db import transaction
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport

from suppliers.models import MemberRole, Membership, Role, TokenScope
from suppliers.services import api_token_issue
from tests.factories import CellLotFactory, OrganisationFactory
from tests.test_api_support import member, urn, written
from tests.trace_world import AT, add_competitor, build_world
from traceability.core.models import AuditAction, AuditEntry, AuditSource
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.models import RecordKind
from traceability.genealogy.writes import transformation_record
from traceability.gql.protection import MAX_COST, MAX_DEPTH
from traceability.investigations.models import Finding
from traceability.ledger.services import ledger_append

SNAPSHOT = Path(__file__).resolve().parents[1] / "schema.graphql"

pytestmark = pytest.mark.django_db(transaction=True)


class Answer(SimpleNamespace):
    data: Any
    errors: list[dict[str, Any]]


def token(organisation: Any, *, role: str = MemberRole.QA, scope: str = TokenScope.WRITE) -> str:
    """A new member of ``organisation`` with ``role`` and an API token of ``scope``."""
    user = member(organisation)
    membership = Membership.objects.get(user=user, organisation=organisation)
    membership.role = role
    membership.save(update_fields=["role"])
    key = api_token_issue(membership=membership, scope=scope)
    assert key is not None
    return key


def ask(
    live_server: Any,
    key: str | None,
    query: str,
    *,
    validate: bool = True,
    operation: str | None = None,
    **variables: Any,
) -> Answer:
    """POST one operation as a script would; the client checks it against the snapshot first."""
    transport = RequestsHTTPTransport(
        url=f"{live_server.url}/graphql/",
        headers={"Authorization": f"Token {key}"} if key else {},
        timeout=120,
    )
    client = Client(transport=transport, schema=SNAPSHOT.read_text() if validate else None)
    request = GraphQLRequest(query, variable_values=variables or None, operation_name=operation)
    try:
        return Answer(data=client.execute(request), errors=[])
    except TransportQueryError as refused:
        return Answer(data=refused.data, errors=list(refused.errors or []))


def codes(answer: Answer) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in answer.errors]


DOWNSTREAM = """
query Downstream($lot: String!, $exposure: Exposure, $first: Int, $after: String) {
  lot(identifier: $lot) {
    id identity owner { slug roles }
    downstream(exposure: $exposure, first: $first, after: $after) {
      totalCount definiteCount potentialCount
      others { organisation { slug } definiteCount potentialCount }
      edges { cursor node { exposure unit { id identity serial } path { from to record exposure } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

UNIT = """
query Unit($unit: String!, $first: Int, $after: String) {
  unit(identifier: $unit) {
    id identity serial
    upstream { id identity code owner { slug } }
    siblings(first: $first, after: $after) {
      edges { cursor node { serial } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


@pytest.fixture()
def world() -> SimpleNamespace:
    w = add_competitor(build_world())
    w.regulator = OrganisationFactory(role=Role.REGULATOR)  # an ``all`` grant
    w.cell_maker = w.c1.owner
    return w


def serials(answer: Answer) -> list[str]:
    return [edge["node"]["unit"]["serial"] for edge in answer.data["lot"]["downstream"]["edges"]]


# --- the fixed contract, field by field -----------------------------------------------------------------


def test_lot_downstream_answers_every_contract_field_with_definite_and_potential_paths(live_server, world):
    # given a regulator who reads the whole ledger
    key = token(world.regulator)

    # when it asks what is downstream of material lot M1
    answer = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity))

    # then the lot is named by its EPC URN and owner, and every unit made from it is there, each with
    # its exposure and the path of records from M1 to it
    assert answer.errors == []
    lot = answer.data["lot"]
    assert lot["identity"] == urn(world.m1.identity)
    assert lot["owner"] == {"slug": world.m1.owner.slug, "roles": ["material_supplier"]}
    downstream = lot["downstream"]
    # U1-U3 through M2 → C1 → MOD1 (definite), U8 refurbished from U1, U9 U10 (the second brand's, from
    # C1); U4-U6 through C2, made from M2 and M3 with C3 (potential)
    assert (downstream["totalCount"], downstream["definiteCount"], downstream["potentialCount"]) == (9, 6, 3)
    assert serials(answer) == ["U1", "U2", "U3", "U4", "U5", "U6", "U8", "U9", "U10"]
    by_serial = {edge["node"]["unit"]["serial"]: edge["node"] for edge in downstream["edges"]}
    assert by_serial["U4"]["exposure"] == "POTENTIAL"
    assert by_serial["U1"]["exposure"] == "DEFINITE"
    assert by_serial["U1"]["unit"]["identity"] == urn(_unit_identity(world, 1))
    assert [(s["from"], s["to"], s["record"], s["exposure"]) for s in by_serial["U1"]["path"]] == [
        (urn(world.m1.identity), urn(world.m2.identity), "calcination", "DEFINITE"),
        (urn(world.m2.identity), urn(world.c1.identity), "cell line 1", "DEFINITE"),
        (urn(world.c1.identity), urn(world.mod1.identity), "module line", "DEFINITE"),
        (urn(world.mod1.identity), urn(_unit_identity(world, 1)), "build U1", "DEFINITE"),
    ]
    assert [s["exposure"] for s in by_serial["U4"]["path"]] == ["DEFINITE", "POTENTIAL", "POTENTIAL"]
    assert downstream["others"] == []  # a regulator in scope sees every unit itself
    assert downstream["pageInfo"]["hasNextPage"] is False

    # and the exposure argument keeps one kind, counted as such
    potential = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), exposure="POTENTIAL")
    assert serials(potential) == ["U4", "U5", "U6"]
    assert potential.data["lot"]["downstream"]["totalCount"] == 3


def _unit_identity(world: SimpleNamespace, n: int) -> str:
    from packs.models import Unit

    return Unit.objects.get(pk=world.u[n]).identity


def test_downstream_pages_with_cursors(live_server, world):
    key = token(world.regulator)
    first = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), first=4)
    page = first.data["lot"]["downstream"]
    assert serials(first) == ["U1", "U2", "U3", "U4"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 9  # the whole downstream's count, on every page

    second = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), first=4, after=page["pageInfo"]["endCursor"])
    assert serials(second) == ["U5", "U6", "U8", "U9"]
    # an edge's own cursor continues after that edge
    middle = page["edges"][1]["cursor"]
    assert serials(ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), first=2, after=middle)) == ["U3", "U4"]


def test_unit_upstream_is_every_lot_at_any_depth_and_siblings_page(live_server, world):
    key = token(world.brand)

    answer = ask(live_server, key, UNIT, unit="U4", first=1)

    assert answer.errors == []
    unit = answer.data["unit"]
    assert unit["identity"] == urn(_unit_identity(world, 4))
    # U4 was made (work order, potential) from C2 and C4; C2 from M2 and M3; M2 from M1
    assert sorted(lot["code"] for lot in unit["upstream"]) == ["C2", "C4", "M1", "M2", "M3"]
    assert {lot["code"]: lot["owner"]["slug"] for lot in unit["upstream"]}["C2"] == world.c2.owner.slug
    # its siblings share C2 or C4: U5 and U6 (the work order), U7 (built from C4); a page of one
    assert [e["node"]["serial"] for e in unit["siblings"]["edges"]] == ["U5"]
    after = unit["siblings"]["pageInfo"]["endCursor"]
    rest = ask(live_server, key, UNIT, unit="U4", first=10, after=after).data["unit"]["siblings"]
    assert [e["node"]["serial"] for e in rest["edges"]] == ["U6", "U7"]
    assert rest["pageInfo"]["hasNextPage"] is False


def test_node_finds_lots_units_and_organisations_by_global_id(live_server, world):
    key = token(world.regulator)
    unit = ask(live_server, key, UNIT, unit=urn(_unit_identity(world, 1))).data["unit"]
    node = """query Node($id: ID!) { node(id: $id) { id __typename
      ... on Lot { code owner { id slug } } ... on Unit { serial } ... on Organisation { slug } } }"""

    lot = ask(live_server, key, node, id=unit["upstream"][0]["id"]).data["node"]
    assert (lot["__typename"], lot["code"]) == ("Lot", "MOD1")
    assert ask(live_server, key, node, id=unit["id"]).data["node"]["serial"] == "U1"
    organisation = ask(live_server, key, node, id=lot["owner"]["id"]).data["node"]
    assert organisation == {"id": lot["owner"]["id"], "__typename": "Organisation", "slug": world.mod1.owner.slug}


def test_start_inquiry_records_a_regulators_inquiry_and_refuses_with_typed_errors(live_server, world):
    mutation = """mutation Inquire($subject: String!, $description: String!) {
      startInquiry(subject: $subject, description: $description) {
        findingId investigationId runId errors { code message field } } }"""
    regulator = token(world.regulator)

    # a regulator's QA engineer records an inquiry on a lot: its finding, investigation and run
    done = ask(live_server, regulator, mutation, subject=urn(world.c1.identity), description="debris reported")
    payload = done.data["startInquiry"]
    assert payload["errors"] == []
    finding = Finding.objects.get(pk=payload["findingId"])
    assert (finding.inquiry, finding.owner_id, finding.subject_lot_id) == (True, world.regulator.pk, world.c1.pk)
    assert int(payload["investigationId"]) == finding.investigation.pk
    assert payload["runId"] is not None

    # refusals are payload errors with the domain's codes, and write nothing
    before = written()
    brand = ask(live_server, token(world.brand), mutation, subject=urn(world.c1.identity), description="x")
    assert [e["code"] for e in brand.data["startInquiry"]["errors"]] == ["not_a_regulator"]
    viewer = token(world.regulator, role=MemberRole.VIEWER)
    assert _codes(ask(live_server, viewer, mutation, subject=urn(world.c1.identity), description="x")) == ["read_only"]
    unknown = ask(live_server, regulator, mutation, subject="urn:epc:class:lgtin:4012345.012345.NOPE", description="x")
    assert _codes(unknown) == ["unknown_subject"]
    malformed = ask(live_server, regulator, mutation, subject="urn:epc:id:sgtin:12", description="x")
    assert _codes(malformed) == ["invalid_identifier"]
    assert _codes(ask(live_server, regulator, mutation, subject=urn(world.c1.identity), description=" ")) == ["blank"]
    long = ask(live_server, regulator, mutation, subject=urn(world.c1.identity), description="x" * 20_001)
    assert _codes(long) == ["max_length"]
    assert written() == before


def _codes(answer: Answer) -> list[str]:
    return [e["code"] for e in answer.data["startInquiry"]["errors"]]


# --- who sees what ------------------------------------------------------------------------------------


def test_a_brands_query_of_a_shared_cell_lot_shows_only_what_the_policy_allows(live_server, world):
    # given cell lot C1 went into both brands' units (U1-U3 and U8 the first's; U9 and U10 the second's)
    lot = urn(world.c1.identity)

    # when each asks for C1's downstream
    first = ask(live_server, token(world.brand), DOWNSTREAM, lot=lot).data["lot"]["downstream"]
    second = ask(live_server, token(world.other_brand), DOWNSTREAM, lot=lot).data["lot"]["downstream"]
    maker = ask(live_server, token(world.cell_maker), DOWNSTREAM, lot=lot).data["lot"]["downstream"]
    regulator = ask(live_server, token(world.regulator), DOWNSTREAM, lot=lot).data["lot"]["downstream"]

    # then each brand sees its own units only, counted alone; the other's are neither edges nor counts
    assert [e["node"]["unit"]["serial"] for e in first["edges"]] == ["U1", "U2", "U3", "U8"]
    assert (first["totalCount"], first["others"]) == (4, [])
    assert [e["node"]["unit"]["serial"] for e in second["edges"]] == ["U9", "U10"]
    assert (second["totalCount"], second["others"]) == (2, [])
    # the cell maker sees no serial, only how many units of each customer carry its lot
    assert (maker["edges"], maker["totalCount"]) == ([], 0)
    assert sorted((o["organisation"]["slug"], o["definiteCount"]) for o in maker["others"]) == sorted(
        [(world.brand.slug, 4), (world.other_brand.slug, 2)]
    )
    # a regulator in scope sees them all
    assert regulator["totalCount"] == 6 and len(regulator["edges"]) == 6


def test_a_lot_the_caller_may_not_trace_is_null_as_an_unknown_one_is(live_server, world):
    # C4 went only into the first brand's units: the second brand neither made, received nor used it
    other = token(world.other_brand)
    refused = ask(live_server, other, DOWNSTREAM, lot=urn(world.c4.identity))
    unknown = ask(live_server, other, DOWNSTREAM, lot="urn:epc:class:lgtin:4012345.012345.NOPE")
    assert refused.data == unknown.data == {"lot": None}
    assert refused.errors == unknown.errors == []
    # a unit of another brand too, by URN or by node id
    assert ask(live_server, other, UNIT, unit=urn(_unit_identity(world, 1))).data == {"unit": None}
    unit_id = ask(live_server, token(world.brand), UNIT, unit="U1").data["unit"]["id"]
    assert ask(live_server, other, "query($id: ID!) { node(id: $id) { id } }", id=unit_id).data == {"node": None}


def test_anonymous_and_bad_tokens_are_refused_with_no_data(live_server, world):
    query = '{ lot(identifier: "M1") { id } __schema { queryType { name } } }'
    for key in (None, "not-a-token"):
        response = requests.post(
            f"{live_server.url}/graphql/",
            json={"query": query},
            headers={"Authorization": f"Token {key}"} if key else {},
            timeout=60,
        )
        assert response.status_code == 401
        assert "data" not in response.json()
        assert response.json()["errors"][0]["extensions"]["code"] in ("not_authenticated", "authentication_failed")
    # signed in, introspection is answered
    answer = ask(live_server, token(world.brand), "{ __schema { queryType { name } } }")
    assert answer.data == {"__schema": {"queryType": {"name": "Query"}}}


def test_malformed_identifiers_and_arguments_get_specific_errors(live_server, world):
    key = token(world.regulator)
    malformed = ask(live_server, key, DOWNSTREAM, lot="urn:epc:class:lgtin:12")
    assert codes(malformed) == ["invalid_identifier"] and malformed.data == {"lot": None}
    too_many = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), first=1001)
    assert codes(too_many) == ["first_too_large"] and "at most 1,000" in too_many.errors[0]["message"]
    bad_cursor = ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), after="bm90IGEgY3Vyc29y")
    assert codes(bad_cursor) == ["invalid_cursor"]
    nul = ask(live_server, key, DOWNSTREAM, lot="M1\x00")
    assert codes(nul) == ["control_character"]


# --- protection -----------------------------------------------------------------------------------------


def test_a_query_over_the_depth_limit_is_refused_naming_it(live_server, world):
    nested = "identity"
    for _ in range(4):
        nested = f"upstream {{ downstream(first: 1) {{ edges {{ node {{ unit {{ {nested} }} }} }} }} }}"
    answer = ask(live_server, token(world.regulator), f'{{ unit(identifier: "U1") {{ {nested} }} }}', validate=False)
    assert codes(answer) == ["query_too_deep"]
    assert f"the depth limit is {MAX_DEPTH}" in answer.errors[0]["message"]
    assert answer.data is None


def test_a_query_over_the_cost_limit_is_refused_naming_it_before_it_runs(live_server, world):
    # every one of a thousand affected units traced backward again
    query = """query Costly($lot: String!) { lot(identifier: $lot) {
      downstream(first: 1000) { edges { node { unit { upstream { identity } } } } } } }"""
    answer = ask(live_server, token(world.regulator), query, lot=urn(world.m1.identity))
    assert codes(answer) == ["query_too_costly"]
    assert f"the cost limit is {MAX_COST:,}" in answer.errors[0]["message"]
    assert answer.errors[0]["extensions"]["measured"] > MAX_COST


def test_the_audit_log_holds_a_regulators_query_with_its_variables(live_server, world):
    key = token(world.regulator)
    ask(live_server, key, DOWNSTREAM, lot=urn(world.m1.identity), first=5)
    entry = AuditEntry.objects.get(action=AuditAction.READ_GRAPHQL)
    assert (entry.organisation_id, entry.source) == (world.regulator.pk, AuditSource.GRAPHQL)
    assert entry.username.startswith("user")
    assert entry.detail["operation"] == "Downstream"
    assert entry.detail["variables"] == {"lot": urn(world.m1.identity), "first": 5}
    assert entry.detail["query"].strip().startswith("query Downstream")
    assert f"lot:{urn(world.m1.identity)}" in entry.identifiers
    # a refused one too, saying why
    ask(live_server, key, '{ lot(identifier: "M1") { nope } }', validate=False)
    refused = AuditEntry.objects.filter(action=AuditAction.READ_GRAPHQL).order_by("-id").first()
    assert refused.detail["refused"] == "invalid_query"


# --- paging at scale ------------------------------------------------------------------------------------


def test_paging_through_ten_thousand_affected_units_returns_each_exactly_once(live_server, world):
    # given a lot that went into 10,000 units in one work order (built set-based, in one record)
    lot = CellLotFactory(code="BIG")
    with transaction.atomic():
        ids = units_create(
            owner=world.brand,
            product_model=world.work_order.product_model,
            work_order=world.work_order,
            serials=[f"B{i:05d}" for i in range(10_000)],
            produced_at=AT + dt.timedelta(days=60),
        )
        transformation_record(
            entry=ledger_append(source="manual", summary="big work order"),
            owner=world.brand,
            kind=RecordKind.WORK_ORDER,
            reference="WO-BIG",
            occurred_at=AT,
            input_lot_ids=[lot.pk],
            output_unit_ids=ids,
        )
    key = token(world.regulator)
    query = """query Page($lot: String!, $after: String) { lot(identifier: $lot) {
      downstream(first: 1000, after: $after) {
        totalCount edges { node { unit { id } } } pageInfo { hasNextPage endCursor } } } }"""

    # when a script follows endCursor to the end
    seen: list[str] = []
    after, pages = None, 0
    while True:
        page = ask(live_server, key, query, lot=urn(lot.identity), after=after).data["lot"]["downstream"]
        assert page["totalCount"] == 10_000
        seen += [edge["node"]["unit"]["id"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then it has read every unit exactly once, in ten pages
    assert pages == 10
    assert len(seen) == len(set(seen)) == 10_000


def test_a_regulator_reads_what_its_grants_cover_and_nothing_else(live_server, world):
    from traceability.access.models import GrantScope
    from traceability.access.services import grant_add

    # a regulator without a grant, one for another market, one for the market the units were sold in
    ungranted = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    elsewhere = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=elsewhere, scope=GrantScope.JURISDICTION, jurisdiction="US")
    market = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=market, scope=GrantScope.JURISDICTION, jurisdiction="CN")  # every consignee is in CN

    for regulator in (ungranted, elsewhere):
        assert ask(live_server, token(regulator), DOWNSTREAM, lot=urn(world.m1.identity)).data == {"lot": None}
    covered = ask(live_server, token(market), DOWNSTREAM, lot=urn(world.m1.identity)).data["lot"]["downstream"]
    assert covered["totalCount"] == 9 and len(covered["edges"]) == 9
