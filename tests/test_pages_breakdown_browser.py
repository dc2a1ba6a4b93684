"""The investigation page's breakdown charts in Debian's Chromium (issue 15): drawn by the vendored
Chart.js from the data the page gives, in the run's section htmx brings in once the run finishes,
with no script refused by the Content Security Policy; and the model filter narrowing the units.
The screenshots in README of a finished run's breakdowns and of an affected unit's path picture
(docs/screenshots/) are written here.
"""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from django.db import connection
from playwright.sync_api import expect

from packs.models import Shipment, Unit
from suppliers.models import Role
from tests.factories import OrganisationFactory, SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.test_browser import _session_cookie
from tests.test_pages_browser import (  # noqa: F401  (world: the fixture)
    TABLET,
    _screenshot,
    _texts_seen,
    _watch_text,
    browser_page,
    world,
)
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import TraceRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = ["product-models", "work-orders", "sites", "production-months", "consignees"]


def test_the_breakdowns_are_drawn_when_the_run_finishes_and_a_model_picked_narrows_the_units(live_server):
    # given brand A's finding on M1, its run queued, and a regulator who sees the run whole
    w = add_competitor(build_world())
    finding = raise_finding(client_for(member(w.brand)), urn(w.m1.identity)).json()
    run = TraceRun.objects.select_related("job").get(pk=finding["run"])
    regulator = member(OrganisationFactory(role=Role.REGULATOR))
    cookie = _session_cookie(regulator, live_server.url)
    url = f"{live_server.url}/investigation/{finding['investigation']}/"
    refused: list[str] = []
    with browser_page(cookies=[cookie]) as page:
        page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
        page.goto(url)
        before = page.locator("canvas.ledger-chart").count()
        _watch_text(page, "#run-percent")
        # when the run finishes while the page is open (htmx brings its section in)
        # (in a thread of its own: Playwright's loop runs in this one, where Django refuses the ORM)
        worker = threading.Thread(target=_run_job, args=(run.job,))
        worker.start()
        worker.join()
        expect(page.locator("#run-percent")).to_have_text("100%", timeout=30_000)
        percents = _texts_seen(page)
        page.wait_for_selector("#chart-consignees")
        drawn = page.evaluate(
            """keys => keys.map(key => {
                const canvas = document.getElementById('chart-' + key);
                const chart = window.Chart.getChart(canvas);
                return [key, !canvas.hidden && canvas.width > 0 && canvas.height > 0,
                        chart ? chart.data.labels.length : 0];
            })""",
            CHARTS,
        )
        # and a model is picked in the filter
        model = w.other_order.product_model.model_number
        page.get_by_label("Model", exact=True).select_option(model)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(f"**product_model={model}**")
        listed = page.locator("#units tbody tr td:first-child").all_inner_texts()
        redrawn = page.evaluate("() => Boolean(window.Chart.getChart(document.getElementById('chart-sites')))")
    # then
    assert before == 0
    assert percents is not None and percents[0] == "0%" and percents[-1] == "100%"  # None: the page navigated
    assert drawn == [
        ["product-models", True, 2],
        ["work-orders", True, 2],
        ["sites", True, 2],
        ["production-months", True, 1],
        ["consignees", True, 3],
    ]
    assert listed == ["U9", "U10"] and redrawn
    assert refused == []


def _run_job(job) -> None:
    try:
        run_job(job)
    finally:
        connection.close()


def test_a_finished_runs_breakdowns_and_an_affected_units_path_are_photographed(live_server, world):  # noqa: F811
    # given brand A's finding on M1 in the pages' named world (its plants and distributors named too),
    # the distributors' shipments addressed to their warehouses, its run finished, and the regulator
    # who sees it whole
    world.other_distributor.name = "Pacific Battery Supply"
    world.other_distributor.save(update_fields=["name"])
    for site, name in ((world.work_order.site, "Northwind Shenzhen"), (world.other_order.site, "Harbor Penang")):
        site.name = name
        site.save(update_fields=["name"])
    for distributor, country, name in ((world.d1, "DE", "Lager Köln"), (world.d2, "FR", "Entrepôt Lyon")):
        Shipment.objects.filter(consignee=distributor).update(
            ship_to=SiteFactory(owner=distributor, country=country, name=name)
        )
    run = TraceRun.objects.select_related("job").get(investigation__finding__owner=world.brand)
    run_job(run.job)
    cookie = _session_cookie(world.regulator_user, live_server.url)
    unit = Unit.objects.get(pk=world.u[4])
    investigation = f"{live_server.url}/investigation/{run.investigation_id}/"
    with browser_page(cookies=[cookie]) as page:
        # when its investigation page has drawn every chart, on the tablet held sideways (the charts
        # side by side; the path's picture scrolls sideways when it is upright)
        page.set_viewport_size({"width": TABLET["height"], "height": TABLET["width"]})
        page.goto(investigation)
        page.wait_for_function(
            "keys => keys.every(key => window.Chart && window.Chart.getChart(document.getElementById('chart-' + key)))",
            arg=CHARTS,
        )
        countries = page.locator("#consignee-table tbody tr td:last-child").all_inner_texts()
        _screenshot(page, "investigation-breakdown")
        # and the path of a unit it reached potentially
        page.goto(f"{investigation}unit/?{urlencode({'id': unit.identity})}")
        page.wait_for_selector("#path-picture")
        boxes = page.locator("#path-picture g.node title").all_inner_texts()
        _screenshot(page, "unit-path")
    # then both were photographed with what they show
    assert sorted(countries) == ["DE", "FR", "—"]
    assert len(boxes) == 4  # M1, M2, C2 (potentially) and U4
