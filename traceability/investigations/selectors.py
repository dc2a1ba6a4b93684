"""What a trace's result shows: its affected units, their consignees, and the counts by group.

These are the read models every interface renders (REST, the CLI, exports; GraphQL and pages
next), over a finished run's stored result (``finished_run_result``) or any forward trace (the
CLI traces without a run). They carry canonical identities and ids; writing an identity as an EPC
URN or a Digital Link is the renderer's (``traceability.ledger.selectors.identifier_links``).

Everything here is set-based: a page costs a fixed number of queries, whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth

from packs.models import ContainerPacking, ShipmentItem, Unit, UnitPacking
from suppliers.models import Organisation
from traceability import genealogy
from traceability.core.errors import DomainError
from traceability.core.models import JobStatus
from traceability.genealogy.models import exposure_name
from traceability.investigations.models import Finding, TraceRun, TraceRunSegment
from traceability.investigations.services import run_result

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
    return concerning & ~Q(owner_id=organisation_id)


def finding_latest_run(*, finding: Finding) -> TraceRun | None:
    """The finding's latest run whose job has succeeded, if any (one query)."""
    return (
        TraceRun.objects.filter(investigation__finding=finding, job__status=JobStatus.SUCCEEDED)
        .select_related("investigation")
        .order_by("-created_at", "-pk")
        .first()
    )


# --- where units went ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shipped:
    organisation_id: int
    slug: str
    name: str
    shipped_at: dt.datetime


def unit_shipments(unit_ids: Iterable[int]) -> dict[int, list[Shipped]]:
    """Who received each unit, loose or inside a carton or pallet at any nesting depth, and when.

    One query for the packings, one per level of nesting and one for the shipments, whatever the
    number of units. Ancestors are closed over the whole container graph before shipments are
    matched, so a pallet reached at two depths (a carton on it directly, another inside a case on
    it) carries both cartons' units.
    """
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    containers_of: dict[int, set[int]] = defaultdict(set)
    # order_by(): the models' default orderings would join Container just to sort.
    packings = UnitPacking.objects.filter(unit_id__any=frozenset(ids)).values_list("unit_id", "container_id").order_by()
    for unit, container in packings:
        containers_of[unit].add(container)
    parents: dict[int, set[int]] = defaultdict(set)
    frontier = set().union(*containers_of.values()) if containers_of else set()
    seen = set(frontier)
    while frontier:
        rows = (
            ContainerPacking.objects.filter(child_id__any=set(frontier)).values_list("child_id", "parent_id").order_by()
        )
        frontier = set()
        for child, parent in rows:
            parents[child].add(parent)
            if parent not in seen:
                seen.add(parent)
                frontier.add(parent)
    items = ShipmentItem.objects.filter(Q(container_id__any=set(seen)) | Q(unit_id__any=frozenset(ids))).values_list(
        "container_id",
        "unit_id",
        "shipment__consignee_id",
        "shipment__consignee__slug",
        "shipment__consignee__name",
        "shipment__shipped_at",
    )
    by_container: dict[int, list[Shipped]] = defaultdict(list)
    by_unit: dict[int, list[Shipped]] = defaultdict(list)
    for container, unit, organisation, slug, name, shipped_at in items:
        shipped = Shipped(organisation, slug, name, shipped_at)
        (by_container[container] if container is not None else by_unit[unit]).append(shipped)
    result: dict[int, list[Shipped]] = {}
    for unit in ids:
        found = set(by_unit.get(unit, ()))
        for container in _with_ancestors(containers_of.get(unit, set()), parents):
            found.update(by_container.get(container, ()))
        if found:
            result[unit] = sorted(found, key=lambda s: (s.shipped_at, s.slug))
    return result


def _with_ancestors(containers: set[int], parents: dict[int, set[int]]) -> set[int]:
    found, stack = set(containers), list(containers)
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


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
class _Joined:
    """An affected unit joined with its unit row and shipments, before its path is put in words."""

    affected: genealogy.AffectedUnit
    unit: Unit
    shipments: tuple[Shipped, ...]


def _joined(page: Sequence[genealogy.AffectedUnit], *, units: QuerySet[Unit], shipments: bool) -> list[_Joined]:
    rows = units.select_related("product_model", "work_order").in_bulk([a.unit_id for a in page])
    shipped = unit_shipments(rows) if shipments else {}
    return [_Joined(a, rows[a.unit_id], tuple(shipped.get(a.unit_id, ()))) for a in page if a.unit_id in rows]


def _rows(joined: Sequence[_Joined]) -> list[AffectedUnitRow]:
    paths = genealogy.explain_paths([j.affected.path for j in joined])
    return [
        AffectedUnitRow(
            unit_id=j.unit.pk,
            identity=j.unit.identity,
            serial=j.unit.serial,
            gtin=j.unit.gtin,
            product_model=j.unit.product_model.model_number,
            work_order=j.unit.work_order.number if j.unit.work_order else None,
            exposure=exposure_name(j.affected.definite),
            path=path,
            shipments=j.shipments,
        )
        for j, path in zip(joined, paths, strict=True)
    ]


def affected_unit_rows(page: Sequence[genealogy.AffectedUnit], *, shipments: bool = True) -> list[AffectedUnitRow]:
    """A page of affected units (``genealogy.affected_units``) as rows: a fixed number of queries,
    whatever its size. ``shipments=False`` leaves out who received each unit, for a reader that
    does not show it (its queries follow the nesting of containers)."""
    return _rows(_joined(page, units=Unit.objects.all(), shipments=shipments))


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


def affected_units_page(
    *, forward: genealogy.Forward, after: int, limit: int, filters: AffectedUnitFilters | None = None
) -> AffectedUnitsPage:
    """One page of the affected units after unit id ``after``, in unit id order, with their shipments.

    Unfiltered, a page is one batch of ``limit + 1`` units (the extra one says whether there is a
    next page): about a dozen queries whatever ``limit`` is. Filtered, batches are scanned until the
    page is full, the units end, or ``SCAN_BUDGET`` units were looked at; a party's page scans only
    the segments that hold its units (``genealogy.party_part``), not the other brands' ones.
    """
    filters = filters or AffectedUnitFilters()
    if filters.party_id is not None:
        forward = genealogy.party_part(forward, filters.party_id)
    batch_size = limit + 1 if not filters.narrowing else max(limit + 1, SCAN_BATCH)
    selected: list[_Joined] = []
    cursor, scanned, exhausted = after, 0, False
    while len(selected) < limit and scanned < SCAN_BUDGET:
        batch = genealogy.affected_units(forward, after=cursor, limit=batch_size)
        candidates = filters.candidates(batch)
        if not filters.consignee:  # each candidate is kept: join only those the page still needs
            candidates = candidates[: limit - len(selected)]
        joined = {j.affected.unit_id: j for j in _joined(candidates, units=Unit.objects.all(), shipments=True)}
        for affected in batch:
            if len(selected) == limit:
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


# --- consignees and counts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AffectedConsignee:
    """An organisation that received affected units: how many, first and last shipped."""

    party: genealogy.Party
    units: int
    first_shipped_at: dt.datetime
    last_shipped_at: dt.datetime


def affected_consignees(*, forward: genealogy.Forward, party_id: int | None = None) -> list[AffectedConsignee]:
    """Who received the affected units, directly or inside containers, most units first; with
    ``party_id``, through the shipments that party sent or received only."""
    found = genealogy.consignees(forward, party_id=party_id)
    organisations = Organisation.objects.prefetch_related("roles").in_bulk([c.organisation_id for c in found])
    return [
        AffectedConsignee(
            party=genealogy.party_of(organisations[c.organisation_id]),
            units=c.units,
            first_shipped_at=c.first_shipped_at,
            last_shipped_at=c.last_shipped_at,
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


def _unit_sets(forward: genealogy.Forward) -> tuple[Q, Q]:
    """(affected, definitely affected) units as conditions on ``Unit``: subqueries over the members
    of the result's segments, plus the few units reached through unit links."""
    snapshot = forward.snapshot
    affected, definite = Q(pk__in=list(forward.units)), Q(pk__in=[u for u, r in forward.units.items() if r.definite])
    if segments := forward.segment_ids():
        affected |= Q(pk__in=genealogy.members(snapshot, segments).values("unit_id"))
    if definite_segments := forward.segment_ids(definite=True):
        definite |= Q(pk__in=genealogy.members(snapshot, definite_segments).values("unit_id"))
    return affected, definite


def affected_breakdown(
    *, forward: genealogy.Forward, shown: Q | None = None, party_id: int | None = None
) -> Breakdown:
    """Affected units counted by product model, work order, site, production month and consignee;
    with ``shown`` and ``party_id``, the units and consignees one party may see.

    One aggregate query per dimension, plus the consignee read.
    """
    affected, definite = _unit_sets(forward)
    units = Unit.objects.filter(affected).filter(shown if shown is not None else Q()).order_by()
    counts = {"units": Count("pk"), "definite": Count("pk", filter=definite)}

    def by(*fields: str, key: Callable[[dict[str, Any]], Any], **extra: Any) -> list[dict[str, Any]]:
        rows = units.annotate(**extra).values(*fields).annotate(**counts)
        return sorted(
            ({**row, "potential": row["units"] - row["definite"]} for row in rows),
            key=lambda row: (-row["units"], str(key(row))),
        )

    def counted(row: dict[str, Any]) -> dict[str, int]:
        return {"units": row["units"], "definite": row["definite"], "potential": row["potential"]}

    models = by("product_model__model_number", "product_model__name", key=lambda r: r["product_model__model_number"])
    return Breakdown(
        product_models=tuple(
            ProductModelCount(
                **counted(r), model_number=r["product_model__model_number"], name=r["product_model__name"]
            )
            for r in models
        ),
        work_orders=tuple(
            WorkOrderCount(**counted(r), number=r["work_order__number"])
            for r in by("work_order__number", key=lambda r: r["work_order__number"])
        ),
        sites=tuple(
            SiteCount(**counted(r), site_id=r["site_id"], name=r["site__name"])
            for r in by("site_id", "site__name", key=lambda r: r["site_id"])
        ),
        production_months=tuple(
            MonthCount(**counted(r), month=f"{r['month']:%Y-%m}" if r["month"] else None)
            for r in by("month", key=lambda r: r["month"], month=TruncMonth("produced_at"))
        ),
        consignees=tuple(affected_consignees(forward=forward, party_id=party_id)),
    )
