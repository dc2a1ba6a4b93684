"""``import_epcis FILE [FILE ...] --owner SLUG``: apply EPCIS documents as capture does, here and now.

JSON, JSON-LD or XML, detected from the content. Each file is one capture (the same job kind as
``POST /epcis/capture``, run in this process): all of it or nothing (``--proceed`` applies the
valid events and reports the others). A progress bar follows the phases of large files; a
rejected file prints every problem, changes nothing, and the command exits with status 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from suppliers.models import Organisation
from traceability.events.models import CaptureErrorBehaviour, EpcisCapture
from traceability.events.services import capture_now, problems_of


@contextmanager
def progress_bar(name: str, *, disabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A capture's progress on the terminal: its phase, and the events done in it."""
    with tqdm(total=1, desc=name, unit="event", disable=disabled, dynamic_ncols=True) as bar:

        def progress(phase: str, done: int, total: int) -> None:
            bar.set_postfix_str(phase)
            bar.total = max(total, 1)
            bar.n = done
            bar.refresh()

        yield progress


class Command(BaseCommand):
    help = "Apply EPCIS 2.0 documents (JSON, JSON-LD or XML) to the ledger, as the capture interface does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--owner", required=True, help="Slug of the organisation capturing the events.")
        parser.add_argument(
            "--proceed", action="store_true", help="Apply the valid events of a file that has invalid ones."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (for logs).")

    def handle(
        self, *args: Any, files: list[Path], owner: str, proceed: bool, no_progress: bool, **options: Any
    ) -> None:
        organisation = Organisation.objects.filter(slug=owner).first()
        if organisation is None:
            raise CommandError(f"no organisation has the slug {owner!r}")
        if missing := [str(f) for f in files if not f.is_file()]:
            raise CommandError(f"no such file: {', '.join(missing)}")
        behaviour = CaptureErrorBehaviour.PROCEED if proceed else CaptureErrorBehaviour.ROLLBACK
        failed = 0
        for path in files:
            capture = self._import(path, organisation, behaviour, no_progress=no_progress)
            problems = problems_of(capture)
            for problem in problems:
                self.stderr.write(f"{path}: {problem}")
            rejected = bool(problems) and (behaviour == CaptureErrorBehaviour.ROLLBACK or not capture.captured)
            failed += rejected
            verdict = "REJECTED, nothing applied" if rejected else f"ledger position {capture.entry_id}"
            self.stdout.write(
                f"{path}: {capture.events} events, {capture.captured} new, {capture.repeated} known already,"
                f" {capture.declared} declared erroneous, {len(problems)} problem(s): {verdict}"
            )
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) rejected", returncode=1)

    def _import(self, path: Path, owner: Organisation, behaviour: str, *, no_progress: bool) -> EpcisCapture:
        with path.open("rb") as document, progress_bar(path.name, disabled=no_progress) as progress:
            return capture_now(owner=owner, document=document, error_behaviour=behaviour, progress=progress)
