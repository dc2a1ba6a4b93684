"""Files the ledger is handed as records (a finding's evidence, a lot's certificate of analysis):
what they are, read from their bytes, and the refusals of those it does not keep.

What a file is, is read from its first bytes (puremagic), not from the name or the type the client
claims; only documents, images, office files and text are kept, so the ledger never serves an
executable or an HTML page back to a reader. Each file is identified by its SHA-256, so the same
bytes handed twice are recognised. Its bytes are written before the row that names them, and deleted
again if that row is not recorded (``file_stored``).
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

import puremagic
from django.core.files import File
from django.db.models.fields.files import FieldFile

from traceability.core.errors import DomainError

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
    """A file not kept: nothing of it is stored."""

    code = "attachment_refused"


class EmptyFile(AttachmentRefused):
    code = "empty_file"


class FileTooLarge(AttachmentRefused):
    code = "file_too_large"


class FileTypeRefused(AttachmentRefused):
    """Content that is not one of the kinds of file accepted (``ACCEPTED``)."""

    code = "file_type"


@dataclass(frozen=True)
class Sniffed:
    """What a file handed to the ledger is: its own name, its content type, size and digest."""

    name: str
    content_type: str
    size: int
    sha256: str


def file_sniffed(file: File, name: str, *, limit: int, kept_as: str, each: str) -> Sniffed:
    """Read ``file`` once: its size checked against ``limit`` bytes, its digest, and what it is.

    Refused (``AttachmentRefused``): an empty file, one over ``limit`` (``each`` says what the limit is
    of, "a finding's attachments"), content that is not one of the accepted kinds (``kept_as`` says
    what it would have been kept as: "evidence"). The file is left at its start, to be stored.
    """
    name = base_name(name)
    size = file.size or 0
    if size == 0:
        raise EmptyFile(f"{name} is empty: there is nothing to attach")
    if size > limit:
        raise FileTooLarge(f"{name} is {_megabytes(size)}: {each} may be at most {_megabytes(limit)} each")
    digest, head = hashlib.sha256(), b""
    for chunk in file.chunks():
        digest.update(chunk)
        if len(head) < _SNIFF_BYTES:
            head += chunk[: _SNIFF_BYTES - len(head)]
    content_type = content_type_of(head, name, kept_as=kept_as)
    file.seek(0)
    return Sniffed(name=name, content_type=content_type, size=size, sha256=digest.hexdigest())


@contextmanager
def file_stored(field: FieldFile, file: File, name: str) -> Iterator[None]:
    """Write ``file`` through ``field``'s storage as ``name``, before the row that names it exists
    (its transaction runs inside this), and delete the bytes again if anything inside raises: a
    refusal, a rollback, a commit that failed. ``transaction.on_commit`` cannot undo a file written
    before the rollback, so the bytes are deleted here. The storage's own failure to write raises
    before anything runs inside (Django's storages raise ``OSError``)."""
    field.save(name, file, save=False)
    try:
        yield
    except BaseException:
        field.delete(save=False)
        raise


def content_type_of(head: bytes, name: str, *, kept_as: str = "evidence") -> str:
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
    raise FileTypeRefused(f"{name} is not accepted as {kept_as}: {what} (accepted: {ACCEPTED})")


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut last character is fine
    except UnicodeDecodeError:
        return False
    return True


def base_name(name: str) -> str:
    """The file's own name, without any folders a client sent (either kind of slash)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return (base or "attachment")[-255:]


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"
