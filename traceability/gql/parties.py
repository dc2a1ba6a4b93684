"""Organisations: the parties of the directory (who made a lot, who received a unit).

An organisation's name, slug and roles are the directory's, not the ledger's secrets: any signed-in
caller may read them (the access policy treats a supplier as a subject anyone may name,
``subject_traceable``); what each one made or received is answered by the fields that trace.
"""

from __future__ import annotations

from typing import Any

import graphene
from graphene import relay
from graphql import GraphQLResolveInfo

from suppliers.models import Organisation as OrganisationModel
from traceability import genealogy


class Organisation(graphene.ObjectType):
    """An organisation: a supplier, a brand, a distributor, a regulator."""

    class Meta:
        interfaces = (relay.Node,)

    slug = graphene.String(required=True)
    name = graphene.String(required=True)
    roles = graphene.List(graphene.NonNull(graphene.String), required=True, description="Its roles, e.g. cell_maker.")
    pgln = graphene.String(description="Its party GLN (13 digits), when it has one.")

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, genealogy.Party)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> genealogy.Party | None:
        if not id.isdigit():
            return None
        found = OrganisationModel.objects.prefetch_related("roles").filter(pk=int(id)).first()
        return genealogy.party_of(found) if found is not None else None

    @staticmethod
    def resolve_roles(root: genealogy.Party, info: GraphQLResolveInfo) -> list[str]:
        return list(root.roles)
