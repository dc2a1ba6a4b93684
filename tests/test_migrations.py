"""Data migrations, run on the test database: from the migration before to the one that moves data."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = (
    ("traceability", "0010_epcis_event_indexes_read_by_queries"),
    ("traceability", "0011_finding_attachments"),
)


@pytest.mark.django_db(transaction=True)
def test_a_findings_single_attachment_becomes_its_first_attachment(settings, tmp_path):
    # given a finding of the schema before, with a file in its one ``attachment`` field
    settings.MEDIA_ROOT = tmp_path
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
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
