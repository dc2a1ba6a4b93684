"""The rest of the graph: organisations with sites and certificates, an investigation's history,
runs and evidence, and the EPCIS events of an object, each as REST or the EPCIS query interface
shows it to the same caller."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from suppliers.models import CertificateStatus, Membership, Role
from suppliers.services import api_token_issue
from tests.factories import CertificateFactory, OrganisationFactory, SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import member, urn
from tests.test_epcis_capture import capture, document, sgtin, transformation
from tests.test_epcis_query_visibility import observation
from tests.trace_world import add_competitor, build_world
from traceability.investigations.models import TraceRun
from traceability.investigations.services import finding_record, investigation_transition, trace_run_start

pytestmark = pytest.mark.django_db


def _key(organisation: Any) -> str:
    membership = Membership.objects.get(user=member(organisation), organisation=organisation)
    key = api_token_issue(membership=membership)
    assert key is not None
    return key


def _ask(key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = Client().post(
        "/graphql/",
        {"query": query, "variables": variables},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


@pytest.fixture()
def world():
    w = add_competitor(build_world())
    w.regulator = OrganisationFactory(role=Role.REGULATOR)  # an ``all`` grant
    return w


ORGANISATION = """query O($slug: String!) { organisation(slug: $slug) { id slug roles sites { name gln owner { slug } }
  members { role count }
  certificates { id scheme number issuer issuedBy { slug } holder { slug } scope validFrom validTo status
    productModels { modelNumber } sites { name } history { fromStatus toStatus reason changedAt } } } }"""


def test_an_organisation_shows_its_sites_certificates_with_history_and_member_counts(world):
    from suppliers.services import certificate_change_status

    # given a cell maker with a plant and a 3C certificate naming it, suspended once
    maker = world.c1.owner
    plant = SiteFactory(owner=maker, name="Ningde plant 2")
    body = OrganisationFactory(role=Role.CERTIFICATION_BODY)
    certificate = CertificateFactory(owner=maker, issued_by=body, number="2023011606000001")
    certificate.sites.add(plant)
    certificate_change_status(certificate=certificate, status=CertificateStatus.SUSPENDED, reason="debris in lot C1")

    # when anyone signed in asks for it
    found = _ask(_key(world.other_brand), ORGANISATION, slug=maker.slug)["organisation"]

    # then the directory's facts are there, not how many members it has
    assert found["slug"] == maker.slug and "cell_maker" in found["roles"]
    assert {"name": "Ningde plant 2", "gln": plant.gln, "owner": {"slug": maker.slug}} in found["sites"]
    (shown,) = [c for c in found["certificates"] if c["number"] == "2023011606000001"]
    assert (shown["scheme"], shown["status"], shown["issuedBy"], shown["holder"]) == (
        "CCC",
        "SUSPENDED",
        {"slug": body.slug},
        {"slug": maker.slug},
    )
    assert shown["sites"] == [{"name": "Ningde plant 2"}]
    assert [(h["fromStatus"], h["toStatus"], h["reason"]) for h in shown["history"]][-1] == (
        "VALID",
        "SUSPENDED",
        "debris in lot C1",
    )
    assert found["members"] is None
    assert _ask(_key(world.brand), ORGANISATION, slug="no-such-organisation") == {"organisation": None}


MEMBERS = """query M($slug: String!) { organisation(slug: $slug) { slug members { role count } } }"""


def test_an_organisations_member_counts_are_read_by_its_members_and_all_seeing_regulators_only(world):
    from suppliers.models import MemberRole
    from traceability.access.models import GrantScope
    from traceability.access.services import grant_add

    # given the cell maker of C1 with a QA engineer and two viewers; a regulator of one jurisdiction
    maker = world.c1.owner
    own_key = _key(maker)
    for _ in range(2):
        Membership.objects.create(user=member(None), organisation=maker, role=MemberRole.VIEWER)
    scoped = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    grant_add(regulator=scoped, scope=GrantScope.JURISDICTION, jurisdiction="CN")
    counted = [
        {"role": role, "count": Membership.objects.filter(organisation=maker, role=role).count()}
        for role in sorted({MemberRole.QA, MemberRole.VIEWER})
    ]

    # when its own member, a regulator who sees all, a brand it supplies, a stranger and the scoped regulator ask
    def members(key: str) -> Any:
        found = _ask(key, MEMBERS, slug=maker.slug)["organisation"]
        assert found["slug"] == maker.slug  # the directory's entry itself is everyone's
        return sorted(found["members"], key=lambda m: m["role"]) if found["members"] is not None else None

    stranger = OrganisationFactory(role=Role.BRAND)
    answers = {
        name: members(_key(organisation))
        for name, organisation in (
            ("regulator", world.regulator),
            ("customer", world.brand),
            ("stranger", stranger),
            ("scoped regulator", scoped),
        )
    }
    answers["own"] = members(own_key)

    # then its members and the all-seeing regulator read the counts; the others read null
    assert answers["own"] == counted
    assert [m["count"] for m in answers["own"] if m["role"] == MemberRole.VIEWER] == [2]
    assert answers["regulator"] == answers["own"]
    assert answers["customer"] is answers["stranger"] is answers["scoped regulator"] is None


HISTORY = """query H($number: Int!) { investigation(number: $number) {
  transitions { fromStatus toStatus note }
  runs { number status previous createdAt diff }
  finding { attachments { name } inspections { method outcome inspectedBy { slug } } } } }"""


def test_an_investigation_shows_its_transitions_and_runs_with_their_diff(world):
    # given the brand's investigation of M1, traced twice, then under review with a note
    finding = finding_record(
        owner=world.brand, subject=world.m1, category="metallic_debris", severity="high", description="Fe",
        submit=lambda job: None,
    )  # fmt: skip
    investigation = finding.investigation
    run_job(TraceRun.objects.get(investigation=investigation).job)
    again = trace_run_start(investigation=investigation, submit=lambda job: None)
    run_job(again.job)
    investigation_transition(investigation=investigation, to="under_review", note="8D requested")

    # when its owner and a regulator read its history
    mine = _ask(_key(world.brand), HISTORY, number=investigation.pk)["investigation"]
    theirs = _ask(_key(world.regulator), HISTORY, number=investigation.pk)["investigation"]

    # then the moves, oldest first, and the runs, newest first, the later one diffing the earlier
    assert [t["toStatus"] for t in mine["transitions"]] == [
        "open", "tracing", "traced", "tracing", "traced", "under_review",
    ]  # fmt: skip
    assert mine["transitions"][-1]["note"] == "8D requested" and mine["transitions"][0]["fromStatus"] is None
    assert [r["number"] for r in mine["runs"]] == [again.pk, again.previous_id]
    assert mine["runs"][0]["previous"] == again.previous_id
    # nothing changed: the regulator, who reads the result whole, is told so; the owner, who sees
    # only its own units in full, has no diff (REST's and the page's answer)
    assert theirs["runs"][0]["diff"]["added"] == 0 and mine["runs"][0]["diff"] is None
    assert theirs == mine | {"runs": theirs["runs"]}
    assert [{**r, "diff": None} for r in theirs["runs"]] == mine["runs"]
    # and another brand reads nothing of it
    assert _ask(_key(world.other_brand), HISTORY, number=investigation.pk) == {"investigation": None}


EVENTS = """query E($unit: String!) { unit(identifier: $unit) { events(first: 10) {
  edges { node } pageInfo { hasNextPage endCursor } } } }"""


def test_a_units_events_are_those_the_epcis_query_interface_shows_the_caller():
    # given brand A's build of U1 and brand B's observation of it
    a, b = OrganisationFactory(role=Role.BRAND), OrganisationFactory(role=Role.BRAND)
    capture(a, document(transformation("urn:uuid:a-build", lots=["L1"], outputs=["U1", "U2"], at="01")))
    capture(b, document(observation("urn:uuid:b-observe", [sgtin("U1")], at="04")))

    # when A asks for U1's events
    events = _ask(_key(a), EVENTS, unit=sgtin("U1"))["unit"]["events"]

    # then both, as the query interface gives them, in capture order, with EPC URNs
    assert [e["node"]["eventID"] for e in events["edges"]] == ["urn:uuid:a-build", "urn:uuid:b-observe"]
    assert sgtin("U1") in events["edges"][1]["node"]["epcList"]
    assert events["pageInfo"] == {"hasNextPage": False, "endCursor": None}


TOUCHING = """query T($unit: String!) { unit(identifier: $unit) { investigations { number finding { subject } } } }"""


def test_a_units_investigations_are_those_the_caller_reads_naming_it_or_a_lot_upstream(world):
    # given the brand's finding on M1 (upstream of U1), a regulator's inquiry on U1 itself, and the
    # second brand's finding on its own unit U9
    from packs.models import Unit

    def record(owner: Any, subject: Any, **extra: Any) -> int:
        finding = finding_record(
            owner=owner, subject=subject, category="other", severity="high", description="x",
            submit=lambda job: None, **extra,
        )  # fmt: skip
        return finding.investigation.pk

    on_m1 = record(world.brand, world.m1)
    u1, u9 = Unit.objects.get(pk=world.u[1]), Unit.objects.get(pk=world.u[9])
    inquiry = record(world.regulator, u1, inquiry=True)
    record(world.other_brand, u9)

    # when the brand and the regulator ask for U1's investigations
    brand = _ask(_key(world.brand), TOUCHING, unit="U1")["unit"]["investigations"]
    regulator = _ask(_key(world.regulator), TOUCHING, unit=urn(u1.identity))["unit"]["investigations"]

    # then each sees those it reads: the brand its own, the regulator both (newest first)
    assert [i["number"] for i in brand] == [on_m1]
    assert [i["number"] for i in regulator] == [inquiry, on_m1]
    assert regulator[0]["finding"]["subject"] == urn(u1.identity)


INVESTIGATIONS = """query T($unit: String!) { unit(identifier: $unit) { investigations {
  number status openedAt owner { slug roles }
  finding { number subject attachments { name } inspections { method } }
  latestRun { number definiteCount potentialCount }
  runs { number status definiteCount }
  transitions { toStatus } } } }"""


@pytest.mark.parametrize("caller", ["regulator", "brand"])
def test_a_units_investigations_read_each_relation_once_whatever_their_number(world, caller):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from packs.models import Unit

    # given the brand's findings on M1 and on C1 (both upstream of U1), each traced, and three more
    def record(subject: Any) -> None:
        finding = finding_record(
            owner=world.brand, subject=subject, category="other", severity="high", description="x",
            submit=lambda job: None,
        )  # fmt: skip
        run_job(TraceRun.objects.get(investigation=finding.investigation).job)

    unit = urn(Unit.objects.get(pk=world.u[1]).identity)
    key = _key(getattr(world, caller))

    def asked() -> tuple[int, list[dict[str, Any]]]:
        with CaptureQueriesContext(connection) as captured:
            found = _ask(key, INVESTIGATIONS, unit=unit)["unit"]["investigations"]
        return len(captured), found

    record(world.m1)
    record(world.c1)
    small, few = asked()
    for subject in (world.m1, world.c1, world.mod1):
        record(subject)

    # when the caller asks for two investigations of U1, then for five, with every relation
    large, many = asked()

    # then each has its own latest run, runs and moves, and the five cost no more queries than two
    assert len(few) == 2 and len(many) == 5
    assert all(i["latestRun"]["number"] == i["runs"][0]["number"] for i in many)
    assert all([t["toStatus"] for t in i["transitions"]] == ["open", "tracing", "traced"] for i in many)
    assert {i["owner"]["slug"] for i in many} == {world.brand.slug}
    assert all(i["latestRun"]["definiteCount"] > 0 for i in many)
    assert large == small


def test_each_findings_latest_run_is_its_newest_finished_one_read_for_all_at_once(world):
    from traceability.investigations.selectors import findings_latest_runs

    # given the brand's finding on M1 traced twice then a third time still queued, its finding on
    # C1 traced once, and its finding on MOD1 whose only run has not run
    def record(subject: Any) -> Any:
        return finding_record(
            owner=world.brand, subject=subject, category="other", severity="high", description="x",
            submit=lambda job: None,
        )  # fmt: skip

    twice, once, never = record(world.m1), record(world.c1), record(world.mod1)
    run_job(TraceRun.objects.get(investigation=twice.investigation).job)
    second = trace_run_start(investigation=twice.investigation, submit=lambda job: None)
    run_job(second.job)
    queued = trace_run_start(investigation=twice.investigation, submit=lambda job: None)
    run_job(TraceRun.objects.get(investigation=once.investigation).job)

    # when the three findings' latest runs are read together
    latest = {
        run.investigation.finding_id: run.pk
        for run in findings_latest_runs(finding_ids=[twice.pk, once.pk, never.pk]).select_related("investigation")
    }

    # then each traced finding has its newest succeeded run (not the queued one), the untraced none
    assert latest == {twice.pk: second.pk, once.pk: TraceRun.objects.get(investigation=once.investigation).pk}
    assert queued.pk not in latest.values() and queued.job.status == "queued"
    # and through the graph, a regulator reads the same run as the M1 investigation's latest
    asked = _ask(_key(world.regulator), "query L($n: Int!) { investigation(number: $n) { latestRun { number } } }",
                 n=twice.investigation.pk)  # fmt: skip
    assert asked == {"investigation": {"latestRun": {"number": second.pk}}}
