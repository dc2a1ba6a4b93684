"""Every CSV the ledger writes is safe to open in a spreadsheet (OWASP's CSV injection advice), and
the CSV import reads back what an export wrote: serials with ``=``, ``/`` or ``"`` included."""

import csv
import io

import pytest
from django.core.management import call_command

from packs.models import Shipment
from suppliers.models import MemberRole, Membership
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding
from tests.test_epcis_capture import units_of
from traceability.core import csv_cells
from traceability.core.models import AuditEntry, AuditSource, Job
from traceability.events.csv_import import TEMPLATES
from traceability.events.models import EpcisCapture, EpcisEvent
from traceability.gs1 import identifiers
from traceability.investigations.models import TraceRun

pytestmark = pytest.mark.django_db

UNIT_GTIN, CELL_GTIN = "04012345111118", "04012345222227"
LOT = 'CL/7"B'
# Valid GS1 serials (character set 82, at most 20 characters) that a spreadsheet would run or misread.
HOSTILE_SERIALS = ["=1+2", '=HYPERLINK("x/y")', "+1", "-2+3", "'=1", 'A/B"C', "PB%2F1", "PLAIN-1"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _formula_cells(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row if cell.startswith(csv_cells.FORMULA_START)]


def _assignments(rows: list[tuple[str, str, str, str]], *, neutralise: bool = True) -> bytes:
    """An assignments file; written as the ledger writes CSV unless ``neutralise`` is False (cells as given)."""
    out = io.StringIO()
    writer = csv_cells.writer(out) if neutralise else csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in TEMPLATES["assignments"].columns])
    for unit_gtin, serial, lot_gtin, lot in rows:
        writer.writerow([unit_gtin, serial, lot_gtin, lot, "2024-07-01T08:00:00Z"])
    return out.getvalue().encode()


def _upload(client, data: bytes) -> EpcisCapture:
    response = client.generic("POST", "/api/v1/csv/assignments/", data, content_type="text/csv")
    assert response.status_code == 202, response.json()
    capture = EpcisCapture.objects.get(pk=response.json()["capture"])
    run_job(capture.job)
    capture.refresh_from_db()
    return capture


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=1", "''=1"),
        ("''+1", "'''+1"),
        ("'plain", "'plain"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_cell_that_could_start_a_formula_is_prefixed_and_reads_back(value, written):
    # when
    cell = csv_cells.neutralised(value)
    # then
    assert cell == written
    assert csv_cells.unquote(cell) == ("" if value is None else value)


def test_every_cell_is_quoted_so_no_separator_inside_one_starts_another():
    # given
    out = io.StringIO()
    # when
    csv_cells.writer(out, lineterminator="\n").writerow(["a;=1+2", "=2", 'say "hi"', 7])
    # then
    assert out.getvalue() == '"a;=1+2","\'=2","say ""hi""","7"\n'


def test_an_export_neutralises_hostile_serials_and_the_import_reads_the_file_back(media):
    # given units with hostile serials built from a lot whose number has / and "
    brand = OrganisationFactory()
    client = client_for(member(brand))
    first = _upload(client, _assignments([(UNIT_GTIN, serial, CELL_GTIN, LOT) for serial in HOSTILE_SERIALS]))
    assert first.captured == len(HOSTILE_SERIALS), first.problems
    lot_link = identifiers.to_digital_link(identifiers.Lgtin(gtin=CELL_GTIN, lot=LOT))
    finding = raise_finding(client, lot_link)
    assert finding.status_code == 201, finding.json()
    run_job(TraceRun.objects.get(pk=finding.json()["run"]).job)
    # when the run is exported as CSV and downloaded
    queued = client.post(
        f"/api/v1/investigations/{finding.json()['investigation']}/exports/", {"format": "csv"}, format="json"
    ).json()
    run_job(Job.objects.get(pk=queued["id"]))
    download = client.get(f"/api/v1/jobs/{queued['id']}/download/", HTTP_ACCEPT="text/csv")
    text = b"".join(download.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    exported = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    # then no cell starts a formula, and each hostile serial is there behind a quote
    assert download.status_code == 200
    assert _formula_cells(rows) == []
    assert sorted(r["serial"] for r in exported) == sorted(csv_cells.neutralised(s) for s in HOSTILE_SERIALS)
    assert "'=1+2" in {r["serial"] for r in exported} and "''=1" in {r["serial"] for r in exported}
    # when the exported units go back in through the CSV import, as they were written
    as_written = [(r["gtin"], r["serial"], CELL_GTIN, LOT) for r in exported]
    again = _upload(client, _assignments(as_written, neutralise=False))
    # then they are the same units: the same events again, nothing new
    assert (again.captured, again.repeated) == (0, len(HOSTILE_SERIALS)), again.problems
    assert EpcisEvent.objects.count() == len(HOSTILE_SERIALS)
    assert units_of(LOT) == dict.fromkeys(HOSTILE_SERIALS, "definite")


def test_the_csv_import_links_serials_with_slash_and_quote_as_encoded_digital_links():
    # given
    client = client_for(member(OrganisationFactory()))
    # when
    capture = _upload(client, _assignments([(UNIT_GTIN, 'A/B"C', CELL_GTIN, LOT)]))
    event = EpcisEvent.objects.get()
    # then
    assert capture.captured == 1, capture.problems
    assert event.body["outputEPCList"] == [f"https://id.gs1.org/01/{UNIT_GTIN}/21/A%2FB%22C"]
    assert event.body["inputQuantityList"][0]["epcClass"] == f"https://id.gs1.org/01/{CELL_GTIN}/10/CL%2F7%22B"


def _hostile_entry(organisation) -> AuditEntry:
    return AuditEntry.objects.create(
        username='=HYPERLINK("http://evil.example","x")',
        organisation=organisation,
        action="finding.record",
        identifiers=["-2+3"],
        detail={"note": "@SUM(1)"},
        request_id="+1",
        source=AuditSource.API,
    )


def test_the_audit_csv_over_the_api_neutralises_every_cell():
    # given
    brand = OrganisationFactory()
    admin = member(brand)
    Membership.objects.filter(user=admin).update(role=MemberRole.ADMIN)
    _hostile_entry(brand)
    # when
    response = client_for(admin).get("/api/v1/audit/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    # then
    assert response.status_code == 200
    assert _formula_cells(rows) == []
    assert rows[1][2] == '\'=HYPERLINK("http://evil.example","x")' and rows[1][5] == "'+1"


def test_the_audit_command_neutralises_every_cell():
    # given
    brand = OrganisationFactory()
    _hostile_entry(brand)
    out = io.StringIO()
    # when
    call_command("audit", "export", "--organisation", brand.slug, "--since", "2000-01-01", stdout=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    # then
    assert len(rows) == 2 and _formula_cells(rows) == []
    assert csv_cells.unquote(rows[1][2]) == '=HYPERLINK("http://evil.example","x")'


def test_a_work_order_or_despatch_advice_with_spaces_and_quotes_is_captured_as_an_encoded_urn():
    # given a work order number and a despatch advice number as people write them
    owner = OrganisationFactory()
    client = client_for(member(owner))
    work_order = 'WO 7/2 "rush" 100%'
    rows = [
        ("input", CELL_GTIN, LOT, "2024-07-01T08:00:00Z"),
        ("output", UNIT_GTIN, "PB1", "2024-07-01T09:00:00Z"),
    ]
    out = io.StringIO()
    writer = csv_cells.writer(out)
    writer.writerow([c.name for c in TEMPLATES["work_orders"].columns])
    for role, gtin, code, at in rows:
        writer.writerow([work_order, role, gtin, code, at])
    shipment = io.StringIO()
    writer = csv_cells.writer(shipment)
    writer.writerow([c.name for c in TEMPLATES["shipments"].columns])
    writer.writerow(["DA 0042 / Ω", "4012345000009", "2024-07-02T14:00:00Z", "", UNIT_GTIN, "PB1"])
    # when
    built = client.generic("POST", "/api/v1/csv/work_orders/", out.getvalue().encode(), content_type="text/csv")
    run_job(EpcisCapture.objects.get(pk=built.json()["capture"]).job)
    shipped = client.generic("POST", "/api/v1/csv/shipments/", shipment.getvalue().encode(), content_type="text/csv")
    run_job(EpcisCapture.objects.get(pk=shipped.json()["capture"]).job)
    # then both files are captured whole, their numbers percent-encoded where a URN needs it
    captures = EpcisCapture.objects.order_by("pk")
    assert [(c.captured, c.problems) for c in captures] == [(2, []), (1, [])]
    assert set(EpcisEvent.objects.values_list("transformation_id", flat=True)) == {
        "urn:ledger:work-order:WO%207/2%20%22rush%22%20100%25",
        "",
    }
    assert Shipment.objects.get().reference == "urn:ledger:desadv:DA%200042%20/%20%CE%A9"
