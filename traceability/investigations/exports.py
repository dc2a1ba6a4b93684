"""Exports of a run's result as background jobs.

An export writes a run's stored result (never a re-trace, so it matches what the run reported) as
CSV or JSON of the affected units, or as the notification list per consignee. It runs as a chain
of ``export`` job chunks, one page of units each. A chunk writes its page to its own part file,
named by the page's cursor, so a redelivered chunk overwrites its part instead of appending twice;
the last chunk assembles the parts into the file of the job's ``Export``. Parts and file are in
Django's default storage: the worker that writes them and the web that serves the file may not
share a disk.

The REST API lists affected units from the same read model (``investigations.selectors``'
``AffectedUnitRow``), so a page on screen and a line in the export say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from suppliers.models import Organisation
from suppliers.services import recorded_user
from traceability import genealogy
from traceability.core import csv_cells
from traceability.core.audit import AuditAction, audit_record
from traceability.core.errors import DomainError
from traceability.core.jobs import Chunk, job_create, job_handler
from traceability.core.models import Job, JobKind, JobStatus
from traceability.core.storage import spooled
from traceability.gs1 import identifiers
from traceability.investigations.models import Export, ExportFormat, Investigation, TraceRun
from traceability.investigations.selectors import AffectedUnitRow, affected_unit_rows, finished_run_part
from traceability.investigations.services import Submit, run_result
from traceability.ledger.selectors import company_prefix_lengths, identifier_or_none

# One chunk exports one page of units: 5,000 units cost about ten queries and 2 MB of JSON lines.
EXPORT_PAGE = genealogy.PAGE


CSV_COLUMNS = ["serial", "gtin", "identity", "epc", "exposure", "path", "consignee", "ship_date"]


class ExportError(DomainError, ValueError):
    """An export refused, or its file not there to download."""

    code = "export_refused"


class ExportFormatUnknown(ExportError):
    code = "unknown_export_format"


class NoFinishedRun(ExportError):
    code = "no_finished_run"


class ExportNotFinished(ExportError):
    code = "job_not_finished"


class NoExportFile(ExportError):
    """The job wrote no file (it is not an export), or its file is gone."""

    code = "no_file"


def unit_record(row: AffectedUnitRow, *, prefix_length: identifiers.PrefixLength) -> dict[str, Any]:
    """One affected unit as an export writes it: the record the REST API lists, field for field."""
    return {
        "serial": row.serial,
        "gtin": row.gtin,
        "identity": row.identity,
        "epc": identifier_or_none(row.identity, form="epc", prefix_length=prefix_length),
        "digital_link": identifier_or_none(row.identity, form="digital_link", prefix_length=prefix_length),
        "exposure": row.exposure,
        "product_model": row.product_model,
        "work_order": row.work_order,
        "path": [step.as_dict() for step in row.path],
        "consignees": [{"organisation": s.slug, "name": s.name, "shipped_at": s.shipped_at} for s in row.shipments],
    }


# --- the export job ---------------------------------------------------------------------------------


def latest_finished_run(investigation: Investigation) -> TraceRun | None:
    return (
        investigation.runs.filter(job__status=JobStatus.SUCCEEDED).select_related("job").order_by("-created_at").first()
    )


def export_start(
    *,
    investigation: Investigation,
    format: str,
    by: AbstractBaseUser | None = None,
    party_id: int | None = None,
    requested_for: Organisation | None = None,
    submit: Submit,
) -> Job:
    """Export the investigation's latest finished run in the background; returns the job. With
    ``party_id``, only the units that organisation owns or received are written (what the access
    policy shows it); without, all of them. ``requested_for`` is the organisation the export is made
    for (a regulator reading another's investigation), which owns its job; by default the
    investigation's owner."""
    if format not in ExportFormat.values:
        raise ExportFormatUnknown(
            f"unknown export format {format!r} (known: {', '.join(ExportFormat.values)})", field="format"
        )
    run = latest_finished_run(investigation)
    if run is None:
        raise NoFinishedRun(
            f"investigation #{investigation.pk} has no finished trace run to export: wait for its run to finish"
        )
    params: dict[str, Any] = {"investigation_id": investigation.pk, "trace_run_id": run.pk, "format": format}
    params["party"] = party_id
    if party_id is not None:
        # What the party's file will hold, counted as its view of the run counts it: the job's own
        # figures walk every unit of the run, whoever's, and are not the party's to read.
        view = genealogy.party_view(run_result(run), party_id)
        params["shown"] = view.definite_units + view.potential_units
    with transaction.atomic():
        job = job_create(
            kind=JobKind.EXPORT,
            params=params,
            total=(run.definite_units or 0) + (run.potential_units or 0),
            owner=requested_for or investigation.owner,
            created_by=recorded_user(by),
        )
        Export.objects.create(job=job, run=run, format=format)
        submit(job)
        audit_record(
            action=AuditAction.EXPORT_START,
            user=by,
            organisation=requested_for.pk if requested_for is not None else investigation.owner_id,
            identifiers=[f"investigation:{investigation.pk}", f"run:{run.pk}", f"job:{job.pk}"],
            detail={"format": format},
        )
    return job


def export_progress(job: Job) -> tuple[int, int | None, str]:
    """(done, total, phase) of an export job as its reader is shown them. The row's own figures walk
    every unit of the run (the chunks' cursor); an export for one party counts the units written
    for it, of those its view of the run counts, so its figures are its own."""
    if job.params.get("party") is None:
        return job.done, job.total, job.phase
    written, shown = int(job.result.get("written", 0)), job.params.get("shown")
    if job.status == JobStatus.SUCCEEDED:
        return written, written, "exported"
    if job.status == JobStatus.QUEUED or shown is None:
        return written, shown, job.phase
    return written, shown, f"exported {written:,} of {shown:,} units"


def export_of(job: Job) -> Export | None:
    """The export a job writes (its file is set once the job has finished); None for other jobs."""
    return Export.objects.select_related("run").filter(job=job).first()


def export_file(*, job: Job) -> Export:
    """The export a finished job wrote, its file in storage; refused for another kind of job, an
    unfinished export, or a file that is gone from storage."""
    if job.kind != JobKind.EXPORT:
        raise NoExportFile(f"job {job.pk} is a {job.kind} job: it wrote no file")
    if job.status != JobStatus.SUCCEEDED:
        raise ExportNotFinished(f"export {job.pk} is {job.status} ({job.percent}%): no file yet")
    export = export_of(job)
    if export is None or not export.file:
        raise NoExportFile(f"the file of export {job.pk} is gone from storage")
    return export  # a file removed from storage since is found out on opening it


def _part_name(job: Job, after: int) -> str:
    # Beside the file, not in a folder of their own: a filesystem storage deletes files, never folders.
    return f"exports/{job.pk}-part-{after:020d}.jsonl"


@job_handler(JobKind.EXPORT)
def export_chunk(job: Job) -> Chunk:
    """Write the next page of the run's affected units as a part; the last chunk assembles the file.

    Exactly once: a part is named by its page's cursor and written over whatever a lost attempt
    left, and the parts joined are those the job's committed ``result`` lists, so a chunk done twice
    writes its page once.
    """
    export = Export.objects.select_related("run").get(job=job)
    run = export.run
    party = job.params.get("party")
    # A party's file holds its own units and those it received: only the segments that can hold
    # them are paged (``party_part``), and the rows are read of those units alone.
    forward = run_result(run) if party is None else finished_run_part(run=run, party_id=party)
    total = (run.definite_units or 0) + (run.potential_units or 0)
    after = int(job.result.get("after", 0)) if job.done else 0
    parts = list(job.result.get("parts", [])) if job.done else []
    written = int(job.result.get("written", 0)) if job.done else 0
    page = genealogy.affected_units(forward, after=after, limit=EXPORT_PAGE)
    if page:
        prefix_length = company_prefix_lengths()
        rows = affected_unit_rows(page, shown=genealogy.units_of(party) if party is not None else None)
        records = [unit_record(row, prefix_length=prefix_length) for row in rows]
        written += len(records)
        lines = "".join(json.dumps(r, cls=DjangoJSONEncoder) + "\n" for r in records)
        parts.append(_overwrite(export.file.storage, _part_name(job, after), ContentFile(lines.encode())))
    done = job.done + len(page)
    cursor: dict[str, Any] = {"parts": parts, "written": written, **({"after": page[-1].unit_id} if page else {})}
    if len(page) == EXPORT_PAGE and done < total:
        return Chunk(done=done, total=total, phase=f"exported {done:,} of {total:,} units", result=cursor)
    _assemble(export, parts)
    return Chunk(
        done=max(done, total), total=max(done, total), phase="exported", result={**cursor, "parts": [], "units": done}
    )


def _overwrite(storage: Storage, name: str, content: File) -> str:
    """Save ``content`` under ``name`` exactly: a file there is a lost attempt's (no committed row
    names it), and would make the storage pick another name."""
    if storage.exists(name):
        storage.delete(name)
    return storage.save(name, content)


def _assemble(export: Export, parts: list[str]) -> None:
    """Join the parts into the export's file, in the storage.

    The row names the file only when the last chunk commits, so a download never finds a file half
    written, and a redelivered last chunk writes it again over what the lost attempt left. The
    parts are deleted once that commit has happened: until then a redo needs them.
    """
    run, fmt, storage = export.run, export.format, export.file.storage
    name = f"{export.job_id}.{'csv' if fmt == ExportFormat.CSV else 'json'}"
    stored = export.file.field.generate_filename(export, name)
    if storage.exists(stored):
        storage.delete(stored)
    head = {"investigation": run.investigation_id, "run": run.pk, "position": run.position}
    writers: dict[str, Callable[[dict[str, Any], Iterator[dict[str, Any]]], Iterator[str]]] = {
        ExportFormat.CSV: _csv_lines,
        ExportFormat.JSON: _json_lines,
    }
    writer = writers.get(fmt, _notification_lines)
    lines = writer(head, _records(storage, parts))
    with spooled((line.encode() for line in lines), name=name) as content:
        export.file.save(name, content, save=False)
    export.save(update_fields=["file"])
    transaction.on_commit(lambda: _delete(storage, parts))


def _records(storage: Storage, parts: list[str]) -> Iterator[dict[str, Any]]:
    for part in parts:
        with storage.open(part, "rb") as lines:
            for line in lines:
                yield json.loads(line)


def _delete(storage: Storage, names: list[str]) -> None:
    for name in names:
        storage.delete(name)


def path_text(path: list[dict[str, str]]) -> str:
    return "; ".join(f"{s['from']} → {s['to']} by {s['record']} ({s['exposure']})" for s in path)


def _csv_lines(head: dict[str, Any], records: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The units as CSV, neutralised (``core.csv_cells``): serials are written by other parties."""
    writer = csv_cells.line_writer()
    yield writer.writerow(CSV_COLUMNS)
    for r in records:
        consignees = r["consignees"]
        yield writer.writerow(
            [
                r["serial"],
                r["gtin"] or "",
                r["identity"],
                r["epc"] or "",
                r["exposure"],
                path_text(r["path"]),
                "; ".join(c["organisation"] for c in consignees),
                consignees[0]["shipped_at"][:10] if consignees else "",
            ]
        )


def _json_lines(head: dict[str, Any], records: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield json.dumps(head)[:-1] + ', "units": ['
    for n, record in enumerate(records):
        yield ("," if n else "") + "\n" + json.dumps(record)
    yield "\n]}\n"


def _notification_lines(head: dict[str, Any], records: Iterator[dict[str, Any]]) -> Iterator[str]:
    """One notice per consignee: which affected units it received, and when.

    The units are grouped in memory (about 100 bytes a unit: 100 MB at a million units).
    """
    per_consignee: dict[str, dict[str, Any]] = {}
    unshipped = 0
    for r in records:
        if not r["consignees"]:
            unshipped += 1
        for c in r["consignees"]:
            entry = per_consignee.setdefault(
                c["organisation"], {"name": c["name"], "first": c["shipped_at"], "last": c["shipped_at"], "units": []}
            )
            entry["first"], entry["last"] = min(entry["first"], c["shipped_at"]), max(entry["last"], c["shipped_at"])
            entry["units"].append(
                {
                    "serial": r["serial"],
                    "epc": r["epc"],
                    "identity": r["identity"],
                    "exposure": r["exposure"],
                    "shipped_at": c["shipped_at"],
                }
            )
    organisations = {o.slug: o for o in Organisation.objects.filter(slug__in=sorted(per_consignee))}
    prefix_length = company_prefix_lengths()
    notices = [
        {
            "consignee": slug,
            "name": entry["name"],
            "pgln": identifier_or_none(f"pgln:{organisations[slug].pgln}", form="epc", prefix_length=prefix_length)
            if slug in organisations and organisations[slug].pgln
            else None,
            "units": len(entry["units"]),
            "first_shipped_at": entry["first"],
            "last_shipped_at": entry["last"],
            "affected_units": entry["units"],
        }
        for slug, entry in sorted(per_consignee.items(), key=lambda item: (-len(item[1]["units"]), item[0]))
    ]
    yield json.dumps({**head, "consignees": notices, "unshipped_units": unshipped}, indent=1) + "\n"
