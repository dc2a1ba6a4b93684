"""Hostile or broken EPCIS input (issue 13): refused over HTTP with the standard's problem document,
naming what, where and why, and leaving nothing behind (no capture, job, stored file or ledger row)."""

import json
from pathlib import Path

import pytest

from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import document, ledger_written, transformation
from tests.test_epcis_xml import EPCIS_CLOSE, EPCIS_OPEN, GOOD_EVENT
from traceability.core.models import AuditAction, AuditEntry, Job
from traceability.events import limits, services
from traceability.events.models import EpcisCapture
from traceability.events.validation import _scan, _walked

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000
TOO_EARLY = "0001-01-01T00:00:00+14:00"  # before year 1 in UTC
TOO_LATE = "9999-12-31T23:59:59-14:00"  # after year 9999 in UTC
LONG = "urn:example:" + "x" * 250  # 262 characters: a URI, as EPCIS allows, longer than the ledger keeps


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _kept(media: Path) -> tuple:
    """Everything a capture request could leave behind."""
    files = sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())
    return (EpcisCapture.objects.count(), Job.objects.count(), AuditEntry.objects.count(), files, ledger_written())


def _client():
    return client_for(member(OrganisationFactory()))


def _event(**changes) -> dict:
    event = transformation("urn:uuid:hostile", lots=["L1"], outputs=["U1"]) | changes
    return {key: value for key, value in event.items() if value is not None}


def _post(client, path: str, body: dict | bytes):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data, content_type="application/json")


def _refused(response, *, status: int = 400, kind: str = "ValidationException") -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["type"], body["status"]) == (f"epcisException:{kind}", status)
    return body


def _single_error(body: dict) -> dict:
    (error,) = body["errors"]
    assert error["type"] == "epcisException:ValidationException" and error["status"] == 400
    return error


# --- nesting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_json_nested_a_hundred_thousand_levels_is_refused_before_anything_is_kept(media, path):
    # given
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, DEEP)
    # then
    error = _single_error(_refused(response))
    assert error["instance"] == "line 1 column 1026"
    assert f"more than {limits.MAX_DEPTH} levels deep" in error["detail"]
    assert _kept(media) == before


@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_an_extension_nested_deeper_than_the_limit_is_refused_naming_the_event_and_place(media, path):
    # given: JSON any reader takes, but deeper than the ledger walks (the schema validator recurses)
    nested: dict = {}
    for _ in range(40):
        nested = {"example:inner": nested}
    event = _event(**{"example:deep": nested})
    body = event if path == "/epcis/events" else document(event)
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, body)
    # then
    error = _single_error(_refused(response))
    assert error["instance"].startswith("/epcisBody/eventList/0/example:deep/example:inner/")
    assert (error["eventIndex"], error["eventID"]) == (0, "urn:uuid:hostile")
    assert f"nests arrays and objects more than {limits.MAX_DEPTH} levels deep" in error["detail"]
    assert _kept(media) == before


def test_a_large_document_too_deep_is_refused_by_its_job_naming_the_event_and_the_ledger_is_unchanged(
    media, monkeypatch
):
    # given a document above the size checked in the request (made small here)
    monkeypatch.setattr(services, "CHECKED_FIRST_MAX", 16)
    nested: list = []
    for _ in range(40):
        nested = [nested]
    client = _client()
    before = ledger_written()
    # when
    response = _post(client, "/epcis/capture", document(_event(), _event(eventID="urn:uuid:2", **{"ex:x": nested})))
    run_job(EpcisCapture.objects.get().job)
    job = client.get(response["Location"]).json()
    # then
    assert response.status_code == 202
    (error,) = job["errors"]
    assert (job["success"], error["eventIndex"], error["eventID"]) == (False, 1, "urn:uuid:2")
    assert error["instance"].startswith("/epcisBody/eventList/1/ex:x/0/0/")
    assert ledger_written() == before


# --- date-times ------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", [TOO_EARLY, TOO_LATE])
@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_an_event_time_with_no_utc_instant_in_range_is_refused(media, path, when):
    # given
    event = _event(eventTime=when, eventTimeZoneOffset=when[-6:])
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, event if path == "/epcis/events" else document(event))
    # then
    error = _single_error(_refused(response))
    assert error["instance"] == "/epcisBody/eventList/0/eventTime"
    assert error["detail"] == (
        f'event 0 (urn:uuid:hostile): /epcisBody/eventList/0/eventTime: eventTime "{when}" is outside the'
        " instants the ledger stores, 1900-01-01T00:00:00Z to before 3000-01-01T00:00:00Z"
    )
    assert _kept(media) == before


def test_a_declaration_time_out_of_range_in_a_large_document_fails_no_job(media, monkeypatch):
    # given: checked by the job, not the request (an OverflowError failed the job before)
    monkeypatch.setattr(services, "CHECKED_FIRST_MAX", 16)
    event = _event(errorDeclaration={"declarationTime": TOO_LATE})
    client = _client()
    before = ledger_written()
    # when
    response = _post(client, "/epcis/capture", document(event))
    run_job(EpcisCapture.objects.get().job)
    job = client.get(response["Location"]).json()
    # then
    (error,) = job["errors"]
    assert job["success"] is False and job["running"] is False
    assert error["instance"] == "/epcisBody/eventList/0/errorDeclaration/declarationTime"
    assert "outside the instants the ledger stores" in error["detail"]
    assert ledger_written() == before


@pytest.mark.parametrize("when", [TOO_EARLY, TOO_LATE, "2024-13-01T00:00:00Z"])
@pytest.mark.parametrize("parameter", ["GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime"])
def test_a_query_time_out_of_range_is_refused_naming_the_parameter(parameter, when):
    # when
    response = _client().get("/epcis/events", {parameter: when})
    # then
    body = _refused(response, kind="QueryParameterException")
    assert body["detail"].startswith(f"{parameter}: {when!r} ")
    assert "outside the instants" in body["detail"] or "month must be in 1..12" in body["detail"]


# --- characters --------------------------------------------------------------------------------------


NUL_PLACES = [
    ({"eventID": "urn:uuid:a\x00b"}, "/eventID", "eventID contains a NUL character (U+0000) at position 10"),
    ({"readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0\x00"}}, "/readPoint/id", "id contains a NUL character"),
    ({"example:note": "text\x00"}, "/example:note", "example:note contains a NUL character (U+0000) at position 4"),
    ({"example:note": "bell\x07"}, "/example:note", "contains the control character U+0007 at position 4"),
    ({"example:n\x00te": "text"}, "/example:n\x00te", 'the member name "example:n\x00te" contains a NUL'),
]


@pytest.mark.parametrize(
    ("changes", "where", "fragment"), NUL_PLACES, ids=["eventID", "readPoint", "ext", "bel", "key"]
)
@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_a_nul_or_control_character_is_refused_naming_the_field(media, path, changes, where, fragment):
    # given
    event = _event(**changes)
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, event if path == "/epcis/events" else document(event))
    # then
    error = _single_error(_refused(response))
    assert error["instance"] == "/epcisBody/eventList/0" + where
    assert fragment in error["detail"]
    assert _kept(media) == before


def test_a_nul_in_a_large_document_is_refused_by_its_job_and_the_problem_is_kept_escaped(media, monkeypatch):
    # given: the database stores no NUL, so the kept problem shows it as its escape
    monkeypatch.setattr(services, "CHECKED_FIRST_MAX", 16)
    client = _client()
    before = ledger_written()
    # when
    response = _post(client, "/epcis/capture", document(_event(eventID="urn:uuid:a\x00b")))
    run_job(EpcisCapture.objects.get().job)
    job = client.get(response["Location"]).json()
    # then
    (error,) = job["errors"]
    assert (job["success"], error["eventID"], error["instance"]) == (
        False,
        "urn:uuid:a\\u0000b",
        "/epcisBody/eventList/0/eventID",
    )
    assert "eventID contains a NUL character (U+0000) at position 10" in error["detail"]
    assert ledger_written() == before


@pytest.mark.parametrize(
    "url", ["/epcis/events?EQ_eventID=a%00b", "/epcis/events/a%00b", "/epcis/epcs/urn:x%00/events"]
)
@pytest.mark.parametrize("caller", ["organisation", "regulator"])
def test_a_nul_in_a_query_is_refused(url, caller):
    # given: a regulator's reads are audited, path included (the database stores no NUL)
    regulator = caller == "regulator"
    client = client_for(member(OrganisationFactory(role=Role.REGULATOR))) if regulator else _client()
    # when
    response = client.get(url)
    # then
    body = _refused(response, kind="QueryParameterException")
    assert "contains a NUL character (U+0000)" in body["detail"]
    paths = [entry.detail["path"] for entry in AuditEntry.objects.filter(action=AuditAction.READ_EPCIS)]
    assert paths == ([url.split("?")[0].replace("%00", "\\u0000")] if regulator else [])


# --- identifier lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "where", "limit"),
    [
        ({"eventID": LONG}, "/eventID", limits.RECORD_NAME_MAX),
        ({"transformationID": LONG}, "/transformationID", limits.RECORD_NAME_MAX),
        ({"outputEPCList": [LONG]}, "/outputEPCList/0", limits.IDENTIFIER_MAX),
    ],
    ids=["eventID", "transformationID", "private EPC"],
)
@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_an_identifier_longer_than_the_ledger_keeps_is_refused(media, path, changes, where, limit):
    # given
    event = _event(**changes)
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, event if path == "/epcis/events" else document(event))
    # then
    error = _single_error(_refused(response))
    assert error["instance"] == "/epcisBody/eventList/0" + where
    assert f"is {len(LONG)} characters long; an identifier here may have at most {limit}" in error["detail"]
    assert _kept(media) == before


def test_identifiers_at_the_limits_are_captured():
    # given: the longest eventID and transformationID, and a private EPC of 255 characters
    client = _client()
    event = _event(
        eventID="urn:uuid:" + "e" * (limits.RECORD_NAME_MAX - 9),
        transformationID="urn:t:" + "t" * (limits.RECORD_NAME_MAX - 6),
        outputEPCList=["urn:example:" + "x" * (limits.IDENTIFIER_MAX - 12)],
    )
    # when
    response = _post(client, "/epcis/events", event)
    # then
    assert response.status_code == 201, response.content


# --- XML -------------------------------------------------------------------------------------------


EPCIS_XML = (
    "<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2' schemaVersion='2.0'"
    " creationDate='2024-03-01T00:00:00Z'>{}</epcis:EPCISDocument>"
)


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            + EPCIS_XML.format("&lol2;"),
            "",
            "declares XML entities",
        ),
        (EPCIS_XML.format("<a>" * 40 + "</a>" * 40), "a (line 1)", f"nests elements more than {limits.MAX_DEPTH}"),
        (EPCIS_XML.format("<a>" * 300 + "</a>" * 300), "line 1, column", "not well-formed XML: Excessive depth"),
        (EPCIS_XML.format("<a>&#0;</a>"), "line 1, column", "not well-formed XML"),
        (EPCIS_XML.format("<a>"), "line 1, column", "not well-formed XML"),
    ],
    ids=["entities", "deep", "deeper than libxml2 takes", "NUL", "broken"],
)
def test_hostile_xml_is_refused_in_the_request(media, body, where, fragment):
    # given
    client = _client()
    before = _kept(media)
    # when
    response = client.generic("POST", "/epcis/capture", body.encode(), content_type="application/xml")
    # then
    error = _single_error(_refused(response))
    assert (error["instance"] or "").startswith(where)
    assert fragment in error["detail"]
    assert _kept(media) == before


def test_brackets_backslashes_and_long_text_inside_strings_are_no_hazard():
    # given: what the fast look at a document's JSON must not mistake for depth or control characters
    event = _event(
        **{
            "example:brackets": "[" * 100 + '\\"{' * 50,
            "example:path": "C:\\bin\\file\\u0000",  # a backslash before b, f and u0000: text, not escapes
            "example:long": "x" * 10_000,  # free text is bounded by the body's size, not here
            "example:when": "0001-01-01T00:00:00+14:00",  # an extension's date-time is kept as text
        }
    )
    # when
    response = _post(_client(), "/epcis/events", event)
    # then
    assert response.status_code == 201, response.content


def test_the_fast_look_and_the_walk_agree_on_what_is_sound():
    # given
    nested: list = []  # level 2 of a document holding it
    for _ in range(limits.MAX_DEPTH - 2):
        nested = [nested]
    documents = [
        {"a": nested},  # exactly the limit
        {"a": [nested]},  # one more
        {"a": "tab\tand\nnewline"},
        {"a": "nul\x00"},
        {"a\x1f": 1},
        {"a": "lone \ud800"},
    ]
    # when
    verdicts = [(_scan(document)[0], _walked(document, None) == ([], {})) for document in documents]
    # then
    assert verdicts == [(True, True), (False, False), (True, True), (False, False), (False, False), (False, False)]


# --- the CSV import, which becomes an EPCIS document ------------------------------------------------


@pytest.mark.parametrize("when", [TOO_EARLY, TOO_LATE])
def test_a_csv_time_out_of_range_is_refused_naming_line_and_column(media, when):
    # given
    client = _client()
    csv = f"unit_gtin,unit_serial,lot_gtin,lot,built_at\n10614141000019,A1,10614141000026,L1,{when}\n"
    before = _kept(media)
    # when
    response = client.generic("POST", "/api/v1/csv/assignments/", csv.encode(), content_type="text/csv")
    # then
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error == {
        "code": "invalid_row",
        "field": "line 2, column built_at",
        "message": f"{when!r} is not valid: outside the instants the ledger stores,"
        " 1900-01-01T00:00:00Z to before 3000-01-01T00:00:00Z",
    }
    assert _kept(media) == before


# --- a fault of the ledger's ------------------------------------------------------------------------


def test_a_single_event_whose_capture_fails_is_answered_as_a_problem_not_a_crash(monkeypatch):
    # given a fault in applying the event (a bug, not the input)
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "document_apply", broken)
    client = _client()
    before = ledger_written()
    # when
    response = _post(client, "/epcis/events", _event())
    # then
    body = _refused(response, status=500, kind="ImplementationException")
    assert body["detail"] == "the ledger failed to capture the event; nothing of it was applied"
    assert ledger_written() == before


@pytest.mark.parametrize(
    ("replace", "by", "where", "fragment"),
    [
        (b"2024-03-01T08:00:00Z", TOO_EARLY.encode(), "/eventTime", "outside the instants the ledger stores"),
        (b"urn:epc:id:sgtin:6970011.000002.1", LONG.encode(), "/epcList/0", "may have at most 255"),
    ],
    ids=["eventTime", "private EPC"],
)
def test_xml_the_xsd_allows_but_the_ledger_cannot_store_is_refused_by_its_job(media, replace, by, where, fragment):
    # given: valid by GS1's XSD, so only the capture job's reading into the JSON binding sees it
    client = _client()
    before = ledger_written()
    body = EPCIS_OPEN + GOOD_EVENT.replace(replace, by) + EPCIS_CLOSE
    # when
    response = client.generic("POST", "/epcis/capture", body, content_type="application/xml")
    run_job(EpcisCapture.objects.get().job)
    job = client.get(response["Location"]).json()
    # then
    (error,) = job["errors"]
    assert (response.status_code, job["success"], job["running"]) == (202, False, False)
    assert error["instance"] == "/epcisBody/eventList/0" + where
    assert fragment in error["detail"]
    assert ledger_written() == before


def test_an_extension_event_type_longer_than_the_ledger_keeps_is_refused(media):
    # given: the schema lets an event type of one's own be any URI or term
    event = {
        "type": "example:PowerBankRefurbishmentEvent",
        "eventTime": "2024-02-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
    }
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, "/epcis/capture", document(event))
    # then
    error = _single_error(_refused(response))
    assert error["instance"] == "/epcisBody/eventList/0/type"
    assert "is 35 characters long; an event type here may have at most 20" in error["detail"]
    assert _kept(media) == before


@pytest.mark.parametrize(
    ("number", "encoding", "where", "fragment"),
    [
        (b"1e999", "utf-8", "line 1 column ", "a number beyond the range of a double"),
        (b"-1e400", "utf-16", None, "-1e400: a number beyond the range of a double"),
        (b"NaN", "utf-8", None, "NaN is not a JSON value (RFC 8259 has no NaN or Infinity)"),
    ],
    ids=["1e999", "utf-16 -1e400", "NaN"],
)
@pytest.mark.parametrize("path", ["/epcis/events", "/epcis/capture"])
def test_a_number_no_double_holds_is_refused_not_stored_as_null(media, path, number, encoding, where, fragment):
    # given
    event = json.dumps(_event()).encode()[:-1] + b', "example:reading": ' + number + b"}"
    body = (
        event if path == "/epcis/events" else b'{"type": "EPCISDocument", "epcisBody": {"eventList": [' + event + b"]}}"
    )
    client = _client()
    before = _kept(media)
    # when
    response = _post(client, path, body.decode().encode(encoding))
    # then
    error = _single_error(_refused(response))
    assert error.get("instance") is None if where is None else error["instance"].startswith(where)
    assert fragment in error["detail"]
    assert _kept(media) == before
