"""Data migrations, run on the test database: from the migration before to the one that moves data."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = (
    ("traceability", "0010_epcis_event_indexes_read_by_queries"),
    ("traceability", "0011_finding_attachments"),
)
EVENT_ID_PER_OWNER = ("traceability", "0021_event_id_per_owner")
# The organisations of these tests have the one ``role`` column of before the set of roles.
SUPPLIERS_ONE_ROLE = ("suppliers", "0003_membership_role")


@pytest.mark.django_db(transaction=True)
def test_a_findings_single_attachment_becomes_its_first_attachment(settings, tmp_path):
    # given a finding of the schema before, with a file in its one ``attachment`` field
    settings.MEDIA_ROOT = tmp_path
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([BEFORE, SUPPLIERS_ONE_ROLE])
    old = executor.loader.project_state([BEFORE, SUPPLIERS_ONE_ROLE]).apps
    organisation = old.get_model("suppliers", "Organisation").objects.create(
        name="Volta", slug="volta", role="brand", country="DE"
    )
    name = default_storage.save("findings/2025/05/xrf.pdf", ContentFile(b"%PDF-1.7 report"))
    finding = old.get_model("traceability", "Finding").objects.create(
        owner=organisation,
        subject_kind="supplier",
        subject_organisation=organisation,
        category="metallic_debris",
        severity="high",
        description="Fe",
        raised_at="2025-05-20T00:00:00Z",
        attachment=name,
    )
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then
    new = executor.loader.project_state(latest).apps
    (attachment,) = new.get_model("traceability", "FindingAttachment").objects.filter(finding_id=finding.pk)
    assert (attachment.file.name, attachment.name, attachment.content_type, attachment.size) == (
        name,
        "xrf.pdf",
        "application/pdf",
        len(b"%PDF-1.7 report"),
    )
    assert attachment.sha256 == hashlib.sha256(b"%PDF-1.7 report").hexdigest()


@pytest.mark.django_db(transaction=True)
def test_capture_documents_move_into_the_storage_and_each_export_job_gets_its_export(settings, tmp_path):
    # given the schema before: a capture whose document is in the data folder, a finished export
    # whose file is in MEDIA_ROOT, and a running one that has written its first part
    settings.VAR_DIR, settings.MEDIA_ROOT = tmp_path / "var", tmp_path / "media"
    (settings.VAR_DIR / "epcis").mkdir(parents=True)
    (settings.VAR_DIR / "epcis" / "5e1f").write_bytes(b'{"type": "EPCISDocument"}')
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([AFTER, SUPPLIERS_ONE_ROLE])
    old = executor.loader.project_state([AFTER, SUPPLIERS_ONE_ROLE]).apps
    organisation = old.get_model("suppliers", "Organisation").objects.create(
        name="Volta", slug="volta", role="brand", country="DE"
    )
    capture = old.get_model("traceability", "EpcisCapture").objects.create(
        owner=organisation, document_path="epcis/5e1f"
    )
    finding = old.get_model("traceability", "Finding").objects.create(
        owner=organisation,
        subject_kind="supplier",
        subject_organisation=organisation,
        category="metallic_debris",
        severity="high",
        description="Fe",
        raised_at="2025-05-20T00:00:00Z",
    )
    investigation = old.get_model("traceability", "Investigation").objects.create(
        owner=organisation, finding=finding, opened_at="2025-05-20T00:00:00Z"
    )
    Job = old.get_model("traceability", "Job")
    run = old.get_model("traceability", "TraceRun").objects.create(
        investigation=investigation, job=Job.objects.create(kind="trace", status="succeeded"), position=1
    )
    params = {"investigation_id": investigation.pk, "trace_run_id": run.pk}
    finished = Job.objects.create(kind="export", status="succeeded", params={**params, "format": "csv"})
    finished.result = {"file": default_storage.save(f"exports/{finished.pk}.csv", ContentFile(b"serial\n")), "units": 0}
    finished.save()
    running = Job.objects.create(
        kind="export", status="running", done=3, params={**params, "format": "json"}, result={"after": 9}
    )
    part = default_storage.save(f"exports/{running.pk}.parts/{0:020d}.jsonl", ContentFile(b"{}\n"))
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then
    new = executor.loader.project_state(latest).apps
    moved = new.get_model("traceability", "EpcisCapture").objects.get(pk=capture.pk)
    with moved.document.open("rb") as document:
        assert (moved.document.name, document.read()) == ("epcis/5e1f", b'{"type": "EPCISDocument"}')
    assert default_storage.path(moved.document.name) == str(settings.MEDIA_ROOT / "epcis" / "5e1f")
    exports = new.get_model("traceability", "Export").objects.order_by("format")
    assert [(e.job_id, e.run_id, e.format, e.file.name) for e in exports] == [
        (finished.pk, run.pk, "csv", f"exports/{finished.pk}.csv"),
        (running.pk, run.pk, "json", ""),
    ]
    assert new.get_model("traceability", "Job").objects.get(pk=running.pk).result == {"after": 9, "parts": [part]}


@pytest.mark.django_db(transaction=True)
def test_an_organisations_one_role_becomes_its_set_of_roles():
    # given two organisations of the schema with one role each
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([SUPPLIERS_ONE_ROLE])
    old = executor.loader.project_state([SUPPLIERS_ONE_ROLE]).apps
    Organisation = old.get_model("suppliers", "Organisation")
    volta = Organisation.objects.create(name="Volta", slug="volta", role="brand", country="DE")
    samr = Organisation.objects.create(name="SAMR", slug="samr", role="regulator", country="CN")
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then
    new = executor.loader.project_state(latest).apps
    held = new.get_model("suppliers", "OrganisationRole").objects.order_by("organisation_id")
    assert [(r.organisation_id, r.role) for r in held] == [(volta.pk, "brand"), (samr.pk, "regulator")]


@pytest.mark.django_db(transaction=True)
def test_drf_tokens_become_hashed_api_tokens_of_the_users_membership_and_their_keys_are_deleted():
    # given the schema of one membership per user, and DRF's token table holding a plain key
    before = ("suppliers", "0004_organisation_roles")
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps
    organisation = old.get_model("suppliers", "Organisation").objects.create(name="Volta", slug="volta")
    user = old.get_model("auth", "User").objects.create(username="mes")
    old.get_model("suppliers", "Membership").objects.create(user=user, organisation=organisation, role="qa")
    key = "a" * 40
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone,"
            " user_id integer NOT NULL)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, "2025-01-02 03:04:05+00:00", user.pk])
    try:
        # when
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        # then
        new = executor.loader.project_state(latest).apps
        (token,) = new.get_model("suppliers", "ApiToken").objects.values("key_hash", "scope", "membership__user_id")
        assert token == {
            "key_hash": hashlib.sha256(key.encode()).hexdigest(),
            "scope": "write",
            "membership__user_id": user.pk,
        }
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone() == (0,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")


@pytest.mark.django_db(transaction=True)
def test_every_regulator_keeps_reading_the_whole_ledger_with_an_all_grant():
    # given a regulator and a brand of the schema before grants
    before = [("traceability", "0016_audit_token_revoke"), ("suppliers", "0005_memberships_and_api_tokens")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Organisation, OrganisationRole = (
        old.get_model("suppliers", "Organisation"),
        old.get_model("suppliers", "OrganisationRole"),
    )
    samr, volta = Organisation.objects.create(name="SAMR", slug="samr"), Organisation.objects.create(name="V", slug="v")
    OrganisationRole.objects.create(organisation=samr, role="regulator")
    OrganisationRole.objects.create(organisation=volta, role="brand")
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then
    new = executor.loader.project_state(latest).apps
    grants = new.get_model("traceability", "Grant").objects.values_list("regulator_id", "scope", "revoked_at")
    assert list(grants) == [(samr.pk, "all", None)]


@pytest.mark.django_db(transaction=True)
def test_each_stored_event_keeps_its_captures_owner_and_event_ids_become_unique_per_owner():
    # given an event of the schema before (whatever migration 0021 follows once rewired)
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    before = [parent.key for parent in executor.loader.graph.node_map[EVENT_ID_PER_OWNER].parents]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Organisation = old.get_model("suppliers", "Organisation")
    volta, other = (Organisation.objects.create(name=n, slug=n.lower()) for n in ("Volta", "Other"))
    Capture = old.get_model("traceability", "EpcisCapture")
    captures = [Capture.objects.create(owner=org, document=f"epcis/{org.slug}") for org in (volta, other)]
    event = {
        "event_id": "urn:uuid:e1",
        "type": "ObjectEvent",
        "event_time": "2024-03-01T08:00:00Z",
        "time_zone_offset": "+00:00",
        "record_time": "2024-03-01T08:00:00Z",
        "body": {},
        "recorded_position_id": 1,
    }
    old.get_model("traceability", "EpcisEvent").objects.create(capture=captures[0], **event)
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then it is Volta's, and another organisation may store an event with its eventID
    new = executor.loader.project_state(latest).apps
    Event = new.get_model("traceability", "EpcisEvent")
    Event.objects.create(capture_id=captures[1].pk, owner_id=other.pk, **event)
    stored = Event.objects.order_by("pk").values_list("event_id", "owner_id")
    assert list(stored) == [("urn:uuid:e1", volta.pk), ("urn:uuid:e1", other.pk)]
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(capture_id=captures[1].pk, owner_id=other.pk, **event)


@pytest.mark.django_db(transaction=True)
def test_existing_members_fill_the_party_roll_up_per_segment_and_owner_of_the_unit():
    # given a segment holding two brands' units (three member rows, one unit twice) before the roll-up
    before = [("traceability", "0018_segment_owner"), ("suppliers", "0005_memberships_and_api_tokens")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Organisation, Unit = old.get_model("suppliers", "Organisation"), old.get_model("packs", "Unit")
    first, second = Organisation.objects.create(name="A", slug="a"), Organisation.objects.create(name="B", slug="b")
    units = [
        Unit.objects.create(owner=owner, identity=f"own-serial:{owner.slug}:{n}", serial=n, product_model_id=1)
        for owner, n in ((first, "1"), (first, "2"), (second, "3"))
    ]
    segment = old.get_model("traceability", "Segment").objects.create(input_key="k", exposure="definite")
    SegmentMember = old.get_model("traceability", "SegmentMember")
    for unit, record in ((units[0], 1), (units[0], 2), (units[2], 3)):
        SegmentMember.objects.create(segment_id=segment.pk, unit_id=unit.pk, transformation_id=record)
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then
    new = executor.loader.project_state(latest).apps
    rolled = new.get_model("traceability", "SegmentOwner").objects.values_list(
        "segment_id", "owner_id", "unit_count", "first_unit_id", "last_unit_id"
    )
    assert sorted(rolled) == [
        (segment.pk, first.pk, 2, units[0].pk, units[0].pk),
        (segment.pk, second.pk, 1, units[2].pk, units[2].pk),
    ]
