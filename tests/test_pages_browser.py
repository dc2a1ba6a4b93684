"""The pages in Debian's Chromium (issue 15): a regulator signs in, searches a serial and reads its
upstream tree; the language switch shows Chinese; axe-core finds no serious or critical violation on
any main page; no page breaks the Content Security Policy. The screenshots in README
(docs/screenshots/) are written here.

Data is written before the browser starts (Playwright's sync API runs an event loop in this thread,
where Django refuses ORM calls); see tests/test_browser.py for the harness.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _session_cookie
from tests.trace_world import add_competitor, build_world
from traceability.ledger.selectors import identifier_render

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "assets" / "axe.min.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
PASSWORD = "regulator-desk-2026"
# A tablet held upright on a factory floor.
TABLET = {"width": 820, "height": 1180}


@contextmanager
def browser_page(*, cookies: list[dict] = (), bypass_csp: bool = False) -> Iterator:
    """A page of a fresh headless Chromium at a tablet's size. ``bypass_csp``: for axe-core, which
    is injected as a script of the page and would be refused by the Content Security Policy."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: `make test` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=TABLET, locale="en-GB", bypass_csp=bypass_csp)
            context.add_cookies(list(cookies))
            yield context.new_page()
        finally:
            browser.close()


def _axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.1 A and AA)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                         'best-practice']}))
            .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return list(found)


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _watch_text(page, selector: str) -> None:
    """Record, in the page's document, every text the element at ``selector`` shows from now on: htmx
    swaps it for a new element each time it asks again, so the document is watched, not the element. A
    navigation starts a new document without the record, and ``_texts_seen`` then answers None."""
    page.evaluate(
        """selector => {
            const text = () => document.querySelector(selector)?.textContent.trim();
            window.ledgerTextsSeen = [text()];
            new MutationObserver(() => {
                const now = text();
                if (now !== undefined && now !== window.ledgerTextsSeen.at(-1)) window.ledgerTextsSeen.push(now);
            }).observe(document.body, {childList: true, subtree: true, characterData: true});
        }""",
        selector,
    )


def _texts_seen(page) -> list[str] | None:
    """What ``_watch_text`` recorded in this document, in order; None if the page navigated since."""
    return page.evaluate("() => window.ledgerTextsSeen ?? null")


@pytest.fixture()
def world():
    """The trace world with the competitor, countries, brand A's finding on M1, and a regulator with
    an ``all`` grant whose user has a password (it signs in through the form)."""
    w = add_competitor(build_world())
    for organisation, country in ((w.d1, "DE"), (w.d2, "FR"), (w.other_distributor, "US")):
        organisation.country = country
        organisation.save(update_fields=["country"])
    # Names a reader of the screenshots can follow (the factories number them).
    for organisation, name in (
        (w.m1.owner, "Qinghai Lithium Precursors"),
        (w.m2.owner, "Lumen Cathode Materials"),
        (w.c1.owner, "Eastbay Cell Co."),
        (w.mod1.owner, "Pearl River Modules"),
        (w.brand, "Northwind Power"),
        (w.other_brand, "Harbor Mobile"),
        (w.d1, "Rhein Elektro Handel"),
        (w.d2, "Boutique Énergie"),
    ):
        organisation.name = name
        organisation.save(update_fields=["name"])
    brand_qa = member(None, "brand-qa")
    Membership.objects.create(user=brand_qa, organisation=w.brand, role=MemberRole.QA)
    raise_finding(client_for(brand_qa), urn(w.m1.identity))
    w.regulator = OrganisationFactory(role=Role.REGULATOR, name="State Administration for Market Regulation")
    w.regulator_user = member(None, "samr-inspector")
    w.regulator_user.set_password(PASSWORD)
    w.regulator_user.save()
    Membership.objects.create(user=w.regulator_user, organisation=w.regulator, role=MemberRole.QA)
    w.brand_qa = brand_qa
    return w


def test_a_regulator_signs_in_searches_a_serial_and_reads_its_upstream_tree(live_server, world):
    violations: list[str] = []
    with browser_page() as page:
        page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else None)
        # given the sign-in page
        page.goto(f"{live_server.url}/desk/")
        assert page.url.startswith(f"{live_server.url}/signin/")
        _screenshot(page, "signin")
        # when the regulator signs in
        page.get_by_label("Username").fill("samr-inspector")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/desk/")
        heading = page.locator("h1").inner_text()
        investigations = page.locator("#investigations tbody tr").all_inner_texts()
        _screenshot(page, "regulator-desk")
        # and searches a serial from the header
        page.get_by_label("Serial, lot code, EPC URN, Digital Link, GTIN or SSCC").fill("U1")
        page.get_by_role("button", name="Search", exact=True).click()
        page.wait_for_selector("#upstream")
        title = page.locator("h1").inner_text()
        tree = page.locator("#upstream")
        top = tree.locator(":scope > ul > li")
        top_lot = top.first.locator(":scope > a").inner_text()
        nested = [a.inner_text() for a in tree.locator("li > a").all()]
        depth_of_m1 = tree.locator("li", has=page.locator("a", has_text="M1")).count()
        siblings = page.locator("#sibling-rows tbody tr td:first-child").all_inner_texts()
        _screenshot(page, "unit")
        # and follows the tree to the material lot
        tree.locator("a", has_text="M1").first.click()
        page.wait_for_selector("#downstream")
        lot_title = page.locator("h1").inner_text()
        counts = page.locator("#downstream tbody tr").first.inner_text()
        findings = page.locator("#findings").inner_text()
        _screenshot(page, "lot")
        # and reads the audit of its own queries
        page.goto(f"{live_server.url}/desk/")
        page.get_by_role("link", name="Read the audit of your queries").click()
        audited = page.locator("#audit tbody tr td:nth-child(4)").all_inner_texts()
        _screenshot(page, "regulator-audit")
    # then it read the desk, the unit's whole upstream tree nearest first, and the lot's story
    assert heading == "Regulator's desk"
    assert any(world.brand.name in row for row in investigations)
    assert title == "Unit U1"
    assert top_lot == "MOD1"
    assert nested == ["MOD1", "C1", "M2", "M1"]  # each under the lot it was made from
    assert depth_of_m1 == 4  # M1 sits four levels deep: in MOD1's, C1's and M2's items, and its own
    assert siblings == ["U2", "U3"]
    assert lot_title == "Lot M1"
    assert counts.split() == ["All", "6", "3"]
    assert "Fe 45 µm" in findings
    lot_link = identifier_render(world.m1.identity, form="digital_link")
    # (the desk's rows ask for their runs' progress every 2 s while one is queued: each ask is a read too)
    polls = [path for path in audited if path == "/desk/?section=investigations"]
    pages = [path for path in audited if path not in polls]
    assert pages == ["/desk/", f"/lot/?id={lot_link}", "/unit/?id=U1", "/search/?q=U1", "/desk/"]
    assert violations == []


def test_the_language_switch_shows_chinese(live_server, world):
    cookie = _session_cookie(world.regulator_user, live_server.url)
    with browser_page(cookies=[cookie]) as page:
        # given the desk in English
        page.goto(f"{live_server.url}/desk/")
        before = page.locator("h1").inner_text()
        # when the language switch is set to Chinese
        page.get_by_label("Language").select_option("zh-hans")
        page.get_by_role("button", name="Change language").click()
        page.wait_for_selector("html[lang=zh-hans]")
        after = page.locator("h1").inner_text()
        sign_out = page.get_by_role("button", name="退出登录").inner_text()
        label = page.locator("label[for=search-q]").inner_text()
        _screenshot(page, "regulator-desk-zh-hans")
        # and it stays Chinese on the next page
        page.get_by_label("序列号、批次代码、EPC URN、数字链接、GTIN 或 SSCC").fill("U1")
        page.get_by_role("button", name="搜索", exact=True).click()
        page.wait_for_selector("#upstream")
        unit_heading = page.locator("h1").inner_text()
        section = page.locator("#upstream-heading").inner_text()
    # then
    assert before == "Regulator's desk"
    assert after == "监管机构工作台"
    assert sign_out == "退出登录"
    assert label == "序列号、批次代码、EPC URN、数字链接、GTIN 或 SSCC"
    assert (unit_heading, section) == ("产品 U1", "原料来源")


def _main_pages(world) -> dict[str, str]:
    unit = Unit.objects.get(pk=world.u[1])
    return {
        "desk": "/desk/",
        "unit": "/unit/?" + urlencode({"id": identifier_render(unit.identity, form="digital_link")}),
        "lot": "/lot/?" + urlencode({"id": identifier_render(world.c1.identity, form="digital_link")}),
        "search-gtin": "/search/?" + urlencode({"q": unit.gtin}),
        "search-refused": "/search/?" + urlencode({"q": "urn:epc:id:sgtin:0614141.112345"}),
        "audit": "/desk/audit/",
    }


def test_no_main_page_has_a_serious_or_critical_accessibility_violation(live_server, world):
    # given the regulator's session and its main pages, and the sign-in page as anyone sees it
    pages = _main_pages(world)
    found: dict[str, list[dict]] = {}
    with browser_page(bypass_csp=True) as page:
        page.goto(f"{live_server.url}/signin/")
        found["signin"] = _axe_violations(page)
    with browser_page(cookies=[_session_cookie(world.regulator_user, live_server.url)], bypass_csp=True) as page:
        # when axe-core checks each
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            found[name] = _axe_violations(page)
        page.goto(f"{live_server.url}{pages['lot']}")
        page.get_by_label("Language").select_option("zh-hans")
        page.get_by_role("button", name="Change language").click()
        page.wait_for_selector("html[lang=zh-hans]")
        found["lot-zh-hans"] = _axe_violations(page)
    # then none has a serious or critical violation
    assert found == dict.fromkeys(["signin", *pages, "lot-zh-hans"], [])


def test_no_page_breaks_the_content_security_policy_and_every_asset_is_served_here(live_server, world):
    # given the brand's QA engineer, signed in, and the main pages
    pages = _main_pages(world)
    violations: list[str] = []
    requested: list[str] = []
    policies: dict[str, str | None] = {}
    with browser_page(cookies=[_session_cookie(world.brand_qa, live_server.url)]) as page:
        page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else None)
        page.on("request", lambda request: requested.append(request.url))
        # when each is opened and its scripts have run
        for name, path in pages.items():
            response = page.goto(f"{live_server.url}{path}")
            policies[name] = response.headers.get("content-security-policy")
            page.wait_for_load_state("networkidle")
        htmx = page.evaluate("() => typeof window.htmx")
    # then every page carries the policy, the browser refused nothing, and nothing came from elsewhere
    assert all(policy and "script-src 'self'" in policy for policy in policies.values()), policies
    assert violations == []
    assert requested and all(url.startswith(live_server.url) for url in requested)
    assert htmx == "object"  # the vendored htmx loaded and ran
