"""A ledger position to read the genealogy at.

Every read is taken *at a ledger position* (a ``Snapshot``): a record counts when it was recorded
at or before the position and had not been retracted by then. Because ledger writes are
serialised and transformation ids grow with position, "recorded at or before P" is
"transformation id <= the last id recorded at P", which SegmentMember's primary key answers in an
index-only scan; the retracted ids are few and are passed as constants.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q

from traceability.core.db import any_sql
from traceability.genealogy.models import (
    Transformation,
)
from traceability.ledger.models import LedgerHead


@dataclass(frozen=True)
class Snapshot:
    position: int
    last_transformation_id: int
    retracted: frozenset[int] = field(default_factory=frozenset)

    def valid(self, prefix: str = "transformation") -> Q:
        """Rows whose transformation counts at this position (``prefix`` names the FK path)."""
        condition = Q(**{f"{prefix}_id__lte": self.last_transformation_id})
        if self.retracted:
            condition &= ~Q(**{f"{prefix}_id__in": sorted(self.retracted)})
        return condition

    def valid_sql(self, column: str) -> tuple[str, list]:
        """``valid`` for hand-written SQL: ``column`` names the transformation id."""
        sql, params = f"{column} <= %s", [self.last_transformation_id]
        if self.retracted:
            retracted, more = any_sql(column, self.retracted, connection)
            sql, params = f"{sql} AND NOT ({retracted})", [*params, *more]
        return sql, params


def ledger_snapshot(position: int | None = None) -> Snapshot:
    """The ledger as it stood at ``position`` (default: now). One query: every request that reads
    the genealogy starts here."""
    at, params = ("%s", [position]) if position is not None else (_HEAD_POSITION, [])
    records = Transformation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, {at}"
            f" UNION ALL SELECT 1, MAX(id) FROM {records} WHERE recorded_position_id <= {at}"
            f" UNION ALL SELECT 2, id FROM {records} WHERE retracted_position_id <= {at}",
            params * 3,
        )
        rows = cursor.fetchall()
    values: dict[int, list[int]] = defaultdict(list)
    for what, value in rows:
        values[what].append(value)
    return Snapshot(
        position=values[0][0],
        last_transformation_id=values[1][0] or 0,
        retracted=frozenset(values[2]),
    )


_HEAD_POSITION = f"COALESCE((SELECT position FROM {LedgerHead._meta.db_table} WHERE id = 1), 0)"
