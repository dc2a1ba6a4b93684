"""Files of evidence attached to findings: stored as uploaded, identified by their bytes.

An attachment is what a QA team or a lab hands an investigation: a lab report (PDF), photographs of
the debris, an X-ray or CT image, a spreadsheet of measurements. What a file is, is read from its
first bytes (puremagic), not from the name or the type the client claims; only the kinds of
evidence above are kept, so the ledger never serves an executable or an HTML page back to a
regulator. A refused file leaves nothing behind; the same bytes attached to a finding twice are
one attachment, so a retried upload changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record
from traceability.core.files import (
    ACCEPTED,
    AttachmentRefused,
    EmptyFile,
    FileTooLarge,
    FileTypeRefused,
    Sniffed,
    file_sniffed,
)
from traceability.investigations.models import Finding, FindingAttachment

# What a file is, and the refusals of one not kept, are ``traceability.core.files``'s (a lot's
# certificate of analysis is read the same way); named here too, as the attachments' refusals.
__all__ = [
    "ACCEPTED",
    "AttachmentRefused",
    "EmptyFile",
    "FileTooLarge",
    "FileTypeRefused",
    "evidence_check",
    "finding_attach",
]


def evidence_check(*, file: File, name: str) -> None:
    """Refuse ``file`` as ``finding_attach`` would (``AttachmentRefused``, saying why), keeping
    nothing: a form that records a finding with its evidence checks the files first, so a refused
    one leaves no finding behind either."""
    _sniffed(file, name)


def _sniffed(file: File, name: str) -> Sniffed:
    return file_sniffed(
        file, name, limit=settings.LEDGER_ATTACHMENT_MAX_BYTES, kept_as="evidence", each="a finding's attachments"
    )


def finding_attach(
    *, finding: Finding, file: File, name: str, by: AbstractBaseUser | None = None
) -> tuple[FindingAttachment, bool]:
    """Attach ``file`` to ``finding``; returns the attachment and whether it is new.

    Refused (``AttachmentRefused``, nothing stored): an empty file, one over
    ``LEDGER_ATTACHMENT_MAX_BYTES``, or content that is not one of the accepted kinds.
    """
    sniffed = _sniffed(file, name)
    name, content_type, size, sha256 = sniffed.name, sniffed.content_type, sniffed.size, sniffed.sha256
    if existing := finding.attachments.filter(sha256=sha256).first():
        return existing, False
    attachment = FindingAttachment(
        finding=finding,
        name=name,
        content_type=content_type,
        size=size,
        sha256=sha256,
        uploaded_by=recorded_user(by),
        uploaded_at=timezone.now(),
    )
    attachment.file.save(name, file, save=False)  # the bytes are on disk before the row exists
    try:
        with transaction.atomic():
            attachment.save()
            audit_record(
                action=AuditAction.EVIDENCE_ATTACH,
                user=by,
                organisation=finding.owner_id,
                identifiers=[f"finding:{finding.pk}", f"attachment:{attachment.pk}", f"sha256:{sha256}"],
                detail={"name": name, "content_type": content_type, "size": size},
            )
    except IntegrityError:  # the same bytes, attached by a concurrent request a moment before
        attachment.file.delete(save=False)
        return finding.attachments.get(sha256=sha256), False
    except BaseException:
        attachment.file.delete(save=False)
        raise
    return attachment, True
