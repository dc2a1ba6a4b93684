"""Parsers shared by the REST API and the EPCIS binding."""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import BaseParser


class RawDocument(BaseParser):
    """Accepts any media type and leaves the body unread: the view streams it (to disk, or to a
    CSV reader) itself, so a large document is never parsed twice or held as form data."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream
