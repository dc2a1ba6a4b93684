"""Writes to the ledger: positions, transformations and the genealogy links they make.

Every function here must run inside the caller's transaction (the service boundary that owns the
whole write, e.g. an import or the demo load), because a ledger position is only meaningful if
everything recorded under it commits, or nothing does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, Count, Max, OuterRef, Subquery, Value, When

from cells.models import Lot
from packs.models import Unit, UnitPacking
from suppliers.models import Organisation
from traceability.core.bulk import bulk_insert, insert_rows
from traceability.core.db import any_sql
from traceability.core.errors import DomainError
from traceability.genealogy.models import (
    Exposure,
    LotLink,
    RecordKind,
    RepeatedUnit,
    Segment,
    SegmentContainer,
    SegmentInput,
    SegmentMember,
    SegmentOwner,
    Transformation,
    UnitLink,
    exposure_of,
)
from traceability.genealogy.trace import Link, links_reachable, reach
from traceability.ledger.models import LedgerEntry
from traceability.ledger.services import BATCH_SIZE, ids_missing, require_transaction


class GenealogyError(DomainError, ValueError):
    """A record the genealogy refuses; the message names the record and the reason."""

    code = "record_refused"


class UnknownIds(GenealogyError):
    """A record naming lot or unit ids the ledger does not hold."""

    code = "unknown_ids"


class IncompleteRecord(GenealogyError):
    """A record without inputs or without outputs: it links nothing."""

    code = "incomplete_record"


class LotFromUnitRefused(GenealogyError):
    """Lots are made from lots; a finished unit goes into units only (refurbishment)."""

    code = "lot_from_unit"


class CycleRefused(GenealogyError):
    """A record that would make something from itself: the genealogy is a DAG."""

    code = "cycle_refused"


class AlreadyRetracted(GenealogyError):
    code = "already_retracted"


def _check_exist(model: type[Lot] | type[Unit], ids: set[int], what: str) -> None:
    if missing := ids_missing(model, ids):
        raise UnknownIds(f"unknown {what} id(s): {', '.join(map(str, missing[:10]))}")


def _refuse_cycle(
    reference: str, link_model: type[LotLink] | type[UnitLink], what: str, *, inputs: set[int], outputs: set[int]
) -> None:
    """Refuse a record that would make something from itself: the genealogy is a DAG.

    Walks upstream from the inputs, one query per level; if an output is among their ancestors,
    the new links would close a cycle, and the message names the path that exists already.
    Retracted records count too: retraction stops a link counting, it does not license a cycle.
    """
    if not inputs or not outputs:
        return
    field_in, field_out = f"input_{what}_id", f"output_{what}_id"

    def parents(frontier: frozenset[int]) -> list[Link]:
        rows = link_model.objects.filter(**{f"{field_out}__in": sorted(frontier)}).values_list(field_out, field_in)
        return [Link(child, parent, True, 0) for child, parent in rows.order_by()]

    ancestors = reach(inputs, links_reachable(inputs, parents))
    if closing := sorted(outputs & ancestors.keys()):
        output = closing[0]
        chain = [ancestors[output].path[0].source, *(link.target for link in ancestors[output].path)]
        names = dict((Lot if what == "lot" else Unit).objects.filter(pk__in=chain).values_list("pk", "identity"))
        shown = " → ".join(names[node] for node in reversed(chain))
        raise CycleRefused(
            f"transformation {reference!r} would make {names[output]} from itself:"
            f" {shown} already exists, and this record adds {names[chain[0]]} → {names[output]}"
        )


def segment_input_key(*, exposure: str, lot_ids: Iterable[int]) -> str:
    lots = ",".join(str(lot_id) for lot_id in sorted(set(lot_ids)))
    return hashlib.sha256(f"{exposure}|{lots}".encode()).hexdigest()


def _segments_for(keys: set[tuple[str, frozenset[int]]]) -> dict[tuple[str, frozenset[int]], int]:
    """Find or create the segment of each (exposure, input lots); two queries plus two inserts."""
    by_digest = {segment_input_key(exposure=exposure, lot_ids=lots): (exposure, lots) for exposure, lots in keys}
    existing = dict(Segment.objects.filter(input_key__in=by_digest).values_list("input_key", "pk"))
    new = [Segment(input_key=digest, exposure=by_digest[digest][0]) for digest in by_digest if digest not in existing]
    if new:
        Segment.objects.bulk_create(new, batch_size=BATCH_SIZE)
        created = dict(Segment.objects.filter(input_key__in=[s.input_key for s in new]).values_list("input_key", "pk"))
        SegmentInput.objects.bulk_create(
            (
                SegmentInput(segment_id=created[digest], lot_id=lot_id)
                for digest in created
                for lot_id in by_digest[digest][1]
            ),
            batch_size=BATCH_SIZE,
        )
        existing.update(created)
    return {by_digest[digest]: pk for digest, pk in existing.items()}


def _members_written(*, segment_ids: Iterable[int], unit_ids: Sequence[int], first_transformation_id: int) -> None:
    """Keep the sums the trace counts with in step with member rows just written.

    The new rows are those of ``unit_ids`` with a transformation id from ``first_transformation_id``
    on: ledger writes are serialised and ids grow, so nothing newer exists. A fixed number of
    queries per batch: segment totals, the consignee roll-up from the units' packings, the party
    roll-up from the units' owners, units that now have more than one member row; then the
    segments' owners, read from the party roll-up.
    """
    touched = set(segment_ids)
    members = SegmentMember.objects.filter(segment=OuterRef("pk")).order_by().values("segment")
    Segment.objects.filter(pk__in=touched).update(
        unit_count=Subquery(members.annotate(n=Count("*")).values("n")),
        last_transformation_id=Subquery(members.annotate(m=Max("transformation_id")).values("m")),
    )
    for start in range(0, len(unit_ids), BATCH_SIZE):
        batch = unit_ids[start : start + BATCH_SIZE]
        in_batch, params = any_sql("m.unit_id", batch, connection)
        new_rows = f"{in_batch} AND m.transformation_id >= %s"
        _rollup_add(new_rows, [*params, first_transformation_id])
        _owner_counts_add(new_rows, [*params, first_transformation_id])
        _repeated_mark(SegmentMember, batch)
    _owners_write(_owners_read(touched))


@dataclass
class _SegmentOwners:
    owner_id: int | None  # as stored before this write
    mixed: bool
    owners: set[int] = field(default_factory=set)  # the owners of all its units, this write's included

    def after(self) -> tuple[int | None, bool]:
        owner = self.owner_id if self.owner_id is not None else min(self.owners, default=None)
        return owner, self.mixed or len(self.owners | ({owner} - {None})) > 1


def _owner_counts_add(where: str, params: Sequence) -> None:
    """Add to the party roll-up the member rows ``m`` that ``where`` picks, per (segment, owner of
    the unit), widening the unit id bounds: one statement."""
    table = SegmentOwner._meta.db_table
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment_id, owner_id, unit_count, first_unit_id, last_unit_id)"
            f" SELECT m.segment_id, u.owner_id, COUNT(*), MIN(m.unit_id), MAX(m.unit_id)"
            f" FROM {SegmentMember._meta.db_table} m JOIN {Unit._meta.db_table} u ON u.id = m.unit_id"
            f" WHERE {where} GROUP BY m.segment_id, u.owner_id"
            # SQLite needs a HAVING (or WHERE) before ON CONFLICT to parse INSERT … SELECT … ON CONFLICT.
            f" HAVING COUNT(*) > 0 ON CONFLICT (segment_id, owner_id)"
            f" DO UPDATE SET unit_count = {table}.unit_count + excluded.unit_count,"
            f" first_unit_id = {least}({table}.first_unit_id, excluded.first_unit_id),"
            f" last_unit_id = {greatest}({table}.last_unit_id, excluded.last_unit_id)",
            params,
        )


def _owners_read(segment_ids: set[int]) -> dict[int, _SegmentOwners]:
    """Each segment's owners from the party roll-up, with what the segment says already: one query."""
    owners: dict[int, _SegmentOwners] = {}
    if not segment_ids:
        return owners
    in_segments, params = any_sql("o.segment_id", segment_ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.segment_id, o.owner_id, s.owner_id, s.owners_mixed FROM {SegmentOwner._meta.db_table} o"
            f" JOIN {Segment._meta.db_table} s ON s.id = o.segment_id WHERE {in_segments}",
            params,
        )
        for segment, unit_owner, owner, mixed in cursor.fetchall():
            owners.setdefault(segment, _SegmentOwners(owner, bool(mixed))).owners.add(unit_owner)
    return owners


def _owners_write(owners: dict[int, _SegmentOwners]) -> None:
    """Store the segments' owners where this write changed them: one UPDATE, a branch per owner."""
    changed = {segment: seen.after() for segment, seen in owners.items() if seen.after() != (seen.owner_id, seen.mixed)}
    if not changed:
        return
    by_owner: dict[int | None, set[int]] = defaultdict(set)
    for segment, (owner, _) in changed.items():
        by_owner[owner].add(segment)
    mixed = {segment for segment, (_, is_mixed) in changed.items() if is_mixed}
    Segment.objects.filter(pk__any=frozenset(changed)).update(
        owner_id=Case(*(When(pk__any=frozenset(ids), then=Value(owner)) for owner, ids in by_owner.items())),
        owners_mixed=Case(When(pk__any=frozenset(mixed), then=Value(True)), default=Value(False)),
    )


def packings_written(*, packing_ids: Sequence[int], unit_ids: Sequence[int]) -> None:
    """The packing side of ``_members_written``: roll the new packings up per (segment, container)."""
    for start in range(0, len(packing_ids), BATCH_SIZE):
        _rollup_add(*any_sql("p.id", packing_ids[start : start + BATCH_SIZE], connection))
    for start in range(0, len(unit_ids), BATCH_SIZE):
        _repeated_mark(UnitPacking, unit_ids[start : start + BATCH_SIZE])


def _rollup_add(where: str, params: Sequence) -> None:
    """Add to the consignee roll-up the (member ``m`` × packing ``p``) pairs that ``where`` picks."""
    table = SegmentContainer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment_id, container_id, rows)"
            f" SELECT m.segment_id, p.container_id, COUNT(*) FROM {SegmentMember._meta.db_table} m"
            f" JOIN {UnitPacking._meta.db_table} p ON p.unit_id = m.unit_id"
            f" WHERE {where} GROUP BY m.segment_id, p.container_id"
            # SQLite needs a HAVING (or WHERE) before ON CONFLICT to parse INSERT … SELECT … ON CONFLICT.
            f" HAVING COUNT(*) > 0 ON CONFLICT (segment_id, container_id)"
            f" DO UPDATE SET rows = {table}.rows + excluded.rows",
            params,
        )


def _repeated_mark(model: type[SegmentMember] | type[UnitPacking], unit_ids: Sequence[int]) -> None:
    repeated = (
        model.objects.filter(unit_id__any=set(unit_ids))
        .order_by()
        .values("unit_id")
        .annotate(n=Count("*"))
        .filter(n__gt=1)
        .values_list("unit_id", flat=True)
    )
    RepeatedUnit.objects.bulk_create([RepeatedUnit(unit_id=u) for u in repeated], ignore_conflicts=True)


@dataclass(frozen=True)
class UnitBuild:
    """One unit's build record: the unit was made from these lots (so each link is definite)."""

    reference: str
    unit_id: int
    lot_ids: frozenset[int]
    occurred_at: dt.datetime
    work_order_id: int | None = None


@dataclass
class Recorded:
    transformations: int = 0
    lot_links: int = 0
    unit_links: int = 0
    segment_members: int = 0
    segment_ids: set[int] = field(default_factory=set)
    transformation_ids: list[int] = field(default_factory=list)  # of unit builds, in the order given


def unit_builds_record(
    *, entry: LedgerEntry, owner: Organisation, builds: Sequence[UnitBuild], kind: str = RecordKind.BUILD_RECORD
) -> Recorded:
    """Record many units' build records at once, set-based: a fixed number of queries per batch.

    ``kind`` says where they came from: build records, or EPCIS TransformationEvents with one
    output unit."""
    require_transaction()
    if not builds:
        return Recorded()
    if empty := [b.reference for b in builds if not b.lot_ids]:
        raise IncompleteRecord(f"build record {empty[0]!r} names no input lot")
    _check_exist(Unit, {b.unit_id for b in builds}, "unit")
    _check_exist(Lot, {lot_id for b in builds for lot_id in b.lot_ids}, "lot")
    segments = _segments_for({(Exposure.DEFINITE, b.lot_ids) for b in builds})
    segment_of = [segments[(Exposure.DEFINITE, b.lot_ids)] for b in builds]
    ids = insert_rows(
        Transformation,
        (
            "owner_id",
            "kind",
            "reference",
            "work_order_id",
            "occurred_at",
            "input_count",
            "output_count",
            "exposure",
            "recorded_position_id",
            "segment_id",
        ),  # fmt: skip
        (
            (
                owner.pk,
                kind,
                b.reference,
                b.work_order_id,
                b.occurred_at,
                len(b.lot_ids),
                1,
                Exposure.DEFINITE,
                entry.pk,
                segment,
            )  # fmt: skip
            for b, segment in zip(builds, segment_of, strict=True)
        ),
    )
    insert_rows(
        SegmentMember,
        ("segment_id", "unit_id", "transformation_id"),
        zip(segment_of, (b.unit_id for b in builds), ids, strict=True),
    )
    _members_written(
        segment_ids=segments.values(), unit_ids=[b.unit_id for b in builds], first_transformation_id=min(ids)
    )
    return Recorded(
        transformations=len(builds),
        segment_members=len(builds),
        segment_ids=set(segments.values()),
        transformation_ids=ids,
    )


def transformation_record(
    *,
    entry: LedgerEntry,
    owner: Organisation,
    kind: str,
    reference: str,
    occurred_at: dt.datetime,
    input_lot_ids: Iterable[int] = (),
    input_unit_ids: Iterable[int] = (),
    output_lot_ids: Iterable[int] = (),
    output_unit_ids: Iterable[int] = (),
    work_order_id: int | None = None,
) -> Transformation:
    """Record one transformation (an EPCIS TransformationEvent or transformationID group, a
    work-order record, ...) and link every input to every output by the link rule."""
    require_transaction()
    input_lots, input_units = set(input_lot_ids), set(input_unit_ids)
    output_lots, output_units = set(output_lot_ids), set(output_unit_ids)
    inputs, outputs = len(input_lots) + len(input_units), len(output_lots) + len(output_units)
    if not inputs or not outputs:
        raise IncompleteRecord(f"transformation {reference!r} needs at least one input and one output")
    if input_units and output_lots:
        raise LotFromUnitRefused(f"transformation {reference!r}: a lot cannot be made from a finished unit")
    if same := (input_lots & output_lots) | (input_units & output_units):
        raise CycleRefused(f"transformation {reference!r}: id(s) {sorted(same)} are both input and output")
    _check_exist(Lot, input_lots | output_lots, "lot")
    _check_exist(Unit, input_units | output_units, "unit")
    _refuse_cycle(reference, LotLink, "lot", inputs=input_lots, outputs=output_lots)
    _refuse_cycle(reference, UnitLink, "unit", inputs=input_units, outputs=output_units)
    exposure = exposure_of(input_count=inputs, output_count=outputs)
    segment_id = None
    if input_lots and output_units:
        key = (exposure, frozenset(input_lots))
        segment_id = _segments_for({key})[key]
    transformation = Transformation.objects.create(
        owner=owner,
        kind=kind,
        reference=reference,
        work_order_id=work_order_id,
        occurred_at=occurred_at,
        input_count=inputs,
        output_count=outputs,
        exposure=exposure,
        recorded_position=entry,
        segment_id=segment_id,
    )
    LotLink.objects.bulk_create(
        LotLink(transformation=transformation, input_lot_id=i, output_lot_id=o, exposure=exposure)
        for i in sorted(input_lots)
        for o in sorted(output_lots)
    )
    UnitLink.objects.bulk_create(
        UnitLink(transformation=transformation, input_unit_id=i, output_unit_id=o, exposure=exposure)
        for i in sorted(input_units)
        for o in sorted(output_units)
    )
    if segment_id is not None:
        bulk_insert(
            SegmentMember,
            [
                SegmentMember(segment_id=segment_id, unit_id=u, transformation=transformation)
                for u in sorted(output_units)
            ],
        )
        _members_written(
            segment_ids=[segment_id], unit_ids=sorted(output_units), first_transformation_id=transformation.pk
        )
    return transformation


def transformation_retract(*, transformation: Transformation, entry: LedgerEntry, reason: str) -> Transformation:
    """Declare a record erroneous: from ``entry`` on, its links stop counting; its rows stay."""
    require_transaction()
    locked = Transformation.objects.select_for_update().get(pk=transformation.pk)
    if locked.retracted_position_id is not None:
        raise AlreadyRetracted(f"{locked} was already retracted at ledger position {locked.retracted_position_id}")
    locked.retracted_position = entry
    locked.retraction_reason = reason
    locked.save(update_fields=["retracted_position", "retraction_reason"])
    return locked


def transformations_retract(*, reasons: dict[int, str], entry: LedgerEntry) -> int:
    """Declare many records erroneous at once (``reasons``: record id -> why): one update per
    distinct reason, never one per record. Records retracted already keep their first retraction."""
    require_transaction()
    by_reason: dict[str, list[int]] = defaultdict(list)
    for record, reason in reasons.items():
        by_reason[reason].append(record)
    return sum(
        Transformation.objects.filter(pk__in=records, retracted_position__isnull=True).update(
            retracted_position=entry, retraction_reason=reason
        )
        for reason, records in by_reason.items()
    )
