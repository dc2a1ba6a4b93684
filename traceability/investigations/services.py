"""Findings, investigations and trace runs: from "debris in lot X" to the affected set.

Recording a finding opens its investigation, counts the impact at once (the preview) and starts a
trace run as a background job. A run traces at one ledger position and stores its result
compactly (the segments it reached); later runs of the same investigation say what changed.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Organisation, Site
from suppliers.services import recorded_user
from traceability import genealogy
from traceability.core.audit import AuditAction, audit_record
from traceability.core.bulk import insert_rows
from traceability.core.db import in_cte_sql
from traceability.core.errors import DomainError
from traceability.core.jobs import Chunk, Submit, job_create, job_handler
from traceability.core.models import Job, JobKind, JobStatus
from traceability.genealogy.models import SegmentOwner, exposure_name
from traceability.genealogy.trace import Link, Reached, SegmentReached
from traceability.investigations.evidence import Evidence, evidence_kept, evidence_rows
from traceability.investigations.models import (
    Finding,
    Investigation,
    InvestigationStatus,
    InvestigationTransition,
    SubjectKind,
    TraceRun,
    TraceRunCountry,
    TraceRunPart,
    TraceRunSegment,
    TraceRunUnit,
)

S = InvestigationStatus
# People move an investigation through review; only trace runs move it into and out of tracing,
# so its status always says whether a run is in flight.
_BY_PEOPLE: dict[str, set[str]] = {
    S.OPEN: {S.CLOSED},
    S.TRACING: set(),
    S.TRACED: {S.UNDER_REVIEW, S.CLOSED},
    S.UNDER_REVIEW: {S.CLOSED},
    S.CLOSED: set(),
}
_BY_RUNS: dict[str, set[str]] = {
    S.OPEN: {S.TRACING},
    S.TRACING: {S.TRACED},
    S.TRACED: {S.TRACING},
    S.UNDER_REVIEW: {S.TRACING},
    S.CLOSED: set(),
}


class InvestigationError(DomainError, ValueError):
    """A finding, a transition or a trace run refused; the message says why."""

    code = "investigation_refused"


class InvalidFindingSubject(InvestigationError):
    code = "invalid_subject"


class InvalidWindow(InvestigationError):
    code = "invalid_window"


class EmptySubject(InvestigationError):
    """A supplier or site subject that names no lot (in its window)."""

    code = "empty_subject"


class TraceInProgress(InvestigationError):
    """A run of the same subject is still tracing: its answer is on the way."""

    code = "trace_in_progress"


class InvalidTransition(InvestigationError):
    """The investigation's status does not allow the move (a closed investigation is never traced again)."""

    code = "invalid_transition"


Subject = Lot | Unit | Organisation | Site


def _subject_fields(subject: Subject) -> dict[str, Any]:
    match subject:
        case Lot():
            return {"subject_kind": SubjectKind.LOT, "subject_lot": subject}
        case Unit():
            return {"subject_kind": SubjectKind.UNIT, "subject_unit": subject}
        case Organisation():
            return {"subject_kind": SubjectKind.SUPPLIER, "subject_organisation": subject}
        case Site():
            return {"subject_kind": SubjectKind.SITE, "subject_site": subject}
    raise InvalidFindingSubject(f"a finding's subject is a lot, a unit, a supplier or a site, not {subject!r}")


def finding_seeds(finding: Finding) -> tuple[list[int], list[int]]:
    """The lots and units a finding names: (lot ids, unit ids). One query for supplier or site."""
    return findings_seeds([finding])[finding.pk]


def findings_seeds(findings: Iterable[Finding]) -> dict[int, tuple[list[int], list[int]]]:
    """``finding_seeds`` of each finding, by id: one query for all the supplier and site subjects
    among them (none when there are none), each lot then told to the findings whose window it
    overlaps, as the query's condition says."""
    findings = list(findings)
    seeds: dict[int, tuple[list[int], list[int]]] = {}
    named: list[Finding] = []
    for finding in findings:
        # finding_subject_matches_kind: a lot finding has its lot, a unit finding its unit.
        if finding.subject_kind == SubjectKind.LOT and finding.subject_lot_id is not None:
            seeds[finding.pk] = ([finding.subject_lot_id], [])
        elif finding.subject_kind == SubjectKind.UNIT and finding.subject_unit_id is not None:
            seeds[finding.pk] = ([], [finding.subject_unit_id])
        else:
            named.append(finding)
            seeds[finding.pk] = ([], [])
    if not named:
        return seeds
    conditions = [_seed_lots(finding) for finding in named]
    lots = Lot.objects.filter(functools.reduce(lambda a, b: a | b, conditions)).order_by("pk")
    for lot in lots.only("pk", "owner_id", "site_id", "produced_from", "produced_to"):
        for finding in named:
            if _seeds_lot(finding, lot):
                seeds[finding.pk][0].append(lot.pk)
    return seeds


def _seed_lots(finding: Finding) -> Q:
    """The lots a supplier or site finding names, as a condition on ``Lot``: its supplier's or its
    site's, those whose production overlaps its window."""
    lots = (
        Q(owner_id=finding.subject_organisation_id)
        if finding.subject_kind == SubjectKind.SUPPLIER
        else Q(site_id=finding.subject_site_id)
    )
    if finding.window_from:
        lots &= Q(produced_to__gte=finding.window_from) | Q(produced_to__isnull=True)
    if finding.window_to:
        lots &= Q(produced_from__lte=finding.window_to) | Q(produced_from__isnull=True)
    return lots


def _seeds_lot(finding: Finding, lot: Lot) -> bool:
    """``_seed_lots`` asked of one lot read already."""
    if finding.subject_kind == SubjectKind.SUPPLIER:
        named = lot.owner_id == finding.subject_organisation_id
    else:
        named = lot.site_id is not None and lot.site_id == finding.subject_site_id
    if finding.window_from and lot.produced_to is not None and lot.produced_to < finding.window_from:
        return False
    if finding.window_to and lot.produced_from is not None and lot.produced_from > finding.window_to:
        return False
    return named


def finding_subject_lots(
    subject: Subject, *, window_from: dt.datetime | None = None, window_to: dt.datetime | None = None
) -> list[int] | None:
    """The lots a supplier or site subject names in its window, as its finding would trace them
    (``finding_seeds``: one query), for the access policy to judge before anyone is told whether
    there are any; None for a lot or unit, which is one subject already."""
    if isinstance(subject, Lot | Unit):
        return None
    lot_ids, _ = finding_seeds(Finding(**_subject_fields(subject), window_from=window_from, window_to=window_to))
    return lot_ids


def _running_run_on(finding: Finding) -> TraceRun | None:
    """A trace of the same subject the same organisation is running: another organisation's says
    nothing to this one (it would tell that organisation's investigation exists), and runs apart."""
    same_subject = {
        f"investigation__finding__{field}": getattr(finding, field)
        for field in ("subject_kind", "subject_lot_id", "subject_unit_id", "subject_organisation_id", "subject_site_id")
    }
    return (
        TraceRun.objects.filter(
            job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
            investigation__owner_id=finding.owner_id,
            **same_subject,
        )
        .select_related("investigation")
        .first()
    )


def impact_preview(
    *,
    lot_ids: Iterable[int],
    unit_ids: Iterable[int],
    snapshot: genealogy.Snapshot | None = None,
    party_id: int | None = None,
    forward: genealogy.Forward | None = None,
) -> dict[str, Any]:
    """Definitely and potentially exposed units and consignees, counted now, without a run; with
    ``party_id``, that party's share too (``party_view``), which is all it is shown. ``forward``:
    the trace of these seeds at ``snapshot``, when the caller made it already."""
    if forward is None:
        forward = genealogy.forward_trace(
            snapshot=snapshot or genealogy.ledger_snapshot(), seed_lot_ids=lot_ids, seed_unit_ids=unit_ids
        )
    definite, potential = genealogy.affected_counts(forward)
    receivers = genealogy.consignees(forward)
    preview: dict[str, Any] = {
        "position": forward.snapshot.position,
        "definite_units": definite,
        "potential_units": potential,
        "consignees": len(receivers),
        # Where the units were sold: what a regulator's jurisdiction grant is matched against.
        "countries": sorted(genealogy.consignee_countries(receivers)),
    }
    if party_id is not None:
        preview["party_view"] = _party_view(forward, party_id)
    return preview


def finding_record(
    *,
    owner: Organisation,
    subject: Subject,
    category: str,
    severity: str,
    description: str,
    raised_by: AbstractBaseUser | None = None,
    window_from: dt.datetime | None = None,
    window_to: dt.datetime | None = None,
    inspection_ids: Iterable[int] = (),
    inquiry: bool = False,
    traced: genealogy.Forward | None = None,
    evidence: Sequence[Evidence] = (),
    submit: Submit,
) -> Finding:
    """Record a finding, open its investigation with an impact preview, and start a trace run.

    ``inquiry``: the ``owner`` is a regulator and this is its inquiry (the access policy has checked
    its grants cover the subject); it is recorded as any finding is, and is the regulator's own.
    ``traced``: the forward trace of ``subject`` (a lot or unit; a supplier's or site's lots in the
    window) the caller made already (the access policy's check, ``SubjectCheck``): the preview
    counts it, and the run traces at its position, so the subject is traced once in the request.
    ``evidence``: files checked (``evidence_check``) kept with the finding, in its transaction: the
    finding is recorded with all of them or not at all (``EvidenceNotStored`` if the storage fails).
    """
    now = timezone.now()
    if window_from and window_to and window_to < window_from:
        raise InvalidWindow(f"the window ends ({window_to:%Y-%m-%d}) before it starts ({window_from:%Y-%m-%d})")
    user = recorded_user(raised_by)
    # The files' bytes are written first (a storage failure records nothing), their rows in the
    # transaction; rolled back, the finding has no evidence and the bytes are deleted.
    with evidence_kept(evidence=evidence, by=raised_by) as stored, transaction.atomic(durable=True):
        finding = Finding(
            owner=owner,
            category=category,
            severity=severity,
            description=description,
            raised_by=user,
            raised_at=now,
            window_from=window_from,
            window_to=window_to,
            inquiry=inquiry,
            **_subject_fields(subject),
        )
        if running := _running_run_on(finding):
            raise TraceInProgress(
                f"a trace of this subject is already running for investigation #{running.investigation_id}"
                f" (run {running.pk}, started {running.created_at:%Y-%m-%d %H:%M:%S} UTC): wait for it,"
                " then record the finding or re-run that investigation"
            )
        finding.save()
        if inspections := list(inspection_ids):
            finding.inspections.set(inspections)
        evidence_rows(finding=finding, stored=stored, by=raised_by)
        lot_ids, unit_ids = finding_seeds(finding)
        if not lot_ids and not unit_ids:
            raise EmptySubject(f"the finding names no lot or unit: {_describe(finding)} has none")
        if traced is not None and not isinstance(subject, Lot | Unit) and traced.seed_lot_ids() != set(lot_ids):
            traced = None  # a supplier's or site's lots in the window, read again here: others than were traced
        snapshot = traced.snapshot if traced is not None else genealogy.ledger_snapshot()
        investigation = Investigation.objects.create(
            owner=owner,
            finding=finding,
            opened_at=now,
            opened_by=user,
            preview=impact_preview(
                lot_ids=lot_ids, unit_ids=unit_ids, snapshot=snapshot, party_id=owner.pk, forward=traced
            ),
        )
        InvestigationTransition.objects.create(
            investigation=investigation, to_status=InvestigationStatus.OPEN, at=now, by=user, note="finding recorded"
        )
        run = trace_run_start(
            investigation=investigation, by=user, submit=submit, seeds=(lot_ids, unit_ids), snapshot=snapshot
        )
        # The run traces the preview's seeds at the preview's position: its units went where the
        # preview's did, known now, so a jurisdiction grant covers the investigation from the start.
        _countries_store(run, investigation.preview["countries"])
        audit_record(
            action=AuditAction.FINDING_RECORD,
            user=user,
            organisation=owner,
            identifiers=[
                f"finding:{finding.pk}",
                f"investigation:{investigation.pk}",
                f"run:{run.pk}",
                *_subject_ids(finding),
            ],
            detail={
                "category": category,
                "severity": severity,
                "subject_kind": finding.subject_kind,
                **({"inquiry": True} if inquiry else {}),
            },
        )
    return finding


def _subject_ids(finding: Finding) -> list[str]:
    """What a finding names, for its audit entry: the lot's or unit's identity, or the organisation or site."""
    if finding.subject_lot is not None:
        return [finding.subject_lot.identity]
    if finding.subject_unit is not None:
        return [finding.subject_unit.identity]
    if finding.subject_organisation is not None:
        return [f"organisation:{finding.subject_organisation.slug}"]
    return [f"site:{finding.subject_site_id}"]


def _describe(finding: Finding) -> str:
    window = ""
    if finding.window_from or finding.window_to:
        window = f" between {finding.window_from or '…'} and {finding.window_to or '…'}"
    subject = finding.subject_organisation or finding.subject_site
    return f"{finding.get_subject_kind_display().lower()} {subject}{window}"


def investigation_moves(status: str) -> list[str]:
    """The statuses a person may move an investigation on to from ``status`` (runs make the
    others), in the order of ``InvestigationStatus``: what a page offers as buttons."""
    return [to for to in S.values if to in _BY_PEOPLE.get(status, ())]


PERSON_MOVES: frozenset[str] = frozenset().union(*_BY_PEOPLE.values())


def investigation_transition(
    *, investigation: Investigation, to: str, by: AbstractBaseUser | None = None, note: str = "", by_run: bool = False
) -> Investigation:
    """Move an investigation on; ``by_run`` is for trace runs starting and finishing only."""
    allowed_moves = _BY_RUNS if by_run else _BY_PEOPLE
    with transaction.atomic():
        locked = Investigation.objects.select_for_update().get(pk=investigation.pk)
        if to not in allowed_moves[locked.status]:
            allowed = ", ".join(sorted(allowed_moves[locked.status])) or (
                "none, it is closed" if locked.status == S.CLOSED else "none"
            )
            raise InvalidTransition(
                f"investigation #{locked.pk} cannot go from {locked.status} to {to} (allowed: {allowed})"
            )
        InvestigationTransition.objects.create(
            investigation=locked,
            from_status=locked.status,
            to_status=to,
            at=timezone.now(),
            by=recorded_user(by),
            note=note,
        )
        if not by_run:  # a run's own moves are part of the run's entry
            audit_record(
                action=AuditAction.INVESTIGATION_TRANSITION,
                user=by,
                organisation=locked.owner_id,
                identifiers=[f"investigation:{locked.pk}"],
                detail={"from": locked.status, "to": to},
            )
        locked.status = to
        locked.save(update_fields=["status"])
    investigation.status = to
    return locked


def trace_run_start(
    *,
    investigation: Investigation,
    by: AbstractBaseUser | None = None,
    submit: Submit,
    seeds: tuple[list[int], list[int]] | None = None,
    snapshot: genealogy.Snapshot | None = None,
) -> TraceRun:
    """Trace the investigation's subject at the ledger's current position, in the background.

    ``seeds`` (lot ids, unit ids) and ``snapshot`` are for ``finding_record``, which has just read
    them and checked that no run of the subject is in flight.
    """
    with transaction.atomic():
        if seeds is None and (running := _running_run_on(investigation.finding)):
            raise TraceInProgress(f"run {running.pk} of investigation #{running.investigation_id} is still tracing")
        snapshot = snapshot or genealogy.ledger_snapshot()
        lot_ids, unit_ids = seeds or finding_seeds(investigation.finding)
        previous = investigation.runs.order_by("-created_at").first()
        job = job_create(kind=JobKind.TRACE_RUN, params={}, owner=investigation.owner, created_by=by)
        run = TraceRun.objects.create(
            investigation=investigation,
            job=job,
            position=snapshot.position,
            last_transformation_id=snapshot.last_transformation_id,
            retracted_transformation_ids=sorted(snapshot.retracted),
            seed_lot_ids=lot_ids,
            seed_unit_ids=unit_ids,
            previous=previous,
        )
        job.params = {"trace_run_id": run.pk}
        job.save(update_fields=["params"])
        investigation_transition(investigation=investigation, to=InvestigationStatus.TRACING, by=by, by_run=True)
        submit(job)
        if seeds is None:  # a finding's first run is part of the finding's entry (``finding_record``)
            audit_record(
                action=AuditAction.RUN_START,
                user=by,
                organisation=investigation.owner_id,
                identifiers=[f"investigation:{investigation.pk}", f"run:{run.pk}"],
                detail={"position": run.position},
            )
    return run


def run_snapshot(run: TraceRun) -> genealogy.Snapshot:
    return genealogy.Snapshot(run.position, run.last_transformation_id, frozenset(run.retracted_transformation_ids))


def _path_json(path: tuple[Link, ...]) -> list[list]:
    return [[link.source, link.target, link.definite, link.record, link.kinds] for link in path]


def _path_from_json(rows: list[list]) -> tuple[Link, ...]:
    return tuple(Link(*row) for row in rows)


def run_result(run: TraceRun, *, owner_id: int | None = None) -> genealogy.Forward:
    """A finished run's result, rebuilt from what it stored, with no re-trace.

    Two queries; the segments' paths are read later, only for the segments a page of units needs
    (parsing them all took 0.3 s for a million-unit result). With ``owner_id``, the part of it
    listing that owner's units (``genealogy.party_part`` of a party that received nothing): only
    the segments holding its units, with the roll-up's bounds of them, in the same query (a brand's
    page of the largest bench result read 2,568 segments, then asked the roll-up about each).
    """
    bounds: dict[int, tuple[int, int, int]] | None = None
    rows: list[tuple[int, str, int]]
    if owner_id is None:
        rows = list(run.segments.values_list("segment_id", "exposure", "via_lot_id"))
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r.segment_id, r.exposure, r.via_lot_id, o.first_unit_id, o.last_unit_id, o.unit_count"
                f" FROM {TraceRunSegment._meta.db_table} r JOIN {SegmentOwner._meta.db_table} o"
                f" ON o.segment_id = r.segment_id AND o.owner_id = %s WHERE r.run_id = %s",
                [owner_id, run.pk],
            )
            owned = cursor.fetchall()
        bounds = {segment: (first, last, count) for segment, _, _, first, last, count in owned}
        rows = [(segment, exposure, via_lot) for segment, exposure, via_lot, *_ in owned]
    segments = {
        segment: SegmentReached(segment, exposure == "definite", via_lot, ()) for segment, exposure, via_lot in rows
    }
    units = {row.unit_id: Reached(row.exposure == "definite", _path_from_json(row.path)) for row in run.units.all()}

    def paths(segment_ids: set[int]) -> dict[int, tuple[Link, ...]]:
        stored = run.segments.filter(segment_id__any=segment_ids).values_list("segment_id", "path")
        return {segment: _path_from_json(path) for segment, path in stored}

    return genealogy.Forward(
        snapshot=run_snapshot(run),
        lots={},
        segments=segments,
        units=units,
        path_loader=paths,
        owner_id=owner_id,
        part_of=owner_id,
        bounds=bounds,
    )


@functools.lru_cache(maxsize=4)
def _run_trace(
    run_id: int, snapshot: genealogy.Snapshot, seed_lot_ids: tuple[int, ...], seed_unit_ids: tuple[int, ...]
) -> genealogy.Forward:
    """The run's trace; ``run_id`` is part of the key only to keep runs apart. The result is a
    function of the snapshot and seeds alone (the ledger below a position never changes)."""
    return genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=seed_lot_ids, seed_unit_ids=seed_unit_ids)


@job_handler(JobKind.TRACE_RUN)
def trace_run_chunk(job: Job) -> Chunk:
    """Store the next bounded chunk of a run's reached segments; the last chunk counts and diffs.

    A chunk carries no state between messages: it traces the run's seeds at the run's position,
    which gives the same answer wherever and however often it runs, so a redelivered chunk
    recomputes it. A worker keeps the last few traces it made (``_run_trace``), so the chunks of
    one run do not each walk the graph again.
    """
    run = TraceRun.objects.select_related("investigation").get(pk=job.params["trace_run_id"])
    forward = _run_trace(run.pk, run_snapshot(run), tuple(run.seed_lot_ids), tuple(run.seed_unit_ids))
    ordered = forward.segment_ids()
    if job.done == 0:
        insert_rows(
            TraceRunUnit,
            ("run_id", "unit_id", "exposure", "path"),
            (
                (run.pk, unit, exposure_name(reached.definite), _path_json(reached.path))
                for unit, reached in sorted(forward.units.items())
            ),
        )
    sizes = forward.sizes or {}
    # ~2,500 segment rows at the default 500k units in the bench world (0.1 s of writing); each
    # chunk also re-walks the lot graph (tens of ms), so the largest run is a handful of chunks.
    chunk: list[int] = []
    budget = settings.LEDGER_TRACE_CHUNK_UNITS
    for segment in ordered[job.done :]:
        if chunk and budget - sizes[segment][0] < 0:
            break
        chunk.append(segment)
        budget -= sizes[segment][0]
    segments = forward.segments
    insert_rows(
        TraceRunSegment,
        ("run_id", "segment_id", "exposure", "via_lot_id", "path"),
        (
            (
                run.pk,
                segment,
                exposure_name(segments[segment].definite),
                segments[segment].via_lot,
                _path_json(segments[segment].path),
            )
            for segment in chunk
        ),
    )
    done = job.done + len(chunk)
    if done < len(ordered):
        found = sum(sizes[segment][0] for segment in ordered[:done])
        return Chunk(done=done, total=len(ordered), phase=f"tracing: about {found:,} units found so far")
    _run_finish(run, forward)
    return Chunk(
        done=max(done, 1),
        total=max(len(ordered), 1),
        phase="traced",
        result={
            "definite_units": run.definite_units,
            "potential_units": run.potential_units,
            "consignees": run.consignees,
        },
    )


def _run_finish(run: TraceRun, forward: genealogy.Forward) -> None:
    _parts_store(run)
    preview = run.investigation.preview
    receivers = genealogy.consignees(forward)
    if run.previous_id is None and preview.get("position") == run.position and "countries" in preview:
        # The first run traces the seeds the preview counted (``finding_record`` hands them over),
        # and at the same position the same seeds give the same counts.
        run.definite_units, run.potential_units = preview["definite_units"], preview["potential_units"]
        run.consignees, countries = preview["consignees"], preview["countries"]
    else:
        run.definite_units, run.potential_units = genealogy.affected_counts(forward)
        run.consignees, countries = len(receivers), sorted(genealogy.consignee_countries(receivers))
    run.breakdown = _breakdown_json(forward, receivers)
    if not run.investigation.finding.inquiry:  # a regulator's inquiry: its owner reads the result whole
        owner = run.investigation.owner_id
        run.party_breakdown = _breakdown_json(
            forward, genealogy.consignees(forward, party_id=owner), only=genealogy.units_of(owner)
        )
    _countries_store(run, countries)
    if run.previous is not None:
        run.diff = run_diff(previous=run_result(run.previous), current=forward)
    # What the investigation's owner is shown of the result (the access policy decides who sees more).
    counted_by_preview = run.previous_id is None and preview.get("position") == run.position
    run.party_view = (counted_by_preview and preview.get("party_view")) or _party_view(
        forward, run.investigation.owner_id
    )
    run.shares = {str(party): _party_view(forward, party) for party in sorted(_parties_told(run, forward))}
    run.save(
        update_fields=[
            "definite_units",
            "potential_units",
            "consignees",
            "diff",
            "party_view",
            "shares",
            "breakdown",
            "party_breakdown",
            "parts_stored",
        ]
    )
    investigation_transition(
        investigation=run.investigation, to=InvestigationStatus.TRACED, note=f"run {run.pk}", by_run=True
    )


def _breakdown_json(
    forward: genealogy.Forward, receivers: list[genealogy.Consignee], *, only: Q | None = None
) -> dict[str, Any]:
    """``TraceRun.breakdown``: the result's units counted per group and its consignees, whole; with
    ``only``, of those units (``party_breakdown``: the owner's, with its own consignees)."""
    return {
        "groups": [
            [g.product_model_id, g.work_order_id, g.site_id, g.month, g.units, g.definite]
            for g in genealogy.affected_groups(forward, only=only)
        ],
        "consignees": [
            [
                c.organisation_id,
                c.units,
                c.first_shipped_at.isoformat(),
                c.last_shipped_at.isoformat(),
                sorted(c.ship_to_countries),
            ]
            for c in receivers
        ],
    }


def run_stored_breakdown(
    run: TraceRun, *, party_id: int | None = None
) -> tuple[list[genealogy.UnitGroup], list[genealogy.Consignee]] | None:
    """What ``TraceRun.breakdown`` stored of a finished run (None for a run finished before); with
    ``party_id``, what ``party_breakdown`` stored of the owner's share (None for another party)."""
    if party_id is None:
        stored = run.breakdown
    else:
        stored = run.party_breakdown if party_id == run.investigation.owner_id else None
    if stored is None:
        return None
    groups = [genealogy.UnitGroup(*row) for row in stored["groups"]]
    # A run stored before ship-to countries were kept holds four fields per consignee, and no country.
    consignees = [
        genealogy.Consignee(
            organisation,
            units,
            dt.datetime.fromisoformat(first),
            dt.datetime.fromisoformat(last),
            frozenset(countries[0]) if countries else frozenset(),
        )
        for organisation, units, first, last, *countries in stored["consignees"]
    ]
    return groups, consignees


def _parties_told(run: TraceRun, forward: genealogy.Forward) -> set[int]:
    """The organisations told of the run's finding (``selectors.findings_about``): the owner of its
    lot or unit, its supplier, its site's owner, and the owners of the lots the result's segments
    were reached by; not the recorder, and no one of a regulator's inquiry. One or two queries.

    Each is counted its share here, once, in the worker (a party whose lots the result passed
    through traces on from them: ``genealogy.party_view``), rather than on every read."""
    finding = run.investigation.finding
    if finding.inquiry:
        return set()
    lots = {reached.via_lot for reached in forward.segments.values()} | ({finding.subject_lot_id} - {None})
    told: set[int | None] = set(
        Lot.objects.filter(pk__any=frozenset(lots)).values_list("owner_id", flat=True).distinct()
    )
    if finding.subject_unit_id is not None:
        told.add(Unit.objects.values_list("owner_id", flat=True).get(pk=finding.subject_unit_id))
    if finding.subject_site_id is not None:
        told.add(Site.objects.values_list("owner_id", flat=True).get(pk=finding.subject_site_id))
    told.add(finding.subject_organisation_id)
    return {party for party in told if party is not None and party != run.investigation.owner_id}


def _parts_store(run: TraceRun) -> None:
    """Store the investigation's owner's part of the run's result (``TraceRunPart``): the run's
    segments holding its units, with the party roll-up's bounds of them, in one statement (6,532
    rows for a brand's part of the largest bench result). Only the owner and regulators read a run's
    units, and regulators read them whole. The segments are probed by primary key, from the run's
    rows as a parameter on PostgreSQL (``core.db.in_cte_sql``): joined, PostgreSQL hashed the whole roll-up even
    for a run of 82 segments; sent as 25,000 ids, the statement took 54 ms to plan."""
    part, owner, segment = TraceRunPart._meta.db_table, SegmentOwner._meta.db_table, TraceRunSegment._meta.db_table
    reached = in_cte_sql("o.segment_id", f"{segment} r WHERE r.run_id = %s", "r.segment_id", connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {part} (run_id, owner_id, first_unit_id, segment_id, last_unit_id, unit_count)"
            f" SELECT %s, o.owner_id, o.first_unit_id, o.segment_id, o.last_unit_id, o.unit_count"
            f" FROM {owner} o WHERE o.owner_id = %s AND {reached}",
            [run.pk, run.investigation.owner_id, run.pk],
        )
    run.parts_stored = True


def run_party_view(run: TraceRun, party_id: int) -> dict[str, Any]:
    """What ``party_id`` is shown of a finished run's result (``_party_view``'s shape): stored for
    the investigation's owner, and for each party told of the finding when the run finished
    (``TraceRun.shares``, which ``selectors.findings_shares`` reads). A run finished before shares
    were stored has it counted here, from the run's seeds traced again at the run's position,
    which gives the run's own result with the lots it passed through (a party's counts of others
    start from its own lots there)."""
    if party_id == run.investigation.owner_id and run.party_view:
        return run.party_view
    if run.shares is not None and (stored := run.shares.get(str(party_id))) is not None:
        return stored
    # Not through the workers' ``_run_trace`` cache: a web process would keep whole results in memory.
    forward = genealogy.forward_trace(
        snapshot=run_snapshot(run), seed_lot_ids=run.seed_lot_ids, seed_unit_ids=run.seed_unit_ids
    )
    return _party_view(forward, party_id)


def _countries_store(run: TraceRun, countries: Iterable[str]) -> None:
    """Where the run's units were sold (``TraceRunCountry``); storing them again changes nothing."""
    TraceRunCountry.objects.bulk_create(
        [TraceRunCountry(run=run, country=country) for country in countries], ignore_conflicts=True
    )


def _party_view(forward: genealogy.Forward, party_id: int) -> dict[str, Any]:
    """What the party is shown of a result, as stored on its investigation and runs: its own units
    and consignees counted, and the units of others its lots went into per organisation (by slug)."""
    view = genealogy.party_view(forward, party_id)
    slugs = dict(Organisation.objects.filter(pk__in=[o.organisation_id for o in view.others]).values_list("pk", "slug"))
    return {
        "definite_units": view.definite_units,
        "potential_units": view.potential_units,
        "consignees": len(genealogy.consignees(forward, party_id=party_id)),
        "others": [
            {
                "organisation": slugs[o.organisation_id],
                "definite_units": o.definite_units,
                "potential_units": o.potential_units,
            }
            for o in view.others
        ],
    }


def run_diff(*, previous: genealogy.Forward, current: genealogy.Forward, sample: int = 20) -> dict[str, Any]:
    """Units added, gone and with a changed exposure between two results (with a sample of each)."""
    diff = genealogy.forward_diff(previous, current)
    return {
        "from_position": previous.snapshot.position,
        "to_position": current.snapshot.position,
        "added": len(diff.added),
        "gone": len(diff.gone),
        "exposure_changed": len(diff.exposure_changed),
        "added_sample": diff.added[:sample],
        "gone_sample": diff.gone[:sample],
        "exposure_changed_sample": diff.exposure_changed[:sample],
    }
