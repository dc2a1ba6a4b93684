"""The supplier's side of a finding (issue 15): the findings others recorded about its lots, its 8D
responses to their investigations, and the inspection results and certificates of analysis it
records on its own lots. Who may read and write each is the access policy's answer
(``access.policy``: ``findings_concerning``, ``response_access``, ``lot_writable``); a refusal of
access reads as an unknown finding or lot, so existence does not leak.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cells.models import Lot
from cells.selectors import lot_inspections, lot_specs
from cells.services import Measured, inspection_record
from packs.models import Unit
from traceability.access.permissions import caller_of
from traceability.access.policy import (
    ResponseAccess,
    findings_concerning,
    lot_inspections_readable,
    lot_writable,
    response_access,
)
from traceability.api.errors import ErrorSerializer, NotFound, input_named
from traceability.api.serializers import (
    ConcerningFindingSerializer,
    InspectionInput,
    LotInspectionSerializer,
    LotInspectionsSerializer,
    ResponseInput,
    SupplierResponseSerializer,
)
from traceability.api.views import ERRORS, READ_ERRORS, AnyAccept, ApiMixin, FindingPagination
from traceability.core.limits import ATTACHMENT
from traceability.core.parsers import BoundedJSONParser
from traceability.investigations.models import Finding, Investigation
from traceability.investigations.responses import investigation_responses, response_revise, responses_standing
from traceability.investigations.selectors import findings_shares
from traceability.ledger.selectors import UnknownSubject, subject_find

# --- findings about the caller's lots -----------------------------------------------------------------


class ConcerningFindingsView(ApiMixin, generics.ListAPIView):
    """The findings other organisations recorded about your lots, newest first, a page at a time
    (`next` carries the cursor): the defect and its status; how many units of each of your customers
    it reaches (`share.others`, as its latest finished run counted them: never their serials or
    distributors; `share` is null before a run finished); and where your 8D response to it stands."""

    serializer_class = ConcerningFindingSerializer
    pagination_class = FindingPagination

    def get_queryset(self) -> QuerySet[Finding]:
        return Finding.objects.select_related(
            "investigation", "subject_lot", "subject_unit", "subject_organisation"
        ).filter(findings_concerning(caller_of(self.request).actor))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # always paginated (``FindingPagination``)
        party = caller_of(request).actor.organisation_id
        ids = [finding.pk for finding in page]
        shares = findings_shares(finding_ids=ids, party_id=party) if party is not None else {}
        responses = responses_standing(finding_ids=ids, responder_id=party) if party is not None else {}
        context = {**self.get_serializer_context(), "shares": shares, "responses": responses}
        return self.get_paginated_response(ConcerningFindingSerializer(page, many=True, context=context).data)


# --- 8D responses ---------------------------------------------------------------------------------------


class FindingResponsesView(ApiMixin, APIView):
    parser_classes = [BoundedJSONParser]

    def investigation(self, pk: int) -> tuple[Investigation, ResponseAccess]:
        """The finding's investigation and what the caller may do with its responses; one it may not
        read them of is answered as a finding that does not exist."""
        # finding__pk, not finding_id: an id beyond the database's range names nothing, not a 500.
        investigation = Investigation.objects.select_related("finding").filter(finding__pk=pk).first()
        access = ResponseAccess.NONE
        if investigation is not None:
            access = response_access(caller_of(self.request).actor, investigation)
        if investigation is None or access is ResponseAccess.NONE:
            raise NotFound(f"no finding {pk} is known", code="not_found")
        return investigation, access

    @extend_schema(
        summary="The suppliers' 8D responses to a finding's investigation",
        description=(
            "Each response with what it says now (`latest`) and every revision, oldest first. The"
            " investigation's owner and a regulator whose grants cover it read every response; a supplier"
            " the investigation concerns (its lot is the subject, upstream of it, or what the trace reached"
            " units through) reads its own. Anyone else: 404, as for an unknown finding."
        ),
        responses={200: SupplierResponseSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        investigation, access = self.investigation(pk)
        shown = investigation_responses(investigation=investigation, shown=access.shown(caller_of(request).actor))
        return self.answer(shown, many=True)

    @extend_schema(
        summary="Revise your 8D response to a finding's investigation",
        description=(
            "Appends a revision with the steps given changed (the others as they were): 201 for the first,"
            " which opens the response, 200 after. Revisions are kept as written, never changed. 400"
            " `nothing_changed` when every step already reads so; `incomplete_response` when `submitted`"
            " with a step from D3 containment to D7 prevention blank. For the suppliers the investigation"
            " concerns; its owner is answered 403 `not_a_responder`."
        ),
        request=ResponseInput,
        responses={201: SupplierResponseSerializer, 200: SupplierResponseSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        investigation, access = self.investigation(pk)
        caller = caller_of(request)
        if access is not ResponseAccess.OWN or caller.organisation is None:
            raise PermissionDenied(
                f"finding {pk} is read by your organisation, not answered by it: the suppliers whose lots"
                " it concerns respond to it",
                code="not_a_responder",
            )
        data = ResponseInput(data=request.data)
        data.is_valid(raise_exception=True)
        revision = response_revise(
            investigation=investigation, responder=caller.organisation, changes=data.validated_data, by=request.user
        )
        (response,) = investigation_responses(investigation=investigation, shown=access.shown(caller.actor))
        opened = revision.number == 1
        return self.answer(response, status_code=status.HTTP_201_CREATED if opened else status.HTTP_200_OK)

    def answer(self, instance: Any, *, status_code: int = status.HTTP_200_OK, many: bool = False) -> Response:
        return Response(
            SupplierResponseSerializer(instance, many=many, context={"request": self.request}).data, status=status_code
        )


# --- a lot's inspections and certificates of analysis ---------------------------------------------------

LOT_IDENT = OpenApiParameter(
    "ident",
    str,
    OpenApiParameter.PATH,
    description="URL-encoded EPC URN (LGTIN), GS1 Digital Link, or a lot code of your organisation.",
)


class LotView(ApiMixin, APIView):
    def lot(self, ident: str, *, write: bool = False) -> Lot:
        """The lot ``ident`` names, if the caller may read its inspections (record them, ``write``);
        an unknown lot and another's are answered alike, in the same words."""
        caller = caller_of(self.request)
        with input_named("ident"):
            try:
                found: Lot | Unit | None = subject_find(ident, owner=None if caller.sees_all else caller.organisation)
            except UnknownSubject:
                found = None
            allowed = lot_writable if write else lot_inspections_readable
            if not isinstance(found, Lot) or not allowed(caller.actor, found):
                raise UnknownSubject(f"no lot is known as {ident.strip()!r}")
        return found


class LotInspectionsView(LotView):
    parser_classes = [BoundedJSONParser, MultiPartParser]
    body_limit = ATTACHMENT  # a certificate's file: refused unread past its limit

    @extend_schema(
        summary="Your lot's limits and inspections, with their measured values and documents",
        description=(
            "The limits its values are checked against (its material's or cell model's), and the"
            " inspections you recorded of it, newest first. Another organisation's lot: 404, as an unknown one."
        ),
        parameters=[LOT_IDENT],
        responses={200: LotInspectionsSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, ident: str) -> Response:
        lot = self.lot(ident)
        answer = {"lot": lot.identity, "limits": lot_specs(lot=lot), "inspections": lot_inspections(lot=lot)}
        return Response(LotInspectionsSerializer(answer, context={"request": request}).data)

    @extend_schema(
        summary="Record inspection results or a certificate of analysis of your lot",
        description=(
            "The measured values, each checked against the lot's limit for its property: a value outside"
            " its limits is recorded as failing (the inspection's `outcome` is `fail`), not refused. Refused"
            " with nothing kept (400, `field` pointing at the value): `unknown_property` (no limit for it),"
            " `wrong_unit` (not the limit's unit), `not_a_number`, `repeated_property`, `no_limits` (the"
            " lot's material has none). As JSON, or as multipart/form-data with the document in `file` and"
            " `results` as JSON text. Another organisation's lot: 404, as an unknown one."
        ),
        parameters=[LOT_IDENT],
        request={"application/json": InspectionInput, "multipart/form-data": InspectionInput},
        responses={201: LotInspectionSerializer, 413: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, ident: str) -> Response:
        lot = self.lot(ident, write=True)
        data = InspectionInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = fields.get("file")
        with input_named("file"):
            inspection = inspection_record(
                lot=lot,
                results=[Measured(r["property"], r["value"], r["unit"]) for r in fields["results"]],
                inspected_at=fields["inspected_at"],
                method=fields["method"],
                file=upload,
                name=upload.name if upload is not None else "",
                sample_size=fields.get("sample_size"),
                notes=fields["notes"],
                by=request.user,
            )
        recorded = lot_inspections(lot=lot).get(pk=inspection.pk)
        return Response(LotInspectionSerializer(recorded).data, status=status.HTTP_201_CREATED)


class LotInspectionDocumentView(LotView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="The document an inspection came in, as uploaded",
        description="404 `file_gone` if the file is no longer in storage.",
        parameters=[LOT_IDENT],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY), **READ_ERRORS},
    )
    def get(self, request: Request, ident: str, inspection: int) -> FileResponse:
        lot = self.lot(ident)
        found = lot_inspections(lot=lot).filter(pk=inspection).exclude(attachment="").first()
        if found is None:
            raise NotFound(f"lot {ident.strip()!r} has no inspection {inspection} with a document", code="not_found")
        try:
            content = found.attachment.open("rb")
        except FileNotFoundError:
            raise NotFound(f"the document of inspection {inspection} is gone from storage", code="file_gone") from None
        return FileResponse(
            content, as_attachment=True, filename=found.attachment_name, content_type=found.attachment_content_type
        )
