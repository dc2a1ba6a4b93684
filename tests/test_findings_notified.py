"""The material supplier whose lot it is sees the finding (issue 12): findings others recorded about
a party's lots are listed to it read-only, with its share of the result as the access policy scopes
it; what the recorder gathered stays the recorder's."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, traced, urn
from tests.trace_world import add_competitor, build_world
from traceability import genealogy
from traceability.investigations.models import Finding, FindingAttachment, InvestigationTransition, TraceRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Brand's finding on material lot M1 (supplier S1's), traced, with a lab report attached."""
    w = add_competitor(build_world())
    w.brand_client = client_for(member(w.brand, "qa"))
    w.created = traced(w.brand_client, w)
    upload = SimpleUploadedFile("xrf.pdf", b"%PDF-1.7 brand's lab report", content_type="application/pdf")
    attached = w.brand_client.post(
        f"/api/v1/findings/{w.created['id']}/attachments/", {"file": upload}, format="multipart"
    )
    assert attached.status_code == 201
    w.supplier = w.m1.owner
    w.supplier_client = client_for(member(w.supplier, "s1-qa"))
    return w


def supplier_share(w) -> dict:
    """M1's supplier's share of the brand's run: none of the units are its own; its lot went into
    the brand's 4 definite and 3 potential units, and (through the shared cell lot C1) 2 of the
    competitor's: counts of its customers only."""
    return {
        "position": TraceRun.objects.get().position,
        "definite_units": 0,
        "potential_units": 0,
        "consignees": 0,
        "others": [
            {"organisation": w.brand.slug, "definite_units": 4, "potential_units": 3},
            {"organisation": w.other_brand.slug, "definite_units": 2, "potential_units": 0},
        ],
    }


def test_the_supplier_whose_lot_it_is_lists_the_finding_read_only_with_its_share_without_what_is_the_recorders(world):
    # given
    w = world
    # when
    response = w.supplier_client.get("/api/v1/findings/")
    # then
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row == {
        "id": w.created["id"],
        "owner": None,
        "subject": w.created["subject"],
        "window_from": None,
        "window_to": None,
        "category": "metallic_debris",
        "severity": "critical",
        "description": "Fe 45 µm",
        "inspections": [],
        "attachments": [],
        "raised_by": None,
        "raised_at": w.created["raised_at"],
        "investigation": None,
        "status": "traced",
        "inquiry": False,
        "access": "notified",
        "share": supplier_share(w),
    }
    assert response.content.decode().count(w.brand.slug) == 1  # as a customer its lot went to, not the recorder


def test_the_supplier_reads_the_finding_with_its_share_of_the_result_as_the_policy_scopes_it(world):
    # given
    w = world
    # when
    response = w.supplier_client.get(f"/api/v1/findings/{w.created['id']}/")
    # then: none of the units are its own; its lot went into the brand's 4 definite and 3 potential
    # units, and (through the shared cell lot C1) 2 of the competitor's: counts of its customers only
    assert response.status_code == 200
    body = response.json()
    assert body["access"] == "notified"
    assert body["share"] == supplier_share(w)
    serials = [f"U{i}" for i in range(1, 11)]
    assert not set(serials) & set(response.content.decode().split('"'))
    for private in (w.d1.slug, w.d2.slug, w.work_order.number, "xrf.pdf", "s1-qa"):
        assert private not in response.content.decode()


def test_the_recorder_still_reads_its_finding_whole(world):
    # when
    body = world.brand_client.get(f"/api/v1/findings/{world.created['id']}/").json()
    # then
    assert (body["owner"], body["access"], body["share"], body["investigation"]) == (
        world.brand.slug,
        "full",
        None,
        world.created["investigation"],
    )
    assert [a["name"] for a in body["attachments"]] == ["xrf.pdf"]


def test_a_party_whose_lot_the_run_reached_is_told_once_the_run_has_stored_it(world):
    # given a second finding on M1, not traced yet: module lot MOD1 (another organisation's) feeds U1-U3
    w = world
    module_maker = client_for(member(w.mod1.owner))
    created = raise_finding(w.brand_client, urn(w.m1.identity)).json()
    listed = {f["id"] for f in module_maker.get("/api/v1/findings/?about=my_lots").json()["results"]}
    # then the first, traced, is listed to it; the second once its run has finished
    assert listed == {w.created["id"]}
    run_job(TraceRun.objects.get(pk=created["run"]).job)
    listed = {f["id"] for f in module_maker.get("/api/v1/findings/?about=my_lots").json()["results"]}
    assert listed == {w.created["id"], created["id"]}


def test_about_my_lots_lists_only_findings_others_recorded_about_the_callers_lots(world):
    # given the supplier's own finding on its lot
    w = world
    own = raise_finding(w.supplier_client, urn(w.m1.identity))
    assert own.status_code == 201
    # when
    everything = w.supplier_client.get("/api/v1/findings/").json()["results"]
    about = w.supplier_client.get("/api/v1/findings/?about=my_lots").json()["results"]
    # then
    assert sorted((f["id"], f["access"]) for f in everything) == [
        (w.created["id"], "notified"),
        (own.json()["id"], "full"),
    ]
    assert [f["id"] for f in about] == [w.created["id"]]


@pytest.mark.parametrize("party", ["competitor", "competitor_distributor", "distributor", "co_supplier"])
def test_parties_whose_lots_it_is_not_about_do_not_see_the_finding(world, party):
    # given M3's supplier, whose lot went into the same cell lots as M1 but is no part of M1's trace; and
    # the distributor that received the brand's units (findings reach it through consignee lists)
    w = world
    organisation = {
        "competitor": w.other_brand,
        "competitor_distributor": w.other_distributor,
        "distributor": w.d1,
        "co_supplier": w.m3.owner,
    }[party]
    client = client_for(member(organisation))
    # when
    listed = client.get("/api/v1/findings/").json()["results"]
    about = client.get("/api/v1/findings/?about=my_lots").json()["results"]
    detail = client.get(f"/api/v1/findings/{w.created['id']}/")
    # then
    assert listed == about == []
    assert detail.status_code == 404
    assert detail.json()["code"] == "not_found"


def test_the_notified_supplier_writes_nothing_on_the_finding_and_reads_nothing_of_the_investigation(world):
    # given
    w = world
    finding, investigation = w.created["id"], w.created["investigation"]
    attachment = FindingAttachment.objects.get()
    upload = SimpleUploadedFile("mine.txt", b"our own analysis", content_type="text/plain")
    # when
    answers = [
        w.supplier_client.post(f"/api/v1/findings/{finding}/attachments/", {"file": upload}, format="multipart"),
        w.supplier_client.get(f"/api/v1/findings/{finding}/attachments/{attachment.pk}/"),
        w.supplier_client.get(f"/api/v1/investigations/{investigation}/"),
        w.supplier_client.post(
            f"/api/v1/investigations/{investigation}/transitions/", {"to": "closed", "note": "x"}, format="json"
        ),
        w.supplier_client.post(f"/api/v1/investigations/{investigation}/runs/"),
        w.supplier_client.get(f"/api/v1/runs/{w.created['run']}/units/"),
    ]
    # then each answers as for something unknown, and nothing changed
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * len(answers)
    assert FindingAttachment.objects.count() == 1
    assert not InvestigationTransition.objects.filter(to_status="closed").exists()
    assert TraceRun.objects.count() == 1


def test_a_bad_about_value_is_refused_naming_the_parameter(world):
    # when
    response = world.supplier_client.get("/api/v1/findings/?about=everything")
    # then
    assert response.status_code == 400
    assert response.json()["field"] == "about"


def test_listing_findings_about_its_lots_costs_the_same_for_one_finding_or_many(world):
    # given
    w = world

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = w.supplier_client.get("/api/v1/findings/?about=my_lots")
        assert response.status_code == 200
        return len(captured)

    one = queries()
    # when four more findings on the supplier's lot are recorded and traced
    for _ in range(4):
        traced(w.brand_client, w)
    # then
    assert Finding.objects.count() == 5
    assert queries() == one


def test_a_notified_finding_and_the_list_of_them_are_read_with_their_shares_without_tracing(world, monkeypatch):
    # given five findings on the supplier's lot, traced
    w = world
    for _ in range(4):
        traced(w.brand_client, w)

    def no_trace(**_):
        raise AssertionError("a GET traced")

    monkeypatch.setattr(genealogy, "forward_trace", no_trace)
    # when
    listed = w.supplier_client.get("/api/v1/findings/?about=my_lots").json()["results"]
    detail = w.supplier_client.get(f"/api/v1/findings/{w.created['id']}/").json()
    # then each carries the share its run stored when it finished
    assert len(listed) == 5
    assert all(
        f["share"]["others"][0] == {"organisation": w.brand.slug, "definite_units": 4, "potential_units": 3}
        for f in listed
    )
    assert detail["share"] == next(f["share"] for f in listed if f["id"] == w.created["id"])


def test_a_run_finished_before_shares_were_stored_shows_none_in_the_list_and_is_counted_in_the_findings_answer(
    world,
):
    # given the run's shares unstored, as a run finished before they were kept
    w = world
    TraceRun.objects.update(shares=None)
    # when
    (listed,) = w.supplier_client.get("/api/v1/findings/").json()["results"]
    detail = w.supplier_client.get(f"/api/v1/findings/{w.created['id']}/").json()
    # then
    assert listed["share"] is None
    assert detail["share"]["others"] == [
        {"organisation": w.brand.slug, "definite_units": 4, "potential_units": 3},
        {"organisation": w.other_brand.slug, "definite_units": 2, "potential_units": 0},
    ]


def test_a_run_stores_the_share_of_each_party_told_of_its_finding_and_of_no_one_else(world):
    # given the brand's finding on M1: M1's supplier, and the makers of the lots its units were reached by
    w = world
    # when
    shares = TraceRun.objects.get().shares
    # then not the brand (it reads its run whole), nor the distributors (they are not told of findings)
    told = {w.m1.owner_id, w.mod1.owner_id, w.c1.owner_id, w.c2.owner_id}
    assert set(shares) == {str(party) for party in told}
    assert str(w.brand.pk) not in shares and str(w.d1.pk) not in shares
