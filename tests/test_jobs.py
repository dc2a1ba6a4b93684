"""Jobs: chunked, progress on the row, exactly once under redelivery; and through a real worker."""

import datetime as dt

import pytest
from django.db import transaction

from packs.models import Unit
from suppliers.models import CertificateStatus
from tests.factories import CertificateFactory, WorkOrderFactory
from traceability.core.jobs import job_create, job_step
from traceability.core.models import Job, JobKind, JobStatus
from traceability.genealogy import commissioning
from traceability.genealogy.commissioning import units_create
from traceability.ledger.models import LedgerEntry
from traceability.tasks import job_submit

AT = dt.datetime(2024, 6, 1, 8, tzinfo=dt.UTC)


def _commission_job(work_order, count, prefix="PB"):
    return job_create(
        kind=JobKind.COMMISSION_UNITS,
        params={"work_order_id": work_order.pk, "prefix": prefix, "start": 1, "count": count},
    )


@pytest.mark.django_db(transaction=True)
def test_job_runs_chunk_by_chunk_with_progress_on_its_row(monkeypatch):
    # given a job of 25,000 units, in chunks of 10,000
    job = _commission_job(WorkOrderFactory(), 25_000)
    sent = []
    # when the first message is handled
    job_step(job_id=job.pk, expected_done=0, enqueue=lambda job_id, done: sent.append(done))
    # then one chunk is done, the row says so, and the follow-up carries the new cursor
    job.refresh_from_db()
    assert (job.status, job.done, job.total, job.percent, sent) == (JobStatus.RUNNING, 10_000, 25_000, 40, [10_000])
    assert job.phase == "commissioned 10,000 of 25,000 units"
    # when the rest of the chain runs
    job_step(job_id=job.pk, expected_done=10_000, enqueue=lambda job_id, done: sent.append(done))
    job_step(job_id=job.pk, expected_done=20_000, enqueue=lambda job_id, done: sent.append(done))
    # then
    job.refresh_from_db()
    assert (job.status, job.done, job.percent, sent) == (JobStatus.SUCCEEDED, 25_000, 100, [10_000, 20_000])
    assert Unit.objects.count() == 25_000
    assert job.result["last_serial"] == "PB00025000"
    assert LedgerEntry.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_message_does_not_duplicate_work():
    # given a job whose first chunk has committed
    job = _commission_job(WorkOrderFactory(), 15_000)
    job_step(job_id=job.pk, expected_done=0, enqueue=lambda *a: None)
    # when the same first message is delivered again (worker died before acknowledging it)
    outcome = job_step(job_id=job.pk, expected_done=0, enqueue=lambda *a: pytest.fail("stale message enqueued"))
    # then it is dropped: nothing is written twice
    assert outcome is None
    assert Unit.objects.count() == 10_000
    assert Job.objects.get(pk=job.pk).done == 10_000


@pytest.mark.django_db(transaction=True)
def test_a_chunk_that_dies_half_way_leaves_nothing_and_is_redone(monkeypatch):
    # given a handler that dies after writing part of its chunk
    job = _commission_job(WorkOrderFactory(), 12_000)

    real_create = commissioning.units_create

    def dying_create(**kwargs):
        real_create(**kwargs)
        raise ConnectionError("worker lost")

    monkeypatch.setattr(commissioning, "units_create", dying_create)
    followups = []
    # when
    with pytest.raises(ConnectionError):
        job_step(job_id=job.pk, expected_done=0, enqueue=lambda job_id, done: followups.append(done))
    # then the chunk rolled back and the job says what happened
    assert Unit.objects.count() == 0
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == (JobStatus.FAILED, 0, "ConnectionError: worker lost")
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db
def test_a_job_refuses_serials_already_in_the_ledger():
    # given units PB00000001.. already commissioned
    work_order = WorkOrderFactory()
    first = _commission_job(work_order, 5)
    job_step(job_id=first.pk, expected_done=0, enqueue=lambda *a: None)
    second = _commission_job(work_order, 5)
    # when
    with pytest.raises(ValueError, match=r"serial\(s\) already in the ledger for PowerCore 10000 \(A\d+\): PB00000001"):
        job_step(job_id=second.pk, expected_done=0, enqueue=lambda *a: None)
    # then
    assert Unit.objects.count() == 5
    assert Job.objects.get(pk=second.pk).status == JobStatus.FAILED


def test_unknown_job_kind_is_refused():
    with pytest.raises(ValueError, match="no handler for job kind 'nope' \\(known: commission_units"):
        job_create(kind="nope", params={})


@pytest.mark.worker
def test_job_through_the_broker_and_a_real_worker(celery_worker, wait_until):
    # given a work order
    work_order = WorkOrderFactory()
    # when a 12,000-unit job is submitted (two chunks, two messages through the broker)
    with transaction.atomic():
        job = _commission_job(work_order, 12_000)
        job_submit(job)
    # then the worker runs both chunks and the row shows the outcome
    wait_until(lambda: Job.objects.get(pk=job.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), what="the job")
    job.refresh_from_db()
    assert (job.status, job.done, job.percent, job.error) == (JobStatus.SUCCEEDED, 12_000, 100, "")
    assert Unit.objects.filter(work_order=work_order).count() == 12_000


@pytest.mark.worker
def test_periodic_certificate_expiry_through_a_real_worker(celery_worker, wait_until):
    # given one lapsed and one current certificate
    lapsed = CertificateFactory(valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2021, 1, 1))
    current = CertificateFactory()
    from suppliers.tasks import certificates_expire

    # when beat's task is sent through the broker
    certificates_expire.delay()
    # then
    wait_until(lambda: lapsed.status_changes.exists(), what="the expiry")
    lapsed.refresh_from_db()
    current.refresh_from_db()
    assert (lapsed.status, current.status) == (CertificateStatus.EXPIRED, CertificateStatus.VALID)
    change = lapsed.status_changes.get()
    assert (change.from_status, change.to_status) == ("valid", "expired")


@pytest.mark.django_db(transaction=True)
def test_stalled_jobs_are_resent_at_their_cursor_and_finished_ones_are_not():
    # given a job stopped after its first chunk (its next message lost), and a finished job
    import datetime as dt

    from django.utils import timezone

    from traceability.core.jobs import jobs_stalled

    stalled = _commission_job(WorkOrderFactory(), 15_000)
    job_step(job_id=stalled.pk, expected_done=0, enqueue=lambda *a: None)
    finished = _commission_job(WorkOrderFactory(), 10)
    job_step(job_id=finished.pk, expected_done=0, enqueue=lambda *a: None)
    later = timezone.now() + dt.timedelta(minutes=10)
    # when
    found = jobs_stalled(quiet_for=dt.timedelta(minutes=5), now=later)
    fresh = jobs_stalled(quiet_for=dt.timedelta(minutes=5))
    # then resending the cursor finishes the job exactly once
    assert (found, fresh) == ([(stalled.pk, 10_000)], [])
    job_step(job_id=stalled.pk, expected_done=10_000, enqueue=lambda *a: None)
    job_step(job_id=stalled.pk, expected_done=10_000, enqueue=lambda *a: pytest.fail("resent twice"))
    assert Unit.objects.filter(work_order_id=stalled.params["work_order_id"]).count() == 15_000


@pytest.mark.worker
def test_trace_run_through_the_broker_and_a_real_worker(celery_worker, wait_until):
    # given
    from tests.trace_world import build_world
    from traceability.investigations.services import finding_record

    w = build_world()
    # when a finding is recorded through the service the interfaces call
    finding = finding_record(
        owner=w.m1.owner,
        subject=w.m1,
        category="metallic_debris",
        severity="critical",
        description="debris",
        submit=job_submit,
    )
    run = finding.investigation.runs.get()
    # then the worker traces it
    wait_until(lambda: Job.objects.get(pk=run.job_id).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), what="run")
    run.refresh_from_db()
    assert (run.job.status, run.job.error) == (JobStatus.SUCCEEDED, "")
    assert (run.definite_units, run.potential_units, run.consignees) == (4, 3, 2)
    assert (run.segments.count(), run.units.count()) == (2, 1)  # MOD1 and {C2, C4}; U8 via U1


@pytest.mark.worker
def test_a_worker_killed_mid_job_is_recovered_and_the_work_done_exactly_once(worker_process, wait_until):
    # given a 12-chunk job picked up by a real worker process
    import time

    from traceability.tasks import jobs_resume

    job = _commission_job(WorkOrderFactory(), 120_000)
    first = worker_process()
    with transaction.atomic():
        job_submit(job)
    wait_until(lambda: Job.objects.get(pk=job.pk).done >= 20_000, timeout=120, what="two chunks")
    # when the worker is killed in the middle of the job
    first.kill()
    first.wait()
    stopped_at = Job.objects.get(pk=job.pk).done
    time.sleep(2)
    assert Job.objects.get(pk=job.pk).done == stopped_at < 120_000
    # and a new worker comes up while beat's watchdog resends the stalled job's cursor
    worker_process()
    assert jobs_resume(quiet_minutes=0) == 1
    # then the job finishes, every chunk done exactly once
    wait_until(lambda: Job.objects.get(pk=job.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=180)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == (JobStatus.SUCCEEDED, 120_000, "")
    assert Unit.objects.count() == 120_000
    assert LedgerEntry.objects.count() == 12


@pytest.mark.worker
def test_a_trace_run_whose_worker_is_killed_finishes_exactly_once(worker_process, wait_until):
    # given a lot that reaches 175 segments (units built from every 1-3 of 10 cell lots), traced one
    # segment per chunk by a real worker process
    import itertools
    import time

    from tests.factories import CellLotFactory, MaterialLotFactory
    from traceability.genealogy.models import RecordKind
    from traceability.genealogy.writes import UnitBuild, transformation_record, unit_builds_record
    from traceability.investigations.models import TraceRunSegment
    from traceability.investigations.services import finding_record
    from traceability.ledger.services import ledger_append

    work_order = WorkOrderFactory()
    material, cells = MaterialLotFactory(), [CellLotFactory().pk for _ in range(10)]
    sets = [frozenset(c) for size in (1, 2, 3) for c in itertools.combinations(cells, size)]
    with transaction.atomic():
        units = units_create(
            owner=work_order.owner,
            product_model=work_order.product_model,
            serials=[f"K{i:03d}" for i in range(len(sets))],
            produced_at=AT,
        )
        entry = ledger_append(source="manual", summary="cells and builds")
        transformation_record(
            entry=entry,
            owner=material.owner,
            kind=RecordKind.MANUAL,
            reference="cells",
            occurred_at=AT,
            input_lot_ids=[material.pk],
            output_lot_ids=cells,
        )
        unit_builds_record(
            entry=entry,
            owner=work_order.owner,
            builds=[UnitBuild(f"b{u}", u, lots, AT) for u, lots in zip(units, sets, strict=True)],
        )
    worker = worker_process(LEDGER_TRACE_CHUNK_UNITS="1")
    finding = finding_record(
        owner=material.owner, subject=material, category="other", severity="high", description="x", submit=job_submit
    )
    job = finding.investigation.runs.get().job
    wait_until(lambda: Job.objects.get(pk=job.pk).done >= 20, timeout=120, what="twenty chunks")
    # when the worker is killed while it waits to start its next chunk (the test holds the job's row)
    with transaction.atomic():
        stopped_at = Job.objects.select_for_update().get(pk=job.pk).done
        time.sleep(1)
        worker.kill()
        worker.wait()
    assert stopped_at < len(sets)
    # and a new worker comes up while beat's watchdog resends the stalled run's cursor
    worker_process(LEDGER_TRACE_CHUNK_UNITS="1")
    from traceability.tasks import jobs_resume

    assert jobs_resume(quiet_minutes=0) == 1
    # then the run finishes with every segment stored once and every unit counted once
    wait_until(lambda: Job.objects.get(pk=job.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=180)
    job.refresh_from_db()
    run = job.trace_run
    assert (job.status, job.error, job.done, job.total) == (JobStatus.SUCCEEDED, "", len(sets), len(sets))
    assert TraceRunSegment.objects.filter(run=run).count() == len(sets)
    assert (run.definite_units, run.potential_units) == (len(sets), 0)
    assert run.investigation.status == "traced"
