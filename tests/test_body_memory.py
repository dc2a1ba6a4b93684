"""A large request body at a real gunicorn server on the test database: refused, and the worker's
memory stays where it was (issue 13). bench/big_body.py measures 1 GB the same way; here 200 MB, so
CI stays fast (a few seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection

from bench.big_body import gunicorn, measure
from suppliers.services import api_token_create
from tests.factories import OrganisationFactory
from tests.test_api_support import member, written
from traceability.core.models import Job
from traceability.events.models import EpcisCapture

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc (Linux)")

MB = 2**20
OFFERED = 200 * MB
GROWTH_ALLOWED_KIB = 4 * 1024  # "a few MB"


@pytest.fixture()
def server(transactional_db, tmp_path):
    """gunicorn on the test database, capture documents limited to 100 MB (read that far when
    chunked), and a brand's QA token; yields the server, the headers to send, and the media folder."""
    brand = OrganisationFactory()
    _, key = api_token_create(membership=member(brand).memberships.get())
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgresql://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "media"),
        LEDGER_MAX_CAPTURE_BYTES=str(100 * MB),
        LEDGER_PLAIN_HTTP="1",  # served over plain HTTP on purpose: no redirect to HTTPS
    )
    with gunicorn(env) as running:
        yield running, {"Authorization": f"Token {key}"}, tmp_path / "media"


def _left_behind(media: Path) -> dict[str, object]:
    return {
        **written(),
        "captures": EpcisCapture.objects.count(),
        "jobs": Job.objects.count(),
        "files": sorted(str(p) for p in media.rglob("*") if p.is_file()) if media.exists() else [],
    }


@pytest.mark.parametrize(
    ("path", "content_type", "mode", "status", "read_mb"),
    [
        ("/epcis/capture", "application/ld+json", "chunked", 413, 100),  # read up to the limit, then refused
        ("/epcis/capture", "application/ld+json", "declared", 413, 0),  # refused unread
        ("/epcis/events", "application/json", "chunked", 413, 1),
        ("/api/v1/findings/", "application/json", "declared", 413, 0),
        ("/api/v1/findings/", "application/json", "lying", 400, 0),  # 1,000 bytes read, no JSON
    ],
)
def test_a_200_mb_body_is_refused_without_the_workers_memory_growing(server, path, content_type, mode, status, read_mb):
    # given
    running, headers, media = server
    before = _left_behind(media)
    # when
    measured = measure(
        running, path, total=OFFERED, mode=mode, headers={**headers, "Content-Type": content_type}, warm_up=OFFERED
    )
    # then
    assert measured.answer.status == status, measured.answer.body[:500]
    assert measured.answer.sent >= read_mb * MB  # the server read what it says it read, at least
    assert measured.answer.sent < OFFERED  # and stopped the client before the end
    assert measured.growth_kib < GROWTH_ALLOWED_KIB, measured.line()
    assert _left_behind(media) == before
