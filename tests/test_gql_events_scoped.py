"""An object's EPCIS events through the graph, as a regulator whose grants are narrower than the
ledger (Germany's jurisdiction; one investigation): exactly what the access policy's
``event_reader`` lets it read, each event in the part the EPCIS query interface shows it, and
nothing beyond its grant. The world is the authorisation matrix's (tests/test_authorisation_matrix_endpoints.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from suppliers.models import Membership
from suppliers.services import api_token_issue
from tests.test_api_support import client_for
from tests.test_authorisation_matrix_endpoints import (  # noqa: F401  (module_world is a fixture)
    A1,
    A3,
    B1,
    SHARED_LOT,
    leaked,
    module_world,
    readable_events,
)

pytestmark = pytest.mark.django_db

EVENTS = """query E($id: String!) { %s(identifier: $id) { events(first: 100) {
  edges { node } pageInfo { hasNextPage } } } }"""
NAMED = {"A1": A1, "A3": A3, "B1": B1, "the shared lot": SHARED_LOT}

# What the graph answers each regulator: the events of the object (as the EPCIS query interface
# answers MATCH_anyEPC / MATCH_anyEPCClass), or null where the graph's lookup does not let it name
# the object (a unit it may not trace backward: ``upstream_traceable``). Germany's regulator: A1,
# in A's carton sold there, and the lot upstream of it; not A3 (sold in China) or B's B1. The
# investigation's: its subject, the shared lot, and every unit its trace reaches (A's and B's).
# name           Germany  investigation
ANSWERS = {
    "A1": ("events", "events"),
    "A3": (None, "events"),
    "B1": (None, "events"),
    "the shared lot": ("events", "events"),
}


def _graph(user: Any, named: str) -> tuple[dict[str, Any] | None, str]:
    key = api_token_issue(membership=Membership.objects.get(user=user))
    kind = "lot" if named == "the shared lot" else "unit"
    response = Client().post(
        "/graphql/",
        {"query": EVENTS % kind, "variables": {"id": NAMED[named]}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"][kind], response.content.decode()


def _epcis(user: Any, named: str) -> list[dict[str, Any]]:
    match = "MATCH_anyEPCClass" if named == "the shared lot" else "MATCH_anyEPC"
    response = client_for(user).get(
        "/epcis/events", {match: NAMED[named], "perPage": 100}, HTTP_GS1_EPC_FORMAT="Always_EPC_URN"
    )
    assert response.status_code == 200, response.json()
    return response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("named", list(ANSWERS))
@pytest.mark.parametrize("actor", ["regulator_jurisdiction", "regulator_investigation"])
def test_a_scoped_regulator_reads_an_objects_events_as_the_epcis_query_shows_them_and_nothing_beyond(
    module_world, actor, named  # noqa: F811  (the imported fixture)
):
    # given the matrix's world and a regulator with Germany's grant or A's investigation's
    w, users = module_world
    expected = ANSWERS[named][actor == "regulator_investigation"]

    # when it asks the graph for the object's events, and the EPCIS query interface for the same
    found, text = _graph(users[actor], named)
    shown = _epcis(users[actor], named)

    # then the graph carries nothing its grant does not cover
    assert not leaked(text, actor, w, asked=(NAMED[named],))
    if expected is None:
        assert found is None
        return
    # and the events are those the query interface shows it, each in the same part, in the same order
    events = [edge["node"] for edge in found["events"]["edges"]]
    assert events == shown and found["events"]["pageInfo"] == {"hasNextPage": False}
    ids = {event["eventID"] for event in events}
    assert ids and ids <= readable_events(actor, w)
    # another organisation's event is there only in its part naming what the grant covers
    if actor == "regulator_jurisdiction" and named == "the shared lot":
        (b_build,) = [event for event in events if event["eventID"] == "urn:uuid:b-build"]
        assert "outputEPCList" not in b_build and json.dumps(b_build).count(B1.rsplit(".", 1)[-1]) == 0
