"""EPCIS events of one object (a lot's class, a unit's serial), from the EPCIS query interface's
read model (``traceability.events.queries``), as ``GET /epcis/events?MATCH_anyEPC=…`` answers them.

Who reads what is the query interface's: a regulator who sees all reads every event whole; any
other organisation the events it captured, and of others' events only the part naming what it owns
or received (``reader_of``, ``readable_events``). Identifiers are written as EPC URNs. A page is
``first`` events (at most ``EVENTS_MAX``) in capture order; its cursor is the query interface's
signed page token.
"""

from __future__ import annotations

from typing import Any

import graphene
from graphene import relay
from graphene.types import generic

from traceability.access.policy import event_reader
from traceability.events import queries
from traceability.gql.context import Context, InputError
from traceability.gql.paging import page_size

EVENTS_MAX = 1_000


class EventEdge(graphene.ObjectType):
    cursor = graphene.String(required=True, description="The page's end cursor (the query interface's page token).")
    node = generic.GenericScalar(
        required=True, description="The event in EPCIS 2.0 JSON, as the query interface gives it."
    )


class EventConnection(graphene.ObjectType):
    """EPCIS events naming an object, in capture order."""

    edges = graphene.List(graphene.NonNull(EventEdge), required=True)
    page_info = graphene.NonNull(relay.PageInfo)


def events_of(context: Context, urn: str, *, of_class: bool, first: int | None, after: str | None) -> dict[str, Any]:
    """A page of the events naming ``urn`` (an instance, or with ``of_class`` a lot's class) as the
    caller may read them."""
    size = page_size(first)
    caller = context.caller
    # Who reads which events is the access policy's answer, as the EPCIS query interface asks it.
    reader = None if caller.sees_all else event_reader(context.actor, caller.organisation)  # type: ignore[arg-type]
    params = {"MATCH_anyEPCClass" if of_class else "MATCH_anyEPC": urn, "perPage": str(max(size, 1))}
    if after:
        params["nextPageToken"] = after
    try:
        query = queries.events_query(params, visible=queries.readable_events(reader), reader=reader)
        page = queries.events_page(
            query, params, epc_format="Always_EPC_URN", prefix_length=context.prefix_length, reader=reader
        )
    except queries.QueryError as refused:
        field = "after" if refused.parameter == "nextPageToken" else "first"
        raise InputError(str(refused), code="invalid_cursor" if field == "after" else "invalid", field=field) from None
    events = page.events if size else []
    return {
        "edges": [{"cursor": page.next_token or "", "node": event} for event in events],
        "page_info": {
            "has_next_page": page.next_token is not None,
            "has_previous_page": bool(after),
            "start_cursor": after,
            "end_cursor": page.next_token,
        },
    }


def events_field() -> graphene.Field:
    return graphene.Field(
        graphene.NonNull(EventConnection),
        first=graphene.Int(),
        after=graphene.String(description="pageInfo.endCursor of the previous page."),
        description="The EPCIS events naming it, as the EPCIS query interface shows them to you.",
    )
