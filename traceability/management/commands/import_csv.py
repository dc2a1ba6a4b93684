"""``import_csv KIND FILE --owner SLUG``: a QA team's CSV file through the EPCIS capture path.

KIND is one of the templates of ``traceability.events.csv_import`` (``--template`` prints one).
Every bad row is reported by line and column and nothing of the file is applied (exit status 1).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from suppliers.models import Organisation
from traceability.core.models import AuditAction
from traceability.events.csv_import import TEMPLATES, csv_document
from traceability.events.problems import DocumentRejected
from traceability.events.services import capture_now, problems_of
from traceability.management.commands.import_epcis import progress_bar


class Command(BaseCommand):
    help = "Load a CSV file of assignments, work orders, packing or shipments, as EPCIS events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(TEMPLATES))
        parser.add_argument("file", type=Path, nargs="?")
        parser.add_argument("--owner", help="Slug of the organisation the records are from.")
        parser.add_argument("--template", action="store_true", help="Print the template (header and example).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, kind: str, file: Path | None, owner: str | None, **options: Any) -> None:
        if options["template"]:
            self.stdout.write(TEMPLATES[kind].csv(), ending="")
            return
        if file is None or owner is None:
            raise CommandError("give the FILE and --owner (or --template)")
        organisation = Organisation.objects.filter(slug=owner).first()
        if organisation is None:
            raise CommandError(f"no organisation has the slug {owner!r}")
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            document = csv_document(kind, file.read_bytes())
        except DocumentRejected as rejected:
            for problem in rejected.problems:
                self.stderr.write(f"{file}: {problem}")
            raise CommandError(f"{file}: {len(rejected.problems)} bad row(s), nothing applied", returncode=1) from None
        data = io.BytesIO(json.dumps(document).encode())
        with progress_bar(file.name, disabled=options["no_progress"]) as progress:
            capture = capture_now(
                owner=organisation, document=data, progress=progress, audit_action=AuditAction.CSV_IMPORT
            )
        if problems := problems_of(capture):
            for problem in problems:
                self.stderr.write(f"{file}: {problem}")
            raise CommandError(f"{file}: rejected, nothing applied", returncode=1)
        self.stdout.write(
            f"{file}: {capture.events} events from {kind}, {capture.captured} new, {capture.repeated} known already:"
            f" ledger position {capture.entry_id}"
        )
