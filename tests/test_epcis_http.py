"""The EPCIS REST binding (/epcis/capture, /epcis/events) and the import_epcis command."""

import json
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from suppliers.models import Role
from suppliers.services import api_token_create
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import aggregation, document, ledger_written, transformation, units_of
from traceability.core.models import JobStatus
from traceability.events.models import EpcisCapture, EpcisEvent

pytestmark = pytest.mark.django_db


def _post(client, body: dict | bytes, content_type: str = "application/ld+json", **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", "/epcis/capture", data, content_type=content_type, headers=headers)


def _run_capture_job(location: str) -> None:
    capture = EpcisCapture.objects.get(pk=int(location.rsplit("/", 1)[1]))
    run_job(capture.job)


@pytest.mark.worker
def test_a_document_captured_over_http_is_applied_by_the_worker(celery_worker, wait_until):
    # given a brand's MES, authenticated by its API token
    brand = OrganisationFactory()
    client = APIClient()
    _, key = api_token_create(membership=member(brand).memberships.get())
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    # when
    response = _post(client, document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1", "U2"])))
    # then
    assert response.status_code == 202
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    location = response.headers["Location"]
    wait_until(lambda: not client.get(location).json()["running"], timeout=60, what="the capture job")
    job = client.get(location).json()
    assert (job["success"], job["errors"], job["captureErrorBehaviour"], job["captured"]) == (True, [], "rollback", 1)
    assert units_of("L1") == {"U1": "definite", "U2": "definite"}


def test_a_rejected_document_is_reported_on_its_capture_job_with_each_event_and_place():
    # given
    client = client_for(member(OrganisationFactory()))
    bad = transformation("urn:uuid:bad", lots=["L1"], outputs=["U1"])
    bad["outputEPCList"] = ["urn:epc:id:sgtin:4012345.011111"]  # no serial
    before = ledger_written()
    # when
    response = _post(client, document(bad))
    _run_capture_job(response.headers["Location"])
    job = client.get(response.headers["Location"]).json()
    # then
    assert response.status_code == 202
    assert (job["running"], job["success"]) == (False, False)
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException" and error["status"] == 400
    assert (error["instance"], error["eventIndex"], error["eventID"]) == (
        "/epcisBody/eventList/0/outputEPCList/0",
        0,
        "urn:uuid:bad",
    )
    assert ledger_written()[:5] == before[:5]


def test_proceed_is_honoured_from_the_header():
    # given
    client = client_for(member(OrganisationFactory()))
    bad = transformation("urn:uuid:bad", lots=["L2"], outputs=["U2"])
    del bad["eventTimeZoneOffset"]
    doc = document(transformation("urn:uuid:good", lots=["L1"], outputs=["U1"]), bad)
    # when
    response = _post(client, doc, **{"GS1-Capture-Error-Behaviour": "proceed"})
    _run_capture_job(response.headers["Location"])
    job = client.get(response.headers["Location"]).json()
    # then
    assert (job["success"], job["captureErrorBehaviour"], job["captured"]) == (False, "proceed", 1)
    assert [e["eventID"] for e in job["errors"]] == ["urn:uuid:bad"]
    assert units_of("L1") == {"U1": "definite"}


@pytest.mark.parametrize(
    ("caller", "status", "kind"),
    [("anonymous", 401, "SecurityException"), ("regulator", 403, "SecurityException")],
)
def test_capture_needs_an_organisation_that_may_write(caller, status, kind):
    # given
    client = APIClient() if caller == "anonymous" else client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    # when
    response = _post(client, document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"])))
    # then
    assert response.status_code == status
    assert response.json()["type"] == f"epcisException:{kind}"
    assert EpcisCapture.objects.count() == 0


@pytest.mark.parametrize(
    ("headers", "content_type", "status", "fragment"),
    [
        ({"GS1-Capture-Error-Behaviour": "maybe"}, "application/json", 400, "'maybe' is not one of rollback, proceed"),
        ({}, "text/csv", 415, "'text/csv' is not an EPCIS document type"),
    ],
)
def test_a_capture_request_the_standard_does_not_allow_is_refused_before_anything_is_kept(
    headers, content_type, status, fragment
):
    # given
    client = client_for(member(OrganisationFactory()))
    # when
    response = _post(client, b"{}", content_type=content_type, **headers)
    # then
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert EpcisCapture.objects.count() == 0


def test_a_capture_job_is_only_visible_to_its_organisation():
    # given
    owner = member(OrganisationFactory())
    location = _post(client_for(owner), document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"])))[
        "Location"
    ]
    # when
    theirs = client_for(member(OrganisationFactory())).get(location)
    mine = client_for(owner).get(location)
    listed = client_for(owner).get("/epcis/capture").json()
    # then
    assert theirs.status_code == 404 and theirs.json()["type"] == "epcisException:NoSuchResourceException"
    assert mine.status_code == 200 and mine.json()["running"] is True
    assert [job["captureID"] for job in listed] == [location.rsplit("/", 1)[1]]


def test_one_event_is_captured_synchronously_and_a_repeat_conflicts():
    # given
    client = client_for(member(OrganisationFactory()))
    event = transformation("urn:uuid:one", lots=["L1"], outputs=["U1"])
    # when
    first = client.post("/epcis/events", event, format="json")
    again = client.post("/epcis/events", event, format="json")
    # then
    assert first.status_code == 201 and first.headers["Location"] == "/epcis/events/urn%3Auuid%3Aone"
    assert again.status_code == 409
    assert EpcisEvent.objects.count() == 1 and units_of("L1") == {"U1": "definite"}


def test_one_event_is_validated_once_in_the_request_and_not_again_by_its_capture_job():
    # given
    from traceability.events import validation

    client = client_for(member(OrganisationFactory()))
    event = transformation("urn:uuid:once", lots=["L1"], outputs=["U1"])
    checked = mock.Mock(wraps=validation.document_problems)
    # when
    with (
        mock.patch("traceability.events.services.document_problems", checked),
        mock.patch.object(validation, "document_problems", checked),
    ):
        response = client.post("/epcis/events", event, format="json")
    # then
    assert response.status_code == 201
    assert checked.call_count == 1
    assert units_of("L1") == {"U1": "definite"}


def test_an_invalid_single_event_is_refused_with_its_problems():
    # given
    client = client_for(member(OrganisationFactory()))
    event = transformation("urn:uuid:one", lots=["L1"], outputs=["U1"])
    event["eventTime"] = "yesterday"
    # when
    response = client.post("/epcis/events", event, format="json")
    # then
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["instance"], error["eventID"]) == ("/epcisBody/eventList/0/eventTime", "urn:uuid:one")
    assert EpcisEvent.objects.count() == 0


def test_import_epcis_applies_a_file_and_reports_what_it_did(tmp_path):
    # given
    owner = OrganisationFactory(slug="brand")
    path = tmp_path / "mes.jsonld"
    path.write_text(json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]))))
    out = StringIO()
    # when
    call_command("import_epcis", str(path), "--owner", owner.slug, "--no-progress", stdout=out)
    # then
    assert "1 events, 1 new, 0 known already, 0 declared erroneous, 0 problem(s): ledger position" in out.getvalue()
    assert units_of("L1") == {"U1": "definite"}


def test_import_epcis_rejects_a_bad_file_whole_and_exits_non_zero(tmp_path):
    # given
    OrganisationFactory(slug="brand")
    bad = transformation("urn:uuid:bad", lots=["L2"], outputs=["U2"])
    bad["inputQuantityList"][0]["quantity"] = -3
    path = tmp_path / "mes.json"
    path.write_text(json.dumps(document(transformation("urn:uuid:good", lots=["L1"], outputs=["U1"]), bad)))
    before, err = ledger_written(), StringIO()
    # when
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("import_epcis", str(path), "--owner", "brand", "--no-progress", stderr=err, stdout=StringIO())
    # then
    assert "event 1 (urn:uuid:bad): /epcisBody/eventList/1/inputQuantityList/0/quantity" in err.getvalue()
    assert ledger_written()[:5] == before[:5]


@pytest.mark.corpus
def test_import_epcis_reads_xml(corpus):
    # given
    OrganisationFactory(slug="brand")
    out = StringIO()
    # when
    call_command(
        "import_epcis",
        str(corpus / "xml" / "ErrorDeclarationAndCorrectiveEvent.xml"),
        "--owner",
        "brand",
        "--no-progress",
        stdout=out,
    )
    # then
    assert "2 events, 2 new" in out.getvalue()
    assert EpcisEvent.objects.filter(declared_at__isnull=False).count() == 1
    assert EpcisCapture.objects.get().job.status == JobStatus.SUCCEEDED


def _with(event: dict, **changes) -> dict:
    changed = json.loads(json.dumps(event))
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


GOOD = transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"])


@pytest.mark.parametrize(
    ("events", "where", "fragment"),
    [
        (
            [_with(GOOD, outputEPCList=["urn:epc:id:sgtin:4012345.011111"])],
            "/epcisBody/eventList/0/outputEPCList/0",
            "",
        ),
        (
            [_with(GOOD, outputEPCList=["https://id.gs1.org/01/04012345111119/21/U1"])],
            "/epcisBody/eventList/0/outputEPCList/0",
            "check digit",
        ),
        (
            [
                _with(
                    GOOD,
                    inputQuantityList=[
                        {"epcClass": GOOD["inputQuantityList"][0]["epcClass"], "quantity": 1, "uom": "kilo"}
                    ],
                )
            ],
            "/epcisBody/eventList/0/inputQuantityList/0/uom",
            "",
        ),
        (
            [_with(GOOD, inputQuantityList=[{"epcClass": GOOD["inputQuantityList"][0]["epcClass"], "quantity": 0}])],
            "/epcisBody/eventList/0/inputQuantityList/0/quantity",
            "",
        ),
        (
            [{**aggregation("urn:uuid:a", "ADD", "urn:epc:id:sscc:4012345.0000000001", [], at="05"), "childEPCs": []}],
            "/epcisBody/eventList/0",
            "",
        ),
        ([GOOD, GOOD], "/epcisBody/eventList/1/eventID", "unique"),
        ([_with(GOOD, eventTime=None)], "/epcisBody/eventList/0/eventTime", ""),
    ],
    ids=[
        "urn syntax",
        "digital link check digit",
        "uom",
        "quantity",
        "aggregation without children",
        "duplicate id",
        "missing eventTime",
    ],
)
def test_every_kind_of_bad_event_is_reported_over_http_and_changes_nothing(events, where, fragment):
    # given
    client = client_for(member(OrganisationFactory()))
    before = ledger_written()
    # when
    response = _post(client, document(*events))
    _run_capture_job(response.headers["Location"])
    job = client.get(response.headers["Location"]).json()
    # then
    assert (response.status_code, job["success"]) == (202, False)
    assert any(e["instance"].startswith(where) and fragment in e["detail"] for e in job["errors"]), job["errors"]
    assert all(e["eventIndex"] is not None for e in job["errors"])
    assert ledger_written()[:5] == before[:5]


def test_a_document_that_does_not_parse_is_refused_before_anything_is_kept():
    # given
    client = client_for(member(OrganisationFactory()))
    # when
    response = _post(client, b'{"type": "EPCISDocument", "epcisBody": ', content_type="application/json")
    # then
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["instance"], error["detail"]) == ("line 1 column 40", "line 1 column 40: not JSON: Expecting value")
    assert EpcisCapture.objects.count() == 0


def test_a_document_that_fails_the_xsd_is_reported_on_its_capture_job():
    # given
    client = client_for(member(OrganisationFactory()))
    body = b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'><Nope/></epcis:EPCISDocument>"
    # when
    response = _post(client, body, content_type="application/xml")
    _run_capture_job(response.headers["Location"])
    job = client.get(response.headers["Location"]).json()
    # then
    assert job["success"] is False and job["errors"]
    assert EpcisEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("readPoint", {"id": "urn:epc:id:sgln:4012345.00001.\x00"}, "/epcisBody/eventList/0/readPoint/id"),
        ("example:note", "a\x00b", "/epcisBody/eventList/0/example:note"),
        ("example:\x00", "x", "/epcisBody/eventList/0/example:\x00"),
    ],
)
def test_a_nul_character_in_an_event_is_refused_where_it_is_and_nothing_is_written(field, value, where):
    # given (found by tests/test_fuzz_epcis.py: PostgreSQL stores NUL in neither text nor jsonb, a 500)
    client = client_for(member(OrganisationFactory()))
    event = transformation("urn:uuid:nul", lots=["L1"], outputs=["U1"]) | {field: value}
    before = ledger_written()
    # when
    response = client.post("/epcis/events", event, format="json")
    # then
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["type"], error["instance"]) == ("epcisException:ValidationException", where)
    assert "NUL" in error["detail"]
    assert ledger_written() == before


def test_a_nul_character_in_a_captured_document_is_refused_in_the_request_with_the_place():
    # given
    client = client_for(member(OrganisationFactory()))
    bad = transformation("urn:uuid:nul\x00", lots=["L1"], outputs=["U1"])
    before = ledger_written()
    # when
    response = _post(client, document(bad))
    # then refused before a capture is kept: no capture row, no job, nothing in the ledger
    assert response.status_code == 400, response.json()
    assert [error["instance"] for error in response.json()["errors"]] == ["/epcisBody/eventList/0/eventID"]
    assert ledger_written() == before


@pytest.mark.parametrize("at", ["2000-01-01T00:00:00+16:00", "2000-01-01T00:00:00-14:01"])
def test_an_event_time_offset_beyond_the_time_zones_is_refused_and_nothing_is_written(at):
    # given (found by tests/test_fuzz_epcis.py: PostgreSQL refuses an offset beyond ±15:59, a 500)
    client = client_for(member(OrganisationFactory()))
    event = transformation("urn:uuid:far", lots=["L1"], outputs=["U1"]) | {"eventTime": at}
    before = ledger_written()
    # when
    response = client.post("/epcis/events", event, format="json")
    # then
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["instance"] == "/epcisBody/eventList/0/eventTime"
    assert "beyond ±14:00" in error["detail"]
    assert ledger_written() == before
