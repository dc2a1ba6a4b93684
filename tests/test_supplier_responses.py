"""Suppliers' 8D responses to an investigation that concerns their lots (issue 15): the supplier whose
lot is the subject, upstream of it, or what the trace reached units through writes its own, revision
by revision, each kept; the investigation's owner and a regulator in scope read every response;
anyone else is answered as for an unknown finding, and nothing is written."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.trace_world import add_competitor, build_world
from traceability.access.services import grant_add
from traceability.core.models import AuditEntry
from traceability.investigations.models import SupplierResponse, SupplierResponseRevision, TraceRun

pytestmark = pytest.mark.django_db

CONTAINMENT = "Lots M1 and M2 held at the plant; 40 t of powder quarantined."
ROOT_CAUSE = "A worn sieve let Fe particles over 40 µm through; the magnet check was monthly."


def qa(organisation, role=MemberRole.QA):
    user = member(None)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return client_for(user)


@pytest.fixture
def world():
    """The brand's finding on cell lot C1, traced: C1's maker is told of it (its lot is the subject);
    M1's and M2's suppliers are upstream of it (M1 → M2 → C1); M3's is not (it fed C2 and C3 only)."""
    w = add_competitor(build_world())
    w.brand_client = qa(w.brand)
    created = raise_finding(w.brand_client, urn(w.c1.identity))
    assert created.status_code == 201, created.json()
    run_job(TraceRun.objects.get(pk=created.json()["run"]).job)
    w.finding = created.json()["id"]
    w.path = f"/api/v1/findings/{w.finding}/responses/"
    w.cell_maker = qa(w.c1.owner)
    w.material_supplier = qa(w.m1.owner)
    w.u1_identity = Unit.objects.get(pk=w.u[1]).identity
    return w


def written() -> tuple[int, int, int]:
    return SupplierResponse.objects.count(), SupplierResponseRevision.objects.count(), AuditEntry.objects.count()


def test_a_supplier_upstream_of_the_subject_opens_its_response_and_every_revision_is_kept(world):
    # given
    w = world
    # when M1's supplier answers containment, then the root cause
    first = w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    second = w.material_supplier.post(w.path, {"root_cause": ROOT_CAUSE, "team": "S. Li (QA), P. Wu"}, format="json")
    # then the first opened it, the second revised it, each whole
    assert (first.status_code, second.status_code) == (201, 200), second.json()
    body = second.json()
    assert (body["responder"], body["finding"], body["revision"]) == (w.m1.owner.slug, w.finding, 2)
    assert body["latest"]["containment"] == CONTAINMENT
    assert body["latest"]["root_cause"] == ROOT_CAUSE
    assert body["latest"]["status"] == "draft"
    assert [(r["number"], r["changed"], r["root_cause"]) for r in body["revisions"]] == [
        (1, ["containment"], ""),
        (2, ["team", "root_cause"], ROOT_CAUSE),
    ]
    assert {r["by"] for r in body["revisions"]} == {w.material_supplier.user.username}
    assert AuditEntry.objects.filter(action="response.revise", organisation=w.m1.owner).count() == 2


def test_the_owner_reads_every_response_and_each_supplier_only_its_own(world):
    # given the subject lot's maker and an upstream supplier each responded
    w = world
    assert w.cell_maker.post(w.path, {"containment": "C1 recalled from the line"}, format="json").status_code == 201
    assert w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json").status_code == 201
    # when
    owner = w.brand_client.get(w.path)
    cell_maker = w.cell_maker.get(w.path)
    supplier = w.material_supplier.get(w.path)
    # then
    assert [r["responder"] for r in owner.json()] == [w.c1.owner.slug, w.m1.owner.slug]
    assert [r["responder"] for r in cell_maker.json()] == [w.c1.owner.slug]
    assert [r["responder"] for r in supplier.json()] == [w.m1.owner.slug]
    assert CONTAINMENT not in cell_maker.content.decode()


def test_a_viewer_of_the_supplier_reads_its_response_and_writes_none(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    viewer = qa(w.m1.owner, MemberRole.VIEWER)
    before = written()
    # when
    read = viewer.get(w.path)
    refused = viewer.post(w.path, {"root_cause": ROOT_CAUSE}, format="json")
    # then
    assert [r["latest"]["containment"] for r in read.json()] == [CONTAINMENT]
    assert (refused.status_code, refused.json()["code"]) == (403, "read_only")
    assert written() == before


def test_submitting_needs_every_step_from_containment_to_prevention(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT, "root_cause": ROOT_CAUSE}, format="json")
    before = written()
    # when submitted with D5 to D7 blank
    refused = w.material_supplier.post(w.path, {"status": "submitted"}, format="json")
    # then
    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["field"]) == ("incomplete_response", "corrective_action")
    assert "D5 corrective action chosen is blank" in refused.json()["message"]
    assert written() == before
    # when every step is answered with it
    steps = {
        "corrective_action": "Sieve replaced by a 25 µm mesh; magnet check every shift.",
        "implementation": "Installed on line 2 and validated on 12 lots.",
        "implemented_on": "2024-09-02",
        "prevention": "Sieve wear in the maintenance plan; FMEA of every line updated.",
        "status": "submitted",
    }
    done = w.material_supplier.post(w.path, steps, format="json")
    # then
    assert done.status_code == 200, done.json()
    assert done.json()["latest"]["status"] == "submitted"
    assert done.json()["latest"]["implemented_on"] == "2024-09-02"
    assert done.json()["revisions"][-1]["changed"] == [
        "corrective_action",
        "implementation",
        "prevention",
        "implemented_on",
        "status",
    ]


def test_a_revision_that_changes_nothing_is_refused_and_appends_nothing(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    before = written()
    # when the same text is sent again (with blanks around it)
    response = w.material_supplier.post(w.path, {"containment": f"  {CONTAINMENT}\n"}, format="json")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "nothing_changed")
    assert written() == before


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, None, "empty"),
        ({"containment": CONTAINMENT, "d9": "x"}, "d9", "unknown_field"),
        ({"containment": "held\x00"}, "containment", "control_character"),
        ({"implemented_on": "last tuesday"}, "implemented_on", "invalid"),
        ({"status": "closed"}, "status", "invalid_choice"),
        ({"root_cause": "x" * 20_001}, "root_cause", "max_length"),
        ([{"containment": CONTAINMENT}], None, "invalid"),
    ],
)
def test_a_malformed_revision_is_refused_naming_the_field_and_changes_nothing(world, body, field, code):
    # given
    w = world
    before = written()
    # when
    response = w.material_supplier.post(w.path, body, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json().get("field")) == (code, field)
    assert written() == before


def test_the_investigations_owner_reads_but_does_not_respond(world):
    # given
    w = world
    before = written()
    # when
    response = w.brand_client.post(w.path, {"containment": "ours"}, format="json")
    # then
    assert (response.status_code, response.json()["code"]) == (403, "not_a_responder")
    assert written() == before


def test_a_regulator_in_scope_reads_every_response_and_writes_none(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    granted = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=granted, scope="investigation", investigation=TraceRun.objects.get().investigation)
    regulator = qa(granted)
    before = written()
    # when
    read = regulator.get(w.path)
    refused = regulator.post(w.path, {"containment": "x"}, format="json")
    # then
    assert read.status_code == 200
    assert [r["responder"] for r in read.json()] == [w.m1.owner.slug]
    assert (refused.status_code, refused.json()["code"]) == (403, "read_only")
    assert written()[:2] == before[:2]


ATTACKERS = ("co_supplier", "competitor", "distributor", "stranger", "regulator_out_of_scope")


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_anyone_the_investigation_does_not_concern_is_answered_as_for_an_unknown_finding(world, attacker):
    # given M1's supplier responded; M3's supplier fed only C2 and C3; the competitor built U9 and U10
    # from C1 (told of nothing: the cell maker's lot reached them); D1 received the brand's units
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    organisation = {
        "co_supplier": w.m3.owner,
        "competitor": w.other_brand,
        "distributor": w.d1,
        "stranger": OrganisationFactory(role=Role.CELL_MAKER),
        "regulator_out_of_scope": OrganisationFactory(role=Role.REGULATOR, all_grant=False),
    }[attacker]
    client = qa(organisation)
    unknown = "/api/v1/findings/999999/responses/"
    before = written()
    # when
    answers = {
        "read": client.get(w.path),
        "write": client.post(w.path, {"containment": "we did it"}, format="json"),
        "unknown read": client.get(unknown),
        "unknown write": client.post(unknown, {"containment": "we did it"}, format="json"),
    }
    # then every answer reads as for a finding that does not exist, and nothing was written
    expected = 403 if attacker.startswith("regulator") else 404  # a regulator writes nothing anywhere
    assert answers["read"].status_code == answers["unknown read"].status_code == 404
    assert answers["read"].json()["message"] == answers["unknown read"].json()["message"].replace(
        "999999", str(w.finding)
    )
    assert answers["write"].status_code == answers["unknown write"].status_code == expected
    assert written()[:2] == before[:2]
    assert CONTAINMENT not in answers["read"].content.decode()


def test_a_regulators_inquiry_concerns_no_supplier(world):
    # given a regulator's inquiry on C1
    w = world
    regulator = OrganisationFactory(role=Role.REGULATOR)
    inquiry = raise_finding(qa(regulator), urn(w.c1.identity))
    assert inquiry.status_code == 201, inquiry.json()
    path = f"/api/v1/findings/{inquiry.json()['id']}/responses/"
    # when
    answers = [w.cell_maker.get(path), w.cell_maker.post(path, {"containment": "x"}, format="json")]
    # then
    assert [a.status_code for a in answers] == [404, 404]
    assert not SupplierResponse.objects.exists()


def test_the_responses_of_a_finding_cost_the_same_queries_for_one_responder_or_two(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert w.brand_client.get(w.path).status_code == 200
        return len(captured)

    one = queries()
    # when a second supplier responds, twice
    w.cell_maker.post(w.path, {"containment": "C1 held"}, format="json")
    w.cell_maker.post(w.path, {"root_cause": "inherited from M1"}, format="json")
    # then
    assert queries() == one


@pytest.mark.postgresql  # the trigger exists on PostgreSQL only (SQLite: the code never updates a revision)
def test_postgresql_refuses_to_change_or_remove_a_revision_even_through_a_raw_cursor(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    revision = SupplierResponseRevision.objects.get()
    # when / then
    for statement in (
        "UPDATE traceability_supplierresponserevision SET containment = 'nothing happened' WHERE id = %s",
        "DELETE FROM traceability_supplierresponserevision WHERE id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="revisions are kept as written"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [revision.pk])
    revision.refresh_from_db()
    assert revision.containment == CONTAINMENT


@pytest.mark.postgresql
def test_a_revision_outlives_its_authors_account(world):
    # given
    w = world
    w.material_supplier.post(w.path, {"containment": CONTAINMENT}, format="json")
    # when
    w.material_supplier.user.delete()
    # then
    revision = SupplierResponseRevision.objects.get()
    assert (revision.by, revision.containment) == (None, CONTAINMENT)


def test_the_suppliers_upstream_of_a_unit_respond_to_a_finding_on_it(world):
    # given the brand's overheating finding on unit U1, built from module lot MOD1 (C1 ← M2 ← M1)
    w = world
    created = raise_finding(w.brand_client, urn(w.u1_identity), category="overheating_incident")
    assert created.status_code == 201, created.json()
    run_job(TraceRun.objects.get(pk=created.json()["run"]).job)
    path = f"/api/v1/findings/{created.json()['id']}/responses/"
    # when the upstream suppliers and one whose lot is no part of U1 respond
    answers = {
        "module maker": qa(w.mod1.owner).post(path, {"containment": "MOD1 held"}, format="json"),
        "cell maker": w.cell_maker.post(path, {"containment": "C1 held"}, format="json"),
        "material supplier": w.material_supplier.post(path, {"containment": CONTAINMENT}, format="json"),
        "co-supplier": qa(w.m3.owner).post(path, {"containment": "M3 held"}, format="json"),
    }
    # then
    assert {who: a.status_code for who, a in answers.items()} == {
        "module maker": 201,
        "cell maker": 201,
        "material supplier": 201,
        "co-supplier": 404,
    }
    assert [r["responder"] for r in w.brand_client.get(path).json()] == [
        w.mod1.owner.slug,
        w.c1.owner.slug,
        w.m1.owner.slug,
    ]
