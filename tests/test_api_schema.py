"""The OpenAPI schema is generated from the code, without warnings, and lists every endpoint."""

from collections import Counter
from urllib.parse import quote

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from packs.models import Unit
from tests.test_api_support import client_for, member, openapi_schema, schema_problems, traced, urn
from tests.trace_world import build_world
from traceability.investigations.evidence import finding_attach
from traceability.investigations.models import Finding, TraceRun

ENDPOINTS = {
    "/api/v1/findings/": {"get", "post"},
    "/api/v1/findings/{id}/": {"get"},
    "/api/v1/findings/{id}/attachments/": {"post"},
    "/api/v1/findings/{id}/attachments/{attachment}/": {"get"},
    "/api/v1/findings/{id}/responses/": {"get", "post"},
    "/api/v1/supplier/findings/": {"get"},
    "/api/v1/lots/{ident}/inspections/": {"get", "post"},
    "/api/v1/lots/{ident}/inspections/{inspection}/document/": {"get"},
    "/api/v1/investigations/{id}/": {"get"},
    "/api/v1/investigations/{id}/transitions/": {"post"},
    "/api/v1/investigations/{id}/runs/": {"post"},
    "/api/v1/investigations/{id}/exports/": {"post"},
    "/api/v1/runs/{id}/": {"get"},
    "/api/v1/runs/{id}/units/": {"get"},
    "/api/v1/runs/{id}/consignees/": {"get"},
    "/api/v1/runs/{id}/breakdown/": {"get"},
    "/api/v1/units/{ident}/backward/": {"get"},
    "/api/v1/units/{ident}/siblings/": {"get"},
    "/api/v1/units/{ident}/certificates/": {"get"},
    "/api/v1/jobs/{id}/": {"get"},
    "/api/v1/jobs/{id}/download/": {"get"},
    "/api/v1/csv/{kind}/template/": {"get"},
    "/api/v1/csv/{kind}/": {"post"},
    "/api/v1/audit/": {"get"},
}


def test_the_schema_generates_without_warnings_validates_and_lists_the_endpoints(tmp_path):
    # given
    target = tmp_path / "schema.yaml"
    # when (--fail-on-warn turns any warning into an error; --validate checks it against OpenAPI 3)
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    # then
    schema = yaml.safe_load(target.read_text())
    api = {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items() if "/schema/" not in path}
    assert api == ENDPOINTS


def test_the_schema_describes_the_error_shape_and_the_unit_filters(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "message", "field"}
    units = schema["paths"]["/api/v1/runs/{id}/units/"]["get"]
    assert {p["name"] for p in units["parameters"]} == {
        "id",
        "after",
        "limit",
        "exposure",
        "product_model",
        "work_order",
        "consignee",
    }
    findings = schema["paths"]["/api/v1/findings/"]["get"]
    assert {p["name"] for p in findings["parameters"]} >= {"category", "severity", "cursor", "limit"}


def test_a_runs_consignees_declare_their_ship_to_countries_beside_the_fields_they_had(tmp_path):
    # given
    target = tmp_path / "schema.yaml"
    # when
    call_command("spectacular", "--file", str(target))
    # then the field is added, and none of those before it changed name
    consignee = yaml.safe_load(target.read_text())["components"]["schemas"]["Consignee"]
    assert list(consignee["properties"]) == [
        "organisation",
        "name",
        "roles",
        "pgln",
        "units",
        "first_shipped_at",
        "last_shipped_at",
        "ship_to_countries",
    ]
    assert consignee["properties"]["ship_to_countries"]["type"] == "array"
    assert consignee["properties"]["ship_to_countries"]["items"] == {"type": "string"}
    assert "ship_to_countries" in consignee["required"]


def _operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, operations in schema["paths"].items()
        if "/schema/" not in path
        for method, operation in operations.items()
        if method != "parameters"
    }


def test_every_operation_has_a_description_of_its_own(tmp_path):
    # given
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target))
    # when
    operations = _operations(yaml.safe_load(target.read_text()))
    descriptions = {key: operation.get("description", "").strip() for key, operation in operations.items()}
    # then none is empty, none is a docstring of a class that views share, and no two are the same
    assert [key for key, description in descriptions.items() if not description] == []
    shared = "What every view of the API shares"
    assert [key for key, description in descriptions.items() if shared in description] == []
    assert [text for text, count in Counter(descriptions.values()).items() if count > 1] == []
    assert len(descriptions) == sum(len(methods) for methods in ENDPOINTS.values())


@pytest.mark.django_db
def test_the_schema_and_docs_are_served():
    client = client_for(member(build_world().brand))
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


@pytest.mark.django_db
def test_every_read_of_a_traced_investigation_answers_what_the_schema_declares():
    # given a finding on M1 whose run has finished
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    run = TraceRun.objects.get(pk=created["run"])
    unit = quote(urn(Unit.objects.get(pk=w.u[1]).identity), safe="")
    reads = {
        "/api/v1/findings/": "/api/v1/findings/",
        "/api/v1/findings/{id}/": f"/api/v1/findings/{created['id']}/",
        "/api/v1/investigations/{id}/": f"/api/v1/investigations/{created['investigation']}/",
        "/api/v1/runs/{id}/": f"/api/v1/runs/{run.pk}/",
        "/api/v1/runs/{id}/units/": f"/api/v1/runs/{run.pk}/units/",
        "/api/v1/runs/{id}/consignees/": f"/api/v1/runs/{run.pk}/consignees/",
        "/api/v1/runs/{id}/breakdown/": f"/api/v1/runs/{run.pk}/breakdown/",
        "/api/v1/units/{ident}/backward/": f"/api/v1/units/{unit}/backward/",
        "/api/v1/units/{ident}/siblings/": f"/api/v1/units/{unit}/siblings/",
        "/api/v1/jobs/{id}/": f"/api/v1/jobs/{run.job_id}/",
    }
    # when
    answers = {path: client.get(url) for path, url in reads.items()}
    # then
    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(reads, 200)
    assert {path: schema_problems(answer, path) for path, answer in answers.items()} == dict.fromkeys(reads, [])
    # and the nulls the schema must allow were among them: a trace run's job has nothing to download,
    # and the status change a finished run made was made by no one
    assert answers["/api/v1/jobs/{id}/"].json()["download"] is None
    moves = [(t["to_status"], t["by"]) for t in answers["/api/v1/investigations/{id}/"].json()["transitions"]]
    assert moves == [("open", client.user.username), ("tracing", client.user.username), ("traced", None)]


@pytest.mark.django_db
def test_a_finding_whose_people_are_gone_answers_what_the_schema_declares(settings, tmp_path):
    # given a finding with evidence, whose user account was then deleted (its records keep a null)
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    qa = member(w.brand, "qa")
    client = client_for(member(w.brand))
    created = traced(client_for(qa), w)
    finding = Finding.objects.get(pk=created["id"])
    finding_attach(finding=finding, file=SimpleUploadedFile("report.pdf", b"%PDF-1.7\n%%EOF\n"), name="r.pdf", by=qa)
    qa.delete()
    # when
    answer = client.get(f"/api/v1/investigations/{created['investigation']}/")
    # then
    body = answer.json()
    people = (body["opened_by"], body["finding"]["raised_by"], body["finding"]["attachments"][0]["uploaded_by"])
    assert people == (None, None, None)
    assert [t["by"] for t in body["transitions"]] == [None, None, None]
    assert schema_problems(answer, "/api/v1/investigations/{id}/") == []


def test_the_schema_declares_null_where_an_answer_may_hold_one():
    components = openapi_schema()["components"]["schemas"]
    nullable = {
        (component, field): components[component]["properties"][field].get("nullable", False)
        for component, field in [
            ("Job", "download"),
            ("Transition", "by"),
            ("Investigation", "opened_by"),
            ("Finding", "raised_by"),
            ("Attachment", "uploaded_by"),
        ]
    }
    assert nullable == dict.fromkeys(nullable, True)


@pytest.mark.django_db
def test_a_body_that_cannot_be_read_is_answered_as_the_schema_declares_its_400():
    # given (found by tests/test_fuzz_api.py: the schema required "errors", which a parse error has not)
    client = client_for(member(build_world().brand))
    # when
    response = client.generic("POST", "/api/v1/findings/", b"\x00", content_type="application/json")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert schema_problems(response, "/api/v1/findings/", "post") == []
