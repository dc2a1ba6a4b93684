"""Who may see and do what, for an HTTP request: an organisation sees what it owns; a regulator what
its grants cover (``traceability.access.policy``), and writes only its own inquiries.

Authentication: a token (``api/authentication.py``), a session or basic; ``IsAuthenticated`` is the project default.
A token acts for its membership's organisation; a session or basic login for the user's only one, or
the one its ``X-Ledger-Organisation`` header names.
Records of other organisations are answered 404, not 403, so their existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from cells.models import Lot
from packs.models import Container, Unit
from suppliers.models import ApiToken, Membership, Organisation, TokenScope
from traceability.access.policy import (
    Actor,
    ResultScope,
    caller_annotations,
    codes_readable,
    investigation_scope,
    investigations_readable,
    readable_through_investigation,
    subject_traceable,
    units_readable,
    upstream_traceable,
)
from traceability.core.models import Job
from traceability.genealogy import units_packed_in
from traceability.investigations.models import Finding, Investigation, TraceRun
from traceability.ledger.selectors import AmbiguousSubject, UnknownSubject, subject_find, subject_unknown
from traceability.ledger.selectors import subjects_coded as ledger_subjects_coded

M = TypeVar("M", bound=Model)


ORGANISATION_HEADER = "X-Ledger-Organisation"


@dataclass(frozen=True)
class Caller:
    """The organisation a request acts for, the access policy's actor for it, and what its
    credential allows (a read-scoped token never writes, whatever the member's role)."""

    organisation: Organisation | None
    actor: Actor
    read_only_token: bool = False

    @property
    def member_role(self) -> str | None:
        return self.actor.member_role

    @property
    def regulator(self) -> bool:
        return self.actor.regulator

    @property
    def sees_all(self) -> bool:
        """A regulator with an ``all`` grant (``traceability.access.models``) reads everything."""
        return self.actor.sees_all

    @property
    def may_write(self) -> bool:
        """As the policy says (QA engineers and organisation admins), and not with a read-scoped token."""
        return self.actor.may_write and not self.read_only_token

    @property
    def may_inquire(self) -> bool:
        """A regulator's QA engineer or admin, and not with a read-scoped token."""
        return self.actor.may_inquire and not self.read_only_token

    def owns(self, owner_id: int | None) -> bool:
        return self.actor.owns(owner_id)


class OrganisationAmbiguous(APIException):
    status_code = 400
    default_code = "organisation_ambiguous"


class OrganisationUnknown(APIException):
    status_code = 404
    default_code = "not_found"


def caller_of(request: Request) -> Caller:
    """The organisation the request acts for and the caller's role in it, read once per request.

    With a token, its membership's (read with the token, no further query). With a session or basic
    login, the user's only membership, or the one the ``X-Ledger-Organisation: <slug>`` header names
    (one query either way): a user of several organisations who names none is answered 400 with the
    choices, and a slug the user is no member of 404 "no such organisation", as if none had it.
    """
    cached = getattr(request, "_ledger_caller", None)
    if cached is not None:
        return cached
    user, membership, token = request.user, None, request.auth
    named = request.headers.get(ORGANISATION_HEADER, "").strip()
    if isinstance(token, ApiToken):
        membership = token.membership
        if named and named != membership.organisation.slug:
            raise OrganisationUnknown(f"no such organisation: {named!r}")
        flags: Any = token
    elif user and user.is_authenticated:
        found = memberships_of(user.pk)
        memberships = list(found.filter(organisation__slug=named) if named else found)
        if named and not memberships:
            raise OrganisationUnknown(f"no such organisation: {named!r}")
        if len(memberships) > 1:
            choices = ", ".join(m.organisation.slug for m in memberships)
            raise OrganisationAmbiguous(
                f"you are a member of several organisations: say which one this request acts for"
                f" in the {ORGANISATION_HEADER} header ({choices})"
            )
        membership = flags = memberships[0] if memberships else None
    cached = (
        Caller(organisation=None, actor=Actor(organisation_id=None))
        if membership is None
        else member_caller(
            membership, flags, read_only_token=isinstance(token, ApiToken) and token.scope == TokenScope.READ
        )
    )
    request._ledger_caller = cached  # type: ignore[attr-defined]
    return cached


def memberships_of(user_id: int) -> QuerySet[Membership]:
    """A user's memberships with their organisations, by organisation slug, each annotated with
    what the access policy needs to know of its organisation (``member_caller``'s ``flags``)."""
    found = Membership.objects.select_related("organisation").annotate(**caller_annotations("organisation_id"))
    return found.filter(user_id=user_id).order_by("organisation__slug")


def member_caller(membership: Membership, flags: Any = None, *, read_only_token: bool = False) -> Caller:
    """The caller acting for ``membership``'s organisation. ``flags``: the row carrying
    ``caller_annotations`` (a token, or the membership itself as ``memberships_of`` reads it); a
    regulator's narrower grants are one more query."""
    flags = membership if flags is None else flags
    actor = Actor(
        organisation_id=membership.organisation_id,
        member_role=membership.role,
        regulator=flags.caller_regulator,
        records_findings=flags.caller_records_findings,
        grants_all=flags.caller_regulator and flags.caller_grants_all,
    )
    if actor.regulator and not actor.grants_all:
        actor = actor.with_grants()  # its narrower grants: one more query, for regulators only
    return Caller(organisation=membership.organisation, actor=actor, read_only_token=read_only_token)


class HasOrganisation(BasePermission):
    message = "your account acts for no organisation: ask an administrator to make you a member of one"
    code = "no_organisation"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return caller_of(request).organisation is not None


class RegulatorsReadOnly(BasePermission):
    """Writes are for QA engineers and organisation admins: regulators, viewers and read-scoped tokens
    read. A view that declares ``inquiry_writes`` also takes a regulator's writes of its own inquiries
    (recording one, its evidence, runs, status and exports); the view asks ``require_own`` of the
    record written to."""

    code = "read_only"

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = caller_of(request)
        if request.method in SAFE_METHODS or caller.may_write:
            return True
        if getattr(view, "inquiry_writes", False) and caller.may_inquire:
            return True
        if caller.regulator:
            self.message = "regulators have read-only access to the ledger"
        elif caller.read_only_token:
            self.message = "this API token's scope is read: writes need a token with write scope"
        else:
            self.message = (
                "your role in your organisation is viewer, which reads only: ask its admin for the QA engineer role"
            )
        return False


def visible(queryset: QuerySet[M], request: Request, *, owner: str = "owner") -> QuerySet[M]:
    """The rows the caller may read: its organisation's, or all of them for a regulator."""
    caller = caller_of(request)
    if caller.sees_all:
        return queryset
    return queryset.filter(**{owner: caller.organisation})


def findings_visible(queryset: QuerySet[Finding], request: Request) -> QuerySet[Finding]:
    """The findings the caller reads: its own, and those of the investigations its grants cover."""
    return queryset.filter(
        readable_through_investigation(caller_of(request).actor, owner="owner_id", investigation="investigation")
    )


def investigations_visible(queryset: QuerySet[Investigation], request: Request) -> QuerySet[Investigation]:
    return queryset.filter(investigations_readable(caller_of(request).actor))


def runs_visible(queryset: QuerySet[TraceRun], request: Request) -> QuerySet[TraceRun]:
    return queryset.filter(
        readable_through_investigation(
            caller_of(request).actor, owner="investigation__owner_id", investigation="investigation"
        )
    )


def jobs_visible(queryset: QuerySet[Job], request: Request) -> QuerySet[Job]:
    """Its own jobs, and the trace runs' jobs of the investigations its grants cover."""
    return queryset.filter(
        readable_through_investigation(
            caller_of(request).actor, owner="owner_id", investigation="trace_run__investigation"
        )
    )


def units_visible(queryset: QuerySet[Unit], request: Request) -> QuerySet[Unit]:
    return queryset.filter(units_readable(caller_of(request).actor))


def require_own(request: Request, owner_id: int | None) -> None:
    """A write on a record the caller reads (an investigation, a finding) is for its owner only: a
    regulator reading another's investigation through its grants traces and exports its own
    inquiries, never that one (403 ``read_only``; a record it may not read was answered 404 before)."""
    if not caller_of(request).owns(owner_id):
        raise PermissionDenied(
            "regulators read the investigations their grants cover; they write only their own inquiries",
            code="read_only",
        )


def result_scope_of(request: Request, investigation: Investigation) -> ResultScope:
    """How much of ``investigation``'s results the caller sees (the access policy's answer)."""
    return investigation_scope(caller_of(request).actor, investigation)


def unit_find(*, ident: str, caller: Caller) -> Unit:
    """The unit ``ident`` names (an EPC URN, a Digital Link, or a serial of the caller's), if the
    caller may see it.

    An unknown unit and another organisation's are refused alike, in the same words
    (``UnknownSubject``), so the answer does not tell whether the unit exists; other
    ``SubjectError``s (a malformed or unsupported identifier) say what is wrong with ``ident``.
    """
    unknown = UnknownSubject(f"no unit is known as {ident.strip()!r}")
    try:
        unit = subject_find(ident, owner=None if caller.sees_all else caller.organisation, units_only=True)
    except UnknownSubject:
        raise unknown from None
    # A unit it received is its to look up too (by URN or Digital Link: the serial is another's).
    if not isinstance(unit, Unit) or not upstream_traceable(caller.actor, unit):
        raise unknown
    return unit


# A bare serial or lot code a regulator looks up is asked of every organisation, among what its
# grants cover (``codes_readable``); this many of each kind at most are named.
LOOKUP_CANDIDATES = 10


def subjects_coded(*, code: str, caller: Caller, limit: int = LOOKUP_CANDIDATES) -> list[Lot | Unit]:
    """The units whose serial and the lots whose lot code is ``code`` that ``caller`` finds by it
    (``policy.codes_readable``: a party its own, a regulator those of every organisation its
    grants cover), each with its owner, ``limit`` of each kind at most: set-based, a fixed number of
    queries however many share the code."""
    units, lots = codes_readable(caller.actor)
    return ledger_subjects_coded(code=code.strip(), lots=lots, units=units, limit=limit)


def subject_lookup(*, ident: str, caller: Caller) -> Lot | Unit:
    """The lot or unit ``ident`` names (an EPC URN, a Digital Link, a serial or a lot code), if the
    caller may open it: a unit whose upstream it may read (``unit_find``'s rule), a lot it may trace
    (``subject_traceable``, as a finding on it asks).

    A party's bare code is looked up among its own records, as ``unit_find`` does; a regulator's
    among every organisation's, of which only those its grants cover count (``subjects_coded``; one
    found: it; several: ``AmbiguousSubject`` naming those only). An unknown subject and one the
    caller may not open are refused alike (``UnknownSubject``, in ``subject_find``'s words).
    """
    value = ident.strip()
    unknown = subject_unknown(value)
    gs1 = value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://"))
    if caller.regulator and not gs1:
        allowed = subjects_coded(code=value, caller=caller)
        if len(allowed) > 1:
            named = ", ".join(f"{found.identity} ({found.owner.slug})" for found in allowed)
            raise AmbiguousSubject(f"{value!r} names several things: {named}; use an EPC URN or a Digital Link")
        # The one found is opened as its URN would be: the page's own check (one, whatever was found).
        if not allowed or not _may_open(caller, allowed[0]):
            raise unknown
        return allowed[0]
    try:
        found = subject_find(value, owner=None if caller.sees_all or gs1 else caller.organisation)
    except UnknownSubject:
        raise unknown from None
    if not _may_open(caller, found):
        raise unknown
    return found


def _may_open(caller: Caller, subject: Lot | Unit) -> bool:
    if isinstance(subject, Unit):
        return upstream_traceable(caller.actor, subject)
    return subject_traceable(caller.actor, subject)


def units_of_gtin(*, gtin: str, caller: Caller) -> QuerySet[Unit]:
    """The units of a trade item (GTIN-14) the caller reads in full (``units_readable``)."""
    return Unit.objects.filter(units_readable(caller.actor), gtin=gtin)


def units_in_container(*, sscc: str, caller: Caller) -> QuerySet[Unit]:
    """The units packed in the carton or pallet ``sscc`` names (at any depth) that the caller reads
    in full; none for an unknown container, as for one holding none of them."""
    container = Container.objects.filter(sscc=sscc).values_list("pk", flat=True).first()
    if container is None:
        return Unit.objects.none()
    return units_packed_in(container).filter(units_readable(caller.actor))
