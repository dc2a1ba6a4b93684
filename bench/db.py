"""Where the bench world lives, and the guards that keep the bench away from every other database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ledger_bench"
# The bench drops and recreates its database: never let it be one that holds anything else.
FORBIDDEN_NAMES = {"postgres", "template0", "template1", "test", "test_test"}


def bench_url() -> str:
    """The bench database's URL: ``BENCH_DATABASE_URL``, or ``ledger_bench`` on the local server."""
    url = os.environ.get("BENCH_DATABASE_URL", "").strip() or DEFAULT_URL
    name = db_name(url)
    if not name or name in FORBIDDEN_NAMES or name.startswith("test"):
        raise SystemExit(f"refusing to use database {name!r} for the bench: it drops and recreates its database")
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        raise SystemExit("the bench needs PostgreSQL: BENCH_DATABASE_URL must be postgresql://...")
    return url


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def maintenance_url(url: str) -> str:
    """The same server's ``postgres`` database, used only to create or drop the bench database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A connection to the bench database. No automatic prepared statements: each run plans afresh."""
    kwargs.setdefault("prepare_threshold", None)
    return psycopg.connect(url or bench_url(), **kwargs)


def django_setup() -> None:
    """Configure Django against the bench database (never the one ``DATABASE_URL`` names otherwise)."""
    import django
    from django.conf import settings

    url = bench_url()
    if settings.configured:
        name = settings.DATABASES["default"].get("NAME")
        if name != db_name(url):
            raise SystemExit(f"Django is already configured for database {name!r}, not the bench's")
        return
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "traceability.settings"
    # The cases' requests are made in this process (and the worker's) over plain HTTP: no redirect to HTTPS.
    os.environ.setdefault("LEDGER_PLAIN_HTTP", "1")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    django.setup()
