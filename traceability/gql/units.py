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
from graphene import relay
from graphql import GraphQLResolveInfo

from packs.models import Unit as UnitModel
from traceability import genealogy
from traceability.access.permissions import unit_find
from traceability.access.policy import units_readable, upstream_traceable
from traceability.core.limits import control_character
from traceability.gql.context import Context, InputError, context_of, pk_of
from traceability.gql.lots import Lot, LotRoot
from traceability.gql.paging import after_of, cursor_of, page_size
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


def _refused(context: Context, root: UnitRoot) -> InputError:
    return InputError(f"no unit is known as {context.epc(root.identity)!r}", code="unknown_subject")


class UnitEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.NonNull(lambda: Unit)


class UnitConnection(graphene.ObjectType):
    """Units a page at a time, in unit order."""

    edges = graphene.List(graphene.NonNull(UnitEdge), required=True)
    page_info = graphene.NonNull(relay.PageInfo)


class Unit(graphene.ObjectType):
    """A power bank, by serial."""

    class Meta:
        interfaces = (relay.Node,)

    identity = graphene.String(required=True, description="Its EPC URN (an organisation's own serial as it is).")
    serial = graphene.String(required=True)
    gtin = graphene.String(description="The GTIN-14 of its product model, when it has one.")
    upstream = graphene.List(
        graphene.NonNull(Lot), required=True, description="Every lot it was made from, at any depth, nearest first."
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
    def resolve_upstream(root: UnitRoot, info: GraphQLResolveInfo) -> list[LotRoot]:
        context = context_of(info)
        unit = unit_traceable(context, root.id)
        if unit is None:
            raise _refused(context, root)
        upstream = genealogy.upstream_read(subject=unit)
        context.prefix_length.prepare(upstream.identities())
        return [
            LotRoot(found.lot.id, found.lot.identity, found.lot.code, found.lot.kind, found.supplier.id, found.supplier)
            for found in upstream.lots
        ]

    @staticmethod
    def resolve_siblings(
        root: UnitRoot, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
    ) -> dict[str, Any]:
        context = context_of(info)
        size, start = page_size(first), after_of(SIBLINGS, after)
        unit = unit_traceable(context, root.id)
        if unit is None:
            raise _refused(context, root)
        edges: list[dict[str, Any]] = []
        next_after: int | None = None
        if size:
            page = genealogy.siblings_page(
                unit=unit,
                visible_units=UnitModel.objects.filter(units_readable(context.actor)),
                after=start,
                limit=size,
            )
            context.prefix_length.prepare(page.identities())
            edges = [
                {
                    "cursor": cursor_of(SIBLINGS, s.unit.id),
                    "node": UnitRoot(s.unit.id, s.unit.identity, s.unit.serial, s.unit.gtin),
                }
                for s in page.siblings
            ]
            next_after = page.next_after
        return {
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
        return UnitRoot.of(unit)
