"""Project-level middleware: every request carries a request id, which the audit trail records;
failed sign-ins on the admin's login form are counted and, past the limit, refused; a page's
oversized upload is refused before it is read; the pages are translated, the machine interfaces are
not.

The id is the client's ``X-Request-ID`` header when it sends a plausible one (a proxy or a client
tracing its calls across systems), otherwise a new UUID; the response echoes it, so a caller can
quote it to find what its request did.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.urls import reverse
from django.utils import translation

from traceability.core import signin
from traceability.core.audit import audit_context
from traceability.core.limits import BodyTooLarge, LengthRequired, body_bound
from traceability.core.models import AuditSource

HEADER = "X-Request-ID"
# Visible ASCII without spaces, starting with a letter or digit: nothing that could split a header
# line, or read as a formula where the audit CSV is opened in a spreadsheet.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][!-~]{0,127}")

# The interface a path belongs to (traceability/urls.py); anything else is a page.
_SOURCES = (
    ("/api/", AuditSource.API),
    ("/epcis/", AuditSource.EPCIS),
    ("/graphql/", AuditSource.GRAPHQL),
    ("/admin/", AuditSource.ADMIN),
)


def request_id_of(request: HttpRequest) -> str:
    given = request.headers.get(HEADER, "").strip()
    return given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())


def source_of(path: str) -> str:
    return next((source for prefix, source in _SOURCES if path.startswith(prefix)), AuditSource.PAGES)


class RequestIdMiddleware:
    """Sets the audit context (request id, interface) for the request and echoes the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        with audit_context(request_id=request_id, source=source_of(request.path_info)):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class SignInThrottleMiddleware:
    """The admin's login form counts failed sign-ins per client address (``core.signin``): a form
    posted back with its errors is a failure, and once an address has failed too often its posts
    are answered 429 with Retry-After, before the password is checked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path_info != reverse("admin:login"):
            return self.get_response(request)
        address = signin.client_address(request)
        if (seconds := signin.wait(address)) is not None:
            refused = HttpResponse(
                f"Too many failed sign-ins: try again in {seconds} s.\n", status=429, content_type="text/plain"
            )
            refused["Retry-After"] = str(seconds)
            return refused
        response = self.get_response(request)
        if response.status_code == 200:  # the form again, with its errors; a sign-in redirects
            signin.failed(address)
        return response


class BodyLimitMiddleware:
    """A page that takes a bounded body (``pages.caller.body_limited``: a form with files) has it
    checked here, before the CSRF middleware reads the form, and so before a byte of an oversized
    upload is spooled to disk; the page says why in its own words. The REST API, EPCIS and GraphQL
    check theirs in their views (they are exempt from the CSRF check, which reads nothing there)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        bound = getattr(view, "body_limit", None)
        if bound is None:
            return None
        try:
            body_bound(request, bound.body)
        except (BodyTooLarge, LengthRequired) as refused:
            return bound.refused(request, refused)  # type: ignore[no-any-return]
        return None


class PagesLocaleMiddleware(LocaleMiddleware):
    """The pages and the admin speak the language the switcher chose, else the browser's; the
    machine interfaces (REST, EPCIS, GraphQL) answer in English whatever Accept-Language says: their
    messages are documented next to stable codes, and DRF's own would otherwise come back in Chinese
    among the domain's English ones."""

    def process_request(self, request: HttpRequest) -> None:
        if source_of(request.path_info) in _MACHINE_SOURCES:
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE  # type: ignore[attr-defined]
            return
        super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if source_of(request.path_info) in _MACHINE_SOURCES:
            return response
        return super().process_response(request, response)


_MACHINE_SOURCES = frozenset({AuditSource.API, AuditSource.EPCIS, AuditSource.GRAPHQL})
