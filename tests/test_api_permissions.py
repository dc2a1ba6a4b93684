"""Who may do what: anonymous, a user without organisation, another organisation, the owner, a regulator.

Refusals are asserted with their code and with nothing written.
"""

import copy

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from suppliers.models import Role
from suppliers.services import api_token_create
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import callers, client_for, member, traced, urn, written
from tests.trace_world import build_world
from traceability.core.models import Job

pytestmark = pytest.mark.django_db

OWNER_ONLY = {"anonymous": 401, "no_organisation": 403, "other": 404, "owner": 200, "regulator": 200}

READS = [
    "/api/v1/findings/{finding}/",
    "/api/v1/investigations/{investigation}/",
    "/api/v1/runs/{run}/",
    "/api/v1/runs/{run}/units/",
    "/api/v1/runs/{run}/consignees/",
    "/api/v1/runs/{run}/breakdown/",
    "/api/v1/units/U2/backward/",
    "/api/v1/units/U2/siblings/",
    "/api/v1/jobs/{job}/",
    "/api/v1/jobs/{job}/download/",
]

WRITES = [
    ("/api/v1/investigations/{investigation}/transitions/", {"to": "under_review"}, 200),
    ("/api/v1/investigations/{investigation}/runs/", None, 202),
    ("/api/v1/investigations/{investigation}/exports/", {"format": "csv"}, 202),
]

CODES = {
    "anonymous": "not_authenticated",
    "no_organisation": "no_organisation",
    "other": "not_found",
    "regulator": "read_only",
}


@pytest.fixture(scope="module")
def module_world(module_db, django_db_blocker, tmp_path_factory):
    """A traced investigation of the world's brand, with a finished CSV export; a user per caller.

    Built once for the module: 82 cases read it, and building it for each was three quarters of the file's time.
    """
    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")):
        with django_db_blocker.unblock():
            w = build_world()
            users = {name: client.user for name, client in callers(w).items()}
            users["no_organisation"] = member(None)
            owner = client_for(users["owner"])
            created = traced(owner, w)
            export = owner.post(
                f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"}, format="json"
            )
            run_job(Job.objects.get(pk=export.json()["id"]))
        ids = {"finding": created["id"], "investigation": created["investigation"], "run": created["run"]}
        yield w, users, {**ids, "job": export.json()["id"]}


@pytest.fixture()
def world(module_world):
    """The module's world, copied for the test (as Django copies ``setUpTestData``'s), and a new client per
    caller: what a test changes in memory does not reach the next one, and the database is rolled back."""
    w, users, ids = copy.deepcopy(module_world)
    return w, {name: client_for(user) for name, user in users.items()}, ids


@pytest.mark.parametrize("caller", list(OWNER_ONLY))
@pytest.mark.parametrize("url", READS)
def test_reads_are_for_the_owner_and_regulators(world, url, caller):
    # given
    w, clients, ids = world
    before = written()
    # when
    response = clients[caller].get(url.format(**ids))
    # then
    assert response.status_code == OWNER_ONLY[caller]
    if response.status_code >= 400:
        expected = "unknown_subject" if caller == "other" and "/units/U2/" in url else CODES[caller]
        assert response.json()["code"] == expected
    assert written() == before


@pytest.mark.parametrize("caller", list(OWNER_ONLY))
@pytest.mark.parametrize(("url", "body", "status"), WRITES)
def test_writes_are_for_the_owner_only(world, url, body, status, caller):
    # given
    w, clients, ids = world
    before = written()
    # when
    response = clients[caller].post(url.format(**ids), body, format="json")
    # then
    if caller == "owner" or (caller == "regulator" and "/exports/" in url):
        # a regulator exports what its grant lets it read: a file of its own, the record unchanged
        assert response.status_code == status
        assert written() != before
        if caller == "regulator":
            assert Job.objects.get(pk=response.json()["id"]).owner.slug != w.brand.slug
    else:
        assert (
            response.status_code == {"anonymous": 401, "no_organisation": 403, "other": 404, "regulator": 403}[caller]
        )
        assert response.json()["code"] == CODES[caller]
        assert written() == before


@pytest.mark.parametrize(
    ("caller", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("no_organisation", 403, "no_organisation"),
        ("regulator", 201, None),  # its inquiry: its `all` grant covers any subject
        # another brand may not trace the world brand's cell lot: unknown to it, as if it did not exist
        ("other", 400, "unknown_subject"),
        ("owner", 201, None),
    ],
)
def test_recording_a_finding_is_for_members_of_an_organisation_and_a_regulators_is_an_inquiry(
    world, caller, status, code
):
    # given
    w, clients, ids = world
    before = written()
    body = {"subject": urn(w.c4.identity), "category": "other", "severity": "low", "description": "x"}
    # when
    response = clients[caller].post("/api/v1/findings/", body, format="json")
    # then
    assert response.status_code == status
    if code:
        assert response.json()["code"] == code
        assert written() == before
    else:
        assert response.json()["owner"] == clients[caller].user.memberships.get().organisation.slug
        assert response.json()["inquiry"] is (caller == "regulator")


@pytest.mark.parametrize(
    ("caller", "status", "visible"),
    [
        ("anonymous", 401, None),
        ("no_organisation", 403, None),
        ("other", 200, 0),
        ("owner", 200, 1),
        ("regulator", 200, 1),
    ],
)
def test_the_findings_list_shows_what_the_caller_may_see(world, caller, status, visible):
    # given
    w, clients, ids = world
    # when
    response = clients[caller].get("/api/v1/findings/")
    # then
    assert response.status_code == status
    if visible is not None:
        assert [f["id"] for f in response.json()["results"]] == [ids["finding"]][:visible]


def test_a_regulator_sees_every_organisations_findings(world):
    # given two brands' findings: the world's, and another's
    first, _, _ = world
    second = build_world()
    traced(client_for(member(second.brand)), second)
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    # when
    response = regulator.get("/api/v1/findings/")
    # then
    assert sorted(f["owner"] for f in response.json()["results"]) == sorted([first.brand.slug, second.brand.slug])


@pytest.mark.parametrize(("url", "body", "status"), WRITES)
def test_another_organisation_learns_nothing_from_an_invalid_body(world, url, body, status):
    # given
    w, clients, ids = world
    before = written()
    # when
    response = clients["other"].post(url.format(**ids), {"to": "nowhere", "format": "nothing"}, format="json")
    # then it is told "not found", not what was wrong with the body
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert written() == before


def _token_client(user) -> APIClient:
    client = APIClient()
    _, key = api_token_create(membership=user.memberships.get())
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_token_says_who_calls_and_for_whom_in_one_query(world):
    # given a regulator's script holding a token
    client = _token_client(member(OrganisationFactory(role=Role.REGULATOR)))
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/findings/")
    # then the token's query read the membership and organisation too: none reads them again
    assert response.status_code == 200
    assert [q["sql"] for q in queries if "suppliers_apitoken" in q["sql"]] != []
    again = [q["sql"] for q in queries if "suppliers_membership" in q["sql"] and "suppliers_apitoken" not in q["sql"]]
    assert again == []


def test_a_token_of_a_deactivated_member_is_refused():
    # given a token of a member (a token always belongs to a membership) who is then deactivated
    user = member(OrganisationFactory(role=Role.BRAND))
    client = _token_client(user)
    user.is_active = False
    user.save()
    # when
    response = client.get("/api/v1/findings/")
    # then
    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")


def test_a_session_of_a_user_acting_for_no_organisation_is_refused():
    # given
    client = client_for(member(None))
    # when
    response = client.get("/api/v1/findings/")
    # then
    assert (response.status_code, response.json()["code"]) == (403, "no_organisation")


def test_a_signed_in_browser_session_calls_for_its_organisation(world):
    # given a QA engineer of the world's brand (which has a finding) signed in with a session, as
    # the docs page's "Try it out" calls
    from django.test import Client

    w, _, ids = world
    client = Client()
    client.force_login(member(w.brand))
    # when
    response = client.get("/api/v1/findings/")
    # then the session's lazy user is read like any other: the brand's finding, no server error
    assert response.status_code == 200
    assert [finding["id"] for finding in response.json()["results"]] == [ids["finding"]]


def test_the_world_is_as_built_whatever_the_tests_before_wrote(world):
    # given the tests above, among them writes that succeeded (a transition, a run, an export, findings)
    # when / then each was rolled back: the module's world is as its fixture built it
    assert written() == {"Finding": 1, "Investigation": 1, "InvestigationTransition": 3, "TraceRun": 1, "Job": 2}
