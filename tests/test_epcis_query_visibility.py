"""Which events the EPCIS query interface answers whom (issue 12): the events a party captured, and
the events others captured naming a lot, unit or container it owns or a unit shipped to it."""

from types import SimpleNamespace
from urllib.parse import quote

import pytest

from packs.models import Shipment
from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import capture, document, sgtin, shipping, transformation

pytestmark = pytest.mark.django_db

DISTRIBUTOR = "urn:epc:id:pgln:0614141.00001"


def observation(event_id: str, epcs: list[str], *, at: str) -> dict:
    """An ObjectEvent observing objects (an inspection): it writes nothing of anyone's genealogy."""
    return {
        "type": "ObjectEvent",
        "eventID": event_id,
        "eventTime": f"2024-02-{at}T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "epcList": epcs,
    }


def _world() -> SimpleNamespace:
    """Brand A builds U1 and U2 from lot L1 and ships U1 to a distributor; brand B builds its own V1
    and then observes A's U1 (an inspection of a returned unit, say)."""
    w = SimpleNamespace(a=OrganisationFactory(), b=OrganisationFactory())
    capture(w.a, document(transformation("urn:uuid:a-build", lots=["L1"], outputs=["U1", "U2"], at="01")))
    capture(w.a, document(shipping("urn:uuid:a-ship", [sgtin("U1")], to=DISTRIBUTOR, desadv="D1", at="02")))
    w.distributor = Shipment.objects.get().consignee
    capture(w.b, document(transformation("urn:uuid:b-build", lots=["L9"], outputs=["V1"], at="03")))
    w.observed = capture(w.b, document(observation("urn:uuid:b-observe", [sgtin("U1")], at="04")))
    return w


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [e["eventID"] for e in response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]


def test_another_brands_observation_of_a_unit_is_allowed_and_its_owner_reads_it():
    # given
    w = _world()
    a = client_for(member(w.a))
    # when
    by_epc = a.get(f"/epcis/events?MATCH_epc={sgtin('U1')}")
    anywhere = a.get(f"/epcis/epcs/{quote(sgtin('U1'), safe='')}/events")
    everything = a.get("/epcis/events")
    one = a.get(f"/epcis/events/{quote('urn:uuid:b-observe', safe='')}")
    # then B's observation was captured (the write rules let anyone observe), and A reads it
    assert (w.observed.captured, w.observed.problems) == (1, [])
    assert _ids(by_epc) == ["urn:uuid:a-ship", "urn:uuid:b-observe"]
    assert _ids(anywhere) == ["urn:uuid:a-build", "urn:uuid:a-ship", "urn:uuid:b-observe"]
    assert _ids(everything) == ["urn:uuid:a-build", "urn:uuid:a-ship", "urn:uuid:b-observe"]
    assert one.status_code == 200 and one.json()["epcList"] == ["https://id.gs1.org/01/04012345111118/21/U1"]


def test_the_observer_still_reads_its_own_events_and_not_the_owners():
    # given
    w = _world()
    b = client_for(member(w.b))
    # when
    everything = b.get("/epcis/events")
    by_epc = b.get(f"/epcis/events?MATCH_anyEPC={sgtin('U1')}")
    owners = b.get(f"/epcis/events/{quote('urn:uuid:a-build', safe='')}")
    # then
    assert _ids(everything) == ["urn:uuid:b-build", "urn:uuid:b-observe"]
    assert _ids(by_epc) == ["urn:uuid:b-observe"]
    assert owners.status_code == 404


def test_a_stranger_reads_nothing_of_them_and_a_regulator_everything():
    # given
    _world()
    stranger = client_for(member(OrganisationFactory()))
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    # when
    by_epc = stranger.get(f"/epcis/events?MATCH_anyEPC={sgtin('U1')}")
    everything = stranger.get("/epcis/events")
    one = stranger.get(f"/epcis/events/{quote('urn:uuid:b-observe', safe='')}")
    # then
    assert _ids(by_epc) == [] and _ids(everything) == []
    assert one.status_code == 404
    assert _ids(regulator.get("/epcis/events")) == [
        "urn:uuid:a-build", "urn:uuid:a-ship", "urn:uuid:b-build", "urn:uuid:b-observe",
    ]  # fmt: skip


def test_a_distributor_reads_the_events_naming_the_unit_it_received_and_no_other():
    # given U1 was shipped to the distributor, U2 was not
    w = _world()
    distributor = client_for(member(w.distributor))
    # when
    everything = distributor.get("/epcis/events")
    u2 = distributor.get(f"/epcis/events?MATCH_anyEPC={sgtin('U2')}")
    # then the events naming U1, each showing U1 alone: A's build names U2 as well, which the
    # distributor neither reads in it nor finds it by (that would say U2 exists)
    assert _ids(everything) == ["urn:uuid:a-build", "urn:uuid:a-ship", "urn:uuid:b-observe"]
    build = everything.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]
    assert build["outputEPCList"] == ["https://id.gs1.org/01/04012345111118/21/U1"]
    assert _ids(u2) == []


def test_an_event_id_another_organisation_used_is_a_new_event_and_each_reads_its_own_first():
    # given B's observation of A's U1, "urn:uuid:b-observe"
    w = _world()
    a, b = client_for(member(w.a)), client_for(member(w.b))
    mine = observation("urn:uuid:b-observe", [sgtin("U2")], at="05")
    # when A captures an event of its own under that eventID, twice
    created = a.post("/epcis/events", mine, format="json")
    again = a.post("/epcis/events", mine, format="json")
    # then the first is A's new event (201), the second a repeat of A's own (409)
    assert created.status_code == 201 and created.headers["Location"] == "/epcis/events/urn%3Auuid%3Ab-observe"
    assert again.status_code == 409
    path = f"/epcis/events/{quote('urn:uuid:b-observe', safe='')}"
    u1, u2 = (f"https://id.gs1.org/01/04012345111118/21/{s}" for s in ("U1", "U2"))
    assert a.get(path).json()["epcList"] == [u2] and b.get(path).json()["epcList"] == [u1]
    # and a query by eventID answers A both (B's names A's U1), B its own alone
    query = "/epcis/events?EQ_eventID=urn:uuid:b-observe"
    epcs = [e["epcList"] for e in a.get(query).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
    assert epcs == [[u1], [u2]]
    epcs = [e["epcList"] for e in b.get(query).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
    assert epcs == [[u1]]


def test_pages_run_over_its_own_and_others_events_alike():
    # given
    w = _world()
    a = client_for(member(w.a))
    # when
    pages, url = [], "/epcis/events?perPage=2"
    while url:
        response = a.get(url)
        pages.append(_ids(response))
        url = response.headers["Link"].split(";")[0].strip("<>") if "Link" in response.headers else None
    # then
    assert pages == [["urn:uuid:a-build", "urn:uuid:a-ship"], ["urn:uuid:b-observe"]]


def test_a_page_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    # given
    w = _world()
    for i in range(20):
        capture(w.b, document(observation(f"urn:uuid:b-observe-{i}", [sgtin("U1"), sgtin("U2")], at="05")))
    a = client_for(member(w.a))
    # when / then
    with django_assert_max_num_queries(10):
        response = a.get("/epcis/events?perPage=30")
    assert len(_ids(response)) == 23
