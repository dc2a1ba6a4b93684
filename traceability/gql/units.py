"""Units (power-bank serials): what they were made from, and their siblings.

``Unit.upstream`` is the backward read model the REST API renders (``genealogy.upstream_read``):
every lot at any depth. ``Unit.siblings`` pages ``genealogy.siblings_page`` among the units the
caller sees in full, as REST's siblings page does. A unit the caller may not trace backward (the
access policy's ``upstream_traceable``, as REST's ``unit_find`` asks) is null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import graphene
from django.db.models import Q
from graphene import relay
from graphql import GraphQLResolveInfo

from packs.models import Unit as UnitModel
from packs.models import UnitPacking as UnitPackingRow
from packs.models import WorkOrder as WorkOrderRow
from traceability import genealogy
from traceability.access.permissions import unit_find
from traceability.access.policy import units_readable, upstream_traceable
from traceability.core.limits import control_character
from traceability.gql.context import Context, InputError, context_of, pk_of, selected
from traceability.gql.events import events_field, events_of
from traceability.gql.loaders import loader
from traceability.gql.lots import Lot, LotRoot, upstream_lots
from traceability.gql.paging import after_of, cursor_of, page_size
from traceability.gql.parties import (
    Organisation,
    ProductModel,
    Site,
    organisations_expected,
    party,
    product_model,
    product_models_expected,
    site,
    sites_expected,
)
from traceability.investigations.selectors import Shipped, unit_shipments
from traceability.ledger.selectors import SubjectError, UnknownSubject

SIBLINGS = "UnitConnection"


@dataclass(frozen=True)
class UnitRoot:
    """A unit as the graph holds it: its key and identity (the rest is read when asked)."""

    id: int
    identity: str  # canonical
    serial: str
    gtin: str | None

    @classmethod
    def of(cls, unit: UnitModel) -> UnitRoot:
        return cls(unit.pk, unit.identity, unit.serial, unit.gtin)


def unit_traceable(context: Context, unit_id: int) -> UnitModel | None:
    """The unit, if the caller may trace it backward (``upstream_traceable``), asked once per unit
    and request; None otherwise. A regulator who sees all asks nothing more than the unit row."""
    key = ("unit-traceable", unit_id)
    if key not in context.memo:
        unit = UnitModel.objects.filter(pk=unit_id).first()
        context.memo[key] = unit if unit is not None and upstream_traceable(context.actor, unit) else None
    return context.memo[key]  # type: ignore[no-any-return]


def upstream_of(context: Context, unit: UnitModel) -> genealogy.Upstream:
    """The unit's backward read model (REST's ``backward``), read once per request."""
    key = ("upstream", unit.pk)
    if key not in context.memo:
        context.memo[key] = genealogy.upstream_read(subject=unit)
    return context.memo[key]  # type: ignore[no-any-return]


def _refused(context: Context, root: UnitRoot) -> InputError:
    return InputError(f"no unit is known as {context.epc(root.identity)!r}", code="unknown_subject")


def _unit_rows(context: Context, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a unit shows beyond its identity (owner, model, work order, site, production date), by id."""
    found = {
        row["id"]: row
        for row in UnitModel.objects.filter(pk__in=ids).values(
            "id", "owner_id", "product_model_id", "work_order_id", "site_id", "produced_at"
        )
    }
    rows = found.values()
    organisations_expected(context, (row["owner_id"] for row in rows))
    product_models_expected(context, (row["product_model_id"] for row in rows))
    loader(context, _work_orders_by_id).expect(row["work_order_id"] for row in rows if row["work_order_id"])
    sites_expected(context, (row["site_id"] for row in rows))
    return found


def _work_orders_by_id(context: Context, ids: list[int]) -> dict[int, WorkOrderRow]:
    found = WorkOrderRow.objects.in_bulk(ids)
    sites_expected(context, (row.site_id for row in found.values()))
    product_models_expected(context, (row.product_model_id for row in found.values()))
    return found


def _shipments_of(context: Context, ids: list[int]) -> dict[int, list[Shipped]]:
    """Who received each unit, loose or packed at any depth (the run pages' ``unit_shipments``)."""
    found = unit_shipments(ids)
    organisations_expected(context, (s.organisation_id for held in found.values() for s in held))
    return found


def _packing_of(context: Context, ids: list[int]) -> dict[int, list[UnitPackingRow]]:
    found: dict[int, list[UnitPackingRow]] = {}
    rows = UnitPackingRow.objects.filter(unit_id__in=ids).select_related("container").order_by("packed_at", "pk")
    for row in rows:
        found.setdefault(row.unit_id, []).append(row)
    context.prefix_length.prepare([row.container.identity for held in found.values() for row in held])
    return found


def units_expected(context: Context, ids: list[int]) -> None:
    """A list about to render these units: what each shows is read in one batch per relation (who
    received them only if a unit's ``shipments`` is asked for)."""
    for batch in (_unit_rows, _packing_of, _shipments_of):
        loader(context, batch).expect(ids)


class WorkOrder(graphene.ObjectType):
    """A work order: units of one product model made at one site."""

    number = graphene.String(required=True)
    product_model = graphene.NonNull(ProductModel)
    site = graphene.NonNull(Site)
    started_at = graphene.DateTime(required=True)
    finished_at = graphene.DateTime()

    @staticmethod
    def resolve_product_model(root: WorkOrderRow, info: GraphQLResolveInfo) -> Any:
        return product_model(context_of(info), root.product_model_id)

    @staticmethod
    def resolve_site(root: WorkOrderRow, info: GraphQLResolveInfo) -> Any:
        return site(context_of(info), root.site_id)


class Shipment(graphene.ObjectType):
    """A receipt of the unit: who received it (loose, or in a carton or pallet) and when."""

    consignee = graphene.NonNull(Organisation)
    shipped_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_consignee(root: Shipped, info: GraphQLResolveInfo) -> Any:
        return party(context_of(info), root.organisation_id)


class Packing(graphene.ObjectType):
    """The unit packed in a container (a carton: its SSCC), from when until when."""

    container = graphene.String(required=True, description="The container's EPC URN (SSCC) or own code.")
    kind = graphene.String(required=True, description="carton, pallet or other.")
    packed_at = graphene.DateTime(required=True)
    unpacked_at = graphene.DateTime()

    @staticmethod
    def resolve_container(root: UnitPackingRow, info: GraphQLResolveInfo) -> str:
        return context_of(info).epc(root.container.identity)

    @staticmethod
    def resolve_kind(root: UnitPackingRow, info: GraphQLResolveInfo) -> str:
        return root.container.kind


class UnitEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.NonNull(lambda: Unit)


class UnitConnection(graphene.ObjectType):
    """Units a page at a time, in unit order."""

    total_count = graphene.Int(required=True, description="How many units there are in all pages.")
    edges = graphene.List(graphene.NonNull(UnitEdge), required=True)
    page_info = graphene.NonNull(relay.PageInfo)


class Unit(graphene.ObjectType):
    """A power bank, by serial."""

    class Meta:
        interfaces = (relay.Node,)

    identity = graphene.String(required=True, description="Its EPC URN (an organisation's own serial as it is).")
    serial = graphene.String(required=True)
    gtin = graphene.String(description="The GTIN-14 of its product model, when it has one.")
    owner = graphene.NonNull(Organisation)
    product_model = graphene.NonNull(ProductModel)
    work_order = graphene.Field(WorkOrder)
    site = graphene.Field(Site, description="Where it was made.")
    produced_at = graphene.DateTime()
    packing = graphene.List(graphene.NonNull(Packing), required=True, description="The containers it was packed in.")
    shipments = graphene.List(
        graphene.NonNull(Shipment), required=True, description="Who received it, loose or packed, oldest first."
    )
    events = events_field()
    upstream = graphene.List(
        graphene.NonNull(Lot), required=True, description="Every lot it was made from, at any depth, nearest first."
    )
    investigations = graphene.List(
        graphene.NonNull("traceability.gql.investigations.Investigation"),
        required=True,
        description=(
            "The investigations you read (yours, or those your grants cover) whose finding names this unit or"
            " a lot it was made from, at any depth; newest first. Findings on a supplier or a site are not counted."
        ),
    )
    siblings = graphene.Field(
        graphene.NonNull(UnitConnection),
        first=graphene.Int(),
        after=graphene.String(),
        description="The units sharing a direct input lot with it (of those you see in full).",
    )

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, UnitRoot)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> UnitRoot | None:
        pk = pk_of(id)
        found = unit_traceable(context_of(info), pk) if pk is not None else None
        return UnitRoot.of(found) if found is not None else None

    @staticmethod
    def resolve_identity(root: UnitRoot, info: GraphQLResolveInfo) -> str:
        return context_of(info).epc(root.identity)

    @staticmethod
    def _row(root: UnitRoot, info: GraphQLResolveInfo) -> dict[str, Any]:
        return loader(context_of(info), _unit_rows).load(root.id) or {}

    @staticmethod
    def resolve_owner(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return party(context_of(info), Unit._row(root, info).get("owner_id"))

    @staticmethod
    def resolve_product_model(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return product_model(context_of(info), Unit._row(root, info).get("product_model_id"))

    @staticmethod
    def resolve_work_order(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        pk = Unit._row(root, info).get("work_order_id")
        return loader(context_of(info), _work_orders_by_id).load(pk) if pk is not None else None

    @staticmethod
    def resolve_site(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return site(context_of(info), Unit._row(root, info).get("site_id"))

    @staticmethod
    def resolve_produced_at(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return Unit._row(root, info).get("produced_at")

    @staticmethod
    def resolve_packing(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return loader(context_of(info), _packing_of).load(root.id) or []

    @staticmethod
    def resolve_shipments(root: UnitRoot, info: GraphQLResolveInfo) -> Any:
        return loader(context_of(info), _shipments_of).load(root.id) or []

    @staticmethod
    def resolve_events(
        root: UnitRoot, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
    ) -> Any:
        context = context_of(info)
        return events_of(context, context.epc(root.identity), of_class=False, first=first, after=after)

    @staticmethod
    def resolve_upstream(root: UnitRoot, info: GraphQLResolveInfo) -> list[LotRoot]:
        context = context_of(info)
        unit = unit_traceable(context, root.id)
        if unit is None:
            raise _refused(context, root)
        return upstream_lots(context, upstream_of(context, unit))

    @staticmethod
    def resolve_investigations(root: UnitRoot, info: GraphQLResolveInfo) -> list[Any]:
        from traceability.gql.investigations import investigations_expected, investigations_of

        context = context_of(info)
        unit = unit_traceable(context, root.id)
        if unit is None:
            raise _refused(context, root)
        lots = [found.lot.id for found in upstream_of(context, unit).lots]
        named = Q(finding__subject_unit_id=unit.pk) | Q(finding__subject_lot_id__in=lots)
        found = list(investigations_of(context.actor).filter(named).order_by("-opened_at", "-pk"))
        investigations_expected(context, found)
        return found

    @staticmethod
    def resolve_siblings(
        root: UnitRoot, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
    ) -> dict[str, Any]:
        context = context_of(info)
        size, start = page_size(first), after_of(SIBLINGS, after)
        unit = unit_traceable(context, root.id)
        if unit is None:
            raise _refused(context, root)
        visible = UnitModel.objects.filter(units_readable(context.actor))
        snapshot = genealogy.ledger_snapshot()  # the count and the page at one ledger position
        edges: list[dict[str, Any]] = []
        next_after: int | None = None
        if size and selected(info, {"edges", "pageInfo"}):
            page = genealogy.siblings_page(unit=unit, visible_units=visible, after=start, limit=size, snapshot=snapshot)
            context.prefix_length.prepare(page.identities())
            edges = [
                {
                    "cursor": cursor_of(SIBLINGS, s.unit.id),
                    "node": UnitRoot(s.unit.id, s.unit.identity, s.unit.serial, s.unit.gtin),
                }
                for s in page.siblings
            ]
            next_after = page.next_after
            units_expected(context, [edge["node"].id for edge in edges])
        total = (
            genealogy.siblings_count(snapshot=snapshot, unit_id=unit.pk, among=visible)
            if selected(info, {"totalCount"})
            else 0  # not asked: not counted
        )
        return {
            "total_count": total,
            "edges": edges,
            "page_info": {
                "has_next_page": next_after is not None,
                "has_previous_page": start > 0,
                "start_cursor": edges[0]["cursor"] if edges else None,
                "end_cursor": edges[-1]["cursor"] if edges else None,
            },
        }


class UnitQuery(graphene.ObjectType):
    unit = graphene.Field(
        Unit,
        identifier=graphene.String(required=True),
        description="A unit by EPC URN, GS1 Digital Link, or your own serial; null when unknown to you.",
    )

    @staticmethod
    def resolve_unit(root: None, info: GraphQLResolveInfo, identifier: str) -> UnitRoot | None:
        context = context_of(info)
        if found := control_character(identifier):
            raise InputError(
                f"identifier contains the control character U+{ord(found):04X}",
                code="control_character",
                field="identifier",
            )
        try:
            unit = unit_find(ident=identifier, caller=context.caller)
        except UnknownSubject:
            return None
        except SubjectError as refused:
            raise InputError(refused.message, code=refused.code, field="identifier") from None
        context.memo[("unit-traceable", unit.pk)] = unit
        if selected(info, {"upstream"}):
            # Read now, so that the unit's identity and its lots' are prepared in one query, as REST's
            # backward page prepares them (the unit's ``identity`` is resolved before ``upstream``).
            context.prefix_length.prepare(upstream_of(context, unit).identities())
        return UnitRoot.of(unit)
