"""Files of evidence attached to findings: stored as uploaded, identified by their bytes.

An attachment is what a QA team or a lab hands an investigation: a lab report (PDF), photographs of
the debris, an X-ray or CT image, a spreadsheet of measurements. What a file is, is read from its
first bytes (puremagic), not from the name or the type the client claims; only the kinds of
evidence above are kept, so the ledger never serves an executable or an HTML page back to a
regulator. A refused file leaves nothing behind; the same bytes attached to a finding twice are
one attachment, so a retried upload changes nothing.

Files given with a finding as it is recorded are kept with it or not at all: checked first
(``evidence_check``), their bytes written to storage before the finding's transaction
(``evidence_kept``), their rows written in it (``evidence_rows``), and the bytes deleted again if
the transaction does not commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record, audit_records
from traceability.core.errors import DomainError
from traceability.core.files import (
    ACCEPTED,
    AttachmentRefused,
    EmptyFile,
    FileTooLarge,
    FileTypeRefused,
    Sniffed,
    file_sniffed,
    file_stored,
)
from traceability.investigations.models import Finding, FindingAttachment

# What a file is, and the refusals of one not kept, are ``traceability.core.files``'s (a lot's
# certificate of analysis is read the same way); named here too, as the attachments' refusals.
__all__ = [
    "ACCEPTED",
    "AttachmentRefused",
    "EmptyFile",
    "Evidence",
    "EvidenceNotStored",
    "FileTooLarge",
    "FileTypeRefused",
    "evidence_check",
    "evidence_kept",
    "evidence_rows",
    "finding_attach",
]


class EvidenceNotStored(DomainError):
    """The storage refused a file of evidence: nothing was recorded, and nothing of the files is kept."""

    code = "evidence_not_stored"


@dataclass(frozen=True)
class Evidence:
    """A file of evidence checked (``evidence_check``): what it is, to be kept with a finding."""

    file: File
    sniffed: Sniffed


def evidence_check(*, file: File, name: str) -> Evidence:
    """Refuse ``file`` as ``finding_attach`` would (``AttachmentRefused``, saying why), keeping
    nothing: a form that records a finding with its evidence checks the files first, so a refused
    one leaves no finding behind either. The checked file is what ``finding_record`` keeps."""
    return Evidence(file=file, sniffed=_sniffed(file, name))


@contextmanager
def evidence_kept(
    *, evidence: Sequence[Evidence], by: AbstractBaseUser | None = None
) -> Iterator[list[FindingAttachment]]:
    """Write the bytes of ``evidence`` through the storage, before the finding they go with exists,
    and give their attachments, rows not yet written (``evidence_rows``, in the finding's
    transaction, entered inside this). The same bytes given twice are one attachment. A storage
    failure deletes the files written already and raises ``EvidenceNotStored``; anything raised
    inside (a refusal, a rollback, a commit that failed) deletes them all (``file_stored``)."""
    stored: list[FindingAttachment] = []
    now, user = timezone.now(), recorded_user(by)
    with ExitStack() as written:  # on the way out by an exception, each file written is deleted
        for given in evidence:
            sniffed = given.sniffed
            if any(kept.sha256 == sniffed.sha256 for kept in stored):
                continue
            attachment = FindingAttachment(
                name=sniffed.name,
                content_type=sniffed.content_type,
                size=sniffed.size,
                sha256=sniffed.sha256,
                uploaded_by=user,
                uploaded_at=now,
            )
            try:
                written.enter_context(file_stored(attachment.file, given.file, sniffed.name))
            except OSError as failed:  # what Django's storages raise when they cannot write
                raise EvidenceNotStored(
                    f"the files of evidence could not be stored ({failed.strerror or failed}): nothing was recorded"
                ) from failed
            stored.append(attachment)
        yield stored


def evidence_rows(*, finding: Finding, stored: list[FindingAttachment], by: AbstractBaseUser | None = None) -> None:
    """The rows of the files ``evidence_kept`` wrote, on ``finding`` (in its transaction), and their
    audit entries: two INSERTs whatever the number of files."""
    if not stored:
        return
    for attachment in stored:
        attachment.finding = finding
    FindingAttachment.objects.bulk_create(stored)
    audit_records(
        action=AuditAction.EVIDENCE_ATTACH,
        user=by,
        records=[
            (
                finding.owner_id,
                [f"finding:{finding.pk}", f"attachment:{attachment.pk}", f"sha256:{attachment.sha256}"],
                {"name": attachment.name, "content_type": attachment.content_type, "size": attachment.size},
            )
            for attachment in stored
        ],
    )


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
    try:
        with file_stored(attachment.file, file, name), transaction.atomic():
            attachment.save()
            audit_record(
                action=AuditAction.EVIDENCE_ATTACH,
                user=by,
                organisation=finding.owner_id,
                identifiers=[f"finding:{finding.pk}", f"attachment:{attachment.pk}", f"sha256:{sha256}"],
                detail={"name": name, "content_type": content_type, "size": size},
            )
    except IntegrityError:  # the same bytes, attached by a concurrent request a moment before (ours deleted)
        return finding.attachments.get(sha256=sha256), False
    return attachment, True
