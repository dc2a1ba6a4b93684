"""Files the ledger keeps, through Django's storage API: web and workers may not share a disk.

Every file the product keeps (capture documents, exports, attachments) is a ``FileField`` or a name
in ``default_storage``, so a volume mounted by every container or an object store (S3 through
django-storages) serves the web and the workers alike. Nothing is joined to MEDIA_ROOT by hand.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from django.conf import settings
from django.core.files import File

COPY_CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def stream_chunks(stream: Readable) -> Iterator[bytes]:
    """A readable (a file, or a request whose body is read as it arrives) in chunks of 1 MB."""
    while chunk := stream.read(COPY_CHUNK):
        yield chunk


@contextmanager
def spooled(chunks: Iterable[bytes], *, name: str) -> Iterator[File]:
    """``chunks`` as a seekable file of known size, to hand to ``Storage.save`` or ``FieldFile.save``.

    Not every backend can take a stream: S3's multipart upload seeks, Azure's wants the length
    first. So the bytes are spooled as Django spools an upload: in memory up to
    FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default), then in an anonymous temporary file of this
    process (in FILE_UPLOAD_TEMP_DIR, the system's by default), gone once closed.
    """
    with tempfile.SpooledTemporaryFile(
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    ) as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        yield File(spool, name=name)
