"""The pages on a tablet on a factory floor (issue 15: "Accessible (labels, keyboard, contrast) and
usable on a tablet on a factory floor"), in Debian's Chromium held upright (768×1024, touch): no
main page scrolls sideways (a wide table scrolls inside its own region), every control of the
journeys is a touch target of at least 44×44 CSS px, and the finding form is completed with the
keyboard alone, each stop showing its focus ring.

The one exception to the targets is WCAG 2.5.8's: a link inside a sentence (marked ``.in-text``) is as
tall as its line of text, which a bigger box would push apart. Links alone in a table cell, a list or
a line of links are targets like any button.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from packs.models import Unit
from suppliers.models import MemberRole, Membership
from tests.factories import SpecFactory
from tests.test_api_support import client_for, member, traced
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _session_cookie
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import Finding
from traceability.ledger.selectors import identifier_render

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# An upright tablet of the smallest common size, touched rather than clicked.
TABLET = {"width": 768, "height": 1024}
TARGET = 44  # CSS px, WCAG 2.5.5's enhanced target size (Apple's and Android's guidance agree)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

# The document's width beyond the viewport, and the controls smaller than a fingertip: each named
# by its tag, id or text so that a failure says which.
MEASURE = """(target) => {
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' +
    (e.innerText || e.value || e.getAttribute('aria-label') || e.name || '').trim().slice(0, 40) + '"';
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const small = [];
  for (const e of document.querySelectorAll('a[href], button, input, select, textarea, summary, [role=button]')) {
    if (e.type === 'hidden' || !shown(e)) continue;
    if (e.matches('a.in-text')) continue;  // a link inside a sentence: the one exception
    // a check box or radio button is touched through its label, which checks it
    const box = ((e.type === 'checkbox' || e.type === 'radio') && e.labels.length ? e.labels[0] : e)
      .getBoundingClientRect();
    if (box.width < target - 0.5 || box.height < target - 0.5) {
      small.push(name(e) + ' ' + Math.round(box.width) + 'x' + Math.round(box.height));
    }
  }
  return {overflow: document.documentElement.scrollWidth - window.innerWidth, small};
}"""


@contextmanager
def tablet_page(*, cookies: list[dict]) -> Iterator:
    """A page of a fresh headless Chromium emulating an upright tablet: its size, touch, and a
    mobile viewport (the page's ``<meta name=viewport>`` is honoured)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: `make test` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport=TABLET, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-GB"
            )
            context.add_cookies(list(cookies))
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture()
def world(settings, tmp_path):
    """The trace world with the competitor; brand A's QA engineer and its finding on M1, traced; M1's
    material with two limits (so the inspection form has values to fill in), and M1's supplier's QA
    engineer."""
    settings.MEDIA_ROOT = tmp_path
    w = add_competitor(build_world())
    SpecFactory(material=w.m1.material, property="fe_particle", unit="µm", maximum=Decimal("50"))
    SpecFactory(material=w.m1.material, property="moisture", unit="ppm", maximum=Decimal("200"))
    w.brand_qa = member(None, "brand-qa")
    Membership.objects.create(user=w.brand_qa, organisation=w.brand, role=MemberRole.QA)
    w.finding = traced(client_for(w.brand_qa), w)
    w.supplier_qa = member(None, "precursor-qa")
    Membership.objects.create(user=w.supplier_qa, organisation=w.m1.owner, role=MemberRole.QA)
    return w


def test_no_main_page_scrolls_sideways_or_has_a_control_smaller_than_a_fingertip(live_server, world):
    # given the brand's and the supplier's main pages, the investigation's run finished
    investigation = Finding.objects.get(pk=world.finding["id"]).investigation.pk
    unit = Unit.objects.get(pk=world.u[1])
    lot = identifier_render(world.m1.identity, form="digital_link")
    journeys = {
        world.brand_qa: {
            "desk": "/desk/",
            "finding-new": "/finding/new/",
            "investigation": f"/investigation/{investigation}/",
            "unit": "/unit/?" + urlencode({"id": identifier_render(unit.identity, form="digital_link")}),
        },
        world.supplier_qa: {
            "supplier": "/supplier/",
            "inspections": "/supplier/lot/inspections/?" + urlencode({"id": lot}),
        },
    }
    measured: dict[str, dict] = {}
    for user, pages in journeys.items():
        with tablet_page(cookies=[_session_cookie(user, live_server.url)]) as page:
            # when each is opened on the tablet
            for name, path in pages.items():
                response = page.goto(f"{live_server.url}{path}")
                assert response.status == 200, (name, response.status)
                page.wait_for_load_state("networkidle")
                measured[name] = page.evaluate(MEASURE, TARGET)
    # then none is wider than the screen, and every control is big enough to touch
    assert {name: m["overflow"] for name, m in measured.items() if m["overflow"] > 0} == {}
    assert {name: m["small"] for name, m in measured.items() if m["small"]} == {}


# Where the focus is, and whether its ring shows: an outline of at least 2 px in a colour that is
# not transparent (Pico's own focus shadow is too faint on a bright floor; ledger.css draws one).
FOCUSED = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return {
    at: e.id || e.getAttribute('data-subject') && 'offer' || e.tagName.toLowerCase() + ':' + (e.innerText || '').trim(),
    ring: e.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
      && style.outlineColor !== 'rgba(0, 0, 0, 0)',
  };
}"""


def test_the_finding_form_is_completed_with_the_keyboard_alone(live_server, world, tmp_path):
    # given brand A's QA engineer on the finding form, on the tablet with a keyboard attached
    report = tmp_path / "XRF report.pdf"
    report.write_bytes(PDF)
    stops: list[dict] = []
    with tablet_page(cookies=[_session_cookie(world.brand_qa, live_server.url)]) as page:
        page.goto(f"{live_server.url}/finding/new/")
        page.wait_for_load_state("networkidle")

        def tab() -> None:
            page.keyboard.press("Tab")
            stops.append(page.evaluate(FOCUSED))

        # when they skip the navigation to the content
        tab()
        page.keyboard.press("Enter")
        # and Tab to the subject's kind (a lot or unit, checked), then to the subject, typing a serial
        tab()
        tab()
        page.keyboard.type("U1", delay=50)
        # (an offer for "U" alone may come first if the typing is slow: wait for U1's, and no more asks)
        expect(page.locator("#subject-offers button")).to_have_text(["U1 · unit"], timeout=10_000)
        page.wait_for_load_state("networkidle")
        offers = page.evaluate(MEASURE, TARGET)
        # and Tab to the unit offered and pick it with Enter (the focus returns to the subject)
        tab()
        page.keyboard.press("Enter")
        expect(page.locator("#id_subject")).to_be_focused()
        page.wait_for_load_state("networkidle")
        picked = page.locator("#id_subject").input_value()
        # and Tab through the defect and severity, choosing each by typing its first letters
        tab()
        page.keyboard.type("Metallic")
        tab()
        page.keyboard.type("High")
        # and the description, then the files (the system's file dialog is no part of the page: the
        # focused input is given the file as the dialog would; Space opening that dialog in headless
        # Chromium was not reliable under load), then the button, pressed with Enter
        tab()
        page.keyboard.type("Burr on the tab of U1")
        tab()
        files = page.locator("#id_evidence")
        expect(files).to_be_focused()
        files.set_input_files(str(report))
        tab()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/investigation/*/")
        evidence = page.locator("#evidence").inner_text()
    # then each stop came in the form's order, its focus ring showing
    assert [stop["at"] for stop in stops] == [
        "a:Skip to the content",
        "id_subject_kind_0",
        "id_subject",
        "offer",
        "id_category",
        "id_severity",
        "id_description",
        "id_evidence",
        "button:Record the finding",
    ]
    assert [stop["at"] for stop in stops if not stop["ring"]] == []
    # and the offers were big enough to touch, the unit picked, and the finding recorded with its file
    assert offers == {"overflow": 0, "small": []}
    assert picked == identifier_render(Unit.objects.get(pk=world.u[1]).identity, form="digital_link")
    finding = Finding.objects.get(description="Burr on the tab of U1")
    assert (finding.subject_unit_id, finding.category, finding.severity) == (world.u[1], "metallic_debris", "high")
    assert [a.name for a in finding.attachments.all()] == ["XRF report.pdf"]
    assert "XRF report.pdf" in evidence
