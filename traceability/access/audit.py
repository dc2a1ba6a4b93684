"""What the access policy audits and who reads the audit trail.

Every read by a regulator is appended to the trail: each interface calls ``regulator_read_record``
once, from the view all its views share (REST: ``ApiMixin``, EPCIS: ``EpcisView``), with the
answer it gave. The trail itself is read by an organisation's admins (their organisation's
entries) and by regulators: with an ``all`` grant every entry; otherwise their own organisation's
entries (their reads, inquiries and exports) and the entries that name an investigation their
grants cover (``investigation:N`` among the identifiers: its finding, runs, status changes and
exports, written for its owner). The rule follows what the grant names, not each identifier an
entry holds: a jurisdiction's units named by a capture are a party's writes, not the regulator's to
read one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from suppliers.models import MemberRole
from traceability.access.permissions import Caller, OrganisationAmbiguous, OrganisationUnknown, caller_of
from traceability.access.policy import investigations_covered
from traceability.core.audit import audit_record
from traceability.core.models import AuditEntry
from traceability.events.limits import escaped
from traceability.investigations.models import Investigation

READS = ("GET", "HEAD")
# A query string is kept whole up to this length (an EPCIS query with a few dozen parameters):
# the entry stays small however long a URL a client sends.
QUERY_KEPT = 2_000


def regulator_read_record(
    *,
    request: Request | HttpRequest,
    status: int,
    action: str,
    view_kwargs: Mapping[str, Any] | None = None,
    caller: Caller | None = None,
) -> None:
    """Append an entry for a regulator's read (method, path, query, the answer's status); nothing
    for anyone else, or for a regulator's refused write (its service writes nothing). ``caller``:
    the one the interface found (the pages' is the session's organisation), else the API's."""
    if request.method not in READS:
        return
    if caller is None:
        try:
            caller = caller_of(request)  # type: ignore[arg-type]
        except (OrganisationAmbiguous, OrganisationUnknown):
            return  # the request named no organisation it acts for: it was refused, nothing was read
    if not caller.regulator:  # with a grant or not: every read a regulator makes is recorded
        return
    query = request.META.get("QUERY_STRING", "")  # still percent-encoded
    # The path and its parts are decoded: a NUL sent as %00 is written as its escape, which the
    # database stores (it stores no NUL), so the read is recorded, not turned into a 500.
    audit_record(
        action=action,
        user=request.user,
        organisation=caller.organisation,
        identifiers=[escaped(f"{name}:{value}") for name, value in (view_kwargs or {}).items()],
        detail={
            "method": request.method,
            "path": escaped(request.path),
            "query": query[:QUERY_KEPT],
            **({"query_truncated": True} if len(query) > QUERY_KEPT else {}),
            "status": status,
        },
    )


def audit_reader(caller: Caller) -> bool:
    """An organisation's admins read its entries; any member of a regulator what its grants cover."""
    return caller.organisation is not None and (caller.regulator or caller.member_role == MemberRole.ADMIN)


def audit_visible(queryset: QuerySet[AuditEntry], request: Request) -> QuerySet[AuditEntry]:
    """The entries the caller may read: its organisation's, all of them with an ``all`` grant, and
    for a regulator with narrower grants the entries of an investigation's owner naming an
    investigation they cover (one query for the investigations; the entries' identifiers are matched
    as JSON text, a quoted whole item)."""
    return audit_entries_visible(queryset, caller_of(request))


def audit_entries_visible(queryset: QuerySet[AuditEntry], caller: Caller) -> QuerySet[AuditEntry]:
    """``audit_visible`` for a caller an interface found its own way (the pages' session)."""
    if caller.sees_all:
        return queryset
    if not audit_reader(caller):
        return queryset.none()
    readable = Q(organisation=caller.organisation)
    if caller.actor.scoped_regulator:
        covered = Investigation.objects.filter(investigations_covered(caller.actor)).values_list("pk", "owner_id")
        for investigation, owner in sorted(covered):
            # The investigation's owner's entries about it: not another regulator's (its exports of it).
            readable |= Q(organisation_id=owner, identifiers__icontains=f'"investigation:{investigation}"')
    return queryset.filter(readable)


class ReadsAuditTrail(BasePermission):
    message = "the audit trail is read by your organisation's admins: ask one of them"
    code = "not_an_admin"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return audit_reader(caller_of(request))
