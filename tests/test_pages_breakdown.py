"""The investigation page's breakdowns, consignees and unit filters (issue 15): a finished run's affected
units counted by model, work order, site, production month and consignee, each as chart data (given to
``ledger-charts.js`` with ``json_script``) and as a table; the consignees with their ship dates; the
units filtered by model, work order and consignee with cursor paging carrying the filters. Each is
what REST's run breakdown, consignees and units give the same caller.

The world (tests/trace_world.py with ``add_competitor``): brand A's U1..U8 (one model, one work
order), U1..U6 and U8 reached from material lot M1 (U4..U6 potentially), U1..U3 shipped to D1 on
2024-03-03 and U4..U6 to D2 on 2024-03-04; brand B's U9 and U10 (another model and work order) reached
through cell lot C1, U9 shipped to its own distributor on 2024-03-06. Brand A's finding is on M1.
"""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from packs.models import Shipment, Unit
from tests.factories import SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, more_units, raise_finding, urn
from tests.test_pages import _main, _page_client, _text, chain  # noqa: F401  (chain is a fixture)
from tests.test_pages_investigation import _finish_run, _url
from traceability.investigations.models import Investigation, TraceRun
from traceability.pages import investigation as investigation_pages

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture: brand A's finding on M1, and a user of each party)
    _finish_run(chain)
    return chain


def _chart(text: str, key: str) -> dict:
    """The data a chart is drawn from, as the page gives it to its script."""
    found = re.search(rf'<script id="chart-data-{key}" type="application/json">(.*?)</script>', text, re.S)
    assert found is not None, key
    return json.loads(found.group(1))


def _table(text: str, table_id: str) -> list[list[str]]:
    """A table's body rows, each cell's text."""
    body = text.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0].split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in body.split("<tr>")[1:]
    ]


def _listed(text: str) -> list[str]:
    """The serials of the affected units table, in order."""
    if 'id="units"' not in text:
        return []
    return [row[0] for row in _table(text, "units")]


def _models(w) -> tuple[str, str]:
    return w.work_order.product_model.model_number, w.other_order.product_model.model_number


def _label(order) -> str:
    model = order.product_model
    return f"{model.model_number} · {model.name}"


# --- the breakdowns ------------------------------------------------------------------------------------


def test_a_regulator_sees_each_breakdown_as_chart_data_and_as_a_table(world):
    # given
    w = world
    # when
    text = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then: brand A's seven units (four definite) and brand B's two, by model and by work order
    split = [{"label": "Definite", "kind": "definite", "data": [4, 2]}, {"label": "Potential", "kind": "potential"}]
    split[1]["data"] = [3, 0]
    assert _chart(text, "product-models") == {"labels": [_label(w.work_order), _label(w.other_order)], "series": split}
    assert _chart(text, "work-orders") == {"labels": [w.work_order.number, w.other_order.number], "series": split}
    assert _table(text, "breakdown-table-product-models") == [
        [_label(w.work_order), "4", "3", "7"],
        [_label(w.other_order), "2", "0", "2"],
    ]
    assert _table(text, "breakdown-table-work-orders") == [
        [w.work_order.number, "4", "3", "7"],
        [w.other_order.number, "2", "0", "2"],
    ]
    assert _table(text, "breakdown-table-sites") == [
        [w.work_order.site.name, "4", "3", "7"],
        [w.other_order.site.name, "2", "0", "2"],
    ]
    assert _table(text, "breakdown-table-production-months") == [["2024-03", "6", "3", "9"]]
    # and the consignees by units, with no exposure split (REST's breakdown gives none)
    assert _chart(text, "consignees") == {
        "labels": [w.d1.name, w.d2.name, w.other_distributor.name],
        "series": [{"label": "Units", "data": [3, 3, 1]}],
    }
    # and each canvas is an image named for what it shows, its table the fallback without script
    assert (
        '<canvas id="chart-product-models" class="ledger-chart" data-chart="chart-data-product-models" role="img"'
        in text
    )
    assert 'aria-label="Bar chart: Affected units by model. The table below gives its counts." hidden>' in text


def test_the_page_shows_the_breakdown_rest_gives_the_same_caller(world):
    # given
    w = world
    run = TraceRun.objects.get(investigation=w.investigation)
    for caller in ("regulator_all", "own"):
        # when
        text = _main(_text(_page_client(w.users[caller]).get(_url(w))))
        rest = client_for(w.users[caller]).get(f"/api/v1/runs/{run.pk}/breakdown/").json()
        # then
        assert _table(text, "breakdown-table-work-orders") == [
            [o["number"], str(o["definite"]), str(o["potential"]), str(o["units"])] for o in rest["work_orders"]
        ], caller
        assert _table(text, "breakdown-table-consignees") == [
            [c["name"], str(c["units"])] for c in rest["consignees"]
        ], caller


def test_the_consignees_are_listed_with_their_units_and_first_and_last_ship_dates(world):
    # given
    w = world
    # when
    text = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then
    assert _table(text, "consignee-table") == [
        [w.d1.name, "3", "2024-03-03", "2024-03-03", "—"],
        [w.d2.name, "3", "2024-03-04", "2024-03-04", "—"],
        [w.other_distributor.name, "1", "2024-03-06", "2024-03-06", "—"],
    ]
    assert 'id="consignees-capped"' not in text


def test_a_consignee_is_shown_the_countries_its_shipments_were_addressed_to(chain):  # noqa: F811
    # given D1's shipment of U1..U3 addressed to its warehouse in Italy, before the run finished
    w = chain
    Shipment.objects.filter(consignee=w.d1).update(ship_to=SiteFactory(owner=w.d1, country="IT"))
    _finish_run(w)
    for caller in ("regulator_all", "own"):  # the stored consignees, and those counted for a share
        # when
        text = _main(_text(_page_client(w.users[caller]).get(_url(w))))
        # then
        assert _table(text, "consignee-table")[:2] == [
            [w.d1.name, "3", "2024-03-03", "2024-03-03", "IT"],
            [w.d2.name, "3", "2024-03-04", "2024-03-04", "—"],
        ], caller


def test_consignees_past_the_cap_are_counted_and_the_page_says_so(world, monkeypatch):
    # given
    w = world
    monkeypatch.setattr(investigation_pages, "CONSIGNEE_ROWS", 2)
    # when
    text = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then
    assert [row[0] for row in _table(text, "consignee-table")] == [w.d1.name, w.d2.name]
    assert "The 2 consignees with the most units, of 3; the REST API lists them all." in text


def test_the_owner_sees_its_own_share_and_no_other_brands_groups_or_consignees(world):
    # given: brand A reads the run in part (its units and its shipments), not brand B's
    w = world
    # when
    text = _main(_text(_page_client(w.users["own"]).get(_url(w))))
    # then
    assert _table(text, "breakdown-table-product-models") == [[_label(w.work_order), "4", "3", "7"]]
    assert _table(text, "consignee-table") == [
        [w.d1.name, "3", "2024-03-03", "2024-03-03", "—"],
        [w.d2.name, "3", "2024-03-04", "2024-03-04", "—"],
    ]
    for foreign in (w.other_order.number, _models(w)[1], w.other_distributor.name, w.other_distributor.slug):
        assert foreign not in text, foreign


@pytest.mark.parametrize("caller", ["supplier", "competitor", "distributor", "regulator_out_of_scope"])
def test_a_caller_who_may_not_read_the_investigation_is_shown_no_breakdown_or_consignee(world, caller):
    # given
    w = world
    # when
    response = _page_client(w.users[caller]).get(_url(w), {"product_model": _models(w)[0]})
    # then: as an unknown investigation, naming none of it
    text = _main(_text(response))
    assert response.status_code == 404
    assert f"No investigation you may read is numbered {w.investigation.pk}." in text
    for named in (w.d1.name, w.d2.name, w.other_distributor.name, w.work_order.number, "chart-data"):
        assert named not in text, named


# --- filters ------------------------------------------------------------------------------------------


def test_the_filters_offer_the_groups_of_the_callers_breakdown(world):
    # given
    w = world
    # when
    regulator = _text(_page_client(w.users["regulator_all"]).get(_url(w), {"consignee": w.d2.slug}))
    own = _text(_page_client(w.users["own"]).get(_url(w)))
    # then
    consignees = regulator.split('<select id="filter-consignee" name="consignee">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]*)"( selected)?>', consignees) == [
        ("", ""),
        (w.d1.slug, ""),
        (w.d2.slug, " selected"),
        (w.other_distributor.slug, ""),
    ]
    models = own.split('<select id="filter-product_model" name="product_model">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]*)"', models) == ["", _models(w)[0]]
    assert '<label for="filter-work_order">Work order</label>' in own


@pytest.mark.parametrize(
    ("query", "serials"),
    [
        ({"product_model": "A"}, ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]),
        ({"product_model": "B"}, ["U9", "U10"]),
        ({"work_order": "B"}, ["U9", "U10"]),
        ({"work_order": "A", "exposure": "potential"}, ["U4", "U5", "U6"]),
        ({"consignee": "d1"}, ["U1", "U2", "U3"]),
        ({"consignee": "other_distributor"}, ["U9"]),
        ({"consignee": "d2", "product_model": "B"}, []),
    ],
)
def test_the_filters_narrow_the_units_exactly(world, query, serials):
    # given
    w = world
    values = {
        "A": {"product_model": _models(w)[0], "work_order": w.work_order.number},
        "B": {"product_model": _models(w)[1], "work_order": w.other_order.number},
    }
    asked = {
        name: (getattr(w, value).slug if name == "consignee" else values[value][name] if value in values else value)
        for name, value in query.items()
    }
    # when
    response = _page_client(w.users["regulator_all"]).get(_url(w), asked)
    # then
    text = _main(_text(response))
    assert response.status_code == 200
    assert _listed(text) == serials
    assert ('id="no-units"' in text) == (not serials)


def test_paging_with_a_filter_keeps_it_and_lists_each_unit_once(world, monkeypatch):
    # given pages of two units
    w = world
    monkeypatch.setattr(investigation_pages, "UNIT_ROWS", 2)
    client = _page_client(w.users["regulator_all"])
    url = f"{_url(w)}?product_model={_models(w)[0]}"
    seen, links = [], []
    # when the next link is followed to the end
    while url:
        text = _text(client.get(url))
        seen += _listed(_main(text))
        found = re.search(r'<a href="([^"#]*)#units-heading" role="button" class="secondary" id="next-units"', text)
        url = found.group(1).replace("&amp;", "&") if found else None
        links += [url] if url else []
    # then
    assert seen == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    assert links and all(f"product_model={_models(w)[0]}" in link for link in links)


@pytest.mark.parametrize(
    ("caller", "query", "message"),
    [
        ("own", {"product_model": "Z-999"}, "Model “Z-999” is not the model of any affected unit you may see."),
        # another brand's model, consignee and work order: in the same words as ones that do not exist
        ("own", {"product_model": "B"}, "Model “{}” is not the model of any affected unit you may see."),
        ("own", {"consignee": "other"}, "Consignee “{}” received none of the affected units you may see."),
        (
            "own",
            {"work_order": "B"},
            "Work order “{}” is not the work order of any affected unit you may see.",
        ),
        ("regulator_all", {"consignee": "x" * 80}, f"Consignee “{'x' * 50}” received none of the affected units"),
    ],
)
def test_a_model_work_order_or_consignee_none_of_the_callers_units_have_is_refused_naming_it(
    world, caller, query, message
):
    # given
    w = world
    named = {"B": {"product_model": _models(w)[1], "work_order": w.other_order.number}}
    asked = {
        name: w.other_distributor.slug if value == "other" else named.get(value, {}).get(name, value)
        for name, value in query.items()
    }
    before = (
        Investigation.objects.values_list("status", flat=True).get(pk=w.investigation.pk),
        TraceRun.objects.count(),
    )
    # when
    response = _page_client(w.users[caller]).get(_url(w), asked)
    # then
    text = _main(_text(response))
    assert response.status_code == 400
    assert message.format(*asked.values()) in text
    assert 'id="units"' not in text and "chart-data" not in text
    assert (
        Investigation.objects.values_list("status", flat=True).get(pk=w.investigation.pk),
        TraceRun.objects.count(),
    ) == before


# --- cost ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["regulator_all", "own"])  # the stored breakdown; the owner's share counted
def test_the_page_costs_the_same_queries_whatever_the_runs_size(world, caller):
    # given the world's run of nine units, and another of sixty more units of brand A's
    w = world
    client = _page_client(w.users[caller])
    small = w.investigation.pk
    more_units(w, 60)
    finding = raise_finding(client_for(w.users["own"]), urn(w.m1.identity)).json()
    run_job(TraceRun.objects.select_related("job").get(pk=finding["run"]).job)
    large = finding["investigation"]
    counted = []
    for number in (small, large):
        # when
        with CaptureQueriesContext(connection) as queries:
            text = _main(_text(client.get(f"/investigation/{number}/")))
        counted.append(len(queries.captured_queries))
        # then
        assert 'id="breakdown-table-consignees"' in text and 'id="consignee-table"' in text
    assert len(_table(text, "units")) == investigation_pages.UNIT_ROWS
    assert Unit.objects.count() > 60
    if caller == "regulator_all":
        assert counted[0] == counted[1]
    else:
        # The owner's share is counted from the result (as REST's): the smaller run reaches a
        # segment whose carton sums are not exact, joined member by member in one more query.
        assert counted[1] <= counted[0]
