"""A run's diff (what changed since the previous run) is one domain read, ``run_diff_shown``, that
REST's run, GraphQL's TraceRun and the investigation page each render: every caller is told the
same, and a party that does not read the result whole (DESIGN.md "Who sees what") is told only its
own units that changed, never others' nor the diff's counts, which take others' units in.

The world is tests/test_pages.py's chain (brand A's finding on material lot M1, through cell lot
C1, which brand B built U9 and U10 from too) traced once; units are built between runs with
tests/test_pages_rerun.py's ``_built``.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from suppliers.models import Membership
from suppliers.services import api_token_issue
from tests.jobs_support import run_job
from tests.test_api_support import client_for, schema_problems
from tests.test_pages import _main, _page_client, _text, chain  # noqa: F401  (chain is a fixture)
from tests.test_pages_rerun import _between, _built, _rerun, _serials
from traceability.investigations.models import TraceRun

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture: brand A's finding on M1, its run not yet traced)
    run_job(TraceRun.objects.select_related("job").get(investigation=chain.investigation).job)
    chain.investigation.refresh_from_db()
    return chain


RUNS = """query R($number: Int!) { investigation(number: $number) { runs { number diff } } }"""
NODE = """query N($id: ID!) { node(id: $id) { ... on TraceRun { number diff } } }"""
KINDS = ("added", "gone", "exposure_changed")


def _graph(user: Any, query: str, **variables: Any) -> dict[str, Any]:
    key = api_token_issue(membership=Membership.objects.get(user=user), replace=True)
    response = Client().post(
        "/graphql/",
        {"query": query, "variables": variables},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


def _node_id(run: TraceRun) -> str:
    return base64.b64encode(f"TraceRun:{run.pk}".encode()).decode()


def _answers(w, caller: str, run: TraceRun) -> dict[str, Any]:
    """What each interface tells ``caller`` of ``run``'s diff (``"unknown"`` where it may not read it)."""
    user = w.users[caller]
    rest = client_for(user).get(f"/api/v1/runs/{run.pk}/")
    listed = _graph(user, RUNS, number=w.investigation.pk)["investigation"]
    node = _graph(user, NODE, id=_node_id(run))["node"]
    page = _page_client(user).get(f"/investigation/{w.investigation.pk}/")
    if rest.status_code == 404:
        assert (listed, node, page.status_code) == (None, None, 404)
        assert "No investigation you may read is numbered" in _text(page)
        return {"rest": "unknown", "text": _main(_text(page)) + rest.content.decode()}
    assert rest.status_code == page.status_code == 200
    assert schema_problems(rest, "/api/v1/runs/{id}/") == []
    return {
        "rest": rest.json()["diff"],
        "listed": next(r["diff"] for r in listed["runs"] if r["number"] == run.pk),
        "node": node["diff"],
        "page": _main(_text(page)),
        "text": _main(_text(page)) + rest.content.decode() + str(listed) + str(node),
    }


def _shown_on_page(page: str) -> dict[str, Any]:
    """The page's diff: each kind's count (None when not shown) and the serials listed."""
    if 'id="diff-changes"' not in page:
        return {}
    shown: dict[str, Any] = {}
    for kind, id in zip(KINDS, ("diff-added", "diff-gone", "diff-changed"), strict=True):
        item = _between(page, f'id="{id}">', "</dd>")
        shown[kind] = int(_between(item, f'id="{id}-count">', "<")) if f"{id}-count" in item else None
        shown[f"{kind}_sample"] = re.findall(r"<a [^>]*>([^<]*)</a>", item)
    return shown


def _in_serials(diff: dict[str, Any] | None) -> dict[str, Any]:
    """REST's or GraphQL's diff as the page shows it: the counts, and the samples by serial."""
    if diff is None:
        return {}
    return {
        **{kind: diff[kind] for kind in KINDS},
        **{f"{kind}_sample": _serials(diff[f"{kind}_sample"]) for kind in KINDS},
    }


def test_the_owner_seeing_every_changed_unit_is_listed_them_without_the_counts_as_everywhere(world):
    # given: only brand A's own unit X0001 built between runs
    w = world
    added = _built(w, serials=["X0001"])
    run = _rerun(w)
    assert (run.diff["added"], run.diff["added_sample"]) == (1, added)
    # when
    own = _answers(w, "own", run)
    # then each interface lists its unit and none tells the counts: that nobody else's unit changed
    # is something about others too
    expected = {
        "from_position": run.previous.position,
        "to_position": run.position,
        "added": None,
        "gone": None,
        "exposure_changed": None,
        "added_sample": added,
        "gone_sample": [],
        "exposure_changed_sample": [],
    }
    assert own["rest"] == own["listed"] == own["node"] == expected
    assert _shown_on_page(own["page"]) == _in_serials(expected) == {
        "added": None, "gone": None, "exposure_changed": None,
        "added_sample": ["X0001"], "gone_sample": [], "exposure_changed_sample": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "sees"),
    [
        ("own", "partial"),  # brand A: its X0001, not brand B's B0001
        ("regulator_all", "whole"),
        ("regulator_jurisdiction_in", "whole"),  # its grant covers the investigation: units sold into Germany
        ("regulator_out_of_scope", "unknown"),
        ("competitor", "unknown"),  # brand B, whose unit changed, does not read brand A's investigation
        ("supplier", "unknown"),  # M1's maker: it may trace its lot, not read brand A's investigation
        ("distributor", "unknown"),
    ],
)
def test_each_party_is_told_the_same_diff_by_rest_graphql_and_the_page_and_nothing_foreign(world, caller, sees):
    # given: brand A's X0001 and brand B's B0001 built between runs
    w = world
    own = _built(w, serials=["X0001"])
    foreign = _built(w, serials=["B0001"], competitor=True)
    run = _rerun(w)
    assert (run.diff["added"], sorted(run.diff["added_sample"])) == (2, sorted(own + foreign))
    # when
    told = _answers(w, caller, run)
    # then
    if sees == "unknown":
        assert told["rest"] == "unknown"
        assert "X0001" not in told["text"] and "B0001" not in told["text"]
        return
    assert told["rest"] == told["listed"] == told["node"]
    assert _shown_on_page(told["page"]) == _in_serials(told["rest"])
    if sees == "whole":
        assert {k: told["rest"][k] for k in (*KINDS, "added_sample")} == {
            "added": 2, "gone": 0, "exposure_changed": 0, "added_sample": sorted(own + foreign),
        }  # fmt: skip
        return
    # a partial reader: its own unit, and neither brand B's unit (by id or serial) nor a count taking it in
    assert {k: told["rest"][k] for k in (*KINDS, "added_sample")} == {
        "added": None, "gone": None, "exposure_changed": None, "added_sample": own,
    }  # fmt: skip
    assert "B0001" not in told["text"]
    assert not any(foreign[0] in told["rest"][f"{kind}_sample"] for kind in KINDS)


def test_an_owner_none_of_whose_units_changed_has_no_diff_anywhere_and_a_regulator_the_whole(world):
    # given: only brand B's B0001 built between runs
    w = world
    _built(w, serials=["B0001"], competitor=True)
    run = _rerun(w)
    # when
    own = _answers(w, "own", run)
    regulator = _answers(w, "regulator_all", run)
    # then
    assert own["rest"] is own["listed"] is own["node"] is None
    assert 'id="diff-changes"' not in own["page"] and "B0001" not in own["text"]
    assert regulator["rest"]["added"] == regulator["listed"]["added"] == regulator["node"]["added"] == 1


def test_a_first_run_has_no_diff_in_any_interface(world):
    run = TraceRun.objects.get(investigation=world.investigation)
    told = _answers(world, "regulator_all", run)
    assert told["rest"] is told["listed"] is told["node"] is None
    assert 'id="diff-changes"' not in told["page"]


def test_graphql_reads_every_runs_diff_in_the_same_queries_whatever_their_number(world):
    # given one re-run, then three more
    w = world
    counted = []
    for runs in (1, 3):
        for i in range(runs):
            _built(w, serials=[f"X{runs}{i:03d}"])
            _rerun(w)
        # when
        with CaptureQueriesContext(connection) as queries:
            found = _graph(w.users["own"], RUNS, number=w.investigation.pk)["investigation"]["runs"]
        counted.append((len(queries), sum(r["diff"] is not None for r in found)))
    # then
    assert counted[0][1] == 1 and counted[1][1] == 4
    assert counted[0][0] == counted[1][0]
