"""A party's share of a trace (``party_view``), held to a count done unit by unit from the ledger's rows.

Random worlds of one material supplier, two cell makers (one also assembling modules from both
makers' cells, so one maker's lots lie downstream of the other's), a module assembler and two brands: lot links
definite and potential, work orders (potential) and build records (definite) into units, segments
holding both brands' units, refurbished units (unit links, one of them also made from a cell lot),
records retracted, traces taken at older positions. Every party's view from every lot is compared
with a brute-force reading of the link rule over the raw rows, with no segment sums and no trace.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, replace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Organisation, Role
from tests.factories import (
    CellLotFactory,
    CellModelFactory,
    MaterialFactory,
    MaterialLotFactory,
    ModuleLotFactory,
    OrganisationFactory,
    WorkOrderFactory,
)
from traceability import genealogy
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.models import (
    Exposure,
    LotLink,
    RecordKind,
    Segment,
    SegmentInput,
    SegmentMember,
    SegmentOwner,
    Transformation,
    UnitLink,
)
from traceability.genealogy.writes import UnitBuild, transformation_record, transformation_retract, unit_builds_record
from traceability.ledger.services import ledger_append

pytestmark = pytest.mark.django_db

AT = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)


@dataclass
class World:
    supplier: int
    makers: tuple[int, int]
    brands: tuple[int, int]
    lots: list[int]
    positions: list[int]


def _world(seed: int) -> World:
    rng = random.Random(seed)
    supplier = OrganisationFactory(role=Role.MATERIAL_SUPPLIER)
    material = MaterialFactory(owner=supplier)
    materials = [MaterialLotFactory(material=material).pk for _ in range(4)]
    makers = [CellModelFactory(), CellModelFactory()]
    cells = {model.owner_id: [CellLotFactory(cell_model=model).pk for _ in range(3)] for model in makers}
    first, second = (model.owner for model in makers)
    modules = [ModuleLotFactory(owner=first).pk for _ in range(2)]  # the first maker assembles modules too
    assembly = ModuleLotFactory().pk  # and a module assembler's lot made from one of them
    orders = [WorkOrderFactory(), WorkOrderFactory()]
    with transaction.atomic():
        units = {
            order.owner_id: units_create(
                owner=order.owner,
                product_model=order.product_model,
                work_order=order,
                serials=[f"P{seed}-{b}-{i:02d}" for i in range(24)],
                produced_at=AT,
            )
            for b, order in enumerate(orders)
        }
    owner_of_lot = dict(Lot.objects.values_list("pk", "owner_id"))
    positions: list[int] = []
    records: list[Transformation] = []

    def write(summary, action):
        with transaction.atomic():
            entry = ledger_append(source="manual", summary=summary)
            result = action(entry)
        positions.append(entry.position)
        return result

    def record(entry, owner_id, reference, **links):
        made = transformation_record(
            entry=entry,
            owner=_organisation(owner_id),
            kind=RecordKind.MANUAL,
            reference=reference,
            occurred_at=AT,
            **links,
        )
        records.append(made)
        return made

    all_cells = [*cells[first.pk], *cells[second.pk]]

    def cell_records(entry):
        for i, cell in enumerate(all_cells[:-2]):  # one material lot or two, one cell lot: definite
            inputs = rng.sample(materials, rng.randint(1, 2))
            record(entry, owner_of_lot[cell], f"cell {i}", input_lot_ids=inputs, output_lot_ids=[cell])
        # two material lots into the last cell lot of each maker at once: potential lot links
        for cell in (cells[first.pk][-1], cells[second.pk][-1]):
            inputs = rng.sample(materials, 2)
            record(entry, owner_of_lot[cell], f"pair {cell}", input_lot_ids=inputs, output_lot_ids=[cell, modules[1]])

    write("cells", cell_records)
    write(
        "modules",
        lambda entry: (
            [
                record(
                    entry,
                    first.pk,
                    f"module {m}",
                    input_lot_ids=[rng.choice(cells[first.pk]), rng.choice(cells[second.pk])],
                    output_lot_ids=[module],
                )
                for m, module in enumerate(modules)
            ]
            + [record(entry, owner_of_lot[assembly], "assembly", input_lot_ids=[modules[0]], output_lot_ids=[assembly])]
        ),
    )
    usable = [*all_cells, *modules, assembly, assembly]

    def work_order(brand: int, reference: str, inputs: list[int], outputs: list[int]) -> None:
        write("work order", lambda e: record(e, brand, reference, input_lot_ids=inputs, output_unit_ids=outputs))

    def builds(brand: int, reference: str, pairs: list[tuple[int, frozenset[int]]]) -> None:
        made = [UnitBuild(reference=f"{reference} {u}", unit_id=u, lot_ids=lots, occurred_at=AT) for u, lots in pairs]
        write("builds", lambda e: unit_builds_record(entry=e, owner=_organisation(brand), builds=made))

    for step in range(6):
        brand = rng.choice(orders).owner_id
        chosen = rng.sample(units[brand], rng.randint(2, 6))
        if rng.random() < 0.5:
            work_order(brand, f"wo {step}", rng.sample(usable, rng.randint(1, 3)), chosen)
        else:
            builds(brand, f"build {step}", [(u, frozenset(rng.sample(usable, rng.randint(1, 2)))) for u in chosen])
    # both brands on the same lots: a potential segment and a definite one, each holding both brands' units
    shared, single = rng.sample(usable, 2), rng.choice(usable)
    for order in orders:
        work_order(order.owner_id, f"wo shared {order.pk}", shared, rng.sample(units[order.owner_id], 3))
        builds(
            order.owner_id, f"build shared {order.pk}", [(u, frozenset({single})) for u in units[order.owner_id][-4:-2]]
        )
    # refurbished units: one brand's unit into the other's, then one of those with a new cell lot
    one, other = units[orders[0].owner_id], units[orders[1].owner_id]
    write(
        "refurbish",
        lambda e: record(
            e, orders[1].owner_id, "refurbish", input_unit_ids=[rng.choice(one[:12])], output_unit_ids=[other[-1]]
        ),
    )
    write(
        "refurbish with a cell",
        lambda e: record(
            e,
            orders[0].owner_id,
            "refurbish with a cell",
            input_lot_ids=[rng.choice(all_cells)],
            input_unit_ids=[other[-1]],
            output_unit_ids=[one[-1]],
        ),
    )
    retractable = [r for r in records if r.reference.startswith(("wo", "cell", "module"))]
    for wrong in rng.sample(retractable, 2):
        write("retract", lambda e, t=wrong: transformation_retract(transformation=t, entry=e, reason="wrong"))
    return World(
        supplier=supplier.pk,
        makers=(first.pk, second.pk),
        brands=(orders[0].owner_id, orders[1].owner_id),
        lots=[*materials, *all_cells, *modules, assembly],
        positions=positions,
    )


def _organisation(pk: int) -> Organisation:
    return Organisation.objects.get(pk=pk)


def _closure(starts: set[int], edges: list[tuple[int, int, bool]], *, definite_only: bool = False) -> set[int]:
    """The nodes reachable from ``starts`` (themselves included) over ``edges``."""
    reached, frontier = set(starts), set(starts)
    while frontier:
        frontier = {t for s, t, d in edges if s in frontier and (d or not definite_only)} - reached
        reached |= frontier
    return reached


def _brute_force(snapshot: genealogy.Snapshot, subject: int, party: int) -> genealogy.PartyView:
    """``party``'s share of the trace of ``subject``, unit by unit from the raw rows valid at
    ``snapshot``: its own units at their best exposure to the subject, and the units of others that
    its own reached lots went into (through lots, segments and unit links downstream of them), each
    at its best exposure among the rows downstream of those lots, or as the trace reached it through
    unit links."""

    def valid(transformation_id: int) -> bool:
        return transformation_id <= snapshot.last_transformation_id and transformation_id not in snapshot.retracted

    definite_value = Exposure.DEFINITE.value
    lot_edges = [
        (i, o, e == definite_value)
        for i, o, e, t in LotLink.objects.values_list("input_lot_id", "output_lot_id", "exposure", "transformation_id")
        if valid(t)
    ]
    unit_edges = [
        (i, o, e == definite_value)
        for i, o, e, t in UnitLink.objects.values_list(
            "input_unit_id", "output_unit_id", "exposure", "transformation_id"
        )
        if valid(t)
    ]
    inputs: dict[int, set[int]] = defaultdict(set)
    for segment, lot in SegmentInput.objects.values_list("segment_id", "lot_id"):
        inputs[segment].add(lot)
    segment_definite = {s: e == definite_value for s, e in Segment.objects.values_list("pk", "exposure")}
    rows = [
        (s, u)
        for s, u, t in SegmentMember.objects.values_list("segment_id", "unit_id", "transformation_id")
        if valid(t)
    ]
    owner_of = dict(Unit.objects.values_list("pk", "owner_id"))

    reached_lots = _closure({subject}, lot_edges)
    definite_lots = _closure({subject}, lot_edges, definite_only=True)
    reached = {s for s, lots in inputs.items() if lots & reached_lots}
    definite = {s for s in reached if segment_definite[s] and inputs[s] & definite_lots}

    # units through unit links: from every member of a reached segment with links out, as the trace walks them
    starts = {u: False for s, u in rows if s in reached}
    for s, u in rows:
        if s in reached:
            starts[u] = starts[u] or s in definite
    linked: dict[int, bool] = {}
    for start, start_definite in starts.items():
        anyhow = _closure({start}, unit_edges) - {start}
        surely = _closure({start}, unit_edges, definite_only=True) - {start} if start_definite else set()
        for unit in anyhow:
            linked[unit] = linked.get(unit, False) or unit in surely

    def count(segments: set[int], through_links: set[int]) -> dict[int, list[int]]:
        best: dict[int, bool] = {}
        for s, u in rows:
            if s in segments:
                best[u] = best.get(u, False) or s in definite
        for unit in through_links:
            best[unit] = best.get(unit, False) or linked[unit]
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for unit, surely in best.items():
            counts[owner_of[unit]][0 if surely else 1] += 1
        return counts

    everything = count(reached, set(linked))
    own_lots = {lot for lot in reached_lots if Lot.objects.get(pk=lot).owner_id == party}
    downstream_lots = _closure(own_lots, lot_edges) if own_lots else set()
    downstream = {s for s in reached if inputs[s] & downstream_lots}
    from_members = {u for s, u in rows if s in downstream}
    through_links = set().union(*(_closure({u}, unit_edges) - {u} for u in from_members)) & set(linked)
    others = count(downstream, through_links) if own_lots else {}
    return genealogy.PartyView(
        organisation_id=party,
        definite_units=everything.get(party, [0, 0])[0],
        potential_units=everything.get(party, [0, 0])[1],
        others=tuple(
            genealogy.OthersCount(owner, d, p) for owner, (d, p) in sorted(others.items()) if owner != party and d + p
        ),
    )


@pytest.mark.parametrize("seed", range(6))
def test_every_partys_view_from_every_lot_equals_a_count_unit_by_unit(seed):
    # given a world of a supplier, two cell makers (one assembling modules of both) and two brands
    world = _world(seed)
    assert Segment.objects.filter(owners_mixed=True).count() >= 2
    assert LotLink.objects.filter(exposure=Exposure.POTENTIAL).exists() and UnitLink.objects.exists()
    parties = [world.supplier, *world.makers, *world.brands]
    shown_others = 0
    for position in sorted({world.positions[len(world.positions) // 2], world.positions[-3], world.positions[-1]}):
        snapshot = genealogy.ledger_snapshot(position)
        for lot in world.lots:
            forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot])
            for party in parties:
                # when
                view = genealogy.party_view(forward, party)
                # then
                expected = _brute_force(snapshot, lot, party)
                assert view == expected, (position, lot, party)
                # and a result that kept no walk (traced again from the party's lots) says the same
                assert genealogy.party_view(replace(forward, walked=None, sums=None), party) == expected
                shown_others += bool(view.others) and party != Lot.objects.get(pk=lot).owner_id
    assert shown_others  # some party saw others' units from lots that are not its own subject


def test_a_cell_makers_share_of_a_material_lots_trace_is_told_without_tracing_again():
    # given a material lot in two makers' cell lots, each in one brand's units
    material = MaterialLotFactory()
    cells = [CellLotFactory(), CellLotFactory()]
    orders = [WorkOrderFactory(), WorkOrderFactory()]
    with transaction.atomic():
        entry = ledger_append(source="manual", summary="world")
        for cell in cells:
            transformation_record(
                entry=entry,
                owner=cell.owner,
                kind=RecordKind.MANUAL,
                reference=f"cell {cell.pk}",
                occurred_at=AT,
                input_lot_ids=[material.pk],
                output_lot_ids=[cell.pk],
            )
        for n, (cell, order) in enumerate(zip(cells, orders, strict=True)):
            made = units_create(
                owner=order.owner,
                product_model=order.product_model,
                serials=[f"C{n}-{i}" for i in range(3 + n)],
                produced_at=AT,
            )
            transformation_record(
                entry=entry,
                owner=order.owner,
                kind=RecordKind.MANUAL,
                reference=f"wo {n}",
                occurred_at=AT,
                input_lot_ids=[cell.pk],
                output_unit_ids=made,
            )
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[material.pk])
    # when
    with CaptureQueriesContext(connection) as queries:
        views = [genealogy.party_view(forward, cell.owner_id) for cell in cells]
    # then each maker sees the brand its own cell lot went into, and nothing of the other
    assert [view.others for view in views] == [
        (genealogy.OthersCount(orders[0].owner_id, 3, 0),),
        (genealogy.OthersCount(orders[1].owner_id, 4, 0),),
    ]
    # from the first trace's walk and segment rows: no lot link, no member, no roll-up row (no segment is mixed)
    read = " ".join(query["sql"] for query in queries)
    assert LotLink._meta.db_table not in read and SegmentInput._meta.db_table not in read
    assert SegmentMember._meta.db_table not in read and SegmentOwner._meta.db_table not in read
