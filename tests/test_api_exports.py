"""POST /investigations/{id}/exports/, the ``export`` job run chunk by chunk, GET /jobs/{id}/ and the file."""

import csv
import io
import json

import pytest
from django.db import transaction

from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, traced, urn, written
from tests.trace_world import build_world
from traceability.core.jobs import job_step
from traceability.core.models import Job, JobStatus
from traceability.investigations import exports

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _export(client, investigation, fmt):
    response = client.post(f"/api/v1/investigations/{investigation}/exports/", {"format": fmt}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def _download(client, job_id):
    response = client.get(f"/api/v1/jobs/{job_id}/download/", HTTP_ACCEPT="text/csv, application/json")
    assert response.status_code == 200
    return response, b"".join(response.streaming_content).decode()


def test_a_csv_export_runs_as_a_job_and_is_downloaded(django_capture_on_commit_callbacks, media):
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    gtin = w.work_order.product_model.gtin
    # when
    with django_capture_on_commit_callbacks() as submitted:
        queued = _export(client, created["investigation"], "csv")
    # then the job is queued and handed to the broker on commit
    assert (queued["kind"], queued["status"], queued["total"], queued["download"], len(submitted)) == (
        "export",
        "queued",
        7,
        None,
        1,
    )
    # when the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        run_job(Job.objects.get(pk=queued["id"]))
    job = client.get(f"/api/v1/jobs/{queued['id']}/").json()
    response, text = _download(client, queued["id"])
    # then
    assert (job["status"], job["percent"], job["done"], job["phase"]) == ("succeeded", 100, 7, "exported")
    assert job["download"] == f"http://testserver/api/v1/jobs/{queued['id']}/download/"
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == f'attachment; filename="investigation-{created["investigation"]}-csv.csv"'
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["serial"], r["exposure"], r["consignee"], r["ship_date"]) for r in rows] == [
        ("U1", "definite", w.d1.slug, "2024-03-03"),
        ("U2", "definite", w.d1.slug, "2024-03-03"),
        ("U3", "definite", w.d1.slug, "2024-03-03"),
        ("U4", "potential", w.d2.slug, "2024-03-04"),
        ("U5", "potential", w.d2.slug, "2024-03-04"),
        ("U6", "potential", w.d2.slug, "2024-03-04"),
        ("U8", "definite", "", ""),
    ]
    assert rows[1] == {
        "serial": "U2",
        "gtin": gtin,
        "identity": f"sgtin:{gtin}:U2",
        "epc": urn(f"sgtin:{gtin}:U2"),
        "exposure": "definite",
        "path": f"{w.m1.identity} → {w.m2.identity} by calcination (definite); "
        f"{w.m2.identity} → {w.c1.identity} by cell line 1 (definite); "
        f"{w.c1.identity} → {w.mod1.identity} by module line (definite); "
        f"{w.mod1.identity} → sgtin:{gtin}:U2 by build U2 (definite)",
        "consignee": w.d1.slug,
        "ship_date": "2024-03-03",
    }
    assert [p.name for p in (media / "exports").iterdir()] == [f"{queued['id']}.csv"]  # the parts are gone


def test_a_json_export_is_written_a_page_per_chunk_with_progress_on_the_job(monkeypatch):
    # given pages of 3 units, so the 7 affected units take three chunks
    monkeypatch.setattr(exports, "EXPORT_PAGE", 3)
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    queued = _export(client, created["investigation"], "json")
    followups = []
    # when the first chunk runs
    job_step(job_id=queued["id"], expected_done=0, enqueue=lambda job_id, done: followups.append(done))
    # then the job row shows the progress and the next chunk is enqueued
    first = client.get(f"/api/v1/jobs/{queued['id']}/").json()
    assert (first["status"], first["done"], first["total"], first["percent"], first["phase"]) == (
        "running",
        3,
        7,
        42,
        "exported 3 of 7 units",
    )
    assert (followups, first["download"]) == ([3], None)
    # when the rest runs
    job_step(job_id=queued["id"], expected_done=3, enqueue=lambda job_id, done: followups.append(done))
    job_step(job_id=queued["id"], expected_done=6, enqueue=lambda job_id, done: followups.append(done))
    # then
    _, text = _download(client, queued["id"])
    document = json.loads(text)
    assert (document["investigation"], document["run"], document["position"]) == (
        created["investigation"],
        created["run"],
        1,
    )
    assert [u["serial"] for u in document["units"]] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    units = client.get(f"/api/v1/runs/{created['run']}/units/").json()["results"]
    assert document["units"] == units  # the export says what the API says


def test_a_chunk_done_twice_writes_its_page_once(monkeypatch):
    # given a chunk whose handler ran but whose transaction did not commit (a worker lost mid-chunk)
    monkeypatch.setattr(exports, "EXPORT_PAGE", 3)
    w = build_world()
    client = client_for(member(w.brand))
    queued = _export(client, traced(client, w)["investigation"], "csv")
    exports.export_chunk(Job.objects.get(pk=queued["id"]))
    # when the redelivered message does the chunk again, and the job runs to the end
    run_job(Job.objects.get(pk=queued["id"]))
    # then
    _, text = _download(client, queued["id"])
    assert [r["serial"] for r in csv.DictReader(io.StringIO(text))] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]


def test_a_last_chunk_done_twice_writes_the_file_once(monkeypatch, media, django_capture_on_commit_callbacks):
    # given an export whose last chunk wrote its part and the file, then was lost before it committed
    monkeypatch.setattr(exports, "EXPORT_PAGE", 3)
    w = build_world()
    client = client_for(member(w.brand))
    queued = _export(client, traced(client, w)["investigation"], "csv")
    for done in (0, 3):
        job_step(job_id=queued["id"], expected_done=done, enqueue=lambda *_: None)
    with pytest.raises(WorkerLost), transaction.atomic():
        exports.export_chunk(Job.objects.get(pk=queued["id"]))
        raise WorkerLost
    # when the redelivered message does it again
    with django_capture_on_commit_callbacks(execute=True):
        job_step(job_id=queued["id"], expected_done=6, enqueue=lambda *_: None)
    # then
    _, text = _download(client, queued["id"])
    assert [r["serial"] for r in csv.DictReader(io.StringIO(text))] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    assert [p.name for p in (media / "exports").iterdir()] == [f"{queued['id']}.csv"]  # once, and the parts are gone


class WorkerLost(Exception):
    pass


def test_the_notification_list_names_each_consignee_and_the_affected_units_it_received():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    queued = _export(client, created["investigation"], "notifications")
    # when
    run_job(Job.objects.get(pk=queued["id"]))
    response, text = _download(client, queued["id"])
    # then
    document = json.loads(text)
    assert response["Content-Type"] == "application/json"
    assert document["unshipped_units"] == 1
    assert [
        (c["consignee"], c["name"], c["pgln"], c["units"], c["first_shipped_at"], c["last_shipped_at"])
        for c in document["consignees"]
    ] == [
        (w.d1.slug, w.d1.name, urn(f"pgln:{w.d1.pgln}"), 3, "2024-03-03T08:00:00Z", "2024-03-03T08:00:00Z"),
        (w.d2.slug, w.d2.name, urn(f"pgln:{w.d2.pgln}"), 3, "2024-03-04T08:00:00Z", "2024-03-04T08:00:00Z"),
    ]
    assert [(u["serial"], u["exposure"]) for u in document["consignees"][1]["affected_units"]] == [
        ("U4", "potential"),
        ("U5", "potential"),
        ("U6", "potential"),
    ]


def test_an_investigation_without_a_finished_run_has_nothing_to_export():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    investigation = raise_finding(client, urn(w.m1.identity)).json()["investigation"]
    before = written()
    # when
    response = client.post(f"/api/v1/investigations/{investigation}/exports/", {"format": "csv"}, format="json")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "no_finished_run",
        "message": f"investigation #{investigation} has no finished trace run to export: wait for its run to finish",
    }
    assert written() == before


def test_an_unknown_format_is_refused():
    w = build_world()
    client = client_for(member(w.brand))
    investigation = traced(client, w)["investigation"]
    before = written()
    response = client.post(f"/api/v1/investigations/{investigation}/exports/", {"format": "xlsx"}, format="json")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400,
        "invalid_choice",
        "format",
    )
    assert written() == before


def test_an_export_not_yet_run_has_no_file():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    queued = _export(client, traced(client, w)["investigation"], "csv")
    # when
    response = client.get(f"/api/v1/jobs/{queued['id']}/download/")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "job_not_finished",
        "message": f"export {queued['id']} is queued (0%): no file yet",
    }


def test_an_export_whose_file_is_gone_from_storage_says_so(media):
    # given a finished export whose file was removed from the storage
    w = build_world()
    client = client_for(member(w.brand))
    queued = _export(client, traced(client, w)["investigation"], "json")
    run_job(Job.objects.get(pk=queued["id"]))
    (media / "exports" / f"{queued['id']}.json").unlink()
    # when
    response = client.get(f"/api/v1/jobs/{queued['id']}/download/")
    # then
    assert (response.status_code, response.json()) == (
        404,
        {"code": "no_file", "message": f"the file of export {queued['id']} is gone from storage"},
    )


def test_a_trace_job_has_no_file():
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    job = client.get(f"/api/v1/runs/{created['run']}/").json()["job"]
    response = client.get(f"/api/v1/jobs/{job['id']}/download/")
    assert (response.status_code, response.json()["code"]) == (404, "no_file")
    assert Job.objects.get(pk=job["id"]).status == JobStatus.SUCCEEDED


@pytest.mark.worker
def test_a_finding_traced_and_exported_through_the_broker_and_a_real_worker(celery_worker, wait_until):
    # given
    w = build_world()
    client = client_for(member(w.brand))

    def finished(job_id):
        return Job.objects.get(pk=job_id).status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    # when a finding is recorded, its run traced by the worker, then exported by the worker
    created = raise_finding(client, urn(w.m1.identity)).json()
    run_job_id = client.get(f"/api/v1/runs/{created['run']}/").json()["job"]["id"]
    wait_until(lambda: finished(run_job_id), what="the trace run")
    queued = _export(client, created["investigation"], "csv")
    wait_until(lambda: finished(queued["id"]), what="the export")
    # then
    job = client.get(f"/api/v1/jobs/{queued['id']}/").json()
    assert (job["status"], job["percent"], job["error"]) == ("succeeded", 100, "")
    _, text = _download(client, queued["id"])
    assert len(list(csv.DictReader(io.StringIO(text)))) == 7


def test_a_partys_export_reads_the_rows_of_its_own_units_only(monkeypatch):
    # given the brand's finding on M1, whose run reached the competitor's U9 and U10 as well
    from tests.trace_world import add_competitor
    from traceability.investigations import selectors

    w = add_competitor(build_world())
    client = client_for(member(w.brand))
    queued = _export(client, traced(client, w)["investigation"], "csv")
    asked: list[int] = []
    shipments_of = selectors.unit_shipments

    def recorded(unit_ids):
        asked.extend(unit_ids)
        return shipments_of(unit_ids)

    monkeypatch.setattr(selectors, "unit_shipments", recorded)
    # when
    run_job(Job.objects.get(pk=queued["id"]))
    # then its file is its seven units, and the competitor's were never read whole
    _, text = _download(client, queued["id"])
    assert [r["serial"] for r in csv.DictReader(io.StringIO(text))] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    assert sorted(asked) == sorted(w.u[i] for i in (1, 2, 3, 4, 5, 6, 8))
