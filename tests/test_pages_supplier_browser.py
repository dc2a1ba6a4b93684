"""The supplier portal in Debian's Chromium (issue 15): a supplier signs in, sees the finding about
its lot with how many units of each of its customers it reaches and the certificate it holds,
answers the finding with containment and root cause (and reads the revision in the history), and
uploads a certificate of analysis whose one out-of-limit value is shown failing, and a limit of its
material whose maximum is below its minimum is refused beside the maximum. axe-core finds no
serious or critical violation on the way, and the Content Security Policy refuses nothing. The
screenshots in README (docs/screenshots/) are written here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cells.models import Inspection
from suppliers.models import CertificateScheme, MemberRole, Membership
from suppliers.services import certificate_register
from tests.factories import SpecFactory
from tests.test_api_support import client_for, member, traced
from tests.test_pages_browser import _axe_violations, _screenshot, browser_page
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import SupplierResponseRevision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "supplier-portal-2026"
PDF = b"%PDF-1.7\n% certificate of analysis NCM precursor lot M1\n%%EOF\n"


@pytest.fixture()
def world(settings, tmp_path):
    """The trace world with the competitor; brand A's finding on M1, traced; M1's material with
    limits (Fe particles at most 50 µm, moisture at most 200 ppm); the supplier's UN 38.3 test
    certificate; and M1's supplier's QA engineer, whose user has a password (it signs in through the
    form)."""
    settings.MEDIA_ROOT = tmp_path
    w = add_competitor(build_world())
    for organisation, name in (
        (w.m1.owner, "Qinghai Lithium Precursors"),
        (w.brand, "Northwind Power"),
        (w.other_brand, "Harbor Mobile"),
        (w.d1, "Rhein Elektro Handel"),
        (w.d2, "Boutique Énergie"),
    ):
        organisation.name = name
        organisation.save(update_fields=["name"])
    SpecFactory(material=w.m1.material, property="fe_particle", unit="µm", maximum=Decimal("50"))
    SpecFactory(material=w.m1.material, property="moisture", unit="ppm", maximum=Decimal("200"))
    certificate_register(
        owner=w.m1.owner,
        scheme=CertificateScheme.UN_38_3,
        number="UN38.3-2024-0173",
        issuer="TÜV SÜD",
        valid_from=dt.date(2024, 3, 1),
        valid_to=dt.date(2099, 2, 28),
    )
    brand_qa = member(None, "brand-qa")
    Membership.objects.create(user=brand_qa, organisation=w.brand, role=MemberRole.QA)
    w.finding = traced(client_for(brand_qa), w)
    w.supplier_user = member(None, "precursor-qa")
    w.supplier_user.set_password(PASSWORD)
    w.supplier_user.save()
    Membership.objects.create(user=w.supplier_user, organisation=w.m1.owner, role=MemberRole.QA)
    return w


def test_a_supplier_answers_the_finding_about_its_lot_and_uploads_a_certificate(live_server, world):
    csp: list[str] = []
    axe: dict[str, list[dict]] = {}
    with browser_page() as page:
        page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)
        # given the supplier signs in and opens its portal from the navigation
        page.goto(f"{live_server.url}/supplier/")
        page.get_by_label("Username").fill("precursor-qa")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/supplier/")
        row = page.locator(f"#finding-{world.finding['id']}")
        finding = row.inner_text()
        counts = row.locator("ul.counts li").all_inner_texts()
        certificates = page.locator("#certificates tbody tr").all_inner_texts()
        _screenshot(page, "supplier-portal")
        # when it answers the finding with containment and root cause, as a draft
        row.get_by_role("link", name="Answer (8D)").click()
        page.get_by_label("D3 containment").fill("Lot M1 quarantined at both warehouses; customers told on 3 June.")
        page.get_by_label("D4 root cause").fill("Worn 45 µm sieve mesh on line 2 let iron fines through.")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_selector("#history li.revision")
        history = page.locator("#history li.revision").all_inner_texts()
        _screenshot(page, "supplier-response")
        # and records a certificate of analysis of M1 with one value out of limits
        page.get_by_role("link", name="Back to the supplier portal").click()
        page.locator("#own-lots li", has_text="M1").get_by_role("link", name="Record inspection or certificate").click()
        page.get_by_label("Certificate or report").set_input_files(
            {"name": "CoA M1.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        page.get_by_label("Inspected or analysed at").fill("2024-06-03T08:00")
        page.get_by_label("fe_particle value").fill("62")
        page.get_by_label("moisture value").fill("140")
        page.get_by_role("button", name="Record", exact=True).click()
        page.wait_for_selector("article.inspection")
        outcome = page.locator("article.inspection header").first.inner_text()
        results = page.locator("article.inspection tbody tr").all_inner_texts()
        failing = page.locator("article.inspection tbody tr.failing th").all_inner_texts()
        _screenshot(page, "supplier-inspection")
    with browser_page(bypass_csp=True, cookies=[]) as page:  # axe-core is injected as a script
        page.goto(f"{live_server.url}/signin/?next=/supplier/")
        page.get_by_label("Username").fill("precursor-qa")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/supplier/")
        axe["portal"] = _axe_violations(page)
        page.goto(f"{live_server.url}/supplier/findings/{world.finding['id']}/response/")
        axe["response"] = _axe_violations(page)
        page.get_by_role("button", name="Submit response").click()  # D5 to D7 blank: refused beside D5
        page.wait_for_selector("#corrective_action-error")
        refused = page.locator("#corrective_action-error").inner_text()
        axe["response-refused"] = _axe_violations(page)
        page.goto(f"{live_server.url}/supplier/")
        page.locator("#own-lots li", has_text="M1").get_by_role("link", name="Record inspection or certificate").click()
        axe["inspections"] = _axe_violations(page)
        # and its limits page, with a limit refused beside its field
        page.goto(f"{live_server.url}/supplier/")
        page.get_by_role("link", name="Limits of your materials and cell models").click()
        axe["limits"] = _axe_violations(page)
        anchor = f"material-{world.m1.material.pk}"
        page.locator(f"#{anchor} summary").click()
        form = page.locator(f"#{anchor}-form")
        form.get_by_label("Property").fill("moisture")
        form.get_by_label("Unit").fill("ppm")
        form.get_by_label("Minimum").fill("300")
        form.get_by_label("Maximum").fill("200")
        form.get_by_role("button", name="Save the limit").click()
        page.wait_for_selector(f"#id_{anchor}-maximum_error")
        limit_refused = page.locator(f"#id_{anchor}-maximum_error").inner_text()
        axe["limits-refused"] = _axe_violations(page)
    # then it saw the finding with its customers' counts, never their distributors
    assert "M1" in finding and "Metallic debris" in finding and "Fe 45 µm" in finding and "not answered" in finding
    assert counts == ["Northwind Power: 4 / 3", "Harbor Mobile: 2 / 0"]
    assert "Rhein Elektro Handel" not in finding and "Boutique Énergie" not in finding
    # and the certificate it holds, with its issuer, coverage, standing and validity
    assert certificates == [
        "UN 38.3\tUN38.3-2024-0173\tTÜV SÜD\tEvery site of its holder\tvalid\t2024-03-01 – 2099-02-28"
    ]
    # its draft is the response's first revision, shown in the history
    assert len(history) == 1 and history[0].startswith("Revision 1 · draft")
    assert "Worn 45 µm sieve mesh" in history[0] and "Changed: D3 containment, D4 root cause" in history[0]
    assert list(SupplierResponseRevision.objects.values_list("number", "status")) == [(1, "draft")]
    # its certificate is kept, failing on the iron particles alone
    assert "Fail" in outcome and "CoA M1.pdf" in outcome
    assert failing == ["fe_particle"]
    assert any(r.startswith("fe_particle\t62 µm") for r in results), results
    inspection = Inspection.objects.get()
    assert (inspection.outcome, inspection.attachment_name) == ("fail", "CoA M1.pdf")
    # a submission with steps blank is refused beside the first, and nothing else was appended
    assert "D5 corrective action chosen is blank" in refused
    assert SupplierResponseRevision.objects.count() == 1
    # a limit whose maximum is below its minimum is refused beside the maximum, the limit as it was
    assert limit_refused == "The maximum is below the minimum: a value could never be within them."
    assert world.m1.material.specs.get(property="moisture").minimum is None
    assert axe == dict.fromkeys(
        ["portal", "response", "response-refused", "inspections", "limits", "limits-refused"], []
    )
    assert csp == []
