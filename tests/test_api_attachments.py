"""POST /api/v1/findings/{id}/attachments/ and the download: evidence files on a finding."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.trace_world import build_world
from traceability.investigations.models import FindingAttachment

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


@pytest.fixture()
def world(settings, tmp_path):
    """The world's brand with a finding on M1; MEDIA_ROOT in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    w.media = tmp_path
    w.qa = client_for(member(w.brand, "qa"))
    response = raise_finding(w.qa, urn(w.m1.identity))
    w.finding = response.json()["id"]
    return w


def attach(client, finding: int, content: bytes, name: str = "report.pdf", content_type: str = "application/pdf"):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post(f"/api/v1/findings/{finding}/attachments/", {"file": upload}, format="multipart")


def stored_files(world) -> list[str]:
    return sorted(str(p.relative_to(world.media)) for p in world.media.rglob("*") if p.is_file())


def test_a_lab_report_is_attached_listed_on_the_finding_and_downloaded_as_uploaded(world):
    # when
    response = attach(world.qa, world.finding, PDF, name="XRF report, lot M1.pdf")
    # then
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("name", "content_type", "size", "sha256", "uploaded_by")} == {
        "name": "XRF report, lot M1.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "uploaded_by": "qa",
    }
    assert body["download"].endswith(f"/api/v1/findings/{world.finding}/attachments/{body['id']}/")
    # and the finding lists it
    finding = world.qa.get(f"/api/v1/findings/{world.finding}/").json()
    assert [a["id"] for a in finding["attachments"]] == [body["id"]]
    # and the download gives the same bytes, as the kind of file they are, to be saved
    download = world.qa.get(body["download"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")


def test_the_same_bytes_again_are_the_same_attachment(world):
    # given
    first = attach(world.qa, world.finding, PDF).json()
    # when a client retries the upload (under another name, even)
    again = attach(world.qa, world.finding, PDF, name="retry.pdf")
    # then nothing new is stored
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert FindingAttachment.objects.count() == 1
    assert len(stored_files(world)) == 1


def test_what_a_file_is_is_read_from_its_bytes_not_its_name(world):
    # when a photograph is sent under a PDF's name and type
    response = attach(world.qa, world.finding, PNG, name="photo.pdf", content_type="application/pdf")
    # then
    assert response.status_code == 201
    assert response.json()["content_type"] == "image/png"


def test_measurements_as_csv_text_are_accepted(world):
    response = attach(world.qa, world.finding, "lot,Fe µm\nM1,45\n".encode(), name="sieve.csv", content_type="text/csv")
    assert (response.status_code, response.json()["content_type"]) == (201, "text/csv")


@pytest.mark.parametrize(
    ("content", "name", "code", "message"),
    [
        (b"", "empty.pdf", "empty_file", "empty.pdf is empty: there is nothing to attach"),
        (
            ELF,
            "tool.pdf",
            "file_type",
            "tool.pdf is not accepted as evidence: its content is not a kind this ledger recognises",
        ),
        (
            b"7z\xbc\xaf\x27\x1c" + b"\x00" * 26,
            "samples.7z",
            "file_type",
            "samples.7z is not accepted as evidence: its content is application/x-7z-compressed",
        ),
        (b"\x00" * 2_000, "big.pdf", "file_too_large", "big.pdf is 0.0 MB: a finding's attachments may be at most"),
    ],
)
def test_a_refused_file_says_why_and_leaves_nothing_behind(world, settings, content, name, code, message):
    # given attachments of at most 1,000 bytes
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 1_000
    # when
    response = attach(world.qa, world.finding, content, name=name)
    # then
    assert response.status_code == (413 if code == "file_too_large" else 400)
    body = response.json()
    assert (body["code"], body["field"]) == (code, "file")
    assert body["message"].startswith(message)
    assert FindingAttachment.objects.count() == 0
    assert stored_files(world) == []


def test_a_request_without_a_file_names_the_field(world):
    response = world.qa.post(f"/api/v1/findings/{world.finding}/attachments/", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert FindingAttachment.objects.count() == 0


def test_a_file_name_keeps_no_folders(world):
    response = attach(world.qa, world.finding, PDF, name="..\\..\\etc/passwd.pdf")
    assert response.json()["name"] == "passwd.pdf"
    (path,) = stored_files(world)
    assert path.startswith("findings/") and ".." not in path


def test_regulators_read_attachments_and_others_do_not_see_them(world):
    # given an attachment of the brand's finding
    attachment = attach(world.qa, world.finding, PDF).json()
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    other = client_for(member(OrganisationFactory(role=Role.BRAND)))
    # then a regulator downloads it but cannot attach; another organisation learns nothing
    assert regulator.get(attachment["download"]).status_code == 200
    refused = attach(regulator, world.finding, PNG)
    assert (refused.status_code, refused.json()["code"]) == (403, "read_only")
    assert other.get(attachment["download"]).status_code == 404
    assert attach(other, world.finding, PNG).status_code == 404
    assert FindingAttachment.objects.count() == 1


def test_the_findings_list_reads_attachments_in_one_query_whatever_their_number(world):
    # given one finding with an attachment
    attach(world.qa, world.finding, PDF)
    with CaptureQueriesContext(connection) as one:
        world.qa.get("/api/v1/findings/")
    # when more findings (on other subjects) carry more attachments
    for lot, content in ((world.m2, PNG), (world.c1, PDF + b"2"), (world.c2, PDF + b"3")):
        finding = raise_finding(world.qa, urn(lot.identity)).json()["id"]
        attach(world.qa, finding, content)
        attach(world.qa, finding, content + b"\n")
    with CaptureQueriesContext(connection) as many:
        response = world.qa.get("/api/v1/findings/")
    # then
    assert sum(len(f["attachments"]) for f in response.json()["results"]) == 7
    assert len(many) == len(one)


def test_an_upload_announced_too_large_is_refused_before_its_body_is_read(world, settings):
    # given attachments of at most 1,000 bytes, and a request saying it carries a megabyte
    settings.LEDGER_ATTACHMENT_MAX_BYTES = 1_000
    upload = SimpleUploadedFile("scan.tiff", b"II*\x00" + b"\x00" * 2_000_000, content_type="image/tiff")
    # when
    response = world.qa.post(f"/api/v1/findings/{world.finding}/attachments/", {"file": upload}, format="multipart")
    # then
    assert response.status_code == 413
    body = response.json()
    assert (body["code"], body["field"]) == ("file_too_large", "file")
    assert "may be at most 1,000 bytes each" in body["message"]
    assert FindingAttachment.objects.count() == 0
    assert stored_files(world) == []


def test_a_download_whose_file_is_gone_says_so(world):
    # given an attachment whose file was removed from storage behind the ledger's back
    attachment = attach(world.qa, world.finding, PDF).json()
    for path in world.media.rglob("*.pdf"):
        path.unlink()
    # when
    response = world.qa.get(attachment["download"])
    # then
    assert response.status_code == 404
    assert response.json() == {
        "code": "file_gone",
        "message": f"the file of attachment {attachment['id']} is gone from storage",
    }


@pytest.mark.parametrize("url", ["{finding}/attachments/99999999999999999999/", "99999999999999999999/attachments/1/"])
def test_an_attachment_id_beyond_the_database_range_is_not_found(world, url):
    # given (found by tests/test_fuzz_api.py: the finding's id overflowed the query, a 500)
    attach(world.qa, world.finding, PDF)
    # when
    response = world.qa.get("/api/v1/findings/" + url.format(finding=world.finding))
    # then
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
