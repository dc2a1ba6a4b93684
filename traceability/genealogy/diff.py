"""What changed between two traces of the same subject: units added, removed, or changed exposure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from traceability.genealogy.affected import segment_exposures
from traceability.genealogy.counts import segment_sizes, segments_written_by
from traceability.genealogy.forward import Forward
from traceability.genealogy.models import (
    SegmentMember,
)


@dataclass(frozen=True)
class Diff:
    added: list[int]
    gone: list[int]
    exposure_changed: list[int]


def forward_diff(previous: Forward, current: Forward) -> Diff:
    """Units added, gone and with a changed exposure between two results, set-based.

    A segment reached with the same exposure by both, whose rows count the same at both
    positions, holds the same units at the same exposure in both; and a unit with rows only in
    such segments cannot have changed. So only the units of the other segments (and the units
    reached through unit links) are compared, row by row: the cost is the change, not the result.
    """
    a, b = previous.snapshot, current.snapshot
    changed_records = a.retracted ^ b.retracted
    low = min(a.last_transformation_id, b.last_transformation_id)
    both = previous.segments.keys() & current.segments.keys()
    settled = {
        segment
        for segment, (last, touched) in segment_changes(both, changed_records).items()
        if previous.segments[segment].definite == current.segments[segment].definite and last <= low and not touched
    }
    changing = sorted((previous.segments.keys() | current.segments.keys()) - settled)
    candidates = set(previous.units) | set(current.units)
    for start in range(0, len(changing), 500):
        rows = SegmentMember.objects.filter(segment_id__any=frozenset(changing[start : start + 500])).values_list(
            "unit_id", flat=True
        )
        candidates.update(rows.order_by())
    before, after = best_exposures(previous, candidates), best_exposures(current, candidates)
    return Diff(
        added=sorted(after.keys() - before.keys()),
        gone=sorted(before.keys() - after.keys()),
        exposure_changed=sorted(u for u in after.keys() & before.keys() if after[u] != before[u]),
    )


def segment_changes(segment_ids: Iterable[int], records: frozenset[int]) -> dict[int, tuple[int, bool]]:
    """Per segment: its newest record, and whether a record retracted in one snapshot only wrote it."""
    touched = segments_written_by(records)
    ids = sorted(segment_ids)
    lasts = {segment: last for segment, (_, last) in segment_sizes(ids).items()}
    return {segment: (lasts.get(segment, 0), segment in touched) for segment in ids}


def best_exposures(forward: Forward, unit_ids: set[int]) -> dict[int, bool]:
    """Each of ``unit_ids`` that ``forward`` reaches, with its best exposure (True: definite)."""
    best = segment_exposures(forward, unit_ids)
    for unit, reached in forward.units.items():
        best[unit] = best.get(unit, False) or reached.definite
    return best
