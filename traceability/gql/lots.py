"""Lots (material, cell, module) and what is downstream of them.

``Lot.downstream`` answers from the engine a trace run uses, at the ledger's current position: the
forward trace (``genealogy.forward_trace``), what the caller may see of it (the access policy's
``result_scope``, as REST shows a run's result) and the affected units' listing REST's run-units
page renders (``investigations.selectors.affected_units_page``). A lot the caller may not trace is
null, as REST answers 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import graphene
from graphene import relay
from graphene.types import generic
from graphql import GraphQLResolveInfo

from cells.models import Inspection as InspectionRow
from cells.models import Lot as LotModel
from traceability import genealogy
from traceability.access.policy import ResultScope, downstream_scope, subject_check, upstream_traceable
from traceability.core.limits import control_character
from traceability.genealogy.models import Exposure as ExposureName
from traceability.gql.context import Context, InputError, context_of, pk_of, selected
from traceability.gql.events import events_field, events_of
from traceability.gql.loaders import loader
from traceability.gql.paging import after_of, cursor_of, page_size
from traceability.gql.parties import (
    CellModel,
    Certificate,
    Organisation,
    Site,
    cell_model,
    cell_models_expected,
    certificates_expected,
    certificates_of,
    organisations_expected,
    party,
    site,
    sites_expected,
)
from traceability.investigations.selectors import AffectedUnitFilters, AffectedUnitRow, affected_units_page
from traceability.ledger.selectors import SubjectError, UnknownSubject, subject_find

AFFECTED = "AffectedUnitConnection"


class Exposure(graphene.Enum):
    """How a unit is exposed to a lot: through definite links only, or through a potential one."""

    DEFINITE = ExposureName.DEFINITE.value
    POTENTIAL = ExposureName.POTENTIAL.value


@dataclass(frozen=True)
class LotRoot:
    """A lot as the graph holds it: its key and identity, and its owner when read with it."""

    id: int
    identity: str  # canonical
    code: str
    kind: str
    owner_id: int
    owner: genealogy.Party | None = None

    @classmethod
    def of(cls, lot: LotModel) -> LotRoot:
        return cls(lot.pk, lot.identity, lot.code, lot.kind, lot.owner_id)


def lot_row(context: Context, lot_id: int) -> LotModel:
    """The lot's row, read once per request (a root lookup found it already)."""
    key = ("lot", lot_id)
    if key not in context.memo:
        context.memo[key] = LotModel.objects.get(pk=lot_id)
    return context.memo[key]  # type: ignore[no-any-return]


def lot_traceable(context: Context, lot: LotModel) -> bool:
    """Whether the caller may trace ``lot`` forward: the access policy's ``subject_check`` (what a
    finding on it asks), asked once per lot and request. The trace the check made to answer (of a
    lot the caller does not own) is kept for the lot's downstream, which then does not trace again."""
    context.memo.setdefault(("lot", lot.pk), lot)
    key = ("lot-traceable", lot.pk)
    if key not in context.memo:
        check = subject_check(context.actor, lot)
        context.memo[key] = check.allowed
        if check.allowed and check.forward is not None:
            context.memo[("lot-forward", lot.pk)] = check.forward
    return bool(context.memo[key])


def lot_find(context: Context, identifier: str) -> LotModel | None:
    """The lot ``identifier`` names if the caller may trace it; None for an unknown lot and for one
    it may not trace alike. A malformed identifier is refused, saying why."""
    if found := control_character(identifier):
        raise InputError(
            f"identifier contains the control character U+{ord(found):04X}",
            code="control_character",
            field="identifier",
        )
    caller = context.caller
    try:
        found_subject = subject_find(identifier, owner=None if caller.sees_all else caller.organisation)
    except UnknownSubject:
        return None
    except SubjectError as refused:
        raise InputError(refused.message, code=refused.code, field="identifier") from None
    if not isinstance(found_subject, LotModel) or not lot_traceable(context, found_subject):
        return None
    return found_subject


class PathStep(graphene.ObjectType):
    """One link of a path: its two ends (EPC URNs) and the record that made it."""

    from_ = graphene.String(name="from", required=True)
    to = graphene.String(required=True)
    record = graphene.String(required=True, description="The record's reference: an event, a work order, a build.")
    exposure = graphene.NonNull(Exposure)

    @staticmethod
    def resolve_from_(root: genealogy.PathStep, info: GraphQLResolveInfo) -> str:
        return context_of(info).epc(root.source)

    @staticmethod
    def resolve_to(root: genealogy.PathStep, info: GraphQLResolveInfo) -> str:
        return context_of(info).epc(root.target)


class AffectedUnit(graphene.ObjectType):
    """A unit downstream of a lot: how it is exposed, and the path from the lot to it."""

    unit = graphene.NonNull("traceability.gql.units.Unit")
    exposure = graphene.NonNull(Exposure)
    path = graphene.List(graphene.NonNull(PathStep), required=True)
    product_model = graphene.String(required=True, description="The unit's model number.")
    work_order = graphene.String(description="The number of the work order it was made in.")

    @staticmethod
    def resolve_unit(root: AffectedUnitRow, info: GraphQLResolveInfo) -> Any:
        from traceability.gql.units import UnitRoot

        return UnitRoot(root.unit_id, root.identity, root.serial, root.gtin)

    @staticmethod
    def resolve_path(root: AffectedUnitRow, info: GraphQLResolveInfo) -> tuple[genealogy.PathStep, ...]:
        return root.path


class AffectedUnitEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.NonNull(AffectedUnit)


class OthersCount(graphene.ObjectType):
    """Units of another organisation that the caller's lots went into: shown only as how many."""

    organisation = graphene.NonNull(Organisation)
    definite_count = graphene.Int(required=True)
    potential_count = graphene.Int(required=True)


@dataclass(frozen=True)
class Downstream:
    """One page of a lot's downstream as the caller may see it, with its counts."""

    total_count: int
    definite_count: int
    potential_count: int
    edges: list[dict[str, Any]]
    page_info: dict[str, Any]
    others: list[dict[str, Any]]


class AffectedUnitConnection(graphene.ObjectType):
    """The units downstream of a lot, a page at a time in unit order. The counts are of the units
    the caller sees in full (every unit for a regulator in scope; a party's own and received ones);
    ``others`` counts, per organisation, the units of others that the caller's own lots went into."""

    total_count = graphene.Int(required=True)
    definite_count = graphene.Int(required=True)
    potential_count = graphene.Int(required=True)
    edges = graphene.List(graphene.NonNull(AffectedUnitEdge), required=True)
    page_info = graphene.NonNull(relay.PageInfo)
    others = graphene.List(graphene.NonNull(OthersCount), required=True)


def downstream_read(context: Context, lot: LotModel, *, exposure: str | None, first: int, after: int) -> Downstream:
    forward = context.memo.get(("lot-forward", lot.pk))  # traced by ``lot_traceable`` in this request
    if forward is None:
        forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
        context.memo[("lot-forward", lot.pk)] = forward
    scope = downstream_scope(context.actor, forward)
    if scope.full:
        definite, potential = genealogy.affected_counts(forward)
    else:
        view = scope.view
        definite, potential = (view.definite_units, view.potential_units) if view is not None else (0, 0)
    others = [(c.organisation_id, c.definite_units, c.potential_units) for c in scope.others]
    return affected_page(
        context,
        forward=forward,
        scope=scope,
        counts=(definite, potential),
        others=others,
        exposure=exposure,
        first=first,
        after=after,
    )


def affected_page(
    context: Context,
    *,
    forward: genealogy.Forward,
    scope: ResultScope,
    counts: tuple[int, int],
    others: list[tuple[int, int, int]],
    exposure: str | None,
    first: int,
    after: int,
) -> Downstream:
    """A page of a trace's affected units as ``scope`` lets the caller see them (the listing REST's
    run-units page renders: ``affected_units_page``), with the result's ``counts`` (definite,
    potential) as the caller may see them and ``others`` (organisation id, definite, potential)."""
    definite, potential = counts
    filters = AffectedUnitFilters(
        exposure=exposure,
        shown=None if scope.full else scope.units_shown(),
        party_id=None if scope.full else scope.organisation_id,
    )
    rows: tuple[AffectedUnitRow, ...] = ()
    next_after: int | None = None
    if first:
        # Who received each unit is read only if a unit's ``shipments`` is asked for (its loader).
        page = affected_units_page(forward=forward, after=after, limit=first, filters=filters, shipments=False)
        rows, next_after = page.rows, page.next_after
    context.prefix_length.prepare(
        [row.identity for row in rows]
        + [name for row in rows for step in row.path for name in (step.source, step.target)]
    )
    edges = [{"cursor": cursor_of(AFFECTED, row.unit_id), "node": row} for row in rows]
    from traceability.gql.units import units_expected  # units render lots: the two modules meet here

    units_expected(context, [row.unit_id for row in rows])
    # A filtered page may stop short of ``first`` having scanned its budget: the end cursor is where
    # the scan stopped, so the next page carries on from there, not from the last unit shown.
    end = next_after if next_after is not None else (rows[-1].unit_id if rows else None)
    organisations_expected(context, (organisation for organisation, _, _ in others))
    # By the enum's values: a TextChoices member hashes by its name, not as the string it equals.
    total = {"definite": definite, "potential": potential}.get(exposure or "", definite + potential)
    return Downstream(
        total_count=total,
        definite_count=definite,
        potential_count=potential,
        edges=edges,
        page_info={
            "has_next_page": next_after is not None,
            "has_previous_page": after > 0,
            "start_cursor": edges[0]["cursor"] if edges else None,
            "end_cursor": cursor_of(AFFECTED, end) if end is not None else None,
        },
        others=[
            {"organisation": party(context, organisation), "definite_count": d, "potential_count": p}
            for organisation, d, p in others
        ],
    )


def _lot_rows(context: Context, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a lot shows beyond its identity (site, production window, cell model), by id."""
    found = {
        row["id"]: row
        for row in LotModel.objects.filter(pk__in=ids).values(
            "id", "owner_id", "site_id", "produced_from", "produced_to", "celllot__cell_model_id"
        )
    }
    sites_expected(context, (row["site_id"] for row in found.values()))
    cell_models_expected(context, (row["celllot__cell_model_id"] for row in found.values()))
    return found


def _inspections_of(context: Context, lot_ids: list[int]) -> dict[int, list[InspectionRow]]:
    found: dict[int, list[InspectionRow]] = {}
    for row in InspectionRow.objects.filter(lot_id__in=lot_ids).order_by("inspected_at", "pk"):
        found.setdefault(row.lot_id, []).append(row)
    organisations_expected(context, (row.owner_id for held in found.values() for row in held))
    sites_expected(context, (row.site_id for held in found.values() for row in held))
    return found


def lots_expected(context: Context, lots: Iterable[LotRoot]) -> None:
    """A list about to render these lots: what each shows is read in one batch per relation."""
    lots = list(lots)
    ids = [lot.id for lot in lots]
    loader(context, _lot_rows).expect(ids)
    loader(context, _inspections_of).expect(ids)
    organisations_expected(context, (lot.owner_id for lot in lots))
    certificates_expected(context, (lot.owner_id for lot in lots))


class Inspection(graphene.ObjectType):
    """An inspection result on a lot (X-ray / CT for debris, OCV, internal resistance…)."""

    method = graphene.String(required=True)
    outcome = graphene.String(required=True, description="pass, fail or inconclusive.")
    measurements = generic.GenericScalar(required=True, description="Measured values with units, as reported.")
    sample_size = graphene.Int()
    inspected_at = graphene.DateTime(required=True)
    inspected_by = graphene.NonNull(Organisation)
    site = graphene.Field(Site)

    @staticmethod
    def resolve_inspected_by(root: InspectionRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.owner_id)

    @staticmethod
    def resolve_site(root: InspectionRow, info: GraphQLResolveInfo) -> Any:
        return site(context_of(info), root.site_id)


class Lot(graphene.ObjectType):
    """A material, cell or module lot."""

    class Meta:
        interfaces = (relay.Node,)

    identity = graphene.String(required=True, description="Its EPC URN (an organisation's own lot code as it is).")
    code = graphene.String(required=True, description="The lot code, as printed.")
    kind = graphene.String(required=True, description="material, cell or module.")
    owner = graphene.Field(Organisation)
    site = graphene.Field(Site, description="Where it was made.")
    produced_from = graphene.DateTime()
    produced_to = graphene.DateTime()
    cell_model = graphene.Field(CellModel, description="A cell lot's cell model.")
    inspections = graphene.List(graphene.NonNull(Inspection), required=True, description="Oldest first.")
    certificates = graphene.List(
        graphene.NonNull(Certificate), required=True, description="The certificates its owner holds."
    )
    upstream = graphene.List(
        graphene.NonNull(lambda: Lot),
        required=True,
        description="Every lot it was made from, at any depth, nearest first (as a unit's upstream).",
    )
    events = events_field()
    downstream = graphene.Field(
        graphene.NonNull(AffectedUnitConnection),
        exposure=Exposure(),
        first=graphene.Int(),
        after=graphene.String(),
        description="The units made from this lot at any depth, at the ledger's current position.",
    )

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, LotRoot)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> LotRoot | None:
        pk = pk_of(id)
        found = LotModel.objects.filter(pk=pk).first() if pk is not None else None
        if found is None or not lot_traceable(context_of(info), found):
            return None
        return LotRoot.of(found)

    @staticmethod
    def resolve_identity(root: LotRoot, info: GraphQLResolveInfo) -> str:
        return context_of(info).epc(root.identity)

    @staticmethod
    def resolve_owner(root: LotRoot, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return root.owner if root.owner is not None else party(context_of(info), root.owner_id)

    @staticmethod
    def _row(root: LotRoot, info: GraphQLResolveInfo) -> dict[str, Any]:
        return loader(context_of(info), _lot_rows).load(root.id) or {}

    @staticmethod
    def resolve_site(root: LotRoot, info: GraphQLResolveInfo) -> Any:
        return site(context_of(info), Lot._row(root, info).get("site_id"))

    @staticmethod
    def resolve_produced_from(root: LotRoot, info: GraphQLResolveInfo) -> Any:
        return Lot._row(root, info).get("produced_from")

    @staticmethod
    def resolve_produced_to(root: LotRoot, info: GraphQLResolveInfo) -> Any:
        return Lot._row(root, info).get("produced_to")

    @staticmethod
    def resolve_cell_model(root: LotRoot, info: GraphQLResolveInfo) -> Any:
        return cell_model(context_of(info), Lot._row(root, info).get("celllot__cell_model_id"))

    @staticmethod
    def resolve_inspections(root: LotRoot, info: GraphQLResolveInfo) -> list[InspectionRow]:
        return loader(context_of(info), _inspections_of).load(root.id) or []

    @staticmethod
    def resolve_certificates(root: LotRoot, info: GraphQLResolveInfo) -> Any:
        return certificates_of(context_of(info), root.owner_id)

    @staticmethod
    def resolve_events(
        root: LotRoot, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
    ) -> Any:
        context = context_of(info)
        return events_of(context, context.epc(root.identity), of_class=True, first=first, after=after)

    @staticmethod
    def resolve_upstream(root: LotRoot, info: GraphQLResolveInfo) -> list[LotRoot]:
        context = context_of(info)
        lot = lot_row(context, root.id)
        if not upstream_traceable(context.actor, lot):
            raise InputError(f"no lot is known as {context.epc(lot.identity)!r}", code="unknown_subject")
        return upstream_lots(context, genealogy.upstream_read(subject=lot))

    @staticmethod
    def resolve_downstream(
        root: LotRoot,
        info: GraphQLResolveInfo,
        exposure: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Downstream:
        context = context_of(info)
        size, start = page_size(first), after_of(AFFECTED, after)
        lot = lot_row(context, root.id)
        if not lot_traceable(context, lot):  # a lot named on the way (a unit's upstream) the caller may not trace
            raise InputError(f"no lot is known as {context.epc(lot.identity)!r}", code="unknown_subject")
        # graphene hands an enum argument over as its member: the domain filters by the value
        kept = getattr(exposure, "value", exposure)
        # Only the counts asked (``downstream { totalCount }``): no page of units is read.
        if not selected(info, {"edges", "pageInfo"}):
            size = 0
        return downstream_read(context, lot, exposure=kept, first=size, after=start)


def upstream_lots(context: Context, upstream: genealogy.Upstream) -> list[LotRoot]:
    """The lots of a backward read model, with what each will show expected in one batch."""
    context.prefix_length.prepare(upstream.identities())
    lots = [
        LotRoot(found.lot.id, found.lot.identity, found.lot.code, found.lot.kind, found.supplier.id, found.supplier)
        for found in upstream.lots
    ]
    lots_expected(context, lots)
    return lots


class LotQuery(graphene.ObjectType):
    lot = graphene.Field(
        Lot,
        identifier=graphene.String(required=True),
        description="A lot by EPC URN, GS1 Digital Link, or your own lot code; null when unknown to you.",
    )

    @staticmethod
    def resolve_lot(root: None, info: GraphQLResolveInfo, identifier: str) -> LotRoot | None:
        found = lot_find(context_of(info), identifier)
        return LotRoot.of(found) if found is not None else None
