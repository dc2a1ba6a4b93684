"""Recording a finding in Debian's Chromium (issue 15): a brand's QA engineer types the start of a
serial, picks its own unit offered as it types, attaches a lab report and records the finding; the
investigation lists the evidence. On the desk, a run a real Celery worker traces moves its bar to
100% without the page reloading (htmx asks the desk's rows again while a run traces).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from packs.models import Unit
from suppliers.models import MemberRole, Membership
from tests.test_api_support import member
from tests.test_browser import _session_cookie
from tests.test_pages_browser import _axe_violations, _texts_seen, _watch_text, browser_page
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import Investigation, TraceRun
from traceability.investigations.services import finding_record
from traceability.ledger.selectors import identifier_render
from traceability.tasks import job_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_a_qa_engineer_picks_an_offered_unit_attaches_evidence_and_watches_the_desk_reach_100(
    live_server, celery_worker, settings, tmp_path
):
    # given brand A's QA engineer, signed in, and brand B's unit U10 (never offered to brand A)
    settings.MEDIA_ROOT = tmp_path
    w = add_competitor(build_world())
    engineer = member(None, "northwind-qa")
    Membership.objects.create(user=engineer, organisation=w.brand, role=MemberRole.QA)
    cookie = _session_cookie(engineer, live_server.url)
    u1 = Unit.objects.get(pk=w.u[1])
    report = tmp_path / "XRF report.pdf"
    report.write_bytes(PDF)
    # and brand A's finding on C4, its run waiting to be started
    queued = finding_record(
        owner=w.brand,
        subject=w.c4,
        category="metallic_debris",
        severity="critical",
        description="Lot C4 on the desk",
        raised_by=engineer,
        submit=lambda job: None,  # started below, once the desk shows it waiting
    )
    number = queued.investigation.pk
    job = TraceRun.objects.get(investigation_id=number).job
    navigations: list[str] = []
    with browser_page(cookies=[cookie]) as page:
        page.goto(f"{live_server.url}/finding/new/")
        # when they type the start of a serial and pick the unit offered
        subject = page.get_by_label("Subject: EPC URN, Digital Link, or a lot code or serial of your organisation")
        subject.press_sequentially("U1", delay=50)
        offer = page.locator("#subject-offers button", has_text="U1 · unit")
        offer.wait_for(timeout=10_000)
        offered = page.locator("#subject-offers button").all_inner_texts()
        offer.click()
        picked = subject.input_value()
        # and attach a lab report and record the finding
        page.get_by_label("Evidence (optional): lab reports, photographs, X-ray images, measurements").set_input_files(
            str(report)
        )
        page.get_by_label("Defect").select_option("metallic_debris")
        page.get_by_label("Severity").select_option("high")
        page.get_by_label("Description").fill("Burr on the tab of U1")
        page.get_by_role("button", name="Record the finding").click()
        page.wait_for_url(f"{live_server.url}/investigation/*/")
        evidence = page.locator("#evidence").inner_text()
        # and choosing a supplier's lots shows the supplier's fields and hides the serial's
        page.goto(f"{live_server.url}/finding/new/")
        page.get_by_label("Every lot of a supplier").check()
        supplier_shown = page.get_by_label("Supplier", exact=True).is_visible()
        subject_hidden = not page.get_by_label(
            "Subject: EPC URN, Digital Link, or a lot code or serial of your organisation"
        ).is_visible()
        # when a run waits on the desk, then a real worker traces it
        page.goto(f"{live_server.url}/desk/")
        waiting = page.locator(f"#percent-{number}").inner_text()
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        _watch_text(page, f"#percent-{number}")
        job_run.apply_async(args=[str(job.pk), job.done])
        expect(page.locator(f"#percent-{number}")).to_have_text("100%", timeout=60_000)
        percents = _texts_seen(page)
        expect(page.locator("#desk-investigations")).not_to_have_attribute("hx-trigger", "every 2s", timeout=10_000)
    # and axe-core checks the form with a unit offered (in a browser that lets its script in)
    with browser_page(cookies=[cookie], bypass_csp=True) as page:
        page.goto(f"{live_server.url}/finding/new/")
        page.get_by_label("Subject: EPC URN, Digital Link, or a lot code or serial of your organisation").fill("U")
        page.locator("#subject-offers button").first.wait_for(timeout=10_000)
        axe = _axe_violations(page)
    # then
    investigation = Investigation.objects.select_related("finding").get(finding__description="Burr on the tab of U1")
    assert offered == ["U1 · unit"]  # brand B's U10 starts so too, and is not offered
    assert picked == identifier_render(u1.identity, form="digital_link")
    assert investigation.finding.subject_unit_id == u1.pk
    assert "XRF report.pdf" in evidence
    assert [a.name for a in investigation.finding.attachments.all()] == ["XRF report.pdf"]
    assert supplier_shown and subject_hidden
    assert waiting == "0%"
    assert percents is not None and percents[0] == "0%" and percents[-1] == "100%"  # None: the page navigated
    assert navigations == []  # the bar moved through htmx alone
    assert axe == []
