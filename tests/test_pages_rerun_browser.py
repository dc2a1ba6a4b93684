"""The investigation page's re-run in Debian's Chromium (issue 15): brand A's QA engineer presses
"Run the trace again" on a traced investigation, and once a real Celery worker has traced the new run
through the broker, what changed since the previous run shows on the page without a reload (htmx
asks for the diff section again while the run traces): the unit built between the runs, by serial.
axe-core finds no serious or critical violation on the page with its diff.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from suppliers.models import MemberRole, Membership
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.test_browser import _session_cookie
from tests.test_pages_browser import _axe_violations, browser_page
from tests.test_pages_rerun import _built
from tests.trace_world import add_competitor, build_world
from traceability.core.models import JobStatus
from traceability.investigations.models import TraceRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_reruns_and_the_diff_shows_the_new_unit_without_a_reload(live_server, celery_worker):
    # given brand A's traced finding on M1, then one more unit built from module lot MOD1 (data
    # written before the browser starts; the first run traced here, the re-run by the worker)
    w = add_competitor(build_world())
    engineer = member(None, "northwind-qa")
    Membership.objects.create(user=engineer, organisation=w.brand, role=MemberRole.QA)
    created = raise_finding(client_for(engineer), urn(w.m1.identity))
    assert created.status_code == 201, created.json()
    run_job(TraceRun.objects.get(pk=created.json()["run"]).job)
    _built(w, serials=["X0001"])
    url = f"{live_server.url}/investigation/{created.json()['investigation']}/"
    cookie = _session_cookie(engineer, live_server.url)
    navigations: list[str] = []
    with browser_page(cookies=[cookie]) as page:
        page.goto(url)
        before = page.locator("#diff-changes").count()
        # when they press the button (a form's POST: the page comes back, tracing)
        page.get_by_role("button", name="Run the trace again").click()
        page.wait_for_url(f"{url}#run")
        tracing = page.locator("#diff-tracing").count()
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        # then the new unit shows among those newly exposed once the worker has traced the run
        expect(page.locator("#diff-added")).to_contain_text("X0001", timeout=60_000)
        added = page.locator("#diff-added a").all_inner_texts()
        button_back = page.get_by_role("button", name="Run the trace again").count()
        still_tracing = page.locator("#diff-tracing").count()
    with browser_page(cookies=[cookie], bypass_csp=True) as page:
        page.goto(url)
        axe = _axe_violations(page)
    # then
    rerun = TraceRun.objects.select_related("job").latest("pk")
    assert rerun.previous_id == created.json()["run"] and rerun.job.status == JobStatus.SUCCEEDED
    assert (before, tracing) == (0, 1)  # nothing to compare before; the section said it traces
    assert navigations == []  # the diff came in through htmx alone
    assert added == ["X0001"]  # brand A's own unit; nothing of brand B's
    assert (button_back, still_tracing) == (1, 0)
    assert axe == []
