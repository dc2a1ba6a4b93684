"""Parties registered by EPCIS capture get the roles their events show (issue 12): a party receiving
cells is not a distributor. Over JSON capture and CSV import."""

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from suppliers.models import Organisation, Role
from tests.factories import CellModelFactory, OrganisationFactory
from tests.test_epcis_capture import PREFIX, capture, document, lgtin, sgtin, shipping, transformation
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


def test_a_party_the_ledger_never_heard_of_receiving_cell_lots_is_registered_as_their_consumer_not_a_distributor(
    cell_maker,
):
    # given a cell maker's cell lot
    _made_lots(cell_maker, ["C1"], item=CELL_ITEM)
    # when it ships the lot to a party the ledger does not know
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-cells", ["C1"], item=CELL_ITEM)))
    # then the party is registered as the brand / pack assembler that consumes cells
    assert _roles_of(CONSIGNEE_GLN) == {Role.BRAND}


def test_a_party_receiving_material_lots_is_registered_as_a_cell_maker():
    # given a material supplier's cathode lot (a GTIN of no cell model: a material lot)
    supplier = OrganisationFactory(role=Role.MATERIAL_SUPPLIER, gs1_company_prefix=None)
    _made_lots(supplier, ["M1"], item=MATERIAL_ITEM)
    # when it ships it to an unknown party
    capture(supplier, document(_lot_shipping("urn:uuid:ship-cathode", ["M1"], item=MATERIAL_ITEM)))
    # then
    assert _roles_of(CONSIGNEE_GLN) == {Role.CELL_MAKER}


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


def test_a_party_completed_by_qa_is_no_longer_given_roles_by_capture(cell_maker):
    # given a party capture registered, which QA has since completed (its own slug)
    _made_lots(cell_maker, ["C1", "C2"], item=CELL_ITEM)
    capture(cell_maker, document(_lot_shipping("urn:uuid:ship-1", ["C1"], item=CELL_ITEM)))
    Organisation.objects.filter(pgln=CONSIGNEE_GLN).update(slug="amp-power", name="Amp Power")
    brand = OrganisationFactory(gs1_company_prefix=None)
    capture(brand, document(transformation("urn:uuid:build", lots=["L1"], outputs=["U1"])))
    # when units are shipped to it
    capture(brand, document(shipping("urn:uuid:ship-units", [sgtin("U1")], to=CONSIGNEE, desadv="D9")))
    # then its roles are QA's now
    assert _roles_of(CONSIGNEE_GLN) == {Role.BRAND}


def test_a_shipment_of_another_partys_lot_shows_no_role():
    # given another organisation's lot
    owner, other = OrganisationFactory(gs1_company_prefix=None), OrganisationFactory(gs1_company_prefix=None)
    capture(other, document(transformation("urn:uuid:other", lots=["L1"], output_lots=["X1"])))
    # when a capturer ships it to a party the ledger does not know
    capture(owner, document(_lot_shipping("urn:uuid:ship-foreign", ["X1"], item="022222")), "proceed")
    # then the party gets no role from it
    assert _roles_of(CONSIGNEE_GLN) == set()


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
    _load(party, "assignments", _csv("assignments", other | {"lot_gtin": "04012345222227", "lot": "C1"}))
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
    rows = [_Row(_lot_shipping(f"urn:uuid:s{n}", [f"C{n}"], item=CELL_ITEM, to=gln)) for n, gln in enumerate(glns)]
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
    # then: the consignees, the lots' kinds, one insert
    assert len(queries) == 3
    assert Organisation.objects.with_role(Role.BRAND).filter(pgln__startswith="0614141").count() == events


def _check(digits: str) -> str:
    from traceability.gs1.keys import with_check_digit

    return with_check_digit(digits)[-1]
