"""Recording a finding on the pages (issue 15): a lot or unit (typed, scanned as a GS1 barcode, or
picked from the caller's own codes offered as it types), every lot of a supplier or a site in a
production window, files of evidence kept with it, and the desk's live progress of the runs.

The world (tests/trace_world.py) is brand A's: U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4; brand B (the competitor) built U9 and U10 from the same cell lot C1.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Unit
from tests.factories import SiteFactory
from tests.jobs_support import run_job
from tests.test_pages import (  # noqa: F401  (chain is a fixture)
    _main,
    _member,
    _page_client,
    _refusal,
    _text,
    _unread_client,
    chain,
)
from traceability.core.audit import AuditAction
from traceability.core.limits import MULTIPART_OVERHEAD
from traceability.core.models import AuditEntry, Job, JobStatus
from traceability.investigations import services
from traceability.investigations.evidence import evidence_check
from traceability.investigations.models import Finding, FindingAttachment, Investigation, TraceRun
from traceability.investigations.services import finding_record
from traceability.ledger.selectors import identifier_render
from traceability.pages import finding as finding_pages
from traceability.tasks import job_submit

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
GS = "\x1d"
BODY = {"category": "metallic_debris", "severity": "high", "description": "Burr on the tab"}


@pytest.fixture()
def world(chain, settings, tmp_path):  # noqa: F811  (the imported fixture)
    settings.MEDIA_ROOT = tmp_path
    return chain


def _recorded() -> tuple[int, int, int, int]:
    return (
        Finding.objects.count(),
        Investigation.objects.count(),
        Job.objects.count(),
        FindingAttachment.objects.count(),
    )


def _opened(response) -> Investigation:
    assert response.status_code == 302, _text(response)
    number = int(response["Location"].strip("/").rsplit("/", 1)[1])
    return Investigation.objects.select_related("finding").get(pk=number)


def _error(response, field: str) -> str:
    return _text(response).split(f'id="{field}-error"', 1)[1].split(">", 1)[1].split("</small>", 1)[0]


def _gtin(canonical: str) -> str:
    return canonical.split(":")[1]


# --- the subject's kinds ------------------------------------------------------------------------------


def test_the_form_offers_every_kind_of_subject_and_evidence_and_works_without_javascript(world):
    # when
    page = _text(_page_client(world.users["own"]).get("/finding/new/"))
    # then every field is on the page, the form sends files, and the script is a static file
    assert 'enctype="multipart/form-data"' in page
    for name in ("subject_kind", "subject", "supplier", "site", "window_from", "window_to", "evidence"):
        assert f'name="{name}"' in page
    assert 'type="file" name="evidence" multiple' in page
    assert '<script src="/static/pages/finding.js" defer></script>' in page
    assert "<script>" not in page


def test_a_lot_typed_as_its_digital_link_is_the_subject_and_a_window_given_with_it_is_ignored(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    subject = identifier_render(w.c4.identity, form="digital_link")
    # when the kind is a lot or unit, the window fields (another kind's) are ignored
    response = client.post(
        "/finding/new/", {**BODY, "subject_kind": "item", "subject": subject, "window_from": "2024-01-01T00:00"}
    )
    # then
    finding = _opened(response).finding
    assert (finding.subject_lot_id, finding.window_from, finding.window_to) == (w.c4.pk, None, None)


def test_every_lot_of_a_supplier_is_a_subject_the_brand_records_and_another_brand_is_told_it_knows_none(world):
    # given the cell maker of C1, whose lot reached the brand's units and the competitor's
    w = world
    supplier = w.c1.owner
    body = {**BODY, "subject_kind": "supplier", "supplier": supplier.slug, "subject": "ignored: another kind's"}
    # when
    opened = _opened(_page_client(w.users["own"]).post("/finding/new/", body))
    # then
    assert (opened.finding.subject_kind, opened.finding.subject_organisation_id) == ("supplier", supplier.pk)
    # and a party that may trace none of its lots is told what an unknown subject is told
    before = _recorded()
    refused = _page_client(w.users["distributor"]).post("/finding/new/", body)
    assert refused.status_code == 403  # a distributor records no finding at all
    stranger = _member(w.m3.owner)  # a material maker none of C1's owner's lots reach
    answer = _page_client(stranger).post("/finding/new/", body)
    assert answer.status_code == 400
    assert _error(answer, "supplier") == f"No lot of supplier “{supplier.name}” is known to you."
    assert _recorded() == before


def test_every_lot_of_a_site_in_a_production_window_is_a_subject(world):
    # given M1 made at its supplier's plant in 2023
    w = world
    site = SiteFactory(owner=w.m1.owner)
    Lot.objects.filter(pk=w.m1.pk).update(site=site)
    client = _page_client(w.users["own"])
    body = {**BODY, "subject_kind": "site", "site": site.pk}
    # when
    opened = _opened(client.post("/finding/new/", {**body, "window_from": "2000-01-01T00:00"}))
    # then
    assert (opened.finding.subject_kind, opened.finding.subject_site_id) == ("site", site.pk)
    assert opened.finding.window_from.year == 2000 and opened.finding.window_to is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"subject_kind": "supplier"}, "supplier", "Choose the supplier whose lots were found defective."),
        ({"subject_kind": "site"}, "site", "Choose the site whose lots were found defective."),
        ({"subject_kind": "supplier", "supplier": "nobody"}, "supplier", "No organisation in the directory is that"),
        ({"subject_kind": "site", "site": "999999"}, "site", "No site in the directory is that one"),
        (
            {"subject_kind": "site", "window_from": "2024-02-01T00:00", "window_to": "2024-01-01T00:00"},
            "window_to",
            "The window ends before it starts.",
        ),
        ({"subject_kind": "supplier", "window_from": "yesterday"}, "window_from", "Give a date and time"),
        ({"subject_kind": "item"}, "subject", "Name the lot or unit found defective."),
    ],
)
def test_a_subject_refused_says_why_beside_its_field_and_records_nothing(world, fields, field, message):
    # given
    before = _recorded()
    # when
    response = _page_client(world.users["own"]).post("/finding/new/", {**BODY, **fields})
    # then
    assert response.status_code == 400
    assert message in _error(response, field)
    assert _recorded() == before


# --- scanned barcodes -------------------------------------------------------------------------------------


def test_a_scanned_element_string_with_group_separators_finds_the_unit_and_the_lot(world):
    # given what a handheld scanner types for U1's GS1 DataMatrix (a batch after the serial, ended by
    # GS) and for C4's GS1-128 label (raw, its batch ended by GS), and a label copied by hand
    w = world
    unit = Unit.objects.get(pk=w.u[1])
    client = _page_client(w.users["own"])
    scans = {
        "unit": f"]d201{_gtin(unit.identity)}21{unit.serial}{GS}10BATCH7{GS}",
        "lot": f"]C101{_gtin(w.c4.identity)}10{w.c4.code}{GS}",
        "copied": f"(01){_gtin(w.c4.identity)}(10){w.c4.code}",
    }
    # when
    unit_finding = _opened(client.post("/finding/new/", {**BODY, "subject": scans["unit"]})).finding
    lot_finding = _opened(client.post("/finding/new/", {**BODY, "subject": scans["lot"]})).finding
    run_job(TraceRun.objects.get(investigation__finding=lot_finding).job)  # its run done, the same subject again
    copied = _opened(client.post("/finding/new/", {**BODY, "subject": scans["copied"]})).finding
    # then
    assert (unit_finding.subject_unit_id, lot_finding.subject_lot_id, copied.subject_lot_id) == (
        unit.pk,
        w.c4.pk,
        w.c4.pk,
    )


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ("(01){gtin}", "the barcode carries a GTIN but no batch (AI 10) or serial (AI 21)"),
        ("]C101{bad}10C4" + GS, "Invalid GTIN check digit"),
        ("]C1(17)250101", "the barcode carries no GTIN (AI 01)"),
        ("]C0ABC" + GS + "123", "carries no GS1 element string"),
        ("]d201{gtin}10" + "X" * 21 + GS, "is not a valid GS1 barcode"),
    ],
)
def test_a_malformed_barcode_says_what_is_wrong_and_creates_nothing(world, scan, message):
    # given
    gtin = _gtin(world.c4.identity)
    bad = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    before = _recorded()
    # when
    response = _page_client(world.users["own"]).post(
        "/finding/new/", {**BODY, "subject": scan.format(gtin=gtin, bad=bad)}
    )
    # then
    assert response.status_code == 400
    assert message in _error(response, "subject")
    assert _recorded() == before


def test_a_scanned_unit_of_another_brand_is_answered_as_an_unknown_one(world):
    # given U9 (the competitor's), scanned by brand A, and a serial no unit has
    w = world
    unit = Unit.objects.get(owner=w.other_brand, serial="U9")
    client = _page_client(w.users["own"])
    scan = f"]d201{_gtin(unit.identity)}21U9{GS}10B1"
    # when
    answers = [client.post("/finding/new/", {**BODY, "subject": s}) for s in (scan, scan.replace("U9", "NOSUCH"))]
    # then the two answers differ in the serial alone
    said = [_error(answer, "subject") for answer in answers]
    assert said[0].replace("U9", "NOSUCH") == said[1]
    assert "No lot or unit is known as “]d201" in said[0] and "\u241d" in said[0]


def test_control_characters_other_than_a_scanners_group_separator_are_refused(world):
    response = _page_client(world.users["own"]).post("/finding/new/", {**BODY, "subject": "U1\x07"})
    assert response.status_code == 400
    assert "Control characters name nothing" in _error(response, "subject")


# --- offered as it is typed ---------------------------------------------------------------------------------


def _offered(response) -> list[str]:
    text = _text(response)
    return [part.split('"', 1)[0] for part in text.split('data-subject="')[1:]]


def test_the_callers_own_units_are_offered_for_what_it_typed_and_another_brands_never(world):
    # given brand A's U1..U8 and brand B's U9 and U10
    w = world
    own = _page_client(w.users["own"])
    competitor = _page_client(w.users["competitor"])
    # when each types "U"
    mine = own.get("/finding/subjects/", {"subject": "U"}, HTTP_HX_REQUEST="true")
    theirs = competitor.get("/finding/subjects/", {"q": "U"}, HTTP_HX_REQUEST="true")
    # then each is offered its own, by Digital Link, and nothing of the other's
    links = {
        unit.serial: identifier_render(unit.identity, form="digital_link")
        for unit in Unit.objects.filter(serial__startswith="U")
    }
    assert _offered(mine) == [links[f"U{i}"] for i in range(1, 9)]
    assert _offered(theirs) == [links["U10"], links["U9"]]
    assert "U1 · " not in _text(theirs) and links["U1"] not in _text(theirs)


def test_an_attackers_prefix_never_reveals_another_organisations_codes(world):
    # given brand B, which may trace C1 (its units were built from it) but owns no lot
    client = _page_client(world.users["competitor"])
    # when it types the start of the cell maker's, the material makers' and brand A's codes
    answers = [client.get("/finding/subjects/", {"q": prefix}) for prefix in ("C", "C1", "M", "U1", "%", "_", "")]
    # then nothing of them is offered
    for prefix, answer in zip(("C", "C1", "M", "U1", "%", "_", ""), answers, strict=True):
        assert answer.status_code == 200
        assert _offered(answer) == (
            []
            if prefix != "U1"
            else [
                identifier_render(Unit.objects.get(owner=world.other_brand, serial="U10").identity, form="digital_link")
            ]
        )


def test_at_most_ten_are_offered_in_the_same_queries_whatever_the_number(world, monkeypatch):
    # given
    client = _page_client(world.users["own"])
    counted = []
    for offered in (1, 10):
        monkeypatch.setattr(finding_pages, "OFFERED", offered)
        # when
        with CaptureQueriesContext(connection) as queries:
            answer = client.get("/finding/subjects/", {"q": "U"})
        counted.append((len(queries), len(_offered(answer))))
    # then
    assert [offered for _, offered in counted] == [1, 8]
    assert counted[0][0] == counted[1][0]
    lots_and_units = [
        q["sql"] for q in queries.captured_queries if '"cells_lot"' in q["sql"] or '"packs_unit"' in q["sql"]
    ]
    assert len(lots_and_units) == 2


def test_those_who_record_no_finding_are_offered_nothing(world):
    answer = _page_client(world.users["distributor"]).get("/finding/subjects/", {"q": "U"})
    assert answer.status_code == 403 and _offered(answer) == []


# --- evidence ---------------------------------------------------------------------------------------------


def test_files_of_evidence_are_kept_with_the_finding_listed_and_downloaded_by_its_readers_only(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    files = [
        SimpleUploadedFile("XRF report.pdf", PDF, content_type="application/pdf"),
        SimpleUploadedFile("debris.png", PNG, content_type="image/png"),
    ]
    # when
    opened = _opened(
        client.post(
            "/finding/new/",
            {**BODY, "subject": identifier_render(w.c4.identity, form="digital_link"), "evidence": files},
        )
    )
    # then
    kept = list(opened.finding.attachments.order_by("pk"))
    assert [(a.name, a.content_type, a.size) for a in kept] == [
        ("XRF report.pdf", "application/pdf", len(PDF)),
        ("debris.png", "image/png", len(PNG)),
    ]
    page = _main(_text(client.get(f"/investigation/{opened.pk}/")))
    evidence = page.split('id="evidence"', 1)[1].split("</ul>", 1)[0]
    assert "XRF report.pdf" in evidence and "debris.png" in evidence
    download = f"/investigation/{opened.pk}/evidence/{kept[0].pk}/"
    assert f'href="{download}"' in evidence
    answer = client.get(download)
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == PDF
    assert 'filename="XRF report.pdf"' in answer["Content-Disposition"]
    # and another brand, and the regulator its grants do not cover, are answered as for no such file
    for caller in ("competitor", "regulator_out_of_scope"):
        refused = _page_client(w.users[caller]).get(download)
        assert refused.status_code == 404
        unknown = _page_client(w.users[caller]).get(f"/investigation/{opened.pk}/evidence/999999/")
        assert _main(_text(refused)).replace(f"numbered {kept[0].pk}.", "numbered N.") == _main(_text(unknown)).replace(
            "numbered 999999.", "numbered N."
        )
    # and a regulator in scope reads it
    assert _page_client(w.users["regulator_all"]).get(download).status_code == 200


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64,
            "tool.exe",
            "is not accepted as evidence",
        ),
        (b"", "empty.pdf", "empty.pdf is empty"),
    ],
)
def test_a_refused_file_is_said_beside_the_field_and_no_finding_is_recorded(world, tmp_path, content, name, message):
    # given
    w = world
    before = _recorded()
    files = [SimpleUploadedFile("ok.pdf", PDF), SimpleUploadedFile(name, content)]
    # when
    response = _page_client(w.users["own"]).post(
        "/finding/new/", {**BODY, "subject": identifier_render(w.c4.identity, form="digital_link"), "evidence": files}
    )
    # then
    assert response.status_code == 400
    assert message in _error(response, "evidence")
    assert _recorded() == before
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []  # not the valid file either


def test_a_file_over_the_limit_is_refused_and_no_finding_is_recorded(world, settings):
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 10
    before = _recorded()
    response = _page_client(world.users["own"]).post(
        "/finding/new/", {**BODY, "subject": "U1", "evidence": [SimpleUploadedFile("r.pdf", PDF)]}
    )
    assert response.status_code == 400
    assert "a finding's attachments may be at most" in _error(response, "evidence")
    assert _recorded() == before


class _FullDisk(FileSystemStorage):
    """A storage that keeps the first file and fails on the next, as a full disk would."""

    def __init__(self, location: Path) -> None:
        super().__init__(location=location)
        self.saved = 0

    def _save(self, name, content):
        if self.saved:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.saved += 1
        return super()._save(name, content)


def test_a_storage_that_fails_records_no_finding_no_investigation_no_evidence_no_run_and_keeps_no_file(
    world, tmp_path, monkeypatch
):
    # given a storage that keeps the first of two files and fails on the second
    w = world
    storage = _FullDisk(tmp_path)
    monkeypatch.setattr(FindingAttachment._meta.get_field("file"), "storage", storage)
    before = _recorded()
    files = [SimpleUploadedFile("report.pdf", PDF), SimpleUploadedFile("debris.png", PNG)]
    # when
    response = _page_client(w.users["own"]).post(
        "/finding/new/", {**BODY, "subject": identifier_render(w.c4.identity, form="digital_link"), "evidence": files}
    )
    # then the page says so beside the files, and nothing is recorded
    assert response.status_code == 503
    assert (
        _error(response, "evidence")
        == "The files of evidence could not be stored, so nothing was recorded: try again later."
    )
    assert _recorded() == before
    # and the file stored before the failure is deleted
    assert storage.saved == 1
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def _burr_on_c4(w, evidence: list) -> Finding:
    """The owner of lot C4 records a finding on it with ``evidence``, through the domain service."""
    return finding_record(
        owner=w.c4.owner,
        subject=w.c4,
        category="metallic_debris",
        severity="high",
        description="Burr on the tab",
        evidence=evidence,
        submit=job_submit,
    )


def test_files_stored_for_a_finding_its_transaction_rolls_back_are_deleted_with_their_rows(
    world, tmp_path, monkeypatch
):
    # given a failure late in finding_record's transaction, after the evidence's rows are written
    w = world
    written = []

    def fails(run, countries):
        written.extend(FindingAttachment.objects.values_list("name", flat=True))
        raise ConnectionError("the database went away")

    monkeypatch.setattr(services, "_countries_store", fails)
    evidence = [
        evidence_check(file=SimpleUploadedFile("report.pdf", PDF), name="report.pdf"),
        evidence_check(file=SimpleUploadedFile("debris.png", PNG), name="debris.png"),
    ]
    before = _recorded()
    # when
    with pytest.raises(ConnectionError):
        _burr_on_c4(w, evidence)
    # then the rows written are rolled back, and the files deleted
    assert sorted(written) == ["debris.png", "report.pdf"]
    assert _recorded() == before
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_files_recorded_with_a_finding_are_written_with_it_once_each_and_audited(world, tmp_path):
    # given the same bytes given twice
    w = world
    evidence = [
        evidence_check(file=SimpleUploadedFile("report.pdf", PDF), name="report.pdf"),
        evidence_check(file=SimpleUploadedFile("again.pdf", PDF), name="again.pdf"),
    ]
    # when
    finding = _burr_on_c4(w, evidence)
    # then one attachment, its file in storage, and its audit entry
    kept = list(finding.attachments.all())
    assert [(a.name, a.size) for a in kept] == [("report.pdf", len(PDF))]
    assert kept[0].file.read() == PDF
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == [kept[0].file.name.rsplit("/", 1)[1]]
    entry = AuditEntry.objects.get(action=AuditAction.EVIDENCE_ATTACH)
    assert entry.identifiers == [f"finding:{finding.pk}", f"attachment:{kept[0].pk}", f"sha256:{kept[0].sha256}"]


@pytest.mark.parametrize(
    ("language", "said"),
    [
        (
            "en",
            "The files of evidence sent with a finding may be at most 4.0 KB together, each at most 1.0 KB:"
            " nothing was recorded.",
        ),
        ("zh-CN", "随发现提交的证据文件合计不得超过 4.0 KB，每个不得超过 1.0 KB：未记录任何内容。"),
    ],
)
def test_a_body_over_the_evidence_bound_is_refused_unread_and_records_nothing(
    world, settings, monkeypatch, language, said
):
    # given files of at most 1 KB each (4 together, and the form's framing), and a client whose
    # post the CSRF check would read (and refuse: it sends no token) if it came first
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 1024
    client, parsed = _unread_client(world.users["own"], monkeypatch)
    before = _recorded()
    large = SimpleUploadedFile("scan.pdf", PDF + b"0" * (4 * 1024 + MULTIPART_OVERHEAD))
    # when
    response = client.post(
        "/finding/new/", {**BODY, "subject": "U1", "evidence": [large]}, HTTP_ACCEPT_LANGUAGE=language
    )
    # then it is refused in the page's words, before anything read the form
    assert response.status_code == 413
    assert _refusal(response) == said
    assert parsed == []
    assert _recorded() == before


# --- the desk's live progress ------------------------------------------------------------------------------


def test_the_desk_shows_a_tracing_runs_progress_and_polls_only_while_one_traces(world):
    # given brand A's investigation, its run queued
    w = world
    client = _page_client(w.users["own"])
    number = w.investigation.pk
    # when
    desk = _text(client.get("/desk/"))
    section = client.get("/desk/", {"section": "investigations"}, HTTP_HX_REQUEST="true")
    # then the rows ask again every two seconds, and htmx is given the rows alone
    assert 'hx-trigger="every 2s"' in desk and f'id="progress-{number}" value="0"' in desk
    assert _text(section).startswith('<div id="desk-investigations" hx-get="/desk/?section=investigations"')
    assert "<main" not in _text(section)
    # when the run finishes
    run_job(TraceRun.objects.get(investigation=w.investigation).job)
    section = _text(client.get("/desk/", {"section": "investigations"}, HTTP_HX_REQUEST="true"))
    # then the bar is full and the rows stop asking
    assert f'id="progress-{number}" value="100"' in section and f'id="percent-{number}">100%<' in section
    assert "hx-trigger" not in section


def test_the_desks_progress_is_the_callers_scope_of_the_run(world):
    # given a run halfway through, as its job counts it
    w = world
    job = TraceRun.objects.get(investigation=w.investigation).job
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, done=3, total=6, percent=50)
    # when
    section = _text(
        _page_client(w.users["regulator_all"]).get("/desk/", {"section": "investigations"}, HTTP_HX_REQUEST="true")
    )
    # then
    assert f'id="percent-{w.investigation.pk}">50%<' in section and 'hx-trigger="every 2s"' in section


@pytest.mark.parametrize("caller", ["own", "regulator_jurisdiction_in"])
def test_the_desks_live_rows_cost_the_same_queries_whatever_the_number_of_runs(world, caller):
    # given the fixture's investigation, its run traced (so the jurisdiction's regulator is covered)
    w = world
    run_job(TraceRun.objects.get(investigation=w.investigation).job)
    client = _page_client(w.users[caller])
    ask = {"path": "/desk/", "data": {"section": "investigations"}, "HTTP_HX_REQUEST": "true"}
    with CaptureQueriesContext(connection) as one:
        client.get(**ask)
    # when two more investigations are opened, their runs queued, then one halfway through
    brand = _page_client(w.users["own"])
    for lot in (w.c1, w.c4):
        _opened(brand.post("/finding/new/", {**BODY, "subject": identifier_render(lot.identity, form="digital_link")}))
    # (C1's run traced: its units were sold into the regulator's Germany; C4's halfway through)
    run_job(TraceRun.objects.get(investigation__finding__subject_lot=w.c1).job)
    halfway = TraceRun.objects.get(investigation__finding__subject_lot=w.c4).job
    Job.objects.filter(pk=halfway.pk).update(status=JobStatus.RUNNING, done=1, total=4, percent=25)
    with CaptureQueriesContext(connection) as more:
        section = _text(client.get(**ask))
    # then the brand's rows are its three, the regulator's the two its grants cover, in the same queries
    assert section.count("<progress") == (3 if caller == "own" else 2)
    assert ('hx-trigger="every 2s"' in section) == (caller == "own")
    assert len(more) == len(one), [q["sql"] for q in more.captured_queries]
