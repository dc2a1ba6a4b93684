"""The GraphQL contract is the reviewed file schema.graphql: the code must serve exactly it."""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from graphql import print_schema

from traceability.gql.schema import schema

SNAPSHOT = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_the_schema_served_is_the_reviewed_snapshot():
    served = print_schema(schema.graphql_schema)
    assert SNAPSHOT.read_text() == served, (
        "the GraphQL schema differs from schema.graphql: review the change, then write it with"
        " `python manage.py graphql_schema`"
    )


def test_graphql_schema_writes_the_snapshot_where_settings_say(tmp_path, settings):
    settings.GRAPHENE = {**settings.GRAPHENE, "SCHEMA_OUTPUT": str(tmp_path / "schema.graphql")}
    call_command("graphql_schema", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (tmp_path / "schema.graphql").read_text() == SNAPSHOT.read_text()


def test_the_fixed_contract_is_in_the_snapshot():
    """The issue's fixed part, type by type: further fields may be added, these may not change."""
    sdl = SNAPSHOT.read_text()
    for line in (
        "lot(identifier: String!): Lot",
        "unit(identifier: String!): Unit",
        'node(\n    """The ID of the object"""\n    id: ID!\n  ): Node',
        "type Lot implements Node",
        "identity: String!",
        "owner: Organisation",
        "downstream(exposure: Exposure, first: Int, after: String): AffectedUnitConnection!",
        "type Unit implements Node",
        "upstream: [Lot!]!",
        "siblings(first: Int, after: String): UnitConnection!",
        "totalCount: Int!",
        "definiteCount: Int!",
        "potentialCount: Int!",
        "edges: [AffectedUnitEdge!]!",
        "pageInfo: PageInfo!",
        "node: AffectedUnit!",
        "unit: Unit!",
        "exposure: Exposure!",
        "path: [PathStep!]!",
        "enum Exposure {\n  DEFINITE\n  POTENTIAL\n}",
        "startInquiry(",
        "): StartInquiryPayload",
    ):
        assert line in sdl, line
