"""The supplier portal's pages (issue 15) as each party of a chain sees them: the findings about a
supplier's lots with how many units of each of its customers they reach, its 8D response with its
history, and the inspection results and certificates of analysis it records on its own lots. Those a
finding or lot does not concern are answered as for an unknown one, and no refusal changes anything.

The world (tests/trace_world.py): brand A's finding on material lot M1 (supplier S1's), traced; M1
went into brand A's U1..U8 (4 definite, 3 potential) and, through cell lot C1, brand B's U9 and U10.
"""

from __future__ import annotations

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
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory, SpecFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, traced, urn
from tests.trace_world import add_competitor, build_world
from traceability.access.services import grant_add
from traceability.core.models import AuditEntry
from traceability.investigations.models import Investigation, SupplierResponse, SupplierResponseRevision, TraceRun
from traceability.ledger.selectors import identifier_render

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
