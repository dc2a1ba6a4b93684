"""``GET /api/v1/audit/``: the audit trail, a page at a time, or the whole filtered trail as CSV.

An organisation's admins read their organisation's entries, a regulator what its grants cover
(``traceability.access.audit`` decides); anyone else is refused with 403 ``not_an_admin``.
``?format=csv`` or ``Accept: text/csv`` answers the filtered entries as one CSV file, streamed.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from traceability.access.audit import ReadsAuditTrail, audit_visible
from traceability.api.errors import ErrorSerializer, ValidationErrorSerializer
from traceability.api.views import ApiMixin
from traceability.core.audit import AuditAction, audit_csv_lines, audit_entries
from traceability.core.models import AuditEntry, AuditSource

# Rows fetched per round trip while a CSV export streams (~1 kB an entry: about 2 MB held at once).
CSV_CHUNK = 2_000


class AuditQuery(serializers.Serializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False, help_text="Only this action.")
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time (ISO 8601).")
    organisation = serializers.SlugField(
        required=False, help_text="Slug of one organisation (a regulator's filter: an admin reads only their own)."
    )


class AuditEntrySerializer(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    action = serializers.ChoiceField(choices=AuditAction.choices)
    source = serializers.ChoiceField(choices=AuditSource.choices)
    identifiers = serializers.ListField(child=serializers.CharField())
    detail = serializers.DictField()

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "action", "username", "organisation", "source", "request_id", "identifiers", "detail"]
        read_only_fields = fields


class AuditPagination(CursorPagination):
    ordering = ("-at", "-id")
    page_size_query_param = "limit"
    max_page_size = 1_000


class CsvRenderer(BaseRenderer):
    """Lets ``?format=csv`` and ``Accept: text/csv`` choose CSV; the view streams the file itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return "".join(audit_csv_lines(data)).encode()


class AuditTrailView(ApiMixin, generics.ListAPIView):
    permission_classes = [*ApiMixin.permission_classes, ReadsAuditTrail]
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvRenderer]
    pagination_class = AuditPagination
    serializer_class = AuditEntrySerializer

    def get_queryset(self) -> QuerySet[AuditEntry]:
        query = AuditQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        fields = query.validated_data
        entries = audit_entries(action=fields.get("action"), since=fields.get("since"), until=fields.get("until"))
        if "organisation" in fields:
            entries = entries.filter(organisation__slug=fields["organisation"])
        return audit_visible(entries, self.request)

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are JSON, in the API's shape, even when the client asked for the CSV file.
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    @extend_schema(
        summary="The audit trail: every write, and every read by a regulator, newest first",
        description=(
            "An organisation's admins read their organisation's entries; a regulator with an `all` grant"
            " every organisation's, one with narrower grants its own and those naming an investigation they"
            " cover. `?format=csv` (or `Accept: text/csv`) answers every entry the filters select as one CSV"
            " file instead of a page."
        ),
        parameters=[AuditQuery],
        responses={
            200: AuditEntrySerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            400: ValidationErrorSerializer,
            403: ErrorSerializer,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        entries = self.get_queryset()
        if request.accepted_renderer.format == CsvRenderer.format:
            response = StreamingHttpResponse(
                audit_csv_lines(entries.iterator(chunk_size=CSV_CHUNK)), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="audit.csv"'
            return response
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
