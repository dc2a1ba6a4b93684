"""The product's pages in a real headless browser: Debian's Chromium, driven by Playwright.

The browser talks to a live server on the test database. Data is written before the browser
starts: Playwright's sync API runs an event loop in this thread, where Django refuses ORM calls.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import Client

from tests.test_api_support import member
from tests.trace_world import build_world
from traceability.investigations.services import finding_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("LEDGER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As this machine's browser probe starts it: no sandbox as root, and no background connections
# (the network is closed; Chromium's attempts to reach Google's hosts are refused by the dozen).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page(*, cookies: list[dict] = ()) -> Iterator:
    """A page of a fresh headless Chromium, with ``cookies`` set; fails (never skips) without one."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: `make test` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            context.add_cookies(list(cookies))
            yield context.new_page()
        finally:
            browser.close()


def _session_cookie(user, url: str) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": url,
    }


def _try_it_out(page, method: str, path: str, *, fill: Callable | None = None) -> tuple[str, object]:
    """On the docs page: open ``method path``, press "Try it out", fill it in, press "Execute";
    returns the status code shown and the response's row."""
    operation = page.locator(f".opblock-{method}", has=page.locator(f".opblock-summary-path[data-path='{path}']"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    if fill:
        fill(operation)
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tbody .response")
    answer.wait_for(timeout=20_000)
    return answer.locator(".response-col_status").inner_text().strip(), answer


def _held(job) -> None:
    """Submit nothing: no worker runs here, and a message left on the broker would outlive the test."""


def test_the_landing_page_leads_to_the_interfaces_and_its_api_docs_link_opens_them(live_server):
    # given the landing page of a running server, as the admin's "View site" link opens it
    requested: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda request: requested.append(request.url))
        # when it is opened
        page.goto(f"{live_server.url}/")
        heading = page.locator("h1").inner_text()
        links = {link.inner_text(): link.get_attribute("href") for link in page.locator("dt a").all()}
        # and its first link followed
        page.get_by_role("link", name="REST API documentation").click()
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        docs_title = page.locator(".info .title").inner_text()
    # then it names the product and each interface, and leads to the docs page, all from this server
    assert heading == "Cell traceability ledger"
    assert links == {
        "Sign in": "/signin/",
        "REST API documentation": "/api/v1/docs/",
        "OpenAPI schema": "/api/v1/schema/",
        "EPCIS 2.0 events": "/epcis/events",
        "EPCIS 2.0 capture": "/epcis/capture",
        "Administration": "/admin/",
        "Health": "/health/",
    }
    assert docs_title.startswith("Cell traceability ledger API")
    assert requested and all(url.startswith(live_server.url) for url in requested)


def test_the_api_docs_page_lists_every_operation_from_assets_served_here(live_server):
    # given the docs page of a running server
    requested: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda request: requested.append(request.url))
        # when it is opened
        page.goto(f"{live_server.url}/api/v1/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        title = page.locator(".info .title").inner_text()
        paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    # then Swagger UI rendered the API's own schema
    assert title.startswith("Cell traceability ledger API")
    assert {
        "/api/v1/findings/",
        "/api/v1/investigations/{id}/transitions/",
        "/api/v1/runs/{id}/units/",
        "/api/v1/units/{ident}/backward/",
        "/api/v1/units/{ident}/siblings/",
    } <= {path.replace("\u200b", "") for path in paths}
    # and every script, style and the schema itself came from this server, none from a CDN
    assert requested and all(url.startswith(live_server.url) for url in requested), [
        url for url in requested if not url.startswith(live_server.url)
    ]


def test_a_signed_in_quality_engineer_runs_an_operation_from_the_docs_page(live_server):
    # given a QA engineer of a brand with a finding on record, signed in (a session, as a browser has)
    w = build_world()
    engineer = member(w.brand, "qa-browser")
    finding_record(
        owner=w.brand, subject=w.m1, category="metallic_debris", severity="critical", description="Fe", submit=_held
    )
    cookie = _session_cookie(engineer, live_server.url)
    with chromium_page(cookies=[cookie]) as page:
        page.goto(f"{live_server.url}/api/v1/docs/")
        # when they open "GET /api/v1/findings/", try it out and execute it
        code, answer = _try_it_out(page, "get", "/api/v1/findings/")
        body = answer.locator(".response-col_description pre").first.inner_text()
    # then the server answered them, with their organisation's finding
    assert code == "200"
    assert '"category": "metallic_debris"' in body
    assert f'"owner": "{w.brand.slug}"' in body


def test_a_quality_engineer_signs_in_to_the_admin_and_reads_a_findings_evidence_and_its_runs_progress(
    live_server, settings, tmp_path
):
    # given a staff user, and a finding with a lab report attached and its trace run queued
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from traceability.investigations.evidence import finding_attach

    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    get_user_model().objects.create_user("qa-admin", password="ledger-qa-2026", is_staff=True, is_superuser=True)
    finding = finding_record(
        owner=w.brand, subject=w.m1, category="metallic_debris", severity="critical", description="Fe", submit=_held
    )
    report = SimpleUploadedFile("XRF report.pdf", b"%PDF-1.7\n%%EOF\n", content_type="application/pdf")
    finding_attach(finding=finding, file=report, name=report.name)
    with chromium_page() as page:
        # when they sign in through the admin's form
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "qa-admin")
        page.fill("#id_password", "ledger-qa-2026")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        header = page.locator("#site-name").inner_text()
        # and open the finding from the findings list
        page.goto(f"{live_server.url}/admin/traceability/finding/")
        page.locator("#result_list tbody tr").first.locator("th a").click()
        page.wait_for_selector(".inline-group")
        evidence = page.locator(".inline-group").inner_text()
        # and look at the jobs
        page.goto(f"{live_server.url}/admin/traceability/job/")
        job = page.locator("#result_list tbody tr").first
        job_kind, job_status, job_percent = (
            job.locator(f"td.field-{column}").inner_text() for column in ("kind", "status", "percent")
        )
    # then
    assert header == "Cell traceability ledger"
    assert "XRF report.pdf" in evidence and "application/pdf" in evidence
    assert (job_kind, job_status, job_percent) == ("Trace run", "Queued", "0")


def test_a_quality_engineer_attaches_a_lab_report_from_the_docs_page(live_server, settings, tmp_path):
    # given a QA engineer of a brand with a finding on record, signed in, and a lab report on disk
    from traceability.investigations.models import FindingAttachment

    settings.MEDIA_ROOT = tmp_path / "media"
    w = build_world()
    engineer = member(w.brand, "qa-upload")
    finding = finding_record(
        owner=w.brand, subject=w.m1, category="metallic_debris", severity="critical", description="Fe", submit=_held
    )
    report = tmp_path / "XRF report M1.pdf"
    report.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    cookie = _session_cookie(engineer, live_server.url)
    with chromium_page(cookies=[cookie]) as page:
        page.goto(f"{live_server.url}/api/v1/docs/")

        # when they try "POST /api/v1/findings/{id}/attachments/" with the finding's id and the file
        def fill(operation) -> None:
            operation.locator("input[placeholder='id']").fill(str(finding.pk))
            operation.locator("input[type=file]").set_input_files(str(report))

        code, _ = _try_it_out(page, "post", "/api/v1/findings/{id}/attachments/", fill=fill)
    # then the server kept it (the page sent its CSRF token with the session)
    assert code == "201"
    (attachment,) = FindingAttachment.objects.filter(finding=finding)
    assert (attachment.name, attachment.content_type) == ("XRF report M1.pdf", "application/pdf")


def test_no_page_breaks_the_content_security_policy(live_server):
    # given a superuser, and a finding for the admin to show
    from django.contrib.auth import get_user_model

    w = build_world()
    finding = finding_record(
        owner=w.brand, subject=w.m1, category="metallic_debris", severity="critical", description="Fe", submit=_held
    )
    root = get_user_model().objects.create_user("root", is_staff=True, is_superuser=True)
    pages = [
        "/",
        "/api/v1/docs/",
        "/admin/",
        f"/admin/traceability/finding/{finding.pk}/change/",
        "/admin/auth/user/add/",
    ]
    violations: list[str] = []
    policies: dict[str, str | None] = {}
    with chromium_page(cookies=[_session_cookie(root, live_server.url)]) as page:
        page.on(
            "console", lambda message: violations.append(message.text) if "Content Security" in message.text else None
        )
        # when each is opened and its scripts have run
        for path in pages:
            response = page.goto(f"{live_server.url}{path}")
            policies[path] = response.headers.get("content-security-policy")
            page.wait_for_load_state("networkidle")
        page.goto(f"{live_server.url}/api/v1/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    # then every page carries the policy and the browser refused nothing on any of them
    assert all(policy and "script-src 'self'" in policy for policy in policies.values()), policies
    assert violations == []


def test_a_signed_in_regulator_runs_a_query_in_graphiql_served_here(live_server):
    # given a regulator, signed in, and a world with a lot to ask about
    from urllib.parse import quote

    from suppliers.models import Role
    from tests.factories import OrganisationFactory
    from traceability.ledger.selectors import identifier_render

    w = build_world()
    regulator = member(OrganisationFactory(role=Role.REGULATOR), "regulator-browser")
    lot = identifier_render(w.m1.identity, form="epc")
    cookie = _session_cookie(regulator, live_server.url)
    requested: list[str] = []
    refused: list[str] = []
    query = f'{{ lot(identifier: "{lot}") {{ identity downstream {{ totalCount }} }} }}'
    with chromium_page(cookies=[cookie]) as page:
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
        # when they open GraphiQL with a shared query and run it
        page.goto(f"{live_server.url}/graphql/#query={quote(query)}")
        page.wait_for_selector(".graphiql-execute-button", timeout=20_000)
        page.locator(".graphiql-execute-button").click()
        page.wait_for_function(
            "() => document.querySelector('.result-window')?.innerText.includes('totalCount')", timeout=20_000
        )
        result = page.locator(".result-window").inner_text()
    # then the ledger answered it through the session, with GraphiQL's assets from this server only
    assert lot in result and '"totalCount": 7' in result
    assert requested and all(url.startswith(live_server.url) for url in requested), requested
    assert not [text for text in refused if "Content Security Policy" in text], refused
