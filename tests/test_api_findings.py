"""POST/GET /api/v1/findings/: subjects by URN, Digital Link or code; refusals that change nothing."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Lot
from suppliers.models import Role
from tests.factories import CellLotFactory, OrganisationFactory, SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, iso, member, raise_finding, urn, written
from tests.trace_world import add_competitor, build_world
from traceability.core.models import JobStatus
from traceability.gs1 import identifiers
from traceability.investigations.models import Finding, Investigation, TraceRun

pytestmark = pytest.mark.django_db


def test_a_finding_opens_an_investigation_with_a_preview_and_submits_its_run(django_capture_on_commit_callbacks):
    # given
    w = build_world()
    client = client_for(member(w.brand, "qa"))
    # when
    with django_capture_on_commit_callbacks() as submitted:
        response = raise_finding(client, urn(w.m1.identity))
    # then
    finding = Finding.objects.get()
    run = TraceRun.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "id": finding.pk,
        "owner": w.brand.slug,
        "subject": {
            "kind": "lot",
            "identity": w.m1.identity,
            "code": "M1",
            "epc": urn(w.m1.identity),
            "digital_link": f"https://id.gs1.org/01/{w.m1.gtin}/10/M1",
            "supplier": None,
            "site": None,
        },
        "window_from": None,
        "window_to": None,
        "category": "metallic_debris",
        "severity": "critical",
        "description": "Fe 45 µm",
        "inspections": [],
        "attachments": [],
        "raised_by": "qa",
        "raised_at": iso(finding.raised_at),
        "inquiry": False,
        "investigation": finding.investigation.pk,
        "status": "tracing",
        "access": "full",
        "share": None,
        "preview": {"position": 1, "definite_units": 4, "potential_units": 3, "consignees": 2, "others": []},
        "run": run.pk,
    }
    assert (finding.owner, finding.investigation.status, run.job.status) == (w.brand, "tracing", JobStatus.QUEUED)
    assert len(submitted) == 1  # the run's job goes to the broker once the request's transaction commits


@pytest.mark.parametrize(
    ("form", "caller"),
    [
        ("epc", "brand"),
        ("digital_link", "brand"),
        ("code", "m1_owner"),
    ],
)
def test_a_lot_is_named_by_urn_digital_link_or_its_owners_code(form, caller):
    # given
    w = build_world()
    organisation = w.brand if caller == "brand" else w.m1.owner
    subject = {
        "epc": urn(w.m1.identity),
        "digital_link": f"https://id.gs1.org/01/{w.m1.gtin}/10/M1",
        "code": "M1",
    }[form]
    # when
    response = raise_finding(client_for(member(organisation)), subject)
    # then
    assert response.status_code == 201
    assert (response.json()["owner"], response.json()["subject"]["identity"]) == (organisation.slug, w.m1.identity)


def test_a_unit_is_named_by_its_serial():
    # given
    w = build_world()
    # when
    response = raise_finding(client_for(member(w.brand)), "U1", category="overheating_incident")
    # then
    assert response.status_code == 201
    assert response.json()["subject"]["kind"] == "unit"
    assert response.json()["subject"]["identity"] == f"sgtin:{w.work_order.product_model.gtin}:U1"
    assert response.json()["preview"] == {
        "position": 1,
        "definite_units": 2,
        "potential_units": 0,
        "consignees": 1,
        "others": [],
    }


def test_a_supplier_finding_traces_all_its_lots():
    # given
    w = build_world()
    # when
    response = raise_finding(client_for(member(w.brand)), None, subject_supplier=w.c1.owner.slug)
    # then
    assert response.status_code == 201
    assert response.json()["subject"] == {
        "kind": "supplier",
        "identity": None,
        "code": None,
        "epc": None,
        "digital_link": None,
        "supplier": w.c1.owner.slug,
        "site": None,
    }
    assert response.json()["preview"] == {
        "position": 1,
        "definite_units": 4,
        "potential_units": 0,
        "consignees": 1,
        "others": [],
    }


def test_a_code_of_another_organisation_is_an_unknown_subject_and_nothing_is_written():
    # given the brand names the material supplier's lot by the supplier's code
    w = build_world()
    client = client_for(member(w.brand))
    before = written()
    # when
    response = raise_finding(client, "M1")
    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "unknown_subject",
        "message": "no lot or unit is known as 'M1'",
        "field": "subject",
        "errors": [{"code": "unknown_subject", "message": "no lot or unit is known as 'M1'", "field": "subject"}],
    }
    assert written() == before


def test_a_malformed_identifier_is_refused_with_the_identifier_modules_message():
    # given
    w = build_world()
    before = written()
    value = "urn:epc:id:sgtin:0614141.112345"
    with pytest.raises(identifiers.InvalidIdentifier) as expected:
        identifiers.parse(value)
    # when
    response = raise_finding(client_for(member(w.brand)), value)
    # then
    assert response.status_code == 400
    assert {k: response.json()[k] for k in ("code", "message", "field")} == {
        "code": "invalid_identifier",
        "message": str(expected.value),
        "field": "subject",
    }
    assert written() == before


def test_a_finding_on_a_subject_being_traced_is_refused_with_the_services_message():
    # given a finding on M1 whose run has not run yet
    w = build_world()
    client = client_for(member(w.brand))
    first = raise_finding(client, urn(w.m1.identity)).json()
    run = TraceRun.objects.get(pk=first["run"])
    before = written()
    # when
    response = raise_finding(client, f"https://id.gs1.org/01/{w.m1.gtin}/10/M1")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "trace_in_progress",
        "message": f"a trace of this subject is already running for investigation #{first['investigation']}"
        f" (run {run.pk}, started {run.created_at:%Y-%m-%d %H:%M:%S} UTC): wait for it,"
        " then record the finding or re-run that investigation",
    }
    assert written() == before
    # and once the run has finished, the subject may be named again
    run_job(run.job)
    assert raise_finding(client, urn(w.m1.identity)).status_code == 201


def test_a_trace_of_the_subject_running_for_another_organisation_neither_blocks_nor_is_named():
    # given brand A's finding on cell lot C1, the shared lot, whose run has not run yet
    w = add_competitor(build_world())
    brand = client_for(member(w.brand))
    first = raise_finding(brand, urn(w.c1.identity)).json()
    run = TraceRun.objects.get(pk=first["run"])
    # when the competitor, whose units carry C1 too, records a finding on it
    response = raise_finding(client_for(member(w.other_brand)), urn(w.c1.identity))
    # then it is recorded with a run of its own, and nothing in the answer names A's investigation
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["investigation"], created["run"]) != (first["investigation"], first["run"])
    body = response.content.decode()
    assert f"#{first['investigation']}" not in body and f"{run.created_at:%Y-%m-%d %H:%M:%S}" not in body
    # and A's own second finding on C1 is still held back by A's running trace
    assert raise_finding(brand, urn(w.c1.identity)).status_code == 409


def test_a_user_without_an_organisation_is_refused():
    # given
    w = build_world()
    before = written()
    # when
    response = raise_finding(client_for(member(None)), urn(w.m1.identity))
    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "no_organisation",
        "message": "your account acts for no organisation: ask an administrator to make you a member of one",
    }
    assert written() == before


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"subject": None}, "subject_required", "subject"),
        ({"subject_supplier": "SUPPLIER"}, "subject_required", "subject"),
        ({"window_from": "2024-01-01T00:00:00Z"}, "window_not_applicable", "window_from"),
        (
            {
                "subject": None,
                "subject_supplier": "SUPPLIER",
                "window_from": "2024-02-01T00:00:00Z",
                "window_to": "2024-01-01T00:00:00Z",
            },
            "invalid_window",
            "window_to",
        ),
        ({"subject": None, "subject_supplier": "nobody"}, "does_not_exist", "subject_supplier"),
        ({"subject": None, "subject_site": 999_999}, "does_not_exist", "subject_site"),
        ({"subject": "urn:epc:id:sscc:0614141.1234567890"}, "unsupported_identifier", "subject"),
        ({"category": "rust"}, "invalid_choice", "category"),
        ({"description": ""}, "blank", "description"),
        ({"inspections": ["x"]}, "invalid", "inspections.0"),
        ({"inspections": [999_999]}, "unknown_inspection", "inspections"),
        # beyond the database's integer range (found by tests/test_fuzz_api.py: it overflowed, a 500)
        ({"inspections": [1, 99999999999999999999]}, "max_value", "inspections.1"),
    ],
)
def test_invalid_findings_are_refused_field_by_field_and_nothing_is_written(fields, code, field):
    # given
    w = build_world()
    body = {"subject": urn(w.m1.identity), **fields}
    body = {k: w.m1.owner.slug if v == "SUPPLIER" else v for k, v in body.items() if v is not None}
    subject = body.pop("subject", None)
    before = written()
    # when
    response = raise_finding(client_for(member(w.brand)), subject, **body)
    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body.get("field")) == (code, field)
    assert body["errors"][0] == {"code": code, "message": body["message"], "field": field}
    assert written() == before


def test_a_supplier_with_no_lots_in_the_window_is_an_empty_subject_to_one_who_sees_every_lot():
    # given a cell maker whose only lot was made in January 2023, and a regulator with an `all` grant
    build_world()
    lot = CellLotFactory(
        produced_from=dt.datetime(2023, 1, 1, tzinfo=dt.UTC), produced_to=dt.datetime(2023, 1, 31, tzinfo=dt.UTC)
    )
    regulator = client_for(member(OrganisationFactory(role=Role.REGULATOR)))
    before = written()
    # when the finding names its lots made in 2024
    response = raise_finding(regulator, None, subject_supplier=lot.owner.slug, window_from="2024-01-01T00:00:00Z")
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "empty_subject"
    assert response.json()["message"] == f"{lot.owner.name} has no lots in the window given"
    assert written() == before


def _unknown_subject(field: str, value: object) -> dict:
    kind = field.removeprefix("subject_")
    error = {"code": "unknown_subject", "message": f"no lot of {kind} {value!r} is known to you", "field": field}
    return {**error, "errors": [error]}


@pytest.mark.parametrize("field", ["subject_supplier", "subject_site"])
def test_a_party_that_may_trace_no_lot_of_a_supplier_or_site_is_answered_as_for_an_unknown_subject(field):
    # given the material supplier of M1 (its lots reach the world's brand), its plant, and another brand
    w = build_world()
    site = SiteFactory(owner=w.m1.owner)
    Lot.objects.filter(pk=w.m1.pk).update(site=site)
    other = client_for(member(OrganisationFactory(role=Role.BRAND)))
    value = w.m1.owner.slug if field == "subject_supplier" else site.pk
    before = written()
    # when the other brand records a finding on all the supplier's lots, or all lots of its plant
    response = raise_finding(other, None, **{field: value})
    # then it is told what an unknown subject is told, and nothing is written
    assert (response.status_code, response.json()) == (400, _unknown_subject(field, value))
    assert written() == before
    # and the brand whose units they reach records it
    assert raise_finding(client_for(member(w.brand)), None, **{field: value}).status_code == 201


@pytest.mark.parametrize("window", [None, "2024-01-01T00:00:00Z"], ids=["no-lots-at-all", "no-lots-in-the-window"])
def test_a_party_is_told_the_same_whether_a_supplier_has_lots_it_may_not_trace_or_none(window):
    # given a supplier with one lot made in January 2023 (nobody's units carry it), and one with none
    build_world()
    made = CellLotFactory(
        produced_from=dt.datetime(2023, 1, 1, tzinfo=dt.UTC), produced_to=dt.datetime(2023, 1, 31, tzinfo=dt.UTC)
    ).owner
    empty = OrganisationFactory(role=Role.CELL_MAKER)
    brand = client_for(member(OrganisationFactory(role=Role.BRAND)))
    fields = {"window_from": window} if window else {}
    before = written()
    # when
    answers = [raise_finding(brand, None, subject_supplier=s.slug, **fields) for s in (made, empty)]
    # then: the same words but for the slug, neither "empty" nor anything else that tells them apart
    assert [(r.status_code, r.json()) for r in answers] == [
        (400, _unknown_subject("subject_supplier", s.slug)) for s in (made, empty)
    ]
    assert written() == before


def test_a_finding_cites_inspections():
    # given
    w = build_world()
    xray = Inspection.objects.create(
        owner=w.c1.owner, lot=w.c1, method="xray", outcome="fail", inspected_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    )
    # when
    response = raise_finding(client_for(member(w.brand)), urn(w.c1.identity), inspections=[xray.pk])
    # then
    assert response.status_code == 201
    assert response.json()["inspections"] == [xray.pk]
    assert list(Finding.objects.get().inspections.all()) == [xray]


def _findings_on(client, w, subjects):
    for lot, category, severity in subjects:
        response = raise_finding(client, urn(lot.identity), category=category, severity=severity)
        assert response.status_code == 201, response.json()


def test_findings_are_listed_newest_first_paged_and_filtered():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    _findings_on(
        client,
        w,
        [
            (w.m1, "metallic_debris", "critical"),
            (w.m3, "separator_defect", "high"),
            (w.c4, "metallic_debris", "high"),
        ],
    )
    ids = list(Finding.objects.order_by("-raised_at", "-id").values_list("pk", flat=True))
    # when
    everything = client.get("/api/v1/findings/").json()
    debris = client.get("/api/v1/findings/", {"category": "metallic_debris"}).json()
    high_debris = client.get("/api/v1/findings/", {"category": "metallic_debris", "severity": "high"}).json()
    first_page = client.get("/api/v1/findings/", {"limit": 2}).json()
    second_page = client.get(first_page["next"]).json()
    # then
    assert [f["id"] for f in everything["results"]] == ids
    assert [f["id"] for f in debris["results"]] == [ids[0], ids[2]]
    assert [f["subject"]["code"] for f in high_debris["results"]] == ["C4"]
    assert [f["id"] for f in first_page["results"]] == ids[:2]
    assert ([f["id"] for f in second_page["results"]], second_page["next"]) == (ids[2:], None)


def test_an_unknown_filter_value_is_refused():
    build_world()
    response = client_for(member(OrganisationFactory())).get("/api/v1/findings/", {"severity": "apocalyptic"})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid_choice", "severity")


def test_listing_findings_costs_the_same_queries_for_one_or_many():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    _findings_on(client, w, [(w.m1, "metallic_debris", "high")])
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/api/v1/findings/").json()["results"]) == 1
    _findings_on(client, w, [(lot, "other", "low") for lot in (w.m3, w.c4, w.mod1)])
    # when
    with CaptureQueriesContext(connection) as four:
        assert len(client.get("/api/v1/findings/").json()["results"]) == 4
    # then
    assert len(four) == len(one)


def test_a_finding_is_read_by_id():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = raise_finding(client, urn(w.m1.identity)).json()
    # when
    response = client.get(f"/api/v1/findings/{created['id']}/")
    # then
    assert response.status_code == 200
    assert response.json() == {k: v for k, v in created.items() if k not in ("preview", "run")}
    assert Investigation.objects.get().pk == response.json()["investigation"]


def test_an_identifier_is_read_as_typed_with_surrounding_spaces():
    w = build_world()
    response = raise_finding(client_for(member(w.brand)), f"  {urn(w.m1.identity)} ")
    assert (response.status_code, response.json()["subject"]["identity"]) == (201, w.m1.identity)


def test_a_body_that_is_not_json_is_refused_in_the_same_shape():
    w = build_world()
    response = client_for(member(w.brand)).post("/api/v1/findings/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["message"].startswith("JSON parse error")


@pytest.mark.parametrize("recorder", ["brand", "cell maker"])
def test_recording_a_finding_traces_its_subject_once_in_the_request(recorder, monkeypatch):
    # given a lot the recorder does not own, so the access check traces it to find the recorder's
    # own units (the brand's, built from M1) or lots (C1, which its maker made from M2)
    from traceability import genealogy

    w = build_world()
    owner, lot = {"brand": (w.brand, w.m1), "cell maker": (w.c1.owner, w.m2)}[recorder]
    client, ident = client_for(member(owner)), lot.identity
    traces = []
    real = genealogy.forward_trace

    def counted(**kwargs):
        traces.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(genealogy, "forward_trace", counted)
    # when
    response = raise_finding(client, urn(ident))
    # then the check's trace is the preview's: one trace, and the run traces at its position
    assert response.status_code == 201, response.json()
    assert len(traces) == 1
    investigation = Investigation.objects.get(pk=response.json()["investigation"])
    run = TraceRun.objects.get(pk=response.json()["run"])
    assert investigation.preview["position"] == run.position == traces[0]["snapshot"].position
    monkeypatch.undo()
    run_job(run.job)
    run.refresh_from_db()
    assert (run.definite_units, run.potential_units) == (
        investigation.preview["definite_units"],
        investigation.preview["potential_units"],
    )


def test_another_brands_inspection_is_answered_as_an_id_that_names_nothing():
    # given: the second brand's own inspection of its own lot, a lot the brand may not trace
    w = add_competitor(build_world())
    lot = CellLotFactory(owner=w.other_brand)
    theirs = Inspection.objects.create(
        owner=w.other_brand, lot=lot, method="xray", outcome="fail", inspected_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    )
    client, before = client_for(member(w.brand)), written()
    # when: it is cited, and an id that names no inspection
    answers = [raise_finding(client, urn(w.c1.identity), inspections=[pk]) for pk in (theirs.pk, theirs.pk + 1_000)]
    # then: the same answer, and nothing recorded
    assert [r.status_code for r in answers] == [400, 400]
    bodies = [
        str(r.json()).replace(str(pk), "N") for r, pk in zip(answers, (theirs.pk, theirs.pk + 1_000), strict=True)
    ]
    assert bodies[0] == bodies[1] and "unknown_inspection" in bodies[0]
    assert written() == before
