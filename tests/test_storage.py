"""Files the ledger keeps go through Django's storage: web and worker share no folder, only the storage.

Under docker-compose the web and worker containers each have their own LEDGER_VAR_DIR; what one
writes, the other reads only through the default storage (a shared volume, or an object store).
Here the storage is Django's in-memory one, and each "process" runs with data and media folders of
its own, which must stay empty.
"""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings

from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, run_job, traced, urn
from tests.test_csv_import import _assignment, _csv
from tests.test_epcis_capture import document, transformation, units_of
from tests.trace_world import build_world
from traceability.core.jobs import job_step
from traceability.core.models import Job
from traceability.events.models import EpcisCapture
from traceability.investigations import exports
from traceability.investigations.models import Export

pytestmark = pytest.mark.django_db


@pytest.fixture()
def object_store(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}


@pytest.fixture()
def web(tmp_path, object_store):
    return _process(tmp_path / "web")


@pytest.fixture()
def worker(tmp_path, object_store):
    return _process(tmp_path / "worker")


def _process(folder: Path) -> override_settings:
    """The settings of one process: its own data folder and media folder."""
    (folder / "media").mkdir(parents=True)
    return override_settings(VAR_DIR=folder, MEDIA_ROOT=folder / "media")


def _files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*") if path.is_file())


def _stored(folder: str) -> list[str]:
    """Every file under ``folder`` in the default storage, by name."""
    folders, files = default_storage.listdir(folder)
    return sorted([f"{folder}/{name}" for name in files] + [n for sub in folders for n in _stored(f"{folder}/{sub}")])


def test_a_capture_received_by_the_web_is_applied_by_a_worker_that_shares_only_the_storage(web, worker, tmp_path):
    # given
    client = client_for(member(OrganisationFactory()))
    body = json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1", "U2"]))).encode()
    # when the web receives the document and a worker runs its job
    with web:
        response = client.generic("POST", "/epcis/capture", body, content_type="application/ld+json")
    capture = EpcisCapture.objects.get(pk=int(response.headers["Location"].rsplit("/", 1)[1]))
    with worker:
        job_step(job_id=capture.job_id, expected_done=0, enqueue=lambda *_: None)
    # then
    capture.refresh_from_db()
    assert (response.status_code, capture.job.status, capture.captured, capture.problems) == (202, "succeeded", 1, [])
    assert units_of("L1") == {"U1": "definite", "U2": "definite"}
    assert _stored("epcis") == [capture.document.name]
    with default_storage.open(capture.document.name, "rb") as kept:
        assert kept.read() == body  # kept as it arrived
    assert _files(tmp_path) == []


def test_a_csv_file_uploaded_to_the_web_is_applied_by_a_worker_that_shares_only_the_storage(web, worker, tmp_path):
    # given
    client = client_for(member(OrganisationFactory()))
    data = _csv("assignments", _assignment("PB1", "CL1"))
    # when
    with web:
        response = client.generic("POST", "/api/v1/csv/assignments/", data, content_type="text/csv")
    capture = EpcisCapture.objects.get(pk=response.json()["capture"])
    with worker:
        job_step(job_id=capture.job_id, expected_done=0, enqueue=lambda *_: None)
    # then
    capture.refresh_from_db()
    assert (response.status_code, capture.job.status, capture.captured) == (202, "succeeded", 1)
    assert units_of("CL1") == {"PB1": "definite"}
    assert _stored("epcis") == [capture.document.name]
    assert _files(tmp_path) == []


def test_an_export_written_by_a_worker_is_downloaded_from_the_web_through_the_storage(
    web, worker, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    # given pages of 3 units, so the 7 affected units are written as three parts
    monkeypatch.setattr(exports, "EXPORT_PAGE", 3)
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    with web:
        queued = client.post(
            f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"}, format="json"
        ).json()
    # when a worker writes it and the web serves it
    with worker, django_capture_on_commit_callbacks(execute=True):
        run_job(Job.objects.get(pk=queued["id"]))
    with web:
        job = client.get(f"/api/v1/jobs/{queued['id']}/").json()
        response = client.get(job["download"], HTTP_ACCEPT="text/csv")
        text = b"".join(response.streaming_content).decode()
    # then
    export = Export.objects.get(job_id=queued["id"])
    assert (response.status_code, job["status"], export.run_id, export.format) == (
        200,
        "succeeded",
        created["run"],
        "csv",
    )
    assert [r["serial"] for r in csv.DictReader(io.StringIO(text))] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    assert _stored("exports") == [f"exports/{queued['id']}.csv"] == [export.file.name]  # the parts are gone
    assert _files(tmp_path) == []


@pytest.mark.worker
def test_a_worker_process_with_its_own_data_folder_applies_captures_and_writes_exports(
    worker_process, wait_until, settings, tmp_path
):
    # given a worker process whose LEDGER_VAR_DIR is not this process's; only MEDIA_ROOT is shared
    settings.VAR_DIR, settings.MEDIA_ROOT = tmp_path / "web", tmp_path / "shared"
    worker_process(MEDIA_ROOT=str(settings.MEDIA_ROOT))
    w = build_world()
    client = client_for(member(w.brand))

    def finished(job_id):
        return Job.objects.get(pk=job_id).status in ("succeeded", "failed")

    # when the web receives a document and asks for an export, and the worker does the work
    body = json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]))).encode()
    location = client.generic("POST", "/epcis/capture", body, content_type="application/ld+json").headers["Location"]
    capture = EpcisCapture.objects.get(pk=int(location.rsplit("/", 1)[1]))
    created = raise_finding(client, urn(w.m1.identity)).json()
    run_job_id = client.get(f"/api/v1/runs/{created['run']}/").json()["job"]["id"]
    wait_until(lambda: finished(capture.job_id) and finished(run_job_id), what="the capture and the trace run")
    queued = client.post(
        f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"}, format="json"
    ).json()
    wait_until(lambda: finished(queued["id"]), what="the export")
    # then
    capture.refresh_from_db()
    assert (capture.job.status, capture.job.error, capture.captured) == ("succeeded", "", 1)
    response = client.get(f"/api/v1/jobs/{queued['id']}/download/", HTTP_ACCEPT="text/csv")
    text = b"".join(response.streaming_content).decode()
    assert len(list(csv.DictReader(io.StringIO(text)))) == 7
    assert _files(settings.MEDIA_ROOT) == [
        settings.MEDIA_ROOT / capture.document.name,
        settings.MEDIA_ROOT / "exports" / f"{queued['id']}.csv",
    ]
