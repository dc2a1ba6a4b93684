"""``audit export [--organisation SLUG] [--since WHEN] [--until WHEN] [--action CODE]``: the audit trail as CSV.

The CSV goes to standard output (the same columns as ``GET /api/v1/audit/?format=csv``), newest
entry first; the command acts as the operator and reads every organisation's entries.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from suppliers.models import Organisation
from traceability.core.audit import AuditAction, audit_csv_lines, audit_entries

# Entries fetched per round trip while the CSV is written.
CHUNK = 2_000


def _when(value: str) -> dt.datetime:
    """An ISO 8601 date or date and time; without a zone, UTC (the ledger's time zone)."""
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = dt.datetime.combine(day, dt.time())
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time, e.g. 2025-06-01T08:00")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


class Command(BaseCommand):
    help = "Export the audit trail as CSV (export)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="subcommand", required=True, metavar="{export}")
        export = actions.add_parser("export", help="Write the audit trail's entries as CSV to standard output.")
        export.add_argument("--organisation", help="Slug of the organisation whose entries to export (default: all).")
        export.add_argument("--since", type=_when, help="Entries at or after this date or time (ISO 8601, UTC).")
        export.add_argument("--until", type=_when, help="Entries before this date or time (ISO 8601, UTC).")
        export.add_argument("--action", choices=AuditAction.values, help="Only entries of this action.")

    def handle(
        self,
        *args: Any,
        organisation: str | None,
        since: dt.datetime | None,
        until: dt.datetime | None,
        action: str | None,
        **options: Any,
    ) -> None:
        found = None
        if organisation is not None:
            found = Organisation.objects.filter(slug=organisation).first()
            if found is None:
                raise CommandError(f"no organisation has the slug {organisation!r}")
        entries = audit_entries(organisation=found, action=action, since=since, until=until)
        for line in audit_csv_lines(entries.iterator(chunk_size=CHUNK)):
            self.stdout.write(line, ending="")
