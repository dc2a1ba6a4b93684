"""Our implementation's cases, printed next to the floors with the ratio case / floor.

Add callables to ``CASES``. Each takes the subject lot id (an ``int``: a lot of any level whose
forward reach is ~10k / ~100k / ~1M units, or the lot that reaches most) and returns the elapsed
time of the operation in milliseconds. Do setup and cleanup (e.g. deleting an earlier run's
results) outside the timed part, and time only the operation. Django is configured against the
bench database before this module is imported, so cases may use the ORM and the services.

Optional attributes on the callable:
* ``name``: the label printed (default: the function's ``__name__``);
* ``floor``: which floor the ratio is taken against, one of ``"write"`` (default: walk + segments
  + write the affected unit ids), ``"count"`` (count the affected units), ``"consignees"``
  (consignees of the affected units) or ``"walk"`` (the lot graph walk alone).

Each case runs once untimed, then ``--runs`` times; the median is printed.

The end-to-end case goes through the real thing: ``finding_record`` (which also counts the impact
preview), a Celery message on Redis, a separate ``celery worker`` process running the trace run's
chunks against the bench database, and the first page of the persisted result.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from bench import db

CASES: list[Callable[[int], float]] = []

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
_worker: subprocess.Popen | None = None
_prefix = f"ledger-bench-{uuid.uuid4().hex[:8]}:"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _start_worker() -> None:
    """One real worker process on the bench database and a private Redis key prefix."""
    global _worker
    if _worker is not None:
        return
    from traceability.celery import app

    app.conf.broker_url = BROKER_URL
    app.conf.broker_transport_options = {"visibility_timeout": 3600, "global_keyprefix": _prefix}
    app.close()
    env = {
        **os.environ,
        "DATABASE_URL": db.bench_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_BROKER_KEYPREFIX": _prefix,
    }
    _worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "traceability",
            "worker",
            "--pool",
            "solo",
            "-Q",
            "light,heavy",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=db.PROJECT_DIR,
        env=env,
    )
    atexit.register(_worker.terminate)
    time.sleep(3)


def _owner_and_lot(lot_id: int):
    from cells.models import Lot

    lot = Lot.objects.select_related("owner").get(pk=lot_id)
    return lot.owner, lot


def trace_end_to_end(lot_id: int) -> float:
    return _end_to_end(lot_id, reaches_units=True)


def _end_to_end(lot_id: int, *, reaches_units: bool) -> float:
    from traceability import genealogy
    from traceability.core.models import Job, JobStatus
    from traceability.investigations.services import finding_record, run_result
    from traceability.tasks import job_submit

    _start_worker()
    owner, lot = _owner_and_lot(lot_id)
    started = time.perf_counter()
    finding = finding_record(
        owner=owner, subject=lot, category="metallic_debris", severity="high", description="bench", submit=job_submit
    )
    run = finding.investigation.runs.get()
    while (status := Job.objects.filter(pk=run.job_id).values_list("status", flat=True).get()) not in (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
    ):
        time.sleep(0.001)
    if status == JobStatus.FAILED:
        raise SystemExit(f"trace run {run.pk} failed: {Job.objects.get(pk=run.job_id).error}")
    run.refresh_from_db()
    first_page = genealogy.affected_units(run_result(run), limit=100)
    elapsed = _ms_since(started)
    assert bool(first_page) == reaches_units, f"the run found {len(first_page)} units on its first page"
    return elapsed


trace_end_to_end.name = "finding → run persisted (Celery)"


def fixed_costs(runs: int) -> dict[str, float]:
    """What the end-to-end case costs whatever the size, medians of ``runs``:

    * ``empty``: the same path (finding, preview, Celery, run, first page) for a lot that reaches
      no unit, so every step does its fixed work and nothing more;
    * ``ping``: one round trip to the same worker through the same broker (Celery's control ping),
      the queue's own floor under any task.
    """
    from django.db import connection

    from bench.floors import median_ms
    from traceability.celery import app

    _start_worker()
    with connection.cursor() as cursor:  # a lot feeding no other lot and no unit
        cursor.execute(
            "SELECT min(l.id) FROM cells_lot l WHERE NOT EXISTS"
            " (SELECT 1 FROM traceability_lotlink k WHERE k.input_lot_id = l.id) AND NOT EXISTS"
            " (SELECT 1 FROM traceability_segmentinput i WHERE i.lot_id = l.id)"
        )
        (lot_id,) = cursor.fetchone()
    if lot_id is None:
        raise SystemExit("the bench world has no lot that reaches nothing")

    def ping() -> None:
        if not app.control.ping(timeout=1, limit=1):
            raise SystemExit("the bench worker did not answer a ping")

    return {
        "empty": median_ms(lambda: _end_to_end(lot_id, reaches_units=False), runs),
        "ping": median_ms(ping, runs),
    }


def impact_count(lot_id: int) -> float:
    from traceability import genealogy

    started = time.perf_counter()
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
    genealogy.affected_counts(forward)
    return _ms_since(started)


impact_count.name = "impact preview count"
impact_count.floor = "count"


def consignees(lot_id: int) -> float:
    from traceability import genealogy

    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
    started = time.perf_counter()
    genealogy.consignees(forward)
    return _ms_since(started)


consignees.name = "consignees of the affected"
consignees.floor = "consignees"


def _api_client():
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from suppliers.models import Membership, Organisation, OrganisationRole, Role
    from suppliers.services import api_token_create
    from traceability.access.models import GrantScope
    from traceability.access.services import grant_add

    user, _ = get_user_model().objects.get_or_create(username="bench-regulator")
    regulator, _ = Organisation.objects.get_or_create(slug="bench-regulator", defaults={"name": "Bench"})
    OrganisationRole.objects.get_or_create(organisation=regulator, role=Role.REGULATOR)
    grant_add(regulator=regulator, scope=GrantScope.ALL)  # it reads the whole ledger
    membership, _ = Membership.objects.get_or_create(user=user, organisation=regulator)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")  # the in-process test client's host
    _, key = api_token_create(membership=membership, scope="read")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")  # as a regulator's script calls the API


def _unit_of(lot_id: int) -> str:
    """The URL-encoded EPC URN of the first unit the lot reaches."""
    from urllib.parse import quote

    from packs.models import Unit
    from traceability import genealogy
    from traceability.ledger.selectors import identifier_render

    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
    unit = Unit.objects.get(pk=genealogy.affected_units(forward, limit=1)[0].unit_id)
    return quote(identifier_render(unit.identity, form="epc"), safe="")


def _rest(kind: str) -> Callable[[int], float]:
    state: dict[int, tuple] = {}

    def case(lot_id: int) -> float:
        if lot_id not in state:
            state[lot_id] = (_api_client(), _unit_of(lot_id))
        client, ident = state[lot_id]
        started = time.perf_counter()
        response = client.get(f"/api/v1/units/{ident}/{kind}/")
        elapsed = _ms_since(started)
        if response.status_code != 200:
            raise SystemExit(f"GET {kind} answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    case.name = f"REST {kind} of one unit"
    case.floor = "walk"
    return case


CASES.extend([impact_count, consignees, _rest("backward"), _rest("siblings"), trace_end_to_end])
