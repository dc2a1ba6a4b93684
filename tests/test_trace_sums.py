"""The trace counts with stored sums; these tests hold the sums to a count done row by row.

Random worlds where the sums need correcting: units recorded twice (a work-order record and a
build record), units packed twice or moved between cartons, packing written before and after the
genealogy, records retracted, traces taken at older positions, refurbished units.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import replace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Container, ContainerPacking, Shipment, ShipmentItem, Unit, UnitPacking
from suppliers.models import Organisation
from tests.factories import CellLotFactory, MaterialLotFactory, OrganisationFactory, WorkOrderFactory
from tests.jobs_support import run_job
from traceability import genealogy
from traceability.genealogy.commissioning import UnitError, units_create, units_pack
from traceability.genealogy.models import (
    LotLink,
    RecordKind,
    RepeatedUnit,
    Segment,
    SegmentContainer,
    SegmentMember,
    SegmentOwner,
    Transformation,
)
from traceability.genealogy.writes import UnitBuild, transformation_record, transformation_retract, unit_builds_record
from traceability.investigations.selectors import (
    AffectedUnitFilters,
    affected_units_page,
    finished_run_part,
    finished_run_party_page,
)
from traceability.investigations.services import finding_record, trace_run_start
from traceability.ledger.services import ledger_append

pytestmark = pytest.mark.django_db

AT = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
UNITS = 60


def _by_rows(forward: genealogy.Forward) -> tuple[dict[int, bool], dict[int, int]]:
    """Every affected unit at its best exposure, and affected units per container, row by row."""
    snapshot = forward.snapshot
    best: dict[int, bool] = {}
    for row in SegmentMember.objects.filter(segment_id__in=list(forward.segments)):
        valid = (
            row.transformation_id <= snapshot.last_transformation_id and row.transformation_id not in snapshot.retracted
        )
        if valid:
            best[row.unit_id] = best.get(row.unit_id, False) or forward.segments[row.segment_id].definite
    for unit, reached in forward.units.items():
        best[unit] = best.get(unit, False) or reached.definite
    per_container: dict[int, set[int]] = defaultdict(set)
    for packing in UnitPacking.objects.filter(unit_id__in=list(best)):
        per_container[packing.container_id].add(packing.unit_id)
    return best, {container: len(units) for container, units in per_container.items()}


def _random_world(seed: int):
    rng = random.Random(seed)
    work_order = WorkOrderFactory()
    brand = work_order.owner
    materials = [MaterialLotFactory() for _ in range(3)]
    cells = [CellLotFactory() for _ in range(5)]
    with transaction.atomic():
        units = units_create(
            owner=brand,
            product_model=work_order.product_model,
            work_order=work_order,
            serials=[f"R{seed}-{i:03d}" for i in range(UNITS)],
            produced_at=AT,
        )
    cartons = [
        Container.objects.create(owner=brand, identity=f"own-container:{brand.slug}:K{seed}-{i}", kind="carton")
        for i in range(6)
    ]
    positions = []

    def write(summary, action):
        with transaction.atomic():
            entry = ledger_append(source="manual", summary=summary)
            result = action(entry)
        positions.append(entry.position)
        return result

    def record(entry, reference, **links):
        return transformation_record(
            entry=entry, owner=brand, kind=RecordKind.MANUAL, reference=reference, occurred_at=AT, **links
        )

    def pack(count):
        chosen = rng.sample(units, count)
        return write("pack", lambda entry: units_pack(packings=[(rng.choice(cartons).pk, u, AT) for u in chosen]))

    # some units are packed before anything says what they are made of
    pack(20)
    write(
        "cells",
        lambda entry: [
            record(
                entry,
                f"cell {i}",
                input_lot_ids=rng.sample([m.pk for m in materials], rng.randint(1, 2)),
                output_lot_ids=[cell.pk],
            )
            for i, cell in enumerate(cells)
        ],
    )
    records = []
    for step in range(6):
        if rng.random() < 0.5:
            lots = rng.sample([c.pk for c in cells], rng.randint(1, 3))
            outputs = rng.sample(units, rng.randint(2, 25))
            records.append(
                write(
                    "work order",
                    lambda e, s=step, i=lots, o=outputs: record(e, f"wo {s}", input_lot_ids=i, output_unit_ids=o),
                )
            )
        else:
            chosen = rng.sample(units, rng.randint(2, 25))
            builds = [
                UnitBuild(
                    reference=f"build {step}-{u}",
                    unit_id=u,
                    lot_ids=frozenset(rng.sample([c.pk for c in cells], rng.randint(1, 2))),
                    occurred_at=AT,
                )
                for u in chosen
            ]
            write("builds", lambda e, b=builds: unit_builds_record(entry=e, owner=brand, builds=b))
        pack(rng.randint(5, 20))  # and some after, some of them twice or into a second carton
    refurbished_from = rng.choice(units)
    write("refurbish", lambda e: record(e, "refurbish", input_unit_ids=[refurbished_from], output_unit_ids=[units[-1]]))
    for retracted in rng.sample(records, min(2, len(records))):
        write("retract", lambda e, t=retracted: transformation_retract(transformation=t, entry=e, reason="wrong"))
    return materials, cells, positions


@pytest.mark.parametrize("seed", range(8))
def test_counts_containers_and_pages_from_sums_equal_a_count_row_by_row(seed):
    # given a world whose sums need every correction
    materials, cells, positions = _random_world(seed)
    assert RepeatedUnit.objects.exists() and SegmentContainer.objects.exists()
    # when traced from every lot at several positions, then the sums agree with the rows
    for position in sorted({positions[len(positions) // 3], positions[-3], positions[-1]}):
        snapshot = genealogy.ledger_snapshot(position)
        for lot in [*materials, *cells]:
            forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot.pk])
            best, per_container = _by_rows(forward)
            definite = sum(best.values())
            assert genealogy.affected_counts(forward) == (definite, len(best) - definite), (position, lot)
            assert genealogy.affected_per_container(forward) == per_container, (position, lot)
            paged, after = {}, 0
            while page := genealogy.affected_units(forward, after=after, limit=3):
                paged.update((unit.unit_id, unit.definite) for unit in page)
                after = page[-1].unit_id
            assert paged == best, (position, lot)


@pytest.mark.parametrize("seed", range(8))
def test_the_difference_between_two_positions_equals_a_comparison_row_by_row(seed):
    # given a world traced at an early and at the last position
    materials, cells, positions = _random_world(seed)
    early, late = genealogy.ledger_snapshot(positions[len(positions) // 3]), genealogy.ledger_snapshot()
    for lot in [*materials, *cells]:
        before = genealogy.forward_trace(snapshot=early, seed_lot_ids=[lot.pk])
        after = genealogy.forward_trace(snapshot=late, seed_lot_ids=[lot.pk])
        # when
        diff = genealogy.forward_diff(before, after)
        # then
        was, now = _by_rows(before)[0], _by_rows(after)[0]
        assert diff.added == sorted(now.keys() - was.keys())
        assert diff.gone == sorted(was.keys() - now.keys())
        assert diff.exposure_changed == sorted(u for u in now.keys() & was.keys() if now[u] != was[u])


def _per_owner(forward: genealogy.Forward) -> dict[int, tuple[int, int]]:
    """(definite, potential) affected units per owner, from the units one by one: each at its best
    exposure, through its rows in the trace's segments or through unit links, as ``affected_counts``
    has it."""
    best, _ = _by_rows(replace(forward, units={}))
    for unit, reached in forward.units.items():
        best[unit] = best.get(unit, False) or reached.definite
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for unit, owner in Unit.objects.filter(pk__in=list(best)).values_list("pk", "owner_id"):
        counts[owner][0 if best[unit] else 1] += 1
    return {owner: (d, p) for owner, (d, p) in counts.items()}


def _others_too(cells, positions):
    """A second brand's units made from the same cell lots: some join the first brand's segments."""
    brand = WorkOrderFactory()
    with transaction.atomic():
        units = units_create(
            owner=brand.owner,
            product_model=brand.product_model,
            serials=[f"O-{i:02d}" for i in range(12)],
            produced_at=AT,
        )
        entry = ledger_append(source="manual", summary="other brand")
        transformation_record(
            entry=entry,
            owner=brand.owner,
            kind=RecordKind.MANUAL,
            reference="other wo",
            occurred_at=AT,
            input_lot_ids=[cells[0].pk, cells[1].pk],
            output_unit_ids=units[:6],
        )
        unit_builds_record(
            entry=entry,
            owner=brand.owner,
            builds=[
                UnitBuild(reference=f"other {u}", unit_id=u, lot_ids=frozenset({cells[u % 2].pk}), occurred_at=AT)
                for u in units[4:]
            ],
        )
    positions.append(entry.position)
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="other brand's work order retracted")
        transformation_retract(
            transformation=Transformation.objects.get(owner=brand.owner, reference="other wo"),
            entry=entry,
            reason="wrong units",
        )
    positions.append(entry.position)
    return brand.owner


def _owner_rows() -> dict[tuple[int, int], tuple[int, int, int]]:
    """Member rows per (segment, owner of the unit), with their smallest and largest unit id,
    counted row by row."""
    owner_of = dict(Unit.objects.values_list("pk", "owner_id"))
    rows: dict[tuple[int, int], list[int]] = defaultdict(list)
    for segment, unit in SegmentMember.objects.values_list("segment_id", "unit_id"):
        rows[(segment, owner_of[unit])].append(unit)
    return {key: (len(units), min(units), max(units)) for key, units in rows.items()}


@pytest.mark.parametrize("seed", range(8))
def test_a_party_view_from_segment_owners_equals_a_count_row_by_row(seed):
    # given a world whose sums need every correction, with a second brand's units in some segments,
    # one of its records retracted at the last position
    materials, cells, positions = _random_world(seed)
    other = _others_too(cells, positions)
    brand = Unit.objects.exclude(owner=other).values_list("owner_id", flat=True).first()
    assert Segment.objects.filter(owners_mixed=True).exists()
    rolled = SegmentOwner.objects.values_list("segment_id", "owner_id", "unit_count", "first_unit_id", "last_unit_id")
    assert {(segment, owner): tuple(rest) for segment, owner, *rest in rolled} == _owner_rows()
    # when traced from every lot at several positions (before and after each retraction), then each
    # party's share agrees with the rows
    for position in sorted({positions[len(positions) // 3], *positions[-5:]}):
        snapshot = genealogy.ledger_snapshot(position)
        for lot in [*materials, *cells]:
            forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot.pk])
            per_owner = _per_owner(forward)
            for party in (brand, other):
                view = genealogy.party_view(forward, party)
                assert (view.definite_units, view.potential_units) == per_owner.get(party, (0, 0)), (position, lot)
                assert view.others == (), (position, lot)
            maker = Lot.objects.get(pk=lot.pk).owner_id
            assert genealogy.party_view(forward, maker).others == tuple(
                genealogy.OthersCount(owner, d, p) for owner, (d, p) in sorted(per_owner.items()) if owner != maker
            ), (position, lot)
            # a supplier of lots further down sees the units those lots went into, as this trace reached them
            for supplier in {cell.owner_id for cell in cells} - {maker}:
                own = [cell.pk for cell in cells if cell.owner_id == supplier and cell.pk in forward.lots]
                downstream = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=own)
                through = replace(
                    forward,
                    segments={s: r for s, r in forward.segments.items() if s in downstream.segments},
                    units={u: r for u, r in forward.units.items() if u in downstream.units},
                )
                expected = _per_owner(through) if own else {}
                expected.pop(supplier, None)
                shown = tuple(genealogy.OthersCount(owner, d, p) for owner, (d, p) in sorted(expected.items()))
                assert genealogy.party_view(forward, supplier).others == shown, (position, lot, supplier)


@pytest.mark.parametrize("seed", range(4))
def test_a_partys_pages_scan_the_segments_holding_its_units_and_list_each_of_them_once(seed):
    # given a world with a second brand's units in some segments, one of its records retracted
    materials, cells, positions = _random_world(seed)
    other = _others_too(cells, positions)
    brands = sorted(set(Unit.objects.values_list("owner_id", flat=True)))
    assert other.pk in brands and len(brands) == 2
    owner_of = dict(Unit.objects.values_list("pk", "owner_id"))
    for position in (positions[-2], positions[-1]):
        snapshot = genealogy.ledger_snapshot(position)
        for lot in [*materials, *cells]:
            forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot.pk])
            best, _ = _by_rows(forward)
            for brand in brands:
                # when the brand's units are listed a page at a time, as its QA engineer reads them
                part = genealogy.party_part(forward, brand)
                filters = AffectedUnitFilters(shown=genealogy.units_of(brand), party_id=brand)
                listed, after = [], 0
                while after is not None:
                    page = affected_units_page(forward=forward, after=after, limit=4, filters=filters)
                    listed += [(row.unit_id, row.exposure == "definite") for row in page.rows]
                    after = page.next_after
                # then each of its units comes once at its best exposure, from its segments only
                expected = sorted((unit, definite) for unit, definite in best.items() if owner_of[unit] == brand)
                assert listed == expected, (position, lot, brand)
                held = set(SegmentOwner.objects.filter(owner_id=brand).values_list("segment_id", flat=True))
                assert set(part.segments) == set(forward.segments) & held, (position, lot, brand)


def test_a_segment_holding_two_organisations_units_is_mixed_and_counted_per_owner():
    # given a cell lot's segment holding a brand's units, then another brand's units too
    first, second = WorkOrderFactory(), WorkOrderFactory()
    cell = CellLotFactory()
    with transaction.atomic():
        ours = units_create(
            owner=first.owner, product_model=first.product_model, serials=["F1", "F2", "F3"], produced_at=AT
        )
        theirs = units_create(
            owner=second.owner, product_model=second.product_model, serials=["S1", "S2"], produced_at=AT
        )

    def build(owner, units):
        with transaction.atomic():
            unit_builds_record(
                entry=ledger_append(source="manual", summary="builds"),
                owner=owner,
                builds=[
                    UnitBuild(reference=f"b{u}", unit_id=u, lot_ids=frozenset({cell.pk}), occurred_at=AT) for u in units
                ],
            )

    build(first.owner, ours)
    (segment,) = Segment.objects.all()
    single = (segment.owner_id, segment.owners_mixed)
    # when
    build(second.owner, theirs)
    # then
    segment.refresh_from_db()
    assert single == (first.owner_id, False)
    assert (segment.owner_id, segment.owners_mixed, segment.unit_count) == (first.owner_id, True, 5)
    rolled = SegmentOwner.objects.values_list("segment_id", "owner_id", "unit_count")
    assert sorted(rolled) == [(segment.pk, first.owner_id, 3), (segment.pk, second.owner_id, 2)]
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[cell.pk])
    with CaptureQueriesContext(connection) as queries:
        views = [genealogy.party_view(forward, party) for party in (first.owner_id, second.owner_id, cell.owner_id)]
    assert views == [
        genealogy.PartyView(first.owner_id, 3, 0, ()),
        genealogy.PartyView(second.owner_id, 2, 0, ()),
        genealogy.PartyView(
            cell.owner_id,
            0,
            0,
            (genealogy.OthersCount(first.owner_id, 3, 0), genealogy.OthersCount(second.owner_id, 2, 0)),
        ),
    ]
    # summed from the party roll-up: no member row is read, the cell maker's lot is not traced twice
    read = " ".join(query["sql"] for query in queries)
    assert SegmentMember._meta.db_table not in read
    assert LotLink._meta.db_table not in read


def test_a_retracted_member_leaves_a_party_view_of_its_segment_from_the_retraction_on():
    # given a brand's work order (two cell lots, four units: potential) and its retraction
    work_order = WorkOrderFactory()
    cells = [CellLotFactory(), CellLotFactory()]
    with transaction.atomic():
        units = units_create(
            owner=work_order.owner,
            product_model=work_order.product_model,
            serials=["R1", "R2", "R3", "R4"],
            produced_at=AT,
        )
        entry = ledger_append(source="manual", summary="work orders")
        kept = transformation_record(
            entry=entry,
            owner=work_order.owner,
            kind=RecordKind.WORK_ORDER,
            reference="wo 1",
            occurred_at=AT,
            input_lot_ids=[c.pk for c in cells],
            output_unit_ids=units[:2],
        )
        wrong = transformation_record(
            entry=entry,
            owner=work_order.owner,
            kind=RecordKind.WORK_ORDER,
            reference="wo 2",
            occurred_at=AT,
            input_lot_ids=[c.pk for c in cells],
            output_unit_ids=units[2:],
        )
    before = genealogy.ledger_snapshot()
    with transaction.atomic():
        transformation_retract(
            transformation=wrong, entry=ledger_append(source="manual", summary="retract"), reason="wrong units"
        )
    after = genealogy.ledger_snapshot()
    # when
    views = [
        genealogy.party_view(
            genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[cells[0].pk]), work_order.owner_id
        )
        for snapshot in (before, after)
    ]
    # then one segment, one owner, and its sum stops counting the retracted units
    assert kept.segment_id == wrong.segment_id
    assert Segment.objects.values_list("owner_id", "owners_mixed", "unit_count").get() == (
        work_order.owner_id,
        False,
        4,
    )
    assert [(view.definite_units, view.potential_units) for view in views] == [(0, 4), (0, 2)]


def test_sums_do_not_depend_on_whether_packing_or_genealogy_came_first():
    # given two units, one packed before its build record and one after
    work_order = WorkOrderFactory()
    cell = CellLotFactory()
    carton = Container.objects.create(owner=work_order.owner, identity="own-container:x:K1", kind="carton")
    with transaction.atomic():
        first, second = units_create(
            owner=work_order.owner, product_model=work_order.product_model, serials=["A", "B"], produced_at=AT
        )
        units_pack(packings=[(carton.pk, first, AT)])
        unit_builds_record(
            entry=ledger_append(source="manual", summary="builds"),
            owner=work_order.owner,
            builds=[
                UnitBuild(reference=f"b{u}", unit_id=u, lot_ids=frozenset({cell.pk}), occurred_at=AT)
                for u in (first, second)
            ],
        )
        units_pack(packings=[(carton.pk, second, AT)])
    # then the roll-up holds both, once each, and neither unit is repeated
    assert list(SegmentContainer.objects.values_list("container_id", "rows")) == [(carton.pk, 2)]
    assert not RepeatedUnit.objects.exists()
    segment = Transformation.objects.get(reference=f"b{first}").segment
    assert (segment.unit_count, segment.last_transformation_id) == (2, Transformation.objects.latest("id").pk)


def test_packing_an_unknown_unit_or_container_is_refused_and_writes_nothing():
    # given
    work_order = WorkOrderFactory()
    carton = Container.objects.create(owner=work_order.owner, identity="own-container:x:K2", kind="carton")
    with transaction.atomic():
        (unit,) = units_create(
            owner=work_order.owner, product_model=work_order.product_model, serials=["C"], produced_at=AT
        )
    # when / then
    with pytest.raises(UnitError, match=r"unknown unit id\(s\) 999999 \(1 in all\)"), transaction.atomic():
        units_pack(packings=[(carton.pk, unit, AT), (carton.pk, 999_999, AT)])
    with pytest.raises(UnitError, match=r"unknown container id\(s\) 888888"), transaction.atomic():
        units_pack(packings=[(888_888, unit, AT)])
    assert not UnitPacking.objects.exists()


@pytest.mark.parametrize("seed", range(4))
def test_a_partys_page_read_in_one_statement_equals_its_page_read_from_its_part(seed):
    # given a world with a second brand's units in some segments, units recorded twice, a refurbished
    # unit, retracted records, and units shipped loose and in cartons (one carton inside another)
    materials, cells, positions = _random_world(seed)
    other = _others_too(cells, positions)
    brand = Unit.objects.exclude(owner=other).values_list("owner_id", flat=True).first()
    distributor = OrganisationFactory()
    cartons = list(Container.objects.order_by("pk"))
    ContainerPacking.objects.create(parent=cartons[0], child=cartons[1], packed_at=AT)
    for i, carton in enumerate(cartons[:3]):
        shipment = Shipment.objects.create(
            owner_id=brand, reference=f"S{seed}-{i}", consignee=distributor, shipped_at=AT + dt.timedelta(days=i)
        )
        ShipmentItem.objects.create(shipment=shipment, container=carton)
        ShipmentItem.objects.create(shipment=shipment, unit_id=Unit.objects.order_by("pk")[i * 7].pk)
    answered, received = 0, set()
    for party in (brand, other.pk, distributor.pk):
        # each party's investigation of the first material lot, then runs of every lot at two positions
        finding = finding_record(
            owner=Organisation.objects.get(pk=party),
            subject=materials[0],
            category="metallic_debris",
            severity="high",
            description="-",
            submit=lambda job: None,
        )
        run_job(finding.investigation.runs.get().job)
        for position in (positions[len(positions) // 2], positions[-1]):
            for lot in [*materials, *cells]:
                run = trace_run_start(
                    investigation=finding.investigation,
                    submit=lambda job: None,
                    seeds=([lot.pk], []),
                    snapshot=genealogy.ledger_snapshot(position),
                )
                run_job(run.job)
                run.refresh_from_db()
                for limit in (1, 5):
                    after: int | None = 0
                    while after is not None:
                        # when its page is read in one statement, and from its part of the result
                        fast = finished_run_party_page(run=run, party_id=party, after=after, limit=limit)
                        part = finished_run_part(run=run, party_id=party)
                        filters = AffectedUnitFilters(shown=genealogy.units_of(party), party_id=party)
                        page = affected_units_page(forward=part, after=after, limit=limit, filters=filters)
                        # then both give the same units, exposures, paths, shipments and cursor
                        if fast.page is not None:
                            assert fast.page == page, (position, lot, party, limit, after)
                            answered += 1
                        if fast.received:
                            received.add(party)
                        after = page.next_after
                # and another party's page of this run is not read from this one's part
                assert (
                    finished_run_party_page(
                        run=run, party_id=other.pk if party == brand else brand, after=0, limit=5
                    ).page
                    is None
                )
    # one statement answers the brands' pages on PostgreSQL; the distributor received units: its
    # page lists others' units too, and is read from its part (so is every page elsewhere)
    assert received == ({distributor.pk} if connection.vendor == "postgresql" else set())
    assert (answered > 100) == (connection.vendor == "postgresql"), answered
