"""Check that the configured database and broker answer, with a one-line reason when not."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.utils import OperationalError

from traceability.celery import app


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redacted(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


def _database_name() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite {db['NAME']}"
    return f"{connection.vendor} {db.get('HOST') or 'localhost'}:{db.get('PORT') or ''}/{db['NAME']}"


class Command(BaseCommand):
    help = "Check that the database and the Celery broker are reachable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker-timeout", type=float, default=5.0)

    def handle(self, *args, broker_timeout: float, **options) -> None:
        database = _database_name()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except OperationalError as exc:
            raise CommandError(f"database unreachable ({database}): {_first_line(exc)}") from None
        broker = _redacted(settings.CELERY_BROKER_URL)
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=broker_timeout)
        except Exception as exc:  # kombu raises transport-specific errors
            raise CommandError(f"Celery broker unreachable ({broker}): {_first_line(exc)}") from None
        self.stdout.write(f"database ok ({database}); broker ok ({broker})")
