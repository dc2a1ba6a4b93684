"""A trace's breakdown (``affected_breakdown``), held to a GROUP BY over its affected units taken one by one.

The worlds of ``test_party_view`` (a supplier, two cell makers, a module assembler and two brands;
segments holding both brands' units, refurbished units, retracted records, older positions), with
units made in several months and at several sites, and some of one brand's units shipped to the
other brand and to a distributor, so that a party's units are those it owns and those it received.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Shipment, ShipmentItem, Unit
from suppliers.models import Organisation, Role
from tests.factories import OrganisationFactory, SiteFactory
from tests.test_api_support import callers, client_for, member, more_units, traced
from tests.test_party_view import _world
from tests.trace_world import build_world
from traceability import genealogy
from traceability.genealogy.models import SegmentMember
from traceability.investigations.models import TraceRun
from traceability.investigations.selectors import affected_breakdown
from traceability.investigations.services import run_stored_breakdown

pytestmark = pytest.mark.django_db

AT = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)


def _varied(seed: int) -> tuple[list[int], list[int]]:
    """A ``_world`` whose units were made over three months at three sites (one left without a site
    or date), a third of the first brand's units shipped to the second brand or to a distributor;
    (the parties to read as, the ledger positions written)."""
    world = _world(seed)
    rng = random.Random(seed)
    sites = [SiteFactory(owner_id=world.brands[0]), SiteFactory(owner_id=world.brands[1]), None]
    for unit in Unit.objects.order_by("pk").values_list("pk", flat=True):
        # Units are reference data written once; their dates and sites varied here as an import
        # would have set them, to give every dimension several groups.
        Unit.objects.filter(pk=unit).update(
            produced_at=None if unit % 11 == 0 else AT + dt.timedelta(days=31 * rng.randint(0, 2)),
            site=rng.choice(sites),
        )
    distributor = OrganisationFactory(role=Role.DISTRIBUTOR)
    shipped = Unit.objects.filter(owner_id=world.brands[0]).order_by("pk").values_list("pk", flat=True)[::3]
    for n, unit in enumerate(shipped):
        consignee = Organisation.objects.get(pk=world.brands[1]) if n % 2 else distributor
        shipment = Shipment.objects.create(
            owner_id=world.brands[0], reference=f"S-{n}", consignee=consignee, shipped_at=AT + dt.timedelta(days=n)
        )
        ShipmentItem.objects.create(shipment=shipment, unit_id=unit)
    return [world.supplier, *world.makers, *world.brands, distributor.pk], world.positions


def _naive(forward: genealogy.Forward, party: int | None) -> dict[str, dict]:
    """The breakdown of ``forward`` from the set of its affected units read row by row, grouped by
    the ORM over ``Unit`` (what the party may see: the units it owns or received)."""
    snapshot = forward.snapshot
    affected, definite = set(forward.units), {u for u, r in forward.units.items() if r.definite}
    for segment, unit, record in SegmentMember.objects.values_list("segment_id", "unit_id", "transformation_id"):
        valid = record <= snapshot.last_transformation_id and record not in snapshot.retracted
        if valid and segment in forward.segments:
            affected.add(unit)
            if forward.segments[segment].definite:
                definite.add(unit)
    units = Unit.objects.filter(pk__in=sorted(affected))
    if party is not None:
        units = units.filter(genealogy.units_of(party))
    counts = {"units": Count("pk"), "definite": Count("pk", filter=Q(pk__in=sorted(definite)))}

    def by(*fields: str, **extra) -> dict:
        rows = units.annotate(**extra).values(*fields).annotate(**counts).order_by()
        return {
            tuple(row[f] for f in fields): (row["units"], row["definite"], row["units"] - row["definite"])
            for row in rows
        }

    months = by("month", month=TruncMonth("produced_at"))
    return {
        "models": by("product_model__model_number", "product_model__name"),
        "orders": by("work_order__number"),
        "sites": by("site_id", "site__name"),
        "months": {(f"{m:%Y-%m}" if m else None,): counted for (m,), counted in months.items()},
    }


def _shown(breakdown) -> dict[str, dict]:
    def key(counted) -> tuple[int, int, int]:
        return (counted.units, counted.definite, counted.potential)

    return {
        "models": {(c.model_number, c.name): key(c) for c in breakdown.product_models},
        "orders": {(c.number,): key(c) for c in breakdown.work_orders},
        "sites": {(c.site_id, c.name): key(c) for c in breakdown.sites},
        "months": {(c.month,): key(c) for c in breakdown.production_months},
    }


@pytest.mark.parametrize("seed", range(4))
def test_the_breakdown_equals_a_group_by_over_the_affected_units_as_each_party(seed):
    # given a world of several owners, with units received from others
    parties, positions = _varied(seed)
    grouped = 0
    for position in (positions[len(positions) // 2], positions[-1]):
        snapshot = genealogy.ledger_snapshot(position)
        for lot in _lots():
            forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot])
            for party in [None, *parties]:
                # when
                shown = None if party is None else genealogy.units_of(party)
                breakdown = affected_breakdown(forward=forward, shown=shown, party_id=party)
                # then
                expected = _naive(forward, party)
                assert _shown(breakdown) == expected, (snapshot.position, lot, party)
                grouped += len(expected["months"]) > 1
            assert sum(c.units for c in affected_breakdown(forward=forward).sites) == sum(
                genealogy.affected_counts(forward)
            )
    assert grouped  # some breakdowns spread over several months


def _lots() -> list[int]:
    return list(Lot.objects.order_by("pk").values_list("pk", flat=True))


def test_a_breakdown_costs_the_same_queries_whatever_the_number_of_units_and_groups():
    # given
    parties, _ = _varied(7)
    lots = _lots()
    forwards = [genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot]) for lot in lots]
    sizes = [sum(genealogy.affected_counts(f)) for f in forwards]
    small, large = forwards[sizes.index(min(s for s in sizes if s))], forwards[sizes.index(max(sizes))]
    for party in (None, parties[3]):
        shown = None if party is None else genealogy.units_of(party)
        counted = []
        for forward in (small, large):
            genealogy.sums_of(forward)  # read with the result's counts, before any breakdown
            # when
            with CaptureQueriesContext(connection) as queries:
                affected_breakdown(forward=forward, shown=shown, party_id=party)
            counted.append(len(queries.captured_queries))
        # then
        assert counted[0] == counted[1], party


def test_a_finished_runs_breakdown_and_consignees_are_read_as_stored_by_whom_sees_the_whole_result():
    # given a brand's run of 67 units, finished, read by a regulator
    w = build_world()
    more_units(w, 60)
    run = traced(client_for(member(w.brand)), w)["run"]
    regulator = callers(w)["regulator"]
    paths = [f"/api/v1/runs/{run}/breakdown/", f"/api/v1/runs/{run}/consignees/"]
    # when
    with CaptureQueriesContext(connection) as stored_reads:
        stored = [regulator.get(path).json() for path in paths]
    TraceRun.objects.filter(pk=run).update(breakdown=None)  # as a run finished before breakdowns were stored
    counted = [regulator.get(path).json() for path in paths]
    # then the answer is the one counted from the result, with no member row read
    assert stored == counted
    assert [(m["units"], m["definite"]) for m in stored[0]["production_months"]] == [(60, 60), (7, 4)]
    assert [c["units"] for c in stored[1]["results"]] == [63, 3]
    assert not any(SegmentMember._meta.db_table in q["sql"] for q in stored_reads.captured_queries)


def test_the_investigations_owner_reads_its_share_of_the_breakdown_as_the_run_stored_it():
    # given a brand's run of 67 units of its own and another brand's 7, finished, read by the brand
    w = build_world()
    more_units(w, 60)
    brand = client_for(member(w.brand))
    run = traced(brand, w)["run"]
    paths = [f"/api/v1/runs/{run}/breakdown/", f"/api/v1/runs/{run}/consignees/"]
    # when
    with CaptureQueriesContext(connection) as stored_reads:
        stored = [brand.get(path).json() for path in paths]
    assert TraceRun.objects.get(pk=run).party_breakdown is not None
    TraceRun.objects.filter(pk=run).update(party_breakdown=None)  # as a run finished before it was stored
    counted = [brand.get(path).json() for path in paths]
    # then its share read as stored is its share counted from the result, with no member row read
    assert stored == counted
    assert [(m["units"], m["definite"]) for m in stored[0]["production_months"]] == [(60, 60), (7, 4)]
    assert [c["units"] for c in stored[1]["results"]] == [63, 3]
    assert not any(SegmentMember._meta.db_table in q["sql"] for q in stored_reads.captured_queries)


def test_a_run_stores_its_breakdown_and_consignees_when_it_finishes():
    # given
    w = build_world()
    # when
    run = TraceRun.objects.get(pk=traced(client_for(member(w.brand)), w)["run"])
    # then
    model, order, site = w.work_order.product_model_id, w.work_order.pk, w.work_order.site_id
    assert run.breakdown == {
        "groups": [[model, order, site, "2024-03", 7, 4]],
        "consignees": [
            [w.d1.pk, 3, "2024-03-03T08:00:00+00:00", "2024-03-03T08:00:00+00:00", []],
            [w.d2.pk, 3, "2024-03-04T08:00:00+00:00", "2024-03-04T08:00:00+00:00", []],
        ],
    }


def test_a_regulators_breakdown_and_consignees_of_a_run_cost_the_same_queries_whatever_its_size():
    # given the brand's run of 7 units to two consignees, then another of 67 units to three
    w = build_world()
    brand, regulator = client_for(member(w.brand)), callers(w)["regulator"]
    small = traced(brand, w)["run"]
    more_units(w, 60)
    w.d3 = OrganisationFactory(role=Role.DISTRIBUTOR)
    shipment = Shipment.objects.create(owner=w.brand, reference="DA-3", consignee=w.d3, shipped_at=AT)
    ShipmentItem.objects.create(shipment=shipment, unit_id=w.u[8])
    large = traced(brand, w)["run"]
    counted = []
    for run in (small, large):
        # when
        with CaptureQueriesContext(connection) as queries:
            answers = [regulator.get(f"/api/v1/runs/{run}/{part}/").json() for part in ("breakdown", "consignees")]
        counted.append(len(queries.captured_queries))
    # then
    assert [c["units"] for c in answers[1]["results"]] == [63, 3, 1]
    assert counted[0] == counted[1]


def test_a_run_stores_its_consignees_ship_to_countries_and_one_stored_without_them_reads_none():
    # given D1's shipment addressed to its warehouse in Italy
    w = build_world()
    Shipment.objects.filter(consignee=w.d1).update(ship_to=SiteFactory(owner=w.d1, country="IT"))
    run = TraceRun.objects.get(pk=traced(client_for(member(w.brand)), w)["run"])
    # when
    stored = run_stored_breakdown(run)
    run.breakdown["consignees"] = [row[:4] for row in run.breakdown["consignees"]]  # as stored before
    older = run_stored_breakdown(run)
    # then
    assert [row[4] for row in TraceRun.objects.get(pk=run.pk).breakdown["consignees"]] == [["IT"], []]
    assert stored is not None and older is not None
    assert [(c.organisation_id, c.ship_to_countries) for c in stored[1]] == [
        (w.d1.pk, frozenset({"IT"})),
        (w.d2.pk, frozenset()),
    ]
    assert [c.ship_to_countries for c in older[1]] == [frozenset(), frozenset()]
