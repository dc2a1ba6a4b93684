"""REST's side of the reads: parsing a listing's filters, and writing the domain's read models as
the bodies the serializers document.

The reads themselves are the domain's (``traceability.genealogy.read_models`` for one unit,
``traceability.investigations.selectors`` for a trace's result), shared with the CLI and the
exports; what is here is only how REST writes them: identities as EPC URNs and Digital Links with
the request's company-prefix lengths, and each body in its serializer's shape. Nothing here reads
the database but through those reads (and the prefix lengths).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from packs.models import Unit
from packs.selectors import unit_certificates
from suppliers.models import Certificate
from traceability import genealogy
from traceability.genealogy.models import Exposure
from traceability.investigations.models import TraceRun
from traceability.investigations.selectors import (
    AffectedConsignee,
    AffectedUnitFilters,
    AffectedUnitRow,
    Counted,
    affected_units_page,
    finished_run_breakdown,
    finished_run_consignees,
    finished_run_part,
    finished_run_party_page,
    finished_run_result,
)
from traceability.ledger.selectors import PrefixLength, identifier_links, identifier_or_none

# --- a run's affected units ---------------------------------------------------------------------------


def _unfiltered(queryset: QuerySet, name: str, value: Any) -> QuerySet:
    return queryset


class AffectedUnitFilter(django_filters.FilterSet):
    """The query parameters that filter a run's affected units, parsed and checked here and applied
    by the read (``AffectedUnitFilters``): ``product_model`` and ``work_order`` to the unit rows in
    the database, ``exposure`` and ``consignee`` to each batch once joined with the trace and the
    shipments."""

    exposure = django_filters.ChoiceFilter(choices=Exposure.choices, method=_unfiltered)
    product_model = django_filters.CharFilter(method=_unfiltered, help_text="Model number.")
    work_order = django_filters.CharFilter(method=_unfiltered, help_text="Work-order number.")
    consignee = django_filters.CharFilter(method=_unfiltered, help_text="Slug of an organisation that received it.")

    class Meta:
        model = Unit
        fields = ["exposure", "product_model", "work_order", "consignee"]

    def parsed(self) -> AffectedUnitFilters:
        """The filters of a valid query (call ``is_valid`` first)."""
        data = self.form.cleaned_data
        return AffectedUnitFilters(**{name: data.get(name) or None for name in self.Meta.fields})


@dataclass(frozen=True)
class UnitsPage:
    units: list[dict[str, Any]]  # in ``AffectedUnitSerializer``'s shape
    next_after: int | None  # the cursor to continue from; None when the run has no more units


def run_units_page(
    run: TraceRun,
    *,
    after: int,
    limit: int,
    filters: AffectedUnitFilter | None,
    prefix_length: PrefixLength,
    shown: Callable[[], Q] | None = None,
    party_id: int | None = None,
) -> UnitsPage:
    """A page of a finished run's affected units (those ``shown``: the access policy's answer, the
    units of ``party_id``, asked only when the page is not read in one statement).

    A party's unfiltered page is first asked of ``finished_run_party_page``, which answers a party
    that received nothing (its own units) in one query, and says whether it received anything
    otherwise; then the page is read from the party's part as any other."""
    parsed = filters.parsed() if filters is not None else AffectedUnitFilters()
    page, received = None, None
    if party_id is not None and not parsed.narrowing:
        answer = finished_run_party_page(run=run, party_id=party_id, after=after, limit=limit)
        page, received = answer.page, answer.received
    if page is None:
        parsed = dataclasses.replace(parsed, shown=shown() if shown is not None else None, party_id=party_id)
        forward = (
            finished_run_result(run=run)
            if party_id is None
            else finished_run_part(run=run, party_id=party_id, received=received)
        )
        page = affected_units_page(forward=forward, after=after, limit=limit, filters=parsed)
    if page.prefixes is not None:  # read with the page
        prefix_length.prepare((row.identity for row in page.rows), prefixes=page.prefixes)
    return UnitsPage([affected_unit_body(row, prefix_length=prefix_length) for row in page.rows], page.next_after)


def affected_unit_body(row: AffectedUnitRow, *, prefix_length: PrefixLength) -> dict[str, Any]:
    return {
        "serial": row.serial,
        "gtin": row.gtin,
        "identity": row.identity,
        **identifier_links(row.identity, prefix_length=prefix_length),  # epc, digital_link: parsed once
        "exposure": row.exposure,
        "product_model": row.product_model,
        "work_order": row.work_order,
        "path": _path(row.path),
        "consignees": [{"organisation": s.slug, "name": s.name, "shipped_at": s.shipped_at} for s in row.shipments],
    }


# --- a run's consignees and breakdown -----------------------------------------------------------------


def run_consignees(run: TraceRun, *, party_id: int | None = None) -> list[AffectedConsignee]:
    """The consignees of a finished run's affected units, most units first (with ``party_id``,
    through the shipments that party sent or received); a page of them is written by
    ``consignee_body``: rendering every one of a million-unit result's 549 took longer than reading them."""
    return finished_run_consignees(run=run, party_id=party_id)


def consignee_body(consignee: AffectedConsignee, *, prefix_length: PrefixLength) -> dict[str, Any]:
    party = consignee.party
    return {
        "organisation": party.slug,
        "name": party.name,
        "roles": list(party.roles),
        "pgln": identifier_or_none(f"pgln:{party.pgln}", form="epc", prefix_length=prefix_length)
        if party.pgln
        else None,
        "units": consignee.units,
        "first_shipped_at": consignee.first_shipped_at,
        "last_shipped_at": consignee.last_shipped_at,
        "ship_to_countries": sorted(consignee.ship_to_countries),
    }


def run_breakdown(
    run: TraceRun, *, shown: Q | None = None, party_id: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """A finished run's affected units counted by group, in ``BreakdownSerializer``'s shape (the
    units ``shown``, and ``party_id``'s consignees, when the reader may not see all)."""
    breakdown = finished_run_breakdown(run=run, shown=shown, party_id=party_id)
    return {
        "product_models": [_counts(c, model_number=c.model_number, name=c.name) for c in breakdown.product_models],
        "work_orders": [_counts(c, number=c.number) for c in breakdown.work_orders],
        "sites": [_counts(c, site=c.site_id, name=c.name) for c in breakdown.sites],
        "production_months": [_counts(c, month=c.month) for c in breakdown.production_months],
        "consignees": [
            {"organisation": c.party.slug, "name": c.party.name, "units": c.units} for c in breakdown.consignees
        ],
    }


def _counts(counted: Counted, **key: Any) -> dict[str, Any]:
    return {**key, "units": counted.units, "definite": counted.definite, "potential": counted.potential}


# --- one unit: upstream and siblings ------------------------------------------------------------------
# Written as plain dicts, not through the serializers: DRF's field-by-field copy over 100 siblings or
# 40 upstream lots cost more than the trace (see ``as_built`` in ``views``).


def unit_backward(unit: Unit, *, prefix_length: PrefixLength) -> dict[str, Any]:
    """Everything upstream of a unit, in ``BackwardSerializer``'s shape."""
    upstream = genealogy.upstream_read(subject=unit)
    prefix_length.prepare(upstream.identities())
    return {
        "subject": _unit(genealogy.unit_summary(unit), prefix_length),
        "position": upstream.position,
        "lots": [
            {
                **_lot(found.lot, prefix_length),
                "level": found.level,
                "exposure": found.exposure,
                "supplier": {
                    "organisation": found.supplier.slug,
                    "name": found.supplier.name,
                    "roles": list(found.supplier.roles),
                },
                "site": ({"id": found.site.id, "name": found.site.name, "gln": found.site.gln} if found.site else None),
                "produced_from": found.produced_from,
                "produced_to": found.produced_to,
                "inspections": [
                    {
                        "id": i.id,
                        "method": i.method,
                        "outcome": i.outcome,
                        "measurements": i.measurements,
                        "sample_size": i.sample_size,
                        "inspected_at": i.inspected_at,
                    }
                    for i in found.inspections
                ],
                "certificates": [
                    {"scheme": c.scheme, "number": c.number, "status": c.status, "valid_to": c.valid_to}
                    for c in found.certificates
                ],
                "path": _path(found.path),
            }
            for found in upstream.lots
        ],
        "units": [
            {**_unit(found.unit, prefix_length), "exposure": found.exposure, "path": _path(found.path)}
            for found in upstream.units
        ],
    }


def unit_siblings(
    unit: Unit, *, visible_units: QuerySet[Unit], prefix_length: PrefixLength, after: int, limit: int
) -> dict[str, Any]:
    """A page of a unit's siblings (of those the caller may see) in ``SiblingsSerializer``'s shape,
    with ``next_after`` (the cursor) where the serializer has ``next`` (a URL)."""
    page = genealogy.siblings_page(unit=unit, visible_units=visible_units, after=after, limit=limit)
    prefix_length.prepare(page.identities())
    return {
        "subject": _unit(page.subject, prefix_length),
        "position": page.position,
        "shared_lots": [_lot(lot, prefix_length) for lot in page.shared_lots],
        "siblings": [
            {**_unit(s.unit, prefix_length), "shared_lots": [lot.identity for lot in s.shared_lots]}
            for s in page.siblings
        ],
        "next_after": page.next_after,
    }


def _unit(unit: genealogy.UnitSummary, prefix_length: PrefixLength) -> dict[str, Any]:
    return {
        "serial": unit.serial,
        "gtin": unit.gtin,
        "identity": unit.identity,
        **identifier_links(unit.identity, prefix_length=prefix_length),
    }


def _lot(lot: genealogy.LotSummary, prefix_length: PrefixLength) -> dict[str, Any]:
    return {
        "identity": lot.identity,
        "code": lot.code,
        "kind": lot.kind,
        **identifier_links(lot.identity, prefix_length=prefix_length),
    }


def _path(path: tuple[genealogy.PathStep, ...]) -> list[dict[str, str]]:
    return [step.as_dict() for step in path]


def unit_certificates_read(
    unit: Unit, *, scheme: str | None, on: dt.date | None, prefix_length: PrefixLength
) -> dict[str, Any]:
    """The unit's standing under each certification scheme (or ``scheme``), in
    ``UnitCertificatesSerializer``'s shape: a fixed number of queries."""
    on = on or timezone.localdate()
    answers = unit_certificates(unit, schemes=None if scheme is None else [scheme], on=on)
    return {
        "subject": _unit(genealogy.unit_summary(unit), prefix_length),
        "on": on,
        "certificates": [
            {
                "scheme": answer.scheme,
                "standing": answer.standing,
                "certificate": _certificate(answer.certificate) if answer.certificate is not None else None,
            }
            for answer in answers
        ],
    }


def _certificate(certificate: Certificate) -> dict[str, Any]:
    return {
        "scheme": certificate.scheme,
        "number": certificate.number,
        "holder": certificate.owner.slug,
        "issuer": certificate.issuer,
        "issued_by": certificate.issued_by.slug if certificate.issued_by is not None else None,
        "status": certificate.status,
        "valid_from": certificate.valid_from,
        "valid_to": certificate.valid_to,
        "covers": {
            "product_models": sorted(m.model_number for m in certificate.product_models.all()),
            "cell_models": sorted(m.name for m in certificate.cell_models.all()),
            "sites": [
                {"id": site.pk, "name": site.name, "gln": site.gln}
                for site in sorted(certificate.sites.all(), key=lambda site: site.pk)
            ],
        },
    }
