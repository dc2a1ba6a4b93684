"""What a trace's result shows: its affected units, their consignees, and the counts by group.

These are the read models every interface renders (REST, the CLI, exports; GraphQL and pages
next), over a finished run's stored result (``finished_run_result``) or any forward trace (the
CLI traces without a run). They carry canonical identities and ids; writing an identity as an EPC
URN or a Digital Link is the renderer's (``traceability.ledger.selectors.identifier_links``).

Everything here is set-based: a page costs a fixed number of queries, whatever its size.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from cells.models import Lot
from packs.models import ContainerPacking, ProductModel, Shipment, ShipmentItem, Unit, UnitPacking, WorkOrder
from suppliers.models import Organisation, Site
from traceability import genealogy
from traceability.core.db import any_sql, prepared_cursor
from traceability.core.errors import DomainError
from traceability.core.models import JobStatus
from traceability.genealogy import scopes
from traceability.genealogy.models import LotLink, SegmentMember, SegmentOwner, Transformation, exposure_name
from traceability.genealogy.trace import Link
from traceability.investigations.models import Finding, TraceRun, TraceRunPart, TraceRunSegment, TraceRunUnit
from traceability.investigations.services import (
    findings_seeds,
    run_party_view,
    run_result,
    run_snapshot,
    run_stored_breakdown,
)
from traceability.ledger.selectors import known_prefixes_sql, prefix_candidates_sql

# Filtered pages scan the result's units in batches until the page is full; past this many units
# scanned in one request the page is answered short, with ``next_after`` to carry on from there.
SCAN_BUDGET = 20_000
SCAN_BATCH = 1_000


class RunNotFinished(DomainError):
    code = "run_not_finished"


def run_require_finished(*, run: TraceRun) -> TraceRun:
    """The run, once its job has succeeded; before that its result is partial, and refused."""
    if run.job.status != JobStatus.SUCCEEDED:
        raise RunNotFinished(
            f"run {run.pk} has not finished (its job is {run.job.status}, {run.job.percent}%):"
            " its result is complete once the job has succeeded"
        )
    return run


def finished_run_result(*, run: TraceRun) -> genealogy.Forward:
    """A finished run's stored result (``RunNotFinished`` before then): two queries."""
    return run_result(run_require_finished(run=run))


def finished_run_part(*, run: TraceRun, party_id: int, received: bool | None = None) -> genealogy.Forward:
    """``genealogy.party_part`` of a finished run's result, read as such: a party that received
    nothing reads only the segments holding its own units, with their bounds (three queries; two
    when ``received`` says whether it received anything)."""
    run = run_require_finished(run=run)
    if genealogy.received_anything(party_id) if received is None else received:
        return replace(run_result(run), part_of=party_id)
    return run_result(run, owner_id=party_id)


# --- what finished runs reached, for the access policy ---------------------------------------------------


def latest_finished_runs(*, investigation_ids: Iterable[int]) -> list[TraceRun]:
    """The latest finished run of each of these investigations that has one (its job succeeded;
    the latest made, as ``exports.latest_finished_run`` picks it), by investigation: one query."""
    latest = (
        TraceRun.objects.filter(investigation=OuterRef("investigation"), job__status=JobStatus.SUCCEEDED)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    ids = frozenset(investigation_ids)
    return list(
        TraceRun.objects.filter(investigation_id__any=ids, pk=Subquery(latest))
        # what ``runs_reach`` reads, not the run's stored counts and breakdown
        .only(
            "investigation_id",
            "position",
            "last_transformation_id",
            "retracted_transformation_ids",
            "seed_lot_ids",
            "seed_unit_ids",
        )
        .order_by("investigation_id")
    )


@dataclass(frozen=True)
class RunsReach:
    """What finished runs reached, read from what they stored, with no trace: ``lots``, the lot
    ids, and ``units``, a condition on ``Unit`` (correlated subqueries of the runs' rows, never
    loaded)."""

    lots: frozenset[int]
    units: Q


def runs_reach(runs: Sequence[TraceRun]) -> RunsReach:
    """``RunsReach`` of finished ``runs`` (each as ``latest_finished_runs`` reads it).

    Units: the members, valid at the run's position, of the segments it stored, and the units it
    stored as reached unit to unit (its subject units among them), as the run's trace reached them.
    Lots: the run stores no list of them (a segment's stored path is one shortest route, and a lot
    that fed no segment is on none), so they are walked again over the lot links alone at the run's
    position: one recursive query a run, which reads no segment and no unit (the trace's cost at a
    million units is in those), and finds the lots that trace found, as the ledger below a position
    never changes."""
    lots: set[int] = set()
    units = Q(pk__in=[])
    for run in runs:
        snapshot = run_snapshot(run)
        seeds = sorted(set(run.seed_lot_ids))
        if seeds:
            lots.update(seeds)
            lots.update(link.target for link in genealogy.walk(LotLink, snapshot, seeds, forward=True))
        # Correlated on the unit: a lookup probes the unit's few member rows by their index;
        # ``pk IN (members)`` would leave the planner free to hash every member of a million-unit run.
        stored_segments = TraceRunSegment.objects.filter(run_id=run.pk).values("segment_id")
        member = SegmentMember.objects.filter(snapshot.valid(), unit_id=OuterRef("pk"), segment_id__in=stored_segments)
        linked = TraceRunUnit.objects.filter(run_id=run.pk, unit_id=OuterRef("pk"))
        units |= Q(Exists(member)) | Q(Exists(linked))
    return RunsReach(lots=frozenset(lots), units=units)


# --- findings about a party's lots ----------------------------------------------------------------------


def findings_about(organisation_id: int) -> Q:
    """The findings others recorded that concern ``organisation_id``'s lots, as a condition on
    ``Finding``: its own lot or unit is the subject; the subject is all its lots (a supplier subject)
    or all lots of one of its sites; or a run of the finding reached units through one of its lots
    (the lot a segment of the result was reached by: a cell maker's lot made from the material
    lot a finding names). Subqueries only: a page of findings costs what it cost before.

    A lot of its that a run passed through on the way to another's lot (its cell lot inside a
    module assembler's module lot) is not read here: the run stores only the last lot before the
    units, and the path as JSON, which neither database indexes alike."""
    reached = TraceRunSegment.objects.filter(
        run__investigation__finding=OuterRef("pk"), via_lot__owner_id=organisation_id
    )
    concerning = (
        Q(subject_lot__owner_id=organisation_id)
        | Q(subject_unit__owner_id=organisation_id)
        | Q(subject_organisation_id=organisation_id)
        | Q(subject_site__owner_id=organisation_id)
        | Q(Exists(reached))
    )
    # A regulator's inquiry is told to no party of the chain (``Finding.inquiry``).
    return concerning & ~Q(owner_id=organisation_id) & Q(inquiry=False)


def findings_upstream_of(organisation_id: int, *, within: Q | None = None) -> frozenset[int]:
    """The findings others recorded (``within`` them) whose subject was made, at any depth, from a
    lot of ``organisation_id``'s: the cell lot or unit a contamination of its material lot may have
    gone into (``genealogy.lots_upstream_each`` of each finding's seeds). Not a regulator's inquiry.

    Read into Python, unlike ``findings_about``: a fixed number of queries, whatever the number of
    findings (one probe and no more for an organisation that owns no lot), each finding's upstream
    found in the links one backward walk of every subject read."""
    if not Lot.objects.filter(owner_id=organisation_id).exists():
        return frozenset()
    others = Finding.objects.filter(within or Q(), inquiry=False).exclude(owner_id=organisation_id)
    candidates = list(
        others.only(
            "pk",
            "subject_kind",
            "subject_lot_id",
            "subject_unit_id",
            "subject_organisation_id",
            "subject_site_id",
            "window_from",
            "window_to",
        )
    )
    if not candidates:
        return frozenset()
    upstream = scopes.lots_upstream_each(findings_seeds(candidates), snapshot=genealogy.ledger_snapshot())
    every = frozenset().union(*upstream.values())
    if not every:
        return frozenset()
    theirs = set(Lot.objects.filter(pk__any=every, owner_id=organisation_id).values_list("pk", flat=True))
    return frozenset(finding for finding, lots in upstream.items() if not lots.isdisjoint(theirs))


def findings_latest_runs(*, finding_ids: Iterable[int]) -> QuerySet[TraceRun]:
    """Each finding's latest run whose job has succeeded (none for a finding with none), as one
    query whatever the number of findings: each finding's latest found by a subquery.

    The subquery asks for the runs of the run's own investigation (a finding has one), through the
    index on ``investigation_id``; matched on the finding, it joined every run of the ledger with
    its investigation and job, once per run asked about (a scan that grows with every run made).
    """
    finished = TraceRun.objects.filter(job__status=JobStatus.SUCCEEDED)
    latest = finished.filter(investigation_id=OuterRef("investigation_id")).order_by("-created_at", "-pk")
    return finished.filter(investigation__finding_id__in=sorted(set(finding_ids)), pk=Subquery(latest.values("pk")[:1]))


def investigations_latest_runs(*, investigation_ids: Iterable[int]) -> dict[int, TraceRun]:
    """Each of these investigations' latest run, whatever its job's state, by investigation id (none
    for one without a run), with its job: one query, each investigation's latest found by a subquery
    on its own runs (by the index on ``investigation_id``)."""
    ids = sorted(set(investigation_ids))
    if not ids:
        return {}
    latest = TraceRun.objects.filter(investigation_id=OuterRef("investigation_id")).order_by("-created_at", "-pk")
    runs = TraceRun.objects.filter(investigation_id__in=ids, pk=Subquery(latest.values("pk")[:1])).select_related("job")
    return {run.investigation_id: run for run in runs}


def findings_shares(*, finding_ids: Iterable[int], party_id: int, recount_unstored: bool = False) -> dict[int, Any]:
    """``party_id``'s share of each finding's latest finished run, as the run stored it when it
    finished (``TraceRun.shares``): {finding id: {"position": …, "definite_units": …, …}}. One
    query, whatever the number of findings (``findings_latest_runs``). A finding with no finished
    run is absent; so is one whose run stored no share for the party (it finished before shares
    were stored, or the party was told through an earlier run), unless ``recount_unstored`` (one
    finding's own answer), which counts it as it was before (a trace)."""
    ids = sorted(set(finding_ids))
    if not ids:
        return {}
    # Each run's shares are a few parties' counts (the lots' owners a result passed through): read
    # whole, this party's picked here (a JSON key that is a number reads as an array index in SQL).
    rows = findings_latest_runs(finding_ids=ids).values_list("pk", "investigation__finding_id", "position", "shares")
    shares: dict[int, Any] = {}
    for run_id, finding_id, position, stored in rows:
        share = stored.get(str(party_id)) if stored is not None else None
        if share is None and recount_unstored:  # stored before shares were, or told through an earlier run
            share = run_party_view(TraceRun.objects.select_related("investigation").get(pk=run_id), party_id)
        if share is not None:
            shares[finding_id] = {"position": position, **share}
    return shares


# --- where units went ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shipped:
    organisation_id: int
    slug: str
    name: str
    shipped_at: dt.datetime


def unit_shipments(unit_ids: Iterable[int]) -> dict[int, list[Shipped]]:
    """Who received each unit, loose or inside a carton or pallet at any nesting depth, and when.

    One query whatever the number of units and the depth of nesting (``_shipments_sql``).
    """
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    packed_ids, packed_params = any_sql("p.unit_id", ids, connection)
    loose_ids, loose_params = any_sql("i.unit_id", ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(_shipments_sql(packed_ids, loose_ids), [*packed_params, *loose_params])
        return _shipped_by_unit(cursor.fetchall(), ids)


def _shipments_sql(packed: str, loose: str) -> str:
    """(unit, consignee id, slug, name, shipped at) of every shipment of the units that ``packed``
    (a condition on ``p.unit_id``, a unit packing) and ``loose`` (on ``i.unit_id``, a shipment item)
    pick out: each unit's containers are closed over the container graph (a recursive CTE, so a
    pallet reached at two depths carries both cartons' units), then matched to the shipment items
    naming them, with the items naming the units loose. A level-by-level walk cost a query per level.
    """
    tables = {
        "unit_packing": UnitPacking._meta.db_table,
        "container_packing": ContainerPacking._meta.db_table,
        "item": ShipmentItem._meta.db_table,
        "shipment": Shipment._meta.db_table,
        "organisation": Organisation._meta.db_table,
    }
    shipped = "JOIN {shipment} s ON s.id = i.shipment_id JOIN {organisation} o ON o.id = s.consignee_id".format(
        **tables
    )
    parents = f"SELECT c.parent_id FROM {tables['container_packing']} c WHERE c.child_id = h.container_id"
    items = f"SELECT i.shipment_id FROM {tables['item']} i WHERE i.container_id = h.container_id"
    if connection.vendor == "postgresql":
        # Lateral probes of the indexes, one per row held: PostgreSQL guesses the recursive CTE at
        # thousands of rows and hash-joined every packing and item of the ledger (6 ms, not 0.7).
        parents, items = f"CROSS JOIN LATERAL ({parents} OFFSET 0) c", f"CROSS JOIN LATERAL ({items} OFFSET 0) i"
    else:
        parents = f"JOIN {tables['container_packing']} c ON c.child_id = h.container_id"
        items = f"JOIN {tables['item']} i ON i.container_id = h.container_id"
    return (
        "WITH RECURSIVE held(unit_id, container_id) AS ("
        f" SELECT p.unit_id, p.container_id FROM {tables['unit_packing']} p WHERE {packed}"
        f" UNION SELECT h.unit_id, c.parent_id FROM held h {parents})"
        f" SELECT h.unit_id, s.consignee_id, o.slug, o.name, s.shipped_at FROM held h {items} {shipped}"
        " UNION"
        f" SELECT i.unit_id, s.consignee_id, o.slug, o.name, s.shipped_at FROM {tables['item']} i {shipped}"
        f" WHERE {loose}"
    )


def _shipped_by_unit(rows: Iterable[Sequence[Any]], ids: Iterable[int]) -> dict[int, list[Shipped]]:
    """``_shipments_sql``'s rows by unit (of ``ids``, in their order), oldest shipment first."""
    found: dict[int, set[Shipped]] = defaultdict(set)
    for unit, organisation, slug, name, shipped_at in rows:
        found[unit].add(Shipped(organisation, slug, name, _timestamp(shipped_at)))
    return {unit: sorted(found[unit], key=lambda s: (s.shipped_at, s.slug)) for unit in ids if unit in found}


def _timestamp(value: dt.datetime | str) -> dt.datetime:
    """A timestamp read by raw SQL, aware: SQLite hands it back naive (or as text), in UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


# --- affected units -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AffectedUnitRow:
    """One affected unit: what it is, how it is exposed, the path that reaches it, and who received it."""

    unit_id: int
    identity: str
    serial: str
    gtin: str | None
    product_model: str  # the model number
    work_order: str | None  # the work order's number
    exposure: str  # "definite" or "potential"
    path: tuple[genealogy.PathStep, ...]  # from the trace's subject to the unit
    shipments: tuple[Shipped, ...]  # oldest first; empty when not read (see ``affected_unit_rows``)


@dataclass(frozen=True)
class _UnitRead:
    """What a row shows of a unit: read as values, not as three model instances per unit."""

    pk: int
    identity: str
    serial: str
    gtin: str | None
    model_number: str
    work_order: str | None


@dataclass(frozen=True)
class _Joined:
    """An affected unit joined with its unit row and shipments, before its path is put in words."""

    affected: genealogy.AffectedUnit
    unit: _UnitRead
    shipments: tuple[Shipped, ...]


def _joined(page: Sequence[genealogy.AffectedUnit], *, units: QuerySet[Unit], shipments: bool) -> list[_Joined]:
    fields = ("pk", "identity", "serial", "gtin", "product_model__model_number", "work_order__number")
    read = units.filter(pk__any=frozenset(a.unit_id for a in page)).order_by().values_list(*fields)
    rows = {row[0]: _UnitRead(*row) for row in read}
    shipped = unit_shipments(rows) if shipments else {}
    return [_Joined(a, rows[a.unit_id], tuple(shipped.get(a.unit_id, ()))) for a in page if a.unit_id in rows]


def _rows(joined: Sequence[_Joined]) -> list[AffectedUnitRow]:
    # a path ends at its unit, read whole already: only lots and records are looked up
    paths = genealogy.explain_paths(
        [j.affected.path for j in joined], known={("U", j.unit.pk): j.unit.identity for j in joined}
    )
    return [
        AffectedUnitRow(
            unit_id=j.unit.pk,
            identity=j.unit.identity,
            serial=j.unit.serial,
            gtin=j.unit.gtin,
            product_model=j.unit.model_number,
            work_order=j.unit.work_order,
            exposure=exposure_name(j.affected.definite),
            path=path,
            shipments=j.shipments,
        )
        for j, path in zip(joined, paths, strict=True)
    ]


def affected_unit_rows(
    page: Sequence[genealogy.AffectedUnit], *, shipments: bool = True, shown: Q | None = None
) -> list[AffectedUnitRow]:
    """A page of affected units (``genealogy.affected_units``) as rows: a fixed number of queries,
    whatever its size. ``shipments=False`` leaves out who received each unit, for a reader that
    does not show it (its queries follow the nesting of containers); ``shown``, the units the
    reader may see (the access policy's answer): the others are left out in the query that reads
    the units, so nothing of theirs (shipments, paths) is read."""
    units = Unit.objects.filter(shown) if shown is not None else Unit.objects.all()
    return _rows(_joined(page, units=units, shipments=shipments))


@dataclass(frozen=True)
class AffectedUnitFilters:
    """What narrows a listing of affected units; None (or empty) narrows nothing."""

    exposure: str | None = None  # "definite" or "potential"
    product_model: str | None = None  # a model number
    work_order: str | None = None  # a work order's number
    consignee: str | None = None  # the slug of an organisation that received the unit
    shown: Q | None = None  # the units the reader may see (the access policy's answer); None: all
    party_id: int | None = None  # with ``shown``: the organisation whose units those are (scans its segments only)

    @property
    def narrowing(self) -> bool:
        return any((self.exposure, self.product_model, self.work_order, self.consignee)) or self.shown is not None

    def units(self, queryset: QuerySet[Unit]) -> QuerySet[Unit]:
        """The filters that are properties of the unit row, in the database."""
        if self.shown is not None:
            queryset = queryset.filter(self.shown)
        if self.product_model:
            queryset = queryset.filter(product_model__model_number=self.product_model)
        if self.work_order:
            queryset = queryset.filter(work_order__number=self.work_order)
        return queryset

    def candidates(self, batch: Sequence[genealogy.AffectedUnit]) -> list[genealogy.AffectedUnit]:
        """The units of ``batch`` that the unit rows' filters and the exposure keep, in order: one
        query of ids when a unit row is filtered (none otherwise), so only the units a page shows
        are read whole and followed to their shipments."""
        if self.shown is not None or self.product_model or self.work_order:
            ids = frozenset(a.unit_id for a in batch)
            kept = set(self.units(Unit.objects.filter(pk__any=ids)).values_list("pk", flat=True))
            batch = [a for a in batch if a.unit_id in kept]
        return [a for a in batch if not self.exposure or self.exposure == exposure_name(a.definite)]

    def keeps(self, joined: _Joined) -> bool:
        """The filters on the trace (exposure) and on packing at any depth (consignee), per unit."""
        if self.exposure and self.exposure != exposure_name(joined.affected.definite):
            return False
        return not self.consignee or any(s.slug == self.consignee for s in joined.shipments)


@dataclass(frozen=True)
class AffectedUnitsPage:
    rows: tuple[AffectedUnitRow, ...]
    next_after: int | None  # the cursor to continue from; None when there are no more units
    # The registered and learnt company prefixes that may split the rows' identities, when read with
    # them (``finished_run_party_page``): a renderer's ``PrefixLength.prepare`` then needs no query.
    prefixes: frozenset[str] | None = field(default=None, compare=False)


def affected_units_page(
    *,
    forward: genealogy.Forward,
    after: int,
    limit: int,
    filters: AffectedUnitFilters | None = None,
    shipments: bool = True,
) -> AffectedUnitsPage:
    """One page of the affected units after unit id ``after``, in unit id order, with their shipments
    (``shipments=False``: without them, for a reader that reads them apart if asked, as GraphQL's
    units do; a consignee filter reads them all the same).

    Unfiltered, a page is one batch of ``limit + 1`` units (the extra one says whether there is a
    next page): about a dozen queries whatever ``limit`` is. Filtered, batches are scanned until the
    page is full, the units end, or ``SCAN_BUDGET`` units were looked at; a party's page scans only
    the segments that hold its units (``genealogy.party_part``), not the other brands' ones.
    """
    filters = filters or AffectedUnitFilters()
    if filters.party_id is not None:
        forward = genealogy.party_part(forward, filters.party_id)
    # A part listing its owner's units only (``party_part``) yields the units ``shown`` keeps: the
    # check stays, but a page is one batch unless another filter narrows it.
    owned = forward.owner_id is not None and forward.owner_id == filters.party_id
    narrowing = any((filters.exposure, filters.product_model, filters.work_order, filters.consignee)) or (
        filters.shown is not None and not owned
    )
    batch_size = limit + 1 if not narrowing else max(limit + 1, SCAN_BATCH)
    selected: list[_Joined] = []
    cursor, scanned, exhausted = after, 0, False
    while len(selected) < limit and scanned < SCAN_BUDGET:
        batch = genealogy.affected_units(forward, after=cursor, limit=batch_size)
        # the owner's own part: ``shown`` is asked of the units read whole, not in a query of its own
        candidates = filters.candidates(batch) if narrowing else batch
        joined_to = None  # the last candidate joined, when those after it were left for the next batch
        if not filters.consignee and len(candidates) > limit - len(selected):
            # each candidate is kept (but, in the owner's part, a unit reached by a unit link that
            # ``shown`` refuses): join only those the page still needs
            candidates = candidates[: limit - len(selected)]
            joined_to = candidates[-1].unit_id if candidates else None
        units = Unit.objects.filter(filters.shown) if owned and filters.shown is not None else Unit.objects.all()
        joined = {
            j.affected.unit_id: j
            for j in _joined(candidates, units=units, shipments=shipments or bool(filters.consignee))
        }
        for affected in batch:
            if len(selected) == limit or (joined_to is not None and affected.unit_id > joined_to):
                break
            cursor, scanned = affected.unit_id, scanned + 1
            row = joined.get(affected.unit_id)
            if row is not None and filters.keeps(row):
                selected.append(row)
        else:
            if len(batch) < batch_size:
                exhausted = True
                break
    # Paths are put in words for the page only, not for every unit a filter scanned past.
    return AffectedUnitsPage(rows=tuple(_rows(selected)), next_after=None if exhausted else cursor)


def finished_run_unit(
    *, run: TraceRun, unit_id: int, party_id: int | None = None, shown: Q | None = None
) -> AffectedUnitRow | None:
    """One affected unit of a finished run, as a page of its units (``affected_units_page``) shows
    it: its exposure and the path that reaches it, the same one a page gives (``genealogy.affected_units``
    settles a unit's best path; a page starting just before the unit holds it first). None when the
    run does not reach the unit, or ``shown`` (the units the reader may see; with ``party_id``, its
    organisation, whose part of the result is read) leaves it out: the two are not told apart.

    A fixed number of queries whatever the path's length (``genealogy.explain_paths``); who
    received the unit is not read."""
    if party_id is None:
        forward = finished_run_result(run=run)
    else:
        forward = genealogy.party_part(finished_run_part(run=run, party_id=party_id), party_id)
    found = genealogy.affected_units(forward, after=unit_id - 1, limit=1)
    if not found or found[0].unit_id != unit_id:
        return None
    rows = affected_unit_rows(found, shipments=False, shown=shown)
    return rows[0] if rows else None


@dataclass(frozen=True)
class PartyPage:
    """``finished_run_party_page``'s answer: the page, when one statement could read it, and whether
    the party received anything (then it did not try: its received units are others')."""

    page: AffectedUnitsPage | None
    received: bool | None  # None: not asked


def finished_run_party_page(*, run: TraceRun, party_id: int, after: int, limit: int) -> PartyPage:
    """The unfiltered page of a finished run's affected units that a party which received nothing
    is shown (its own units), in one statement on PostgreSQL: what ``finished_run_part`` and
    ``affected_units_page`` answer in a dozen queries, with Python between each.

    The statement takes the party's part of the result (the run's segments joined with their
    roll-up rows of the party, as ``run_result``'s ``owner_id``), asks those segments smallest unit
    bound first until their rows should fill the page twice, merges their units
    (``genealogy.merge_sql``), then merges again over every segment whose bound is not above the
    page's last unit, so the page is exact whatever was retracted (as ``genealogy.affected_units``
    has it), with the units the run reached through unit links. Then it reads the page's units,
    their best member rows, the paths to them with their lots and records named, their shipments at
    any depth, and the company prefixes that may split their identities, as JSON.

    ``page`` is None when the statement cannot answer alone, and the caller reads the page as
    before: not PostgreSQL; a party other than the investigation's owner, or a run finished before
    its owner's part was stored (``TraceRunPart``); the party received something (its page lists
    others' units too); the
    run reached through unit links a unit after the cursor that is not the party's (a page scans
    past those); the first segments' rows did not fill the page while others were left (the share
    of a segment's rows after the cursor is guessed from its id range); or units shared between
    segments left a merge short.
    """
    run = run_require_finished(run=run)
    if connection.vendor != "postgresql" or not run.parts_stored or party_id != run.investigation.owner_id:
        return PartyPage(None, None)
    with prepared_cursor() as cursor:  # planned once per connection
        cursor.execute(_party_page_sql(), _party_page_params(run, party_id, after=after, limit=limit))
        row = cursor.fetchone()
    received, declined, found, last_shown, *documents = row
    if received or declined:
        return PartyPage(None, received)
    units, paths, lots, named_units, records, shipped, prefixes = (orjson.loads(d) if d else None for d in documents)
    names = {("L", int(k)): v for k, v in (lots or {}).items()}
    names.update((("U", int(k)), v) for k, v in (named_units or {}).items())
    names.update((("U", u[0]), u[1]) for u in units or ())
    # a unit row: unit, identity, serial, gtin, model number, work order number, then its best member
    # row (segment, record, definite, via lot) and its unit-link row (definite, path), each null if none
    chosen = [_best_route(unit[0], *unit[6:], stored_paths=paths or {}) for unit in units or ()]
    explained = genealogy.explain_paths(
        [path for _, path in chosen], known=names, known_records={int(k): v for k, v in (records or {}).items()}
    )
    by_unit = _shipped_by_unit(shipped or (), [u[0] for u in units or ()])
    rows = tuple(
        AffectedUnitRow(
            unit_id=unit,
            identity=identity,
            serial=serial,
            gtin=gtin,
            product_model=model_number,
            work_order=work_order,
            exposure=exposure_name(definite),
            path=path,
            shipments=tuple(by_unit.get(unit, ())),
        )
        for (unit, identity, serial, gtin, model_number, work_order, *_), (definite, _), path in zip(
            units or (), chosen, explained, strict=True
        )
    )
    next_after = last_shown if found > limit else None
    return PartyPage(AffectedUnitsPage(rows, next_after, prefixes=frozenset(prefixes or ())), False)


def _best_route(
    unit: int,
    segment: int | None,
    record: int | None,
    definite: bool | None,
    via_lot: int | None,
    linked_definite: bool | None,
    linked_path: list[list[Any]] | None,
    *,
    stored_paths: dict[str, list[list[Any]]],
) -> tuple[bool, tuple[Link, ...]]:
    """(definite?, path) of a unit as ``genealogy.affected_units`` settles it: through its best
    member row, unless a unit link reaches it and either it has no member row or the link is
    definite where the row is not."""
    if segment is not None and not (linked_definite and not definite):
        assert via_lot is not None and record is not None  # a member row has both
        last = Link(via_lot, unit, bool(definite), record, "LU")
        return bool(definite), (*(Link(*step) for step in stored_paths[str(segment)]), last)
    return bool(linked_definite), tuple(Link(*step) for step in linked_path or ())


# Segments the page of a party's part may start in, read ahead of the cursor by unit bound: their
# rows are guessed to fill two pages in a few (a segment holds hundreds of units on average in
# the bench world); a page they cannot fill is read as before.
PARTY_PAGE_AHEAD = 256


def _party_page_params(run: TraceRun, party_id: int, *, after: int, limit: int) -> dict[str, int | str | None]:
    return {
        "run": run.pk,
        "after": after,
        "want": limit + 1,  # one more than shown: is there a next page?
        "limit": limit,
        "ahead": PARTY_PAGE_AHEAD,
        **genealogy.merge_params(run_snapshot(run), party_id),
    }


@functools.cache
def _party_page_sql() -> str:
    t = {
        "run_segment": TraceRunSegment._meta.db_table,
        "run_unit": TraceRunUnit._meta.db_table,
        "part": TraceRunPart._meta.db_table,
        "owner": SegmentOwner._meta.db_table,
        "member": SegmentMember._meta.db_table,
        "unit": Unit._meta.db_table,
        "product_model": ProductModel._meta.db_table,
        "work_order": WorkOrder._meta.db_table,
        "lot": Lot._meta.db_table,
        "record": Transformation._meta.db_table,
        "item": ShipmentItem._meta.db_table,
        "shipment": Shipment._meta.db_table,
    }
    # ``= ANY(ARRAY(SELECT …))`` probes an index per row of a short CTE where ``IN (SELECT …)`` let the
    # planner guess it large and hash a whole table (``core.db.in_cte_sql``).
    shown = "ANY(ARRAY(SELECT unit_id FROM shown))"
    ends = "SELECT (e->>0)::bigint FROM steps WHERE left(e->>4, 1) = '{kind}'"
    ends += " UNION SELECT (e->>1)::bigint FROM steps WHERE right(e->>4, 1) = '{kind}'"
    party = f"FROM {t['part']} WHERE run_id = %(run)s AND owner_id = %(owner)s"
    candidates = (
        f"ARRAY(SELECT DISTINCT c.prefix FROM best b JOIN {t['unit']} u ON u.id = b.unit_id"
        f" CROSS JOIN LATERAL ({prefix_candidates_sql('u.identity')}) c(prefix))"
    )
    answering = "NOT (SELECT received OR foreign_linked FROM blocked)"
    wide = (  # the segments that may hold a unit up to the page's last one, when ``first`` fills it
        f"SELECT id, lo FROM straddling UNION ALL SELECT segment_id, first_unit_id {party}"
        " AND first_unit_id > %(after)s AND first_unit_id <= (SELECT unit_id FROM reach)"
    )
    return (
        # the units the run reached through unit links after the cursor, and whether they are the party's
        "WITH linked AS MATERIALIZED (SELECT k.unit_id, COALESCE(u.owner_id = %(owner)s, FALSE) AS owned"
        f" FROM {t['run_unit']} k LEFT JOIN {t['unit']} u ON u.id = k.unit_id"
        " WHERE k.run_id = %(run)s AND k.unit_id > %(after)s),"
        " blocked AS MATERIALIZED (SELECT"
        f" EXISTS (SELECT 1 FROM {t['item']} i JOIN {t['shipment']} s ON s.id = i.shipment_id"
        " WHERE s.consignee_id = %(owner)s) AS received,"
        " EXISTS (SELECT 1 FROM linked WHERE NOT owned) AS foreign_linked),"
        # the party's part after the cursor: the segments begun by then (their rows after it guessed
        # from the share of their id range past it), then the next ones by bound
        " straddling AS MATERIALIZED (SELECT segment_id AS id, %(after)s + 1 AS lo,"
        " unit_count::float8 * (last_unit_id - %(after)s) / (last_unit_id - first_unit_id + 1) AS n"
        f" {party} AND first_unit_id <= %(after)s AND last_unit_id > %(after)s AND {answering}),"
        " ahead AS MATERIALIZED (SELECT segment_id AS id, first_unit_id AS lo, unit_count::float8 AS n"
        f" {party} AND first_unit_id > %(after)s AND {answering} ORDER BY first_unit_id, segment_id LIMIT %(ahead)s),"
        # smallest bound first, until they should hold two pages of rows
        " chosen AS MATERIALIZED (SELECT id, lo FROM (SELECT id, lo,"
        " SUM(n) OVER (ORDER BY lo, id ROWS UNBOUNDED PRECEDING) - n AS before"
        " FROM (SELECT * FROM straddling UNION ALL SELECT * FROM ahead) p) c WHERE before < 2 * %(want)s),"
        f" {genealogy.merge_sql('first', 'SELECT id, lo FROM chosen')},"
        " reach AS (SELECT CASE WHEN COUNT(*) = %(want)s THEN MAX(unit_id) END AS unit_id FROM first),"
        # every segment that may hold a unit of the page, merged again when one was not merged yet
        f" widened AS MATERIALIZED ({wide}), spare AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM widened"
        " WHERE id NOT IN (SELECT id FROM chosen)) AS more),"
        f" {genealogy.merge_sql('wide', 'SELECT id, lo FROM widened WHERE (SELECT more FROM spare)')},"
        " found AS MATERIALIZED (SELECT unit_id FROM ("
        " SELECT unit_id FROM wide WHERE (SELECT more FROM spare)"
        " UNION SELECT unit_id FROM first WHERE NOT (SELECT more FROM spare)"
        f" UNION SELECT unit_id FROM linked WHERE {answering}) f ORDER BY unit_id LIMIT %(want)s),"
        " shown AS MATERIALIZED (SELECT unit_id FROM found ORDER BY unit_id LIMIT %(limit)s),"
        # each unit's best member row in the part (definite first, then by segment and record), and
        # its unit-link row
        " best AS MATERIALIZED (SELECT p.unit_id, b.segment_id, b.transformation_id, b.definite, b.via_lot_id,"
        " k.exposure = 'definite' AS linked_definite, k.path AS linked_path FROM shown p"
        " LEFT JOIN LATERAL (SELECT m.segment_id, m.transformation_id,"
        " r.exposure = 'definite' AS definite, r.via_lot_id"
        f" FROM {t['member']} m JOIN {t['run_segment']} r ON r.run_id = %(run)s AND r.segment_id = m.segment_id"
        f" JOIN {t['owner']} o ON o.segment_id = m.segment_id AND o.owner_id = %(owner)s"
        " WHERE m.unit_id = p.unit_id AND m.transformation_id <= %(last)s"
        " AND NOT (m.transformation_id = ANY(%(retracted)s::bigint[]))"
        " ORDER BY r.exposure = 'definite' DESC, m.segment_id, m.transformation_id LIMIT 1) b ON TRUE"
        f" LEFT JOIN {t['run_unit']} k ON k.run_id = %(run)s AND k.unit_id = p.unit_id),"
        f" paths AS MATERIALIZED (SELECT r.segment_id, r.path FROM {t['run_segment']} r WHERE r.run_id = %(run)s"
        " AND r.segment_id = ANY(ARRAY(SELECT DISTINCT segment_id FROM best WHERE segment_id IS NOT NULL))),"
        " steps AS MATERIALIZED (SELECT e FROM paths, jsonb_array_elements(paths.path) e"
        " UNION ALL SELECT e FROM best, jsonb_array_elements(best.linked_path) e WHERE best.linked_path IS NOT NULL),"
        f" shipped AS ({_shipments_sql(f'p.unit_id = {shown}', f'i.unit_id = {shown}')})"
        " SELECT (SELECT received FROM blocked),"
        # what the statement cannot answer alone: see ``finished_run_party_page``
        " (SELECT foreign_linked FROM blocked)"
        " OR (SELECT COUNT(*) FROM first_firsts) >= %(want)s AND (SELECT COUNT(*) FROM first) < %(want)s"
        " OR (SELECT unit_id FROM reach) IS NOT NULL"
        " AND (SELECT COUNT(*) FROM wide_firsts) >= %(want)s AND (SELECT COUNT(*) FROM wide) < %(want)s"
        " OR (SELECT unit_id FROM reach) IS NULL AND ((SELECT COUNT(*) FROM ahead) = %(ahead)s"
        " OR (SELECT COUNT(*) FROM straddling) + (SELECT COUNT(*) FROM ahead) > (SELECT COUNT(*) FROM chosen)),"
        " (SELECT COUNT(*) FROM found), (SELECT MAX(unit_id) FROM shown),"
        " (SELECT json_agg(json_build_array(u.id, u.identity, u.serial, u.gtin, pm.model_number, wo.number,"
        " b.segment_id, b.transformation_id, b.definite, b.via_lot_id, b.linked_definite, b.linked_path)"
        f" ORDER BY u.id)::text FROM best b JOIN {t['unit']} u ON u.id = b.unit_id"
        f" JOIN {t['product_model']} pm ON pm.id = u.product_model_id"
        f" LEFT JOIN {t['work_order']} wo ON wo.id = u.work_order_id),"
        " (SELECT json_object_agg(segment_id, path)::text FROM paths),"
        f" (SELECT json_object_agg(l.id, l.identity)::text FROM {t['lot']} l"
        f" WHERE l.id = ANY(ARRAY({ends.format(kind='L')} UNION SELECT via_lot_id FROM best))),"
        f" (SELECT json_object_agg(u.id, u.identity)::text FROM {t['unit']} u"
        f" WHERE u.id = ANY(ARRAY({ends.format(kind='U')}))),"
        f" (SELECT json_object_agg(x.id, x.reference)::text FROM {t['record']} x"
        " WHERE x.id = ANY(ARRAY(SELECT (e->>3)::bigint FROM steps UNION SELECT transformation_id FROM best))),"
        " (SELECT json_agg(json_build_array(unit_id, consignee_id, slug, name, shipped_at))::text FROM shipped),"
        f" (SELECT json_agg(prefix)::text FROM ({known_prefixes_sql(candidates)}) x(prefix))"
    )


# --- consignees and counts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AffectedConsignee:
    """An organisation that received affected units: how many, first and last shipped, and the
    countries of the sites its shipments of them were addressed to (none when none was named)."""

    party: genealogy.Party
    units: int
    first_shipped_at: dt.datetime
    last_shipped_at: dt.datetime
    ship_to_countries: frozenset[str] = frozenset()


def affected_consignees(*, forward: genealogy.Forward, party_id: int | None = None) -> list[AffectedConsignee]:
    """Who received the affected units, directly or inside containers, most units first; with
    ``party_id``, through the shipments that party sent or received only."""
    return _consignees_read(genealogy.consignees(forward, party_id=party_id))


def _consignees_read(found: Sequence[genealogy.Consignee]) -> list[AffectedConsignee]:
    parties = genealogy.parties_by_id(c.organisation_id for c in found)
    return [
        AffectedConsignee(
            party=parties[c.organisation_id],
            units=c.units,
            first_shipped_at=c.first_shipped_at,
            last_shipped_at=c.last_shipped_at,
            ship_to_countries=c.ship_to_countries,
        )
        for c in found
    ]


@dataclass(frozen=True)
class Counted:
    """How many affected units a group holds: each once, definite when any path to it is."""

    units: int
    definite: int
    potential: int


@dataclass(frozen=True)
class ProductModelCount(Counted):
    model_number: str
    name: str


@dataclass(frozen=True)
class WorkOrderCount(Counted):
    number: str | None  # None: units made outside any work order


@dataclass(frozen=True)
class SiteCount(Counted):
    site_id: int | None
    name: str | None


@dataclass(frozen=True)
class MonthCount(Counted):
    month: str | None  # YYYY-MM of production


@dataclass(frozen=True)
class Breakdown:
    """The affected units counted by group, largest first (ties by the group's key)."""

    product_models: tuple[ProductModelCount, ...]
    work_orders: tuple[WorkOrderCount, ...]
    sites: tuple[SiteCount, ...]
    production_months: tuple[MonthCount, ...]
    consignees: tuple[AffectedConsignee, ...]


def affected_breakdown(*, forward: genealogy.Forward, shown: Q | None = None, party_id: int | None = None) -> Breakdown:
    """Affected units counted by product model, work order, site, production month and consignee;
    with ``shown`` and ``party_id``, the units and consignees one party may see.

    One GROUP BY over the affected units (``genealogy.affected_groups``), each dimension summed
    from its groups, the groups' names read in a query per dimension; plus the consignee read.
    """
    return breakdown_of(
        genealogy.affected_groups(forward, only=shown),
        consignees=affected_consignees(forward=forward, party_id=party_id),
    )


def finished_run_consignees(
    *, run: TraceRun, party_id: int | None = None, result: Callable[[], genealogy.Forward] | None = None
) -> list[AffectedConsignee]:
    """``affected_consignees`` of a finished run: as the run stored them when it finished, for a
    reader who sees the result whole (``party_id`` None; two queries); counted from its result
    otherwise (``result``: the caller's reading of it, read here when None)."""
    run = run_require_finished(run=run)
    if (stored := run_stored_breakdown(run, party_id=party_id)) is not None:
        return _consignees_read(stored[1])
    return affected_consignees(forward=result() if result else run_result(run), party_id=party_id)


def finished_run_breakdown(
    *,
    run: TraceRun,
    shown: Q | None = None,
    party_id: int | None = None,
    result: Callable[[], genealogy.Forward] | None = None,
    consignees: Sequence[AffectedConsignee] | None = None,
) -> Breakdown:
    """``affected_breakdown`` of a finished run: summed from what the run stored when it finished,
    for a reader who sees the result whole (``shown`` and ``party_id`` None; five queries whatever
    its size) and for its investigation's owner reading its share (``shown``, the units it owns or
    received: the access policy's ``ResultScope.units_shown``, as the run counted them); counted
    from its result otherwise (``result`` as in ``finished_run_consignees``). ``consignees``: the
    run's ``finished_run_consignees`` for the same reader, when read already."""
    run = run_require_finished(run=run)
    if (shown is None) == (party_id is None) and (stored := run_stored_breakdown(run, party_id=party_id)) is not None:
        groups, receivers = stored
        return breakdown_of(groups, consignees=consignees if consignees is not None else _consignees_read(receivers))
    forward = result() if result else run_result(run)
    if consignees is None:
        return affected_breakdown(forward=forward, shown=shown, party_id=party_id)
    return breakdown_of(genealogy.affected_groups(forward, only=shown), consignees=consignees)


def breakdown_of(groups: Iterable[genealogy.UnitGroup], *, consignees: Iterable[AffectedConsignee]) -> Breakdown:
    """The breakdown of affected units counted per (product model, work order, site, month)."""
    groups = list(groups)
    models = {
        pk: (number, name)
        for pk, number, name in ProductModel.objects.filter(pk__any=frozenset(g.product_model_id for g in groups))
        .order_by()
        .values_list("pk", "model_number", "name")
    }
    orders = _names(WorkOrder, "number", (g.work_order_id for g in groups))
    sites = _names(Site, "name", (g.site_id for g in groups))

    def summed(key: Callable[[genealogy.UnitGroup], Any]) -> list[tuple[Any, int, int]]:
        found: dict[Any, list[int]] = {}
        for group in groups:
            counted = found.setdefault(key(group), [0, 0])
            counted[0] += group.units
            counted[1] += group.definite
        return [(k, units, definite) for k, (units, definite) in found.items()]

    def ordered(rows: list[tuple[Any, int, int]], label: Callable[[Any], Any]) -> list[tuple[Any, int, int]]:
        return sorted(rows, key=lambda row: (-row[1], str(label(row[0]))))

    def counted(units: int, definite: int) -> dict[str, int]:
        return {"units": units, "definite": definite, "potential": units - definite}

    by_model = summed(lambda g: models[g.product_model_id])
    by_order = summed(lambda g: orders.get(g.work_order_id))
    by_site = summed(lambda g: (g.site_id, sites.get(g.site_id)))
    by_month = summed(lambda g: g.month)
    return Breakdown(
        product_models=tuple(
            ProductModelCount(**counted(u, d), model_number=number, name=name)
            for (number, name), u, d in ordered(by_model, lambda k: k[0])
        ),
        work_orders=tuple(WorkOrderCount(**counted(u, d), number=n) for n, u, d in ordered(by_order, lambda k: k)),
        sites=tuple(
            SiteCount(**counted(u, d), site_id=site, name=name)
            for (site, name), u, d in ordered(by_site, lambda k: k[0])
        ),
        production_months=tuple(MonthCount(**counted(u, d), month=m) for m, u, d in ordered(by_month, lambda k: k)),
        consignees=tuple(consignees),
    )


def _names(model: Any, field: str, ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = frozenset(i for i in ids if i is not None)
    if not wanted:
        return {}
    return dict(model.objects.filter(pk__any=wanted).order_by().values_list("pk", field))


# --- what changed since the previous run -------------------------------------------------------------


@dataclass(frozen=True)
class DiffUnit:
    id: int
    identity: str
    serial: str


@dataclass(frozen=True)
class RunDiffShown:
    """A finished run's ``diff`` (``services.run_diff``) as one reader sees it. ``counted``: the whole
    diff's counts, for a reader who sees the result whole, else None (the counts take in other
    organisations' units). Each sample holds the sampled units the reader sees in full, in id order."""

    from_position: int
    to_position: int
    counted: dict[str, int] | None
    added: list[DiffUnit]
    gone: list[DiffUnit]
    exposure_changed: list[DiffUnit]
    complete: bool  # the whole diff's units are listed (each sample held all of its kind); whole readers only

    def as_stored(self) -> dict[str, Any]:
        """In the stored diff's shape (REST's and GraphQL's ``diff``): the counts null for a reader
        who does not see the result whole, each sample the ids of the units it sees in full."""
        counted = self.counted or {}
        return {
            "from_position": self.from_position,
            "to_position": self.to_position,
            **{kind: counted.get(kind) for kind in DIFF_KINDS},
            **{f"{kind}_sample": [unit.id for unit in getattr(self, kind)] for kind in DIFF_KINDS},
        }


DIFF_KINDS = ("added", "gone", "exposure_changed")


def run_diff_shown(*, run: TraceRun, shown: Q, full: bool) -> RunDiffShown | None:
    """The run's diff as a reader sees it: the sampled units filtered by ``shown`` (the access
    policy's units shown in full, as a condition on ``Unit``), in one query. None when the run has
    no diff (its investigation's first run), and for a reader who does not see the result whole
    when none of the sampled units is its own: the diff's counts would be all it could be told,
    and they count others' units."""
    return runs_diff_shown(runs=[run], shown=shown, full=full)[run.pk]


def runs_diff_shown(*, runs: Sequence[TraceRun], shown: Q, full: bool) -> dict[int, RunDiffShown | None]:
    """``run_diff_shown`` of several runs one reader sees alike (the same ``shown`` and ``full``),
    by run id, in one query whatever their number (none when no run has a diff)."""
    sampled = {
        run.pk: {kind: [int(pk) for pk in (run.diff or {}).get(f"{kind}_sample", [])] for kind in DIFF_KINDS}
        for run in runs
    }
    wanted = frozenset(pk for samples in sampled.values() for ids in samples.values() for pk in ids)
    found = Unit.objects.filter(shown, pk__in=sorted(wanted)).values_list("pk", "identity", "serial") if wanted else []
    units = {pk: DiffUnit(pk, identity, serial) for pk, identity, serial in found}
    answers: dict[int, RunDiffShown | None] = {}
    for run in runs:
        diff = run.diff or {}
        lists = {kind: [units[pk] for pk in sorted(ids) if pk in units] for kind, ids in sampled[run.pk].items()}
        if not diff or (not full and not any(lists.values())):
            answers[run.pk] = None
            continue
        answers[run.pk] = RunDiffShown(
            from_position=diff["from_position"],
            to_position=diff["to_position"],
            counted={kind: int(diff[kind]) for kind in DIFF_KINDS} if full else None,
            added=lists["added"],
            gone=lists["gone"],
            exposure_changed=lists["exposure_changed"],
            complete=full and all(int(diff[kind]) == len(sampled[run.pk][kind]) for kind in DIFF_KINDS),
        )
    return answers
