"""The audit trail: each write and each regulator's read appends one entry; entries are never
changed; an organisation's admins read their own, a regulator all, as a page or as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from suppliers.models import MemberRole, Membership, Role
from suppliers.services import api_token_issue, certificate_change_status, membership_add, organisation_add
from tests.factories import CertificateFactory, OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, run_job, traced, urn
from tests.test_epcis_capture import document, transformation
from tests.trace_world import build_world
from traceability.core.audit import audit_record
from traceability.core.models import AuditEntry
from traceability.events.csv_import import TEMPLATES
from traceability.events.models import EpcisCapture
from traceability.investigations.models import TraceRun

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def entries(**filters) -> list[tuple]:
    """The trail, oldest first: (action, username, organisation slug, source, identifiers)."""
    return [
        (e.action, e.username, e.organisation.slug if e.organisation else None, e.source, e.identifiers)
        for e in AuditEntry.objects.filter(**filters).select_related("organisation").order_by("id")
    ]


def with_role(organisation, role: str, username: str):
    user = get_user_model().objects.create_user(username=username)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture()
def world(settings, tmp_path):
    """The trace world's brand with a QA engineer, and a finding on material lot M1 whose run finished."""
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    w.qa = client_for(member(w.brand, "qa"))
    w.finding = traced(w.qa, w)
    return w


# --- every write leaves one entry -------------------------------------------------------------------------


def test_recording_a_finding_over_the_api_leaves_one_entry_with_its_request_id():
    # given
    w = build_world()
    qa = client_for(member(w.brand, "qa"))
    # when
    response = qa.post(
        "/api/v1/findings/",
        {"subject": urn(w.m1.identity), "category": "metallic_debris", "severity": "critical", "description": "Fe"},
        format="json",
        headers={"X-Request-ID": "mes-7f3a"},
    )
    # then
    body = response.json()
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "mes-7f3a"
    assert entries() == [
        (
            "finding.record",
            "qa",
            w.brand.slug,
            "api",
            [f"finding:{body['id']}", f"investigation:{body['investigation']}", f"run:{body['run']}", w.m1.identity],
        )
    ]
    entry = AuditEntry.objects.get()
    assert (entry.user_id, entry.request_id) == (qa.user.pk, "mes-7f3a")
    assert entry.detail == {"category": "metallic_debris", "severity": "critical", "subject_kind": "lot"}


def test_a_request_without_a_usable_request_id_gets_a_new_one_echoed_and_recorded():
    # given
    w = build_world()
    qa = client_for(member(w.brand, "qa"))
    body = {"subject": urn(w.m1.identity), "category": "other", "severity": "low", "description": "x"}
    # when the client sends an id that would read as a formula where the CSV export is opened
    response = qa.post("/api/v1/findings/", body, format="json", headers={"X-Request-ID": "=HYPERLINK(1)"})
    # then
    request_id = response.headers["X-Request-ID"]
    assert str(uuid.UUID(request_id)) == request_id
    assert AuditEntry.objects.get().request_id == request_id


def test_a_refused_write_leaves_no_entry(world):
    # given a closed investigation
    url = f"/api/v1/investigations/{world.finding['investigation']}/transitions/"
    assert world.qa.post(url, {"to": "closed"}, format="json").status_code == 200
    before = entries()
    # when
    response = world.qa.post(url, {"to": "under_review"}, format="json")
    # then
    assert response.status_code == 409
    assert entries() == before


def test_moving_an_investigation_rerunning_and_exporting_leave_one_entry_each(world):
    # given
    investigation = world.finding["investigation"]
    recorded = AuditEntry.objects.get().pk  # the finding's
    # when
    moved = world.qa.post(f"/api/v1/investigations/{investigation}/transitions/", {"to": "under_review"}, format="json")
    rerun = world.qa.post(f"/api/v1/investigations/{investigation}/runs/")
    run_job(TraceRun.objects.get(pk=rerun.json()["id"]).job)
    export = world.qa.post(f"/api/v1/investigations/{investigation}/exports/", {"format": "csv"}, format="json")
    # then
    assert (moved.status_code, rerun.status_code, export.status_code) == (200, 202, 202)
    run, job = rerun.json()["id"], export.json()["id"]
    assert entries(id__gt=recorded) == [
        ("investigation.transition", "qa", world.brand.slug, "api", [f"investigation:{investigation}"]),
        ("run.start", "qa", world.brand.slug, "api", [f"investigation:{investigation}", f"run:{run}"]),
        (
            "export.start",
            "qa",
            world.brand.slug,
            "api",
            [f"investigation:{investigation}", f"run:{run}", f"job:{job}"],  # the latest finished run
        ),
    ]
    assert AuditEntry.objects.filter(action="investigation.transition").get().detail == {
        "from": "traced",
        "to": "under_review",
    }


def test_attaching_evidence_leaves_one_entry_and_the_same_bytes_again_none(world):
    # given
    finding = world.finding["id"]
    url = f"/api/v1/findings/{finding}/attachments/"
    # when
    first = world.qa.post(url, {"file": SimpleUploadedFile("xrf.pdf", PDF)}, format="multipart")
    again = world.qa.post(url, {"file": SimpleUploadedFile("retry.pdf", PDF)}, format="multipart")
    # then
    assert (first.status_code, again.status_code) == (201, 200)
    (entry,) = AuditEntry.objects.filter(action="evidence.attach")
    assert (entry.username, entry.organisation_id, entry.source) == ("qa", world.brand.pk, "api")
    assert entry.identifiers[:2] == [f"finding:{finding}", f"attachment:{first.json()['id']}"]
    assert entry.detail == {"name": "xrf.pdf", "content_type": "application/pdf", "size": len(PDF)}


def test_capturing_an_epcis_document_leaves_one_entry():
    # given
    brand = OrganisationFactory()
    client = client_for(member(brand, "mes"))
    body = json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]))).encode()
    # when
    response = client.generic("POST", "/epcis/capture", body, content_type="application/ld+json")
    # then
    capture = EpcisCapture.objects.get(pk=int(response.headers["Location"].rsplit("/", 1)[1]))
    (entry,) = AuditEntry.objects.all()
    assert response.status_code == 202
    assert (entry.action, entry.username, entry.organisation_id, entry.source) == (
        "epcis.capture",
        "mes",
        brand.pk,
        "epcis",
    )
    assert entry.identifiers == [f"capture:{capture.pk}", f"job:{capture.job_id}"]
    assert entry.detail == {"error_behaviour": "rollback"}


def test_a_csv_import_is_audited_as_one_csv_import_not_as_a_capture():
    # given
    brand = OrganisationFactory()
    client = client_for(member(brand, "qa"))
    data = TEMPLATES["assignments"].csv().encode()  # its header and example row
    # when
    response = client.generic("POST", "/api/v1/csv/assignments/", data, content_type="text/csv")
    # then
    body = response.json()
    assert response.status_code == 202
    assert entries() == [("csv.import", "qa", brand.slug, "api", [f"capture:{body['capture']}", f"job:{body['job']}"])]


def test_import_epcis_from_the_command_line_is_audited_without_a_user_or_request(tmp_path):
    # given
    brand = OrganisationFactory()
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]))))
    # when
    call_command("import_epcis", str(path), "--owner", brand.slug, "--no-progress", stdout=io.StringIO())
    # then
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.user_id, entry.username, entry.organisation_id) == (
        "epcis.capture",
        None,
        "",
        brand.pk,
    )
    assert (entry.source, entry.request_id) == ("cli", "")


def test_changing_a_certificates_status_leaves_one_entry_for_its_holder():
    # given
    certificate = CertificateFactory(number="2023011606012345")
    officer = member(OrganisationFactory(role=Role.BRAND), "officer")
    # when
    certificate_change_status(certificate=certificate, status="suspended", reason="SAMR notice", changed_by=officer)
    # then
    assert entries() == [
        ("certificate.status", "officer", certificate.owner.slug, "cli", ["certificate:ccc:2023011606012345"])
    ]
    assert AuditEntry.objects.get().detail == {"from": "valid", "to": "suspended", "reason": "SAMR notice"}


def test_a_refused_certificate_change_leaves_no_entry():
    # given a revoked certificate is final
    certificate = CertificateFactory(status="revoked")
    # when
    with pytest.raises(ValueError, match="cannot go from revoked to valid"):
        certificate_change_status(certificate=certificate, status="valid")
    # then
    assert entries() == []


@pytest.mark.worker
def test_expiring_certificates_on_a_worker_leaves_one_entry_each_from_the_worker(celery_worker, wait_until):
    # given two lapsed certificates of two holders, and a current one
    lapsed = [CertificateFactory(valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2021, 1, 1)) for _ in range(2)]
    CertificateFactory()
    from traceability.celery import app

    # when beat's task is run by a worker, sent as beat sends it: by its name (the schedule's entry)
    app.send_task(app.conf.beat_schedule["expire-certificates"]["task"])
    # then
    wait_until(lambda: AuditEntry.objects.count() == 2, what="the expiry's entries")
    assert entries() == [
        ("certificate.status", "", c.owner.slug, "worker", [f"certificate:ccc:{c.number}"]) for c in lapsed
    ]
    assert AuditEntry.objects.first().detail["to"] == "expired"


def test_changing_a_certificate_in_the_admin_is_audited_as_the_admin(admin_client, admin_user):
    # given
    certificate = CertificateFactory()
    # when
    admin_client.post(
        reverse("admin:suppliers_certificate_changelist"),
        {"action": "suspend", "_selected_action": [certificate.pk], "reason": "recall"},
    )
    # then
    identifier = f"certificate:ccc:{certificate.number}"
    assert entries() == [("certificate.status", admin_user.username, certificate.owner.slug, "admin", [identifier])]


def test_registering_organisations_members_and_tokens_is_audited_once_and_never_with_the_key():
    # when an operator registers a brand, its admin and a token, then re-runs the same script
    keys = []
    for _ in range(2):
        brand = organisation_add(slug="volta", name="Volta", roles=[Role.BRAND], gs1_company_prefix="4012345").record
        admin = membership_add(username="ada", organisation=brand, role=MemberRole.ADMIN).record
        keys.append(api_token_issue(membership=admin))
    organisation_add(slug="volta", name="Volta Brands", roles=[Role.BRAND], update=True)
    # then the second run changed nothing and wrote nothing
    assert entries() == [
        ("organisation.add", "", "volta", "cli", ["volta"]),
        ("membership.add", "", "volta", "cli", ["user:ada"]),
        ("token.issue", "", "volta", "cli", ["user:ada"]),
        ("organisation.change", "", "volta", "cli", ["volta"]),
    ]
    assert AuditEntry.objects.get(action="organisation.change").detail == {"name": ["Volta", "Volta Brands"]}
    assert AuditEntry.objects.get(action="membership.add").detail == {"role": "admin"}
    assert keys[1] is None
    assert [e for e in AuditEntry.objects.all() if keys[0] in json.dumps([e.identifiers, e.detail])] == []


def test_a_user_deleted_later_stays_named_in_the_trail():
    # given
    w = build_world()
    user = member(w.brand, "leaver")
    raise_finding(client_for(user), urn(w.m1.identity))
    # when
    user.delete()
    # then
    entry = AuditEntry.objects.select_related("user").get()
    assert (entry.username, entry.user) == ("leaver", None)


# --- a regulator's reads ----------------------------------------------------------------------------------


def test_a_regulators_read_leaves_an_entry_with_method_path_query_and_status(world):
    # given
    regulator_org = OrganisationFactory(role=Role.REGULATOR)
    regulator = client_for(member(regulator_org, "samr"))
    finding = world.finding["id"]
    # when
    listing = regulator.get("/api/v1/findings/?category=metallic_debris", headers={"X-Request-ID": "inq-1"})
    one = regulator.get(f"/api/v1/findings/{finding}/")
    missing = regulator.get("/api/v1/findings/999999/")
    # then
    assert (listing.status_code, one.status_code, missing.status_code) == (200, 200, 404)
    reads = AuditEntry.objects.filter(action="read.api").order_by("id")
    assert [(e.username, e.organisation_id, e.source, e.identifiers, e.detail) for e in reads] == [
        (
            "samr",
            regulator_org.pk,
            "api",
            [],
            {"method": "GET", "path": "/api/v1/findings/", "query": "category=metallic_debris", "status": 200},
        ),
        (
            "samr",
            regulator_org.pk,
            "api",
            [f"pk:{finding}"],
            {"method": "GET", "path": f"/api/v1/findings/{finding}/", "query": "", "status": 200},
        ),
        (
            "samr",
            regulator_org.pk,
            "api",
            ["pk:999999"],
            {"method": "GET", "path": "/api/v1/findings/999999/", "query": "", "status": 404},
        ),
    ]
    assert reads[0].request_id == "inq-1"


def test_a_regulators_epcis_query_leaves_an_entry():
    # given
    regulator_org = OrganisationFactory(role=Role.REGULATOR)
    regulator = client_for(member(regulator_org, "caac"))
    # when
    response = regulator.get("/epcis/events?EQ_bizStep=shipping")
    # then
    assert response.status_code == 200
    assert entries() == [("read.epcis", "caac", regulator_org.slug, "epcis", [])]
    assert AuditEntry.objects.get().detail == {
        "method": "GET",
        "path": "/epcis/events",
        "query": "EQ_bizStep=shipping",
        "status": 200,
    }


def test_a_members_reads_and_a_regulators_refused_write_leave_no_entry(world):
    # given
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    before = entries()
    # when
    reads = [
        world.qa.get("/api/v1/findings/").status_code,
        world.qa.get(f"/api/v1/runs/{world.finding['run']}/units/").status_code,
        world.qa.get("/epcis/events").status_code,
    ]
    refused = regulator.post(f"/api/v1/investigations/{world.finding['investigation']}/runs/")
    # then
    assert reads == [200, 200, 200]
    assert refused.status_code == 403
    assert entries() == before


# --- the trail is append-only -----------------------------------------------------------------------------


@pytest.mark.postgresql  # the append-only trigger exists on PostgreSQL only (SQLite: the code never updates entries)
def test_postgresql_refuses_to_update_or_delete_an_entry_even_through_a_raw_cursor():
    # given
    entry = audit_record(action="organisation.add", identifiers=["volta"])
    # when / then
    for statement in (
        "UPDATE traceability_auditentry SET action = 'read.api' WHERE id = %s",
        "DELETE FROM traceability_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="the audit trail is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    entry.refresh_from_db()
    assert (entry.action, entry.identifiers) == ("organisation.add", ["volta"])


def test_the_admin_lists_entries_read_only_for_superusers_only(admin_client, client):
    # given
    entry = audit_record(action="organisation.add", identifiers=["volta"])
    staff = get_user_model().objects.create_user(username="staff", is_staff=True)
    client.force_login(staff)
    # when
    listing = admin_client.get(reverse("admin:traceability_auditentry_changelist"))
    add = admin_client.get(reverse("admin:traceability_auditentry_add"))
    change = admin_client.post(reverse("admin:traceability_auditentry_change", args=[entry.pk]), {"action": "read.api"})
    delete = admin_client.post(reverse("admin:traceability_auditentry_delete", args=[entry.pk]), {"post": "yes"})
    by_staff = client.get(reverse("admin:traceability_auditentry_changelist"))
    # then
    assert (listing.status_code, add.status_code, change.status_code, delete.status_code) == (200, 403, 403, 403)
    assert "delete_selected" not in listing.text
    assert by_staff.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk, action="organisation.add").count() == 1


# --- reading the trail ------------------------------------------------------------------------------------


@pytest.fixture()
def two_brands():
    """Two brands, each with one finding recorded by its QA engineer, and a regulator."""
    a, b = build_world(), build_world()
    for w, name in ((a, "qa-a"), (b, "qa-b")):
        raise_finding(client_for(member(w.brand, name)), urn(w.m1.identity))
    return a, b


def test_an_organisations_admins_read_its_entries_and_not_anothers(two_brands):
    # given
    a, b = two_brands
    admin = client_for(with_role(a.brand, MemberRole.ADMIN, "admin-a"))
    # when
    response = admin.get("/api/v1/audit/")
    # then
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["action"], r["username"], r["organisation"], r["source"]) for r in results] == [
        ("finding.record", "qa-a", a.brand.slug, "api")
    ]
    assert set(results[0]) == {
        "id",
        "at",
        "action",
        "username",
        "organisation",
        "source",
        "request_id",
        "identifiers",
        "detail",
    }
    # and asking for the other brand's entries by name answers none of them
    assert admin.get(f"/api/v1/audit/?organisation={b.brand.slug}").json()["results"] == []


@pytest.mark.parametrize("role", [MemberRole.VIEWER, MemberRole.QA])
def test_viewers_and_qa_engineers_may_not_read_the_trail(two_brands, role):
    # given
    a, _ = two_brands
    client = client_for(with_role(a.brand, role, "someone"))
    # when
    response = client.get("/api/v1/audit/")
    csv_response = client.get("/api/v1/audit/?format=csv")
    # then
    assert (response.status_code, response.json()["code"]) == (403, "not_an_admin")
    assert (csv_response.status_code, csv_response["Content-Type"]) == (403, "application/json")
    assert csv_response.json()["code"] == "not_an_admin"


def test_a_regulator_reads_every_organisations_entries_and_its_reading_is_audited(two_brands):
    # given
    a, b = two_brands
    regulator_org = OrganisationFactory(role=Role.REGULATOR)
    regulator = client_for(member(regulator_org, "samr"))
    # when
    response = regulator.get("/api/v1/audit/?action=finding.record")
    # then
    assert response.status_code == 200
    assert [(r["username"], r["organisation"]) for r in response.json()["results"]] == [
        ("qa-b", b.brand.slug),
        ("qa-a", a.brand.slug),
    ]
    assert entries(action="read.api") == [("read.api", "samr", regulator_org.slug, "api", [])]


def test_the_trail_is_filtered_by_action_and_time_and_paged_by_cursor(two_brands):
    # given entries at known times
    a, _ = two_brands
    admin = client_for(with_role(a.brand, MemberRole.ADMIN, "admin-a"))
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    for day in range(3):
        AuditEntry.objects.create(
            action="run.start", organisation=a.brand, at=start + dt.timedelta(days=day), source="cli"
        )
    # when
    window = admin.get(
        "/api/v1/audit/", {"action": "run.start", "since": "2025-06-02T00:00:00Z", "until": "2025-06-03T00:00:00Z"}
    )
    first = admin.get("/api/v1/audit/", {"action": "run.start", "limit": 2})
    second = admin.get(first.json()["next"])
    bad = admin.get("/api/v1/audit/", {"action": "nothing"})
    # then
    assert [r["at"] for r in window.json()["results"]] == ["2025-06-02T00:00:00Z"]
    assert [r["at"][:10] for r in first.json()["results"]] == ["2025-06-03", "2025-06-02"]
    assert [r["at"][:10] for r in second.json()["results"]] == ["2025-06-01"]
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (400, "invalid_choice", "action")


@pytest.mark.parametrize("ask", [{"format": "csv"}, {"HTTP_ACCEPT": "text/csv"}])
def test_the_trail_exports_as_csv_with_a_header_and_the_rows(two_brands, ask):
    # given
    a, _ = two_brands
    admin = client_for(with_role(a.brand, MemberRole.ADMIN, "admin-a"))
    finding = AuditEntry.objects.get(organisation=a.brand)
    # when
    query = {k: v for k, v in ask.items() if k == "format"}
    headers = {k: v for k, v in ask.items() if k != "format"}
    response = admin.get("/api/v1/audit/", query, **headers)
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="audit.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["at", "action", "username", "organisation", "source", "request_id", "identifiers", "detail"],
        [
            finding.at.isoformat(),
            "finding.record",
            "qa-a",
            a.brand.slug,
            "api",
            finding.request_id,
            json.dumps(finding.identifiers),
            json.dumps(finding.detail, sort_keys=True),
        ],
    ]


def test_audit_export_writes_the_trail_as_csv_to_standard_output(two_brands):
    # given
    a, b = two_brands
    out = io.StringIO()
    # when
    call_command("audit", "export", "--organisation", b.brand.slug, "--since", "2000-01-01", stdout=out)
    # then
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["at", "action", "username", "organisation", "source", "request_id", "identifiers", "detail"]
    assert [(r[1], r[2], r[3]) for r in rows[1:]] == [("finding.record", "qa-b", b.brand.slug)]


def test_audit_export_refuses_an_unknown_organisation():
    with pytest.raises(CommandError, match="no organisation has the slug 'nobody'"):
        call_command("audit", "export", "--organisation", "nobody", stdout=io.StringIO())
