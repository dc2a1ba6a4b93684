"""Who may see and do what, for now: an organisation sees what it owns; regulators see all, read-only.

Authentication: a token (``authentication.py``), a session or basic; ``IsAuthenticated`` is the project default.
Records of other organisations are answered 404, not 403, so their existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Organisation
from traceability.access.policy import Actor, caller_annotations
from traceability.genealogy import received_units
from traceability.ledger.selectors import UnknownSubject, subject_find

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Caller:
    organisation: Organisation | None
    member_role: str | None = None
    regulator: bool = False
    records_findings: bool = False

    @property
    def sees_all(self) -> bool:
        return self.regulator

    @property
    def may_write(self) -> bool:
        """QA engineers and organisation admins write; viewers and regulators only read."""
        return not self.regulator and self.member_role in (MemberRole.QA, MemberRole.ADMIN)

    def owns(self, owner_id: int | None) -> bool:
        return self.organisation is not None and owner_id == self.organisation.pk

    @property
    def actor(self) -> Actor:
        """The caller as the access policy knows it (no query: ``caller_of`` read its roles)."""
        return Actor(
            organisation_id=self.organisation.pk if self.organisation is not None else None,
            member_role=self.member_role,
            regulator=self.regulator,
            records_findings=self.records_findings,
        )


def caller_of(request: Request) -> Caller:
    """The organisation the user acts for and what its roles allow, read once per request (one
    query, or none after a token's)."""
    cached = getattr(request, "_ledger_caller", None)
    if cached is None:
        user, membership = request.user, None
        if user and user.is_authenticated:
            # Read with the token (authentication.py). A session's user is a lazy proxy, so the
            # descriptor is taken from the user model, not from ``type(user)``.
            if get_user_model().membership.is_cached(user):
                membership = getattr(user, "membership", None)
            else:
                membership = (
                    Membership.objects.select_related("organisation")
                    .annotate(**caller_annotations("organisation_id"))
                    .filter(user_id=user.pk)
                    .first()
                )
        if membership is None:
            cached = Caller(organisation=None)
        else:
            annotated = hasattr(membership, "caller_regulator")
            actor = None if annotated else Actor.of(membership.organisation, membership.role)
            cached = Caller(
                organisation=membership.organisation,
                member_role=membership.role,
                regulator=membership.caller_regulator if actor is None else actor.regulator,
                records_findings=membership.caller_records_findings if actor is None else actor.records_findings,
            )
        request._ledger_caller = cached  # type: ignore[attr-defined]
    return cached


class HasOrganisation(BasePermission):
    message = "your account acts for no organisation: ask an administrator to make you a member of one"
    code = "no_organisation"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return caller_of(request).organisation is not None


class RegulatorsReadOnly(BasePermission):
    """Writes are for QA engineers and organisation admins: regulators and viewers read."""

    code = "read_only"

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = caller_of(request)
        if request.method in SAFE_METHODS or caller.may_write:
            return True
        self.message = (
            "regulators have read-only access to the ledger"
            if caller.sees_all
            else "your role in your organisation is viewer, which reads only: ask its admin for the QA engineer role"
        )
        return False


def visible(queryset: QuerySet[M], request: Request, *, owner: str = "owner") -> QuerySet[M]:
    """The rows the caller may read: its organisation's, or all of them for a regulator."""
    caller = caller_of(request)
    if caller.sees_all:
        return queryset
    return queryset.filter(**{owner: caller.organisation})


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
    if not isinstance(unit, Unit):
        raise unknown
    # A unit it received is its to look up too (by URN or Digital Link: the serial is another's).
    if not (caller.sees_all or caller.owns(unit.owner_id) or _received(caller, unit)):
        raise unknown
    return unit


def _received(caller: Caller, unit: Unit) -> bool:
    return caller.organisation is not None and received_units(caller.organisation.pk).filter(pk=unit.pk).exists()
