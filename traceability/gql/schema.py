"""The GraphQL schema: the domains' queries and mutations composed, nothing more.

Its SDL is kept at the repository's root in ``schema.graphql`` (``manage.py graphql_schema``), and
tests/test_gql_schema.py fails when the code and that file disagree: every change to the contract
is a change to a reviewed file.
"""

from __future__ import annotations

import graphene
from graphene import relay

from traceability.gql.investigation_writes import InvestigationMutation
from traceability.gql.investigations import Investigation, InvestigationQuery, TraceRun
from traceability.gql.lots import LotQuery
from traceability.gql.parties import CellModel, Certificate, Organisation, PartyQuery, ProductModel, Site
from traceability.gql.units import UnitQuery


class Query(LotQuery, UnitQuery, InvestigationQuery, PartyQuery, graphene.ObjectType):
    node = relay.Node.Field()


class Mutation(InvestigationMutation, graphene.ObjectType):
    pass


schema = graphene.Schema(
    query=Query,
    mutation=Mutation,
    types=[Organisation, Site, Certificate, ProductModel, CellModel, Investigation, TraceRun],
)
