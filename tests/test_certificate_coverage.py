"""A certificate names what it covers and its issuer, so "is this unit's 3C certificate valid" has
one answer (issue 12): the register service, the unit's standing, and REST's answer under the policy."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from packs.models import ProductModel, Unit
from packs.selectors import Standing, unit_certificate, unit_certificates
from suppliers.models import Certificate, CertificateScheme, CertificateStatus, CertificateStatusChange, Role
from suppliers.services import CertificateRefused, certificate_change_status, certificate_register
from tests.factories import CellModelFactory, OrganisationFactory, ProductModelFactory, SiteFactory
from tests.test_api_support import client_for, member, urn
from tests.trace_world import add_competitor, build_world
from traceability.core.models import AuditAction, AuditEntry

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 7, 1)


@pytest.fixture
def world():
    w = add_competitor(build_world())
    w.cqc = OrganisationFactory(role=Role.CERTIFICATION_BODY, slug="cqc", name="CQC", gs1_company_prefix=None)
    w.unit = Unit.objects.select_related("work_order").get(pk=w.u[4])
    w.model = ProductModel.objects.get(pk=w.unit.product_model_id)
    return w


def _register(w, **more) -> Certificate:
    fields = {
        "owner": w.brand,
        "scheme": CertificateScheme.CCC,
        "number": "2023011606000101",
        "valid_from": dt.date(2023, 1, 1),
        "valid_to": dt.date(2028, 1, 1),
        "issued_by": w.cqc,
        "product_model_ids": [w.model.pk],
    } | more
    return certificate_register(**fields)


# --- registering ----------------------------------------------------------------------------------------


def test_a_certificate_is_registered_with_its_issuer_and_what_it_covers_and_its_history_starts(world):
    # given the brand's cell model and plant
    w = world
    cell_model = CellModelFactory(owner=w.brand)
    plant = w.work_order.site
    # when
    certificate = _register(w, cell_model_ids=[cell_model.pk], site_ids=[plant.pk])
    # then
    stored = Certificate.objects.get(pk=certificate.pk)
    assert (stored.issuer, stored.issued_by, stored.status) == ("CQC", w.cqc, CertificateStatus.VALID)
    assert list(stored.product_models.all()) == [w.model]
    assert list(stored.cell_models.all()) == [cell_model]
    assert list(stored.sites.all()) == [plant]
    assert list(CertificateStatusChange.objects.filter(certificate=stored).values_list("from_status", "to_status")) == [
        ("", "valid")
    ]
    entry = AuditEntry.objects.get(action=AuditAction.CERTIFICATE_STATUS)
    assert entry.identifiers == ["certificate:ccc:2023011606000101"]
    assert entry.detail["issued_by"] == "cqc"


def test_an_issuer_the_ledger_does_not_have_is_kept_by_name():
    # given
    holder = OrganisationFactory()
    # when
    certificate = certificate_register(
        owner=holder,
        scheme=CertificateScheme.UN_38_3,
        number="UN383-1",
        issuer="TÜV Rheinland",
        valid_from=dt.date(2023, 1, 1),
        valid_to=dt.date(2026, 1, 1),
    )
    # then
    assert (certificate.issuer, certificate.issued_by) == ("TÜV Rheinland", None)


@pytest.mark.parametrize("role", [Role.BRAND, Role.REGULATOR, Role.DISTRIBUTOR])
def test_a_certificate_issued_by_an_organisation_that_is_no_certification_body_is_refused(world, role):
    # given an organisation of another role
    w = world
    not_a_body = OrganisationFactory(role=role, slug="not-a-body")
    # when
    with pytest.raises(CertificateRefused) as refused:
        _register(w, issued_by=not_a_body)
    # then
    assert refused.value.code == "issuer_not_certification_body"
    assert refused.value.field == "issued_by"
    assert str(refused.value) == (
        "'not-a-body' is not a certification body: a certificate's issuer must hold the certification body"
        " role (or be named as text when the ledger does not have it)"
    )
    assert not Certificate.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.CERTIFICATE_STATUS).exists()


@pytest.mark.parametrize("covered", ["product_model_ids", "cell_model_ids", "site_ids"])
def test_a_certificate_covering_another_organisations_models_or_sites_is_refused_and_nothing_is_written(world, covered):
    # given the competitor's product model, cell model and site
    w = world
    foreign = {
        "product_model_ids": ProductModelFactory(owner=w.other_brand),
        "cell_model_ids": CellModelFactory(owner=w.other_brand),
        "site_ids": SiteFactory(owner=w.other_brand),
    }[covered]
    # when
    with pytest.raises(CertificateRefused) as refused:
        _register(w, **{covered: [foreign.pk]})
    # then
    assert (refused.value.code, refused.value.field) == ("coverage_not_holders", covered)
    assert f"{foreign.pk}: not {w.brand.slug!r}'s" in str(refused.value)
    assert not Certificate.objects.exists()


# --- a unit's standing ----------------------------------------------------------------------------------


def test_a_unit_of_a_covered_model_stands_valid_and_follows_its_certificates_status(world):
    # given
    w = world
    certificate = _register(w)
    # then
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).standing == Standing.VALID
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).certificate == certificate
    # when SAMR suspends it
    certificate_change_status(certificate=certificate, status=CertificateStatus.SUSPENDED, reason="debris")
    # then
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).standing == Standing.SUSPENDED
    # and once revoked
    certificate_change_status(certificate=certificate, status=CertificateStatus.REVOKED, reason="debris")
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).standing == Standing.REVOKED


def test_a_certificate_past_its_validity_answers_expired_before_the_nightly_expiry_marks_it(world):
    # given a certificate still marked valid, ended last year
    w = world
    _register(w, valid_to=dt.date(2024, 12, 31))
    # then
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).standing == Standing.EXPIRED
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=dt.date(2024, 6, 1)).standing == Standing.VALID


def test_no_certificate_of_the_scheme_or_none_started_yet_answers_none(world):
    # given a 3C certificate starting next year, and no UL 2056 certificate
    w = world
    _register(w, valid_from=dt.date(2026, 1, 1))
    # then
    answers = {a.scheme: a for a in unit_certificates(w.unit, on=TODAY)}
    assert set(answers) == set(CertificateScheme.values)
    assert answers[CertificateScheme.CCC].standing == Standing.NONE
    assert answers[CertificateScheme.UL_2056] == (
        answers[CertificateScheme.UL_2056].__class__(CertificateScheme.UL_2056, Standing.NONE, None)
    )


def test_a_certificate_naming_sites_covers_only_units_made_at_them(world):
    # given a certificate naming another plant of the brand than the unit's work order's
    w = world
    _register(w, site_ids=[SiteFactory(owner=w.brand).pk])
    # then
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).standing == Standing.NONE
    # and one naming the unit's plant covers it
    _register(w, number="2023011606000102", site_ids=[w.work_order.site_id])
    assert unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY).certificate.number == "2023011606000102"


def test_a_valid_certificate_answers_before_a_suspended_one_of_the_same_model(world):
    # given two 3C certificates of the model, the newer one suspended
    w = world
    _register(w)
    newer = _register(w, number="2024011606000001", valid_to=dt.date(2029, 1, 1))
    certificate_change_status(certificate=newer, status=CertificateStatus.SUSPENDED, reason="audit")
    # then
    answer = unit_certificate(w.unit, CertificateScheme.CCC, on=TODAY)
    assert (answer.standing, answer.certificate.number) == (Standing.VALID, "2023011606000101")


def test_the_standing_is_read_in_a_fixed_number_of_queries(world):
    # given many certificates of the model
    w = world
    for n in range(10):
        _register(w, number=f"C{n}", scheme=CertificateScheme.values[n % 4])
    # when
    with CaptureQueriesContext(connection) as queries:
        unit_certificates(w.unit, on=TODAY)
    # then: the certificates, and their product models, cell models and sites
    assert len(queries) == 4


# --- REST ----------------------------------------------------------------------------------------------


def _url(unit: Unit, query: str = "") -> str:
    return f"/api/v1/units/{quote(urn(unit.identity), safe='')}/certificates/{query}"


def test_the_owner_asks_whether_its_units_3c_certificate_is_valid(world):
    # given
    w = world
    plant = w.work_order.site
    _register(w, site_ids=[plant.pk])
    # when
    response = client_for(member(w.brand)).get(_url(w.unit, "?scheme=ccc&on=2025-07-01"))
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["on"] == "2025-07-01"
    assert body["subject"]["serial"] == "U4"
    assert body["certificates"] == [
        {
            "scheme": "ccc",
            "standing": "valid",
            "certificate": {
                "scheme": "ccc",
                "number": "2023011606000101",
                "holder": w.brand.slug,
                "issuer": "CQC",
                "issued_by": "cqc",
                "status": "valid",
                "valid_from": "2023-01-01",
                "valid_to": "2028-01-01",
                "covers": {
                    "product_models": [w.model.model_number],
                    "cell_models": [],
                    "sites": [{"id": plant.pk, "name": plant.name, "gln": plant.gln}],
                },
            },
        }
    ]


def test_a_distributor_that_received_the_unit_and_a_regulator_see_its_standing(world):
    # given the unit was shipped to d2 (in carton k2)
    w = world
    _register(w)
    for organisation in (w.d2, OrganisationFactory(role=Role.REGULATOR)):
        # when
        response = client_for(member(organisation)).get(_url(w.unit, "?scheme=ccc"))
        # then
        assert response.status_code == 200
        assert response.json()["certificates"][0]["standing"] == "valid"


def test_another_organisations_unit_and_its_certificate_answer_as_unknown(world):
    # given the brand's certified unit
    w = world
    _register(w)
    for organisation in (w.other_brand, w.other_distributor, w.d1):
        # when the competitor, its distributor, or a distributor that did not receive this unit asks
        response = client_for(member(organisation)).get(_url(w.unit))
        # then as if the unit did not exist
        assert response.status_code == 404
        assert response.json()["code"] == "unknown_subject"
        assert "2023011606000101" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field"),
    [("?scheme=3c", "scheme"), ("?on=yesterday", "on"), ("?schema=ccc", "schema")],
)
def test_a_bad_query_is_refused_naming_the_parameter(world, query, field):
    # when
    response = client_for(member(world.brand)).get(_url(world.unit, query))
    # then
    assert response.status_code == 400
    assert response.json()["field"] == field


# --- the data migration ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_existing_certificates_are_linked_to_the_registered_certification_body_their_issuer_names():
    # given the schema before coverage: a certification body and certificates naming issuers as text
    from django.db.migrations.executor import MigrationExecutor

    before = [("suppliers", "0005_memberships_and_api_tokens")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Organisation = old.get_model("suppliers", "Organisation")
    body = Organisation.objects.create(name="China Quality Certification Centre", slug="cqc")
    old.get_model("suppliers", "OrganisationRole").objects.create(organisation=body, role="certification_body")
    holder = Organisation.objects.create(name="Volta", slug="volta")
    old_certificate = old.get_model("suppliers", "Certificate").objects
    common = {"owner": holder, "scope": "Power banks", "valid_from": "2023-01-01", "valid_to": "2028-01-01"}
    old_certificate.create(scheme="ccc", number="1", issuer="CQC ", **common)
    old_certificate.create(scheme="ccc", number="2", issuer="china quality certification centre", **common)
    old_certificate.create(scheme="ul2056", number="3", issuer="UL Solutions", **common)
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    # then the issuers the ledger has are linked, by slug or name; the others stay text; the text stays
    new = executor.loader.project_state(latest).apps
    rows = new.get_model("suppliers", "Certificate").objects.order_by("number")
    assert list(rows.values_list("number", "issuer", "issued_by__slug")) == [
        ("1", "CQC ", "cqc"),
        ("2", "china quality certification centre", "cqc"),
        ("3", "UL Solutions", None),
    ]
