"""Writes for organisations and certificates."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from suppliers.models import Certificate, CertificateStatus, CertificateStatusChange


def recorded_user(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    """The user a record names as its author: None for nobody, or for an anonymous request's user."""
    return user if user is not None and user.is_authenticated else None


# A revoked or expired certificate is final; a suspended one can be reinstated.
_ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    CertificateStatus.VALID: {CertificateStatus.SUSPENDED, CertificateStatus.REVOKED, CertificateStatus.EXPIRED},
    CertificateStatus.SUSPENDED: {CertificateStatus.VALID, CertificateStatus.REVOKED, CertificateStatus.EXPIRED},
    CertificateStatus.REVOKED: set(),
    CertificateStatus.EXPIRED: set(),
}


class CertificateTransitionError(ValueError):
    pass


def certificate_change_status(
    *,
    certificate: Certificate,
    status: str,
    reason: str = "",
    changed_by: AbstractBaseUser | None = None,
    changed_at: dt.datetime | None = None,
) -> Certificate:
    """Move a certificate to ``status`` and write the history entry, in one transaction."""
    with transaction.atomic():
        locked = Certificate.objects.select_for_update().get(pk=certificate.pk)
        if status not in _ALLOWED_TRANSITIONS[locked.status]:
            raise CertificateTransitionError(
                f"certificate {locked.number}: cannot go from {locked.status} to {status}"
                f" (allowed: {', '.join(sorted(_ALLOWED_TRANSITIONS[locked.status])) or 'none, it is final'})"
            )
        CertificateStatusChange.objects.create(
            certificate=locked,
            from_status=locked.status,
            to_status=status,
            reason=reason,
            changed_at=changed_at or timezone.now(),
            changed_by=recorded_user(changed_by),
        )
        locked.status = status
        locked.save(update_fields=["status"])
    certificate.status = status
    return locked


def certificates_expire(*, today: dt.date | None = None) -> int:
    """Mark valid or suspended certificates past their end date expired; returns how many.

    Set-based: one INSERT of history rows and one UPDATE, however many certificates expire.
    """
    today = today or timezone.localdate()
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Certificate.objects.select_for_update()
            .filter(valid_to__lt=today, status__in=[CertificateStatus.VALID, CertificateStatus.SUSPENDED])
            .order_by("pk")
            .values_list("pk", "status")
        )
        CertificateStatusChange.objects.bulk_create(
            CertificateStatusChange(
                certificate_id=pk,
                from_status=status,
                to_status=CertificateStatus.EXPIRED,
                reason=f"validity ended before {today.isoformat()}",
                changed_at=now,
            )
            for pk, status in due
        )
        Certificate.objects.filter(pk__in=[pk for pk, _ in due]).update(status=CertificateStatus.EXPIRED)
    return len(due)
