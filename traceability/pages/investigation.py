"""The QA console (issue 15): the investigation's page (the form that records a finding is
``pages.finding``'s): its impact counts, its latest run's progress (htmx asks for the run's section
again until it finishes), the affected units the caller may see with filters (exposure, model, work
order, consignee) and cursor paging, the finished run's breakdowns as charts with their tables, its
consignees with their ship dates, the status moves its owner may make, and its exports with their
progress and download.

Who reads what is the access policy's answer, as for REST's investigation detail and run units: an
investigation the caller may not read is answered as an unknown one, 404 in the same words; what it
shows of a run is the caller's scope of it (``investigation_scope``), and its breakdowns and
consignees are those REST's run breakdown and consignees give the same caller.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from traceability.access.policy import (
    ResultScope,
    investigation_scope,
    investigations_readable,
    job_progress,
    readable_through_investigation,
)
from traceability.core.errors import DomainError
from traceability.core.models import Job, JobKind, JobStatus
from traceability.investigations.exports import export_file, export_start
from traceability.investigations.models import (
    ExportFormat,
    Exposure,
    Investigation,
    InvestigationStatus,
    TraceRun,
)
from traceability.investigations.selectors import (
    AffectedConsignee,
    AffectedUnitFilters,
    Breakdown,
    affected_units_page,
    finished_run_breakdown,
    finished_run_consignees,
    finished_run_part,
    finished_run_party_page,
    finished_run_result,
    run_diff_shown,
)
from traceability.investigations.services import (
    PERSON_MOVES,
    investigation_moves,
    investigation_transition,
    trace_run_start,
)
from traceability.pages.caller import PageCaller, member_page
from traceability.pages.finding import evidence_section
from traceability.pages.views import _investigation_row, _subject_url
from traceability.tasks import job_submit

# Affected units a page lists; the cursor (``?after=``, a unit id) carries on from the last one.
UNIT_ROWS = 50
# The exports a page lists, newest first.
EXPORT_ROWS = 10
# The consignees a page lists, most units first; the REST API pages through the rest.
CONSIGNEE_ROWS = 50
# The filters on a run's units besides exposure, as REST's run units page names them; a page offers
# the values the caller's breakdown holds (model and work order numbers, consignees' slugs).
UNIT_FILTERS = ("product_model", "work_order", "consignee")
READS_ONLY = gettext_lazy("Your role reads only: ask your organisation's admin for the QA engineer role.")


def _readable(page: PageCaller, number: int) -> Investigation | None:
    return (
        Investigation.objects.filter(investigations_readable(page.caller.actor), pk=number)
        .select_related(
            "owner",
            "finding__subject_lot",
            "finding__subject_unit",
            "finding__subject_organisation",
            "finding__subject_site",
        )
        .first()
    )


def _unknown(request: HttpRequest, number: int) -> HttpResponse:
    message = _("No investigation you may read is numbered %(number)s.") % {"number": number}
    return render(request, "pages/refused.html", {"message": message}, status=404)


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "pages/refused.html", {"message": message}, status=status)


@require_GET
@member_page
def investigation_page(request: HttpRequest, page: PageCaller, number: int) -> HttpResponse:
    """An investigation the caller reads; htmx asks for the run's section alone (``?section=run``),
    every second while the run traces, for what changed since the previous run (``?section=diff``)
    until it finishes, and for the exports' section while one is being written."""
    investigation = _readable(page, number)
    if investigation is None:
        return _unknown(request, number)
    scope = investigation_scope(page.caller.actor, investigation)
    section = request.GET.get("section")
    if request.htmx and section == "exports":  # type: ignore[attr-defined]
        return render(request, "pages/_investigation_exports.html", _exports(page, investigation, scope))
    run = _run_section(request, page, investigation, scope)
    if isinstance(run, HttpResponse):
        return run
    if request.htmx and section == "run":  # type: ignore[attr-defined]
        return render(request, "pages/_investigation_run.html", run)
    writes = _writes(page) and page.caller.owns(investigation.owner_id)
    tracing = run["run"] is not None and not run["finished"] and not run["failed"]
    changes = {
        "investigation": investigation,
        # a re-run traces: what it changed is asked for again until it finishes
        "tracing": tracing and run["run"].previous_id is not None,
        **_diff(investigation, run, scope),
        # As REST's re-run: its owner's writers, while no run traces and until it is closed (the
        # service refuses the rest in its own words, should the page be stale).
        "rerunnable": writes and investigation.status != InvestigationStatus.CLOSED and not tracing,
    }
    if request.htmx and section == "diff":  # type: ignore[attr-defined]
        return render(request, "pages/_investigation_diff.html", changes)
    context = {
        "investigation": investigation,
        "row": _investigation_row(investigation),
        "description": investigation.finding.description,
        "transitions": list(investigation.transitions.select_related("by").order_by("at", "pk")),
        "moves": [(to, InvestigationStatus(to).label) for to in investigation_moves(investigation.status)]
        if writes
        else [],
        **run,
        **changes,
        **_exports(page, investigation, scope),
        **evidence_section(investigation),
    }
    return render(request, "pages/investigation.html", context)


def _diff(investigation: Investigation, section: dict[str, Any], scope: ResultScope) -> dict[str, Any]:
    """What changed between the latest finished run and the one before it, as REST's run ``diff``
    says, shown as the caller may see it (``run_diff_shown``): the counts for a reader of the whole
    result, and the sampled units it sees in full, by serial."""
    run = section["run"]
    if not section["finished"]:  # one traces (or failed) after it: the latest finished is an earlier one
        run = investigation.runs.filter(job__status=JobStatus.SUCCEEDED).order_by("-created_at", "-pk").first()
    shown = run_diff_shown(run=run, shown=scope.units_shown(), full=scope.full) if run is not None else None
    if shown is None:
        return {"diff": None}

    def listed(units: list[Any]) -> list[dict[str, str]]:
        return [{"serial": u.serial, "link": _subject_url("pages:unit", u.identity, u.serial)} for u in units]

    return {
        "diff": {
            "from_position": shown.from_position,
            "to_position": shown.to_position,
            "counted": shown.counted,
            "complete": shown.complete,
            "kinds": [
                ("diff-added", _("Newly exposed"), listed(shown.added), (shown.counted or {}).get("added")),
                ("diff-gone", _("No longer exposed"), listed(shown.gone), (shown.counted or {}).get("gone")),
                (
                    "diff-changed",
                    _("Exposure changed"),
                    listed(shown.exposure_changed),
                    (shown.counted or {}).get("exposure_changed"),
                ),
            ],
        }
    }


def _run_section(
    request: HttpRequest, page: PageCaller, investigation: Investigation, scope: ResultScope
) -> dict[str, Any] | HttpResponse:
    """The latest run: its counts as the caller may see them, its progress, and once finished a
    page of its affected units (``?exposure=``, ``?after=``)."""
    run = investigation.runs.select_related("job").order_by("-created_at", "-pk").first()
    finished = run is not None and run.job.status == JobStatus.SUCCEEDED
    failed = run is not None and run.job.status == JobStatus.FAILED
    counted = investigation.preview
    if finished and run is not None:
        counted = {
            "definite_units": run.definite_units,
            "potential_units": run.potential_units,
            "consignees": run.consignees,
            "party_view": run.party_view,
        }
    counts = _counts(counted, scope, finished=finished)
    percent = None
    if run is not None:
        done, total, _phase = job_progress(run.job, full=scope.full)
        percent = 100 if finished else (min(99, done * 100 // total) if total else 0)
    exposure = request.GET.get("exposure", "")
    if exposure not in ("", *Exposure.values):
        message = _("Exposure is “definite” or “potential”, not “%(value)s”.") % {"value": exposure[:50]}
        return _refused(request, message, 400)
    after = request.GET.get("after", "0")
    if not (after.isascii() and after.isdigit() and len(after) <= 18):  # a unit id: within a bigint
        message = _("The page to continue from is a unit number: “%(value)s” is none.") % {"value": after[:50]}
        return _refused(request, message, 400)
    chosen = {name: request.GET.get(name, "") for name in UNIT_FILTERS}
    units, next_url, breakdown, consignees = [], None, None, None
    if finished and run is not None:
        read = _breakdown(run, scope)
        if read is not None:
            breakdown, consignees = _breakdown_shown(read), _consignees_shown(read.consignees)
        refused = _unknown_choice(chosen, breakdown)
        if refused is not None:
            return _refused(request, refused, 400)
        filters = AffectedUnitFilters(exposure=exposure or None, **{k: v or None for k, v in chosen.items()})
        units, next_after = _units(run, scope, filters=filters, after=int(after))
        if next_after is not None:
            kept = {"exposure": exposure, **chosen}
            query = {"after": next_after, **{name: value for name, value in kept.items() if value}}
            next_url = f"{request.path}?{urlencode(query)}"
    return {
        "run": run,
        "finished": finished,
        "failed": failed,
        "percent": percent,
        "counts": counts,
        "units": units,
        "next_units": next_url,
        "exposure": exposure,
        "exposures": Exposure.choices,
        "unit_filters": _filter_choices(chosen, breakdown),
        "breakdown": breakdown,
        "consignee_rows": consignees,
        "filtered": exposure != "" or after != "0" or any(chosen.values()),
    }


def _breakdown(run: TraceRun, scope: ResultScope) -> Breakdown | None:
    """The run's breakdown as REST's run breakdown gives it this caller: whole for one who sees the
    run whole (summed from what the run stored: the same queries whatever its size), else counted
    over the units it is shown and the consignees of its own shipments. Fails closed: a partial
    reader that is no organisation is given none."""
    if scope.full:
        return finished_run_breakdown(run=run, consignees=finished_run_consignees(run=run))
    if scope.organisation_id is None:
        return None
    party_id = scope.organisation_id
    return finished_run_breakdown(
        run=run,
        shown=scope.units_shown(),
        party_id=party_id,
        consignees=finished_run_consignees(run=run, party_id=party_id),
    )


def _breakdown_shown(breakdown: Breakdown) -> list[dict[str, Any]]:
    """Each dimension as its chart and table show it: a row per group, largest first, with the value
    a filter takes (None for a dimension, or a group, the units cannot be filtered by)."""
    none = _("none recorded")
    dimensions = [
        (
            "product-models",
            _("Affected units by model"),
            _("Model"),
            "product_model",
            [(f"{c.model_number} · {c.name}", c.model_number, c) for c in breakdown.product_models],
        ),
        (
            "work-orders",
            _("Affected units by work order"),
            _("Work order"),
            "work_order",
            [(c.number or none, c.number, c) for c in breakdown.work_orders],
        ),
        ("sites", _("Affected units by site"), _("Site"), None, [(c.name or none, None, c) for c in breakdown.sites]),
        (
            "production-months",
            _("Affected units by production month"),
            _("Production month"),
            None,
            [(c.month or none, None, c) for c in breakdown.production_months],
        ),
    ]
    shown = [
        {
            "key": key,
            "title": title,
            "heading": heading,
            "filter": name,
            "split": True,
            "rows": [
                {"label": label, "value": value, "units": c.units, "definite": c.definite, "potential": c.potential}
                for label, value, c in rows
            ],
        }
        for key, title, heading, name, rows in dimensions
    ]
    # A consignee is counted its units only: REST's breakdown splits no consignee by exposure.
    consignees = [
        {"label": c.party.name, "value": c.party.slug, "units": c.units, "definite": None, "potential": None}
        for c in breakdown.consignees
    ]
    shown.append(
        {
            "key": "consignees",
            "title": _("Affected units by consignee"),
            "heading": _("Consignee"),
            "filter": "consignee",
            "split": False,
            "rows": consignees,
        }
    )
    for dimension in shown:
        dimension["chart"] = _chart(dimension["rows"], split=dimension["split"])
        dimension["json_id"] = f"chart-data-{dimension['key']}"
    return shown


def _chart(rows: list[dict[str, Any]], *, split: bool) -> dict[str, Any]:
    """What ``ledger-charts.js`` draws a dimension from (given to it with ``json_script``): stacked
    bars of definite and potential units, or of units alone."""
    labels = [row["label"] for row in rows]
    if not split:
        return {"labels": labels, "series": [{"label": _("Units"), "data": [row["units"] for row in rows]}]}
    return {
        "labels": labels,
        "series": [
            {"label": _("Definite"), "kind": "definite", "data": [row["definite"] for row in rows]},
            {"label": _("Potential"), "kind": "potential", "data": [row["potential"] for row in rows]},
        ],
    }


def _consignees_shown(consignees: tuple[AffectedConsignee, ...]) -> dict[str, Any]:
    """The run's consignees the caller may see, most units first, the first ``CONSIGNEE_ROWS``."""
    return {
        "rows": [
            {
                "name": c.party.name,
                "units": c.units,
                "first_shipped_at": c.first_shipped_at,
                "last_shipped_at": c.last_shipped_at,
                "countries": ", ".join(sorted(c.ship_to_countries)),
            }
            for c in consignees[:CONSIGNEE_ROWS]
        ],
        "count": len(consignees),
        "capped": len(consignees) > CONSIGNEE_ROWS,
    }


def _filter_choices(chosen: dict[str, str], breakdown: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A select per filter besides exposure, offering the groups of the caller's breakdown."""
    return [
        {
            "name": dimension["filter"],
            "label": dimension["heading"],
            "options": [(row["value"], row["label"]) for row in dimension["rows"] if row["value"] is not None],
            "chosen": chosen[dimension["filter"]],
        }
        for dimension in breakdown or []
        if dimension["filter"] is not None
    ]


def _unknown_choice(chosen: dict[str, str], breakdown: list[dict[str, Any]] | None) -> str | None:
    """What is wrong with a model, work order or consignee asked for, when it is none the caller's
    breakdown offers (whether another's exists is not the caller's to learn); None when all are."""
    offered = {
        dimension["filter"]: {row["value"] for row in dimension["rows"] if row["value"] is not None}
        for dimension in breakdown or []
        if dimension["filter"] is not None
    }
    messages = {
        "product_model": _("Model “%(value)s” is not the model of any affected unit you may see."),
        "work_order": _("Work order “%(value)s” is not the work order of any affected unit you may see."),
        "consignee": _("Consignee “%(value)s” received none of the affected units you may see."),
    }
    for name, value in chosen.items():
        if value and value not in offered.get(name, set()):
            return messages[name] % {"value": value[:50]}
    return None


def _counts(counted: dict[str, Any], scope: ResultScope, *, finished: bool) -> dict[str, Any] | None:
    """The run's counts once it finished, else the preview's: all of them for a caller who sees the
    result whole; otherwise its own share (the stored party view) and nothing more. Fails closed: a
    share that was not stored shows no count at all."""
    if not counted or counted.get("definite_units") is None:
        return None
    view = counted.get("party_view") or None
    if scope.full:
        shown = counted
    elif view is not None:
        shown = view
    else:
        return None
    return {
        "definite": shown["definite_units"],
        "potential": shown["potential_units"],
        "consignees": shown["consignees"],
        "others": [] if scope.full else list(view.get("others", []) if view else []),
        "from_run": finished,
    }


def _units(
    run: TraceRun, scope: ResultScope, *, filters: AffectedUnitFilters, after: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the run's affected units the caller sees, as REST's run units page reads them."""
    party_id = None if scope.full else scope.organisation_id
    found = None
    received = None
    if party_id is not None and not filters.narrowing:
        answer = finished_run_party_page(run=run, party_id=party_id, after=after, limit=UNIT_ROWS)
        found, received = answer.page, answer.received
    if found is None:
        if party_id is not None:
            filters = dataclasses.replace(filters, shown=scope.units_shown(), party_id=party_id)
            forward = finished_run_part(run=run, party_id=party_id, received=received)
        else:
            forward = finished_run_result(run=run)
        found = affected_units_page(forward=forward, after=after, limit=UNIT_ROWS, filters=filters)
    path_page = reverse("pages:investigation-unit", args=[run.investigation_id])  # each unit's path
    rows = [
        {
            "serial": row.serial,
            "link": _subject_url("pages:unit", row.identity, row.serial),
            "model": row.product_model,
            "work_order": row.work_order or "",
            "exposure": Exposure(row.exposure).label,
            "definite": row.exposure == Exposure.DEFINITE,
            "consignees": ", ".join(dict.fromkeys(s.name for s in row.shipments)),
            "path": f"{path_page}?{urlencode({'id': row.identity})}",
        }
        for row in found.rows
    ]
    return rows, found.next_after


def _export_jobs(page: PageCaller, investigation: Investigation) -> QuerySet[Job]:
    """The investigation's exports the caller reads: its organisation's own (a regulator's are its)."""
    readable = readable_through_investigation(
        page.caller.actor, owner="owner_id", investigation="trace_run__investigation"
    )
    return Job.objects.filter(readable, Q(kind=JobKind.EXPORT), params__investigation_id=investigation.pk)


def _exports(page: PageCaller, investigation: Investigation, scope: ResultScope) -> dict[str, Any]:
    jobs = list(_export_jobs(page, investigation).order_by("-created_at", "-pk")[:EXPORT_ROWS])
    rows = []
    for job in jobs:
        done, total, _phase = job_progress(job, full=scope.full)
        succeeded = job.status == JobStatus.SUCCEEDED
        rows.append(
            {
                "id": job.pk,
                "format": str(job.params.get("format", "")).upper(),
                "created_at": job.created_at,
                "status": job.get_status_display(),
                "percent": 100 if succeeded else (min(99, done * 100 // total) if total else 0),
                "download": reverse("pages:investigation-download", args=[investigation.pk, job.pk])
                if succeeded
                else None,
                "error": job.error if job.status == JobStatus.FAILED else "",
            }
        )
    return {
        "exports": rows,
        "exporting": any(job.status in (JobStatus.QUEUED, JobStatus.RUNNING) for job in jobs),
        "formats": ExportFormat.choices,
        "export_action": reverse("pages:investigation-export", args=[investigation.pk]),
        "exportable": _writes(page) and investigation.runs.filter(job__status=JobStatus.SUCCEEDED).exists(),
    }


# --- writes -----------------------------------------------------------------------------------------


def _writable(request: HttpRequest, page: PageCaller, number: int) -> Investigation | HttpResponse:
    """An investigation the caller may change (its owner's QA engineers and admins); one it may not
    read is answered as unknown, one it only reads with 403 saying why."""
    investigation = _readable(page, number)
    if investigation is None:
        return _unknown(request, number)
    if not page.caller.owns(investigation.owner_id):
        return _refused(request, _("You read this investigation through your grants; its owner changes it."), 403)
    if not _writes(page):
        return _refused(request, str(READS_ONLY), 403)
    return investigation


def _writes(page: PageCaller) -> bool:
    """As REST's writes on findings and investigations: QA engineers and admins, a regulator's on its
    own inquiries (the record's owner is asked apart)."""
    return page.caller.may_write or page.caller.may_inquire


@require_POST
@member_page
def investigation_move(request: HttpRequest, page: PageCaller, number: int) -> HttpResponse:
    """Move the investigation on (``to``, with a ``note``), as REST's transitions do."""
    investigation = _writable(request, page, number)
    if isinstance(investigation, HttpResponse):
        return investigation
    to = request.POST.get("to", "")
    note = request.POST.get("note", "").strip()
    if to not in PERSON_MOVES:
        message = _("“%(to)s” is no status a person moves an investigation to.") % {"to": to[:50]}
        return _refused(request, message, 400)
    if len(note) > 2000:
        return _refused(request, _("A note is 2,000 characters at most."), 400)
    try:
        investigation_transition(investigation=investigation, to=to, by=request.user, note=note)
    except DomainError as refused:
        return _refused(request, refused.message, 409)
    return HttpResponseRedirect(reverse("pages:investigation", args=[investigation.pk]))


@require_POST
@member_page
def investigation_rerun(request: HttpRequest, page: PageCaller, number: int) -> HttpResponse:
    """Trace the investigation's subject again at the ledger's current position, as REST's
    ``POST /investigations/{id}/runs/``: its owner's writers (a regulator's on its own inquiries);
    refused while a run of the subject traces, and once it is closed, in the domain's words."""
    investigation = _writable(request, page, number)
    if isinstance(investigation, HttpResponse):
        return investigation
    try:
        trace_run_start(investigation=investigation, by=request.user, submit=job_submit)
    except DomainError as refused:
        return _refused(request, refused.message, 409)
    return HttpResponseRedirect(reverse("pages:investigation", args=[investigation.pk]) + "#run")


@require_POST
@member_page
def investigation_export(request: HttpRequest, page: PageCaller, number: int) -> HttpResponse:
    """Export the latest finished run's affected units the caller sees, as REST's exports do: a
    regulator exports any investigation its grants cover, as its own job."""
    investigation = _readable(page, number)
    if investigation is None:
        return _unknown(request, number)
    if not _writes(page):
        return _refused(request, str(READS_ONLY), 403)
    scope = investigation_scope(page.caller.actor, investigation)
    try:
        export_start(
            investigation=investigation,
            format=request.POST.get("format", ""),
            by=request.user,
            party_id=None if scope.full else scope.organisation_id,
            requested_for=page.organisation,
            submit=job_submit,
        )
    except DomainError as refused:
        return _refused(request, refused.message, 409 if refused.code == "no_finished_run" else 400)
    return HttpResponseRedirect(reverse("pages:investigation", args=[investigation.pk]) + "#exports")


@require_GET
@member_page
def export_download(request: HttpRequest, page: PageCaller, number: int, job: uuid.UUID) -> HttpResponse:
    """The file an export the caller reads wrote (another's, or none: 404 as an unknown one)."""
    investigation = _readable(page, number)
    found = _export_jobs(page, investigation).filter(pk=job).first() if investigation is not None else None
    if investigation is None or found is None:
        return _refused(request, _("No export you may read is known as %(job)s.") % {"job": job}, 404)
    try:
        export = export_file(job=found)
        content = export.file.open("rb")
    except (DomainError, FileNotFoundError):
        return _refused(request, _("That export has no file to download yet, or it is gone."), 409)
    suffix = PurePosixPath(export.file.name).suffix
    return FileResponse(
        content,
        as_attachment=True,
        filename=f"investigation-{investigation.pk}-{export.format}{suffix}",
        content_type="text/csv" if suffix == ".csv" else "application/json",
    )
