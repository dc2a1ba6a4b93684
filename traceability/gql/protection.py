"""What one GraphQL operation may ask, measured before it runs: its depth and its cost.

Both are read from the parsed, validated document (fragments expanded, variables applied), so an
operation over a limit is refused before any resolver reads the database, with an error naming the
limit. Introspection (``__schema``, ``__type``, ``__typename``) reads only the schema and counts
for neither: GraphiQL's own introspection query nests ``ofType`` eight levels deep.

Cost (Saleor's and GitHub's habit): each field costs 1, plus its own weight when it runs a trace
(``FIELD_WEIGHTS``); a connection's selections count once per unit of ``first`` (``DEFAULT_FIRST``
when not given); another list's selections ``LIST_WEIGHT`` times (a unit's upstream lots, a path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast,
)

from traceability.gql.paging import DEFAULT_FIRST

MAX_DEPTH = 12
MAX_COST = 50_000
LIST_WEIGHT = 5
# Fields that run a trace or a page of one (a backward or forward trace is several queries), an EPCIS
# events query, and the root lookups, which ask the access policy (for a party, whether a lot reaches
# it: a forward trace). Asked per item of a list, these are a read per item (no batch reads a trace
# or an events page for many objects): their weight keeps such a page small.
FIELD_WEIGHTS = {
    ("Unit", "upstream"): 50,
    ("Lot", "downstream"): 50,
    ("Lot", "upstream"): 50,
    ("Lot", "events"): 50,
    ("Unit", "events"): 50,
    ("Unit", "investigations"): 50,
    ("Unit", "siblings"): 20,
    ("Query", "lot"): 50,
    ("Query", "unit"): 20,
    ("Query", "node"): 20,
}
# A document longer than this many tokens is refused as it is parsed: validating one costs time in
# its length (4,000 aliased lookups, 127 kB, took 3.4 s to validate), before any limit is measured.
# GraphiQL's introspection query is about 300 tokens; a page of a thousand units is asked in a few dozen.
MAX_TOKENS = 20_000


class LimitExceeded(GraphQLError):
    def __init__(self, message: str, *, code: str, limit: int, measured: int) -> None:
        super().__init__(message, extensions={"code": code, "limit": limit, "measured": measured})


@dataclass(frozen=True)
class Measure:
    depth: int
    cost: int


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, seen: frozenset[str]
    ) -> Measure:
        """The deepest and the summed cost of a selection set on ``parent``."""
        depth = cost = 0
        if selection_set is None:
            return Measure(0, 0)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = self.field(selection, parent, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                found = self.selections(selection.selection_set, on or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # validation refuses both; measured as nothing
                    continue
                on = self.schema.get_type(fragment.type_condition.name.value) or parent
                found = self.selections(fragment.selection_set, on, seen | {name})
            else:  # pragma: no cover - graphql-core knows no other selection
                continue
            depth, cost = max(depth, found.depth), cost + found.cost
        return Measure(depth, cost)

    def field(self, node: FieldNode, parent: GraphQLNamedType, seen: frozenset[str]) -> Measure:
        name = node.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return Measure(0, 0)
        definition = parent.fields.get(name)
        if definition is None:
            return Measure(0, 0)
        named = get_named_type(definition.type)
        inner = self.selections(node.selection_set, named, seen)
        weight = 1 + FIELD_WEIGHTS.get((parent.name, name), 0)
        if named.name.endswith("Connection"):
            return Measure(1 + inner.depth, weight + self.first(node) * inner.cost)
        if _is_list(definition.type) and not parent.name.endswith("Connection"):
            return Measure(1 + inner.depth, weight + LIST_WEIGHT * inner.cost)
        return Measure(1 + inner.depth, weight + inner.cost)

    def first(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value == "first":
                value = value_from_ast(argument.value, GraphQLInt, self.variables)
                return value if isinstance(value, int) and value >= 0 else DEFAULT_FIRST
        return DEFAULT_FIRST


def _is_list(kind: Any) -> bool:
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> Measure:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Measure(0, 0)
    return _Walk(schema, fragments, variables).selections(operation.selection_set, root, frozenset())


def limits_refusal(found: Measure) -> LimitExceeded | None:
    """The error an operation over a limit gets, or None."""
    if found.depth > MAX_DEPTH:
        return LimitExceeded(
            f"the query nests {found.depth} fields deep: the depth limit is {MAX_DEPTH}",
            code="query_too_deep",
            limit=MAX_DEPTH,
            measured=found.depth,
        )
    if found.cost > MAX_COST:
        return LimitExceeded(
            f"the query costs {found.cost:,}: the cost limit is {MAX_COST:,} (each field costs 1, a trace more,"
            " and a connection's fields count once per item of first: ask smaller pages)",
            code="query_too_costly",
            limit=MAX_COST,
            measured=found.cost,
        )
    return None
