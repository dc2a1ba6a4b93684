"""The operator commands ``organisation add|list`` and ``user add|list``: what a deployment script runs
on a fresh ledger before anything can be imported."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from cells.models import Lot
from suppliers.models import ApiToken, Membership, Organisation, Role, api_key_hash
from tests.test_epcis_capture import document, transformation, units_of

pytestmark = pytest.mark.django_db

User = get_user_model()


def run(*args: str) -> tuple[str, str]:
    """Standard output and standard error of one command."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        run(*args)
    return str(raised.value)


def acme_add(*extra: str) -> tuple[str, str]:
    return run(
        "organisation", "add", "acme", "--name", "Acme Cells", "--role", "cell_maker", "--gs1-prefix", "4012345", *extra
    )


def rows() -> tuple[int, int, int]:
    return Organisation.objects.count(), User.objects.count(), Membership.objects.count()


def api_status(key: str) -> int:
    return Client().get("/api/v1/findings/", headers={"Authorization": f"Token {key}"}).status_code


# organisation add


def test_organisation_add_registers_an_organisation_with_its_gs1_numbers():
    # when
    out, err = acme_add("--pgln", "4012345000009", "--country", "de")
    # then
    organisation = Organisation.objects.get()
    assert (
        organisation.slug,
        organisation.name,
        organisation.role_names,
        organisation.gs1_company_prefix,
        organisation.pgln,
        organisation.country,
    ) == ("acme", "Acme Cells", [Role.CELL_MAKER], "4012345", "4012345000009", "DE")
    assert (out, err) == ("", "organisation acme created\n")


def test_organisation_add_again_with_the_same_arguments_changes_nothing_and_succeeds():
    # given
    acme_add()
    before = Organisation.objects.values().get()
    # when
    out, err = acme_add()
    # then
    assert (out, err) == ("", "organisation acme exists, unchanged\n")
    assert Organisation.objects.values().get() == before


def test_organisation_add_leaves_out_options_neither_compared_nor_changed():
    # given
    acme_add("--pgln", "4012345000009")
    # when a re-run does not name the PGLN
    _, err = run("organisation", "add", "acme", "--name", "Acme Cells", "--role", "cell_maker")
    # then
    assert err == "organisation acme exists, unchanged\n"
    assert Organisation.objects.get().pgln == "4012345000009"


def test_organisation_add_with_different_values_is_refused_naming_each_field_and_changes_nothing():
    # given
    acme_add()
    before = Organisation.objects.values().get()
    # when
    message = refused(
        "organisation", "add", "acme", "--name", "Acme", "--role", "cell_maker", "--gs1-prefix", "4012346"
    )
    # then
    assert message == (
        "organisation acme exists with different values: name is 'Acme Cells', not 'Acme';"
        " GS1 Company Prefix is '4012345', not '4012346'; nothing changed (give --update to change them)"
    )
    assert Organisation.objects.values().get() == before


def test_organisation_add_with_update_writes_the_values_that_differ():
    # given
    acme_add()
    # when
    _, err = run(
        "organisation", "add", "acme", "--name", "Acme Cells", "--role", "brand", "--pgln", "4012345000009", "--update"
    )
    # then
    assert err == "organisation acme updated: pgln, roles\n"
    organisation = Organisation.objects.get()
    assert (organisation.role_names, organisation.gs1_company_prefix, organisation.pgln) == (
        [Role.BRAND],
        "4012345",
        "4012345000009",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--role", "maker"],
            "organisation acme: unknown role 'maker': the roles are material_supplier, cell_maker,"
            " module_assembler, brand, distributor, carrier, certification_body, regulator",
        ),
        (
            ["--role", ","],
            "organisation acme: an organisation has at least one role: material_supplier, cell_maker,"
            " module_assembler, brand, distributor, carrier, certification_body, regulator",
        ),
        (
            ["--role", "brand", "--gs1-prefix", "40123"],
            "organisation acme: GS1 Company Prefix must be 6 to 12 digits, got '40123'",
        ),
        (
            ["--role", "brand", "--gs1-prefix", "4012345678901"],
            "organisation acme: GS1 Company Prefix must be 6 to 12 digits, got '4012345678901'",
        ),
        (
            ["--role", "brand", "--gs1-prefix", "40123A5"],
            "organisation acme: GS1 Company Prefix must be 6 to 12 digits, got '40123A5'",
        ),
        (
            ["--role", "brand", "--pgln", "4012345000008"],
            "organisation acme: PGLN '4012345000008': GLN check digit is 8, expected 9",
        ),
        (
            ["--role", "brand", "--pgln", "401234500000"],
            "organisation acme: PGLN '401234500000': GLN must be 13 digits, got '401234500000'",
        ),
        (
            ["--role", "brand", "--country", "Germany"],
            "organisation acme: country must be an ISO 3166-1 alpha-2 code such as CN, got 'GERMANY'",
        ),
    ],
)
def test_organisation_add_refuses_a_malformed_value_naming_it(options, message):
    # when
    refusal = refused("organisation", "add", "acme", "--name", "Acme Cells", *options)
    # then
    assert refusal == message
    assert not Organisation.objects.exists()


def test_organisation_add_refuses_a_bad_slug_and_an_empty_name():
    # when
    bad_slug = refused("organisation", "add", "acme cells", "--name", "Acme Cells", "--role", "brand")
    empty_name = refused("organisation", "add", "acme", "--name", "  ", "--role", "brand")
    # then
    assert bad_slug == (
        "organisation acme cells: slug 'acme cells' must be ASCII letters, digits, hyphens or underscores"
    )
    assert empty_name == "organisation acme: name must be 1 to 200 characters, got 0"
    assert not Organisation.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--gs1-prefix", "4012345"],
            "organisation beta: GS1 Company Prefix 4012345 is registered by organisation acme",
        ),
        (
            ["--gs1-prefix", "40123456"],
            "organisation beta: GS1 Company Prefix 40123456 overlaps 4012345 of organisation acme"
            " (GS1 prefixes never nest: one of them is wrong)",
        ),
        (
            ["--gs1-prefix", "401234"],
            "organisation beta: GS1 Company Prefix 401234 overlaps 4012345 of organisation acme"
            " (GS1 prefixes never nest: one of them is wrong)",
        ),
        (["--pgln", "4012345000009"], "organisation beta: PGLN 4012345000009 is registered by organisation acme"),
    ],
)
def test_organisation_add_refuses_gs1_numbers_another_organisation_holds(options, message):
    # given
    acme_add("--pgln", "4012345000009")
    # when
    refusal = refused("organisation", "add", "beta", "--name", "Beta", "--role", "brand", *options)
    # then
    assert refusal == message
    assert list(Organisation.objects.values_list("slug", flat=True)) == ["acme"]


def test_organisation_add_update_refuses_a_prefix_another_organisation_holds():
    # given
    acme_add()
    run("organisation", "add", "beta", "--name", "Beta", "--role", "brand", "--gs1-prefix", "6970001")
    # when
    refusal = refused(
        "organisation", "add", "beta", "--name", "Beta", "--role", "brand", "--gs1-prefix", "4012345", "--update"
    )
    # then
    assert refusal == "organisation beta: GS1 Company Prefix 4012345 is registered by organisation acme"
    assert Organisation.objects.get(slug="beta").gs1_company_prefix == "6970001"


def test_organisation_list_prints_one_organisation_a_line():
    # given
    acme_add("--pgln", "4012345000009")
    run("organisation", "add", "beta", "--name", "Beta Power", "--role", "brand")
    # when
    out, _ = run("organisation", "list")
    # then
    assert out == "acme\tcell_maker\t4012345\t4012345000009\tAcme Cells\nbeta\tbrand\t-\t-\tBeta Power\n"


# user add


def test_user_add_makes_a_user_acting_for_the_organisation_without_a_password():
    # given
    acme_add()
    # when
    out, err = run("user", "add", "mes", "--organisation", "acme", "--email", "mes@acme.example")
    # then
    membership = Membership.objects.select_related("user", "organisation").get()
    assert (membership.user.username, membership.user.email, membership.organisation.slug) == (
        "mes",
        "mes@acme.example",
        "acme",
    )
    assert membership.user.has_usable_password() is False
    assert not ApiToken.objects.exists()
    assert (out, err) == ("", "user mes created, acting for acme\n")


def test_user_add_token_prints_the_token_alone_on_the_last_line_and_it_authenticates_the_api():
    # given
    acme_add()
    # when
    out, err = run("user", "add", "mes", "--organisation", "acme", "--token")
    # then
    key = out.splitlines()[-1]
    assert out == f"{key}\n"
    assert ApiToken.objects.get(membership__user__username="mes").key_hash == api_key_hash(key)
    assert err == (
        "user mes created, acting for acme\n"
        "user mes: new API token for acme on standard output (it is not shown again)\n"
    )
    assert api_status(key) == 200


def test_user_add_again_with_the_same_arguments_changes_nothing_and_shows_no_token():
    # given
    acme_add()
    first, _ = run("user", "add", "mes", "--organisation", "acme", "--token")
    before = rows()
    # when
    out, err = run("user", "add", "mes", "--organisation", "acme", "--token")
    # then
    assert out == ""
    assert err == (
        "user mes exists, unchanged\n"
        "user mes has an API token for acme already; it is not shown again (--new-token replaces it)\n"
    )
    assert rows() == before
    assert list(ApiToken.objects.values_list("key_hash", flat=True)) == [api_key_hash(first.strip())]


def test_user_add_new_token_replaces_the_token_and_the_old_one_stops_working():
    # given
    acme_add()
    old, _ = run("user", "add", "mes", "--organisation", "acme", "--token")
    # when
    new, err = run("user", "add", "mes", "--organisation", "acme", "--new-token")
    # then
    assert new.strip() != old.strip()
    assert list(ApiToken.objects.filter(revoked_at=None).values_list("key_hash", flat=True)) == [
        api_key_hash(new.strip())
    ]
    assert err == (
        "user mes exists, unchanged\nuser mes: new API token for acme on standard output;"
        " the previous one no longer works (it is not shown again)\n"
    )
    assert (api_status(old.strip()), api_status(new.strip())) == (401, 200)


def test_user_add_token_for_a_user_without_one_makes_it():
    # given
    acme_add()
    run("user", "add", "mes", "--organisation", "acme")
    # when
    out, err = run("user", "add", "mes", "--organisation", "acme", "--token")
    # then
    assert ApiToken.objects.get().key_hash == api_key_hash(out.strip())
    assert out == f"{out.strip()}\n"
    assert err.splitlines()[0] == "user mes exists, unchanged"


def test_user_add_with_another_email_is_refused_naming_it():
    # given
    acme_add()
    run("organisation", "add", "beta", "--name", "Beta", "--role", "brand")
    run("user", "add", "mes", "--organisation", "acme", "--email", "mes@acme.example")
    # when
    refusal = refused("user", "add", "mes", "--organisation", "beta", "--email", "mes@beta.example")
    # then
    assert refusal == (
        "user mes exists with different values: email is 'mes@acme.example', not 'mes@beta.example';"
        " nothing changed (give --update to change them)"
    )
    membership = Membership.objects.select_related("user", "organisation").get()
    assert (membership.organisation.slug, membership.user.email) == ("acme", "mes@acme.example")


def test_user_add_for_a_second_organisation_adds_a_second_membership():
    # given
    acme_add()
    run("organisation", "add", "beta", "--name", "Beta", "--role", "brand")
    run("user", "add", "mes", "--organisation", "acme", "--role", "viewer")
    # when
    _, err = run("user", "add", "mes", "--organisation", "beta", "--role", "admin")
    # then
    assert err == "user mes now also acts for beta\n"
    assert list(Membership.objects.order_by("organisation__slug").values_list("organisation__slug", "role")) == [
        ("acme", "viewer"),
        ("beta", "admin"),
    ]


def test_user_add_makes_a_user_who_acts_for_no_organisation_a_member():
    # given an administrator made with createsuperuser
    acme_add()
    User.objects.create_superuser(username="root", email="root@acme.example", password=None)
    # when
    _, err = run("user", "add", "root", "--organisation", "acme")
    # then
    assert err == "user root now also acts for acme\n"
    assert Membership.objects.get().user.username == "root"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mes", "--organisation", "nowhere"], "user mes: no organisation has the slug 'nowhere'"),
        (
            ["mes ops", "--organisation", "acme"],
            "user mes ops: username 'mes ops': Enter a valid username."
            " This value may contain only letters, numbers, and @/./+/-/_ characters.",
        ),
        (["", "--organisation", "acme"], "user : username must not be empty"),
        (
            ["m" * 151, "--organisation", "acme"],
            f"user {'m' * 151}: username '{'m' * 151}': Ensure this value has at most 150 characters (it has 151).",
        ),
        (
            ["mes", "--organisation", "acme", "--email", "mes.acme.example"],
            "user mes: email 'mes.acme.example' is not an email address",
        ),
    ],
)
def test_user_add_refuses_what_it_cannot_register_and_changes_nothing(args, message):
    # given
    acme_add()
    # when
    refusal = refused("user", "add", *args, "--token")
    # then
    assert refusal == message
    assert (User.objects.count(), ApiToken.objects.count()) == (0, 0)


def test_user_list_prints_one_membership_a_line():
    # given
    acme_add()
    run("user", "add", "mes", "--organisation", "acme", "--email", "mes@acme.example", "--token")
    User.objects.create_user(username="loner")
    # when
    out, _ = run("user", "list")
    # then
    assert out == "loner\t-\t-\t-\tno token\nmes\tacme\tqa\tmes@acme.example\t1 token(s)\n"


# a fresh ledger, as a deployment script sets it up


def test_a_fresh_ledger_imports_epcis_for_an_organisation_the_command_registered(tmp_path):
    # given an empty ledger and a brand's first MES export (its GTINs carry the brand's prefix 4012345)
    path = tmp_path / "mes.jsonld"
    path.write_text(json.dumps(document(transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]))))
    # when
    acme_add()
    out, _ = run("import_epcis", str(path), "--owner", "acme", "--no-progress")
    # then
    assert "1 events, 1 new, 0 known already, 0 declared erroneous, 0 problem(s): ledger position" in out
    assert units_of("L1") == {"U1": "definite"}
    assert Lot.objects.get().owner.slug == "acme"


def test_user_add_role_makes_a_viewer_who_reads_but_may_not_write():
    # given
    acme_add()
    token = run("user", "add", "vera", "--organisation", "acme", "--role", "viewer", "--token")[0].splitlines()[-1]
    client = Client(headers={"Authorization": f"Token {token}"})
    # when
    listed = client.get("/api/v1/findings/")
    recorded = client.post(
        "/api/v1/findings/",
        {"subject": "acme:LOT-1", "category": "other", "severity": "low", "description": "x"},
        content_type="application/json",
    )
    # then
    assert Membership.objects.get(user__username="vera").role == "viewer"
    assert listed.status_code == 200
    assert recorded.status_code == 403
    assert recorded.json()["code"] == "read_only"
    assert "viewer" in recorded.json()["message"]


def test_user_add_again_with_another_role_is_refused_and_with_update_changes_it():
    # given
    acme_add()
    run("user", "add", "vera", "--organisation", "acme", "--role", "viewer")
    # when
    message = refused("user", "add", "vera", "--organisation", "acme", "--role", "admin")
    unchanged = Membership.objects.get(user__username="vera").role
    run("user", "add", "vera", "--organisation", "acme", "--role", "admin", "--update")
    # then
    assert "role is 'viewer', not 'admin'" in message
    assert unchanged == "viewer"
    assert Membership.objects.get(user__username="vera").role == "admin"


def test_user_add_without_role_makes_a_qa_engineer_and_leaves_an_existing_role_alone():
    # given
    acme_add()
    run("user", "add", "quinn", "--organisation", "acme")
    run("user", "add", "vera", "--organisation", "acme", "--role", "viewer")
    # when
    _, err = run("user", "add", "vera", "--organisation", "acme")
    # then
    assert Membership.objects.get(user__username="quinn").role == "qa"
    assert Membership.objects.get(user__username="vera").role == "viewer"
    assert "exists, unchanged" in err
