"""The supplier portal's pages (issue 15) as each party of a chain sees them: the findings about a
supplier's lots with how many units of each of its customers they reach, its 8D response with its
history, and the inspection results and certificates of analysis it records on its own lots. Those a
finding or lot does not concern are answered as for an unknown one, and no refusal changes anything.

The world (tests/trace_world.py): brand A's finding on material lot M1 (supplier S1's), traced; M1
went into brand A's U1..U8 (4 definite, 3 potential) and, through cell lot C1, brand B's U9 and U10.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Measurement
from cells.services import Measured, inspection_record
from suppliers.models import Certificate, CertificateScheme, CertificateStatus, MemberRole, Membership, Role
from suppliers.services import certificate_change_status, certificate_register
from tests.factories import (
    CellLotFactory,
    CellModelFactory,
    MaterialLotFactory,
    OrganisationFactory,
    SiteFactory,
    SpecFactory,
)
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, traced, urn
from tests.test_pages import _refusal, _unread_client
from tests.trace_world import add_competitor, build_world
from traceability.access.services import grant_add
from traceability.core.limits import MULTIPART_OVERHEAD
from traceability.core.models import AuditEntry
from traceability.investigations.models import Investigation, SupplierResponse, SupplierResponseRevision, TraceRun
from traceability.ledger.selectors import identifier_render
from traceability.pages import supplier as supplier_pages

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n% certificate of analysis lot M1\n%%EOF\n"


def _member(organisation, role: str = MemberRole.QA) -> Any:
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _main(text: str) -> str:
    return text.split('<main id="main"', 1)[1].split("</main>", 1)[0]


@pytest.fixture()
def chain(settings, tmp_path) -> SimpleNamespace:
    settings.MEDIA_ROOT = tmp_path
    w = add_competitor(build_world())
    w.media = tmp_path
    for organisation, country in ((w.d1, "DE"), (w.d2, "FR"), (w.other_distributor, "US")):
        organisation.country = country
        organisation.save(update_fields=["country"])
    material = w.m1.material
    SpecFactory(material=material, property="moisture", unit="ppm", maximum=Decimal("200"))
    SpecFactory(material=material, property="fe_particle", unit="µm", maximum=Decimal("50"))
    brand_qa = _member(w.brand)
    w.finding = traced(client_for(brand_qa), w)
    w.investigation = Investigation.objects.get(pk=w.finding["investigation"])
    out_of_scope = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=out_of_scope, scope="jurisdiction", jurisdiction="JP")
    w.users = {
        "own": brand_qa,
        "competitor": _member(w.other_brand),
        "supplier": _member(w.m1.owner),
        "supplier_viewer": _member(w.m1.owner, MemberRole.VIEWER),
        "co_supplier": _member(w.m3.owner),
        "distributor": _member(w.d1),
        "regulator_all": _member(OrganisationFactory(role=Role.REGULATOR)),
        "regulator_out_of_scope": _member(out_of_scope),
        "attacker": _member(OrganisationFactory(role=Role.MATERIAL_SUPPLIER)),
    }
    w.response_path = f"/supplier/findings/{w.finding['id']}/response/"
    w.inspections_path = "/supplier/lot/inspections/?" + urlencode(
        {"id": identifier_render(w.m1.identity, form="digital_link")}
    )
    return w


def _written() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (SupplierResponse, SupplierResponseRevision, Inspection, Measurement)
    }


# --- the portal's home ------------------------------------------------------------------------------------


def test_the_supplier_sees_the_finding_about_its_lot_with_each_customers_count(chain):
    # when
    response = _client(chain.users["supplier"]).get("/supplier/")
    # then its row: M1, the defect, its customers' counts (definite / potential), not yet answered
    assert response.status_code == 200
    text = _main(_text(response))
    row = text.split(f'id="finding-{chain.finding["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert ">M1</a>" in row and "Metallic debris" in row and "Fe 45 µm" in row
    assert f"{chain.brand.name}: 4 / 3" in row
    assert f"{chain.other_brand.name}: 2 / 0" in row
    assert "not answered" in row
    # and its own lots, each with the way to record an inspection
    assert ">M1</a>" in text.split('id="own-lots"', 1)[1]
    assert "/supplier/lot/inspections/?id=" in text
    # never a customer's serials or distributors
    for private in (">U1<", ">U9<", chain.d1.name, chain.d2.name, chain.other_distributor.name):
        assert private not in text


PORTAL_SEES_FINDING = {
    "own": False,  # its own finding is on its desk, not answered by it
    "competitor": False,
    "co_supplier": False,
    "distributor": False,
    "regulator_all": False,
    "regulator_out_of_scope": False,
    "attacker": False,
    "supplier_viewer": True,
}


@pytest.mark.parametrize(("caller", "sees"), list(PORTAL_SEES_FINDING.items()))
def test_the_portal_lists_the_finding_only_to_those_whose_lots_it_concerns(chain, caller, sees):
    # when
    response = _client(chain.users[caller]).get("/supplier/")
    # then
    assert response.status_code == 200
    text = _main(_text(response))
    assert (f'id="finding-{chain.finding["id"]}"' in text) is sees
    if not sees:
        assert "No finding about your lots." in text
        assert chain.brand.name not in text and chain.other_brand.name not in text
        assert "Fe 45 µm" not in text


def test_anonymous_callers_are_sent_to_sign_in_from_every_supplier_page(chain):
    client = Client()
    for path in ("/supplier/", chain.response_path, chain.inspections_path):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/signin/?next=")
    before = _written()
    assert client.post(chain.response_path, {"containment": "x", "draft": ""}).status_code == 302
    assert _written() == before


# --- the 8D response -------------------------------------------------------------------------------------


def test_the_supplier_answers_with_containment_and_root_cause_and_sees_the_revisions(chain):
    client = _client(chain.users["supplier"])
    # when it saves a draft with containment, then adds the root cause
    first = client.post(chain.response_path, {"containment": "M1 quarantined at the warehouse", "draft": ""})
    second = client.post(
        chain.response_path,
        {"containment": "M1 quarantined at the warehouse", "root_cause": "worn sieve mesh", "draft": ""},
    )
    # then each is appended (and the page is read again after each)
    assert (first.status_code, second.status_code) == (302, 302)
    assert first["Location"] == chain.response_path
    revisions = list(SupplierResponseRevision.objects.order_by("number").values_list("number", "changed", "status"))
    assert revisions == [(1, ["containment"], "draft"), (2, ["root_cause"], "draft")]
    text = _main(_text(client.get(chain.response_path)))
    history = text.split('id="history"', 1)[1]
    assert history.index("Revision 2") < history.index("Revision 1")
    assert "worn sieve mesh" in history and "Changed: D4 root cause" in history
    # the form opens with what the response now says
    assert "worn sieve mesh</textarea>" in text
    # and the portal says where it stands
    portal = _main(_text(client.get("/supplier/")))
    assert "revision 2: draft" in portal


def test_a_submission_with_a_step_blank_is_refused_beside_that_step_and_nothing_is_appended(chain):
    client = _client(chain.users["supplier"])
    before = _written()
    # when
    response = client.post(chain.response_path, {"containment": "held", "root_cause": "sieve", "submit": ""})
    # then
    assert response.status_code == 400
    text = _text(response)
    error = text.split('id="corrective_action-error"', 1)[1].split("</small>", 1)[0]
    assert "D5 corrective action chosen is blank" in error
    assert "held</textarea>" in text  # what was typed is kept
    assert _written() == before


def test_a_revision_that_changes_nothing_is_refused_saying_so(chain):
    client = _client(chain.users["supplier"])
    assert client.post(chain.response_path, {"containment": "held", "draft": ""}).status_code == 302
    before = _written()
    # when
    response = client.post(chain.response_path, {"containment": "  held ", "draft": ""})
    # then
    assert response.status_code == 400
    assert "already reads so: nothing to append" in _text(response)
    assert _written() == before


def test_a_malformed_date_is_refused_beside_its_field(chain):
    before = _written()
    response = _client(chain.users["supplier"]).post(
        chain.response_path, {"containment": "held", "implemented_on": "next week", "draft": ""}
    )
    assert response.status_code == 400
    assert "Give the date as YYYY-MM-DD." in _text(response).split('id="implemented_on-error"', 1)[1]
    assert _written() == before


RESPONSE_PAGE = {
    "supplier": 200,
    "supplier_viewer": 200,
    "own": 200,  # reads every response, answers none
    "regulator_all": 200,  # its grants cover the investigation
    "competitor": 404,
    "co_supplier": 404,
    "distributor": 404,
    "regulator_out_of_scope": 404,
    "attacker": 404,
}


@pytest.mark.parametrize(("caller", "status"), list(RESPONSE_PAGE.items()))
def test_the_response_page_is_opened_as_the_access_policy_allows(chain, caller, status):
    # given the supplier's draft
    assert (
        _client(chain.users["supplier"]).post(chain.response_path, {"containment": "held", "draft": ""}).status_code
        == 302
    )
    # when
    response = _client(chain.users[caller]).get(chain.response_path)
    # then
    assert response.status_code == status
    text = _main(_text(response))
    if status == 404:
        unknown = _client(chain.users[caller]).get("/supplier/findings/999999999999/response/")
        assert unknown.status_code == 404
        assert f"No finding {chain.finding['id']} is known." in text
        assert "No finding 999999999999 is known." in _text(unknown)
        assert "held" not in text and "Fe 45 µm" not in text and chain.m1.owner.name not in text
        return
    assert "held" in text
    assert ('id="response-form"' in text) is (caller == "supplier")


@pytest.mark.parametrize("caller", ["own", "regulator_all", "competitor", "attacker", "supplier_viewer"])
def test_only_a_writer_of_a_concerned_supplier_revises_a_response(chain, caller):
    before = _written()
    # when
    response = _client(chain.users[caller]).post(chain.response_path, {"containment": "forged", "draft": ""})
    # then
    assert response.status_code == {"own": 403, "regulator_all": 403, "supplier_viewer": 403}.get(caller, 404)
    if caller == "supplier_viewer":
        assert "a QA engineer or an admin of your organisation answers" in _text(response)
    assert _written() == before


# --- a lot's inspections and certificates ---------------------------------------------------------------


def _certificate(**values: str) -> dict[str, Any]:
    return {
        "file": SimpleUploadedFile("CoA M1.pdf", PDF, content_type="application/pdf"),
        "inspected_at": "2024-06-03T08:00",
        "method": "analysis",
        "sample_size": "3",
        "notes": "",
        "value_0": values.get("fe_particle", "30"),  # the limits in the order of their properties
        "unit_0": values.get("fe_unit", "µm"),
        "value_1": values.get("moisture", "120"),
        "unit_1": "ppm",
    }


def test_the_supplier_uploads_a_certificate_with_an_out_of_limit_value_shown_failing(chain):
    client = _client(chain.users["supplier"])
    # given the form shows each limit
    form = _main(_text(client.get(chain.inspections_path)))
    assert "fe_particle" in form and "… – 50 µm" in form and "… – 200 ppm" in form
    # when
    response = client.post(chain.inspections_path, _certificate(moisture="250"))
    # then it is kept, failing on moisture alone, with its document
    assert response.status_code == 302
    inspection = Inspection.objects.get()
    assert (inspection.outcome, inspection.attachment_name) == ("fail", "CoA M1.pdf")
    assert dict(inspection.results.values_list("property", "passed")) == {"fe_particle": True, "moisture": False}
    text = _main(_text(client.get(chain.inspections_path)))
    shown = text.split(f'id="inspection-{inspection.pk}"', 1)[1]
    assert "CoA M1.pdf" in shown
    assert 'class="failing"><th scope="row">moisture</th><td>250 ppm' in shown
    assert 'class="passing"><th scope="row">fe_particle</th><td>30 µm' in shown
    assert AuditEntry.objects.filter(action="inspection.record").count() == 1


def test_the_certificate_is_read_back_as_uploaded_by_its_lots_owner_alone(chain):
    client = _client(chain.users["supplier"])
    assert client.post(chain.inspections_path, _certificate()).status_code == 302
    inspection = Inspection.objects.get()
    page = _text(client.get(chain.inspections_path))
    document = f"/supplier/lot/inspections/{inspection.pk}/document/?" + chain.inspections_path.split("?", 1)[1]
    # the page links to it
    assert f'href="{document}" download>CoA M1.pdf</a>' in page
    # when its owner reads it
    response = client.get(document)
    # then
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Disposition"] == 'attachment; filename="CoA M1.pdf"'
    # and its viewers and a regulator who sees all, as REST's readers of a lot's inspections; no one
    # else, nor an inspection it does not have
    for reader in ("supplier_viewer", "regulator_all"):
        assert _client(chain.users[reader]).get(document).status_code == 200, reader
    for caller in ("own", "competitor", "attacker", "co_supplier", "regulator_out_of_scope"):
        refused = _client(chain.users[caller]).get(document)
        assert refused.status_code == 404, caller
        assert "No lot of yours is known as" in _text(refused)
    missing = client.get(document.replace(f"/{inspection.pk}/", f"/{inspection.pk + 1}/"))
    assert missing.status_code == 404
    assert f"Lot M1 has no inspection {inspection.pk + 1} with a document." in _text(missing)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"fe_particle": "thirty"}, "value_0", "is not a number"),
        ({"fe_unit": "mm"}, "unit_0", "give the value in µm"),
        ({"fe_particle": "", "moisture": ""}, None, "Give at least one measured value."),
    ],
)
def test_a_malformed_value_is_refused_beside_its_field_and_nothing_is_kept(chain, values, field, words):
    before = _written()
    # when
    response = _client(chain.users["supplier"]).post(chain.inspections_path, _certificate(**values))
    # then
    assert response.status_code == 400
    text = _text(response)
    where = text.split(f'id="{field}-error"', 1)[1] if field else text.split('id="inspection-error"', 1)[1]
    assert words in where.split("</", 1)[0]
    assert _written() == before
    assert not list(chain.media.rglob("*.pdf"))


def test_a_document_that_is_not_a_certificate_is_refused_beside_the_file_and_nothing_is_kept(chain):
    # given an executable named as a PDF
    body = _certificate() | {"file": SimpleUploadedFile("CoA.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" * 20)}
    before = _written()
    # when
    response = _client(chain.users["supplier"]).post(chain.inspections_path, body)
    # then
    assert response.status_code == 400
    error = _text(response).split('id="file-error"', 1)[1].split("</small>", 1)[0]
    assert "CoA.pdf is not accepted as a certificate or report" in error
    assert _written() == before
    assert not [path for path in chain.media.rglob("*") if path.is_file()]


def test_the_portal_speaks_chinese_to_a_browser_that_asks_for_it(chain):
    # when
    response = _client(chain.users["supplier"]).get("/supplier/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    # then
    text = _main(_text(response))
    assert "<h1>供应商门户</h1>" in text and "关于贵方批次的发现" in text and "尚未应对" in text
    assert f"{chain.brand.name}: 4 / 3" in text


INSPECTIONS_PAGE = {
    "supplier": 200,
    "supplier_viewer": 404,  # reads its lot's page; records nothing
    "own": 404,
    "competitor": 404,
    "co_supplier": 404,
    "distributor": 404,
    "regulator_all": 404,
    "regulator_out_of_scope": 404,
    "attacker": 404,
}


@pytest.mark.parametrize(("caller", "status"), list(INSPECTIONS_PAGE.items()))
def test_only_the_lots_writers_open_its_inspection_form_and_no_one_else_records(chain, caller, status):
    client = _client(chain.users[caller])
    # when
    response = client.get(chain.inspections_path)
    # then
    assert response.status_code == status
    if status == 404:
        text = _main(_text(response))
        assert "No lot of yours is known as" in text
        assert "fe_particle" not in text and chain.m1.owner.name not in text
        before = _written()
        assert client.post(chain.inspections_path, _certificate()).status_code == 404
        assert _written() == before


def test_the_portal_reads_as_many_queries_whatever_the_number_of_findings(chain):
    client = _client(chain.users["supplier"])
    client.get("/supplier/")  # the session and the caller read once
    with CaptureQueriesContext(connection) as one:
        assert client.get("/supplier/").status_code == 200
    # given three more findings on M1, each traced (one with a response)
    brand = client_for(chain.users["own"])
    for category in ("separator_defect", "other", "metallic_debris"):
        answer = raise_finding(brand, urn(chain.m1.identity), category=category)
        assert answer.status_code == 201, answer.json()
        run_job(TraceRun.objects.get(pk=answer.json()["run"]).job)
    path = f"/supplier/findings/{answer.json()['id']}/response/"
    assert client.post(path, {"containment": "held", "draft": ""}).status_code == 302
    # when
    with CaptureQueriesContext(connection) as four:
        response = client.get("/supplier/")
    # then
    assert response.status_code == 200
    text = _main(_text(response))
    assert text.count('id="finding-') == 4
    assert text.count(f"{chain.brand.name}: 4 / 3") == 4 and "revision 1: draft" in text
    assert len(four) == len(one)


# --- certificates -----------------------------------------------------------------------------------------


def _register(owner, number: str, **fields) -> Certificate:
    defaults = {"scheme": CertificateScheme.UN_38_3, "issuer": "TÜV SÜD", "scope": "Lithium cells"}
    return certificate_register(
        owner=owner,
        number=number,
        valid_from=fields.pop("valid_from", dt.date(2024, 1, 1)),
        valid_to=fields.pop("valid_to", dt.date(2099, 1, 1)),
        **(defaults | fields),
    )


def _certificate_row(text: str, certificate: Certificate) -> str:
    return text.split(f'id="certificate-{certificate.pk}"', 1)[1].split("</tr>", 1)[0]


def test_the_portal_lists_the_suppliers_certificates_with_scheme_number_issuer_coverage_status_and_dates(chain):
    # given two certificates S1 holds, one revoked, and one of another supplier's
    site = SiteFactory(owner=chain.m1.owner, name="Cathode works 2")
    held = _register(chain.m1.owner, "UN-0001", site_ids=[site.pk])
    revoked = _register(chain.m1.owner, "IEC-0002", scheme=CertificateScheme.IEC_62133, valid_to=dt.date(2030, 6, 30))
    certificate_change_status(certificate=revoked, status=CertificateStatus.REVOKED, reason="audit failed")
    foreign = _register(chain.m3.owner, "UN-0003")
    # when
    text = _main(_text(_client(chain.users["supplier"]).get("/supplier/")))
    # then
    row = _certificate_row(text, held)
    assert [cell.split("</td>", 1)[0] for cell in row.split("<td>")[1:]] == [
        "UN 38.3",
        "UN-0001",
        "TÜV SÜD",
        "Sites: Cathode works 2<br><small>Lithium cells</small>",
        "valid",
        '<time datetime="2024-01-01">2024-01-01</time> – <time datetime="2099-01-01">2099-01-01</time>',
    ]
    assert "Every site of its holder" in _certificate_row(text, revoked)
    assert "<td>revoked</td>" in _certificate_row(text, revoked) and "2030-06-30" in _certificate_row(text, revoked)
    assert f'id="certificate-{foreign.pk}"' not in text and "UN-0003" not in text
    # in the directory's order: IEC 62133 before UN 38.3
    assert text.index("IEC-0002") < text.index("UN-0001")


def test_a_certificate_past_its_end_date_shows_expired_before_the_nightly_expiry_runs(chain):
    old = _register(chain.m1.owner, "UN-OLD", valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2021, 1, 1))
    text = _main(_text(_client(chain.users["supplier"]).get("/supplier/")))
    assert old.status == CertificateStatus.VALID and "<td>expired</td>" in _certificate_row(text, old)


def test_a_contract_cell_maker_sees_the_certificate_on_the_cell_model_it_makes_saying_who_holds_it(chain):
    # given a cell model brand A designed, whose lot the cell maker of C1 made, and brand A's certificate on it
    designed = CellModelFactory(owner=chain.brand, name="A-21700")
    CellLotFactory(cell_model=designed, owner=chain.c1.owner, code="C21")
    covering = _register(chain.brand, "UN-BRAND", cell_model_ids=[designed.pk])
    cell_maker = _member(chain.c1.owner)
    # when
    text = _main(_text(_client(cell_maker).get("/supplier/")))
    others = _main(_text(_client(chain.users["supplier"]).get("/supplier/")))
    # then
    row = _certificate_row(text, covering)
    assert f"held by {chain.brand.name}" in row and "Cell models: A-21700" in row
    assert "UN-BRAND" not in others  # S1 makes no lot of that cell model
    assert 'id="certificates">No certificate concerns your organisation.' in others


def _href(text: str, link: str) -> str:
    """Where the link ``id="<link>"`` goes ("" when the page has none)."""
    if f'id="{link}"' not in text:
        return ""
    return text.split(f'id="{link}"', 1)[0].rsplit('href="', 1)[1].split("#", 1)[0]


def _walk(client, path: str, link: str) -> tuple[list[str], list[int]]:
    """Every page of a list from ``path`` by following its "Next" link: the pages' texts, and the
    number of queries each cost."""
    texts, costs = [], []
    while path:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200
        text = _text(response)
        texts.append(_main(text))
        costs.append(len(queries))
        path = _href(text, link)
    return texts, costs


def test_certificates_and_lots_are_paged_by_cursor_each_row_once_in_order_at_the_same_cost(chain, monkeypatch):
    # given five certificates and five lots of S1's, two rows a page
    numbers = [f"UN-{n:04d}" for n in range(5)]
    registered = [_register(chain.m1.owner, number) for number in numbers]
    for n in range(4):
        MaterialLotFactory(material=chain.m1.material, code=f"M9{n}")
    monkeypatch.setattr(supplier_pages, "PAGE_ROWS", 2)
    client = _client(chain.users["supplier"])
    client.get("/supplier/")  # the session and the caller read once
    # when
    certificate_pages, certificate_costs = _walk(client, "/supplier/", "next-certificates")
    lot_pages, lot_costs = _walk(client, "/supplier/", "next-lots")
    # then each certificate and lot once, in order, over three pages of 2, 2 and 1
    listed = [[n for n in numbers if f">{n}<" in page] for page in certificate_pages]
    assert listed == [numbers[0:2], numbers[2:4], numbers[4:]]
    codes = ["M1", "M90", "M91", "M92", "M93"]
    lots = [[c for c in codes if f">{c}</a>" in page.split('id="own-lots"', 1)[1]] for page in lot_pages]
    assert lots == [codes[0:2], codes[2:4], codes[4:]]
    # and a page costs as many queries whether it is the first or a later one
    assert len(set(certificate_costs)) == 1 and len(set(lot_costs)) == 1, (certificate_costs, lot_costs)
    # and "Next lots" keeps the certificates where they were
    kept = _text(client.get("/supplier/", {"certificates_after": registered[1].pk}))
    assert f"certificates_after={registered[1].pk}" in _href(kept, "next-lots")
    assert "UN-0000" not in _main(kept) and "UN-0002" in _main(kept)


def test_the_portal_costs_the_same_queries_whatever_the_number_of_certificates_and_lots_listed(chain, monkeypatch):
    # given
    for n in range(6):
        _register(chain.m1.owner, f"UN-{n:04d}", site_ids=[SiteFactory(owner=chain.m1.owner).pk])
        MaterialLotFactory(material=chain.m1.material, code=f"M9{n}")
    client = _client(chain.users["supplier"])
    client.get("/supplier/")
    counted = []
    for rows in (1, 6):
        monkeypatch.setattr(supplier_pages, "PAGE_ROWS", rows)
        # when
        with CaptureQueriesContext(connection) as queries:
            text = _main(_text(client.get("/supplier/")))
        counted.append((len(queries), text.count('id="certificate-'), text.split('id="own-lots"', 1)[1].count("<li>")))
    # then
    assert [(certificates, lots) for _, certificates, lots in counted] == [(1, 1), (6, 6)]
    assert counted[0][0] == counted[1][0], counted


def test_findings_are_paged_newest_first_by_cursor(chain, monkeypatch):
    # given two more findings on M1, newer than the chain's
    brand = client_for(chain.users["own"])
    ids = [chain.finding["id"]]
    for category in ("separator_defect", "other"):
        answer = raise_finding(brand, urn(chain.m1.identity), category=category)
        assert answer.status_code == 201, answer.json()
        run_job(TraceRun.objects.get(pk=answer.json()["run"]).job)
        ids.append(answer.json()["id"])
    monkeypatch.setattr(supplier_pages, "PAGE_ROWS", 2)
    # when
    pages, _costs = _walk(_client(chain.users["supplier"]), "/supplier/", "next-findings")
    # then
    listed = [
        sorted(
            (pk for pk in ids if f'id="finding-{pk}"' in page),
            key=lambda pk, page=page: page.index(f'id="finding-{pk}"'),
        )
        for page in pages
    ]
    assert listed == [[ids[2], ids[1]], [ids[0]]]


def test_a_lots_inspections_are_paged_newest_first_by_cursor(chain, monkeypatch):
    # given five inspections of M1, a day apart
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    recorded = [
        inspection_record(
            lot=chain.m1,
            results=[Measured("moisture", Decimal(100 + n), "ppm")],
            inspected_at=at + dt.timedelta(days=n),
        ).pk
        for n in range(5)
    ]
    monkeypatch.setattr(supplier_pages, "PAGE_ROWS", 2)
    client = _client(chain.users["supplier"])
    client.get(chain.inspections_path)
    # when
    pages, costs = _walk(client, chain.inspections_path, "next-inspections")
    # then
    newest = recorded[::-1]
    assert [
        sorted(
            (pk for pk in newest if f'id="inspection-{pk}"' in page),
            key=lambda pk, page=page: page.index(f'id="inspection-{pk}"'),
        )
        for page in pages
    ] == [
        newest[0:2],
        newest[2:4],
        newest[4:],
    ]
    assert len(set(costs)) == 1, costs


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/supplier/", {"lots_after": "M1"}, "lots_after"),
        ("/supplier/", {"certificates_after": "-1"}, "certificates_after"),
        ("/supplier/", {"findings_after": "9" * 19}, "findings_after"),
        ("inspections", {"after": "x"}, "after"),
    ],
)
def test_a_bad_cursor_says_which_and_why(chain, path, query, name):
    path = chain.inspections_path + "&" if path == "inspections" else path + "?"
    response = _client(chain.users["supplier"]).get(path + urlencode(query))
    value = next(iter(query.values()))
    assert response.status_code == 400
    assert f"“{name}” is the number of the row to carry on after: “{value}” is none." in _text(response)


def test_a_cursor_naming_anothers_row_shows_nothing_of_it(chain):
    # given a certificate and a lot of another supplier's, and S1's own
    foreign = _register(chain.m3.owner, "UN-FOREIGN")
    own = _register(chain.m1.owner, "UN-OWN")
    # when S1 carries on after them
    text = _main(
        _text(
            _client(chain.users["supplier"]).get(
                "/supplier/", {"certificates_after": foreign.pk, "lots_after": chain.m3.pk}
            )
        )
    )
    # then it is told nothing: an empty page, neither the row nor where it sorts
    assert "UN-FOREIGN" not in text and own.number not in text
    assert 'id="certificates">No certificate concerns your organisation.' in text
    assert 'id="own-lots">Your organisation has no lot.' in text


def test_an_inspection_body_over_the_files_bound_is_refused_unread_and_records_nothing(chain, settings, monkeypatch):
    # given a file of at most 1 KB, and a client whose post the CSRF check would read if it came first
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 1024
    client, parsed = _unread_client(chain.users["supplier"], monkeypatch)
    before = _written()
    body = _certificate() | {"file": SimpleUploadedFile("CoA M1.pdf", PDF + b"0" * (1024 + MULTIPART_OVERHEAD))}
    # when
    response = client.post(chain.inspections_path, body)
    # then
    assert response.status_code == 413
    assert _refusal(response) == "The file of an inspection may be at most 1.0 KB: nothing was recorded."
    assert parsed == []
    assert _written() == before
