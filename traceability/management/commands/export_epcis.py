"""``export_epcis --owner SLUG [--query QUERY] [--epc-format F] [--output FILE]``: events back out.

Writes one EPCIS 2.0 EPCISDocument (JSON-LD) of the events the organisation captured (all of them
for a regulator with an ``all`` grant), selected by the query interface's own parameters (``--query "eventType=
ObjectEvent&GE_eventTime=2024-01-01T00:00:00Z"``), with identifiers as ``GS1-EPC-Format`` would
ask. Events stream out a page at a time, so a million of them take constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from suppliers.models import Organisation
from traceability.access.policy import Actor
from traceability.events import queries
from traceability.events.models import EpcisCapture
from traceability.events.vocabulary import epcis_document
from traceability.ledger.selectors import PrefixLength


class Command(BaseCommand):
    help = "Write captured EPCIS events out as one EPCIS 2.0 document (JSON-LD)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="Slug of the organisation whose events to export.")
        parser.add_argument("--query", default="", help="Query parameters, as in GET /epcis/events?…")
        parser.add_argument("--epc-format", choices=queries.EPC_FORMATS, default="Never_Translates")
        parser.add_argument("--output", type=Path, help="File to write (default: standard output).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, owner: str, query: str, epc_format: str, output: Path | None, **options: Any) -> None:
        organisation = Organisation.objects.filter(slug=owner).first()
        if organisation is None:
            raise CommandError(f"no organisation has the slug {owner!r}")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if paging := sorted(set(params) & queries.PAGING):
            raise CommandError(f"{paging[0]}: the export writes every selected event, it takes no paging")
        visible = queries.visible_events(organisation=organisation, sees_all=Actor.of(organisation).sees_all)
        try:
            events = queries.events_query(params, visible=visible)
        except queries.QueryError as exc:
            raise CommandError(str(exc)) from None
        if output is None:
            self._write(lambda text: self.stdout.write(text, ending=""), events, epc_format=epc_format, quiet=True)
            return
        with output.open("w", encoding="utf-8") as stream:
            written = self._write(stream.write, events, epc_format=epc_format, quiet=options["no_progress"])
        self.stdout.write(f"{written:,} events written to {output}")

    def _write(self, write: Callable[[str], Any], events: Any, *, epc_format: str, quiet: bool) -> int:
        captures = EpcisCapture.objects.filter(pk__in=events.values("capture_id").distinct())
        context = queries.merged_context(capture.context for capture in captures)
        render = queries.renderer(epc_format, PrefixLength())
        empty = json.dumps(epcis_document([], context=context))
        write(empty[: -len("]}}")])  # the envelope open at its event list; the events stream in
        written = 0
        with tqdm(total=events.count(), unit="event", disable=quiet) as bar:
            for row in events.iterator(chunk_size=2_000):
                write(("," if written else "") + "\n" + json.dumps(queries.event_render(row, render)))
                written += 1
                bar.update()
        write("\n]}}\n")
        return written
