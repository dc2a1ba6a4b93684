"""Granting regulators what they may read (``traceability.access.models``)."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from suppliers.models import Organisation, Role
from suppliers.services import Registration, RegistrationError
from traceability.access.models import Grant, GrantScope
from traceability.core.audit import AuditAction, audit_record
from traceability.investigations.models import Investigation

_COUNTRY = re.compile(r"[A-Z]{2}")


def grant_add(
    *,
    regulator: Organisation,
    scope: str,
    jurisdiction: str | None = None,
    investigation: Investigation | None = None,
    by: AbstractBaseUser | AnonymousUser | None = None,
) -> Registration[Grant]:
    """Grant ``regulator`` (an organisation with the regulator role) the whole ledger (``all``), a
    ``jurisdiction`` (a country code) or an ``investigation``; or find that grant active already.

    The scope's own argument is required and the others refused, so a grant says exactly what it
    covers. Raises ``RegistrationError`` (codes ``not_a_regulator``, ``invalid_scope``,
    ``invalid_jurisdiction``) naming the value at fault.
    """
    if scope not in GrantScope.values:
        raise RegistrationError("invalid_scope", f"grant scope {scope!r}: use one of {', '.join(GrantScope.values)}")
    wanted_jurisdiction = scope == GrantScope.JURISDICTION
    if (jurisdiction is not None) != wanted_jurisdiction or (investigation is not None) != (
        scope == GrantScope.INVESTIGATION
    ):
        raise RegistrationError("invalid_scope", f"a grant of {scope} names {_names(scope)}")
    if wanted_jurisdiction and not _COUNTRY.fullmatch(jurisdiction or ""):
        raise RegistrationError(
            "invalid_jurisdiction", f"jurisdiction {jurisdiction!r} must be an ISO 3166-1 alpha-2 code, e.g. CN"
        )
    with transaction.atomic():
        # Serialises two grants to one regulator; its roles are read under the same lock.
        locked = Organisation.objects.select_for_update().get(pk=regulator.pk)
        if Role.REGULATOR not in locked.role_names:
            raise RegistrationError(
                "not_a_regulator", f"organisation {locked.slug} has not the regulator role: only regulators hold grants"
            )
        cover = {"jurisdiction": jurisdiction or "", "investigation": investigation}
        found = Grant.objects.filter(regulator=locked, scope=scope, revoked_at__isnull=True, **cover).first()
        if found is not None:
            return Registration(found, created=False)
        grant = Grant.objects.create(regulator=locked, scope=scope, **cover)
        audit_record(
            action=AuditAction.GRANT_ADD,
            user=by,
            organisation=locked,
            identifiers=[f"grant:{grant.cover}"],
            detail={"scope": scope},
        )
    return Registration(grant, created=True)


def _names(scope: str) -> str:
    if scope == GrantScope.JURISDICTION:
        return "a jurisdiction (a country code) and nothing else"
    if scope == GrantScope.INVESTIGATION:
        return "an investigation and nothing else"
    return "neither a jurisdiction nor an investigation"
