"""Errors as structured JSON: ``{"code", "message", "field"?}``, the same shape from every view.

``code`` is stable (clients branch on it), ``message`` is for people, ``field`` points at the input
at fault (dotted for nested input, e.g. ``inspections.1``). A validation error also lists every
problem under ``errors``, so a form can mark all its fields at once; the top level repeats the first.

The domain's refusals (``traceability.core.errors.DomainError``) are mapped here, once, by type:
the status from ``DOMAIN_STATUS`` (400 for any type it does not name), the body from the error's
own code, message and field. Views let them through; they neither catch them nor pick codes.

The handler is set per view (``ApiView`` in ``traceability.api.views``) rather than in settings, so
other interfaces built on DRF keep their own conventions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from traceability.core.errors import DomainError
from traceability.core.limits import BodyTooLarge, LengthRequired
from traceability.investigations.evidence import FileTooLarge
from traceability.investigations.exports import ExportNotFinished, NoExportFile, NoFinishedRun
from traceability.investigations.selectors import RunNotFinished
from traceability.investigations.services import InvalidTransition, TraceInProgress
from traceability.ledger.selectors import UnknownSubject

NON_FIELD = {"non_field_errors", "detail"}


class ApiError(exceptions.APIException):
    """An error with a stable code and, optionally, the input field it concerns."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "The request is invalid."

    def __init__(self, message: str | None = None, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail=message, code=code)
        self.field = field


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


# The status of each domain refusal that is not a plain 400, by type (a subclass takes its
# nearest listed ancestor's): unknown things are 404, a state that refuses the request is 409.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    UnknownSubject: status.HTTP_404_NOT_FOUND,
    NoExportFile: status.HTTP_404_NOT_FOUND,
    TraceInProgress: status.HTTP_409_CONFLICT,
    InvalidTransition: status.HTTP_409_CONFLICT,
    RunNotFinished: status.HTTP_409_CONFLICT,
    NoFinishedRun: status.HTTP_409_CONFLICT,
    ExportNotFinished: status.HTTP_409_CONFLICT,
    FileTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    BodyTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    LengthRequired: status.HTTP_411_LENGTH_REQUIRED,
}


def domain_status(error: DomainError) -> int:
    return next(
        (DOMAIN_STATUS[kind] for kind in type(error).__mro__ if kind in DOMAIN_STATUS), status.HTTP_400_BAD_REQUEST
    )


@contextmanager
def input_named(field: str) -> Iterator[None]:
    """Domain refusals raised inside are about the request's input ``field`` (unless they name one):
    the domain knows its arguments, the view knows what the request calls them."""
    try:
        yield
    except DomainError as error:
        error.field = error.field or field
        raise


def invalid(field: str, message: str, code: str) -> serializers.ValidationError:
    """A validation error on one input field, with its own code."""
    return serializers.ValidationError({field: [exceptions.ErrorDetail(message, code=code)]})


def _flatten(detail: Any, pointer: tuple[str, ...] = ()) -> Iterator[tuple[str | None, str, str]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _flatten(value, pointer if key in NON_FIELD else (*pointer, str(key)))
    elif isinstance(detail, list):
        nested = any(isinstance(item, (dict, list)) for item in detail)
        for index, item in enumerate(detail):
            # A list of messages belongs to the field; a list of nested inputs is indexed.
            yield from _flatten(item, (*pointer, str(index)) if nested and item else pointer)
    else:
        yield (".".join(pointer) or None, str(detail), getattr(detail, "code", None) or "invalid")


def _body(field: str | None, message: str, code: str) -> dict[str, str]:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, headers, rollback), with the body rewritten to the house shape; and
    the domain's refusals, by type."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(_body(exc.field, exc.message, exc.code), status=domain_status(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = _body(exc.field, str(exc.detail), exc.detail.code)
        return response
    detail = getattr(exc, "detail", None) if isinstance(exc, exceptions.APIException) else response.data
    problems = list(_flatten(detail if detail is not None else response.data))
    if not problems:
        problems = [(None, "The request could not be processed.", "error")]
    response.data = _body(*problems[0])
    if isinstance(exc, exceptions.ValidationError):
        response.data["errors"] = [_body(*problem) for problem in problems]
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer (for the OpenAPI schema)."""

    code = serializers.CharField(help_text="Stable, machine-readable: branch on this.")
    message = serializers.CharField(help_text="One line for people.")
    field = serializers.CharField(required=False, help_text="The input at fault, dotted for nested input.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = ErrorSerializer(
        many=True,
        required=False,
        help_text="Every problem found; the top level repeats the first. Absent when the body could not be read.",
    )
