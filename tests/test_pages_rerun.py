"""The investigation page's re-run (issue 15): its owner's writers trace the subject again, as REST's
``POST /investigations/{id}/runs/`` does, refused in the same cases and changing nothing then; and
once the new run finishes, what changed since the previous one, as each reader may see it.

The world is tests/test_pages.py's chain: brand A's finding on material lot M1 (through cell lot C1,
which brand B built U9 and U10 from too); ``_built`` records units built between runs.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from suppliers.models import MemberRole
from tests.jobs_support import run_job
from tests.test_pages import _main, _member, _page_client, _text, chain  # noqa: F401  (chain is a fixture)
from tests.trace_world import AT
from traceability.core.models import Job, JobStatus
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.writes import UnitBuild, unit_builds_record
from traceability.investigations.models import InvestigationStatus, InvestigationTransition, TraceRun
from traceability.ledger.services import ledger_append

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture: brand A's finding on M1, its run not yet traced)
    run_job(TraceRun.objects.select_related("job").get(investigation=chain.investigation).job)
    chain.investigation.refresh_from_db()
    return chain


def _url(w, suffix: str = "") -> str:
    return f"/investigation/{w.investigation.pk}/{suffix}"


def _runs(w) -> list[int]:
    return list(TraceRun.objects.filter(investigation=w.investigation).order_by("pk").values_list("pk", flat=True))


def _rerun(w, caller: str = "own") -> TraceRun:
    """Press the button, and let the worker trace the run it started."""
    response = _page_client(w.users[caller]).post(_url(w, "run/"))
    assert response.status_code == 302, _text(response)
    run = TraceRun.objects.select_related("job").latest("pk")
    assert run_job(run.job).status == JobStatus.SUCCEEDED
    run.refresh_from_db()
    return run


def _built(w, *, serials: list[str], competitor: bool = False) -> list[int]:
    """Units built after the first run: brand A's from module lot MOD1, or brand B's from cell lot C1
    (both downstream of M1, definitely)."""
    order, lot = (w.other_order, w.c1) if competitor else (w.work_order, w.mod1)
    with transaction.atomic():
        ids = units_create(
            owner=order.owner, product_model=order.product_model, work_order=order, serials=serials, produced_at=AT
        )
        unit_builds_record(
            entry=ledger_append(source="manual", summary="built between runs"),
            owner=order.owner,
            builds=[
                UnitBuild(reference=f"build {unit}", unit_id=unit, lot_ids=frozenset({lot.pk}), occurred_at=AT)
                for unit in ids
            ],
        )
    return ids


def _serials(ids: list[int]) -> list[str]:
    return list(Unit.objects.filter(pk__in=ids).order_by("pk").values_list("serial", flat=True))


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


# --- the button ---------------------------------------------------------------------------------------


def test_the_owner_reruns_a_traced_investigation_and_one_run_starts_after_the_previous(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    before = _runs(w)
    assert 'id="rerun"' in _text(client.get(_url(w)))
    # when
    response = client.post(_url(w, "run/"))
    # then
    assert response.status_code == 302 and response["Location"] == _url(w) + "#run"
    after = _runs(w)
    assert len(after) == len(before) + 1
    run = TraceRun.objects.select_related("job").get(pk=after[-1])
    assert (run.previous_id, run.job.status, run.job.created_by) == (before[-1], JobStatus.QUEUED, w.users["own"])
    w.investigation.refresh_from_db()
    assert w.investigation.status == InvestigationStatus.TRACING
    # and while it traces the page offers no second press
    assert 'id="rerun"' not in _text(client.get(_url(w)))


def test_a_second_press_while_the_run_traces_is_refused_in_the_domains_words_and_starts_nothing(world):
    # given a re-run still tracing
    w = world
    client = _page_client(w.users["own"])
    assert client.post(_url(w, "run/")).status_code == 302
    tracing = TraceRun.objects.latest("pk")
    runs, jobs, transitions = _runs(w), Job.objects.count(), InvestigationTransition.objects.count()
    # when
    response = client.post(_url(w, "run/"))
    # then
    assert response.status_code == 409
    assert f"run {tracing.pk} of investigation #{w.investigation.pk} is still tracing" in _text(response)
    assert (_runs(w), Job.objects.count(), InvestigationTransition.objects.count()) == (runs, jobs, transitions)


@pytest.mark.parametrize(
    ("caller", "status", "message"),
    [
        ("competitor", 404, "No investigation you may read is numbered"),
        ("supplier", 404, "No investigation you may read is numbered"),
        ("regulator_out_of_scope", 404, "No investigation you may read is numbered"),
        ("regulator_all", 403, "You read this investigation through your grants; its owner changes it."),
        ("viewer", 403, "Your role reads only"),
        ("closed", 409, "cannot go from"),
    ],
)
def test_a_rerun_refused_says_why_and_changes_nothing(world, caller, status, message):
    # given
    w = world
    users = {**w.users, "viewer": _member(w.brand, MemberRole.VIEWER), "closed": w.users["own"]}
    if caller == "closed":
        assert _page_client(w.users["own"]).post(_url(w, "move/"), {"to": "closed"}).status_code == 302
    w.investigation.refresh_from_db()
    runs, jobs, transitions = _runs(w), Job.objects.count(), InvestigationTransition.objects.count()
    status_before = w.investigation.status
    # when
    response = _page_client(users[caller]).post(_url(w, "run/"))
    # then
    assert response.status_code == status and message in _text(response)
    w.investigation.refresh_from_db()
    assert w.investigation.status == status_before
    assert (_runs(w), Job.objects.count(), InvestigationTransition.objects.count()) == (runs, jobs, transitions)
    if status != 404:  # it reads the page: no button there
        assert 'id="rerun"' not in _text(_page_client(users[caller]).get(_url(w)))


def test_a_rerun_asked_for_by_get_is_refused_and_starts_nothing(world):
    before = _runs(world)
    response = _page_client(world.users["own"]).get(_url(world, "run/"))
    assert response.status_code == 405 and _runs(world) == before


# --- the diff -----------------------------------------------------------------------------------------


def test_a_unit_built_between_runs_shows_as_newly_exposed_to_the_owner_and_a_regulator(world):
    # given: one more unit of brand A's, built from MOD1 after the first run
    w = world
    assert 'id="diff-changes"' not in _text(_page_client(w.users["own"]).get(_url(w)))  # nothing to compare yet
    added = _built(w, serials=["X0001"])
    run = _rerun(w)
    # when
    own = _main(_text(_page_client(w.users["own"]).get(_url(w))))
    regulator = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then the regulator, who reads the result whole, is told the counts and the serial
    assert _serials(added) == ["X0001"]
    before, after = run.previous.position, run.position
    assert (run.diff["from_position"], run.diff["to_position"]) == (before, after) and before < after
    assert f"What changed between the ledger at position {before} and at position {after}." in regulator
    assert _between(regulator, 'id="diff-added-count">', "<") == "1"
    assert _between(regulator, 'id="diff-added">', "</dd>").endswith(">X0001</a>")
    assert (_between(regulator, 'id="diff-gone">', "</dd>"), _between(regulator, 'id="diff-changed">', "</dd>")) == (
        '<span id="diff-gone-count">0</span>',
        '<span id="diff-changed-count">0</span>',
    )
    # and the owner, who sees its own units in full, is listed its unit without the whole diff's counts
    assert _between(own, 'id="diff-added">', "</dd>").endswith(">X0001</a>")
    assert "diff-added-count" not in own
    assert "Your own units among a sample of the changes" in own


def test_an_owner_who_sees_none_of_the_changed_units_is_shown_no_diff_and_a_regulator_the_whole(world):
    # given: brand B builds one more unit from cell lot C1 after the first run
    w = world
    _built(w, serials=["B0001"], competitor=True)
    run = _rerun(w)
    assert run.diff["added"] == 1
    # when
    own = _main(_text(_page_client(w.users["own"]).get(_url(w))))
    regulator = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then brand A is shown no diff at all: neither brand B's serial nor a count that takes it in
    assert 'id="diff-changes"' not in own and "B0001" not in own
    assert 'id="rerun"' in own  # the button still
    assert _between(regulator, 'id="diff-added-count">', "<") == "1" and ">B0001</a>" in regulator


def test_the_diff_is_asked_for_again_while_the_rerun_traces_then_shows_what_changed(world):
    # given a unit built after the first run, and the re-run pressed
    w = world
    _built(w, serials=["X0001"])
    client = _page_client(w.users["own"])
    assert client.post(_url(w, "run/")).status_code == 302
    page = _main(_text(client.get(_url(w))))
    assert f'hx-get="{_url(w)}?section=diff" hx-trigger="every 2s"' in page
    assert 'id="diff-tracing"' in page and 'id="rerun"' not in page
    # when the run finishes, htmx asks for the section alone
    run = TraceRun.objects.select_related("job").latest("pk")
    assert run_job(run.job).status == JobStatus.SUCCEEDED
    section = _text(client.get(_url(w), {"section": "diff"}, headers={"HX-Request": "true"}))
    # then it no longer asks, and shows the new unit and the button again
    assert section.startswith('<section aria-labelledby="diff-heading" id="diff">')
    assert "<html" not in section and "hx-trigger" not in section and 'id="diff-tracing"' not in section
    assert _between(section, 'id="diff-added">', "</dd>").endswith(">X0001</a>") and 'id="rerun"' in section


def test_while_a_findings_first_run_traces_there_is_no_diff_to_ask_for_nor_a_button(chain):  # noqa: F811
    # given the finding's first run, still tracing (the fixture ``world`` would have finished it)
    text = _main(_text(_page_client(chain.users["own"]).get(_url(chain))))
    # then
    assert 'id="run-percent">0%' in text and 'id="diff"' not in text


def test_the_latest_finished_runs_diff_stays_while_a_later_run_traces(world):
    # given a finished re-run with a diff, then another re-run still tracing
    w = world
    _built(w, serials=["X0001"])
    _rerun(w)
    assert _page_client(w.users["own"]).post(_url(w, "run/")).status_code == 302
    # when
    regulator = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then
    assert 'id="run-percent">0%' in regulator
    assert _between(regulator, 'id="diff-added-count">', "<") == "1"


def test_the_diff_costs_the_same_queries_whatever_the_number_of_units_changed(world):
    # given a re-run after one unit more, then another after five more
    w = world
    client = _page_client(w.users["regulator_all"])
    counted = []
    for serials in (["X0001"], [f"Y{i:04d}" for i in range(5)]):
        _built(w, serials=serials)
        _rerun(w)
        # when
        with CaptureQueriesContext(connection) as queries:
            text = _main(_text(client.get(_url(w))))
        counted.append((len(queries), _between(text, 'id="diff-added">', "</dd>").count("<a ")))
    # then
    assert [listed for _, listed in counted] == [1, 5]
    assert counted[0][0] == counted[1][0], counted
