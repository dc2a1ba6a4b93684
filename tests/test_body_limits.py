"""Hostile input to the REST API and the EPCIS binding (issue 13): bodies over their kind's limit,
chunked and lying bodies, JSON nested too deep, integers beyond the database's range, control
characters, and paths that name no endpoint. Each is refused in the interface's own format, never
HTML, never a 500, and leaves nothing behind."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.test_api_support import client_for, member, raise_finding, traced, urn, written
from tests.test_epcis_capture import ledger_written
from tests.trace_world import build_world
from traceability.core.limits import EVENT, BodyTooLarge, BoundedStream, json_loads, json_too_deep
from traceability.core.models import AuditEntry
from traceability.events.csv_import import TEMPLATES
from traceability.events.models import EpcisCapture
from traceability.investigations.models import FindingAttachment

pytestmark = pytest.mark.django_db

MB = 2**20
HUGE = 99999999999999999999  # beyond bigint: PostgreSQL refuses it, SQLite overflows


@pytest.fixture()
def world(settings, tmp_path):
    """The trace world's brand, its QA engineer, and MEDIA_ROOT in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    w.media = tmp_path
    w.qa = client_for(member(w.brand, "qa"))
    return w


def everything(w) -> dict[str, object]:
    """What any request could leave behind: rows of the API and the ledger, captures, audit, files."""
    return {
        **written(),
        "ledger": ledger_written(),
        "captures": EpcisCapture.objects.count(),
        "attachments": FindingAttachment.objects.count(),
        "audit": AuditEntry.objects.count(),
        "files": sorted(str(p.relative_to(w.media)) for p in Path(w.media).rglob("*") if p.is_file()),
    }


def _padded_json(size: int) -> bytes:
    """A JSON object of ``size`` bytes, most of them one string (the shape of the issue's 50 MB inputs)."""
    head = b'{"category": "metallic_debris", "severity": "critical", "subject": "M1", "description": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


# --- bodies over their limit, refused before they are read ---------------------------------------------


def test_a_50_mb_finding_description_is_refused_as_json_with_the_limit(world):
    # given the default limit of a JSON body (1 MiB)
    before = everything(world)
    # when
    response = world.qa.generic("POST", "/api/v1/findings/", _padded_json(50 * MB), content_type="application/json")
    # then
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "body_too_large",
        "message": "the request is 52,428,800 bytes: a request's JSON body may be at most 1,048,576 bytes",
    }
    assert everything(world) == before


@pytest.mark.parametrize(
    ("path", "content_type", "setting", "limit"),
    [
        ("/epcis/events", "application/json", "LEDGER_MAX_EVENT_BYTES", 1 * MB),
        ("/epcis/capture", "application/ld+json", "LEDGER_MAX_CAPTURE_BYTES", 16 * MB),
    ],
)
def test_a_50_mb_epcis_body_is_refused_as_a_capture_limit_problem(world, settings, path, content_type, setting, limit):
    # given the defaults
    assert getattr(settings, setting) == limit
    before = everything(world)
    # when
    response = world.qa.generic("POST", path, _padded_json(50 * MB), content_type=content_type)
    # then
    assert response.status_code == 413
    assert response.headers["GS1-EPCIS-Capture-File-Size-Limit"] == str(limit)
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    body = response.json()
    assert (body["type"], body["title"], body["status"]) == (
        "epcisException:CaptureLimitExceededException",
        "Capture Payload too large",
        413,
    )
    assert body["detail"].startswith("the request is 52,428,800 bytes: ")
    assert f"at most {limit:,} bytes" in body["detail"]
    assert everything(world) == before


def test_a_49_mb_csv_file_is_refused_with_the_limit(world):
    # given
    kind = sorted(TEMPLATES)[0]
    csv = TEMPLATES[kind].csv().encode()
    before = everything(world)
    # when
    response = world.qa.generic("POST", f"/api/v1/csv/{kind}/", csv * (49 * MB // len(csv)), content_type="text/csv")
    # then
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "body_too_large"
    assert body["message"].endswith(": a CSV file may be at most 8,388,608 bytes")
    assert everything(world) == before


def test_a_limit_is_a_setting_and_a_body_at_the_limit_is_read(world, settings):
    # given a JSON limit just the size of one finding
    finding = json.dumps({"category": "metallic_debris", "severity": "critical", "subject": urn(world.m1.identity)})
    body = finding[:-1] + ', "description": "Fe"}'
    settings.LEDGER_MAX_JSON_BYTES = len(body)
    before = everything(world)
    # when one byte more, then exactly the limit
    over = world.qa.generic("POST", "/api/v1/findings/", body[:-1] + " }", content_type="application/json")
    after_refusal = everything(world)
    at = world.qa.generic("POST", "/api/v1/findings/", body, content_type="application/json")
    # then
    assert over.status_code == 413
    assert over.json()["message"] == (
        f"the request is {len(body) + 1} bytes: a request's JSON body may be at most {len(body):,} bytes"
    )
    assert after_refusal == before
    assert at.status_code == 201, at.json()


def test_an_oversized_body_is_refused_before_the_caller_is_asked_who_it_is(world):
    # given no credentials at all
    anonymous = client_for(None)
    # when
    response = anonymous.generic("POST", "/epcis/events", b"{" * (2 * MB), content_type="application/json")
    # then it is the size that is refused, before anything else: the body was never read
    assert response.status_code == 413
    assert response.json()["type"] == "epcisException:CaptureLimitExceededException"


# --- chunked and lying bodies -----------------------------------------------------------------------


def _chunked(client, path: str, body: bytes, content_type: str, *, terminated: bool = True):
    """A request without Content-Length whose body the server has de-chunked (as gunicorn does)."""
    extra = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": content_type, "wsgi.input": io.BytesIO(body)}
    if terminated:
        extra["wsgi.input_terminated"] = True
    return client.generic("POST", path, b"", content_type=content_type, **extra)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(world, settings):
    # given
    settings.LEDGER_MAX_EVENT_BYTES = 10_000
    stream = io.BytesIO(b"[" * 5 * MB)
    before = everything(world)
    extra = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream, "wsgi.input_terminated": True}
    # when
    response = world.qa.generic("POST", "/epcis/events", b"", content_type="application/json", **extra)
    # then
    assert response.status_code == 413
    assert response.json()["detail"] == "the request carries more: a single EPCIS event may be at most 10,000 bytes"
    assert stream.tell() == 10_001  # one byte past the limit was read, none more
    assert everything(world) == before


def test_a_chunked_body_within_the_limit_is_read_like_any_other(world):
    # given
    body = json.dumps(
        {"category": "metallic_debris", "severity": "critical", "subject": urn(world.m1.identity), "description": "Fe"}
    ).encode()
    # when
    response = _chunked(world.qa, "/api/v1/findings/", body, "application/json")
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["description"] == "Fe"


def test_a_chunked_body_a_server_cannot_read_as_it_comes_is_refused_with_411(world):
    # given a server that passes the chunked stream through undecoded (runserver)
    before = everything(world)
    # when
    api = _chunked(world.qa, "/api/v1/findings/", b"{}", "application/json", terminated=False)
    epcis = _chunked(world.qa, "/epcis/capture", b"{}", "application/ld+json", terminated=False)
    # then
    assert api.status_code == 411
    assert api.json() == {
        "code": "length_required",
        "message": "a chunked body cannot be read by this server: send the request with its Content-Length",
    }
    assert epcis.status_code == 411
    assert epcis.json()["title"] == "Length Required"
    assert everything(world) == before


def test_a_body_longer_than_its_content_length_is_read_only_as_far_as_declared(world):
    # given a request that declares 40 bytes and carries a megabyte more
    body = b'{"category": "metallic_debris", "seve' + b"r" * MB
    before = everything(world)
    # when
    response = world.qa.generic(
        "POST",
        "/api/v1/findings/",
        b"",
        content_type="application/json",
        CONTENT_LENGTH="40",
        **{"wsgi.input": io.BytesIO(body)},
    )
    # then the 40 bytes are read, and are no JSON
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert everything(world) == before


def test_a_bounded_stream_reads_up_to_its_limit_and_not_a_byte_more(settings):
    # given
    settings.LEDGER_MAX_EVENT_BYTES = 5
    stream = io.BytesIO(b"abcdefgh")
    bounded = BoundedStream(stream, EVENT)
    # when
    first = bounded.read(3)
    second = bounded.read(2)
    # then
    assert (first, second) == (b"abc", b"de")
    with pytest.raises(BodyTooLarge):
        bounded.read()
    assert stream.tell() == 6


# --- JSON nesting -------------------------------------------------------------------------------------


def test_json_nested_deeper_than_allowed_is_refused_before_it_is_parsed(world):
    # given
    before = everything(world)
    # when
    response = world.qa.generic("POST", "/api/v1/findings/", b"[" * 100_000, content_type="application/json")
    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "parse_error",
        "message": "JSON parse error - arrays and objects nest deeper than 32 levels",
    }
    assert everything(world) == before


def test_nesting_is_counted_outside_strings_only():
    # given brackets inside strings, escaped quotes among them
    shallow = json.dumps({"a": ["[[[[{{{{" * 10, '"]]]"', {"b": [1]}]}).encode()
    # then
    assert not json_too_deep(shallow, limit=4)
    assert json_too_deep(shallow, limit=3)
    assert json_loads(shallow)["a"][2] == {"b": [1]}
    with pytest.raises(ValueError, match="nest deeper than 3 levels"):
        json_loads(shallow, limit=3)


# --- integers beyond the database's range ------------------------------------------------------------


def test_a_cursor_beyond_the_database_range_is_refused_on_a_runs_units(world):
    # given
    run = traced(world.qa, world)["run"]
    before = everything(world)
    # when
    response = world.qa.get(f"/api/v1/runs/{run}/units/", {"after": HUGE})
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("max_value", "after")
    assert everything(world) == before


def test_a_cursor_beyond_the_database_range_is_refused_on_a_units_siblings(world):
    # when
    response = world.qa.get("/api/v1/units/U4/siblings/", {"after": HUGE})
    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["field"]) == ("max_value", "after")
    assert body["message"] == "Ensure this value is less than or equal to 9223372036854775807."


def test_an_inspection_id_beyond_the_database_range_is_refused_in_a_finding(world):
    # given
    before = everything(world)
    # when
    response = raise_finding(world.qa, urn(world.m1.identity), inspections=[1, HUGE])
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("max_value", "inspections.1")
    assert everything(world) == before


@pytest.mark.parametrize(
    "path", [f"/api/v1/findings/{HUGE}/", f"/api/v1/runs/{HUGE}/units/", f"/api/v1/investigations/{HUGE}/"]
)
def test_an_id_beyond_the_database_range_in_a_path_is_not_found(world, path):
    # when
    response = world.qa.get(path)
    # then
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_capture_id_beyond_the_database_range_is_no_such_resource(world):
    # when
    response = world.qa.get(f"/epcis/capture/{HUGE}")
    # then
    assert response.status_code == 404
    assert response.json()["type"] == "epcisException:NoSuchResourceException"


def test_a_site_id_beyond_the_database_range_is_refused_as_a_subject(world):
    # given
    before = everything(world)
    # when
    response = raise_finding(world.qa, None, subject_site=HUGE)
    # then
    assert response.status_code == 400
    assert response.json()["field"] == "subject_site"
    assert everything(world) == before


# --- control characters in text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("description", "Fe\x0045 µm", "control_character"),
        ("description", "Fe\x07 45 µm", "control_character"),
        ("subject", "M1\x00", "control_character"),
        ("subject", "M\x1b1", "control_character"),
    ],
)
def test_control_characters_in_a_finding_are_refused(world, field, value, code):
    # given
    before = everything(world)
    fields = {"subject": urn(world.m1.identity), field: value}
    # when
    response = raise_finding(world.qa, fields.pop("subject"), **fields)
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert everything(world) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/units/U4%00/backward/", "ident"),
        ("/api/v1/units/U%014/siblings/", "ident"),
        ("/api/v1/runs/{run}/units/?product_model=A12%0063", "product_model"),
        ("/api/v1/runs/{run}/units/?work_order=%00", "work_order"),
        ("/api/v1/findings/?category=%00", "category"),
    ],
)
def test_a_control_character_in_a_path_or_a_parameter_is_refused(world, path, field):
    # given
    run = traced(world.qa, world)["run"]
    before = everything(world)
    # when
    response = world.qa.get(path.format(run=run))
    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["field"]) == ("control_character", field)
    assert body["message"].startswith("contains the control character U+00")
    assert everything(world) == before


def test_text_keeps_its_tabs_and_line_breaks(world):
    # when
    response = raise_finding(world.qa, urn(world.m1.identity), description="Fe 45 µm\r\n\tin 3 of 5 cells")
    # then
    assert response.status_code == 201
    assert response.json()["description"] == "Fe 45 µm\r\n\tin 3 of 5 cells"


def test_a_description_longer_than_the_text_limit_is_refused(world):
    # when
    response = raise_finding(world.qa, urn(world.m1.identity), description="x" * 20_001)
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("max_length", "description")


# --- paths that name no endpoint -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/jobs/not-a-uuid/", "/api/v1/nothing/here/", "/api/v1/"])
def test_a_path_under_the_api_that_names_no_endpoint_answers_the_apis_404(world, method, path):
    # when
    response = getattr(world.qa, method)(path)
    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": f"no endpoint at {path}"}


def test_a_path_missing_its_final_slash_is_redirected_for_a_read_and_told_for_a_write(world):
    # when
    read = world.qa.get("/api/v1/findings?category=metallic_debris")
    write = world.qa.post("/api/v1/findings", {}, format="json")
    # then
    assert (read.status_code, read["Location"]) == (301, "/api/v1/findings/?category=metallic_debris")
    assert write.status_code == 404
    assert write.json()["message"] == (
        "no endpoint at /api/v1/findings: did you mean /api/v1/findings/ (with the final slash)?"
    )


def test_a_method_an_endpoint_does_not_take_answers_405_as_json(world):
    # when
    response = world.qa.delete("/api/v1/findings/")
    # then
    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}


def test_a_path_under_epcis_that_names_no_resource_answers_a_problem(world):
    # when
    response = world.qa.post("/epcis/nothing", {}, format="json")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "type": "epcisException:NoSuchResourceException",
        "title": "NoSuchResourceException",
        "status": 404,
        "detail": "/epcis/nothing is no resource of the EPCIS 2.0 REST binding",
    }


def test_the_schema_and_docs_still_answer_under_the_api(world):
    # then
    assert world.qa.get("/api/v1/schema/").status_code == 200
    assert world.qa.get("/api/v1/docs/").status_code == 200


# --- the attachment limit is one case of the mechanism ------------------------------------------------


def test_an_attachment_announced_too_large_is_refused_by_the_same_mechanism(world, settings):
    # given a finding, and attachments of at most 1,000 bytes
    finding = raise_finding(world.qa, urn(world.m1.identity)).json()["id"]
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 1_000
    upload = SimpleUploadedFile("scan.tiff", b"II*\x00" + b"\x00" * 2_000_000, content_type="image/tiff")
    before = everything(world)
    # when
    response = world.qa.post(f"/api/v1/findings/{finding}/attachments/", {"file": upload}, format="multipart")
    # then
    assert response.status_code == 413
    body = response.json()
    assert (body["code"], body["field"]) == ("file_too_large", "file")
    assert body["message"].endswith(": a finding's attachments may be at most 1,000 bytes each")
    assert everything(world) == before


def test_every_limit_is_documented_in_the_readme():
    # given
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    # then
    for setting in (
        "LEDGER_MAX_EVENT_BYTES",
        "LEDGER_MAX_CAPTURE_BYTES",
        "LEDGER_MAX_CSV_BYTES",
        "LEDGER_MAX_JSON_BYTES",
        "LEDGER_ATTACHMENT_MAX_BYTES",
    ):
        assert f"| `{setting}` |" in readme


def test_what_a_request_leaves_behind_is_seen(world):
    # given
    before = everything(world)
    # when a finding is written
    raise_finding(world.qa, urn(world.m1.identity))
    # then the helper the refusals are checked with sees it
    assert everything(world) != before
