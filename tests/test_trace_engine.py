"""The trace engine on the database: link rule, retraction, runs, diffs, consignees, backward."""

import pytest
from django.db import transaction

from tests.jobs_support import run_job
from tests.trace_world import build_world
from traceability import genealogy
from traceability.core.db import cursor_planned_without
from traceability.core.models import JobStatus
from traceability.genealogy.writes import transformation_retract
from traceability.investigations.models import InvestigationStatus, TraceRun
from traceability.investigations.services import InvestigationError, finding_record, trace_run_start
from traceability.ledger.services import ledger_append

pytestmark = pytest.mark.django_db


def exposures(forward):
    return {u.unit_id: ("definite" if u.definite else "potential") for u in genealogy.all_affected_units(forward)}


def test_forward_trace_applies_the_link_rule_at_depth_four_and_beyond():
    # given
    w = build_world()
    # when
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    # then
    u = w.u
    assert exposures(forward) == {
        u[1]: "definite",
        u[2]: "definite",
        u[3]: "definite",
        u[8]: "definite",
        u[4]: "potential",
        u[5]: "potential",
        u[6]: "potential",
    }
    assert genealogy.affected_counts(forward) == (4, 3)
    # the explanation of U2: M1 → M2 → C1 → MOD1 → U2, naming the records
    path = next(a.path for a in genealogy.all_affected_units(forward) if a.unit_id == u[2])
    assert [(link.source, link.target, link.kinds) for link in path] == [
        (w.m1.pk, w.m2.pk, "LL"),
        (w.m2.pk, w.c1.pk, "LL"),
        (w.c1.pk, w.mod1.pk, "LL"),
        (w.mod1.pk, u[2], "LU"),
    ]
    assert [link.record for link in path][:3] == [w.t_m1_m2.pk, w.t_m2_c1.pk, w.t_c1_mod.pk]


def test_consignees_through_cartons_and_pallets():
    # given
    w = build_world()
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    # when
    receivers = genealogy.consignees(forward)
    # then U1..U3 reached D1 on a pallet, U4..U6 reached D2 in a carton
    assert [(c.organisation_id, c.units) for c in receivers] == [(w.d1.pk, 3), (w.d2.pk, 3)]


def test_a_retracted_link_stops_counting_from_its_position_and_earlier_traces_reproduce():
    # given a snapshot before the retraction
    w = build_world()
    before = genealogy.ledger_snapshot()
    # when the cell line 1 record is declared erroneous
    with transaction.atomic():
        transformation_retract(
            transformation=w.t_m2_c1, entry=ledger_append(source="manual", summary="error"), reason="wrong lot"
        )
    # then traces now no longer reach C1's units, but a trace at the old position still does
    now = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    then = genealogy.forward_trace(snapshot=before, seed_lot_ids=[w.m1.pk])
    assert set(exposures(now)) == {w.u[4], w.u[5], w.u[6]}
    assert genealogy.affected_counts(then) == (4, 3)
    # and tracing the retracted link's own output finds it made nothing from M2 any more
    assert genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m2.pk]).lots.keys() == {
        w.m2.pk,
        w.c2.pk,
        w.c3.pk,
    }


def test_backward_trace_of_a_refurbished_unit_reaches_every_upstream_lot():
    # given
    w = build_world()
    # when
    backward = genealogy.backward_trace(snapshot=genealogy.ledger_snapshot(), unit_id=w.u[8])
    # then
    assert set(backward.lots) == {w.mod1.pk, w.c1.pk, w.m2.pk, w.m1.pk}
    assert set(backward.units) == {w.u[1]}
    assert all(r.definite for r in backward.lots.values())


def test_siblings_share_a_direct_input_lot():
    w = build_world()
    found = genealogy.siblings(snapshot=genealogy.ledger_snapshot(), unit_id=w.u[4])
    assert found.shared_lots == [w.c2.pk, w.c4.pk]
    assert found.units == {w.u[5]: [w.c2.pk, w.c4.pk], w.u[6]: [w.c2.pk, w.c4.pk], w.u[7]: [w.c4.pk]}
    assert found.next_after is None
    first = genealogy.siblings(snapshot=genealogy.ledger_snapshot(), unit_id=w.u[4], limit=1)
    assert (first.units, first.next_after) == ({w.u[5]: [w.c2.pk, w.c4.pk]}, w.u[5])


def test_finding_opens_an_investigation_with_a_preview_and_a_run_that_persists_the_result():
    # given
    w = build_world()
    submitted = []
    # when
    finding = finding_record(
        owner=w.m1.owner,
        subject=w.m1,
        category="metallic_debris",
        severity="critical",
        description="Fe particles up to 45 µm",
        submit=submitted.append,
    )
    investigation = finding.investigation
    # then the preview is there at once
    assert investigation.preview == {
        "position": 1,
        "definite_units": 4,
        "potential_units": 3,
        "consignees": 2,
        "countries": ["CN"],  # where the units were sold: both distributors are in China
        # the supplier's share: none of the units are its own; the brand's carry its lot, counted
        "party_view": {
            "definite_units": 0,
            "potential_units": 0,
            "consignees": 0,
            "others": [{"organisation": w.brand.slug, "definite_units": 4, "potential_units": 3}],
        },
    }
    assert investigation.status == InvestigationStatus.TRACING
    run = investigation.runs.get()
    assert submitted == [run.job]
    # when the job runs
    run_job(run.job)
    # then
    run.refresh_from_db()
    investigation.refresh_from_db()
    assert (run.definite_units, run.potential_units, run.consignees) == (4, 3, 2)
    assert run.job.status == JobStatus.SUCCEEDED and run.job.percent == 100
    assert investigation.status == InvestigationStatus.TRACED
    assert list(investigation.transitions.values_list("to_status", flat=True)) == ["open", "tracing", "traced"]


def test_a_second_finding_on_a_subject_being_traced_is_refused():
    w = build_world()
    raise_finding = dict(
        owner=w.m1.owner, subject=w.m1, category="metallic_debris", severity="high", submit=lambda job: None
    )
    finding_record(description="first", **raise_finding)
    with pytest.raises(InvestigationError, match=r"already running for investigation #\d+"):
        finding_record(description="second", **raise_finding)
    assert TraceRun.objects.count() == 1


def test_rerun_after_a_retraction_reports_the_difference():
    # given a traced investigation
    w = build_world()
    submitted = []
    finding = finding_record(
        owner=w.m1.owner,
        subject=w.m1,
        category="metallic_debris",
        severity="high",
        description="x",
        submit=submitted.append,
    )
    run_job(submitted.pop())
    with transaction.atomic():
        transformation_retract(transformation=w.t_m2_c1, entry=ledger_append(source="manual", summary="e"), reason="r")
    # when
    run = trace_run_start(investigation=finding.investigation, submit=submitted.append)
    run_job(submitted.pop())
    # then
    run.refresh_from_db()
    assert (run.diff["added"], run.diff["gone"], run.diff["exposure_changed"]) == (0, 4, 0)
    assert sorted(run.diff["gone_sample"]) == sorted([w.u[1], w.u[2], w.u[3], w.u[8]])
    assert (run.diff["from_position"], run.diff["to_position"]) == (1, 2)


def test_a_finding_with_nothing_downstream_traces_to_an_empty_result():
    # given a lot nothing was made from
    w = build_world()
    submitted = []
    # when
    finding = finding_record(
        owner=w.m3.owner,
        subject=w.c3,
        category="separator_defect",
        severity="low",
        description="burr",
        submit=submitted.append,
    )
    run_job(submitted.pop())
    # then
    run = finding.investigation.runs.get()
    assert finding.investigation.preview["definite_units"] == finding.investigation.preview["potential_units"] == 0
    assert (run.definite_units, run.potential_units, run.consignees, run.job.status) == (0, 0, 0, JobStatus.SUCCEEDED)


def test_a_supplier_finding_within_a_window_seeds_only_the_lots_made_in_it():
    # given M1 made in March 2024, M2 in June 2024, both by one supplier
    import datetime as dt

    from traceability.investigations.services import finding_seeds

    w = build_world()
    supplier = w.m1.owner
    w.m2.owner = supplier
    w.m2.save()
    for lot, month in ((w.m1, 3), (w.m2, 6)):
        lot.produced_from = dt.datetime(2024, month, 1, tzinfo=dt.UTC)
        lot.produced_to = dt.datetime(2024, month, 5, tzinfo=dt.UTC)
        lot.save()
    # when
    finding = finding_record(
        owner=supplier,
        subject=supplier,
        category="metallic_debris",
        severity="high",
        description="line 2",
        window_from=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        window_to=dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
        submit=lambda job: None,
    )
    # then
    assert finding_seeds(finding) == ([w.m2.pk], [])
    assert finding.investigation.preview["definite_units"] == 4


def test_a_window_that_ends_before_it_starts_is_refused_and_nothing_is_written():
    import datetime as dt

    from traceability.investigations.models import Finding

    w = build_world()
    with pytest.raises(InvestigationError, match=r"the window ends \(2024-01-01\) before it starts \(2024-02-01\)"):
        finding_record(
            owner=w.m1.owner,
            subject=w.m1.owner,
            category="other",
            severity="low",
            description="x",
            window_from=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
            window_to=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            submit=lambda job: None,
        )
    assert Finding.objects.count() == 0


def test_consignees_count_cartons_nested_at_different_depths_on_one_pallet():
    # given U1..U3 in carton K1 directly on pallet P1 (the world), and U4..U6 in carton K2 inside a
    # case on the same pallet, the pallet shipped to D1
    from packs.models import Container, ContainerPacking, ShipmentItem
    from tests.trace_world import AT

    w = build_world()
    case = Container.objects.create(owner=w.brand, identity="own-case:case-1", kind="other")
    ContainerPacking.objects.create(parent=case, child=w.k2, packed_at=AT)
    ContainerPacking.objects.create(parent=w.p1, child=case, packed_at=AT)
    ShipmentItem.objects.filter(container=w.k2).delete()
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    # when
    receivers = genealogy.consignees(forward)
    # then
    assert [(c.organisation_id, c.units) for c in receivers] == [(w.d1.pk, 6)]


def test_only_runs_move_an_investigation_into_and_out_of_tracing():
    # given an investigation being traced
    from traceability.investigations.services import investigation_transition

    w = build_world()
    submitted = []
    finding = finding_record(
        owner=w.m1.owner,
        subject=w.m1,
        category="metallic_debris",
        severity="high",
        description="x",
        submit=submitted.append,
    )
    investigation = finding.investigation
    # when / then a person cannot move it back to open, nor close it mid-run
    for target in ("open", "closed", "traced"):
        with pytest.raises(InvestigationError, match=f"cannot go from tracing to {target} \\(allowed: none\\)"):
            investigation_transition(investigation=investigation, to=target)
    # and once traced, reviewed and closed, it cannot be traced again
    run_job(submitted.pop())
    investigation.refresh_from_db()
    investigation_transition(investigation=investigation, to="under_review")
    investigation_transition(investigation=investigation, to="closed")
    with pytest.raises(InvestigationError, match="cannot go from closed to tracing"):
        trace_run_start(investigation=investigation, submit=submitted.append)
    assert (investigation.runs.count(), submitted) == (1, [])


def test_consignees_of_units_shipped_loose():
    # given U5 shipped on its own to a third distributor, and an unaffected U7 shipped loose too
    import datetime as dt

    from packs.models import Shipment, ShipmentItem
    from suppliers.models import Role
    from tests.factories import OrganisationFactory
    from tests.trace_world import AT

    w = build_world()
    d3 = OrganisationFactory(role=Role.DISTRIBUTOR)
    loose = Shipment.objects.create(owner=w.brand, reference="DA-3", consignee=d3, shipped_at=AT + dt.timedelta(days=9))
    ShipmentItem.objects.create(shipment=loose, unit_id=w.u[5])
    ShipmentItem.objects.create(shipment=loose, unit_id=w.u[7])
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    # when
    receivers = genealogy.consignees(forward)
    # then
    assert [(c.organisation_id, c.units) for c in receivers] == [(w.d1.pk, 3), (w.d2.pk, 3), (d3.pk, 1)]


def _planner_settings() -> dict[str, str]:
    """The three planner switches the trace sets, as the caller's connection sees them now; on
    SQLite, which has no planner switches, what a plain cursor answers instead."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT 1")
            return {"sqlite": str(cursor.fetchone()[0])}
        cursor.execute(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('enable_seqscan', 'enable_hashjoin', 'enable_mergejoin')"
        )
        return dict(cursor.fetchall())


def test_planner_settings_of_one_query_do_not_outlast_it_in_the_callers_transaction():
    from django.db import connection

    as_usual = {"enable_seqscan": "on", "enable_hashjoin": "on", "enable_mergejoin": "on"}
    without_joins = {**as_usual, "enable_hashjoin": "off", "enable_mergejoin": "off"}
    if connection.vendor != "postgresql":
        as_usual = without_joins = {"sqlite": "1"}
    # given a caller's transaction, as finding_record counts its preview inside one
    w = build_world()
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    with transaction.atomic():
        # when the consignees are read (the roll-up is summed with sequential scans off)
        receivers = genealogy.consignees(forward)
        # then the caller's later statements are planned as usual
        assert _planner_settings() == as_usual
        # and inside the helper its settings hold; after it they are back
        with cursor_planned_without("hashjoin", "mergejoin"):
            assert _planner_settings() == without_joins
        assert _planner_settings() == as_usual
    assert [(c.organisation_id, c.units) for c in receivers] == [(w.d1.pk, 3), (w.d2.pk, 3)]
