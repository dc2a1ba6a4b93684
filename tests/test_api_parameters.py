"""Query parameters: an endpoint answers 400 to one it does not document, and takes the ones it does.

A misspelt filter (``?serail=``) or one an endpoint does not have (``?owner=``) would otherwise be
ignored silently, answering as if unfiltered. EPCIS (``/epcis/``) follows the standard's own rules.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from suppliers.models import MemberRole, Membership
from tests.test_api_support import client_for, member, openapi_schema, run_job, traced, written
from tests.trace_world import build_world
from traceability.core.models import Job
from traceability.investigations.evidence import finding_attach
from traceability.investigations.models import Finding

pytestmark = pytest.mark.django_db

# (method, path as the schema spells it, the URL to call)
OPERATIONS = [
    ("get", "/api/v1/findings/", "/api/v1/findings/"),
    ("post", "/api/v1/findings/", "/api/v1/findings/"),
    ("get", "/api/v1/findings/{id}/", "/api/v1/findings/{finding}/"),
    ("post", "/api/v1/findings/{id}/attachments/", "/api/v1/findings/{finding}/attachments/"),
    (
        "get",
        "/api/v1/findings/{id}/attachments/{attachment}/",
        "/api/v1/findings/{finding}/attachments/{attachment}/",
    ),
    ("get", "/api/v1/findings/{id}/responses/", "/api/v1/findings/{finding}/responses/"),
    ("post", "/api/v1/findings/{id}/responses/", "/api/v1/findings/{finding}/responses/"),
    ("get", "/api/v1/supplier/findings/", "/api/v1/supplier/findings/"),
    ("get", "/api/v1/lots/{ident}/inspections/", "/api/v1/lots/M1/inspections/"),
    ("post", "/api/v1/lots/{ident}/inspections/", "/api/v1/lots/M1/inspections/"),
    (
        "get",
        "/api/v1/lots/{ident}/inspections/{inspection}/document/",
        "/api/v1/lots/M1/inspections/1/document/",
    ),
    ("get", "/api/v1/investigations/{id}/", "/api/v1/investigations/{investigation}/"),
    ("post", "/api/v1/investigations/{id}/transitions/", "/api/v1/investigations/{investigation}/transitions/"),
    ("post", "/api/v1/investigations/{id}/runs/", "/api/v1/investigations/{investigation}/runs/"),
    ("post", "/api/v1/investigations/{id}/exports/", "/api/v1/investigations/{investigation}/exports/"),
    ("get", "/api/v1/runs/{id}/", "/api/v1/runs/{run}/"),
    ("get", "/api/v1/runs/{id}/units/", "/api/v1/runs/{run}/units/"),
    ("get", "/api/v1/runs/{id}/consignees/", "/api/v1/runs/{run}/consignees/"),
    ("get", "/api/v1/runs/{id}/breakdown/", "/api/v1/runs/{run}/breakdown/"),
    ("get", "/api/v1/units/{ident}/backward/", "/api/v1/units/U2/backward/"),
    ("get", "/api/v1/units/{ident}/siblings/", "/api/v1/units/U2/siblings/"),
    ("get", "/api/v1/units/{ident}/certificates/", "/api/v1/units/U2/certificates/"),
    ("get", "/api/v1/jobs/{id}/", "/api/v1/jobs/{job}/"),
    ("get", "/api/v1/jobs/{id}/download/", "/api/v1/jobs/{job}/download/"),
    ("get", "/api/v1/csv/{kind}/template/", "/api/v1/csv/shipments/template/"),
    ("get", "/api/v1/audit/", "/api/v1/audit/"),
    ("post", "/api/v1/csv/{kind}/", "/api/v1/csv/shipments/"),
]


@pytest.fixture()
def world(settings, tmp_path):
    """A traced finding on M1 with a piece of evidence and a finished CSV export; the owner's admin's client."""
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    qa = member(None)
    Membership.objects.create(user=qa, organisation=w.brand, role=MemberRole.ADMIN)  # reads the audit trail too
    client = client_for(qa)
    created = traced(client, w)
    upload = SimpleUploadedFile("report.pdf", b"%PDF-1.7\n%%EOF\n")
    attachment, _ = finding_attach(finding=Finding.objects.get(pk=created["id"]), file=upload, name="r.pdf", by=qa)
    export = client.post(f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"})
    run_job(Job.objects.get(pk=export.json()["id"]))
    ids = {
        "finding": created["id"],
        "attachment": attachment.pk,
        "investigation": created["investigation"],
        "run": created["run"],
        "job": export.json()["id"],
    }
    return w, client, ids


def test_the_cases_here_are_every_operation_of_the_api():
    documented = {
        (method, path)
        for path, operations in openapi_schema()["paths"].items()
        if "/schema/" not in path
        for method in operations
        if method != "parameters"
    }
    assert {(method, path) for method, path, _ in OPERATIONS} == documented


@pytest.mark.parametrize(("method", "path", "url"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_an_unknown_query_parameter_is_refused_naming_it(world, method, path, url):
    # given
    _, client, ids = world
    before = written()
    # when
    response = getattr(client, method)(url.format(**ids) + "?serial=U2")
    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["field"]) == ("unknown_parameter", "serial")
    takes = ", ".join(sorted({p["name"] for p in _query(path, method)} | {"format"}))  # the schema's, and DRF's
    assert body["message"] == f"unknown query parameter 'serial': this endpoint takes {takes}"
    assert body["errors"] == [{"code": "unknown_parameter", "field": "serial", "message": body["message"]}]
    assert written() == before


def test_every_unknown_parameter_is_named():
    # given
    client = client_for(member(build_world().brand))
    # when
    response = client.get("/api/v1/findings/?owner=acme&category=metallic_debris&serial=U2")
    # then
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("owner", "unknown_parameter"),
        ("serial", "unknown_parameter"),
    ]
    assert response.json()["message"] == (
        "unknown query parameter 'owner': this endpoint takes about, category, cursor, format, limit, severity"
    )


def _query(path: str, method: str) -> list[dict]:
    """The query parameters the schema documents for an operation."""
    return [p for p in openapi_schema()["paths"][path][method].get("parameters", []) if p["in"] == "query"]


def _value(parameter: dict) -> str:
    schema = parameter.get("schema", {})
    return str(schema["enum"][0]) if "enum" in schema else {"integer": "1"}.get(schema.get("type"), "x")


@pytest.mark.parametrize(("method", "path", "url"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_query_parameter_the_schema_documents_is_taken(world, method, path, url):
    # given every query parameter the operation documents, and DRF's format
    _, client, ids = world
    query = {p["name"]: _value(p) for p in _query(path, method)}
    # when
    response = getattr(client, method)(url.format(**ids), query_params={**query, "format": "json"})
    # then (an invalid value may be refused, but not as unknown)
    is_json = response.get("Content-Type", "").startswith("application/json")
    assert not (response.status_code == 400 and is_json and response.json()["code"] == "unknown_parameter")


KNOWN = [
    ("/api/v1/findings/", {"category": "metallic_debris", "severity": "critical", "limit": "1"}),
    ("/api/v1/findings/{finding}/", {"format": "json"}),
    ("/api/v1/runs/{run}/units/", {"exposure": "definite", "after": "0", "limit": "1", "consignee": "x"}),
    ("/api/v1/runs/{run}/consignees/", {"limit": "1"}),
    ("/api/v1/units/U2/siblings/", {"after": "0", "limit": "1"}),
]


@pytest.mark.parametrize(("url", "query"), KNOWN)
def test_known_query_parameters_still_work(world, url, query):
    # given
    _, client, ids = world
    # when
    response = client.get(url.format(**ids), query)
    # then
    assert response.status_code == 200, response.json()
    if response.json().get("next"):  # and the cursor the answer hands out is taken too
        assert client.get(response.json()["next"]).status_code == 200
