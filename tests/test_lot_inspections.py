"""A lot owner's inspection results and certificates of analysis (issue 15): each measured value is
checked against the limits of the lot's material (or cell model); a value outside them is recorded
as failing, a value the ledger cannot judge is refused with where and why, and a refusal keeps
nothing: no inspection, no value, no file, no audit entry. Another's lot reads as an unknown one."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Measurement
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory, SpecFactory
from tests.test_api_support import client_for, member, urn
from tests.trace_world import build_world
from traceability.core.models import AuditEntry

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n% certificate of analysis NCM811 lot M1\n%%EOF\n"
AT = "2024-06-03T08:00:00Z"


def qa(organisation, role=MemberRole.QA):
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return client_for(user)


@pytest.fixture
def world(settings, tmp_path):
    """M1's material has limits: moisture at most 200 ppm, Ni content 0.80 to 0.84 (fraction), and
    magnetic Fe particles at most 50 µm; C1's cell model, an open-circuit voltage of 3.60 to 3.70 V."""
    settings.MEDIA_ROOT = tmp_path
    w = build_world()
    w.media = tmp_path
    material = w.m1.material
    SpecFactory(material=material, property="moisture", unit="ppm", maximum=Decimal("200"))
    SpecFactory(material=material, property="ni_fraction", unit="1", minimum=Decimal("0.80"), maximum=Decimal("0.84"))
    SpecFactory(material=material, property="fe_particle", unit="µm", maximum=Decimal("50"))
    SpecFactory(
        material=None,
        cell_model=w.c1.cell_model,
        property="ocv",
        unit="V",
        minimum=Decimal("3.60"),
        maximum=Decimal("3.70"),
    )
    w.supplier = qa(w.m1.owner)
    w.path = f"/api/v1/lots/{urn(w.m1.identity)}/inspections/"
    return w


def certificate(**values):
    """A multipart body: the PDF and its values (moisture 120 ppm, Ni 0.82, Fe 30 µm unless given)."""
    results = [
        {"property": "moisture", "value": values.get("moisture", 120), "unit": "ppm"},
        {"property": "ni_fraction", "value": values.get("ni_fraction", "0.82"), "unit": "1"},
        {"property": "fe_particle", "value": values.get("fe_particle", 30), "unit": "µm"},
    ]
    return {
        "file": SimpleUploadedFile("CoA M1.pdf", PDF, content_type="application/pdf"),
        "results": json.dumps(results),
        "inspected_at": AT,
        "sample_size": "3",
    }


def kept() -> tuple[int, int, int]:
    return (
        Inspection.objects.count(),
        Measurement.objects.count(),
        AuditEntry.objects.filter(action="inspection.record").count(),
    )


def stored(w) -> list[str]:
    return sorted(p.name for p in w.media.rglob("*") if p.is_file())


def test_the_lots_owner_records_a_certificate_of_analysis_within_limits_and_reads_it_back(world):
    # given
    w = world
    # when
    response = w.supplier.post(w.path, certificate(), format="multipart")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["method"], body["outcome"], body["sample_size"]) == ("analysis", "pass", 3)
    assert body["results"] == [
        {"property": "fe_particle", "value": "30.000000", "unit": "µm", "minimum": None,
         "maximum": "50.000000", "passed": True},
        {"property": "moisture", "value": "120.000000", "unit": "ppm", "minimum": None,
         "maximum": "200.000000", "passed": True},
        {"property": "ni_fraction", "value": "0.820000", "unit": "1", "minimum": "0.800000",
         "maximum": "0.840000", "passed": True},
    ]  # fmt: skip
    assert body["document"]["name"] == "CoA M1.pdf"
    assert body["document"]["content_type"] == "application/pdf"
    assert body["recorded_by"] == w.supplier.user.username
    assert len(stored(w)) == 1
    # and the lot's page lists it with the limits
    listed = w.supplier.get(w.path).json()
    assert listed["lot"] == w.m1.identity
    assert [s["property"] for s in listed["limits"]] == ["fe_particle", "moisture", "ni_fraction"]
    assert [i["id"] for i in listed["inspections"]] == [body["id"]]
    # and its document downloads as uploaded
    download = w.supplier.get(f"{w.path}{body['id']}/document/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert AuditEntry.objects.filter(action="inspection.record", organisation=w.m1.owner).count() == 1


def test_a_value_outside_its_limits_is_recorded_as_failing_not_refused(world):
    # given
    w = world
    # when Fe particles of 62 µm and an Ni fraction below its minimum
    response = w.supplier.post(w.path, certificate(fe_particle=62, ni_fraction="0.79"), format="multipart")
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["outcome"] == "fail"
    assert {r["property"]: r["passed"] for r in response.json()["results"]} == {
        "fe_particle": False,
        "moisture": True,
        "ni_fraction": False,
    }
    assert AuditEntry.objects.get(action="inspection.record").detail["failing"] == ["ni_fraction", "fe_particle"]


def test_a_limit_is_inclusive(world):
    # when at both bounds exactly
    response = world.supplier.post(world.path, certificate(ni_fraction="0.84", moisture="200"), format="multipart")
    # then
    assert response.json()["outcome"] == "pass"


def test_results_without_a_document_are_recorded_as_json(world):
    # given a cell maker's OCV check of its cell lot
    w = world
    body = {"method": "ocv", "inspected_at": AT, "results": [{"property": "ocv", "value": 3.71, "unit": "V"}]}
    # when
    response = qa(w.c1.owner).post(f"/api/v1/lots/{urn(w.c1.identity)}/inspections/", body, format="json")
    # then
    assert response.status_code == 201, response.json()
    assert (response.json()["outcome"], response.json()["document"]) == ("fail", None)


@pytest.mark.parametrize(
    ("results", "field", "code"),
    [
        ([{"property": "moistrue", "value": 1, "unit": "ppm"}], "results.0.property", "unknown_property"),
        ([{"property": "moisture", "value": 1, "unit": "%"}], "results.0.unit", "wrong_unit"),
        ([{"property": "moisture", "value": "1,5", "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": "NaN", "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": "Infinity", "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": True, "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": [1], "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": "1e20", "unit": "ppm"}], "results.0.value", "not_a_number"),
        ([{"property": "moisture", "value": "0.0000001", "unit": "ppm"}], "results.0.value", "not_a_number"),
        (
            [{"property": "moisture", "value": 1, "unit": "ppm"}, {"property": "moisture", "value": 2, "unit": "ppm"}],
            "results.1.property",
            "repeated_property",
        ),
        (
            [{"property": "moisture", "value": 1, "unit": "ppm"}, {"property": "fe_particle", "value": 1}],
            "results.1.unit",
            "required",
        ),
        ([], "results", "empty"),
        ("[{", "results", "not_json"),
    ],
)
def test_a_value_the_ledger_cannot_judge_is_refused_naming_it_and_nothing_is_kept(world, results, field, code):
    # given a valid certificate but for one value, sent with its document
    w = world
    body = certificate()
    body["results"] = results if isinstance(results, str) else json.dumps(results)
    before = kept()
    # when
    response = w.supplier.post(w.path, body, format="multipart")
    # then
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert kept() == before
    assert stored(w) == []


def test_a_refusal_says_what_is_wrong_and_what_would_do(world):
    # when
    unknown = world.supplier.post(
        world.path, certificate() | {"results": json.dumps([{"property": "cobalt", "value": 1, "unit": "ppm"}])}
    )
    unit = world.supplier.post(
        world.path, certificate() | {"results": json.dumps([{"property": "moisture", "value": 1, "unit": "%"}])}
    )
    # then
    assert unknown.json()["message"] == (
        "'cobalt' is not a property material lot M1's material has a limit for"
        " (it has: fe_particle, moisture, ni_fraction)"
    )
    assert unit.json()["message"] == "moisture is measured in 'ppm', not '%': give the value in ppm"


def test_a_document_that_is_not_a_certificate_is_refused_and_nothing_is_kept(world):
    # given an executable named as a PDF
    w = world
    body = certificate() | {"file": SimpleUploadedFile("CoA.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" * 20)}
    before = kept()
    # when
    response = w.supplier.post(w.path, body, format="multipart")
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("file_type", "file")
    assert kept() == before
    assert stored(w) == []


def test_a_lot_with_no_limits_is_refused(world):
    # given the module lot (no material, no cell model) of its owner
    w = world
    client = qa(w.mod1.owner)
    body = {"inspected_at": AT, "results": [{"property": "ocv", "value": 3.65, "unit": "V"}]}
    # when
    response = client.post(f"/api/v1/lots/{urn(w.mod1.identity)}/inspections/", body, format="json")
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("no_limits", "results")
    assert not Inspection.objects.exists()


ATTACKERS = ("other_supplier", "brand", "distributor", "regulator_out_of_scope")


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_anothers_lot_reads_as_an_unknown_one_and_nothing_is_kept(world, attacker):
    # given M2's supplier (made from M1), the brand (its units carry M1), a distributor, a regulator
    w = world
    organisation = {
        "other_supplier": w.m2.owner,
        "brand": w.brand,
        "distributor": OrganisationFactory(role=Role.DISTRIBUTOR),
        "regulator_out_of_scope": OrganisationFactory(role=Role.REGULATOR, all_grant=False),
    }[attacker]
    client = qa(organisation)
    unknown = "/api/v1/lots/urn:epc:class:lgtin:0614141.012345.NEVER/inspections/"
    before = kept()
    # when
    read, never = client.get(w.path), client.get(unknown)
    write = client.post(w.path, certificate(), format="multipart")
    # then
    assert (read.status_code, never.status_code) == (404, 404)
    assert read.json()["code"] == never.json()["code"] == "unknown_subject"
    assert read.json()["message"] == f"no lot is known as {urn(w.m1.identity)!r}"
    assert write.status_code == (403 if attacker.startswith("regulator") else 404)
    assert kept() == before
    assert stored(w) == []


def test_a_regulator_reading_everything_reads_the_lots_inspections_and_records_none(world):
    # given
    w = world
    w.supplier.post(w.path, certificate(), format="multipart")
    regulator = qa(OrganisationFactory(role=Role.REGULATOR))
    before = kept()
    # when
    read = regulator.get(w.path)
    write = regulator.post(w.path, certificate(), format="multipart")
    # then
    assert read.status_code == 200
    assert len(read.json()["inspections"]) == 1
    assert (write.status_code, write.json()["code"]) == (403, "read_only")
    assert kept() == before


def test_a_viewer_of_the_owner_reads_and_records_nothing(world):
    # given
    viewer = qa(world.m1.owner, MemberRole.VIEWER)
    # when
    read, write = viewer.get(world.path), viewer.post(world.path, certificate(), format="multipart")
    # then
    assert read.status_code == 200
    assert (write.status_code, write.json()["code"]) == (403, "read_only")
    assert not Inspection.objects.exists()


def test_a_lots_inspections_cost_the_same_queries_for_one_or_many(world):
    # given
    w = world
    w.supplier.post(w.path, certificate(), format="multipart")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert w.supplier.get(w.path).status_code == 200
        return len(captured)

    one = queries()
    # when
    for value in (10, 20, 300):
        w.supplier.post(w.path, certificate(moisture=value), format="multipart")
    # then
    assert queries() == one
