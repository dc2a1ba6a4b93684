"""Parsers shared by the REST API and the EPCIS binding."""

from __future__ import annotations

import io
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

from traceability.core.limits import JSON_MAX_DEPTH, json_too_deep


class RawDocument(BaseParser):
    """Accepts any media type and leaves the body unread: the view streams it (to disk, or to a
    CSV reader) itself, so a large document is never parsed twice or held as form data."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing arrays and objects nested deeper than ``JSON_MAX_DEPTH`` before
    parsing (Python's parser would fail with a RecursionError, a 500). The body it reads is bounded
    already (``traceability.core.limits.body_bound``)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = stream.read() if stream is not None else b""
        if json_too_deep(data):
            raise ParseError(f"JSON parse error - arrays and objects nest deeper than {JSON_MAX_DEPTH} levels")
        return super().parse(io.BytesIO(data), media_type, parser_context)
