"""What every resolver of one request shares: who calls, and the request's caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from graphql import GraphQLError, GraphQLResolveInfo

from traceability.access.permissions import Caller
from traceability.access.policy import Actor
from traceability.ledger.selectors import PrefixLength, identifier_links


@dataclass
class Context:
    """The GraphQL context of one request: the caller the access policy knows (``Caller``, read once
    as the REST API reads it) and the company-prefix lengths identities are written with."""

    request: HttpRequest
    caller: Caller
    prefix_length: PrefixLength = field(default_factory=PrefixLength)
    # Per-request memo of reads several fields ask for (a lot's forward trace, a policy answer).
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        return self.caller.actor

    def epc(self, canonical: str) -> str:
        """A stored identity as its EPC URN; an organisation's own code, or a GS1 key whose company
        prefix length is unknown (no URN can be written without guessing), as the stored identity."""
        return identifier_links(canonical, prefix_length=self.prefix_length)["epc"] or canonical


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
