"""/graphql/ as a browser meets it: GraphiQL for a signed-in session, from assets the ledger serves
under its Content-Security-Policy, and session queries that need the CSRF token."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.test import Client
from graphene_django.views import GraphQLView as GrapheneView

from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.test_api_support import member

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[1] / "traceability" / "static" / "graphiql"


def _signed_in(**kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(member(OrganisationFactory(role=Role.REGULATOR)))
    return client


def test_graphiql_is_served_to_a_signed_in_browser_from_local_assets_with_no_inline_script():
    response = _signed_in().get("/graphql/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    page = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/static/graphiql/' in attributes and not body.strip() for attributes, body in scripts)
    assert "cdn" not in page.lower()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]


def test_the_vendored_assets_are_the_published_ones():
    """The files hash to the Subresource Integrity values graphene-django pins for the same versions."""
    pinned = {
        "graphiql.min.js": GrapheneView.graphiql_sri,
        "graphiql.min.css": GrapheneView.graphiql_css_sri,
        "react.production.min.js": GrapheneView.react_sri,
        "react-dom.production.min.js": GrapheneView.react_dom_sri,
    }
    for name, sri in pinned.items():
        digest = base64.b64encode(hashlib.sha256((STATIC / name).read_bytes()).digest()).decode()
        assert f"sha256-{digest}" == sri, name


def test_an_anonymous_browser_is_sent_to_sign_in_and_a_get_without_html_is_refused():
    anonymous = Client().get("/graphql/", HTTP_ACCEPT="text/html")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/signin/?next=")
    script = _signed_in().get("/graphql/?query={__typename}", HTTP_ACCEPT="application/json")
    assert script.status_code == 405 and script.json()["errors"][0]["extensions"]["code"] == "method_not_allowed"
    assert "data" not in script.json()


def test_a_session_posts_queries_with_its_csrf_token_as_graphiql_does():
    client = _signed_in(enforce_csrf_checks=True)
    page = client.get("/graphql/", HTTP_ACCEPT="text/html").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    query = {"query": "{ __typename }"}

    refused = client.post("/graphql/", query, content_type="application/json")
    answered = client.post("/graphql/", query, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)

    assert refused.status_code == 403 and "data" not in refused.json()
    assert answered.status_code == 200 and answered.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"variables": {}}, "no_query"),
        ({"query": "{ lot(identifier: "}, "syntax_error"),
        ({"query": "{ nope }"}, "invalid_query"),
        ({"query": "{ __typename }", "variables": [1]}, "invalid_variables"),
        ({"query": "query A { __typename } query B { __typename }"}, "unknown_operation"),
        ({"query": "query A { __typename }", "operationName": "B"}, "unknown_operation"),
        ({"query": "{" + " ".join(f"a{i}: __typename" for i in range(7_000)) + "}"}, "syntax_error"),  # 21k tokens
    ],
)
def test_a_malformed_request_is_refused_with_a_specific_code(body, code):
    response = _signed_in().post("/graphql/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert "data" not in response.json()


def test_a_member_of_no_organisation_is_refused():
    client = Client()
    client.force_login(member(None))
    response = client.post("/graphql/", {"query": "{ __typename }"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "no_organisation"
