"""Capture documents and export files through Django's storage, not the process's own folders.

A capture's document was kept under the data folder (LEDGER_VAR_DIR) and read back from it by
the worker, which under docker-compose has a data folder of its own; an export's file was joined to
MEDIA_ROOT by hand. Now the document is a ``FileField`` (``document_path`` renamed ``document``:
the names stay as they were, ``epcis/<hex>``) and each export job has an ``Export`` whose ``file``
is in the storage.
"""

from pathlib import Path

import django.db.models.deletion
from django.conf import settings
from django.core.files import File
from django.db import migrations, models


def _documents_into_storage(apps, schema_editor):
    """Copy each capture's document from the data folder into the default storage, at its name.

    This runs where ``migrate`` runs: under docker-compose the web, which received the documents.
    A document not found there is left as it is (its capture's job read it already, or never will).
    The copies in the data folder are left for the operator to remove.
    """
    EpcisCapture = apps.get_model("traceability", "EpcisCapture")
    for capture in EpcisCapture.objects.exclude(document="").only("pk", "document").iterator():
        kept = Path(settings.VAR_DIR) / capture.document.name
        storage = capture.document.storage
        if not kept.is_file() or storage.exists(capture.document.name):
            continue
        with kept.open("rb") as document:
            name = storage.save(capture.document.name, File(document))
        if name != capture.document.name:
            EpcisCapture.objects.filter(pk=capture.pk).update(document=name)


def _exports_recorded(apps, schema_editor):
    """Give each export job its Export. A finished one's file is where it was written, relative to
    MEDIA_ROOT, which is the default storage's folder; a running one lists the parts it wrote."""
    Job = apps.get_model("traceability", "Job")
    Export = apps.get_model("traceability", "Export")
    for job in Job.objects.filter(kind="export").iterator():
        export = Export.objects.create(
            job=job, run_id=job.params["trace_run_id"], format=job.params["format"], file=job.result.get("file", "")
        )
        Export.objects.filter(pk=export.pk).update(created_at=job.created_at)
        if job.status in ("queued", "running") and job.done and "parts" not in job.result:
            folder = f"exports/{job.pk}.parts"
            storage = export.file.storage
            names = storage.listdir(folder)[1] if storage.exists(folder) else []
            job.result["parts"] = [f"{folder}/{name}" for name in sorted(names) if name.endswith(".jsonl")]
            job.save(update_fields=["result"])


class Migration(migrations.Migration):
    dependencies = [
        ("traceability", "0011_finding_attachments"),
    ]

    operations = [
        migrations.RenameField(model_name="epciscapture", old_name="document_path", new_name="document"),
        migrations.AlterField(
            model_name="epciscapture",
            name="document",
            field=models.FileField(help_text="The document as received.", max_length=300, upload_to="epcis/%Y/%m/"),
        ),
        migrations.CreateModel(
            name="Export",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "format",
                    models.CharField(
                        choices=[
                            ("csv", "CSV of affected units"),
                            ("json", "JSON of affected units"),
                            ("notifications", "Notification list per consignee (JSON)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("file", models.FileField(blank=True, max_length=300, upload_to="exports/")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "job",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="export", to="traceability.job"
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="exports", to="traceability.tracerun"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.RunPython(_documents_into_storage, migrations.RunPython.noop),
        migrations.RunPython(_exports_recorded, migrations.RunPython.noop),
    ]
