"""The domain's refusals as types with stable codes, and the one place each interface maps them."""

import re

import pytest
from django.core.management import CommandError, call_command

from tests.trace_world import build_world
from traceability.api.errors import api_exception_handler, input_named
from traceability.core.errors import DomainError
from traceability.genealogy.commissioning import SerialTaken
from traceability.genealogy.writes import CycleRefused, UnknownIds
from traceability.investigations.evidence import EmptyFile, FileTooLarge, FileTypeRefused
from traceability.investigations.exports import ExportFormatUnknown, ExportNotFinished, NoExportFile, NoFinishedRun
from traceability.investigations.selectors import RunNotFinished
from traceability.investigations.services import EmptySubject, InvalidTransition, InvalidWindow, TraceInProgress
from traceability.ledger.selectors import AmbiguousSubject, MalformedSubject, UnknownSubject, UnsupportedSubject


def _all(kind):
    for subclass in kind.__subclasses__():
        yield subclass
        yield from _all(subclass)


def test_every_refusal_has_a_snake_case_code_and_the_codes_the_api_returns_are_kept():
    # given every refusal the product defines (the imports above load each module that defines them)
    refusals = list(_all(DomainError))
    # when
    codes = {kind.code for kind in refusals}
    # then
    assert [kind.__name__ for kind in refusals if not re.fullmatch(r"[a-z]+(_[a-z]+)*", kind.code)] == []
    assert {
        "unknown_subject",
        "invalid_identifier",
        "unsupported_identifier",
        "ambiguous_subject",
        "trace_in_progress",
        "invalid_transition",
        "run_not_finished",
        "no_finished_run",
        "job_not_finished",
        "no_file",
        "empty_file",
        "file_too_large",
        "file_type",
    } <= codes


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (UnknownSubject, 404),
        (NoExportFile, 404),
        (MalformedSubject, 400),
        (UnsupportedSubject, 400),
        (AmbiguousSubject, 400),
        (TraceInProgress, 409),
        (InvalidTransition, 409),
        (RunNotFinished, 409),
        (NoFinishedRun, 409),
        (ExportNotFinished, 409),
        (FileTooLarge, 413),
        (EmptyFile, 400),
        (FileTypeRefused, 400),
        (InvalidWindow, 400),
        (EmptySubject, 400),
        (ExportFormatUnknown, 400),
        (CycleRefused, 400),
        (UnknownIds, 400),
        (SerialTaken, 400),
    ],
)
def test_rest_answers_each_refusal_with_the_status_of_its_type_and_its_code_message_and_field(refusal, status):
    # when
    response = api_exception_handler(refusal("why it was refused", field="subject"), {})
    # then
    assert (response.status_code, response.data) == (
        status,
        {"code": refusal.code, "message": "why it was refused", "field": "subject"},
    )


def test_a_refusal_without_a_field_is_answered_without_one():
    response = api_exception_handler(TraceInProgress("run 3 of investigation #2 is still tracing"), {})
    assert (response.status_code, response.data) == (
        409,
        {"code": "trace_in_progress", "message": "run 3 of investigation #2 is still tracing"},
    )


def test_a_view_names_the_request_input_a_refusal_is_about_unless_the_refusal_names_one():
    # when
    with pytest.raises(UnknownSubject) as unnamed, input_named("ident"):
        raise UnknownSubject("no unit is known as 'U9'")
    with pytest.raises(ExportFormatUnknown) as named, input_named("body"):
        raise ExportFormatUnknown("unknown export format 'xml'", field="format")
    # then
    assert (unnamed.value.field, named.value.field) == ("ident", "format")


@pytest.mark.django_db
def test_the_cli_ends_a_refusal_as_a_command_error_with_its_message():
    # given two lots with the same code, of two organisations
    w = build_world()
    w.m3.code = "M1"
    w.m3.save()
    # when / then
    with pytest.raises(CommandError) as refused:
        call_command("trace", "forward", "M1")
    assert str(refused.value) == (
        f"'M1' names several things: {w.m1.identity} ({w.m1.owner.slug}), {w.m3.identity} ({w.m3.owner.slug});"
        " name the organisation or use an EPC URN"
    )
