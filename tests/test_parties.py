"""Parties as they are: an organisation's set of roles, a user's several memberships, hashed API tokens."""

from __future__ import annotations

import datetime as dt
import io
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from suppliers.models import ApiToken, Membership, Organisation, OrganisationRole, Role, TokenScope, api_key_hash
from suppliers.services import (
    RecordDiffers,
    api_token_create,
    api_token_issue,
    api_token_revoke,
    membership_add,
    organisation_add,
)
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.trace_world import build_world
from traceability.access.models import Grant, GrantScope
from traceability.access.policy import Actor
from traceability.core.models import AuditEntry

pytestmark = pytest.mark.django_db

FINDING = {"subject": "x:LOT-1", "category": "other", "severity": "low", "description": "x"}


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# roles


def test_an_organisation_has_a_set_of_roles_from_a_comma_list():
    # when
    run("organisation", "add", "amp", "--name", "Amp", "--role", "module_assembler,cell_maker")
    # then
    organisation = Organisation.objects.get()
    assert organisation.role_names == [Role.CELL_MAKER, Role.MODULE_ASSEMBLER]
    assert list(Organisation.objects.with_role(Role.MODULE_ASSEMBLER)) == [organisation]


def test_the_same_roles_in_another_order_change_nothing_and_others_are_refused_unless_update():
    # given
    organisation_add(slug="amp", name="Amp", roles=["cell_maker", "module_assembler"])
    # when
    same = organisation_add(slug="amp", name="Amp", roles=["module_assembler", "cell_maker", "cell_maker"])
    with pytest.raises(RecordDiffers) as refused:
        organisation_add(slug="amp", name="Amp", roles=["cell_maker"])
    updated = organisation_add(slug="amp", name="Amp", roles=["cell_maker", "carrier"], update=True)
    # then
    assert (same.created, same.changed) == (False, ())
    assert str(refused.value) == (
        "organisation amp exists with different values: roles is 'cell_maker,module_assembler', not 'cell_maker'"
    )
    assert updated.changed == ("roles",)
    assert Organisation.objects.get().role_names == [Role.CELL_MAKER, Role.CARRIER]


def test_the_factory_takes_one_role_or_a_set():
    assert OrganisationFactory(role=Role.CERTIFICATION_BODY).role_names == [Role.CERTIFICATION_BODY]
    assert OrganisationFactory(roles=[Role.BRAND, Role.MODULE_ASSEMBLER]).role_names == [
        Role.MODULE_ASSEMBLER,
        Role.BRAND,
    ]


def test_organisation_list_prints_the_roles():
    # given
    run("organisation", "add", "amp", "--name", "Amp", "--role", "cell_maker,module_assembler")
    # when
    out, _ = run("organisation", "list")
    # then
    assert out == "amp\tcell_maker,module_assembler\t-\t-\tAmp\n"


# several memberships and the organisation header


@pytest.fixture()
def two_orgs_user():
    acme, beta = OrganisationFactory(slug="acme"), OrganisationFactory(slug="beta")
    user = member(acme)
    Membership.objects.create(user=user, organisation=beta, role="viewer")
    return user, acme, beta


def test_a_user_of_several_organisations_who_names_none_is_told_the_choices(two_orgs_user):
    # given
    user, _, _ = two_orgs_user
    # when
    response = client_for(user).get("/api/v1/findings/")
    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "organisation_ambiguous",
        "message": "you are a member of several organisations: say which one this request acts for"
        " in the X-Ledger-Organisation header (acme, beta)",
    }


def test_the_header_chooses_the_organisation_and_its_role(two_orgs_user):
    # given
    user, _, _ = two_orgs_user
    client = client_for(user)
    # when
    as_acme = client.post("/api/v1/findings/", FINDING, format="json", headers={"X-Ledger-Organisation": "acme"})
    as_beta = client.post("/api/v1/findings/", FINDING, format="json", headers={"X-Ledger-Organisation": "beta"})
    # then acme's QA engineer gets past authorisation (its subject is unknown), beta's viewer does not
    assert (as_acme.status_code, as_acme.json()["code"]) != (403, "read_only")
    assert (as_beta.status_code, as_beta.json()["code"]) == (403, "read_only")


def test_a_header_naming_an_organisation_the_user_is_no_member_of_answers_not_found(two_orgs_user):
    # given
    user, _, _ = two_orgs_user
    OrganisationFactory(slug="gamma")
    # when
    existing = client_for(user).get("/api/v1/findings/", headers={"X-Ledger-Organisation": "gamma"})
    missing = client_for(user).get("/api/v1/findings/", headers={"X-Ledger-Organisation": "nowhere"})
    # then both answer alike: whether gamma exists does not leak
    assert (existing.status_code, existing.json()) == (
        404,
        {"code": "not_found", "message": "no such organisation: 'gamma'"},
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_the_caller_is_read_in_one_query_with_the_header(two_orgs_user):
    # given
    user, _, _ = two_orgs_user
    client = client_for(user)
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/findings/", headers={"X-Ledger-Organisation": "beta"})
    # then
    assert response.status_code == 200
    assert len([q for q in queries if "suppliers_membership" in q["sql"]]) == 1


def test_membership_add_for_a_second_organisation_keeps_the_first():
    # given
    acme, beta = OrganisationFactory(slug="acme"), OrganisationFactory(slug="beta")
    membership_add(username="mes", organisation=acme, role="admin")
    # when
    second = membership_add(username="mes", organisation=beta)
    # then
    assert second.created
    assert sorted(Membership.objects.values_list("organisation__slug", "role")) == [("acme", "admin"), ("beta", "qa")]


# tokens


def test_a_token_is_stored_hashed_and_the_database_never_holds_its_key():
    # given
    membership = member(OrganisationFactory()).memberships.get()
    # when
    token, key = api_token_create(membership=membership)
    # then
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in str(stored)
    assert (stored["key_hash"], stored["key_prefix"], len(key)) == (api_key_hash(key), key[:8], 40)
    assert token_client(key).get("/api/v1/findings/").status_code == 200


def test_a_token_acts_for_its_membership_organisation_without_the_header(two_orgs_user):
    # given a user of two organisations with a token of the viewer membership (beta)
    user, _, beta = two_orgs_user
    _, key = api_token_create(membership=user.memberships.get(organisation=beta))
    client = token_client(key)
    # when
    listed = client.get("/api/v1/findings/")
    written = client.post("/api/v1/findings/", FINDING, format="json")
    other = client.get("/api/v1/findings/", headers={"X-Ledger-Organisation": "acme"})
    # then
    assert listed.status_code == 200
    assert (written.status_code, written.json()["code"]) == (403, "read_only")
    assert (other.status_code, other.json()["code"]) == (404, "not_found")


def test_a_read_scoped_token_reads_and_its_writes_are_refused():
    # given a QA engineer's read-only token
    membership = member(OrganisationFactory()).memberships.get()
    _, key = api_token_create(membership=membership, scope=TokenScope.READ)
    client = token_client(key)
    # when
    listed = client.get("/api/v1/findings/")
    written = client.post("/api/v1/findings/", FINDING, format="json")
    # then
    assert listed.status_code == 200
    assert written.status_code == 403
    assert written.json() == {
        "code": "read_only",
        "message": "this API token's scope is read: writes need a token with write scope",
    }


def test_an_expired_token_is_refused():
    # given a token that expired a second ago
    membership = member(OrganisationFactory()).memberships.get()
    token, key = api_token_create(membership=membership, expires_at=timezone.now() + dt.timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # when
    response = token_client(key).get("/api/v1/findings/")
    # then
    assert (response.status_code, response.json()) == (
        401,
        {"code": "authentication_failed", "message": "Token expired."},
    )


def test_a_revoked_token_stops_working_at_once():
    # given
    membership = member(OrganisationFactory()).memberships.get()
    token, key = api_token_create(membership=membership)
    assert token_client(key).get("/api/v1/findings/").status_code == 200
    # when
    first, again = api_token_revoke(token=token), api_token_revoke(token=token)
    # then
    assert (first, again) == (True, False)
    assert token_client(key).get("/api/v1/findings/").json() == {
        "code": "authentication_failed",
        "message": "Token revoked.",
    }


def test_a_regulators_token_reads_everything_only_while_its_all_grant_lasts():
    # given a brand's finding, and a regulator's token that has read it under its all grant
    w = build_world()
    raise_finding(client_for(member(w.brand)), urn(w.m1.identity))
    regulator = OrganisationFactory(role=Role.REGULATOR)
    _, key = api_token_create(membership=member(regulator).memberships.get(), scope="read")
    before = token_client(key).get("/api/v1/findings/").json()["results"]
    time.sleep(0.05)
    # when the grant expires after that request, with nothing else changed (the token's sign-in is a
    # statement compiled once per process: the expiry must be judged by each request's clock)
    Grant.objects.filter(regulator=regulator).update(expires_at=timezone.now() - dt.timedelta(seconds=0.02))
    after = token_client(key).get("/api/v1/findings/").json()["results"]
    # then
    assert (len(before), after) == (1, [])


@pytest.mark.parametrize("role", [Role.BRAND, Role.REGULATOR])
def test_a_token_signs_in_with_one_query_that_reads_who_calls_and_for_whom(role):
    # given a member's token
    organisation = OrganisationFactory(role=role)
    user = member(organisation)
    _, key = api_token_create(membership=user.memberships.get(), scope="read")
    token_client(key).get("/api/v1/findings/")
    # when
    with CaptureQueriesContext(connection) as queries:
        response = token_client(key).get("/api/v1/findings/")
    # then the token, its membership, user and organisation and the caller's roles and grants are
    # one statement; the rest is the findings' page, and the regulator's read in the audit trail
    assert response.status_code == 200
    signing_in = [q["sql"] for q in queries.captured_queries if "suppliers_apitoken" in q["sql"]]
    assert len(signing_in) == 1
    assert all(table in signing_in[0] for table in ("suppliers_membership", "auth_user", "traceability_grant"))
    assert AuditEntry.objects.filter(user=user).count() == (2 if role == Role.REGULATOR else 0)


def test_a_token_is_shown_once_issue_gives_no_key_for_a_membership_that_has_one():
    # given
    membership = member(OrganisationFactory()).memberships.get()
    key = api_token_issue(membership=membership)
    # when
    again = api_token_issue(membership=membership)
    replaced = api_token_issue(membership=membership, replace=True)
    # then
    assert (key is not None, again, replaced is not None and replaced != key) == (True, None, True)
    assert token_client(key).get("/api/v1/findings/").status_code == 401


def test_user_add_token_with_scope_and_expiry():
    # given
    run("organisation", "add", "acme", "--name", "Acme", "--role", "brand")
    # when
    out, _ = run(
        "user", "add", "bot", "--organisation", "acme", "--token", "--scope", "read", "--expires-in-days", "30"
    )
    # then
    token = ApiToken.objects.get()
    assert token.key_hash == api_key_hash(out.splitlines()[-1])
    assert token.scope == "read"
    assert dt.timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= dt.timedelta(days=30)


def test_the_admin_makes_a_token_showing_its_key_once_and_revokes_it(admin_client):
    # given
    membership = member(OrganisationFactory()).memberships.get()
    # when
    made = admin_client.post(
        "/admin/suppliers/apitoken/add/",
        {"membership": membership.pk, "scope": "write", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    # then the message carries the key, and the key authenticates
    (message,) = [str(m) for m in made.context["messages"] if "shown this once" in str(m)]
    key = message.rsplit(" ", 1)[1]
    assert ApiToken.objects.get().key_hash == api_key_hash(key)
    assert token_client(key).get("/api/v1/findings/").status_code == 200
    # when revoked by the action
    admin_client.post(
        "/admin/suppliers/apitoken/",
        {"action": "revoke", "_selected_action": [ApiToken.objects.get().pk]},
    )
    # then
    assert token_client(key).get("/api/v1/findings/").status_code == 401


def test_issuing_and_revoking_a_token_are_audited_by_its_key_prefix_never_its_key():
    # given
    operator = get_user_model().objects.create_user(username="root", is_superuser=True)
    membership = member(OrganisationFactory(slug="acme"), "bot").memberships.get()
    key = api_token_issue(membership=membership, scope=TokenScope.READ)
    token = ApiToken.objects.get()
    # when revoked twice
    revoked = [api_token_revoke(token=token, by=operator), api_token_revoke(token=token, by=operator)]
    # then one entry each, the second revocation changing nothing
    assert revoked == [True, False]
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.username, e.organisation_id, e.identifiers) for e in entries] == [
        ("token.issue", "", membership.organisation_id, ["user:bot"]),
        ("token.revoke", "root", membership.organisation_id, ["user:bot"]),
    ]
    assert [e.detail for e in entries] == [
        {"key_prefix": key[:8], "scope": "read", "expires_at": None, "replaced": 0},
        {"key_prefix": key[:8]},
    ]
    assert [e for e in entries if key in json.dumps([e.identifiers, e.detail])] == []


# the access policy reads the set of roles


def test_the_policy_reads_the_set_of_roles():
    # given
    regulator = OrganisationFactory(roles=[Role.CERTIFICATION_BODY, Role.REGULATOR])
    assembling_shop = OrganisationFactory(roles=[Role.DISTRIBUTOR, Role.MODULE_ASSEMBLER])
    carrier = OrganisationFactory(roles=[Role.DISTRIBUTOR, Role.CARRIER])
    # when
    actors = [Actor.of(o, "admin") for o in (regulator, assembling_shop, carrier)]
    # then a regulator is one when the role is among its roles; any maker's role records findings
    assert [(a.regulator, a.sees_all, a.may_write, a.records_findings) for a in actors] == [
        (True, True, False, False),
        (False, False, True, True),
        (False, False, True, False),
    ]


def test_a_request_acts_with_the_roles_of_the_organisation_it_names():
    # given a QA engineer of a shop that only sells and of one that also assembles modules
    shop = OrganisationFactory(slug="shop", roles=[Role.DISTRIBUTOR])
    OrganisationFactory(slug="amp", roles=[Role.DISTRIBUTOR, Role.MODULE_ASSEMBLER])
    user = member(shop)
    membership_add(username=user.username, organisation=Organisation.objects.get(slug="amp"))
    client = client_for(user)
    # when
    as_shop = client.post("/api/v1/findings/", FINDING, format="json", headers={"X-Ledger-Organisation": "shop"})
    as_amp = client.post("/api/v1/findings/", FINDING, format="json", headers={"X-Ledger-Organisation": "amp"})
    # then the shop is told of findings; the assembler records them (this subject is unknown to it)
    assert (as_shop.status_code, as_shop.json()["code"]) == (403, "no_findings")
    assert (as_amp.status_code, as_amp.json()["code"]) == (400, "unknown_subject")


def test_a_regulators_read_is_audited_when_the_request_acts_for_the_regulator_only():
    # given a user of a brand and of a regulator
    acme = OrganisationFactory(slug="acme")
    samr = OrganisationFactory(slug="samr", roles=[Role.REGULATOR])
    user = member(acme, "officer")
    Membership.objects.create(user=user, organisation=samr, role="viewer")
    client = client_for(user)
    # when
    as_acme = client.get("/api/v1/findings/", headers={"X-Ledger-Organisation": "acme"})
    as_samr = client.get("/api/v1/findings/", headers={"X-Ledger-Organisation": "samr"})
    unnamed = client.get("/api/v1/findings/")
    # then
    assert (as_acme.status_code, as_samr.status_code, unnamed.status_code) == (200, 200, 400)
    assert list(AuditEntry.objects.values_list("action", "organisation__slug", "detail__path")) == [
        ("read.api", "samr", "/api/v1/findings/")
    ]


# the admin: staff of several organisations, and who sets roles


def test_staff_of_two_organisations_see_both_in_the_admin_and_no_other():
    # given
    acme, beta, gamma = (OrganisationFactory(slug=slug) for slug in ("acme", "beta", "gamma"))
    staff = get_user_model().objects.create_user(username="staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_organisation"))
    for organisation in (acme, beta):
        Membership.objects.create(user=staff, organisation=organisation)
    client = Client()
    client.force_login(staff)
    # when
    listed = client.get("/admin/suppliers/organisation/")
    other = client.get(f"/admin/suppliers/organisation/{gamma.pk}/change/")
    # then
    assert sorted(o.slug for o in listed.context["cl"].result_list) == ["acme", "beta"]
    assert other.status_code == 404


def test_only_operators_change_an_organisations_roles_in_the_admin(admin_client):
    # given staff of acme holding every permission on organisations and their roles
    acme = OrganisationFactory(slug="acme")
    staff = get_user_model().objects.create_user(username="staff", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__model__in=["organisation", "organisationrole"]))
    Membership.objects.create(user=staff, organisation=acme)
    client = Client()
    client.force_login(staff)
    url = f"/admin/suppliers/organisation/{acme.pk}/change/"
    # when
    formsets = {
        who: {
            (f.opts.model, f.has_add_permission, f.has_change_permission, f.has_delete_permission)
            for f in response.context["inline_admin_formsets"]
        }
        for who, response in (("staff", client.get(url)), ("operator", admin_client.get(url)))
    }
    # then the roles inline shows the organisation's own staff its roles, to read only
    assert (OrganisationRole, False, False, False) in formsets["staff"]
    assert (OrganisationRole, True, True, True) in formsets["operator"]


# regulators' grants


def test_grant_add_is_idempotent_and_grant_list_prints_the_active_grants():
    # given
    run("organisation", "add", "samr", "--name", "SAMR", "--role", "regulator")
    # when
    _, first = run("grant", "add", "samr", "--all")
    _, again = run("grant", "add", "samr", "--all")
    run("grant", "add", "samr", "--jurisdiction", "cn")
    out, _ = run("grant", "list")
    # then
    assert (first, again) == ("samr granted all\n", "samr holds all already, unchanged\n")
    assert out == "samr\tall\nsamr\tjurisdiction:CN\n"
    assert list(AuditEntry.objects.filter(action="grant.add").order_by("id").values_list("identifiers", flat=True)) == [
        ["grant:all"],
        ["grant:jurisdiction:CN"],
    ]


def test_only_a_regulator_is_granted_and_only_what_exists():
    # given
    run("organisation", "add", "acme", "--name", "Acme", "--role", "brand")
    run("organisation", "add", "samr", "--name", "SAMR", "--role", "regulator")
    # when
    refused = [
        pytest.raises(CommandError, run, "grant", "add", *args).value
        for args in (
            ("acme", "--all"),
            ("nowhere", "--all"),
            ("samr", "--investigation", "999"),
            ("samr", "--jurisdiction", "China"),
        )
    ]
    # then
    assert [str(e) for e in refused] == [
        "grant to acme: organisation acme has not the regulator role: only regulators hold grants",
        "no organisation 'nowhere': register it first (organisation add … --role regulator)",
        "no investigation 999",
        "grant to samr: jurisdiction 'CHINA' must be an ISO 3166-1 alpha-2 code, e.g. CN",
    ]
    assert not Grant.objects.exists()


def test_grant_revoke_ends_the_active_grant_keeps_its_row_and_is_audited_once():
    # given
    run("organisation", "add", "samr", "--name", "SAMR", "--role", "regulator")
    run("grant", "add", "samr", "--all")
    run("grant", "add", "samr", "--jurisdiction", "CN")
    # when
    _, first = run("grant", "revoke", "samr", "--jurisdiction", "cn")
    _, again = run("grant", "revoke", "samr", "--jurisdiction", "CN")
    _, never = run("grant", "revoke", "samr", "--jurisdiction", "DE")
    out, _ = run("grant", "list")
    # then
    assert (first, again, never) == (
        "samr no longer holds jurisdiction:CN\n",
        "samr holds no active grant of jurisdiction:CN, unchanged\n",
        "samr holds no active grant of jurisdiction:DE, unchanged\n",
    )
    assert out == "samr\tall\n"
    ended = Grant.objects.get(scope=GrantScope.JURISDICTION)  # kept, with when it ended
    assert ended.revoked_at is not None and ended.revoked_at >= ended.granted_at
    revokes = AuditEntry.objects.filter(action="grant.revoke")
    assert list(revokes.values_list("identifiers", flat=True)) == [["grant:jurisdiction:CN"]]
    assert revokes.get().organisation.slug == "samr"
    # and the same cover may be granted again, as a new grant
    run("grant", "add", "samr", "--jurisdiction", "CN")
    assert Grant.objects.filter(scope=GrantScope.JURISDICTION).count() == 2


def test_grant_revoke_refuses_what_grant_add_refuses_and_changes_nothing():
    # given
    run("organisation", "add", "acme", "--name", "Acme", "--role", "brand")
    run("organisation", "add", "samr", "--name", "SAMR", "--role", "regulator")
    run("grant", "add", "samr", "--all")
    # when
    refused = [
        str(pytest.raises(CommandError, run, "grant", "revoke", *args).value)
        for args in (
            ("acme", "--all"),
            ("nowhere", "--all"),
            ("samr", "--investigation", "999"),
            ("samr", "--jurisdiction", "China"),
        )
    ]
    # then
    assert refused == [
        "grant of acme: organisation acme has not the regulator role: only regulators hold grants",
        "no organisation 'nowhere': register it first (organisation add … --role regulator)",
        "no investigation 999",
        "grant of samr: jurisdiction 'CHINA' must be an ISO 3166-1 alpha-2 code, e.g. CN",
    ]
    assert not Grant.objects.filter(revoked_at__isnull=False).exists()
    assert not AuditEntry.objects.filter(action="grant.revoke").exists()


def test_a_grant_may_expire_and_then_covers_nothing():
    # given
    run("organisation", "add", "samr", "--name", "SAMR", "--role", "regulator")
    # when
    past = pytest.raises(CommandError, run, "grant", "add", "samr", "--all", "--expires", "2000-01-01").value
    malformed = pytest.raises(CommandError, run, "grant", "add", "samr", "--all", "--expires", "soon").value
    run("grant", "add", "samr", "--all", "--expires", "2999-06-30")
    listed, _ = run("grant", "list")
    expiring = Actor.of(Organisation.objects.get(slug="samr"), "viewer")
    Grant.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = Actor.of(Organisation.objects.get(slug="samr"), "viewer")
    after, _ = run("grant", "list")
    _, renewed = run("grant", "add", "samr", "--all")
    # then
    assert str(past) == "grant to samr: the grant would expire at 2000-01-01 00:00, in the past"
    assert "'soon' is not an ISO 8601 date or time" in str(malformed)
    assert listed == "samr\tall\tuntil 2999-06-30T00:00:00Z\n"
    assert (expiring.sees_all, expired.sees_all, after) == (True, False, "")
    assert renewed == "samr granted all\n"  # the expired grant made way for a new one
    assert Grant.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_regulator_sees_all_only_with_an_active_all_grant():
    # given a regulator with no grant, one with an investigation's, one with all, one whose all was revoked
    bare = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    investigating = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    Grant.objects.create(regulator=investigating, scope=GrantScope.JURISDICTION, jurisdiction="CN")
    granted = OrganisationFactory(role=Role.REGULATOR)
    revoked = OrganisationFactory(role=Role.REGULATOR)
    Grant.objects.filter(regulator=revoked).update(revoked_at=timezone.now())
    # when
    actors = [Actor.of(o, "viewer") for o in (bare, investigating, granted, revoked)]
    # then every one is a regulator, reading only; one sees everything
    assert [(a.regulator, a.may_write, a.sees_all) for a in actors] == [
        (True, False, False),
        (True, False, False),
        (True, False, True),
        (True, False, False),
    ]


def test_a_regulators_requests_see_what_its_grant_allows_and_are_audited_either_way():
    # given a brand's finding, and a regulator's officer before and after its all grant
    w = build_world()
    raise_finding(client_for(member(w.brand)), urn(w.m1.identity))
    regulator = OrganisationFactory(slug="samr", role=Role.REGULATOR, all_grant=False)
    client = client_for(member(regulator, "officer"))
    # when
    before = client.get("/api/v1/findings/").json()["results"]
    run("grant", "add", "samr", "--all")
    after = client_for(get_user_model().objects.get(username="officer")).get("/api/v1/findings/").json()["results"]
    # then
    assert (len(before), len(after)) == (0, 1)
    assert AuditEntry.objects.filter(action="read.api", organisation=regulator).count() == 2
