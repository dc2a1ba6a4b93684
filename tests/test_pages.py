"""The pages as each party of a chain sees them (issue 15): the page-level authorisation matrix
mirrors the REST API's (tests/test_authorisation_matrix.py), and every refusal says why and changes
nothing.

The world (tests/trace_world.py) is brand A's: U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4, shipped to distributors D1 (Germany) and D2 (France). Brand B (the competitor) built
U9 and U10 from the same cell lot C1 and shipped U9 to its own distributor (US).
"""

from __future__ import annotations

import html
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser
from django.test import Client

from packs.models import Unit
from suppliers.models import MemberRole, Membership, Role
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, urn
from tests.trace_world import add_competitor, build_world
from traceability.access.services import grant_add
from traceability.core.models import AuditEntry
from traceability.investigations.models import Investigation
from traceability.ledger.selectors import identifier_render

pytestmark = pytest.mark.django_db


def _member(organisation, role: str = MemberRole.QA, username: str | None = None) -> Any:
    user = member(None, username)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


def _page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _unread_client(user, monkeypatch: pytest.MonkeyPatch) -> tuple[Client, list[Any]]:
    """A client of ``user`` whose post the CSRF check would read (and refuse: it sends no token) if
    it came first, and the list of the multipart bodies read: empty when a post was refused unread."""
    parsed: list[Any] = []
    monkeypatch.setattr(MultiPartParser, "parse", lambda parser: parsed.append(parser))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, parsed


def _regulator(grants: list[dict[str, Any]]) -> Any:
    organisation = OrganisationFactory(role=Role.REGULATOR, all_grant=False)
    for cover in grants:
        grant_add(regulator=organisation, **cover)
    return _member(organisation)


@pytest.fixture()
def chain() -> SimpleNamespace:
    w = add_competitor(build_world())
    for organisation, country in ((w.d1, "DE"), (w.d2, "FR"), (w.other_distributor, "US")):
        organisation.country = country
        organisation.save(update_fields=["country"])
    brand_qa = _member(w.brand)
    finding = raise_finding(client_for(brand_qa), urn(w.m1.identity)).json()
    w.investigation = Investigation.objects.get(pk=finding["investigation"])
    w.users = {
        "own": brand_qa,
        "competitor": _member(w.other_brand),
        "supplier": _member(w.m1.owner),
        "distributor": _member(w.d1),
        "regulator_all": _member(OrganisationFactory(role=Role.REGULATOR)),
        "regulator_jurisdiction_in": _regulator([{"scope": "jurisdiction", "jurisdiction": "DE"}]),
        "regulator_out_of_scope": _regulator([{"scope": "jurisdiction", "jurisdiction": "JP"}]),
    }
    return w


def _unit_url(w: SimpleNamespace, number: int) -> str:
    identity = Unit.objects.get(pk=w.u[number]).identity
    return "/unit/?" + urlencode({"id": identifier_render(identity, form="digital_link")})


def _lot_url(lot) -> str:
    return "/lot/?" + urlencode({"id": identifier_render(lot.identity, form="digital_link")})


def _serials(w: SimpleNamespace, owner) -> set[str]:
    """What names an organisation's units on a page: the serial in a cell, its URN, its Digital Link."""
    return {
        name
        for unit in Unit.objects.filter(owner=owner)
        for name in (f">{unit.serial}<", urn(unit.identity), identifier_render(unit.identity, form="digital_link"))
    }


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _main(text: str) -> str:
    """The page's content, without the header (the caller's own organisation, the search box)."""
    return text.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def _refusal(response) -> str:
    """What a refused page says (its ``#refusal`` paragraph), spaces as typed."""
    return _text(response).split('id="refusal">', 1)[1].split("</p>", 1)[0].replace("\xa0", " ")


# --- the matrix --------------------------------------------------------------------------------------

UNIT_ONE = {
    "own": 200,
    "competitor": 404,
    "supplier": 404,
    "distributor": 200,  # U1 was shipped to it (on pallet P1)
    "regulator_all": 200,
    "regulator_jurisdiction_in": 200,  # sold into Germany
    "regulator_out_of_scope": 404,
}


@pytest.mark.parametrize(("caller", "status"), list(UNIT_ONE.items()))
def test_a_units_page_is_opened_as_the_apis_backward_read_is_and_unknown_and_forbidden_read_alike(
    chain, caller, status
):
    # given
    client = _page_client(chain.users[caller])
    # when
    response = client.get(_unit_url(chain, 1))
    # then
    assert response.status_code == status
    text = _text(response)
    if status == 404:
        # in the same words as an identifier that names nothing
        unknown = client.get(_unit_url(chain, 1).replace("U1", "NOPE"))
        assert unknown.status_code == 404
        assert "Nothing you may open is known as" in text and "Nothing you may open is known as" in _text(unknown)
        # nothing of the unit but the identifier the caller typed (echoed in the search box)
        text = _main(text)
        assert not any(f">{lot.code}</a>" in text for lot in (chain.mod1, chain.c1, chain.m2, chain.m1))
        assert chain.m1.owner.name not in text and chain.brand.name not in text
        assert ">U2</a>" not in text and "PowerCore" not in text
        return
    # every lot upstream of U1, each with its supplier
    assert "Unit U1" in text
    for lot in (chain.mod1, chain.c1, chain.m2, chain.m1):
        assert f">{lot.code}</a>" in text
        assert lot.owner.name in text
    # its siblings are those the caller reads in full (U2 and U3 are brand A's, shipped to D1 with U1)
    assert ">U2</a>" in text and ">U3</a>" in text
    if caller in ("own", "distributor", "regulator_jurisdiction_in"):
        assert not any(name in text for name in _serials(chain, chain.other_brand))


def test_anonymous_callers_are_sent_to_sign_in_from_every_page(chain):
    client = Client()
    for path in ("/desk/", "/desk/audit/", "/search/?q=U1", _unit_url(chain, 1), _lot_url(chain.m1)):
        response = client.get(path)
        assert response.status_code == 302, path
        signin, query = response["Location"].split("?", 1)
        assert (signin, QueryDict(query)["next"]) == ("/signin/", path)


def test_an_operator_without_an_organisation_is_sent_to_the_admin_and_shown_nothing(chain):
    # given a superuser who belongs to no organisation
    root = get_user_model().objects.create_user("root", is_staff=True, is_superuser=True)
    client = _page_client(root)
    for path in ("/desk/", _unit_url(chain, 1), _lot_url(chain.m1)):
        # when
        response = client.get(path)
        # then
        assert response.status_code == 403, path
        text = _text(response)
        assert "Your account belongs to no organisation" in text
        assert 'href="/admin/"' in text
        assert chain.m1.owner.name not in text and chain.brand.name not in text and "PowerCore" not in text


LOT_M1 = {
    "own": 200,
    "competitor": 200,  # its U9 and U10 were built from C1, made from M1
    "supplier": 200,  # its own lot
    "distributor": 200,  # it received U1..U3
    "regulator_all": 200,
    "regulator_jurisdiction_in": 200,
    "regulator_out_of_scope": 404,
}


@pytest.mark.parametrize(("caller", "status"), list(LOT_M1.items()))
def test_a_lots_downstream_counts_are_what_the_caller_may_count(chain, caller, status):
    # when
    response = _page_client(chain.users[caller]).get(_lot_url(chain.m1))
    # then
    assert response.status_code == status
    text = _text(response)
    if status == 404:
        assert "Nothing you may open is known as" in text
        assert "metallic" not in text.lower()
        return
    rows = _downstream_rows(text)
    expected = {
        "own": {"Yours": ("4", "3")},  # U1-U3 and U8 definite (through MOD1), U4-U6 potential (through C2)
        "competitor": {"Yours": ("2", "0")},
        "supplier": {"Yours": ("0", "0"), chain.brand.name: ("4", "3"), chain.other_brand.name: ("2", "0")},
        "distributor": {"Yours": ("3", "0")},
        "regulator_all": {"All": ("6", "3")},
        "regulator_jurisdiction_in": {"All": ("6", "3")},
    }[caller]
    assert rows == expected
    # the supplier never reads a brand's serials or its distributors on its lot's page
    if caller == "supplier":
        assert not any(name in text for name in _serials(chain, chain.brand) | _serials(chain, chain.other_brand))
        assert chain.d1.name not in text


def _downstream_rows(text: str) -> dict[str, tuple[str, str]]:
    import re

    table = text.split('id="downstream"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">([^<]*)</th><td>(\d+)</td><td>(\d+)</td>', table)
    return {name: (definite, potential) for name, definite, potential in rows}


def test_a_lots_findings_are_those_the_caller_reads(chain):
    # given brand A's finding on M1 (the fixture's)
    pages = {caller: _text(_page_client(user).get(_lot_url(chain.m1))) for caller, user in chain.users.items()}
    # then its recorder and a regulator in scope read it with who recorded it; the supplier, told of
    # it, reads the defect but not who recorded it; a competitor reads nothing of it
    assert "Fe 45 µm" in pages["own"] and chain.brand.name in pages["own"].split('id="findings"')[1]
    assert "Fe 45 µm" in pages["regulator_all"]
    assert "Fe 45 µm" in pages["supplier"]
    assert chain.brand.name not in pages["supplier"].split('id="findings"')[1].split("</section>")[0]
    assert "Fe 45 µm" not in pages["competitor"]


# --- search -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "query", "status", "lands_on"),
    [
        ("own", "U1", 302, "/unit/"),
        ("own", "M1", 404, None),  # a bare lot code of another organisation: not its own
        ("supplier", "M1", 302, "/lot/"),
        ("regulator_all", "U9", 302, "/unit/"),  # a regulator's bare serial: every organisation's
        ("regulator_jurisdiction_in", "U1", 302, "/unit/"),
        ("regulator_jurisdiction_in", "U4", 404, None),  # sold into France
        ("competitor", "U1", 404, None),
    ],
)
def test_search_finds_what_the_caller_may_open_by_its_bare_code(chain, caller, query, status, lands_on):
    response = _page_client(chain.users[caller]).get("/search/", {"q": query})
    assert response.status_code == status
    if lands_on:
        assert response["Location"] == lands_on + "?" + urlencode({"id": query})
    else:
        assert f"Nothing you may open is known as “{query}”." in _text(response)


def test_search_by_urn_digital_link_gtin_and_sscc(chain):
    client = _page_client(chain.users["own"])
    unit = Unit.objects.get(pk=chain.u[1])
    # an EPC URN and a Digital Link lead to the unit's page
    for spelt in (urn(unit.identity), identifier_render(unit.identity, form="digital_link")):
        response = client.get("/search/", {"q": spelt})
        assert (response.status_code, response["Location"]) == (302, "/unit/?" + urlencode({"id": spelt}))
    # a GTIN lists the caller's units of that trade item
    listed = _text(client.get("/search/", {"q": unit.gtin}))
    assert all(f">U{i}</a>" in listed for i in range(1, 9))
    # an SSCC lists the units packed in it, at any depth (pallet P1 holds carton K1: U1..U3)
    packed = _text(client.get("/search/", {"q": chain.p1.sscc}))
    assert {f"U{i}" for i in range(1, 9) if f">U{i}</a>" in packed} == {"U1", "U2", "U3"}
    # the competitor reads none of brand A's units by the same keys
    rival = _page_client(chain.users["competitor"])
    for key in (unit.gtin, chain.p1.sscc):
        refused = rival.get("/search/", {"q": key})
        assert refused.status_code == 404
        assert ">U1</a>" not in _text(refused)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Type what to look for."),
        ("urn:epc:id:sgtin:0614141.112345", "is not a valid identifier"),
        ("U1\x01", "Control characters name nothing"),
        ("U1\x00", "Null characters are not allowed."),
        ("x" * 301, "That is too long to name anything."),
        ("urn:epc:id:sgln:0614141.12345.0", "names neither a unit, a lot, a GTIN nor an SSCC"),
    ],
)
def test_a_bad_search_says_why_and_records_nothing_but_the_read(chain, query, message):
    # given
    before = AuditEntry.objects.count()
    # when
    response = _page_client(chain.users["own"]).get("/search/", {"q": query})
    # then
    assert response.status_code == 400
    assert message in _text(response)
    assert AuditEntry.objects.count() == before  # a brand's reads are not audited


# --- the organisation switcher and sign-in ---------------------------------------------------------------


def test_a_user_of_two_organisations_switches_between_them_and_never_to_a_third(chain):
    # given a user of brand A and of the competitor
    user = _member(chain.brand)
    Membership.objects.create(user=user, organisation=chain.other_brand, role=MemberRole.QA)
    client = _page_client(user)
    first = sorted([chain.brand, chain.other_brand], key=lambda o: o.slug)
    # then it acts for the first by slug, until it picks another
    assert f'value="{first[0].slug}" selected' in _text(client.get("/desk/"))
    # when it switches to the competitor
    response = client.post("/organisation/", {"organisation": chain.other_brand.slug, "next": "/desk/"})
    assert (response.status_code, response["Location"]) == (302, "/desk/")
    assert client.get(_unit_url(chain, 9)).status_code == 200
    assert client.get(_unit_url(chain, 4)).status_code == 404  # brand A's, not shipped to the competitor
    # when it names an organisation it does not belong to, or one that does not exist
    for slug in (chain.d1.slug, "no-such-organisation"):
        refused = client.post("/organisation/", {"organisation": slug, "next": "/desk/"})
        # then it is refused alike, and it still acts for the competitor
        assert refused.status_code == 400
        assert f"You are not a member of an organisation called “{slug}”." in _text(refused)
        assert client.session["ledger_organisation"] == chain.other_brand.slug


def test_the_switcher_refuses_a_redirect_off_the_site(chain):
    client = _page_client(chain.users["own"])
    response = client.post("/organisation/", {"organisation": chain.brand.slug, "next": "https://evil.example/"})
    assert (response.status_code, response["Location"]) == (302, "/desk/")


def test_a_supplier_signs_in_on_the_pages_and_a_user_of_no_organisation_is_told_why(chain, settings):
    # given a supplier's user with a password, and one of no organisation
    cache.clear()
    supplier = _member(chain.m1.owner, username="supplier-qa")
    supplier.set_password("cathode-2026")
    supplier.save()
    loner = get_user_model().objects.create_user("loner", password="cathode-2026")
    client = Client()
    # when the supplier signs in
    response = client.post("/signin/", {"username": "supplier-qa", "password": "cathode-2026"})
    # then it lands on its desk
    assert (response.status_code, response["Location"]) == (302, "/desk/")
    assert client.get("/desk/").status_code == 200
    # and signs out (POST only)
    assert client.get("/signout/").status_code == 405
    assert client.post("/signout/").status_code == 302
    assert client.get("/desk/").status_code == 302
    # when the user of no organisation signs in with the right password
    refused = client.post("/signin/", {"username": loner.username, "password": "cathode-2026"})
    # then it is told why, and is not signed in
    assert refused.status_code == 400
    assert "This account belongs to no organisation" in _text(refused)
    assert "_auth_user_id" not in client.session


def test_failed_sign_ins_are_counted_and_past_the_limit_refused_even_with_the_right_password(chain, settings):
    # given a limit of three failures
    cache.clear()
    settings.LEDGER_SIGNIN_FAILURES = 3
    user = _member(chain.brand, username="brand-qa")
    user.set_password("right-password-2026")
    user.save()
    client = Client()
    # when three wrong passwords are tried
    answers = [client.post("/signin/", {"username": "brand-qa", "password": "wrong"}).status_code for _ in range(3)]
    # then each is refused, and then the right one too, with when to try again
    assert answers == [400, 400, 400]
    blocked = client.post("/signin/", {"username": "brand-qa", "password": "right-password-2026"})
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert "Too many failed sign-ins" in _text(blocked)
    assert "_auth_user_id" not in client.session
    cache.clear()


# --- the regulator's desk and its audit --------------------------------------------------------------------


def test_a_regulators_desk_lists_every_brands_investigations_its_grants_cover_and_its_reads_are_audited(chain):
    # given the competitor's finding on C1 (which reached Germany through brand A's units: it did not)
    competitor = client_for(chain.users["competitor"])
    raise_finding(competitor, urn(chain.c1.identity))
    regulator = _page_client(chain.users["regulator_all"])
    # when the regulator opens its desk, a unit, and its audit
    desk = _text(regulator.get("/desk/"))
    regulator.get(_unit_url(chain, 9))
    audit = regulator.get("/desk/audit/")
    # then the desk lists both brands' investigations
    table = desk.split('id="investigations"')[1]
    assert chain.brand.name in table and chain.other_brand.name in table
    assert 'href="/graphql/"' in desk
    # and each read is in its audit, with what it asked and the answer
    entries = AuditEntry.objects.filter(action="read.pages", source="pages").order_by("at")
    assert [(e.detail["path"], e.detail["status"]) for e in entries] == [
        ("/desk/", 200),
        ("/unit/", 200),
        ("/desk/audit/", 200),
    ][: len(entries)]
    assert audit.status_code == 200
    assert "/unit/" in _text(audit) and "/desk/" in _text(audit)


def test_a_scoped_regulators_desk_lists_only_what_its_grants_cover(chain):
    page = _text(_page_client(chain.users["regulator_out_of_scope"]).get("/desk/"))
    assert 'id="no-investigations"' in page
    assert "Units sold into JP" in page


def test_a_brands_viewer_has_no_audit_page_and_a_brands_reads_are_not_audited(chain):
    viewer = _page_client(_member(chain.brand, MemberRole.VIEWER))
    assert viewer.get("/desk/audit/").status_code == 404
    viewer.get(_unit_url(chain, 1))
    assert not AuditEntry.objects.filter(action="read.pages").exists()


# --- paging and what a page costs -------------------------------------------------------------------------


def test_a_units_siblings_come_a_page_at_a_time_and_htmx_asks_for_the_next_section_alone(chain, monkeypatch):
    # given pages of one sibling
    monkeypatch.setattr("traceability.pages.views.PAGE_ROWS", 1)
    client = _page_client(chain.users["own"])
    # when the unit's page is read, and its "Next siblings" link asked for as htmx asks
    first = _text(client.get(_unit_url(chain, 1)))
    link = html.unescape(first.split('hx-get="', 1)[1].split('"', 1)[0])
    section = client.get(link, HTTP_HX_REQUEST="true")
    whole = _text(client.get(link))
    # then the first page lists U2 and the next U3, as a section alone for htmx and as a page without it
    assert ">U2</a>" in first and ">U3</a>" not in first
    body = _text(section)
    assert body.startswith('<section aria-labelledby="siblings-heading" id="siblings">')
    assert ">U3</a>" in body and ">U2</a>" not in body and "<html" not in body and 'id="upstream"' not in body
    assert ">U3</a>" in whole and 'id="upstream"' in whole


def test_a_units_page_costs_the_same_queries_whatever_the_number_of_siblings_shown(chain, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _page_client(chain.users["own"])
    counts = []
    for rows in (1, 2):
        monkeypatch.setattr("traceability.pages.views.PAGE_ROWS", rows)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_unit_url(chain, 1)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_desk_costs_the_same_queries_whatever_the_number_of_investigations(chain):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _page_client(chain.users["regulator_all"])
    with CaptureQueriesContext(connection) as one:
        client.get("/desk/")
    for lot in (chain.c1, chain.c4):
        raise_finding(client_for(chain.users["own"]), urn(lot.identity))
    with CaptureQueriesContext(connection) as three:
        page = _text(client.get("/desk/"))
    assert page.count("<tr>") == 1 + 3
    # the regulator's audit entry is written in both; nothing is read per investigation
    assert len(three) == len(one)


def test_a_units_page_lists_the_investigations_the_caller_reads_of_it_or_a_lot_it_was_made_from(chain):
    # given brand A's investigation of M1 (the fixture's), which U9 (brand B's, from C1) was made from
    def listed(caller: str, unit: int) -> str:
        page = _text(_page_client(chain.users[caller]).get(_unit_url(chain, unit)))
        return page.split('id="investigations-heading"', 1)[1].split("</section>", 1)[0]

    # then brand A reads it on U1's page, a regulator on U9's, and brand B not on its own U9's
    assert f"<td>{chain.investigation.pk}</td>" in listed("own", 1)
    assert f"<td>{chain.investigation.pk}</td>" in listed("regulator_all", 9)
    competitor = listed("competitor", 9)
    assert f"<td>{chain.investigation.pk}</td>" not in competitor and 'id="no-investigations"' in competitor
    # and U7 (from C4 only) names none
    assert 'id="no-investigations"' in listed("own", 7)


@pytest.mark.parametrize(
    ("caller", "listed"),
    [
        ("own", True),
        ("competitor", False),
        ("supplier", False),  # told of the finding on its lot (the lot's page), not the brand's investigation
        ("distributor", False),
        ("regulator_all", True),
        ("regulator_jurisdiction_in", True),  # its run reached Germany
        ("regulator_out_of_scope", False),
    ],
)
def test_the_desk_lists_an_investigation_to_those_who_read_it_and_to_no_one_else(chain, caller, listed):
    # given brand A's investigation of M1, traced
    from tests.jobs_support import run_job

    run_job(chain.investigation.runs.get().job)
    # when
    page = _main(_text(_page_client(chain.users[caller]).get("/desk/")))
    # then
    assert (f"<td>{chain.investigation.pk}</td>" in page) is listed
    assert (chain.brand.name in page) is listed
    if not listed:
        assert 'id="no-investigations"' in page


def test_a_regulators_audit_page_shows_what_it_asked_decoded_and_nothing_unprintable(chain):
    # given a regulator's reads: a unit by its Digital Link, and a search holding a control character
    client = _page_client(chain.users["regulator_all"])
    client.get(_unit_url(chain, 1))
    client.get("/search/", {"q": "U1\x01"})
    # when it reads its audit
    page = _main(_text(client.get("/desk/audit/")))
    # then each read is there as asked, the query decoded, the control character shown as U+FFFD
    link = identifier_render(Unit.objects.get(pk=chain.u[1]).identity, form="digital_link")
    assert f"<code>/unit/?id={link}</code></td><td>200</td>" in page
    assert "<code>/search/?q=U1\ufffd</code></td><td>400</td>" in page
    assert "\x01" not in page
