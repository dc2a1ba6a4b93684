"""Files of evidence attached to findings: stored as uploaded, identified by their bytes.

An attachment is what a QA team or a lab hands an investigation: a lab report (PDF), photographs of
the debris, an X-ray or CT image, a spreadsheet of measurements. What a file is, is read from its
first bytes (puremagic), not from the name or the type the client claims; only the kinds of
evidence above are kept, so the ledger never serves an executable or an HTML page back to a
regulator. A refused file leaves nothing behind; the same bytes attached to a finding twice are
one attachment, so a retried upload changes nothing.
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
from pathlib import PurePosixPath, PureWindowsPath

import puremagic
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record
from traceability.core.errors import DomainError
from traceability.investigations.models import Finding, FindingAttachment

_SNIFF_BYTES = 8_192
_IMAGES = {"image/jpeg", "image/png", "image/tiff", "image/webp", "image/gif"}
_ZIPS = {
    "application/zip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_TEXTS = {".csv": "text/csv", ".json": "application/json"}  # any other UTF-8 text is text/plain
ACCEPTED = "PDF; JPEG, PNG, TIFF, WebP or GIF images; Excel, Word or PowerPoint (OOXML) or ZIP files; UTF-8 text"


class AttachmentRefused(DomainError, ValueError):
    """A file not attached: nothing of it is kept."""

    code = "attachment_refused"


class EmptyFile(AttachmentRefused):
    code = "empty_file"


class FileTooLarge(AttachmentRefused):
    code = "file_too_large"


class FileTypeRefused(AttachmentRefused):
    """Content that is not one of the kinds of evidence accepted (``ACCEPTED``)."""

    code = "file_type"


def finding_attach(
    *, finding: Finding, file: File, name: str, by: AbstractBaseUser | None = None
) -> tuple[FindingAttachment, bool]:
    """Attach ``file`` to ``finding``; returns the attachment and whether it is new.

    Refused (``AttachmentRefused``, nothing stored): an empty file, one over
    ``LEDGER_ATTACHMENT_MAX_BYTES``, or content that is not one of the accepted kinds.
    """
    name = _base_name(name)
    size = file.size or 0
    if size == 0:
        raise EmptyFile(f"{name} is empty: there is nothing to attach")
    limit = settings.LEDGER_ATTACHMENT_MAX_BYTES
    if size > limit:
        raise FileTooLarge(
            f"{name} is {_megabytes(size)}: a finding's attachments may be at most {_megabytes(limit)} each"
        )
    digest, head = hashlib.sha256(), b""
    for chunk in file.chunks():
        digest.update(chunk)
        if len(head) < _SNIFF_BYTES:
            head += chunk[: _SNIFF_BYTES - len(head)]
    content_type = attachment_content_type(head, name)
    sha256 = digest.hexdigest()
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
    file.seek(0)
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


def attachment_content_type(head: bytes, name: str) -> str:
    """What the file is, from its first bytes; the name only tells zip-based formats and text apart."""
    try:
        found = puremagic.from_string(head, mime=True)
    except puremagic.PureError:
        found = ""
    if found in _ZIPS:
        # Telling an .xlsx from a .docx needs the zip's members; the name is the better guess.
        guessed = mimetypes.guess_type(name)[0]
        return guessed if guessed in _ZIPS else "application/zip"
    if found == "application/pdf" or found in _IMAGES:
        return found
    if _is_text(head):
        return _TEXTS.get(PurePosixPath(name).suffix.lower(), "text/plain")
    what = f"its content is {found}" if found else "its content is not a kind this ledger recognises"
    raise FileTypeRefused(f"{name} is not accepted as evidence: {what} (accepted: {ACCEPTED})")


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut last character is fine
    except UnicodeDecodeError:
        return False
    return True


def _base_name(name: str) -> str:
    """The file's own name, without any folders a client sent (either kind of slash)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return (base or "attachment")[-255:]


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"
