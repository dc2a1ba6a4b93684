"""Who a page's request acts for: a signed-in user's membership, the one kept in the session.

A user of several organisations picks one with the switcher (``views.organisation_switch``); until
then, and when the kept one is no longer theirs, the first by slug. The caller itself is the access
policy's (``access.permissions.member_caller``), as the REST API and GraphQL find theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from suppliers.models import Membership
from traceability.access.audit import regulator_read_record
from traceability.access.permissions import Caller, member_caller, memberships_of
from traceability.core.audit import AuditAction
from traceability.core.errors import DomainError
from traceability.core.limits import BodyLimit, LengthRequired

SESSION_KEY = "ledger_organisation"


@dataclass(frozen=True)
class PageCaller:
    caller: Caller
    membership: Membership
    memberships: list[Membership]  # every one of the user's, for the switcher

    @property
    def organisation(self) -> Any:
        return self.membership.organisation


def page_caller(request: HttpRequest) -> PageCaller | None:
    """The request's caller, read once (one query, two for a regulator with narrower grants); None
    for an anonymous user and for one who belongs to no organisation."""
    if hasattr(request, "_page_caller"):
        return request._page_caller  # type: ignore[no-any-return]
    found = None
    if request.user.is_authenticated:
        memberships = list(memberships_of(request.user.pk))
        kept = request.session.get(SESSION_KEY)
        chosen = next((m for m in memberships if m.organisation.slug == kept), memberships[0] if memberships else None)
        if chosen is not None:
            found = PageCaller(member_caller(chosen), chosen, memberships)
    request._page_caller = found  # type: ignore[attr-defined]
    return found


def member_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page for members of an organisation: anyone else is sent to sign in (an operator without a
    membership, to the admin's). A regulator's read is appended to the audit trail with its answer."""

    @functools.wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        found = page_caller(request)
        if found is None and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if found is None:  # an operator's account, say: it administers the ledger from the admin
            message = _("Your account belongs to no organisation: the pages show an organisation's records.")
            return render(request, "pages/refused.html", {"message": message, "admin": True}, status=403)
        response = view(request, found, *args, **kwargs)
        identifiers = {name: value for name, value in request.GET.items() if name in ("id", "q")}
        regulator_read_record(
            request=request,
            status=response.status_code,
            action=AuditAction.READ_PAGES,
            view_kwargs={**kwargs, **identifiers},
            caller=found.caller,
        )
        return response

    return page


@dataclass(frozen=True)
class BodyBound:
    """A page's body and how large it may be, checked before anything reads it
    (``traceability.middleware.BodyLimitMiddleware``), and its refusal in the page's words."""

    body: BodyLimit
    said: str | Promise  # with %(limit)s, the body's content allowed, and %(each)s, a file's

    def refused(self, request: HttpRequest, refusal: DomainError) -> HttpResponse:
        if isinstance(refusal, LengthRequired):  # a chunked body this server cannot read as it arrives
            message = _("The form was sent without its length, which this server cannot read: nothing was recorded.")
            return render(request, "pages/refused.html", {"message": message}, status=411)
        sizes = {
            "limit": filesizeformat(self.body.allowed),
            "each": filesizeformat(self.body.allowed // self.body.times),
        }
        return render(request, "pages/refused.html", {"message": str(self.said) % sizes}, status=413)


def body_limited(
    body: BodyLimit, said: str | Promise
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page that takes files: a body over ``body``'s limit is refused (413, ``said``) before it is
    read, before the CSRF check reads the form, whoever sends it; nothing is recorded."""

    def bounded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        view.body_limit = BodyBound(body, said)  # type: ignore[attr-defined]
        return view

    return bounded
