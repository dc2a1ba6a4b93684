"""The ledger's side of identifiers: prefixes registered and learnt, rendering, admin look-up."""

import datetime as dt

import pytest
from django.db import transaction

from tests.factories import OrganisationFactory, WorkOrderFactory
from traceability.genealogy.commissioning import units_create
from traceability.gs1 import identifiers
from traceability.ledger.models import LearntCompanyPrefix
from traceability.ledger.selectors import (
    AmbiguousSubject,
    MalformedSubject,
    PrefixLength,
    UnknownSubject,
    UnsupportedSubject,
    company_prefix_lengths,
    identifier_render,
    subject_find,
)
from traceability.ledger.services import company_prefixes_learn

pytestmark = pytest.mark.django_db

# GTIN 06970011000013: GS1's table says a 7-digit prefix for 697, its owner may say otherwise.
GTIN = "06970011000013"
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def test_registered_prefix_decides_where_the_urn_splits():
    # given an organisation whose registered prefix is 9 digits, not the 7 GS1's table suggests
    OrganisationFactory(gs1_company_prefix="697001100")
    # when
    urn = identifier_render(f"sgtin:{GTIN}:400", form="epc")
    # then
    assert urn == "urn:epc:id:sgtin:697001100.0001.400"


def test_prefix_learnt_from_a_urn_is_used_for_the_digital_link_twin():
    # given a partner's URN that spells out an 8-digit prefix
    text = "urn:epc:id:sgtin:69700110.00001.400"
    parsed = identifiers.parse(text)
    # when
    learnt = company_prefixes_learn([parsed], source=[text])
    again = company_prefixes_learn([parsed], source=[text])
    # then the same item seen as a Digital Link renders back to the partner's URN
    twin = identifiers.parse(f"https://id.gs1.org/01/{GTIN}/21/400").identity
    assert twin == parsed.identity
    assert (learnt, again) == (1, 0)
    assert identifier_render(twin.canonical, form="epc") == text
    assert LearntCompanyPrefix.objects.get().learnt_from == text


def test_without_registered_or_learnt_prefix_gs1s_table_decides():
    assert company_prefix_lengths()("0614141123452") is None
    assert identifier_render("sgtin:10614141123459:400", form="epc") == "urn:epc:id:sgtin:0614141.112345.400"
    assert identifier_render("sgtin:10614141123459:400", form="digital_link") == (
        "https://id.gs1.org/01/10614141123459/21/400"
    )


def test_a_prepared_page_reads_only_its_own_prefixes_and_renders_as_the_whole_table_does(
    django_assert_num_queries,
):
    # given a registered 9-digit prefix, a learnt 8-digit one, and prefixes of others in the table
    OrganisationFactory(gs1_company_prefix="697001100")
    company_prefixes_learn([identifiers.parse("urn:epc:id:sscc:69700120.012345678")], source=["urn"])
    for prefix in ("4012345", "5012345", "697001"):
        OrganisationFactory(gs1_company_prefix=prefix)
    sscc = identifiers.parse("urn:epc:id:sscc:69700120.012345678").identity.canonical
    page = [f"sgtin:{GTIN}:400", sscc, "lgtin:10614141123459:L1", "own-lot:romax:L7"]
    prepared = PrefixLength()
    # when the page's identities are prepared, then rendered
    with django_assert_num_queries(1):
        prepared.prepare(page)
    with django_assert_num_queries(0):
        rendered = [identifier_render(c, form="epc", prefix_length=prepared) for c in page]
    # then each splits as the whole table says (697001100 over the shorter 697001 it also holds)
    assert rendered == [identifier_render(c, form="epc", prefix_length=PrefixLength()) for c in page]
    assert rendered[:3] == [
        "urn:epc:id:sgtin:697001100.0001.400",
        "urn:epc:id:sscc:69700120.012345678",
        "urn:epc:class:lgtin:0614141.112345.L1",
    ]


def test_own_codes_render_as_the_code_itself():
    assert identifier_render("own-serial:romax:RS-000123", form="epc") == "RS-000123"
    assert identifier_render("own-serial:romax:RS-000123", form="canonical") == "own-serial:romax:RS-000123"


def test_admin_finds_a_unit_by_urn_or_digital_link(admin_client):
    # given
    from django.db import transaction

    from tests.factories import WorkOrderFactory
    from traceability.genealogy.commissioning import units_create

    work_order = WorkOrderFactory()
    gtin = work_order.product_model.gtin
    with transaction.atomic():
        units_create(
            owner=work_order.owner,
            product_model=work_order.product_model,
            work_order=work_order,
            serials=["400", "401"],
            produced_at=work_order.started_at,
        )
    urn = identifier_render(f"sgtin:{gtin}:400", form="epc")
    link = f"https://id.gs1.org/01/{gtin}/21/400?17=270101"
    # when
    by_urn = admin_client.get("/admin/packs/unit/", {"q": urn})
    by_link = admin_client.get("/admin/packs/unit/", {"q": link})
    malformed = admin_client.get("/admin/packs/unit/", {"q": "urn:epc:id:sgtin:0614141.112345"})
    # then
    for response in (by_urn, by_link):
        assert response.status_code == 200
        assert [u.serial for u in response.context["cl"].result_list] == ["400"]
    assert list(malformed.context["cl"].result_list) == []
    assert "is not a valid" in " ".join(str(m) for m in malformed.context["messages"])


def test_a_code_two_organisations_use_is_ambiguous_until_the_organisation_is_named():
    # given two brands that both printed serial 0001
    first, second = WorkOrderFactory(), WorkOrderFactory()
    with transaction.atomic():
        for work_order in (first, second):
            units_create(
                owner=work_order.owner, product_model=work_order.product_model, serials=["0001"], produced_at=NOW
            )
    # when / then
    with pytest.raises(AmbiguousSubject, match=r"'0001' names several things: .*; name the organisation"):
        subject_find("0001")
    assert subject_find("0001", owner=second.owner.slug).owner_id == second.owner_id
    assert subject_find("0001", owner=first.owner).owner_id == first.owner_id
    with pytest.raises(UnknownSubject, match=r"no unit of organisation 'nobody' is known as '0001'"):
        subject_find("0001", owner="nobody", units_only=True)
    with pytest.raises(UnsupportedSubject, match="names a SSCC: trace a unit"):
        subject_find("urn:epc:id:sscc:0614141.1234567890", units_only=True)


@pytest.mark.parametrize("value", ["urn:epc:id:sgtin:0614141.112345", "https://id.gs1.org/01/12345/21/400"])
def test_a_malformed_urn_or_link_is_a_malformed_subject_in_the_identifier_modules_words(value):
    # given what the identifier module says of it
    with pytest.raises(identifiers.InvalidIdentifier) as parsed:
        identifiers.parse(value)
    # when / then
    with pytest.raises(MalformedSubject) as refused:
        subject_find(value)
    assert (refused.value.code, refused.value.message) == ("invalid_identifier", str(parsed.value))
