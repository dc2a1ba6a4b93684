"""The EPCIS query interface: GET /epcis/events and its relatives, answering EPCISQueryDocuments."""

import copy
import json
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from django.core.management import CommandError, call_command

from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import aggregation, capture, document, sgtin, sscc, transformation
from traceability.events.models import EpcisEvent

pytestmark = pytest.mark.django_db

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "traceability/events/standard/EPCIS-JSON-Schema.json").read_text()
)


@pytest.fixture(scope="module")
def module_world(module_db, django_db_blocker):
    """A brand that captured a build, a packing and a declared-erroneous build, and one of its users.

    Built once for the module's cases, each of which reads it (two also write, and are rolled back).
    """
    with django_db_blocker.unblock():
        brand = OrganisationFactory()
        capture(
            brand,
            document(
                transformation("urn:uuid:b1", lots=["L1"], outputs=["U1", "U2"], at="01"),
                aggregation("urn:uuid:a1", "ADD", sscc("0000000001"), [sgtin("U1"), sgtin("U2")], at="02"),
                transformation("urn:uuid:b2", lots=["L2"], outputs=["U3"], at="03"),
            ),
        )
        declared = transformation("urn:uuid:b2", lots=["L2"], outputs=["U3"], at="03")
        declared["errorDeclaration"] = {"declarationTime": "2024-02-20T00:00:00Z", "reason": "incorrect_data"}
        capture(brand, document(declared))
        return brand, member(brand)


@pytest.fixture()
def world(module_world):
    """The brand (copied for the test, as Django copies ``setUpTestData``'s) and a new client of its user."""
    brand, user = copy.deepcopy(module_world)
    return brand, client_for(user)


def _ids(response) -> list[str]:
    return [e["eventID"] for e in response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["urn:uuid:b1", "urn:uuid:a1", "urn:uuid:b2"]),
        ("eventType=AggregationEvent", ["urn:uuid:a1"]),
        ("eventType=TransformationEvent|AggregationEvent", ["urn:uuid:b1", "urn:uuid:a1", "urn:uuid:b2"]),
        ("GE_eventTime=2024-02-02T00:00:00Z&LT_eventTime=2024-02-03T00:00:00Z", ["urn:uuid:a1"]),
        ("EQ_bizStep=packing", ["urn:uuid:a1"]),
        ("EQ_bizStep=urn:epcglobal:cbv:bizstep:commissioning", ["urn:uuid:b1", "urn:uuid:b2"]),
        ("EQ_action=ADD", ["urn:uuid:a1"]),
        (f"MATCH_epc={sgtin('U1')}", ["urn:uuid:a1"]),
        (f"MATCH_anyEPC={sgtin('U1')}", ["urn:uuid:b1", "urn:uuid:a1"]),
        (f"MATCH_outputEPC={sgtin('U3')}|{sgtin('U2')}", ["urn:uuid:b1", "urn:uuid:b2"]),
        ("MATCH_outputEPC=https://id.gs1.org/01/04012345111118/21/U3", ["urn:uuid:b2"]),
        (f"MATCH_parentID={sscc('0000000001')}", ["urn:uuid:a1"]),
        ("MATCH_anyEPC=urn:epc:idpat:sgtin:4012345.011111.*", ["urn:uuid:b1", "urn:uuid:a1", "urn:uuid:b2"]),
        ("MATCH_inputEPCClass=urn:epc:class:lgtin:4012345.022222.L1", ["urn:uuid:b1"]),
        ("MATCH_anyEPCClass=urn:epc:class:lgtin:4012345.022222.L2", ["urn:uuid:b2"]),
        ("MATCH_epcClass=urn:epc:class:lgtin:4012345.022222.L2", []),
        ("EQ_eventID=urn:uuid:a1|urn:uuid:b2", ["urn:uuid:a1", "urn:uuid:b2"]),
        ("EXISTS_errorDeclaration=true", ["urn:uuid:b2"]),
        ("GE_recordTime=2000-01-01T00:00:00Z", ["urn:uuid:b1", "urn:uuid:a1", "urn:uuid:b2"]),
    ],
)
def test_the_query_parameters_select_events(world, query, expected):
    # given
    _, client = world
    # when
    response = client.get(f"/epcis/events?{query.replace('+', '%2B')}")
    # then
    assert response.status_code == 200, response.json()
    assert _ids(response) == expected
    jsonschema.Draft7Validator(SCHEMA).validate(response.json())


def test_pages_follow_the_link_header_and_add_up(world):
    # given
    _, client = world
    # when
    first = client.get("/epcis/events?perPage=2")
    following = first.headers["Link"].split(";")[0].strip("<>")
    second = client.get(following)
    # then
    assert _ids(first) == ["urn:uuid:b1", "urn:uuid:a1"] and _ids(second) == ["urn:uuid:b2"]
    assert 'rel="next"' in first.headers["Link"] and "Link" not in second.headers


def test_a_page_token_belongs_to_its_query(world):
    # given
    _, client = world
    token = client.get("/epcis/events?perPage=1").headers["Link"].split("nextPageToken=")[1].split(">")[0]
    # when
    other = client.get(f"/epcis/events?perPage=1&eventType=ObjectEvent&nextPageToken={token}")
    forged = client.get("/epcis/events?perPage=1&nextPageToken=abc")
    # then
    assert other.status_code == 400 and "belongs to another query" in other.json()["detail"]
    assert forged.status_code == 400 and "not a token this repository issued" in forged.json()["detail"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("GE_eventTime=yesterday", "GE_eventTime: 'yesterday' is not a date-time"),
        ("eventType=Event", "eventType: 'Event' is not an event type"),
        ("perPage=0", "perPage: '0' is not a whole number from 1 to 1000"),
        ("EQ_colour=red", "EQ_colour: is not a query parameter"),
        ("MATCH_epc=urn:epc:id:sgtin:4012345", "MATCH_epc:"),
    ],
)
def test_a_bad_query_parameter_is_named(world, query, fragment):
    # given
    _, client = world
    # when
    response = client.get(f"/epcis/events?{query}")
    # then
    assert response.status_code == 400
    assert response.json()["type"] == "epcisException:QueryParameterException"
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("epc_format", "expected"),
    [
        ("Always_GS1_Digital_Link", "https://id.gs1.org/01/04012345111118/21/U1"),
        ("Always_EPC_URN", "urn:epc:id:sgtin:4012345.011111.U1"),
        ("Never_Translates", "urn:epc:id:sgtin:4012345.011111.U1"),
    ],
)
def test_identifiers_come_in_the_format_asked_for(world, epc_format, expected):
    # given
    _, client = world
    # when
    response = client.get("/epcis/events?EQ_eventID=urn:uuid:a1", headers={"GS1-EPC-Format": epc_format})
    # then
    (event,) = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert event["childEPCs"][0] == expected
    assert response.headers["GS1-EPC-Format"] == epc_format


def test_one_event_its_epcs_events_and_the_event_types(world):
    # given
    _, client = world
    # when
    one = client.get(f"/epcis/events/{quote('urn:uuid:b2', safe='')}")
    missing = client.get("/epcis/events/urn:uuid:nothing")
    by_epc = client.get(f"/epcis/epcs/{quote(sgtin('U2'), safe='')}/events")
    types = client.get("/epcis/eventTypes")
    # then
    assert one.status_code == 200 and one.json()["eventID"] == "urn:uuid:b2"
    assert one.json()["errorDeclaration"]["reason"] == "incorrect_data"
    assert missing.status_code == 404
    assert _ids(by_epc) == ["urn:uuid:b1", "urn:uuid:a1"]
    assert set(types.json()["member"]) == {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }


def test_an_organisation_reads_its_own_events_and_a_regulator_all(world):
    # given
    _, _ = world
    other = client_for(member(OrganisationFactory()))
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    # when / then
    assert _ids(other.get("/epcis/events")) == []
    assert len(_ids(regulator.get("/epcis/events"))) == EpcisEvent.objects.count() == 3


def test_a_page_costs_the_same_queries_whatever_its_size(world, django_assert_max_num_queries):
    # given
    brand, client = world
    capture(brand, document(*(transformation(f"urn:uuid:x{i}", lots=["L9"], outputs=[f"V{i}"]) for i in range(40))))
    # when / then
    with django_assert_max_num_queries(8):
        response = client.get("/epcis/events?perPage=40")
    assert len(_ids(response)) == 40


def test_export_epcis_writes_the_events_back_out_as_a_document_that_captures_again(world, tmp_path):
    # given
    brand, _ = world
    path = tmp_path / "out.jsonld"
    # when
    call_command("export_epcis", "--owner", brand.slug, "--output", str(path), "--no-progress", stdout=StringIO())
    written = json.loads(path.read_text())
    again = capture(brand, path.read_bytes())
    # then
    jsonschema.Draft7Validator(SCHEMA).validate(written)
    assert [e["eventID"] for e in written["epcisBody"]["eventList"]] == ["urn:uuid:b1", "urn:uuid:a1", "urn:uuid:b2"]
    assert (again.captured, again.repeated, again.problems) == (0, 3, [])


def test_export_epcis_selects_with_the_query_parameters_and_names_a_bad_one(world, tmp_path):
    # given
    brand, _ = world
    out = StringIO()
    # when
    call_command("export_epcis", "--owner", brand.slug, "--query", "eventType=AggregationEvent", stdout=out)
    # then
    assert [e["eventID"] for e in json.loads(out.getvalue())["epcisBody"]["eventList"]] == ["urn:uuid:a1"]
    with pytest.raises(CommandError, match="EQ_colour: is not a query parameter"):
        call_command("export_epcis", "--owner", brand.slug, "--query", "EQ_colour=red", stdout=StringIO())


def test_the_world_is_as_captured_whatever_the_tests_before_wrote(world):
    # given the tests above, two of which captured more events
    # when / then each was rolled back: the module's three events, as its fixture captured them
    events = sorted(EpcisEvent.objects.values_list("event_id", flat=True))
    assert events == ["urn:uuid:a1", "urn:uuid:b1", "urn:uuid:b2"]
