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


def breakdown_groups(lot_id: int) -> float:
    """The affected units counted per product model, work order, site and month of production
    (``genealogy.affected_groups``, what every breakdown sums): a GROUP BY reading each affected
    unit's row, so its floor is writing each affected unit's id."""
    from traceability import genealogy

    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
    genealogy.sums_of(forward)  # read with the trace's counts, as a run's reader has them
    started = time.perf_counter()
    genealogy.affected_groups(forward)
    return _ms_since(started)


breakdown_groups.name = "breakdown groups of the affected"
breakdown_groups.floor = "write"


def _client(**headers: str):
    from django.conf import settings
    from django.test import Client

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")  # the in-process test client's host
    return Client(**headers)


def _token_client(membership):
    """A test client sending a new read token of ``membership``, as a script calls the API."""
    from suppliers.services import api_token_create

    _, key = api_token_create(membership=membership, scope="read")
    return _client(HTTP_AUTHORIZATION=f"Token {key}")


def _api_client():
    return _token_client(_regulator_membership())


def _regulator_membership():
    """The bench's regulator (an ``all`` grant: it reads the whole ledger), its one member."""
    from django.contrib.auth import get_user_model

    from suppliers.models import Membership, Organisation, OrganisationRole, Role
    from traceability.access.models import GrantScope
    from traceability.access.services import grant_add

    user, _ = get_user_model().objects.get_or_create(username="bench-regulator")
    regulator, _ = Organisation.objects.get_or_create(slug="bench-regulator", defaults={"name": "Bench"})
    OrganisationRole.objects.get_or_create(organisation=regulator, role=Role.REGULATOR)
    grant_add(regulator=regulator, scope=GrantScope.ALL)  # it reads the whole ledger
    membership, _ = Membership.objects.get_or_create(user=user, organisation=regulator)
    return membership


def _member_client(organisation_id: int):
    """A QA engineer of one organisation (its only membership), calling the API with a read token."""
    return _token_client(_qa_membership(organisation_id))


def _qa_membership(organisation_id: int):
    """The bench's QA engineer of one organisation (its only membership)."""
    from django.contrib.auth import get_user_model

    from suppliers.models import MemberRole, Membership

    user, _ = get_user_model().objects.get_or_create(username=f"bench-qa-{organisation_id}")
    membership, _ = Membership.objects.get_or_create(
        user=user, organisation_id=organisation_id, defaults={"role": MemberRole.QA}
    )
    return membership


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


# --- scoping: what one party is shown of a result ------------------------------------------------------

_parties_of: dict[int, dict[str, int]] = {}


def _parties(lot_id: int) -> dict[str, int]:
    """The parties a subject's scoped figures are taken for: ``brand``, the brand with most units in
    the result; ``lot's owner``; ``cell maker``, the maker of most of the cell lots the trace reaches
    (for a material lot, not the lot's owner: its share needs a second trace from its own lots)."""
    if lot_id not in _parties_of:
        from django.db.models import Count

        from cells.models import CellLot
        from traceability import genealogy

        owner, _ = _owner_and_lot(lot_id)
        forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
        others = genealogy.party_view(forward, owner.pk).others
        if not others:
            raise SystemExit(f"lot {lot_id} reaches no other organisation's units")
        brand = max(others, key=lambda o: (o.definite_units + o.potential_units, -o.organisation_id))
        makers = (
            CellLot.objects.filter(pk__any=frozenset(forward.lots))
            .values("owner_id")
            .annotate(n=Count("*"))
            .order_by("-n", "owner_id")
        )
        _parties_of[lot_id] = {
            "brand": brand.organisation_id,
            "lot's owner": owner.pk,
            "cell maker": makers[0]["owner_id"] if makers else owner.pk,
        }
    return _parties_of[lot_id]


def _scoped_count(party: str) -> Callable[[int], float]:
    """The impact preview count as ``party`` is shown it (``party_view``: its own units, and others'
    units its lots went into, per owner), from a fresh trace: the scoped twin of ``impact_count``."""

    def case(lot_id: int) -> float:
        from traceability import genealogy

        organisation_id = _parties(lot_id)[party]
        started = time.perf_counter()
        forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot_id])
        genealogy.party_view(forward, organisation_id)
        return _ms_since(started)

    case.name = f"scoped count, {party}"
    case.floor = "count"
    return case


_runs: dict[tuple[int, int], int] = {}


def _finished_run(organisation_id: int, lot_id: int) -> int:
    """The id of a finished trace run of ``lot_id`` in an investigation of ``organisation_id``
    (recorded once per party and subject, traced by the bench worker)."""
    if (organisation_id, lot_id) not in _runs:
        from suppliers.models import Organisation
        from traceability.core.models import Job, JobStatus
        from traceability.investigations.services import finding_record
        from traceability.tasks import job_submit

        _start_worker()
        _, lot = _owner_and_lot(lot_id)
        finding = finding_record(
            owner=Organisation.objects.get(pk=organisation_id),
            subject=lot,
            category="metallic_debris",
            severity="high",
            description="bench: a brand's investigation",
            submit=job_submit,
        )
        run = finding.investigation.runs.get()
        while (status := Job.objects.filter(pk=run.job_id).values_list("status", flat=True).get()) not in (
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
        ):
            time.sleep(0.01)
        if status == JobStatus.FAILED:
            raise SystemExit(f"trace run {run.pk} failed: {Job.objects.get(pk=run.job_id).error}")
        _runs[(organisation_id, lot_id)] = run.pk
        _analyze_runs()
    return _runs[(organisation_id, lot_id)]


# The tables a finding and its run write. The world is analysed once built; the findings, jobs and
# runs the cases record come after. A server running autovacuum analyses them once enough rows
# changed; one that does not (this machine's PostgreSQL runs with autovacuum off) kept the
# planner's estimate of one job and one run, and with 126 runs stored the dashboard's latest-run
# statement nested a scan of every succeeded job inside another: 13.6 ms instead of 0.3 ms, most of
# the dashboard's gap between the bench (59 ms) and the same request timed alone (40 ms).
RUN_TABLES = (
    "traceability_finding",
    "traceability_investigation",
    "traceability_job",
    "traceability_tracerun",
    "traceability_tracerunsegment",
    "traceability_tracerununit",
    "traceability_tracerunpart",
    "traceability_traceruncountry",
    "traceability_auditentry",
)


def _analyze_runs() -> None:
    """ANALYZE what recording a finding and tracing it wrote, as autovacuum would have by the
    time anyone reads the investigation (untimed: part of a case's setup)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(RUN_TABLES)}")


def _rest_run_units(reader: str) -> Callable[[int], float]:
    """``GET /api/v1/runs/{id}/units/`` (the first page, 100 units) of the brand's run of the subject,
    read by the brand's QA engineer (scoped: its own units only) or by a regulator (everything)."""
    state: dict[int, tuple] = {}

    def case(lot_id: int) -> float:
        if lot_id not in state:
            brand = _parties(lot_id)["brand"]
            client = _member_client(brand) if reader == "brand" else _api_client()
            state[lot_id] = (client, _finished_run(brand, lot_id))
        client, run_id = state[lot_id]
        started = time.perf_counter()
        response = client.get(f"/api/v1/runs/{run_id}/units/")
        elapsed = _ms_since(started)
        if response.status_code != 200 or not response.json()["results"]:
            raise SystemExit(f"GET run units answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    case.name = f"REST run units page, {reader}"
    case.floor = "walk"
    return case


def _page_investigation(reader: str) -> Callable[[int], float]:
    """``GET /investigation/{number}/``, the QA console's investigation page (issue 15), of the brand's
    finished run of the subject: the whole HTML a browser shows first (the impact counts, the run,
    the first page of affected units, the breakdowns, the consignees, the moves and the exports),
    read with a signed-in session by the brand's QA engineer (the owner: the run whole) or by a
    regulator (everything, through its grant)."""
    state: dict[int, tuple] = {}

    def case(lot_id: int) -> float:
        if lot_id not in state:
            from traceability.investigations.models import TraceRun

            brand = _parties(lot_id)["brand"]
            run = _finished_run(brand, lot_id)
            membership = _qa_membership(brand) if reader == "brand" else _regulator_membership()
            client = _client()
            client.force_login(membership.user)
            state[lot_id] = (client, TraceRun.objects.values_list("investigation_id", flat=True).get(pk=run))
        client, number = state[lot_id]
        started = time.perf_counter()
        response = client.get(f"/investigation/{number}/")
        elapsed = _ms_since(started)
        if response.status_code != 200 or b'id="units"' not in response.content:
            raise SystemExit(f"GET the investigation page answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    case.name = f"investigation page, {reader}"
    case.floor = "walk"
    return case


# --- GraphQL: the regulators' API, next to REST for the same subject ------------------------------------

DASHBOARD = """query Dashboard($number: Int!) {
  investigation(number: $number) {
    id number status openedAt owner { slug }
    finding { number category severity description inquiry subject raisedAt }
    latestRun {
      id number position status percent definiteCount potentialCount consigneeCount
      affectedUnits(first: 100) {
        totalCount definiteCount potentialCount
        edges { cursor node { exposure productModel workOrder unit { identity serial }
          path { from to record exposure } } }
        pageInfo { hasNextPage endCursor }
      }
      consignees { organisation { slug name } units firstShippedAt lastShippedAt }
      breakdown {
        productModels { key name units definite potential }
        workOrders { key units definite potential }
        sites { key name units }
        productionMonths { key units }
        consignees { organisation { slug } units }
      }
    }
  }
}"""
# The same dashboard without its breakdown: the breakdown's four aggregates (``affected_breakdown``,
# the read model REST's breakdown page renders too) are most of the dashboard's time at every size.
DASHBOARD_LESS_BREAKDOWN = DASHBOARD[: DASHBOARD.index("      breakdown {")] + "    }\n  }\n}"
UPSTREAM = """query Upstream($id: String!) {
  unit(identifier: $id) { identity upstream { identity kind owner { slug } } }
}"""
DOWNSTREAM_COUNT = """query Reach($id: String!) {
  lot(identifier: $id) { identity downstream { totalCount definiteCount potentialCount } }
}"""


def _graphql(client, query: str, variables: dict) -> float:
    """One POST to /graphql/, timed; a refusal or an error in the answer stops the bench."""
    import json

    started = time.perf_counter()
    response = client.post("/graphql/", {"query": query, "variables": variables}, content_type="application/json")
    elapsed = _ms_since(started)
    answer = response.json() if response.status_code in (200, 400) else None
    if response.status_code != 200 or answer is None or answer.get("errors"):
        raise SystemExit(f"POST /graphql/ answered {response.status_code}: {json.dumps(answer)[:300]}")
    return elapsed


_dashboards: dict[int | str, tuple] = {}


def _dashboard_of(lot_id: int) -> tuple:
    """(a regulator's client, the investigation, its run): the brand's finished run of the subject."""
    if lot_id not in _dashboards:
        from traceability.investigations.models import TraceRun

        run = TraceRun.objects.get(pk=_finished_run(_parties(lot_id)["brand"], lot_id))
        _dashboards[lot_id] = (_api_client(), run.investigation_id, run.pk)
    return _dashboards[lot_id]


def _gql_dashboard(lot_id: int) -> float:
    """A regulator's investigation dashboard in one query (the investigation, its latest run, the
    first 100 affected units with paths and models, consignees, breakdown) of the brand's run."""
    client, number, _ = _dashboard_of(lot_id)
    return _graphql(client, DASHBOARD, {"number": number})


_gql_dashboard.name = "GraphQL dashboard, regulator"
_gql_dashboard.floor = "walk"


def _gql_dashboard_less_breakdown(lot_id: int) -> float:
    client, number, _ = _dashboard_of(lot_id)
    return _graphql(client, DASHBOARD_LESS_BREAKDOWN, {"number": number})


_gql_dashboard_less_breakdown.name = "GraphQL dashboard less breakdown"
_gql_dashboard_less_breakdown.floor = "walk"


def _rest_dashboard(*, breakdown: bool) -> Callable[[int], float]:
    """The same dashboard through REST: the investigation, its run, the run's first page of units,
    its consignees and (with ``breakdown``) its breakdown, GETs in a row (what a script calling
    REST sends)."""

    def case(lot_id: int) -> float:
        client, number, run = _dashboard_of(lot_id)
        paths = [
            f"/api/v1/investigations/{number}/",
            f"/api/v1/runs/{run}/",
            f"/api/v1/runs/{run}/units/",
            f"/api/v1/runs/{run}/consignees/",
            *([f"/api/v1/runs/{run}/breakdown/"] if breakdown else []),
        ]
        started = time.perf_counter()
        for path in paths:
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
        return _ms_since(started)

    case.name = "REST dashboard (5 GETs), regulator" if breakdown else "REST dashboard less breakdown (4 GETs)"
    case.floor = "walk"
    return case


def _rest_breakdown(lot_id: int) -> float:
    """``GET /api/v1/runs/{id}/breakdown/`` of the brand's run, by a regulator (everything)."""
    client, _, run = _dashboard_of(lot_id)
    started = time.perf_counter()
    response = client.get(f"/api/v1/runs/{run}/breakdown/")
    elapsed = _ms_since(started)
    if response.status_code != 200:
        raise SystemExit(f"GET run breakdown answered {response.status_code}: {response.content[:300]!r}")
    return elapsed


_rest_breakdown.name = "REST run breakdown, regulator"
_rest_breakdown.floor = "walk"


def _gql_upstream() -> Callable[[int], float]:
    """``unit { upstream }`` of the unit REST's backward case reads, by a regulator."""
    state: dict[int, tuple] = {}

    def case(lot_id: int) -> float:
        from urllib.parse import unquote

        if lot_id not in state:
            state[lot_id] = (_api_client(), unquote(_unit_of(lot_id)))
        client, ident = state[lot_id]
        return _graphql(client, UPSTREAM, {"id": ident})

    case.name = "GraphQL unit { upstream }"
    case.floor = "walk"
    return case


def _gql_typename(lot_id: int) -> float:
    """``{ __typename }`` by the regulator: what any GraphQL request costs before its resolvers (the
    token's sign-in, the Django stack, the audit entry committed), the floor under every other case."""
    if "typename" not in _dashboards:
        _dashboards["typename"] = (_api_client(),)
    (client,) = _dashboards["typename"]
    return _graphql(client, "query Ping { __typename }", {})


_gql_typename.name = "GraphQL { __typename } (fixed cost)"
_gql_typename.floor = "walk"


def _gql_downstream_count(reader: str = "regulator") -> Callable[[int], float]:
    """``lot { downstream { totalCount } }`` of the subject lot by a regulator: the live count at
    the ledger's position, as the impact preview counts it (``impact preview count`` is the domain's
    figure for the same lot, without HTTP); or by the brand with most units in it, which does not
    own the lot: the access check traces it to find the brand's units, and the answer counts the
    brand's share from that trace."""
    state: dict[int, tuple] = {}

    def case(lot_id: int) -> float:
        if lot_id not in state:
            from traceability.ledger.selectors import identifier_render

            _, lot = _owner_and_lot(lot_id)
            client = _api_client() if reader == "regulator" else _member_client(_parties(lot_id)["brand"])
            state[lot_id] = (client, identifier_render(lot.identity, form="epc"))
        client, ident = state[lot_id]
        return _graphql(client, DOWNSTREAM_COUNT, {"id": ident})

    case.name = "GraphQL lot { downstream { totalCount } }" + ("" if reader == "regulator" else f", {reader}")
    case.floor = "count"
    return case


# --- the audit trail's cost per request -------------------------------------------------------------------


def audit_costs(runs: int) -> dict[str, float]:
    """What the audit trail adds to a request, medians of ``runs`` (at least 21) in ms:

    * ``alone``: one entry appended in a transaction of its own, then rolled back (the INSERT; a
      regulator's read commits its entry as well, which ``added`` counts);
    * ``in_write``: the entry appended inside a write's open transaction (every write service
      appends its entry there: the INSERT is what the write pays, its commit is paid anyway);
    * ``read_with`` / ``read_without``: a regulator's ``GET`` of one unit's backward trace through
      REST, with its entry and with the entry skipped, alternated; ``added`` is their difference.

    The entries timed alone and in a write name a finding nobody recorded: each is rolled back, so
    the audit log holds only what happened (the bench regulator's reads, which it really made).
    """
    import statistics
    from unittest import mock

    from django.db import transaction

    from bench.floors import median_ms
    from traceability.core.audit import AuditAction, audit_record
    from traceability.core.models import AuditEntry

    runs = max(runs, 21)
    organisation_id = _parties_any()

    def entry() -> None:
        audit_record(
            action=AuditAction.FINDING_RECORD,
            organisation=organisation_id,
            identifiers=["finding:1", "investigation:1", "run:1", "urn:epc:class:lgtin:4012345.012345.998877"],
            detail={"category": "metallic_debris", "severity": "high", "subject_kind": "lot"},
        )

    def alone() -> None:
        with transaction.atomic():
            entry()
            transaction.set_rollback(True)

    recorded_before = AuditEntry.objects.filter(action=AuditAction.FINDING_RECORD).count()
    in_write: list[float] = []
    for i in range(runs + 1):
        with transaction.atomic():
            AuditEntry.objects.exists()  # the write's own work has begun: the transaction is open
            started = time.perf_counter()
            entry()
            elapsed = _ms_since(started)
            transaction.set_rollback(True)
        if i:
            in_write.append(elapsed)
    alone_ms = median_ms(alone, runs)
    if AuditEntry.objects.filter(action=AuditAction.FINDING_RECORD).count() != recorded_before:
        raise SystemExit("audit_costs left an entry of a finding nobody recorded in the audit log")

    client, path = _api_client(), f"/api/v1/units/{_unit_of(_audit_subject())}/backward/"
    with_entry: list[float] = []
    without: list[float] = []

    def read() -> float:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = _ms_since(started)
        if response.status_code != 200:
            raise SystemExit(f"GET backward answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    read()  # warm-up
    for _ in range(runs):
        with_entry.append(read())
        with mock.patch("traceability.access.audit.audit_record"):
            without.append(read())
    read_with, read_without = statistics.median(with_entry), statistics.median(without)
    return {
        "alone": alone_ms,
        "in_write": statistics.median(in_write),
        "read_with": read_with,
        "read_without": read_without,
        "added": read_with - read_without,
    }


def _audit_subject() -> int:
    """A lot that reaches units: the first cell lot with a segment."""
    from traceability.genealogy.models import SegmentInput

    return SegmentInput.objects.order_by("lot_id").values_list("lot_id", flat=True).first()


def _parties_any() -> int:
    """An organisation to write entries for: the owner of the audit subject's lot."""
    return _owner_and_lot(_audit_subject())[0].pk


CASES.extend(
    [
        impact_count,
        _scoped_count("brand"),
        _scoped_count("lot's owner"),
        _scoped_count("cell maker"),
        consignees,
        breakdown_groups,
        _rest("backward"),
        _rest("siblings"),
        _rest_run_units("brand"),
        _rest_run_units("regulator"),
        _page_investigation("brand"),
        _page_investigation("regulator"),
        _gql_typename,
        _gql_upstream(),
        _gql_downstream_count(),
        _gql_downstream_count("brand"),
        _rest_dashboard(breakdown=False),
        _gql_dashboard_less_breakdown,
        _rest_breakdown,
        _rest_dashboard(breakdown=True),
        _gql_dashboard,
        trace_end_to_end,
    ]
)
