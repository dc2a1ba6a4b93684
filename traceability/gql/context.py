"""What every resolver of one request shares: who calls, and the request's caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)

from traceability.access.permissions import Caller
from traceability.access.policy import Actor
from traceability.ledger.selectors import PrefixLength, identifier_or_none


@dataclass
class Context:
    """The GraphQL context of one request: the caller the access policy knows (``Caller``, read once
    as the REST API reads it) and the company-prefix lengths identities are written with."""

    request: HttpRequest
    caller: Caller
    prefix_length: PrefixLength = field(default_factory=PrefixLength)
    # Per-request memo of reads several fields ask for (a lot's forward trace, a policy answer).
    memo: dict[Any, Any] = field(default_factory=dict)
    urns: dict[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        return self.caller.actor

    def epc(self, canonical: str) -> str:
        """A stored identity as its EPC URN; an organisation's own code, or a GS1 key whose company
        prefix length is unknown (no URN can be written without guessing), as the stored identity.
        Each written once per request: a page's paths name the same lots on every edge."""
        written = self.urns.get(canonical)
        if written is None:
            # An identity no list prepared (a root lookup's): its prefixes by the index, never the
            # whole prefix table (11 ms on the bench world, and it grows with the ledger).
            self.prefix_length.prepare([canonical])
            written = self.urns[canonical] = (
                identifier_or_none(canonical, form="epc", prefix_length=self.prefix_length) or canonical
            )
        return written


def context_of(info: GraphQLResolveInfo) -> Context:
    return info.context  # type: ignore[no-any-return]


class InputError(GraphQLError):
    """A refused argument: a message for people and a stable code (``extensions.code``), as the
    REST API's errors carry one."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message, extensions={"code": code, **({"field": field} if field else {})})


# The database's largest id (PostgreSQL's bigint): an id past it names nothing, and asking for it
# would overflow the column's type instead of answering "unknown".
ID_MAX = 9_223_372_036_854_775_807


def pk_of(text: str) -> int | None:
    """The primary key a Relay id's second part names, or None when it names none."""
    if not text.isascii() or not text.isdigit():
        return None
    pk = int(text)
    return pk if 0 < pk <= ID_MAX else None


def selected(info: GraphQLResolveInfo, names: set[str]) -> bool:
    """Whether the field being resolved selects any of ``names`` directly (through fragments too)."""

    def scan(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> bool:
        for selection in selection_set.selections if selection_set is not None else ():
            if isinstance(selection, FieldNode) and selection.name.value in names:
                return True
            if isinstance(selection, InlineFragmentNode) and scan(selection.selection_set, seen):
                return True
            if isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = info.fragments.get(selection.name.value)
                if fragment is not None and scan(fragment.selection_set, seen | {selection.name.value}):
                    return True
        return False

    return any(scan(node.selection_set, frozenset()) for node in info.field_nodes)
