"""Bulk CSV for QA teams: templates, row checks by line and column, and the EPCIS path behind them."""

import csv
import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from packs.models import Shipment, Unit, UnitPacking
from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import ledger_written, units_of
from traceability.events.csv_import import TEMPLATES, csv_document
from traceability.events.models import EpcisCapture, EpcisEvent
from traceability.events.problems import DocumentRejected
from traceability.events.services import capture_now

pytestmark = pytest.mark.django_db

UNIT_GTIN, CELL_GTIN = "04012345111118", "04012345222227"


def _csv(kind: str, *rows: dict) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, [c.name for c in TEMPLATES[kind].columns], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def _load(owner, kind: str, data: bytes) -> EpcisCapture:
    import json

    return capture_now(owner=owner, document=io.BytesIO(json.dumps(csv_document(kind, data)).encode()))


def _assignment(serial: str, cell_lot: str, **more) -> dict:
    return {
        "unit_gtin": UNIT_GTIN,
        "unit_serial": serial,
        "lot_gtin": CELL_GTIN,
        "lot": cell_lot,
        "built_at": "2024-07-01T08:00:00Z",
    } | more


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_each_template_example_is_a_valid_file_of_its_kind(kind):
    # given
    template = TEMPLATES[kind].csv().encode()
    # when
    document = csv_document(kind, template)
    # then
    assert len(document["epcisBody"]["eventList"]) == 1


def test_assignments_build_each_unit_from_its_lots_and_loading_twice_changes_nothing():
    # given
    owner = OrganisationFactory()
    data = _csv("assignments", _assignment("PB1", "CL1"), _assignment("PB1", "CL2"), _assignment("PB2", "CL1"))
    # when
    first = _load(owner, "assignments", data)
    again = _load(owner, "assignments", data)
    # then
    assert (first.captured, again.captured, again.repeated) == (2, 0, 2)
    assert units_of("CL1") == {"PB1": "definite", "PB2": "definite"} and units_of("CL2") == {"PB1": "definite"}


def test_a_work_order_with_two_lots_into_two_units_gives_potential_links():
    # given
    owner = OrganisationFactory()
    rows = [
        {"work_order": "WO-1", "role": "input", "gtin": CELL_GTIN, "lot_or_serial": lot, "at": "2024-07-01T08:00:00Z"}
        for lot in ("CL1", "CL2")
    ] + [
        {"work_order": "WO-1", "role": "output", "gtin": UNIT_GTIN, "lot_or_serial": s, "at": "2024-07-01T09:00:00Z"}
        for s in ("PB1", "PB2")
    ]
    # when
    _load(owner, "work_orders", _csv("work_orders", *rows))
    # then
    assert units_of("CL1") == {"PB1": "potential", "PB2": "potential"}


def test_packing_and_shipments_reach_the_consignee():
    # given
    owner = OrganisationFactory()
    _load(owner, "assignments", _csv("assignments", _assignment("PB1", "CL1")))
    carton, pallet = "340123450000000017", "340123450000000024"
    packing = _csv(
        "packing",
        {"container_sscc": carton, "unit_gtin": UNIT_GTIN, "unit_serial": "PB1", "packed_at": "2024-07-01T09:00:00Z"},
        {"container_sscc": pallet, "content_sscc": carton, "packed_at": "2024-07-01T10:00:00Z"},
    )
    shipments = _csv(
        "shipments",
        {
            "despatch_advice": "DA-1",
            "consignee_gln": "4012345000009",
            "shipped_at": "2024-07-02T14:00:00Z",
            "sscc": pallet,
        },
    )
    # when
    _load(owner, "packing", packing)
    _load(owner, "shipments", shipments)
    # then
    assert UnitPacking.objects.get().unit.serial == "PB1"
    shipment = Shipment.objects.get()
    assert (shipment.reference, shipment.consignee.pgln) == ("urn:ledger:desadv:DA-1", "4012345000009")


def test_every_bad_row_is_named_by_line_and_column_and_nothing_is_applied():
    # given
    data = _csv(
        "assignments",
        _assignment("PB1", "CL1"),
        _assignment("PB2", "CL1", unit_gtin="04012345111119"),
        _assignment("", "CL1"),
        _assignment("PB4", "CL1", built_at="yesterday"),
    )
    before = ledger_written()
    # when
    with pytest.raises(DocumentRejected) as rejected:
        csv_document("assignments", data)
    # then
    assert [(p.where, p.message[:40]) for p in rejected.value.problems] == [
        ("line 3, column unit_gtin", "'04012345111119' is not valid: GTIN chec"),
        ("line 4, column unit_serial", "is empty: its serial number (GS1 AI 21)"),
        ("line 5, column built_at", "'yesterday' is not valid: an ISO 8601 da"),
    ]
    assert ledger_written() == before


@pytest.mark.parametrize(
    ("kind", "data", "where", "fragment"),
    [
        ("assignments", b"serial,lot\nPB1,CL1\n", "line 1", "the header lacks column(s) unit_gtin"),
        ("assignments", _csv("assignments"), "line 2", "no rows"),
        ("packing", b"\xff\xfe", "", "not UTF-8"),
        ("pallets", b"x\n", "", "no CSV template 'pallets'"),
    ],
)
def test_a_file_that_is_not_a_template_of_its_kind_is_refused(kind, data, where, fragment):
    # when
    with pytest.raises(DocumentRejected) as rejected:
        csv_document(kind, data)
    # then
    (problem,) = rejected.value.problems
    assert problem.where == where and fragment in problem.message


def test_a_packing_row_names_one_content():
    # given
    row = {"container_sscc": "340123450000000017", "packed_at": "2024-07-01T09:00:00Z"}
    # when
    with pytest.raises(DocumentRejected) as rejected:
        csv_document("packing", _csv("packing", row))
    # then
    assert [(p.where, p.message) for p in rejected.value.problems] == [
        ("line 2", "name either content_sscc (a carton) or unit_gtin and unit_serial (a unit)")
    ]


def test_templates_download_and_upload_over_the_api():
    # given
    owner = OrganisationFactory()
    client = client_for(member(owner))
    # when
    template = client.get("/api/v1/csv/assignments/template/")
    upload = client.generic(
        "POST", "/api/v1/csv/assignments/", _csv("assignments", _assignment("PB1", "CL1")), content_type="text/csv"
    )
    capture = EpcisCapture.objects.get(pk=upload.json()["capture"])
    run_job(capture.job)
    status = client.get(upload.headers["Location"]).json()
    # then
    assert template.status_code == 200 and template["Content-Type"].startswith("text/csv")
    assert template.content.decode().splitlines()[0] == "unit_gtin,unit_serial,lot_gtin,lot,built_at"
    assert upload.status_code == 202 and (status["running"], status["success"], status["captured"]) == (False, True, 1)
    assert units_of("CL1") == {"PB1": "definite"}


def test_a_bad_upload_answers_every_bad_row_and_keeps_nothing():
    # given
    client = client_for(member(OrganisationFactory()))
    data = _csv("assignments", _assignment("PB1", "CL1", lot="CL 1 ✗"), _assignment("PB2", "CL1", lot_gtin="123"))
    # when
    response = client.generic("POST", "/api/v1/csv/assignments/", data, content_type="text/csv")
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_file"
    assert [e["field"] for e in response.json()["errors"]] == ["line 2, column lot", "line 3, column lot_gtin"]
    assert EpcisCapture.objects.count() == EpcisEvent.objects.count() == Unit.objects.count() == 0


def test_regulators_cannot_upload():
    # given
    client = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    # when
    response = client.generic(
        "POST", "/api/v1/csv/assignments/", _csv("assignments", _assignment("PB1", "CL1")), content_type="text/csv"
    )
    # then
    assert response.status_code == 403 and EpcisCapture.objects.count() == 0


def test_import_csv_prints_the_template_loads_a_file_and_refuses_a_bad_one(tmp_path):
    # given
    OrganisationFactory(slug="qa")
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(_csv("assignments", _assignment("PB1", "CL1")))
    bad.write_bytes(_csv("assignments", _assignment("PB2", "CL1", built_at="2024-07-01")))
    template, out, err = StringIO(), StringIO(), StringIO()
    # when
    call_command("import_csv", "assignments", "--template", stdout=template)
    call_command("import_csv", "assignments", str(good), "--owner", "qa", "--no-progress", stdout=out)
    with pytest.raises(CommandError, match="1 bad row"):
        call_command("import_csv", "assignments", str(bad), "--owner", "qa", "--no-progress", stderr=err)
    # then
    assert template.getvalue() == TEMPLATES["assignments"].csv()
    assert "1 events from assignments, 1 new" in out.getvalue()
    assert "line 2, column built_at" in err.getvalue()
    assert units_of("CL1") == {"PB1": "definite"}
