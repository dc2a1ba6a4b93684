"""What the access policy audits and who reads the audit trail.

Every read by a regulator is appended to the trail: each interface calls ``regulator_read_record``
once, from the view all its views share (REST: ``ApiMixin``, EPCIS: ``EpcisView``), with the
answer it gave. The trail itself is read by an organisation's admins (their organisation's
entries) and by regulators (all entries, until grants scope them: issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from suppliers.models import MemberRole
from traceability.access.permissions import Caller, OrganisationAmbiguous, OrganisationUnknown, caller_of
from traceability.core.audit import audit_record
from traceability.core.models import AuditEntry

READS = ("GET", "HEAD")
# A query string is kept whole up to this length (an EPCIS query with a few dozen parameters):
# the entry stays small however long a URL a client sends.
QUERY_KEPT = 2_000


def regulator_read_record(
    *, request: Request, status: int, action: str, view_kwargs: Mapping[str, Any] | None = None
) -> None:
    """Append an entry for a regulator's read (method, path, query, the answer's status); nothing
    for anyone else, or for a regulator's refused write (its service writes nothing)."""
    if request.method not in READS:
        return
    try:
        caller = caller_of(request)
    except (OrganisationAmbiguous, OrganisationUnknown):
        return  # the request named no organisation it acts for: it was refused, nothing was read
    if not caller.regulator:  # with a grant or not: every read a regulator makes is recorded
        return
    query = request.META.get("QUERY_STRING", "")
    audit_record(
        action=action,
        user=request.user,
        organisation=caller.organisation,
        identifiers=[f"{name}:{value}" for name, value in (view_kwargs or {}).items()],
        detail={
            "method": request.method,
            "path": request.path,
            "query": query[:QUERY_KEPT],
            **({"query_truncated": True} if len(query) > QUERY_KEPT else {}),
            "status": status,
        },
    )


def audit_reader(caller: Caller) -> bool:
    """An organisation's admins read its entries; a regulator reads every organisation's."""
    return caller.sees_all or (caller.organisation is not None and caller.member_role == MemberRole.ADMIN)


def audit_visible(queryset: QuerySet[AuditEntry], request: Request) -> QuerySet[AuditEntry]:
    """The entries the caller may read: its organisation's, or all of them for a regulator.

    A regulator reads all with an ``all`` grant; what its other grants will cover is to come
    (``traceability.access.models``).
    """
    caller = caller_of(request)
    if caller.sees_all:
        return queryset
    if audit_reader(caller):
        return queryset.filter(organisation=caller.organisation)
    return queryset.none()


class ReadsAuditTrail(BasePermission):
    message = "the audit trail is read by your organisation's admins: ask one of them"
    code = "not_an_admin"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return audit_reader(caller_of(request))
