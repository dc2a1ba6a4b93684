import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.factories import CellLotFactory, MaterialLotFactory, ModuleLotFactory, WorkOrderFactory
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.models import (
    Exposure,
    LotLink,
    RecordKind,
    Segment,
    SegmentMember,
    Transformation,
    UnitLink,
    exposure_of,
)
from traceability.genealogy.writes import (
    CycleRefused,
    GenealogyError,
    UnitBuild,
    transformation_record,
    transformation_retract,
    unit_builds_record,
)
from traceability.ledger.models import LedgerEntry, LedgerHead
from traceability.ledger.services import ledger_append

pytestmark = pytest.mark.django_db
AT = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        (1, 1, Exposure.DEFINITE),
        (1, 500, Exposure.DEFINITE),
        (4, 1, Exposure.DEFINITE),
        (2, 2, Exposure.POTENTIAL),
        (3, 1700, Exposure.POTENTIAL),
    ],
)
def test_link_rule(inputs, outputs, expected):
    assert exposure_of(input_count=inputs, output_count=outputs) == expected


def test_link_rule_refuses_an_empty_side():
    with pytest.raises(ValueError, match="at least one input and one output"):
        exposure_of(input_count=0, output_count=3)


def _units(work_order, n, prefix="S"):
    with transaction.atomic():
        return units_create(
            owner=work_order.owner,
            product_model=work_order.product_model,
            work_order=work_order,
            serials=[f"{prefix}{i:05d}" for i in range(n)],
            produced_at=AT,
        )


def test_ledger_positions_are_gapless_and_need_a_transaction():
    # given / when
    with transaction.atomic():
        first = ledger_append(source="manual", summary="one")
        second = ledger_append(source="manual", summary="two")
    # then
    assert (first.position, second.position) == (1, 2)
    assert LedgerHead.objects.get().position == 2
    assert LedgerEntry.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_ledger_writes_outside_a_transaction_are_refused():
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        ledger_append(source="manual", summary="outside")
    assert (LedgerEntry.objects.count(), LedgerHead.objects.filter(position__gt=0).count()) == (0, 0)


def test_work_order_record_with_several_lots_links_every_unit_potentially():
    # given three units of a work order that drew on two cell lots
    work_order = WorkOrderFactory()
    lot_a, lot_b = CellLotFactory(), CellLotFactory()
    units = _units(work_order, 3)
    # when
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="wo")
        record = transformation_record(
            entry=entry,
            owner=work_order.owner,
            kind=RecordKind.WORK_ORDER,
            reference=work_order.number,
            occurred_at=AT,
            input_lot_ids=[lot_a.pk, lot_b.pk],
            output_unit_ids=units,
            work_order_id=work_order.pk,
        )
    # then
    assert (record.input_count, record.output_count, record.exposure) == (2, 3, Exposure.POTENTIAL)
    segment = Segment.objects.get()
    assert segment.exposure == Exposure.POTENTIAL
    assert set(segment.input_lots.values_list("pk", flat=True)) == {lot_a.pk, lot_b.pk}
    assert segment.unit_count == 3
    assert set(SegmentMember.objects.values_list("unit_id", "transformation_id")) == {(u, record.pk) for u in units}


def test_one_lot_feeding_many_units_is_definite_and_shares_the_segment_of_the_same_inputs():
    # given two work orders drawing on the same single cell lot
    lot = CellLotFactory()
    first_order, second_order = WorkOrderFactory(), WorkOrderFactory()
    first_units, second_units = _units(first_order, 4, "A"), _units(second_order, 2, "B")
    # when
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="two orders")
        for order, units in ((first_order, first_units), (second_order, second_units)):
            transformation_record(
                entry=entry,
                owner=order.owner,
                kind=RecordKind.WORK_ORDER,
                reference=order.number,
                occurred_at=AT,
                input_lot_ids=[lot.pk],
                output_unit_ids=units,
            )
    # then
    segment = Segment.objects.get()
    assert (segment.exposure, segment.unit_count) == (Exposure.DEFINITE, 6)
    assert Transformation.objects.filter(exposure=Exposure.DEFINITE).count() == 2


def test_lot_to_lot_links_of_depth_four_keep_their_own_exposure():
    # given precursor → cathode → cell → module, with one potential step (2 cathode lots → 2 cell lots)
    owner_lots = [MaterialLotFactory(), MaterialLotFactory(), MaterialLotFactory()]
    precursor, cathode_a, cathode_b = owner_lots
    cell_a, cell_b = CellLotFactory(), CellLotFactory()
    module = ModuleLotFactory()
    # when
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="chain")
        owner = precursor.owner
        transformation_record(
            entry=entry,
            owner=owner,
            kind=RecordKind.MANUAL,
            reference="calcination",
            occurred_at=AT,
            input_lot_ids=[precursor.pk],
            output_lot_ids=[cathode_a.pk, cathode_b.pk],
        )
        transformation_record(
            entry=entry,
            owner=owner,
            kind=RecordKind.MANUAL,
            reference="cell line",
            occurred_at=AT,
            input_lot_ids=[cathode_a.pk, cathode_b.pk],
            output_lot_ids=[cell_a.pk, cell_b.pk],
        )
        transformation_record(
            entry=entry,
            owner=owner,
            kind=RecordKind.MANUAL,
            reference="module line",
            occurred_at=AT,
            input_lot_ids=[cell_a.pk, cell_b.pk],
            output_lot_ids=[module.pk],
        )
    # then
    links = {(link.input_lot_id, link.output_lot_id): link.exposure for link in LotLink.objects.all()}
    assert links == {
        (precursor.pk, cathode_a.pk): Exposure.DEFINITE,
        (precursor.pk, cathode_b.pk): Exposure.DEFINITE,
        (cathode_a.pk, cell_a.pk): Exposure.POTENTIAL,
        (cathode_a.pk, cell_b.pk): Exposure.POTENTIAL,
        (cathode_b.pk, cell_a.pk): Exposure.POTENTIAL,
        (cathode_b.pk, cell_b.pk): Exposure.POTENTIAL,
        (cell_a.pk, module.pk): Exposure.DEFINITE,
        (cell_b.pk, module.pk): Exposure.DEFINITE,
    }


def test_unit_build_records_group_units_by_input_set_and_name_each_record():
    # given five units; three built from lot A, two from lots A and B
    work_order = WorkOrderFactory()
    lot_a, lot_b = CellLotFactory(), CellLotFactory()
    units = _units(work_order, 5)
    sets = [frozenset({lot_a.pk})] * 3 + [frozenset({lot_a.pk, lot_b.pk})] * 2
    builds = [
        UnitBuild(reference=f"build-{u}", unit_id=u, lot_ids=s, occurred_at=AT)
        for u, s in zip(units, sets, strict=True)
    ]
    # when
    with transaction.atomic():
        recorded = unit_builds_record(
            entry=ledger_append(source="manual", summary="builds"), owner=work_order.owner, builds=builds
        )
    # then
    assert (recorded.transformations, recorded.segment_members, len(recorded.segment_ids)) == (5, 5, 2)
    assert sorted(Segment.objects.values_list("exposure", "unit_count")) == [("definite", 2), ("definite", 3)]
    per_unit = dict(SegmentMember.objects.values_list("unit_id", "transformation__reference"))
    assert per_unit == {u: f"build-{u}" for u in units}


def test_unit_build_records_cost_queries_per_batch_not_per_unit():
    # given
    work_order = WorkOrderFactory()
    lots = [CellLotFactory().pk for _ in range(3)]
    small, large = _units(work_order, 10, "S"), _units(work_order, 1000, "L")

    def record(units, tag):
        builds = [
            UnitBuild(reference=f"{tag}-{u}", unit_id=u, lot_ids=frozenset({lots[u % 3]}), occurred_at=AT)
            for u in units
        ]
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            unit_builds_record(entry=ledger_append(source="manual", summary=tag), owner=work_order.owner, builds=builds)
        return len(queries)

    # when
    small_queries, large_queries = record(small, "small"), record(large, "large")
    # then the count grows by batch (SQLite caps a statement at 999 parameters), never by row
    assert small_queries <= 20  # ledger, checks, records, segments, members, sums, roll-up, repeats, owners
    assert large_queries <= small_queries + len(large) // 50


def test_refurbished_unit_links_to_the_unit_it_was_made_from():
    # given an old unit and a refurbished one that also got a new cell lot
    work_order = WorkOrderFactory()
    old, new = _units(work_order, 2)
    lot = CellLotFactory()
    # when
    with transaction.atomic():
        record = transformation_record(
            entry=ledger_append(source="manual", summary="refurb"),
            owner=work_order.owner,
            kind=RecordKind.MANUAL,
            reference="RF-1",
            occurred_at=AT,
            input_unit_ids=[old],
            input_lot_ids=[lot.pk],
            output_unit_ids=[new],
        )
    # then
    assert record.exposure == Exposure.DEFINITE
    assert list(UnitLink.objects.values_list("input_unit_id", "output_unit_id", "exposure")) == [(old, new, "definite")]
    assert list(SegmentMember.objects.values_list("unit_id", flat=True)) == [new]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_lot_ids": [], "output_lot_ids": ["lot"]}, "needs at least one input and one output"),
        ({"input_lot_ids": ["lot"], "output_lot_ids": ["lot"]}, "are both input and output"),
        ({"input_lot_ids": [987654], "output_lot_ids": ["lot"]}, "unknown lot id(s): 987654"),
        ({"input_unit_ids": ["unit"], "output_lot_ids": ["lot"]}, "a lot cannot be made from a finished unit"),
    ],
)
def test_bad_transformations_are_refused_and_write_nothing(kwargs, message):
    # given
    lot = CellLotFactory()
    unit = _units(WorkOrderFactory(), 1)[0]
    resolved = {
        key: [lot.pk if v == "lot" else unit if v == "unit" else v for v in values] for key, values in kwargs.items()
    }
    # when
    with pytest.raises(GenealogyError) as refused, transaction.atomic():
        transformation_record(
            entry=ledger_append(source="manual", summary="bad"),
            owner=lot.owner,
            kind=RecordKind.MANUAL,
            reference="bad-1",
            occurred_at=AT,
            **resolved,
        )
    # then
    assert message in str(refused.value)
    assert "'bad-1'" in str(refused.value) or "987654" in str(refused.value)
    assert (Transformation.objects.count(), LedgerEntry.objects.count(), LotLink.objects.count()) == (0, 0, 0)


def test_retraction_keeps_the_rows_and_records_when_it_happened():
    # given
    lot_in, lot_out = MaterialLotFactory(), CellLotFactory()
    with transaction.atomic():
        record = transformation_record(
            entry=ledger_append(source="manual", summary="link"),
            owner=lot_in.owner,
            kind=RecordKind.MANUAL,
            reference="E-1",
            occurred_at=AT,
            input_lot_ids=[lot_in.pk],
            output_lot_ids=[lot_out.pk],
        )
    # when
    with transaction.atomic():
        retraction = ledger_append(source="manual", summary="error declaration")
        transformation_retract(transformation=record, entry=retraction, reason="wrong lot scanned")
    # then
    record.refresh_from_db()
    assert (record.retracted, record.retracted_position_id, record.retraction_reason) == (True, 2, "wrong lot scanned")
    assert LotLink.objects.filter(transformation=record).count() == 1
    with pytest.raises(GenealogyError, match="already retracted at ledger position 2"), transaction.atomic():
        transformation_retract(transformation=record, entry=ledger_append(source="manual", summary="again"), reason="x")


def test_a_cycle_is_refused_at_write_time_naming_the_path():
    # given precursor → cathode → cell already recorded
    precursor, cathode, cell = MaterialLotFactory(), MaterialLotFactory(), CellLotFactory()
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="chain")
        for reference, source, target in (("calcination", precursor, cathode), ("cell line", cathode, cell)):
            transformation_record(
                entry=entry,
                owner=precursor.owner,
                kind=RecordKind.MANUAL,
                reference=reference,
                occurred_at=AT,
                input_lot_ids=[source.pk],
                output_lot_ids=[target.pk],
            )
    # when a record claims the precursor was made from the cell
    with pytest.raises(CycleRefused) as refused, transaction.atomic():
        transformation_record(
            entry=ledger_append(source="manual", summary="loop"),
            owner=precursor.owner,
            kind=RecordKind.MANUAL,
            reference="loop",
            occurred_at=AT,
            input_lot_ids=[cell.pk],
            output_lot_ids=[precursor.pk],
        )
    # then the message names the path, and nothing was written
    assert str(refused.value) == (
        f"transformation 'loop' would make {precursor.identity} from itself:"
        f" {precursor.identity} → {cathode.identity} → {cell.identity} already exists,"
        f" and this record adds {cell.identity} → {precursor.identity}"
    )
    assert Transformation.objects.count() == 2


def test_a_unit_made_from_itself_through_a_refurbishment_is_refused():
    work_order = WorkOrderFactory()
    first, second = _units(work_order, 2)
    with transaction.atomic():
        transformation_record(
            entry=ledger_append(source="manual", summary="refurb"),
            owner=work_order.owner,
            kind=RecordKind.MANUAL,
            reference="RF-1",
            occurred_at=AT,
            input_unit_ids=[first],
            output_unit_ids=[second],
        )
    with pytest.raises(GenealogyError, match="would make .*S00000 from itself"), transaction.atomic():
        transformation_record(
            entry=ledger_append(source="manual", summary="back"),
            owner=work_order.owner,
            kind=RecordKind.MANUAL,
            reference="RF-2",
            occurred_at=AT,
            input_unit_ids=[second],
            output_unit_ids=[first],
        )
