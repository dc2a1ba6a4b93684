"""Relay paging: ``first`` (at most ``MAX_FIRST``) and opaque cursors, for every connection.

A cursor is the base64 of ``<connection>:<unit id>``: the connections page in unit id order, from
the domain's keyset pages (``after`` a unit id), so a cursor stays valid as the ledger grows and a
page costs the same at any depth.
"""

from __future__ import annotations

import base64
import binascii

from traceability.gql.context import ID_MAX, InputError

DEFAULT_FIRST = 100
MAX_FIRST = 1_000


def page_size(first: int | None) -> int:
    """``first`` as asked, checked: 1 to ``MAX_FIRST``; ``DEFAULT_FIRST`` when not given."""
    if first is None:
        return DEFAULT_FIRST
    if first < 0:
        raise InputError(f"first is {first}: it may not be negative", code="invalid_first", field="first")
    if first > MAX_FIRST:
        raise InputError(
            f"first is {first:,}: a page holds at most {MAX_FIRST:,} (follow pageInfo.endCursor for more)",
            code="first_too_large",
            field="first",
        )
    return first


def cursor_of(connection: str, unit_id: int) -> str:
    return base64.b64encode(f"{connection}:{unit_id}".encode()).decode()


def after_of(connection: str, cursor: str | None) -> int:
    """The unit id a cursor of ``connection`` stands for (0: from the start)."""
    if cursor is None:
        return 0
    refused = InputError(
        f"after is not a cursor of this connection: pass the cursor or pageInfo.endCursor a page of {connection} gave",
        code="invalid_cursor",
        field="after",
    )
    try:
        decoded = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise refused from None
    named, _, unit = decoded.partition(":")
    if named != connection or not unit.isdigit() or not 0 <= int(unit) <= ID_MAX:
        raise refused
    return int(unit)
