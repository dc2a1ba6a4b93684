"""The EPCIS 2.0 REST binding under ``/epcis/``, as GS1's OpenAPI document defines it.

Capture is asynchronous (``POST /epcis/capture`` answers 202 with the capture job's ``Location``;
a Celery job applies the document), single-event capture synchronous (``POST /epcis/events``
answers 201 with the event's ``Location``). Errors are RFC 7807 problem documents, as the standard
asks; the caller authenticates as for the REST API and acts for its organisation.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotAuthenticated,
    PermissionDenied,
    Throttled,
)
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from traceability.access.audit import regulator_read_record
from traceability.access.permissions import HasOrganisation, RegulatorsReadOnly, caller_of, visible
from traceability.access.policy import event_reader
from traceability.core.limits import (
    CAPTURE,
    EVENT,
    JSON,
    BodyLimit,
    BodyTooLarge,
    LengthRequired,
    body_bound,
)
from traceability.core.models import AuditAction, JobStatus
from traceability.core.parsers import RawDocument
from traceability.events import queries
from traceability.events.capture import event_document
from traceability.events.models import CaptureErrorBehaviour, EpcisCapture, EpcisEvent, EpcisEventType
from traceability.events.problems import DocumentRejected, Problem
from traceability.events.services import capture_now, capture_submit, event_read, problems_of
from traceability.events.vocabulary import utc_iso
from traceability.ledger.selectors import PrefixLength
from traceability.tasks import job_submit

log = logging.getLogger(__name__)

VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
DOCUMENT_TYPES = ("application/json", "application/ld+json", "application/xml", "text/xml")


class EpcisException(APIException):
    """An error the standard names (``epcisException:…``), answered as an RFC 7807 problem."""

    def __init__(self, status_code: int, kind: str, detail: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(detail=detail)
        self.status_code, self.kind, self.problems = status_code, kind, problems or []


def _problem(status_code: int, kind: str, title: str, detail: str, instance: str | None = None) -> dict[str, Any]:
    body = {"type": f"epcisException:{kind}", "title": title, "status": status_code, "detail": detail}
    return body | ({"instance": instance} if instance else {})


def _capture_error(problem: Problem) -> dict[str, Any]:
    """One capture problem as an RFC 7807 body: ``instance`` points at the event and place."""
    title = "Invalid EPCIS event" if problem.event_index is not None else "Invalid EPCIS document"
    error = _problem(400, "ValidationException", title, str(problem), problem.where or None)
    return error | {"eventIndex": problem.event_index, "eventID": problem.event_id}


def epcis_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BodyTooLarge):
        # The standard's answer to a capture over GS1-EPCIS-Capture-File-Size-Limit, for any body.
        body = _problem(413, "CaptureLimitExceededException", "Capture Payload too large", exc.message)
        headers = {**VERSION_HEADERS, "GS1-EPCIS-Capture-File-Size-Limit": str(exc.kind.limit)}
        return Response(body, status=413, headers=headers)
    if isinstance(exc, LengthRequired):
        return Response(_problem(411, "ImplementationException", "Length Required", exc.message), status=411)
    if isinstance(exc, EpcisException):
        body = _problem(exc.status_code, exc.kind, exc.kind, str(exc.detail))
        if exc.problems:
            body["errors"] = [_capture_error(p) for p in exc.problems]
        return Response(body, status=exc.status_code, headers=VERSION_HEADERS)
    if isinstance(exc, (NotAuthenticated, AuthenticationFailed)):
        return Response(_problem(401, "SecurityException", "Unauthorized", str(exc.detail)), status=401)
    if isinstance(exc, PermissionDenied):
        return Response(_problem(403, "SecurityException", "Forbidden", str(exc.detail)), status=403)
    if isinstance(exc, Throttled):  # too many failed sign-ins from the caller's address
        headers = {"Retry-After": str(exc.wait)} if exc.wait is not None else None
        return Response(
            _problem(429, "SecurityException", "Too many requests", str(exc.detail)), status=429, headers=headers
        )
    if isinstance(exc, APIException):
        code = exc.status_code
        return Response(_problem(code, "ImplementationException", "Request refused", str(exc.detail)), status=code)
    return None


class EpcisView(APIView):
    permission_classes = [IsAuthenticated, HasOrganisation, RegulatorsReadOnly]
    parser_classes = [RawDocument]
    schema = None  # GS1's OpenAPI document describes /epcis/; the REST API's schema leaves it out
    # The kind of body the view takes, and so how large it may be (``traceability.core.limits``).
    body_limit: BodyLimit = JSON

    def get_exception_handler(self) -> Any:
        return epcis_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # First of all, before authentication: an oversized body is refused unread, whoever sends it.
        body_bound(request._request, self.body_limit)
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        for header, value in VERSION_HEADERS.items():
            response.headers.setdefault(header, value)
        regulator_read_record(
            request=request, status=response.status_code, action=AuditAction.READ_EPCIS, view_kwargs=kwargs
        )
        return super().finalize_response(request, response, *args, **kwargs)

    def document_type(self, request: Request) -> str:
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media not in DOCUMENT_TYPES:
            raise EpcisException(
                415,
                "ImplementationException",
                f"Content-Type {media or 'none'!r} is not an EPCIS document type:"
                f" send one of {', '.join(DOCUMENT_TYPES)}",
            )
        return media


def capture_job(capture: EpcisCapture) -> dict[str, Any]:
    """The standard's CaptureJob document."""
    job = capture.job
    running = job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    failed = job is not None and job.status == JobStatus.FAILED
    errors = [_capture_error(p) for p in problems_of(capture)]
    if failed and not errors:
        errors = [_problem(500, "ImplementationException", "Capture failed", job.error or "the capture job failed")]
    return {
        "captureID": str(capture.pk),
        "createdAt": utc_iso(capture.created_at),
        "finishedAt": utc_iso(job.finished_at) if job and job.finished_at else None,
        "running": running,
        "success": not running and not failed and not errors,
        "captureErrorBehaviour": capture.error_behaviour,
        "errors": errors,
        "events": capture.events,
        "captured": capture.captured,
        "repeated": capture.repeated,
        "declared": capture.declared,
    }


class CaptureView(EpcisView):
    body_limit = CAPTURE

    def post(self, request: Request) -> Response:
        """Capture an EPCIS document: 202 and the capture job's Location; a Celery job applies it."""
        behaviour = request.headers.get("GS1-Capture-Error-Behaviour", CaptureErrorBehaviour.ROLLBACK).strip().lower()
        if behaviour not in CaptureErrorBehaviour.values:
            raise EpcisException(
                400,
                "ValidationException",
                f"GS1-Capture-Error-Behaviour {behaviour!r} is not one of rollback, proceed",
            )
        self.document_type(request)
        try:
            capture = capture_submit(
                owner=caller_of(request).organisation,
                document=request._request,  # the body, streamed to disk without being held in memory
                error_behaviour=behaviour,
                created_by=request.user,
                submit=job_submit,
                check_first=True,
            )
        except DocumentRejected as rejected:
            raise EpcisException(
                400, "ValidationException", "the document was refused before capture", problems=rejected.problems
            ) from None
        return Response(
            status=status.HTTP_202_ACCEPTED,
            headers={
                "Location": f"/epcis/capture/{capture.pk}",
                "GS1-EPCIS-Capture-File-Size-Limit": str(self.body_limit.limit),
            },
        )

    def get(self, request: Request) -> Response:
        """The caller's capture jobs, newest first."""
        captures = visible(EpcisCapture.objects.select_related("job"), request).order_by("-pk")[:100]
        return Response([capture_job(capture) for capture in captures])


class CaptureDetailView(EpcisView):
    def get(self, request: Request, capture_id: int) -> Response:
        capture = visible(EpcisCapture.objects.select_related("job"), request).filter(pk=capture_id).first()
        if capture is None:
            raise EpcisException(404, "NoSuchResourceException", f"no capture job {capture_id} is yours to see")
        return Response(capture_job(capture))


class QueryView(EpcisView):
    """Answers EPCISQueryDocuments, in the identifier format the GS1-EPC-Format header asks for."""

    def query_answer(self, request: Request, params: dict[str, str], *, own_first: bool = False) -> Response:
        epc_format = request.headers.get("GS1-EPC-Format", "Always_GS1_Digital_Link")
        if epc_format not in queries.EPC_FORMATS:
            raise EpcisException(
                400,
                "QueryParameterException",
                f"GS1-EPC-Format {epc_format!r} is not one of {', '.join(queries.EPC_FORMATS)}",
            )
        caller = caller_of(request)
        # Who reads which events is the access policy's answer: every event whole, or its part of others'.
        reader = event_reader(caller.actor, caller.organisation)
        try:
            query = queries.events_query(params, visible=queries.readable_events(reader), reader=reader)
            if own_first:
                query = queries.own_first(query, organisation=caller.organisation)
            page = queries.events_page(
                query, params, epc_format=epc_format, prefix_length=PrefixLength(), reader=reader
            )
        except queries.QueryError as exc:
            raise EpcisException(400, "QueryParameterException", str(exc)) from None
        headers = {"GS1-EPC-Format": epc_format}
        if page.next_token:
            following = replace_query_param(request.build_absolute_uri(), "nextPageToken", page.next_token)
            headers["Link"] = f'<{following}>; rel="next"'
        return Response(queries.query_document(page, created=timezone.now()), headers=headers)


class EventsView(QueryView):
    body_limit = EVENT

    def get(self, request: Request) -> Response:
        """Events selected by the standard's query parameters, a page at a time (perPage, nextPageToken)."""
        return self.query_answer(request, request.query_params.dict())

    def post(self, request: Request) -> Response:
        """Capture one event, synchronously: 201 and the event's Location, or 400 with its problems."""
        self.document_type(request)
        event = self._event(request)
        try:
            capture = capture_now(
                owner=caller_of(request).organisation,
                document=io.BytesIO(json.dumps(event_document(event)).encode()),
                created_by=request.user,
                validated=True,  # by ``_event``, before anything was kept
            )
        except Exception:  # noqa: BLE001 (a fault of the ledger's, answered as the standard says, and logged)
            log.exception("POST /epcis/events: the capture job failed")
            raise EpcisException(
                500, "ImplementationException", "the ledger failed to capture the event; nothing of it was applied"
            ) from None
        if capture.problems:
            raise EpcisException(400, "ValidationException", "the event was rejected", problems=problems_of(capture))
        if capture.repeated:
            raise EpcisException(409, "ValidationException", "the ledger has this event already")
        stored = EpcisEvent.objects.filter(capture=capture).values_list("event_id", flat=True).first()
        return Response(status=status.HTTP_201_CREATED, headers={"Location": f"/epcis/events/{quote(stored, safe='')}"})

    def _event(self, request: Request) -> dict[str, Any]:
        """The event, read and validated before anything is kept: a refused one leaves no capture."""
        if (request.content_type or "").split(";")[0].strip().lower() in ("application/xml", "text/xml"):
            raise EpcisException(415, "ImplementationException", "POST /events takes one event as JSON")
        try:
            return event_read(request._request.read())
        except DocumentRejected as rejected:
            raise EpcisException(
                400, "ValidationException", "the event was rejected", problems=rejected.problems
            ) from None


class EventDetailView(QueryView):
    def get(self, request: Request, event_id: str) -> Response:
        """The event with this eventID: the caller's own, else the first of another's it may read
        (eventIDs are unique per capturing organisation, so several may carry one)."""
        answer = self.query_answer(request, {"EQ_eventID": event_id}, own_first=True)
        events = answer.data["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        if not events:
            raise EpcisException(404, "NoSuchResourceException", f"no event {event_id!r} is yours to see")
        return Response({"@context": answer.data["@context"], **events[0]}, headers=dict(answer.items()))


class EpcEventsView(QueryView):
    def get(self, request: Request, epc: str) -> Response:
        """The events naming this EPC anywhere (MATCH_anyEPC), with any other query parameter."""
        return self.query_answer(request, {**request.query_params.dict(), "MATCH_anyEPC": epc})


class EventTypesView(EpcisView):
    def get(self, request: Request) -> Response:
        return Response({"@context": queries.GS1_CONTEXT, "type": "Collection", "member": EpcisEventType.values})


@csrf_exempt
def epcis_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /epcis/ that names no resource of the binding, any method: a problem document."""
    detail = f"{request.path_info} is no resource of the EPCIS 2.0 REST binding"
    body = _problem(404, "NoSuchResourceException", "NoSuchResourceException", detail)
    return JsonResponse(body, status=404, headers=VERSION_HEADERS)
