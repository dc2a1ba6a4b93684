"""Granting regulators what they may read, and revoking it (``traceability.access.models``)."""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from suppliers.models import Organisation, Role
from suppliers.services import Registration, RegistrationError
from traceability.access.models import Grant, GrantScope, active_grants
from traceability.core.audit import AuditAction, audit_record
from traceability.investigations.models import Investigation

_COUNTRY = re.compile(r"[A-Z]{2}")


def grant_add(
    *,
    regulator: Organisation,
    scope: str,
    jurisdiction: str | None = None,
    investigation: Investigation | None = None,
    expires_at: dt.datetime | None = None,
    by: AbstractBaseUser | AnonymousUser | None = None,
) -> Registration[Grant]:
    """Grant ``regulator`` (an organisation with the regulator role) the whole ledger (``all``), a
    ``jurisdiction`` (a country code) or an ``investigation``, until ``expires_at`` if given; or find
    that grant active already (unchanged, whatever its expiry).

    The scope's own argument is required and the others refused, so a grant says exactly what it
    covers. Raises ``RegistrationError`` (codes ``not_a_regulator``, ``invalid_scope``,
    ``invalid_jurisdiction``) naming the value at fault.
    """
    _cover_checked(scope, jurisdiction, investigation)
    with transaction.atomic():
        locked = _regulator_locked(regulator)
        cover = {"jurisdiction": jurisdiction or "", "investigation": investigation}
        if expires_at is not None and expires_at <= timezone.now():
            raise RegistrationError(
                "invalid_expiry", f"the grant would expire at {expires_at:%Y-%m-%d %H:%M}, in the past"
            )
        found = Grant.objects.filter(regulator=locked, scope=scope, revoked_at__isnull=True, **cover).first()
        if found is not None and (found.expires_at is None or found.expires_at > timezone.now()):
            return Registration(found, created=False)
        if found is not None:  # expired: it ended then, and makes way for the new one
            found.revoked_at = found.expires_at
            found.save(update_fields=["revoked_at"])
        grant = Grant.objects.create(regulator=locked, scope=scope, expires_at=expires_at, **cover)
        audit_record(
            action=AuditAction.GRANT_ADD,
            user=by,
            organisation=locked,
            identifiers=[f"grant:{grant.cover}"],
            detail={"scope": scope},
        )
    return Registration(grant, created=True)


def grant_revoke(
    *,
    regulator: Organisation,
    scope: str,
    jurisdiction: str | None = None,
    investigation: Investigation | None = None,
    by: AbstractBaseUser | AnonymousUser | None = None,
) -> Grant | None:
    """End ``regulator``'s active grant of this cover (``revoked_at`` set, the row kept, audited);
    None when it holds no such grant active, which changes nothing. Refused as ``grant_add`` refuses
    a cover that names too much or too little, or an organisation that is no regulator."""
    _cover_checked(scope, jurisdiction, investigation)
    with transaction.atomic():
        locked = _regulator_locked(regulator)
        cover = {"jurisdiction": jurisdiction or "", "investigation": investigation}
        grant = active_grants(locked.pk).select_for_update().filter(scope=scope, **cover).first()
        if grant is None:
            return None
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditAction.GRANT_REVOKE,
            user=by,
            organisation=locked,
            identifiers=[f"grant:{grant.cover}"],
            detail={"scope": scope, "granted_at": grant.granted_at.isoformat()},
        )
    return grant


def _cover_checked(scope: str, jurisdiction: str | None, investigation: Investigation | None) -> None:
    """The scope's own argument is required and the others refused, so a grant says exactly what it covers."""
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


def _regulator_locked(regulator: Organisation) -> Organisation:
    """The regulator's row, locked: serialises two changes of one regulator's grants; its roles are
    read under the same lock."""
    locked = Organisation.objects.select_for_update().get(pk=regulator.pk)
    if Role.REGULATOR not in locked.role_names:
        raise RegistrationError(
            "not_a_regulator", f"organisation {locked.slug} has not the regulator role: only regulators hold grants"
        )
    return locked


def _names(scope: str) -> str:
    if scope == GrantScope.JURISDICTION:
        return "a jurisdiction (a country code) and nothing else"
    if scope == GrantScope.INVESTIGATION:
        return "an investigation and nothing else"
    return "neither a jurisdiction nor an investigation"
