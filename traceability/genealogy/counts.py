"""How many units a forward trace reaches, definite and potential: sums per segment, settled exactly
where a segment's rows are not all valid or a unit is counted twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

from traceability.genealogy.affected import segment_exposures
from traceability.genealogy.forward import Forward, members
from traceability.genealogy.models import (
    RepeatedUnit,
    Segment,
    Transformation,
)

REPEATED_AS_CONSTANTS = 20_000


@dataclass(frozen=True)
class Sums:
    """How to count a forward result's segments at its snapshot without visiting every member.

    ``clean`` segments have every member row valid at the snapshot, so their stored totals are
    exact row counts; ``dirty`` ones (rows recorded after the snapshot, or by a record retracted by
    then) are counted row by row. Rows are not yet units: ``repeated`` holds the valid rows, in the
    reached segments, of units with more than one member row or packing, which the sums counted
    once per row; the callers settle those few units exactly.
    """

    clean: dict[int, int]
    dirty: list[int]
    repeated: dict[int, list[int]]  # unit -> the reached segments of its valid rows, one entry per row


def sums_of(forward: Forward) -> Sums:
    if forward.sums is None:
        forward.sums = _sums_read(forward)
    return forward.sums


def _sums_read(forward: Forward) -> Sums:
    snapshot, segment_ids = forward.snapshot, forward.segment_ids()
    if not segment_ids:
        return Sums({}, [], {})
    sizes = forward.sizes
    if sizes is None or not sizes.keys() >= forward.segments.keys():
        sizes = segment_sizes(segment_ids)
    retracted_in = segments_written_by(snapshot.retracted)
    clean, dirty = {}, []
    for segment in segment_ids:
        count, last = sizes.get(segment, (0, 0))
        if last > snapshot.last_transformation_id or segment in retracted_in:
            dirty.append(segment)
        else:
            clean[segment] = count
    repeated: dict[int, list[int]] = defaultdict(list)
    # Repeated units are few: as constants the members' unit index is probed for each; when there
    # are many, the database joins them.
    few = list(RepeatedUnit.objects.values_list("unit_id", flat=True)[: REPEATED_AS_CONSTANTS + 1])
    if not few:
        return Sums(clean, dirty, {})
    if len(few) <= REPEATED_AS_CONSTANTS:
        rows = members(snapshot, segment_ids).filter(unit_id__any=frozenset(few))
    else:
        rows = members(snapshot, segment_ids).filter(unit_id__in=RepeatedUnit.objects.values("unit_id"))
    for unit, segment in rows.values_list("unit_id", "segment_id"):
        repeated[unit].append(segment)
    return Sums(clean, dirty, dict(repeated))


def segment_sizes(segment_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Segment -> (unit_count, last_transformation_id): one query, the ids as one parameter."""
    rows = Segment.objects.filter(pk__any=frozenset(segment_ids)).values_list(
        "pk", "unit_count", "last_transformation_id"
    )
    return {
        segment: (count, last)
        for segment, count, last in rows.values_list("pk", "unit_count", "last_transformation_id")
    }


def segments_written_by(records: Iterable[int]) -> set[int]:
    ids = sorted(records)
    if not ids:
        return set()
    return set(
        Transformation.objects.filter(pk__any=frozenset(ids), segment__isnull=False).values_list(
            "segment_id", flat=True
        )
    )


def affected_counts(forward: Forward) -> tuple[int, int]:
    """(definitely, potentially) exposed units, each unit counted once at its best exposure.

    Sums of the segments' stored totals, corrected for the few segments and units that need it
    (see ``Sums``): milliseconds at a million units, where counting distinct members took seconds.
    """
    snapshot, sums = forward.snapshot, sums_of(forward)
    counts = {True: 0, False: 0}
    for segment, count in sums.clean.items():
        counts[forward.segments[segment].definite] += count
    if sums.dirty:
        exact = members(snapshot, sums.dirty).values("segment_id").annotate(n=Count("*")).values_list("segment_id", "n")
        for segment, count in exact:
            counts[forward.segments[segment].definite] += count
    best: dict[int, bool] = {}
    for unit, segments in sums.repeated.items():
        definites = [forward.segments[segment].definite for segment in segments]
        for definite in definites:
            counts[definite] -= 1
        best[unit] = any(definites)
        counts[best[unit]] += 1
    # Units reached only through unit links (and the subject units) are few: settle them here.
    if forward.units:
        in_segments = segment_exposures(forward, forward.units.keys() - best.keys()) | best
        for unit, reached in forward.units.items():
            seen = in_segments.get(unit)
            if seen is None:
                counts[reached.definite] += 1
            elif reached.definite and not seen:
                counts[True] += 1
                counts[False] -= 1
    return counts[True], counts[False]
