"""Parties registered by EPCIS capture get the roles their events show (issue 12): a party receiving
cells is not a distributor. Over JSON capture and CSV import."""

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from suppliers.models import MemberRole, Membership, Organisation, OrganisationRole, Role
from tests.factories import CellModelFactory, OrganisationFactory
from tests.test_api_support import client_for, member, raise_finding, written
from tests.test_epcis_capture import PREFIX, capture, document, lgtin, sgtin, shipping, transformation
from traceability.access.policy import Actor
from traceability.events.csv_import import TEMPLATES, csv_document
from traceability.events.parties import roles_shown
from traceability.events.services import capture_now

pytestmark = pytest.mark.django_db

CELL_ITEM, MATERIAL_ITEM = "022222", "033333"  # the cell model's GTIN is 0 4012345 22222 7
CONSIGNEE = "urn:epc:id:pgln:0614141.00001"
CONSIGNEE_GLN = "0614141000012"


def _roles_of(gln: str) -> set[str]:
    return set(Organisation.objects.get(pgln=gln).role_names)


def _lot_shipping(event_id: str, lots: list[str], *, item: str, to: str = CONSIGNEE, desadv: str = "D1") -> dict:
    """A shipping ObjectEvent of lots (a quantity of each), to the owning party ``to``."""
    event = shipping(event_id, [], to=to, desadv=desadv)
    del event["epcList"]
    event["quantityList"] = [{"epcClass": lgtin(lot, item), "quantity": 100, "uom": "KGM"} for lot in lots]
    return event


def _made_lots(owner, lots: list[str], *, item: str) -> None:
    event = transformation("urn:uuid:make", lots=["PRECURSOR"])
    event["outputQuantityList"] = [{"epcClass": lgtin(lot, item), "quantity": 5, "uom": "KGM"} for lot in lots]
    capture(owner, document(event))


@pytest.fixture
def cell_maker():
    maker = OrganisationFactory(role=Role.CELL_MAKER, gs1_company_prefix=None)
    CellModelFactory(owner=maker, gtin=f"0{PREFIX}222227")
    return maker


@pytest.mark.parametrize(("item", "consumer"), [(CELL_ITEM, Role.BRAND), (MATERIAL_ITEM, Role.CELL_MAKER)])
def test_a_party_shipped_lots_by_another_gets_no_maker_role_until_its_own_receipt_shows_it_consumes_them(
    cell_maker, item, consumer
):
    # given a cell lot (a cell model's GTIN) or a material lot (no cell model's), shipped by its maker
    # to a party the ledger does not know
    _made_lots(cell_maker, ["L1"], item=item)
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-lots", ["L1"], item=item)))
    party = Organisation.objects.get(pgln=CONSIGNEE_GLN)
    # then another's event made it neither a maker nor a distributor: it may record no finding
    assert _roles_of(CONSIGNEE_GLN) == set()
    assert not Actor.of(party).opens_findings
    # when its own receipt of the lots is captured for it (an operator loading its history)
    receipt = _lot_shipping("urn:uuid:receive-lots", ["L1"], item=item)
    receipt["bizStep"] = "receiving"
    del receipt["destinationList"]
    capture(party, document(receipt))
    # then its own event shows what it is: the maker that consumes such lots
    assert _roles_of(CONSIGNEE_GLN) == {consumer}


def test_another_partys_shipment_of_lots_to_a_party_lets_it_record_no_finding_on_them_over_http(cell_maker):
    # given cells shipped by their maker to a party the ledger did not know, and a QA engineer of it
    _made_lots(cell_maker, ["C1"], item=CELL_ITEM)
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-cells", ["C1"], item=CELL_ITEM)))
    party = Organisation.objects.get(pgln=CONSIGNEE_GLN)
    user = member(None)
    Membership.objects.create(user=user, organisation=party, role=MemberRole.QA)
    before = written()
    # when it records a finding on the lot it was shipped
    response = raise_finding(client_for(user), lgtin("C1", CELL_ITEM))
    # then it is refused as any party that makes nothing is, and nothing is written
    assert response.status_code == 403 and response.json()["code"] == "no_findings"
    assert written() == before


def test_a_party_receiving_units_is_registered_as_a_distributor():
    # given a brand's unit
    brand = OrganisationFactory(gs1_company_prefix=None)
    capture(brand, document(transformation("urn:uuid:build", lots=["L1"], outputs=["U1"])))
    # when it ships the unit to an unknown party
    capture(brand, document(shipping("urn:uuid:ship-units", [sgtin("U1")], to=CONSIGNEE, desadv="D1")))
    # then
    assert _roles_of(CONSIGNEE_GLN) == {Role.DISTRIBUTOR}


def test_a_registered_party_keeps_its_roles_whatever_another_party_ships_it(cell_maker):
    # given an organisation an operator registered as a distributor, with its party GLN
    shop = OrganisationFactory(role=Role.DISTRIBUTOR, pgln=CONSIGNEE_GLN, slug="shop")
    _made_lots(cell_maker, ["C1"], item=CELL_ITEM)
    # when a cell maker ships it cells
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-cells", ["C1"], item=CELL_ITEM)))
    # then its roles are its operator's: another's shipment does not make it a maker that records findings
    assert set(Organisation.objects.get(pk=shop.pk).role_names) == {Role.DISTRIBUTOR}


def test_a_party_registered_by_capture_gains_the_roles_its_own_events_show_and_loses_none(cell_maker):
    # given a party capture registered when it received cells (its history loaded by an operator)
    _made_lots(cell_maker, ["C1"], item=CELL_ITEM)
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-cells", ["C1"], item=CELL_ITEM)))
    party = Organisation.objects.get(pgln=CONSIGNEE_GLN)
    # when its own events, captured for it, make module lots from other lots, then build units
    cells = transformation("urn:uuid:cells", lots=["M9"])
    cells["inputQuantityList"] = [{"epcClass": lgtin("M9", MATERIAL_ITEM), "quantity": 10, "uom": "KGM"}]
    cells["outputQuantityList"] = [{"epcClass": lgtin("C9", CELL_ITEM), "quantity": 10, "uom": "EA"}]
    capture(party, document(cells, transformation("urn:uuid:units", lots=["C9"], outputs=["P1"], at="02")))
    # then its roles grow with what it showed (cell lots made, units built); none is taken away
    assert set(Organisation.objects.get(pk=party.pk).role_names) == {Role.BRAND, Role.CELL_MAKER}


def test_a_party_completed_by_qa_is_no_longer_given_roles_by_capture():
    # given a party capture registered when units were shipped to it, which QA has since completed
    brand = OrganisationFactory(gs1_company_prefix=None)
    capture(brand, document(transformation("urn:uuid:build", lots=["L1"], outputs=["U1", "U2"])))
    capture(brand, document(shipping("urn:uuid:ship-1", [sgtin("U1")], to=CONSIGNEE, desadv="D1")))
    assert _roles_of(CONSIGNEE_GLN) == {Role.DISTRIBUTOR}
    party = Organisation.objects.get(pgln=CONSIGNEE_GLN)
    Organisation.objects.filter(pk=party.pk).update(slug="amp-power", name="Amp Power")
    party.refresh_from_db()
    # when its own events, captured for it, build units
    capture(party, document(transformation("urn:uuid:own-build", lots=["L2"], outputs=["P1"])))
    # then its roles are QA's now
    assert _roles_of(CONSIGNEE_GLN) == {Role.DISTRIBUTOR}


def test_a_shipment_of_another_partys_lot_shows_no_role():
    # given another organisation's lot
    owner, other = OrganisationFactory(gs1_company_prefix=None), OrganisationFactory(gs1_company_prefix=None)
    capture(other, document(transformation("urn:uuid:other", lots=["L1"], output_lots=["X1"])))
    # when a capturer ships it to a party the ledger does not know
    done = capture(owner, document(_lot_shipping("urn:uuid:ship-foreign", ["X1"], item="022222")), "proceed")
    # then the shipment is refused (one ships only what one owns), and the party gets no role from it
    assert [p["event_id"] for p in done.problems] == ["urn:uuid:ship-foreign"]
    assert not OrganisationRole.objects.filter(organisation__pgln=CONSIGNEE_GLN).exists()


def _csv(kind: str, *rows: dict) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.DictWriter(out, [c.name for c in TEMPLATES[kind].columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _load(owner, kind: str, data: bytes) -> None:
    capture_now(owner=owner, document=io.BytesIO(json.dumps(csv_document(kind, data)).encode()))


def test_csv_shipments_register_their_consignee_as_a_distributor_and_csv_assignments_show_a_brand():
    # given a brand that built a unit, from a CSV of assignments
    brand = OrganisationFactory(gs1_company_prefix=None)
    unit = {"unit_gtin": "04012345111118", "unit_serial": "S1", "built_at": "2024-07-01T08:00:00Z"}
    _load(brand, "assignments", _csv("assignments", unit | {"lot_gtin": "04012345222227", "lot": "C1"}))
    # when a CSV of shipments sends it to a party the ledger does not know
    shipped = {"despatch_advice": "DA-1", "consignee_gln": CONSIGNEE_GLN, "shipped_at": "2024-07-02T14:00:00Z"}
    _load(brand, "shipments", _csv("shipments", shipped | {"unit_gtin": "04012345111118", "unit_serial": "S1"}))
    party = Organisation.objects.get(pgln=CONSIGNEE_GLN)
    # then it is a distributor
    assert party.role_names == [Role.DISTRIBUTOR]
    # and when assignments are captured for it (an operator loading its history), it shows a brand too
    other = {"unit_gtin": "06141410000014", "unit_serial": "Z1", "built_at": "2024-07-03T08:00:00Z"}
    _load(party, "assignments", _csv("assignments", other | {"lot_gtin": "06141410000021", "lot": "P1"}))
    assert set(Organisation.objects.get(pk=party.pk).role_names) == {Role.BRAND, Role.DISTRIBUTOR}


class _Row:
    def __init__(self, event: dict) -> None:
        self.event_id, self.type, self.action, self.body = event["eventID"], event["type"], event["action"], event


@pytest.mark.parametrize("events", [1, 50])
def test_roles_are_read_and_written_in_a_fixed_number_of_queries(cell_maker, events):
    # given lots, and shipping events to many unknown parties
    _made_lots(cell_maker, [f"C{n}" for n in range(events)], item=CELL_ITEM)
    from cells.models import Lot
    from traceability.gs1.cbv import canonical_epc

    lots = {canonical_epc(lgtin(lot.code, CELL_ITEM)): lot.pk for lot in Lot.objects.filter(code__startswith="C")}
    glns = [f"urn:epc:id:pgln:0614141.{n:05d}" for n in range(events)]
    rows = [
        _Row(_lot_shipping(f"urn:uuid:s{n}", [f"C{n}"], item=CELL_ITEM, to=gln) | {"epcList": [sgtin(f"S{n}")]})
        for n, gln in enumerate(glns)
    ]
    Organisation.objects.bulk_create(
        Organisation(
            name=gln,
            slug=f"gln-0614141{n:05d}{_check(f'0614141{n:05d}')}",
            pgln=f"0614141{n:05d}{_check(f'0614141{n:05d}')}",
        )
        for n, gln in enumerate(glns)
    )
    # when
    with CaptureQueriesContext(connection) as queries:
        roles_shown(rows, owner=cell_maker, lots=lots, units={})
    # then: the consignees, one insert (the lots shipped are the capturer's to show, and it is no
    # party capture registered); each consignee of units a distributor, none of lots a maker
    assert len(queries) == 2
    registered = Organisation.objects.filter(pgln__startswith="0614141")
    assert registered.with_role(Role.DISTRIBUTOR).count() == events
    assert not OrganisationRole.objects.filter(organisation__in=registered).exclude(role=Role.DISTRIBUTOR).exists()


def _check(digits: str) -> str:
    from traceability.gs1.keys import with_check_digit

    return with_check_digit(digits)[-1]
