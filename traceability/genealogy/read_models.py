"""What the genealogy shows of one unit or lot: everything upstream of it, and a unit's siblings.

These are the read models every interface renders (REST, the CLI, and GraphQL and pages next), so
none of them reads the genealogy on its own. They carry canonical identities and ids; writing an
identity as an EPC URN or a Digital Link needs the company-prefix lengths the renderer holds
(``traceability.ledger.selectors.identifier_links``, ``PrefixLength``).

Each read is a fixed number of queries, whatever the number of lots, inspections or certificates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from cells.models import Inspection, Lot
from packs.models import Unit
from suppliers.models import Certificate, Organisation, OrganisationRole, in_role_order
from suppliers.selectors import roles_of
from traceability.genealogy.backward import backward_trace
from traceability.genealogy.explain import PathStep, explain_paths
from traceability.genealogy.models import exposure_name
from traceability.genealogy.siblings import siblings
from traceability.genealogy.snapshot import Snapshot, ledger_snapshot


@dataclass(frozen=True)
class UnitSummary:
    id: int
    identity: str
    serial: str
    gtin: str | None


@dataclass(frozen=True)
class LotSummary:
    id: int
    identity: str
    code: str
    kind: str


@dataclass(frozen=True)
class Party:
    """An organisation as a trace names it: a supplier upstream, a consignee downstream."""

    id: int
    slug: str
    name: str
    roles: tuple[str, ...]  # in ``Role`` order
    pgln: str | None  # its party GLN (13 digits), when it has one


def party_of(organisation: Organisation) -> Party:
    """``organisation`` as a party (its roles read unless prefetched: ``prefetch_related("roles")``)."""
    return Party(
        organisation.pk, organisation.slug, organisation.name, tuple(organisation.role_names), organisation.pgln or None
    )


def parties_by_id(ids: Iterable[int]) -> dict[int, Party]:
    """Organisations as parties, with their roles: two queries for any number, none for none.

    Read as values, not as models with their roles prefetched (which builds a related queryset per
    organisation): the 549 consignees of the bench's million-unit run take a fifth of the time.
    """
    wanted = frozenset(ids)
    if not wanted:
        return {}
    held: dict[int, set[str]] = {}
    for organisation_id, role in OrganisationRole.objects.filter(organisation_id__any=wanted).values_list(
        "organisation_id", "role"
    ):
        held.setdefault(organisation_id, set()).add(role)
    found = Organisation.objects.filter(pk__any=wanted).order_by().values_list("pk", "slug", "name", "pgln")
    return {
        pk: Party(pk, slug, name, tuple(in_role_order(held.get(pk, ()))), pgln or None)
        for pk, slug, name, pgln in found
    }


@dataclass(frozen=True)
class SiteSummary:
    id: int
    name: str
    gln: str | None


@dataclass(frozen=True)
class InspectionResult:
    id: int
    method: str
    outcome: str
    measurements: Any  # JSON, as the lab reported it
    sample_size: int | None
    inspected_at: dt.datetime


@dataclass(frozen=True)
class CertificateSummary:
    scheme: str
    number: str
    status: str
    valid_to: dt.date


@dataclass(frozen=True)
class UpstreamLot:
    lot: LotSummary
    level: int  # links between the subject and the lot
    exposure: str  # "definite" or "potential"
    supplier: Party  # the lot's owner
    site: SiteSummary | None
    produced_from: dt.datetime | None
    produced_to: dt.datetime | None
    inspections: tuple[InspectionResult, ...]  # oldest first
    certificates: tuple[CertificateSummary, ...]  # the supplier's
    path: tuple[PathStep, ...]  # from the subject up to the lot


@dataclass(frozen=True)
class UpstreamUnit:
    """A unit a refurbished unit was made from."""

    unit: UnitSummary
    exposure: str
    path: tuple[PathStep, ...]


@dataclass(frozen=True)
class Upstream:
    """Everything upstream of a unit or a lot at one ledger position, nearest first."""

    subject: UnitSummary | LotSummary
    position: int
    lots: tuple[UpstreamLot, ...]  # by level, then identity
    units: tuple[UpstreamUnit, ...]  # by level, then identity

    def identities(self) -> list[str]:
        """Every identity it names, for a renderer to resolve their company prefixes at once."""
        return [self.subject.identity, *(u.lot.identity for u in self.lots), *(u.unit.identity for u in self.units)]


def unit_summary(unit: Unit) -> UnitSummary:
    return UnitSummary(unit.pk, unit.identity, unit.serial, unit.gtin)


def _subject_summary(subject: Lot | Unit) -> UnitSummary | LotSummary:
    if isinstance(subject, Unit):
        return unit_summary(subject)
    return LotSummary(subject.pk, subject.identity, subject.code, subject.kind)


_SUMMARY_COLUMNS = ("id", "identity", "code", "kind")
_LOT_COLUMNS = (
    *_SUMMARY_COLUMNS, "owner_id", "owner__slug", "owner__name", "owner__pgln", "site_id",
    "site__name", "site__gln", "produced_from", "produced_to",
)  # fmt: skip
_INSPECTION_COLUMNS = ("id", "method", "outcome", "measurements", "sample_size", "inspected_at")
_CERTIFICATE_COLUMNS = ("scheme", "number", "status", "valid_to")


def upstream_read(*, subject: Lot | Unit, snapshot: Snapshot | None = None) -> Upstream:
    """Every lot upstream of a unit or a lot at every level, with its supplier, site, production
    window, inspections and the supplier's certificates; and the units a refurbished unit was made from.

    Queries: the snapshot (unless given), one per level of the graph, then lots, inspections,
    certificates, the suppliers' roles, units and the paths' records once each.
    """
    snapshot = snapshot or ledger_snapshot()
    is_unit = isinstance(subject, Unit)
    backward = backward_trace(
        snapshot=snapshot, unit_id=subject.pk if is_unit else None, lot_id=None if is_unit else subject.pk
    )
    # Plain rows, not model instances: building 40 lots with their owners, sites and inspections as
    # objects cost more than reading them.
    lots = list(Lot.objects.filter(pk__any=set(backward.lots)).values(*_LOT_COLUMNS))
    inspections: dict[int, list[InspectionResult]] = {}
    for row in (
        Inspection.objects.filter(lot_id__any=set(backward.lots))
        .order_by("inspected_at", "id")
        .values("lot_id", *_INSPECTION_COLUMNS)
    ):
        inspections.setdefault(row.pop("lot_id"), []).append(InspectionResult(**row))
    certificates: dict[int, list[CertificateSummary]] = {}
    for row in Certificate.objects.filter(owner_id__any={lot["owner_id"] for lot in lots}).values(
        "owner_id", *_CERTIFICATE_COLUMNS
    ):
        certificates.setdefault(row.pop("owner_id"), []).append(CertificateSummary(**row))
    roles = roles_of(organisation_ids={lot["owner_id"] for lot in lots})
    ordered = sorted(lots, key=lambda lot: (len(backward.lots[lot["id"]].path), lot["identity"]))
    upstream_units = Unit.objects.only("identity", "serial", "gtin").in_bulk(list(backward.units))
    ordered_units = sorted(upstream_units.values(), key=lambda u: (len(backward.units[u.pk].path), u.identity))
    known = {("L", lot["id"]): lot["identity"] for lot in ordered}
    known.update((("U", u.pk), u.identity) for u in ordered_units)
    known[("U" if is_unit else "L", subject.pk)] = subject.identity
    paths = explain_paths(
        [backward.lots[lot["id"]].path for lot in ordered] + [backward.units[u.pk].path for u in ordered_units],
        known=known,
    )
    lot_paths, unit_paths = paths[: len(ordered)], paths[len(ordered) :]
    return Upstream(
        subject=_subject_summary(subject),
        position=snapshot.position,
        lots=tuple(
            UpstreamLot(
                lot=LotSummary(lot["id"], lot["identity"], lot["code"], lot["kind"]),
                level=len(backward.lots[lot["id"]].path),
                exposure=exposure_name(backward.lots[lot["id"]].definite),
                supplier=Party(
                    id=lot["owner_id"],
                    slug=lot["owner__slug"],
                    name=lot["owner__name"],
                    roles=tuple(roles.get(lot["owner_id"], ())),
                    pgln=lot["owner__pgln"] or None,
                ),
                site=SiteSummary(lot["site_id"], lot["site__name"], lot["site__gln"]) if lot["site_id"] else None,
                produced_from=lot["produced_from"],
                produced_to=lot["produced_to"],
                inspections=tuple(inspections.get(lot["id"], ())),
                certificates=tuple(certificates.get(lot["owner_id"], ())),
                path=path,
            )
            for lot, path in zip(ordered, lot_paths, strict=True)
        ),
        units=tuple(
            UpstreamUnit(unit=unit_summary(u), exposure=exposure_name(backward.units[u.pk].definite), path=path)
            for u, path in zip(ordered_units, unit_paths, strict=True)
        ),
    )


@dataclass(frozen=True)
class Sibling:
    unit: UnitSummary
    shared_lots: tuple[LotSummary, ...]  # the subject's direct input lots this unit was made from too


@dataclass(frozen=True)
class SiblingsPage:
    """A page of the units sharing a direct input lot with a unit, in unit id order."""

    subject: UnitSummary
    position: int
    shared_lots: tuple[LotSummary, ...]  # the subject's direct input lots
    siblings: tuple[Sibling, ...]
    next_after: int | None  # the cursor of the next page; None on the last one

    def identities(self) -> list[str]:
        """Every identity it names, for a renderer to resolve their company prefixes at once."""
        return [
            self.subject.identity,
            *(s.unit.identity for s in self.siblings),
            *(lot.identity for lot in self.shared_lots),
        ]


def siblings_page(
    *,
    unit: Unit,
    after: int,
    limit: int,
    visible_units: QuerySet[Unit] | None = None,
    snapshot: Snapshot | None = None,
) -> SiblingsPage:
    """A page of the units sharing a direct input lot with ``unit``, of ``visible_units`` (all by default).

    The page is cut among ``visible_units``: the others are neither shown nor counted. Five
    queries, whatever ``limit`` is.
    """
    snapshot = snapshot or ledger_snapshot()
    found = siblings(snapshot=snapshot, unit_id=unit.pk, after=after, limit=limit, among=visible_units)
    # Only what a summary shows: building 100 whole Unit rows cost more than reading them.
    units = (Unit.objects.all() if visible_units is None else visible_units).only("identity", "serial", "gtin")
    shown = units.in_bulk(list(found.units))
    lots = _lot_summaries(found.shared_lots)
    return SiblingsPage(
        subject=unit_summary(unit),
        position=snapshot.position,
        shared_lots=tuple(lots[pk] for pk in found.shared_lots),
        siblings=tuple(
            Sibling(unit=unit_summary(shown[pk]), shared_lots=tuple(lots[lot] for lot in lot_ids))
            for pk, lot_ids in found.units.items()
            if pk in shown
        ),
        next_after=found.next_after,
    )


def _lot_summaries(ids: Iterable[int]) -> dict[int, LotSummary]:
    return {
        row["id"]: LotSummary(row["id"], row["identity"], row["code"], row["kind"])
        for row in Lot.objects.filter(pk__any=set(ids)).values(*_SUMMARY_COLUMNS)
    }
