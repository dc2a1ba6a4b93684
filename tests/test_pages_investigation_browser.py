"""The QA console's journey in Debian's Chromium (issue 15): a brand's QA engineer records a finding,
watches its run reach 100% without reloading (htmx asks the page's run section again while a real
Celery worker traces it through the broker; the worker starts only once the page shows the run below
100%, so however fast the machine the page must poll), filters the affected units, opens a unit's path (its
picture), moves the investigation to review with a note, starts the CSV export, watches it finish
and downloads it. axe-core finds no serious or critical violation; the screenshots in README
(docs/screenshots/) are written here.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from packs.models import Unit
from suppliers.models import MemberRole, Membership
from tests.test_api_support import member
from tests.test_browser import _session_cookie
from tests.test_pages_browser import _axe_violations, _screenshot, _texts_seen, _watch_text, browser_page
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import Investigation
from traceability.ledger.selectors import identifier_render

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_qa_engineer_records_a_finding_watches_its_run_and_reviews_and_exports_it(live_server, celery_worker_later):
    # given brand A's QA engineer, signed in (data written before the browser starts)
    w = add_competitor(build_world())
    w.brand.name, w.other_brand.name = "Northwind Power", "Harbor Mobile"
    w.brand.save(update_fields=["name"])
    w.other_brand.save(update_fields=["name"])
    engineer = member(None, "northwind-qa")
    Membership.objects.create(user=engineer, organisation=w.brand, role=MemberRole.QA)
    cookie = _session_cookie(engineer, live_server.url)
    subject = identifier_render(w.m1.identity, form="digital_link")
    own_serials = set(Unit.objects.filter(owner=w.brand).values_list("serial", flat=True))
    csp: list[str] = []
    navigations: list[str] = []
    with browser_page(cookies=[cookie]) as page:
        page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)
        page.goto(f"{live_server.url}/desk/")
        # when they record a finding on material lot M1 by its Digital Link
        page.get_by_role("link", name="Record a finding").click()
        page.get_by_label("Subject: EPC URN, Digital Link, or a lot code or serial of your organisation").fill(subject)
        page.get_by_label("Defect").select_option("metallic_debris")
        page.get_by_label("Severity").select_option("critical")
        page.get_by_label("Description").fill("Fe particles of 45 µm in the precursor")
        _screenshot(page, "finding-new")
        page.get_by_role("button", name="Record the finding").click()
        page.wait_for_url(f"{live_server.url}/investigation/*/")
        landed = page.url
        preview = page.locator("#impact").inner_text()
        # and watch the run reach 100% without reloading the page: the run waits in the broker until the
        # page has shown it in progress, then a real worker starts and traces it
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        _watch_text(page, "#run-percent")
        polled_by = page.locator("#run").get_attribute("hx-trigger")
        celery_worker_later()
        expect(page.locator("#run-percent")).to_have_text("100%", timeout=60_000)
        percents = _texts_seen(page)
        page.wait_for_selector("#units tbody tr")
        reloaded = list(navigations)
        definite = page.locator("#definite-units").inner_text()
        every_unit = page.locator("#units tbody tr td:first-child").all_inner_texts()
        # and filter the affected units to the potentially exposed
        page.get_by_label("Exposure", exact=True).select_option("potential")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**exposure=potential**")
        potential = page.locator("#units tbody tr td:nth-child(4)").all_inner_texts()
        # and open the first potentially exposed unit's path: its picture, then back to the units
        serial = page.locator("#units tbody tr td:first-child").first.inner_text()
        page.get_by_role("link", name=f"Path to {serial}").click()
        page.wait_for_selector("#path-picture")
        unit_path = page.url
        boxes = page.locator("#path-picture text.label").all_text_contents()
        dashed = page.locator("#path-picture line.potential[stroke-dasharray]").count()
        steps = page.locator("#path-steps li").count()
        page.get_by_role("link", name=re.compile("^Back to the affected units")).click()
        page.wait_for_selector("#units tbody tr")
        # and move the investigation to review with a note
        page.get_by_label("Note for the record").fill("8D report asked of the precursor supplier")
        page.get_by_role("button", name="Move to “Under review”").click()
        page.wait_for_selector("#transitions li:has-text('8D report asked')")
        status = page.locator("#investigation-status").inner_text()
        # and export the affected units as CSV, then download the file once written
        page.get_by_label("Format").select_option("csv")
        page.get_by_role("button", name="Export the affected units").click()
        download_link = page.locator("#export-rows a", has_text="Download")
        download_link.wait_for(timeout=60_000)
        with page.expect_download() as waited:
            download_link.click()
        download = waited.value
        filename = download.suggested_filename
        with open(download.path(), encoding="utf-8") as written:
            rows = list(csv.DictReader(io.StringIO(written.read())))
        reviewed = page.url
    # and axe-core checks the page as it is now (in a browser that lets its script in)
    with browser_page(cookies=[cookie], bypass_csp=True) as page:
        page.goto(reviewed)
        axe = {"investigation": _axe_violations(page)}
        page.goto(unit_path)
        axe["unit-path"] = _axe_violations(page)
        page.goto(reviewed)
        _screenshot(page, "investigation-review")
        page.goto(f"{live_server.url}/finding/new/")
        page.get_by_role("button", name="Record the finding").click()  # nothing filled in: errors by the fields
        page.wait_for_selector("#subject-error")
        axe["finding-refused"] = _axe_violations(page)
    # then
    investigation = Investigation.objects.get(finding__description__startswith="Fe particles")
    assert landed == f"{live_server.url}/investigation/{investigation.pk}/"
    assert "Definitely exposed units" in preview
    assert polled_by == "every 1s"
    assert percents is not None and percents[0] == "0%" and percents[-1] == "100%"  # None: the page navigated
    assert reloaded == []  # the run's progress came in through htmx alone
    assert int(definite) > 0 and set(every_unit) <= own_serials and every_unit
    assert potential and set(potential) == {"Potential"}
    assert boxes[0] == w.m1.identity and boxes[-1] == Unit.objects.get(owner=w.brand, serial=serial).identity
    assert dashed >= 1 and steps == len(boxes) - 1
    assert status == "Under review" and investigation.status == "under_review"
    assert filename == f"investigation-{investigation.pk}-csv.csv"
    assert {row["serial"] for row in rows} == set(every_unit)  # the units the page listed, none of brand B's
    assert axe == {"investigation": [], "unit-path": [], "finding-refused": []}
    assert csp == []
