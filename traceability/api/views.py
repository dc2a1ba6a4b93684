"""REST views: each parses its input, scopes what the caller may see, calls one service or read,
and serializes the answer. Errors come out as ``{"code", "message", "field"?}`` (see ``errors``)."""

from __future__ import annotations

import io
import json
from pathlib import PurePosixPath
from typing import Any

import orjson
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django_filters import rest_framework as filters
from django_filters.utils import translate_validation
from drf_spectacular.plumbing import force_instance
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ErrorDetail, PermissionDenied
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from packs.models import Unit
from traceability.access.audit import regulator_read_record
from traceability.access.permissions import (
    HasOrganisation,
    RegulatorsReadOnly,
    caller_of,
    findings_visible,
    investigations_visible,
    jobs_visible,
    require_own,
    result_scope_of,
    runs_visible,
    unit_find,
    units_visible,
)
from traceability.access.policy import (
    ResultScope,
    finding_read_in_full,
    findings_concerning,
    findings_readable,
    result_scope,
    subject_check,
)
from traceability.api import selectors
from traceability.api.errors import (
    ErrorSerializer,
    NotFound,
    ValidationErrorSerializer,
    api_exception_handler,
    input_named,
    invalid,
)
from traceability.api.serializers import (
    AttachmentInput,
    AttachmentSerializer,
    BackwardSerializer,
    BreakdownSerializer,
    ConsigneeSerializer,
    ExportInput,
    FindingCreatedSerializer,
    FindingInput,
    FindingSerializer,
    InvestigationSerializer,
    JobSerializer,
    RunSerializer,
    SiblingsSerializer,
    TransitionInput,
    UnitCertificatesQuery,
    UnitCertificatesSerializer,
    UnitsPageQuery,
    UnitsPageSerializer,
)
from traceability.core.limits import ATTACHMENT, CSV, JSON, BodyLimit, body_bound, control_character
from traceability.core.models import AuditAction, Job
from traceability.core.parsers import BoundedJSONParser, RawDocument
from traceability.events.csv_import import TEMPLATES, csv_document
from traceability.events.problems import DocumentRejected
from traceability.events.services import capture_submit
from traceability.investigations.evidence import ACCEPTED, finding_attach
from traceability.investigations.exports import NoExportFile, export_file, export_start
from traceability.investigations.models import (
    Finding,
    FindingAttachment,
    FindingCategory,
    Investigation,
    InvestigationTransition,
    Severity,
    TraceRun,
)
from traceability.investigations.selectors import findings_shares, run_require_finished
from traceability.investigations.services import (
    finding_record,
    investigation_transition,
    trace_run_start,
)
from traceability.ledger.selectors import PrefixLength
from traceability.tasks import job_submit

ERRORS = {
    400: ValidationErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    413: ErrorSerializer,  # a body over its kind's limit (``ApiMixin.body_limit``)
}
# Any endpoint answers 400 to a query parameter it does not take (``ApiMixin.initial``).
READ_ERRORS = {400: ValidationErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def _documented_query_parameters(view: Any, method: str) -> set[str]:
    """The query parameters a handler documents with ``extend_schema(parameters=…)``.

    drf-spectacular keeps a handler's annotations as a schema class in ``handler.kwargs["schema"]``
    (where DRF's ``@action`` keeps one); asked here as the schema generator asks it.
    tests/test_api_parameters.py checks that what is taken is what the schema lists.
    """
    schema_class = getattr(getattr(view, method.lower(), None), "kwargs", {}).get("schema")
    if schema_class is None:
        return set()
    schema = schema_class()
    schema.view, schema.method = view, method
    names: set[str] = set()
    for parameter in schema.get_override_parameters():
        if isinstance(parameter, OpenApiParameter):
            if parameter.location == OpenApiParameter.QUERY:
                names.add(parameter.name)
        else:  # a serializer: each of its fields is a query parameter
            names.update(force_instance(parameter).fields)
    return names


class ApiMixin:
    """What every view of the API shares: who may call it, the query parameters it takes, and how
    errors are written."""

    permission_classes = [IsAuthenticated, HasOrganisation, RegulatorsReadOnly]
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    # The kind of body the view takes, and so how large it may be (``traceability.core.limits``).
    body_limit: BodyLimit = JSON
    # A view that answers a page says how; the settings' default would make every view look paged.
    pagination_class: type | None = None
    request: Request

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # First of all, before authentication: an oversized body is refused unread, whoever sends it.
        body_bound(request._request, self.body_limit)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # A misspelt or foreign parameter (?serail=, ?owner=) would otherwise be ignored, and the
        # answer read as if it had been applied.
        known = self.query_parameters(request.method or "GET")
        if unknown := [name for name in request.query_params if name not in known]:
            message = "unknown query parameter {!r}: this endpoint takes " + ", ".join(sorted(known))
            raise serializers.ValidationError(
                {name: [ErrorDetail(message.format(name), code="unknown_parameter")] for name in unknown}
            )
        # Nothing a parameter or a path names holds a control character: PostgreSQL cannot even
        # compare with NUL (a 500 where SQLite answered "unknown").
        given = [(name, value) for name, values in request.query_params.lists() for value in values]
        given += [(name, value) for name, value in kwargs.items() if isinstance(value, str)]
        if faults := {name: found for name, value in given if (found := control_character(value))}:
            raise serializers.ValidationError(
                {
                    name: [ErrorDetail(f"contains the control character U+{ord(c):04X}", code="control_character")]
                    for name, c in faults.items()
                }
            )

    def query_parameters(self, method: str) -> set[str]:
        """What the schema documents for this view and method: its own parameters, its filters and
        its pagination (on reads), and DRF's ``format``."""
        names = _documented_query_parameters(self, method)
        if api_settings.URL_FORMAT_OVERRIDE:
            names.add(api_settings.URL_FORMAT_OVERRIDE)
        if method in ("GET", "HEAD"):
            if filterset := getattr(self, "filterset_class", None):
                names.update(filterset.base_filters)
            if paginator := getattr(self, "paginator", None):
                names.update(parameter["name"] for parameter in paginator.get_schema_operation_parameters(self))
        return names

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        regulator_read_record(
            request=request, status=response.status_code, action=AuditAction.READ_API, view_kwargs=kwargs
        )
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]

    @property
    def prefix_length(self) -> PrefixLength:
        if not hasattr(self, "_prefix_length"):
            self._prefix_length = PrefixLength()
        return self._prefix_length

    @property
    def scope(self) -> ResultScope:
        """What the caller may see of a trace's result (the access policy's answer): of the results of
        the investigation the view answers about, if it is about one."""
        if not hasattr(self, "_scope"):
            investigation = self.scoped_investigation()
            self._scope = (
                result_scope(caller_of(self.request).actor)
                if investigation is None
                else result_scope_of(self.request, investigation)
            )
        return self._scope

    def scoped_investigation(self) -> Investigation | None:
        """The investigation whose results this view shows, if any (a regulator's grants may cover it)."""
        return None

    def get_serializer_context(self) -> dict[str, Any]:
        return {
            **super().get_serializer_context(),  # type: ignore[misc]
            "prefix_length": self.prefix_length,
            "full_view": self.scope.full,
            "scope": self.scope,
            "actor": caller_of(self.request).actor,
        }

    def output(
        self, serializer_class: type, instance: Any, *, status_code: int = status.HTTP_200_OK, **context: Any
    ) -> Response:
        context = {
            "request": self.request,
            "prefix_length": self.prefix_length,
            "full_view": self.scope.full,
            "scope": self.scope,
            "actor": caller_of(self.request).actor,
            **context,
        }
        return Response(serializer_class(instance, context=context).data, status=status_code)


class AnyAccept(BaseContentNegotiation):
    """A file is what it is (CSV, JSON, a PDF) whatever the client accepts; errors are written as JSON.
    DRF's default negotiation would answer ``Accept: text/csv`` with 406, having no CSV renderer."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


# --- findings -----------------------------------------------------------------------------------------


class FindingFilter(filters.FilterSet):
    category = filters.ChoiceFilter(choices=FindingCategory.choices)
    severity = filters.ChoiceFilter(choices=Severity.choices)
    about = filters.ChoiceFilter(
        choices=[("my_lots", "Findings other organisations recorded about your lots")],
        method="filter_about",
        label="`my_lots`: only the findings others recorded about your lots (you are told of them, read-only).",
    )

    class Meta:
        model = Finding
        fields = ["category", "severity", "about"]

    def filter_about(self, queryset: QuerySet[Finding], name: str, value: str) -> QuerySet[Finding]:
        # The findings it was told of: those the supplier portal lists (the access policy's one definition).
        return queryset.filter(findings_concerning(caller_of(self.request).actor))


class FindingPagination(CursorPagination):
    ordering = ("-raised_at", "-id")
    page_size_query_param = "limit"
    max_page_size = 1_000


_ATTACHMENTS = Prefetch("attachments", FindingAttachment.objects.select_related("uploaded_by"))


def _findings(request: Request, *, told_of: bool = False) -> QuerySet[Finding]:
    """The findings the caller reads and writes: its own, and those of the investigations its grants
    cover (``findings_visible``); with ``told_of``, also those others recorded about its lots, to
    read (``findings_readable``): writes stay the recorder's."""
    found = Finding.objects.select_related(
        "owner", "raised_by", "investigation", "subject_lot", "subject_unit", "subject_organisation"
    ).prefetch_related("inspections", _ATTACHMENTS)
    if told_of:
        return found.filter(findings_readable(caller_of(request).actor))
    return findings_visible(found, request)


class FindingListView(ApiMixin, generics.ListAPIView):
    """Your organisation's findings (a regulator's: its inquiries, and the findings its grants cover)
    and those other organisations recorded about your lots, newest first, a page at a time: `next`
    carries the cursor. Narrow them by category, severity, and `about=my_lots` for only those you
    were told of. A finding about your lots is read-only and shows what you must act on (`access` is
    `notified`): its subject, defect, window and status, and your `share` of its latest finished
    run; who recorded it, its attachments, inspections and investigation stay the recorder's."""

    serializer_class = FindingSerializer
    inquiry_writes = True
    pagination_class = FindingPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = FindingFilter

    def get_queryset(self) -> QuerySet[Finding]:
        return _findings(self.request, told_of=True)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None  # always paginated (``FindingPagination``)
        context = {**self.get_serializer_context(), "shares": _shares(request, page, scope=self.scope)}
        return self.get_paginated_response(FindingSerializer(page, many=True, context=context).data)

    @extend_schema(
        summary="Record a finding (a regulator's: an inquiry)",
        description=(
            "Opens its investigation with an impact preview and starts a trace run in the background. A"
            " regulator's finding is its inquiry, on a subject its grants cover; no party of the chain sees it."
        ),
        request=FindingInput,
        responses={201: FindingCreatedSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        caller = caller_of(request)
        if not caller.actor.opens_findings:
            raise PermissionDenied(
                "your organisation is told of findings on what it received; those who make lots and units record them",
                code="no_findings",
            )
        data = FindingInput(data=request.data, context={"organisation": caller.organisation, "actor": caller.actor})
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        # The input names one subject (``FindingInput.validate`` kept it as ``subject``, and which
        # field named it as ``named``).
        named, lot_ids = fields["named"], fields["lot_ids"]
        check = subject_check(caller.actor, fields["subject"], lot_ids=lot_ids)
        if not check.allowed:
            value = request.data.get(named)
            if named == "subject":
                # Answered as an unknown subject is: whether it exists is not this organisation's to learn.
                raise invalid(named, f"no lot or unit is known as {value!r}", "unknown_subject")
            # A supplier or site is in the directory; its lots, and whether it has any in the window,
            # are the ledger's: one answer whether it has none or only lots the caller may not trace.
            kind = named.removeprefix("subject_")
            within = "to be within your grants" if caller.actor.regulator else "to you"
            raise invalid(named, f"no lot of {kind} {value!r} is known {within}", "unknown_subject")
        if lot_ids == []:  # only one who may see every lot gets here and learns that a supplier or site has none
            raise invalid(named, f"{fields['subject']} has no lots in the window given", "empty_subject")
        finding = finding_record(
            owner=caller.organisation,
            subject=fields["subject"],
            category=fields["category"],
            severity=fields["severity"],
            description=fields["description"],
            raised_by=request.user,
            window_from=fields.get("window_from"),
            window_to=fields.get("window_to"),
            inspection_ids=fields["inspections"],
            inquiry=caller.regulator,
            traced=check.forward,  # the check's trace of the subject: not traced again for the preview
            submit=job_submit,
        )
        self._scope = result_scope_of(request, finding.investigation)  # its preview, as the caller sees it
        return self.output(FindingCreatedSerializer, _findings(request).get(pk=finding.pk), status_code=201)


class FindingDetailView(ApiMixin, generics.RetrieveAPIView):
    """One finding: its subject in every form, window, inspections, attachments and investigation.
    A finding another organisation recorded about your lots shows its subject, defect, window and
    status, and your `share` of its latest finished run (your units and consignees, and the units
    of others your lots went into, counted per organisation)."""

    serializer_class = FindingSerializer

    def get_queryset(self) -> QuerySet[Finding]:
        return _findings(self.request, told_of=True)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        finding: Finding = self.get_object()
        return self.output(FindingSerializer, finding, shares=_shares(request, [finding], scope=self.scope, one=True))


def _shares(request: Request, findings: list[Finding], *, scope: ResultScope, one: bool = False) -> dict[int, Any]:
    """The caller's share of each finding it was told of (``access: notified``), as the findings'
    latest finished runs stored them: one query for a page. ``one``: a finding's own answer, which
    counts a share a run finished before shares were stored did not keep."""
    actor = caller_of(request).actor
    told = [finding.pk for finding in findings if not finding_read_in_full(actor, finding.owner_id)]
    if not told or scope.organisation_id is None:
        return {}
    return findings_shares(finding_ids=told, party_id=scope.organisation_id, recount_unstored=one)


class FindingAttachmentsView(ApiMixin, generics.GenericAPIView):
    parser_classes = [MultiPartParser]
    body_limit = ATTACHMENT  # an oversized upload is refused before it is spooled to disk
    inquiry_writes = True

    def get_queryset(self) -> QuerySet[Finding]:
        return _findings(self.request)

    @extend_schema(
        summary="Attach a file of evidence to a finding",
        description=(
            "A lab report, photographs, an X-ray image, a spreadsheet of measurements: "
            f"{ACCEPTED}, each at most `LEDGER_ATTACHMENT_MAX_BYTES` (25 MB by default). What the file is"
            " is read from its bytes. 201 with the attachment; the same bytes again on the same finding"
            " answer 200 with the attachment already there. Attachments are never changed or removed."
        ),
        # Written out: drf-spectacular describes a FileField shared with outputs as a URI; a request
        # sends the bytes, which is what makes the docs page offer a file picker.
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary", "description": "The file."}},
                "required": ["file"],
            }
        },
        responses={201: AttachmentSerializer, 200: AttachmentSerializer, 413: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        finding = self.get_object()
        require_own(request, finding.owner_id)
        data = AttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        with input_named("file"):
            attachment, created = finding_attach(finding=finding, file=upload, name=upload.name, by=request.user)
        return self.output(AttachmentSerializer, attachment, status_code=201 if created else 200)


class FindingAttachmentView(ApiMixin, generics.GenericAPIView):
    content_negotiation_class = AnyAccept

    def get_queryset(self) -> QuerySet[FindingAttachment]:
        return FindingAttachment.objects.filter(finding__in=findings_visible(Finding.objects.all(), self.request))

    @extend_schema(
        summary="The file of an attachment, as uploaded",
        description=(
            "The bytes as uploaded, under the attachment's name and with the content type read from them."
            " 404 `file_gone` if the file is no longer in storage."
        ),
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int, attachment: int) -> FileResponse:
        # finding__pk, not finding_id: a lookup on the key itself answers nothing for an id beyond the
        # database's range, where the foreign key's column would overflow.
        found = self.get_queryset().filter(finding__pk=pk, pk=attachment).first()
        if found is None:
            raise NotFound(f"finding {pk} has no attachment {attachment}", code="not_found")
        try:
            content = found.file.open("rb")
        except FileNotFoundError:
            raise NotFound(f"the file of attachment {attachment} is gone from storage", code="file_gone") from None
        return FileResponse(content, as_attachment=True, filename=found.name, content_type=found.content_type)


# --- investigations -----------------------------------------------------------------------------------


def _investigations(request: Request) -> QuerySet[Investigation]:
    return investigations_visible(
        Investigation.objects.select_related(
            "owner",
            "opened_by",
            "finding__owner",
            "finding__raised_by",
            "finding__subject_lot",
            "finding__subject_unit",
            "finding__subject_organisation",
        ).prefetch_related(
            "finding__inspections",
            Prefetch("finding__attachments", FindingAttachment.objects.select_related("uploaded_by")),
            Prefetch("transitions", InvestigationTransition.objects.select_related("by")),
            Prefetch("runs", TraceRun.objects.select_related("job").order_by("-created_at"), to_attr="recent_runs"),
        ),
        request,
    )


class InvestigationDetailView(ApiMixin, generics.RetrieveAPIView):
    """One investigation: its status, its finding, the impact preview taken when it opened, its latest
    run and every status change with who made it (none when a run finished it)."""

    serializer_class = InvestigationSerializer

    def get_queryset(self) -> QuerySet[Investigation]:
        return _investigations(self.request)

    def get_object(self) -> Investigation:
        if not hasattr(self, "_object"):
            self._object = super().get_object()
        return self._object

    def scoped_investigation(self) -> Investigation | None:
        return self.get_object()


class InvestigationActionView(ApiMixin, generics.GenericAPIView):
    """A write on one investigation the caller owns (others' are 404; one a regulator reads through
    its grants, 403 ``read_only``): a regulator's on its own inquiries."""

    inquiry_writes = True
    owner_only = True  # the write changes the investigation's record: its owner's alone

    def get_queryset(self) -> QuerySet[Investigation]:
        return investigations_visible(Investigation.objects.select_related("owner", "finding"), self.request)

    def investigation(self) -> Investigation:
        if not hasattr(self, "_object"):
            self._object = self.get_object()
            if self.owner_only:
                require_own(self.request, self._object.owner_id)
        return self._object

    def scoped_investigation(self) -> Investigation | None:
        return self.investigation()

    def answer(self, pk: int) -> Investigation:
        """The investigation as it is after the write, with everything its answer shows."""
        return _investigations(self.request).get(pk=pk)


class InvestigationTransitionsView(InvestigationActionView):
    @extend_schema(
        summary="Move an investigation to another status",
        description=(
            "People move a traced investigation under review, and close one; runs set tracing and traced."
            " 409 `invalid_transition` when the status does not allow the move (a closed one allows none)."
        ),
        request=TransitionInput,
        responses={200: InvestigationSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        investigation = self.investigation()
        data = TransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        investigation_transition(
            investigation=investigation,
            to=data.validated_data["to"],
            by=request.user,
            note=data.validated_data["note"],
        )
        return self.output(InvestigationSerializer, self.answer(investigation.pk))


class InvestigationRunsView(InvestigationActionView):
    @extend_schema(
        summary="Trace the investigation's subject again, at the ledger's current position",
        description=(
            "202 with the new run; its job traces in the background, and the run's `diff` says what changed"
            " since the previous one. 409 `trace_in_progress` while a run of the same subject is running,"
            " `invalid_transition` once the investigation is closed."
        ),
        request=None,
        responses={202: RunSerializer, 409: ErrorSerializer, **READ_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        investigation = self.investigation()
        run = trace_run_start(investigation=investigation, by=request.user, submit=job_submit)
        return self.output(RunSerializer, TraceRun.objects.select_related("job").get(pk=run.pk), status_code=202)


class InvestigationExportsView(InvestigationActionView):
    # An export writes a file of what the caller reads, not the investigation's record: a regulator
    # exports any investigation its grants cover, as its own job.
    owner_only = False

    @extend_schema(
        summary="Export the latest finished run's affected units, in the background",
        description=(
            "202 with the export's job: follow it at `/api/v1/jobs/{id}/` until its `download` link appears."
            " 409 `no_finished_run` before any run of the investigation has finished."
        ),
        request=ExportInput,
        responses={202: JobSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        investigation = self.investigation()
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        scope = self.scope
        job = export_start(
            investigation=investigation,
            format=data.validated_data["format"],
            by=request.user,
            party_id=None if scope.full else scope.organisation_id,
            requested_for=caller_of(request).organisation,
            submit=job_submit,
        )
        return self.output(JobSerializer, job, status_code=202)


# --- runs ---------------------------------------------------------------------------------------------


class RunViewMixin(ApiMixin):
    def get_queryset(self) -> QuerySet[TraceRun]:
        return runs_visible(TraceRun.objects.select_related("job", "investigation"), self.request)

    def get_object(self) -> TraceRun:
        if not hasattr(self, "_object"):
            self._object = super().get_object()  # type: ignore[misc]
        return self._object

    def scoped_investigation(self) -> Investigation | None:
        return self.get_object().investigation

    def finished_run(self) -> TraceRun:
        """The run, once its job has succeeded; a run still tracing is refused (``RunNotFinished``)."""
        return run_require_finished(run=self.get_object())  # type: ignore[attr-defined]


class RunDetailView(RunViewMixin, generics.RetrieveAPIView):
    """One trace run: the ledger position it traced at, its unit and consignee counts, what changed since
    the previous run, and its job's progress."""

    serializer_class = RunSerializer


UNIT_FILTERS = [
    OpenApiParameter("exposure", str, enum=["definite", "potential"]),
    OpenApiParameter("product_model", str, description="Model number, e.g. A1263."),
    OpenApiParameter("work_order", str, description="Work-order number."),
    OpenApiParameter("consignee", str, description="Slug of an organisation that received the unit."),
]


class BuiltJSONRenderer(JSONRenderer):
    """DRF's JSON, written by orjson: for a body built as plain dicts, lists, strings, numbers and
    datetimes (``as_built``), byte for byte what ``JSONRenderer`` writes (compact, UTF-8, datetimes
    in ISO 8601 with ``Z`` for UTC, U+2028 and U+2029 escaped) in a tenth of the time: 1 ms of a
    100-unit page. Anything else orjson does not know goes to DRF's encoder; an ``indent`` asked in
    the Accept header, to DRF's renderer."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        written = orjson.dumps(data, default=self.encoder_class().default, option=orjson.OPT_UTC_Z)
        return written.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


class RunUnitsView(RunViewMixin, generics.GenericAPIView):
    renderer_classes = [BuiltJSONRenderer, *(r for r in api_settings.DEFAULT_RENDERER_CLASSES if r is not JSONRenderer)]

    @extend_schema(
        summary="The run's affected units, a page at a time",
        description=(
            "Units in id order from the run's stored result. `next` carries the cursor; with filters a "
            "page may hold fewer than `limit` units: follow `next` until it is null."
        ),
        parameters=[UnitsPageQuery, *UNIT_FILTERS],
        responses={200: UnitsPageSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        run = self.finished_run()
        query = UnitsPageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        unit_filter = None  # none asked: no filter set to build and validate (a third of a millisecond)
        if any(name in request.query_params for name in selectors.AffectedUnitFilter.base_filters):
            unit_filter = selectors.AffectedUnitFilter(data=request.query_params, queryset=Unit.objects.none())
            if not unit_filter.is_valid():
                raise translate_validation(unit_filter.errors)
        page = selectors.run_units_page(
            run,
            after=query.validated_data["after"],
            limit=query.validated_data["limit"],
            filters=unit_filter,
            prefix_length=self.prefix_length,
            shown=None if self.scope.full else self.scope.units_shown,
            party_id=None if self.scope.full else self.scope.organisation_id,
        )
        next_url = None
        if page.next_after is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "after", page.next_after)
        # built in UnitsPageSerializer's shape: see ``as_built``
        return Response({"run": run.pk, "position": run.position, "next": next_url, "results": page.units})


class ListPagination(CursorPagination):
    """Cursor pagination, as for findings (``cursor``, ``limit``; ``next``, ``previous``, ``results``), of a
    list read whole: a run's consignees are rolled up from every shipment of its units at once, one
    row per organisation that received any. The opaque cursor holds the offset of the page."""

    page_size_query_param = "limit"
    max_page_size = 1_000
    # DRF caps a cursor's offset at 1,000, a tie-breaker there; here the offset is the whole cursor.
    offset_cutoff = None

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        cursor = self.decode_cursor(request)
        self.offset, self.count = (cursor.offset if cursor else 0), len(queryset)
        return list(queryset[self.offset : self.offset + self.page_size])

    def get_next_link(self) -> str | None:
        if self.offset + self.page_size >= self.count:
            return None
        return self.encode_cursor(Cursor(offset=self.offset + self.page_size, reverse=False, position=None))

    def get_previous_link(self) -> str | None:
        if self.offset == 0:
            return None
        if self.offset <= self.page_size:
            return remove_query_param(self.base_url, self.cursor_query_param)
        return self.encode_cursor(Cursor(offset=self.offset - self.page_size, reverse=False, position=None))


class RunConsigneesView(RunViewMixin, generics.GenericAPIView):
    pagination_class = ListPagination

    @extend_schema(
        summary="Who received the run's affected units, how many, first and last shipped",
        description=(
            "Each organisation that received affected units, directly or inside a carton or pallet at any"
            " nesting depth, most units first, a page at a time: `next` carries the cursor."
            " 409 `run_not_finished` until the run's job has succeeded."
        ),
        responses={200: ConsigneeSerializer(many=True), 409: ErrorSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        scope = self.scope
        consignees = selectors.run_consignees(
            self.finished_run(), party_id=None if scope.full else scope.organisation_id
        )
        page = self.paginate_queryset(consignees)
        bodies = [selectors.consignee_body(c, prefix_length=self.prefix_length) for c in page]
        return self.get_paginated_response(ConsigneeSerializer(bodies, many=True).data)


class RunBreakdownView(RunViewMixin, generics.GenericAPIView):
    @extend_schema(
        summary="The run's affected units counted by product model, work order, site, month and consignee",
        description=(
            "Each affected unit is counted once per dimension, as definite when any path to it is."
            " 409 `run_not_finished` until the run's job has succeeded."
        ),
        responses={200: BreakdownSerializer, 409: ErrorSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        scope = self.scope
        breakdown = selectors.run_breakdown(
            self.finished_run(),
            shown=None if scope.full else scope.units_shown(),
            party_id=None if scope.full else scope.organisation_id,
        )
        return self.output(BreakdownSerializer, breakdown)


# --- one unit -----------------------------------------------------------------------------------------

IDENT = OpenApiParameter(
    "ident",
    str,
    OpenApiParameter.PATH,
    description="URL-encoded EPC URN, GS1 Digital Link, or a serial of your organisation.",
)


class UnitView(ApiMixin, APIView):
    def unit(self, ident: str) -> Unit:
        with input_named("ident"):
            return unit_find(ident=ident, caller=caller_of(self.request))

    def visible_units(self) -> QuerySet[Unit]:
        """The units the caller sees in full (the access policy's answer): its own, those it received,
        and a regulator's within its grants."""
        return units_visible(Unit.objects.all(), self.request)


# ``as_built``: the two views below (and a run's units page, ``RunUnitsView``) answer with what the
# selector built, not through their serializer. The selectors build plain JSON-ready dicts in the
# serializers' shape (which documents them in the schema); running DRF's field-by-field copy over 100
# siblings or 40 upstream lots cost more than the trace itself, and 28 ms of a 100-unit page in the
# 1M-unit bench world. tests/test_api_units.py and tests/test_api_runs.py check that the serializers
# give the same.


class UnitBackwardView(UnitView):
    @extend_schema(
        summary="Every upstream lot of a unit, with suppliers, sites, inspections and certificates",
        description=(
            "Every lot the unit was made from, at every level, with the path to it and whether the link is"
            " definite; and the units a refurbished unit was made from. Another organisation's unit answers"
            " 404, like an unknown one."
        ),
        parameters=[IDENT],
        responses={200: BackwardSerializer, **ERRORS},
    )
    def get(self, request: Request, ident: str) -> Response:
        backward = selectors.unit_backward(self.unit(ident), prefix_length=self.prefix_length)
        return Response(backward)  # built in BackwardSerializer's shape: see ``as_built``


class UnitSiblingsView(UnitView):
    @extend_schema(
        summary="Units sharing a direct input lot with a unit, a page at a time",
        description="Siblings in unit id order; `next` carries the cursor, null on the last page.",
        parameters=[IDENT, UnitsPageQuery],
        responses={200: SiblingsSerializer, **ERRORS},
    )
    def get(self, request: Request, ident: str) -> Response:
        query = UnitsPageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        siblings = selectors.unit_siblings(
            self.unit(ident),
            visible_units=self.visible_units(),
            prefix_length=self.prefix_length,
            after=query.validated_data["after"],
            limit=query.validated_data["limit"],
        )
        after = siblings.pop("next_after")
        siblings["next"] = None if after is None else replace_query_param(request.build_absolute_uri(), "after", after)
        return Response(siblings)  # built in SiblingsSerializer's shape: see ``as_built``


class UnitCertificatesView(UnitView):
    @extend_schema(
        summary="Is the unit certified: its standing under each certification scheme",
        description=(
            "For each scheme (or `scheme`), the answer on the day asked (`on`, today by default): valid,"
            " suspended, revoked, expired, or none, with the certificate it rests on (number, holder, issuer,"
            " validity, and what it covers: product models, cell models, sites). A certificate covers the unit"
            " when it covers its product model and, if it names sites, the site the unit was made at. Whose"
            " units may be asked about is the access policy's (its own, or one it received; a regulator with"
            " an `all` grant any): another organisation's unit answers 404, like an unknown one."
        ),
        parameters=[IDENT, UnitCertificatesQuery],
        responses={200: UnitCertificatesSerializer, **ERRORS},
    )
    def get(self, request: Request, ident: str) -> Response:
        query = UnitCertificatesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = selectors.unit_certificates_read(
            self.unit(ident),
            scheme=query.validated_data.get("scheme"),
            on=query.validated_data.get("on"),
            prefix_length=self.prefix_length,
        )
        return self.output(UnitCertificatesSerializer, answer)


# --- jobs ---------------------------------------------------------------------------------------------


class JobViewMixin(ApiMixin):
    def get_queryset(self) -> QuerySet[Job]:
        return jobs_visible(Job.objects.all(), self.request)


class JobDetailView(JobViewMixin, generics.RetrieveAPIView):
    """A background job (a trace run, an export, an EPCIS capture or CSV import): its status, phase and
    progress, its error if it failed, and where to download the file once an export has written it."""

    serializer_class = JobSerializer


class JobDownloadView(JobViewMixin, generics.GenericAPIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="The file a finished export wrote",
        description=(
            "CSV or JSON, by the export's format. 409 `job_not_finished` until the job has succeeded;"
            " 404 `no_file` for a job that writes no file, or whose file is gone."
        ),
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.BINARY),
            409: ErrorSerializer,
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> FileResponse:
        job: Job = self.get_object()
        export = export_file(job=job)
        try:
            content = export.file.open("rb")
        except FileNotFoundError:
            raise NoExportFile(f"the file of export {job.pk} is gone from storage") from None
        suffix = PurePosixPath(export.file.name).suffix
        filename = f"investigation-{export.run.investigation_id}-{export.format}{suffix}"
        content_type = "text/csv" if suffix == ".csv" else "application/json"
        return FileResponse(content, as_attachment=True, filename=filename, content_type=content_type)


# --- bulk CSV for QA teams ----------------------------------------------------------------------------

CSV_KIND = OpenApiParameter(
    "kind", str, OpenApiParameter.PATH, enum=sorted(TEMPLATES), description="The template: what the rows record."
)


class CsvTemplateView(ApiMixin, APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="A CSV template: its header and one example row",
        description="Fill it in and POST it to `/api/v1/csv/{kind}/`. 404 `no_template` for an unknown kind.",
        parameters=[CSV_KIND],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY), **READ_ERRORS},
    )
    def get(self, request: Request, kind: str) -> HttpResponse:
        if kind not in TEMPLATES:
            raise NotFound(f"no CSV template {kind!r}: use one of {', '.join(sorted(TEMPLATES))}", code="no_template")
        response = HttpResponse(TEMPLATES[kind].csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{kind}.csv"'
        return response


class CsvImportView(ApiMixin, APIView):
    parser_classes = [RawDocument]
    body_limit = CSV

    @extend_schema(
        summary="Load a CSV file of assignments, work orders, packing or shipments",
        description=(
            "The body is the CSV file (`Content-Type: text/csv`). Bad rows answer 400, each named by line and"
            " column, and nothing is applied; a good file is captured as EPCIS events: 202, and `Location` names"
            " the EPCIS capture job (`/epcis/capture/{id}`)."
        ),
        parameters=[CSV_KIND],
        request={"text/csv": OpenApiTypes.BINARY},
        responses={202: OpenApiResponse(description="Accepted: see the Location header"), **ERRORS},
    )
    def post(self, request: Request, kind: str) -> Response:
        if kind not in TEMPLATES:
            raise NotFound(f"no CSV template {kind!r}: use one of {', '.join(sorted(TEMPLATES))}", code="no_template")
        try:
            document = csv_document(kind, request._request.read())
        except DocumentRejected as rejected:
            errors = [{"code": "invalid_row", "message": p.message, "field": p.where} for p in rejected.problems]
            body = {"code": "invalid_file", "message": f"{len(errors)} problem(s) in the file, nothing applied"}
            return Response({**body, "field": errors[0]["field"], "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        capture = capture_submit(
            owner=caller_of(request).organisation,
            document=io.BytesIO(json.dumps(document).encode()),
            created_by=request.user,
            submit=job_submit,
            audit_action=AuditAction.CSV_IMPORT,
        )
        location = f"/epcis/capture/{capture.pk}"
        return Response(
            {"capture": capture.pk, "job": str(capture.job_id), "status": location},
            status=202,
            headers={"Location": location},
        )


# --- no such endpoint ---------------------------------------------------------------------------------


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any path under /api/v1/ that names no endpoint (``/api/v1/jobs/not-a-uuid/``), any method: the
    API's own 404, not Django's page. A path missing only its final slash is redirected as Django's
    APPEND_SLASH would (a read), or told so (a write, whose body a redirect would lose)."""
    path, hint = request.path_info, ""
    if not path.endswith("/"):
        try:
            match = resolve(f"{path}/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            if request.method in ("GET", "HEAD"):
                return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
            hint = f": did you mean {path}/ (with the final slash)?"
    return JsonResponse({"code": "not_found", "message": f"no endpoint at {path}{hint}"}, status=404)
