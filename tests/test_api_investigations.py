"""GET /investigations/{id}/, its transitions and re-runs."""

import pytest

from tests.jobs_support import run_job
from tests.test_api_support import client_for, iso, member, more_units, raise_finding, traced, urn, written
from tests.trace_world import build_world
from traceability.core.models import JobStatus
from traceability.investigations.models import Investigation, TraceRun

pytestmark = pytest.mark.django_db


def test_an_investigation_shows_its_status_preview_latest_run_and_history():
    # given a finding whose run has finished
    w = build_world()
    client = client_for(member(w.brand, "qa"))
    created = traced(client, w)
    investigation = Investigation.objects.get()
    run = TraceRun.objects.select_related("job").get()
    # when
    response = client.get(f"/api/v1/investigations/{investigation.pk}/")
    # then
    body = response.json()
    assert response.status_code == 200
    assert {k: body[k] for k in ("id", "owner", "status", "opened_by", "preview")} == {
        "id": investigation.pk,
        "owner": w.brand.slug,
        "status": "traced",
        "opened_by": "qa",
        "preview": {"position": 1, "definite_units": 4, "potential_units": 3, "consignees": 2, "others": []},
    }
    assert body["finding"] == {k: v for k, v in created.items() if k not in ("preview", "run")} | {"status": "traced"}
    assert body["latest_run"] == {
        "id": run.pk,
        "investigation": investigation.pk,
        "position": 1,
        "previous": None,
        "created_at": iso(run.created_at),
        "definite_units": 4,
        "potential_units": 3,
        "consignees": 2,
        "others": [],
        "diff": None,  # a first run: nothing to compare
        "job": {
            "id": str(run.job.pk),
            "kind": "trace_run",
            "status": "succeeded",
            "phase": "traced",
            "percent": 100,
            # a trace run's job counts the whole trace's parts, others' included: a party reads it in percent
            "done": 100,
            "total": 100,
            "error": "",
            "created_at": iso(run.job.created_at),
            "started_at": iso(run.job.started_at),
            "finished_at": iso(run.job.finished_at),
            "download": None,
        },
    }
    assert [(t["from_status"], t["to_status"], t["by"], t["note"]) for t in body["transitions"]] == [
        ("", "open", "qa", "finding recorded"),
        ("open", "tracing", "qa", ""),
        ("tracing", "traced", None, f"run {run.pk}"),
    ]


def test_a_queued_run_shows_its_job_waiting():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = raise_finding(client, urn(w.m1.identity)).json()
    # when
    body = client.get(f"/api/v1/investigations/{created['investigation']}/").json()
    # then
    assert body["status"] == "tracing"
    run = body["latest_run"]
    assert (run["definite_units"], run["job"]["status"], run["job"]["percent"]) == (None, "queued", 0)


def test_a_traced_investigation_goes_under_review_then_is_closed():
    # given
    w = build_world()
    client = client_for(member(w.brand, "qa"))
    investigation = traced(client, w)["investigation"]
    url = f"/api/v1/investigations/{investigation}/transitions/"
    # when
    review = client.post(url, {"to": "under_review", "note": "debris confirmed by CT"}, format="json")
    closed = client.post(url, {"to": "closed"}, format="json")
    # then
    assert (review.status_code, review.json()["status"]) == (200, "under_review")
    assert (closed.status_code, closed.json()["status"]) == (200, "closed")
    assert [(t["to_status"], t["by"], t["note"]) for t in closed.json()["transitions"][-2:]] == [
        ("under_review", "qa", "debris confirmed by CT"),
        ("closed", "qa", ""),
    ]
    assert Investigation.objects.get().status == "closed"


def test_a_transition_the_service_refuses_is_a_409_with_its_message_and_changes_nothing():
    # given an investigation still tracing
    w = build_world()
    client = client_for(member(w.brand))
    investigation = raise_finding(client, urn(w.m1.identity)).json()["investigation"]
    before = written()
    # when
    response = client.post(f"/api/v1/investigations/{investigation}/transitions/", {"to": "closed"}, format="json")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": f"investigation #{investigation} cannot go from tracing to closed (allowed: none)",
    }
    assert written() == before
    assert Investigation.objects.get().status == "tracing"


@pytest.mark.parametrize("to", ["traced", "tracing", "open", "lost"])
def test_statuses_set_by_runs_cannot_be_set_by_hand(to):
    # given
    w = build_world()
    client = client_for(member(w.brand))
    investigation = traced(client, w)["investigation"]
    before = written()
    # when
    response = client.post(f"/api/v1/investigations/{investigation}/transitions/", {"to": to}, format="json")
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid_choice", "to")
    assert written() == before


def test_a_rerun_starts_a_run_after_the_previous_one_and_reports_the_difference(django_capture_on_commit_callbacks):
    # given a traced investigation, then one more unit built from module lot MOD1
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    added = more_units(w, 1)
    # when
    with django_capture_on_commit_callbacks() as submitted:
        response = client.post(f"/api/v1/investigations/{created['investigation']}/runs/")
    # then
    body = response.json()
    assert response.status_code == 202
    assert (body["previous"], body["position"], body["job"]["status"], len(submitted)) == (
        created["run"],
        2,
        "queued",
        1,
    )
    assert Investigation.objects.get().status == "tracing"
    # when its job runs
    run_job(TraceRun.objects.get(pk=body["id"]).job)
    # then
    run = client.get(f"/api/v1/runs/{body['id']}/").json()
    assert (run["definite_units"], run["potential_units"], run["job"]["status"]) == (5, 3, JobStatus.SUCCEEDED)
    # its owner sees its own new unit; not the whole diff's counts, which take in others' units
    assert {k: run["diff"][k] for k in ("added", "gone", "exposure_changed", "added_sample")} == {
        "added": None,
        "gone": None,
        "exposure_changed": None,
        "added_sample": added,
    }


def test_a_rerun_while_tracing_is_refused_and_changes_nothing():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = raise_finding(client, urn(w.m1.identity)).json()
    before = written()
    # when
    response = client.post(f"/api/v1/investigations/{created['investigation']}/runs/")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "trace_in_progress",
        "message": f"run {created['run']} of investigation #{created['investigation']} is still tracing",
    }
    assert written() == before


def test_a_closed_investigation_is_not_traced_again():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    investigation = traced(client, w)["investigation"]
    for to in ("under_review", "closed"):
        client.post(f"/api/v1/investigations/{investigation}/transitions/", {"to": to}, format="json")
    before = written()
    # when
    response = client.post(f"/api/v1/investigations/{investigation}/runs/")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": f"investigation #{investigation} cannot go from closed to tracing (allowed: none, it is closed)",
    }
    assert written() == before


def test_an_unknown_investigation_is_404():
    response = client_for(member(build_world().brand)).get("/api/v1/investigations/999999/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
