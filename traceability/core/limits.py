"""How much a request may carry: one body limit per kind of input, checked before the body is read.

Every endpoint of the REST API and the EPCIS binding names the kind of body it takes (a single
event, a capture document, a CSV file, a JSON request, a finding's attachment); its interface calls
``body_bound`` before authentication and before anything reads the body, and turns the refusal into
its own error format (REST ``{"code", "message", "field"}``, EPCIS an RFC 7807 problem), by type.
A page that takes files names its kind too (``pages.caller.body_limited``); the middleware
(``traceability.middleware.BodyLimitMiddleware``) checks it before the CSRF check reads the form,
and the page answers in its own words.

- A ``Content-Length`` over the limit is refused at once: nothing of the body is read.
- A body within its ``Content-Length`` is read through Django's ``LimitedStream``, which never
  reads past the declared length, so a client sending more than it declared (a lying length) is
  bounded by the declaration, itself within the limit.
- A chunked body (no length) is read only when the server has de-chunked it (``wsgi.input_terminated``,
  as gunicorn does), through ``BoundedStream``: refused as soon as one byte more than the limit
  arrives, having spooled what it read as Django spools an upload (memory up to
  FILE_UPLOAD_MAX_MEMORY_SIZE, then a temporary file), so the process never holds it. A server that
  cannot de-chunk (runserver) would block reading until the client gave up: refused, 411.

The limits are settings (``LEDGER_MAX_*_BYTES``, README's table), read on every request so a test
or an operator can change them.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest

from traceability.core.errors import DomainError
from traceability.core.storage import Readable

# The largest value of the database's integer keys and counts (BigAutoField, bigint): a number
# beyond it in a parameter or a body is refused as input, never sent to the database.
DB_INT_MAX = 2**63 - 1

READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class BodyLimit:
    """A kind of request body and how large it may be (``setting``, plus ``overhead`` for framing)."""

    kind: str
    setting: str
    rule: str  # what the refusal says is allowed, with ``{limit}``
    code: str = "body_too_large"
    field: str | None = None
    overhead: int = 0
    times: int = 1  # a form of several files: as many as this at the setting's size each

    @property
    def allowed(self) -> int:
        """The content allowed, in bytes: the limit without the framing."""
        return int(getattr(settings, self.setting)) * self.times

    @property
    def limit(self) -> int:
        """The largest body accepted, in bytes."""
        return self.allowed + self.overhead

    def refusal(self, size: int | None) -> BodyTooLarge:
        allowed = self.rule.format(limit=self.allowed)
        said = f"the request is {size:,} bytes" if size is not None else "the request carries more"
        return BodyTooLarge(f"{said}: {allowed}", kind=self, field=self.field)


# A multipart body carries its file and a few hundred bytes of boundaries and headers.
MULTIPART_OVERHEAD = 64 * 1024

EVENT = BodyLimit("event", "LEDGER_MAX_EVENT_BYTES", "a single EPCIS event may be at most {limit:,} bytes")
CAPTURE = BodyLimit("capture", "LEDGER_MAX_CAPTURE_BYTES", "an EPCIS document may be at most {limit:,} bytes")
CSV = BodyLimit("csv", "LEDGER_MAX_CSV_BYTES", "a CSV file may be at most {limit:,} bytes")
JSON = BodyLimit("json", "LEDGER_MAX_JSON_BYTES", "a request's JSON body may be at most {limit:,} bytes")
ATTACHMENT = BodyLimit(
    "attachment",
    "LEDGER_ATTACHMENT_MAX_BYTES",
    "a finding's attachments may be at most {limit:,} bytes each",
    code="file_too_large",
    field="file",
    overhead=MULTIPART_OVERHEAD,
)

# The finding page's form carries files of evidence with the finding: this many at their largest.
EVIDENCE_FILES = 4
EVIDENCE = BodyLimit(
    "evidence",
    "LEDGER_ATTACHMENT_MAX_BYTES",
    "a finding's files of evidence may be at most {limit:,} bytes together",
    field="evidence",
    overhead=MULTIPART_OVERHEAD,
    times=EVIDENCE_FILES,
)


class BodyTooLarge(DomainError):
    """A request body over its kind's limit; nothing was done with it."""

    code: ClassVar[str] = "body_too_large"

    def __init__(self, message: str, *, kind: BodyLimit, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.kind = kind
        self.code = kind.code  # type: ignore[misc]  # the attachment's refusal keeps its own code


class LengthRequired(DomainError):
    """A chunked body this server cannot read as it arrives: send its Content-Length."""

    code: ClassVar[str] = "length_required"


class BoundedStream:
    """``stream`` read up to ``limit`` bytes; one byte more raises ``BodyTooLarge``."""

    def __init__(self, stream: Readable, body: BodyLimit) -> None:
        self.stream, self.body, self.limit, self.read_so_far = stream, body, body.limit, 0

    def read(self, size: int = -1, /) -> bytes:
        # Never asks for more than one byte beyond the limit, so a refusal has read at most that.
        room = self.limit + 1 - self.read_so_far
        wanted = room if size is None or size < 0 else min(size, room)
        data = self.stream.read(wanted) if wanted > 0 else b""
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise self.body.refusal(None)
        return data


def _declared_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    try:
        return int(raw) if raw.strip() else None
    except ValueError:
        return None


def _chunked(request: HttpRequest) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def body_bound(request: HttpRequest, body: BodyLimit) -> None:
    """Refuse ``request`` if its body is over ``body``'s limit, before reading it when it says its length.

    Raises ``BodyTooLarge`` (413) or ``LengthRequired`` (411). A chunked body the server has
    de-chunked is read here, bounded, and put back as a body of known length, so the parsers after
    (DRF's, Django's multipart) read it like any other.
    """
    declared = _declared_length(request)
    if declared is not None and declared > body.limit:
        raise body.refusal(declared)  # refused before one byte of the body is read
    if declared or not _chunked(request) or getattr(request, "_read_started", False):
        return
    if not request.META.get("wsgi.input_terminated"):
        raise LengthRequired("a chunked body cannot be read by this server: send the request with its Content-Length")
    bounded = BoundedStream(request.META["wsgi.input"], body)
    # Anonymous (no name on disk) and the request's alone: gone with the request.
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    try:
        while chunk := bounded.read(READ_CHUNK):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)
    request._stream = LimitedStream(spool, size)  # type: ignore[assignment, arg-type]
    request.META["CONTENT_LENGTH"] = str(size)


# --- control characters --------------------------------------------------------------------------------

# C0 controls and DEL, but tab, line feed and carriage return, which text may hold: no text a person
# wrote holds them, and PostgreSQL cannot store or even compare NUL (a 500 where SQLite answered).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_NAMES = re.compile("[\x00-\x1f\x7f]")


def control_character(value: str, *, text: bool = False) -> str | None:
    """The first control character in ``value``, if any: ``text`` may hold tabs and line breaks, an
    identifier or a parameter nothing of the kind."""
    found = (_CONTROL if text else _CONTROL_IN_NAMES).search(value)
    return found.group() if found else None


# --- JSON depth ---------------------------------------------------------------------------------------

# A string (escapes included) or one bracket: the brackets inside strings are skipped with them.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
JSON_MAX_DEPTH = 32


def json_too_deep(data: bytes, *, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than ``limit``; stops at the first that does.

    Checked before parsing: Python's parser recurses once per level and fails with a RecursionError
    (a 500) near a thousand, and building a deep structure costs more than this scan.
    """
    depth = 0
    for token in _JSON_TOKEN.finditer(data):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth -= 1
    return False


def json_loads(data: bytes, *, limit: int = JSON_MAX_DEPTH) -> Any:
    """``data`` parsed as JSON, refused (``ValueError``) when it nests deeper than ``limit``."""
    if json_too_deep(data, limit=limit):
        raise ValueError(f"arrays and objects nest deeper than {limit} levels")
    return json.loads(data)
