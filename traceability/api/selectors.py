"""The reads behind the REST views: composed from the trace engine's reads, set-based.

Everything a page costs is a fixed number of queries: nothing here loops over units or lots with
a query inside. Reads that interfaces other than REST will want (per-unit shipments, unit rows)
live in ``traceability.investigations.exports``; these are the ones only the REST views need so far.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth

from cells.models import Inspection, Lot
from packs.models import Unit
from suppliers.models import Certificate, Organisation
from traceability import genealogy
from traceability.genealogy.models import Exposure, exposure_name
from traceability.gs1 import identifiers
from traceability.investigations.exports import (
    AffectedUnitRow,
    affected_unit_rows,
    identifier_links,
    identifier_or_none,
    unit_record,
)
from traceability.investigations.models import TraceRun
from traceability.investigations.services import run_result
from traceability.ledger.selectors import PrefixLength

# Filtered pages scan the run's units in batches until the page is full; past this many units
# scanned in one request the page is answered short, with ``next`` to carry on from there.
SCAN_BUDGET = 20_000
SCAN_BATCH = 1_000


# --- subjects -----------------------------------------------------------------------------------------


# --- a run's affected units ---------------------------------------------------------------------------


def _unfiltered(queryset: QuerySet, name: str, value: Any) -> QuerySet:
    return queryset


class AffectedUnitFilter(django_filters.FilterSet):
    """Filters on a run's affected units.

    ``product_model`` and ``work_order`` narrow the unit rows in the database; ``exposure`` (a
    property of the trace, not of the unit) and ``consignee`` (found through packing at any depth)
    are applied to each batch once it is joined with the trace result and the shipments.
    """

    exposure = django_filters.ChoiceFilter(choices=Exposure.choices, method=_unfiltered)
    product_model = django_filters.CharFilter(field_name="product_model__model_number", help_text="Model number.")
    work_order = django_filters.CharFilter(field_name="work_order__number", help_text="Work-order number.")
    consignee = django_filters.CharFilter(method=_unfiltered, help_text="Slug of an organisation that received it.")

    class Meta:
        model = Unit
        fields = ["exposure", "product_model", "work_order", "consignee"]

    @property
    def filters_set(self) -> bool:
        return any(value not in (None, "") for value in self.form.cleaned_data.values())

    def keeps(self, row: AffectedUnitRow) -> bool:
        data = self.form.cleaned_data
        if data.get("exposure") and data["exposure"] != exposure_name(row.affected.definite):
            return False
        return not data.get("consignee") or any(s.slug == data["consignee"] for s in row.shipments)


@dataclass(frozen=True)
class UnitsPage:
    units: list[dict[str, Any]]
    next_after: int | None  # the cursor to continue from; None when the run has no more units


def run_units_page(
    run: TraceRun,
    *,
    after: int,
    limit: int,
    filters: AffectedUnitFilter,
    prefix_length: identifiers.PrefixLength,
) -> UnitsPage:
    """One page of the run's affected units, from its stored result, in unit id order.

    Unfiltered, a page is one batch of ``limit + 1`` units (the extra one says whether there is a
    next page): about a dozen queries whatever ``limit`` is. Filtered, batches are scanned until the
    page is full, the run ends, or ``SCAN_BUDGET`` units were looked at.
    """
    forward = run_result(run)
    batch_size = limit + 1 if not filters.filters_set else max(limit + 1, SCAN_BATCH)
    selected: list[AffectedUnitRow] = []
    cursor, scanned, exhausted = after, 0, False
    while len(selected) < limit and scanned < SCAN_BUDGET:
        batch = genealogy.affected_units(forward, after=cursor, limit=batch_size)
        units = filters.filter_queryset(Unit.objects.filter(pk__any=frozenset(a.unit_id for a in batch)))
        rows = {row.affected.unit_id: row for row in affected_unit_rows(batch, units=units)}
        for affected in batch:
            if len(selected) == limit:
                break
            cursor, scanned = affected.unit_id, scanned + 1
            row = rows.get(affected.unit_id)
            if row is not None and filters.keeps(row):
                selected.append(row)
        else:
            if len(batch) < batch_size:
                exhausted = True
                break
    paths = genealogy.explain_paths([row.affected.path for row in selected])
    records = [unit_record(row, path, prefix_length=prefix_length) for row, path in zip(selected, paths, strict=True)]
    return UnitsPage(units=records, next_after=None if exhausted else cursor)


# --- a run's consignees and breakdown -----------------------------------------------------------------


def run_consignees(run: TraceRun, *, prefix_length: identifiers.PrefixLength) -> list[dict[str, Any]]:
    forward = run_result(run)
    found = genealogy.consignees(forward)
    organisations = Organisation.objects.in_bulk([c.organisation_id for c in found])
    return [
        {
            "organisation": organisations[c.organisation_id].slug,
            "name": organisations[c.organisation_id].name,
            "role": organisations[c.organisation_id].role,
            "pgln": _party(organisations[c.organisation_id], prefix_length),
            "units": c.units,
            "first_shipped_at": c.first_shipped_at,
            "last_shipped_at": c.last_shipped_at,
        }
        for c in found
    ]


def _party(organisation: Organisation, prefix_length: identifiers.PrefixLength) -> str | None:
    if not organisation.pgln:
        return None
    return identifier_or_none(f"pgln:{organisation.pgln}", form="epc", prefix_length=prefix_length)


def _unit_sets(forward: genealogy.Forward) -> tuple[Q, Q]:
    """(affected, definitely affected) units as conditions on ``Unit``: subqueries over the members
    of the run's segments, plus the few units reached through unit links."""
    snapshot = forward.snapshot
    affected, definite = Q(pk__in=list(forward.units)), Q(pk__in=[u for u, r in forward.units.items() if r.definite])
    if segments := forward.segment_ids():
        affected |= Q(pk__in=genealogy.members(snapshot, segments).values("unit_id"))
    if definite_segments := forward.segment_ids(definite=True):
        definite |= Q(pk__in=genealogy.members(snapshot, definite_segments).values("unit_id"))
    return affected, definite


def run_breakdown(run: TraceRun, *, prefix_length: identifiers.PrefixLength) -> dict[str, list[dict[str, Any]]]:
    """Affected units counted by product model, work order, site, production month and consignee.

    One aggregate query per dimension (each unit counted once, definite when any path to it is),
    plus the consignee read.
    """
    forward = run_result(run)
    affected, definite = _unit_sets(forward)
    units = Unit.objects.filter(affected).order_by()
    counts = {"units": Count("pk"), "definite": Count("pk", filter=definite)}

    def by(*fields: str, key: Callable[[dict[str, Any]], Any], **extra: Any) -> list[dict[str, Any]]:
        rows = units.annotate(**extra).values(*fields).annotate(**counts)
        return sorted(
            ({**row, "potential": row["units"] - row["definite"]} for row in rows),
            key=lambda row: (-row["units"], str(key(row))),
        )

    months = by("month", key=lambda r: r["month"], month=TruncMonth("produced_at"))
    return {
        "product_models": [
            _group(r, model_number=r["product_model__model_number"], name=r["product_model__name"])
            for r in by(
                "product_model__model_number", "product_model__name", key=lambda r: r["product_model__model_number"]
            )
        ],
        "work_orders": [
            _group(r, number=r["work_order__number"])
            for r in by("work_order__number", key=lambda r: r["work_order__number"])
        ],
        "sites": [
            _group(r, site=r["site_id"], name=r["site__name"])
            for r in by("site_id", "site__name", key=lambda r: r["site_id"])
        ],
        "production_months": [_group(r, month=_month(r["month"])) for r in months],
        "consignees": [
            {"organisation": c["organisation"], "name": c["name"], "units": c["units"]}
            for c in run_consignees(run, prefix_length=prefix_length)
        ],
    }


def _group(row: dict[str, Any], **key: Any) -> dict[str, Any]:
    return {**key, "units": row["units"], "definite": row["definite"], "potential": row["potential"]}


def _month(value: dt.datetime | dt.date | None) -> str | None:
    return f"{value:%Y-%m}" if value else None


# --- one unit: upstream and siblings ------------------------------------------------------------------


def unit_summary(unit: Unit, *, prefix_length: identifiers.PrefixLength) -> dict[str, Any]:
    return {
        "serial": unit.serial,
        "gtin": unit.gtin,
        "identity": unit.identity,
        **identifier_links(unit.identity, prefix_length=prefix_length),
    }


def lot_summary(lot: Mapping[str, Any], *, prefix_length: identifiers.PrefixLength) -> dict[str, Any]:
    """A lot as a page names it, from a row holding its ``identity``, ``code`` and ``kind``."""
    return {
        "identity": lot["identity"],
        "code": lot["code"],
        "kind": lot["kind"],
        **identifier_links(lot["identity"], prefix_length=prefix_length),
    }


def unit_backward(unit: Unit, *, prefix_length: PrefixLength) -> dict[str, Any]:
    """Every upstream lot at every level, with its supplier, site, production window, inspections and
    the supplier's certificates; and the units a refurbished unit was made from.

    Queries: the snapshot, one per level of the graph, then lots, inspections, certificates and the
    path names once each.
    """
    snapshot = genealogy.ledger_snapshot()
    backward = genealogy.backward_trace(snapshot=snapshot, unit_id=unit.pk)
    # Plain rows, not model instances: building 40 lots with their owners, sites and inspections as
    # objects cost more than reading them.
    lots = list(Lot.objects.filter(pk__any=set(backward.lots)).values(*_LOT_COLUMNS))
    inspections: dict[int, list[dict[str, Any]]] = {}
    for row in (
        Inspection.objects.filter(lot_id__any=set(backward.lots))
        .order_by("inspected_at", "id")
        .values("lot_id", *_INSPECTION_COLUMNS)
    ):
        inspections.setdefault(row.pop("lot_id"), []).append(row)
    certificates: dict[int, list[dict[str, Any]]] = {}
    for row in Certificate.objects.filter(owner_id__any={lot["owner_id"] for lot in lots}).values(
        "owner_id", *_CERTIFICATE_COLUMNS
    ):
        certificates.setdefault(row.pop("owner_id"), []).append(row)
    ordered = sorted(lots, key=lambda lot: (len(backward.lots[lot["id"]].path), lot["identity"]))
    upstream_units = Unit.objects.in_bulk(list(backward.units))
    prefix_length.prepare(
        [unit.identity, *(lot["identity"] for lot in lots), *(u.identity for u in upstream_units.values())]
    )
    ordered_units = sorted(upstream_units.values(), key=lambda u: (len(backward.units[u.pk].path), u.identity))
    known = {("L", lot["id"]): lot["identity"] for lot in ordered}
    known.update((("U", u.pk), u.identity) for u in [unit, *ordered_units])
    paths = genealogy.explain_paths(
        [backward.lots[lot["id"]].path for lot in ordered] + [backward.units[u.pk].path for u in ordered_units],
        known=known,
    )
    lot_paths, unit_paths = paths[: len(ordered)], paths[len(ordered) :]
    return {
        "subject": unit_summary(unit, prefix_length=prefix_length),
        "position": snapshot.position,
        "lots": [
            {
                **lot_summary(lot, prefix_length=prefix_length),
                "level": len(backward.lots[lot["id"]].path),
                "exposure": exposure_name(backward.lots[lot["id"]].definite),
                "supplier": {
                    "organisation": lot["owner__slug"],
                    "name": lot["owner__name"],
                    "role": lot["owner__role"],
                },
                "site": (
                    {"id": lot["site_id"], "name": lot["site__name"], "gln": lot["site__gln"]}
                    if lot["site_id"]
                    else None
                ),
                "produced_from": lot["produced_from"],
                "produced_to": lot["produced_to"],
                "inspections": inspections.get(lot["id"], []),
                "certificates": certificates.get(lot["owner_id"], []),
                "path": path,
            }
            for lot, path in zip(ordered, lot_paths, strict=True)
        ],
        "units": [
            {
                **unit_summary(u, prefix_length=prefix_length),
                "exposure": exposure_name(backward.units[u.pk].definite),
                "path": path,
            }
            for u, path in zip(ordered_units, unit_paths, strict=True)
        ],
    }


_SUMMARY_COLUMNS = ("id", "identity", "code", "kind")
_LOT_COLUMNS = (
    *_SUMMARY_COLUMNS, "owner_id", "owner__slug", "owner__name", "owner__role", "site_id",
    "site__name", "site__gln", "produced_from", "produced_to",
)  # fmt: skip
_INSPECTION_COLUMNS = ("id", "method", "outcome", "measurements", "sample_size", "inspected_at")
_CERTIFICATE_COLUMNS = ("scheme", "number", "status", "valid_to")


def unit_siblings(
    unit: Unit, *, visible_units: QuerySet[Unit], prefix_length: PrefixLength, after: int, limit: int
) -> dict[str, Any]:
    """A page of the units sharing a direct input lot with ``unit`` (of those the caller may see).

    A page may hold fewer than ``limit`` siblings when some are not the caller's to see.
    """
    snapshot = genealogy.ledger_snapshot()
    found = genealogy.siblings(snapshot=snapshot, unit_id=unit.pk, after=after, limit=limit)
    # Only what a summary shows: building 100 whole Unit rows cost more than reading them.
    units = visible_units.only("identity", "serial", "gtin").in_bulk(list(found.units))
    lots = {lot["id"]: lot for lot in Lot.objects.filter(pk__any=set(found.shared_lots)).values(*_SUMMARY_COLUMNS)}
    prefix_length.prepare(
        [unit.identity, *(u.identity for u in units.values()), *(lot["identity"] for lot in lots.values())]
    )
    return {
        "subject": unit_summary(unit, prefix_length=prefix_length),
        "position": snapshot.position,
        "shared_lots": [lot_summary(lots[pk], prefix_length=prefix_length) for pk in found.shared_lots],
        "siblings": [
            {
                **unit_summary(units[pk], prefix_length=prefix_length),
                "shared_lots": [lots[lot]["identity"] for lot in lot_ids],
            }
            for pk, lot_ids in found.units.items()
            if pk in units
        ],
        "next_after": found.next_after,
    }
