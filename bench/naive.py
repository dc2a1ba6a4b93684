"""The naive forward trace most code would write: a Django ORM loop, one query per lot and per unit.

For each lot reached: fetch the lot, its outgoing LotLinks (one query) and the segments it feeds
(one query); for each new segment fetch its members (one query), then each member's Unit (one query
per unit) and write the unit id to a result table (one INSERT per unit). All in one transaction, so
the loop is not also paying for a commit per row. Timed once: it is slow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class NaiveRun:
    lot_id: int
    units: int
    queries: int
    ms: float


def naive_trace(lot_id: int) -> NaiveRun:
    from django.db import connection, transaction

    from cells.models import Lot
    from packs.models import Unit
    from traceability.genealogy.models import LotLink, SegmentInput, SegmentMember

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_naive_result (unit_id bigint)")
        cursor.execute("TRUNCATE bench_naive_result")

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()
    with connection.execute_wrapper(count), transaction.atomic(), connection.cursor() as cursor:
        seen_lots, seen_segments, affected = {lot_id}, set(), set()
        queue = [lot_id]
        while queue:
            lot = Lot.objects.get(pk=queue.pop())
            for link in LotLink.objects.filter(input_lot=lot):
                if link.output_lot_id not in seen_lots:
                    seen_lots.add(link.output_lot_id)
                    queue.append(link.output_lot_id)
            for segment_input in SegmentInput.objects.filter(lot=lot):
                if segment_input.segment_id in seen_segments:
                    continue
                seen_segments.add(segment_input.segment_id)
                for member in SegmentMember.objects.filter(segment_id=segment_input.segment_id):
                    unit = Unit.objects.get(pk=member.unit_id)
                    if unit.pk not in affected:
                        affected.add(unit.pk)
                        cursor.execute("INSERT INTO bench_naive_result (unit_id) VALUES (%s)", [unit.pk])
    ms = (time.perf_counter() - started) * 1000
    return NaiveRun(lot_id=lot_id, units=len(affected), queries=queries, ms=ms)
