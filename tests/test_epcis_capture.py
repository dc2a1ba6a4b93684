"""Applying EPCIS documents: events stored and indexed, the genealogy derived, repeats and
error declarations, rollback and proceed. The HTTP binding is in test_epcis_http.py."""

import io
import json

import pytest

from cells.models import Lot
from packs.models import Container, ContainerPacking, Shipment, Unit, UnitPacking
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from traceability import genealogy
from traceability.events.models import EpcisCapture, EpcisEvent, EpcisEventEpc
from traceability.events.services import capture_submit
from traceability.genealogy.models import LotLink, SegmentMember, Transformation, UnitLink
from traceability.gs1.cbv import canonical_epc
from traceability.ledger.models import LedgerHead

pytestmark = pytest.mark.django_db

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
PREFIX = "4012345"


def sgtin(serial: str, item: str = "011111") -> str:
    return f"urn:epc:id:sgtin:{PREFIX}.{item}.{serial}"


def lgtin(lot: str, item: str = "022222") -> str:
    return f"urn:epc:class:lgtin:{PREFIX}.{item}.{lot}"


def sscc(serial: str) -> str:
    return f"urn:epc:id:sscc:{PREFIX}.{serial}"


def document(*events: dict) -> dict:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def transformation(event_id: str | None, *, lots=(), units=(), outputs=(), output_lots=(), tid=None, at="01") -> dict:
    event = {
        "type": "TransformationEvent",
        "eventTime": f"2024-02-{at}T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "bizStep": "commissioning",
    }
    if event_id:
        event["eventID"] = event_id
    if tid:
        event["transformationID"] = tid
    if units:
        event["inputEPCList"] = [sgtin(u) for u in units]
    if lots:
        event["inputQuantityList"] = [{"epcClass": lgtin(lot), "quantity": 10, "uom": "KGM"} for lot in lots]
    if outputs:
        event["outputEPCList"] = [sgtin(u) for u in outputs]
    if output_lots:
        event["outputQuantityList"] = [{"epcClass": lgtin(lot), "quantity": 5, "uom": "KGM"} for lot in output_lots]
    return event


def aggregation(event_id: str, action: str, parent: str, children: list[str], at: str) -> dict:
    return {
        "type": "AggregationEvent",
        "eventID": event_id,
        "eventTime": f"2024-02-{at}T09:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": action,
        "bizStep": "packing",
        "parentID": parent,
        "childEPCs": children,
    }


def capture(owner, doc: dict | bytes, behaviour: str = "rollback") -> EpcisCapture:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    made = capture_submit(owner=owner, document=io.BytesIO(data), error_behaviour=behaviour, submit=lambda job: None)
    run_job(made.job)
    made.refresh_from_db()
    return made


def units_of(lot_code: str) -> dict[str, str]:
    """Serial -> exposure of every unit the lot reaches now."""
    lot = Lot.objects.get(code=lot_code)
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    found = {a.unit_id: a.definite for a in genealogy.all_affected_units(forward)}
    serials = dict(Unit.objects.filter(pk__in=found).values_list("pk", "serial"))
    return {serials[u]: "definite" if d else "potential" for u, d in found.items()}


def ledger_written() -> tuple[int, ...]:
    return (
        EpcisEvent.objects.count(),
        EpcisEventEpc.objects.count(),
        Unit.objects.count(),
        Lot.objects.count(),
        Transformation.objects.count(),
        LedgerHead.objects.values_list("position", flat=True).first() or 0,
    )


def test_a_transformation_event_links_its_input_lots_to_its_output_unit():
    # given
    owner = OrganisationFactory()
    # when
    done = capture(owner, document(transformation("urn:uuid:e1", lots=["L1", "L2"], outputs=["U1"])))
    # then
    assert (done.events, done.captured, done.problems) == (1, 1, [])
    assert units_of("L1") == {"U1": "definite"} and units_of("L2") == {"U1": "definite"}
    event = EpcisEvent.objects.get()
    assert (event.event_id, event.type, event.biz_step, event.record.reference) == (
        "urn:uuid:e1",
        "TransformationEvent",
        "commissioning",
        "urn:uuid:e1",
    )
    gtin = Unit.objects.get().gtin
    assert set(EpcisEventEpc.objects.values_list("role", "epc")) == {
        ("output", f"sgtin:{gtin}:U1"),
        ("input_class", Lot.objects.get(code="L1").identity),
        ("input_class", Lot.objects.get(code="L2").identity),
    }


def test_events_sharing_a_transformation_id_form_one_transformation_whatever_order_they_arrive_in():
    # given the outputs of transformation T first, with no input yet: nothing to link
    owner = OrganisationFactory()
    capture(owner, document(transformation("urn:uuid:o", outputs=["U1", "U2"], tid="urn:uuid:T")))
    assert Transformation.objects.count() == 0
    # when one input lot arrives: one lot into two units is definite
    capture(owner, document(transformation("urn:uuid:i1", lots=["L1"], tid="urn:uuid:T", at="02")))
    # then
    assert units_of("L1") == {"U1": "definite", "U2": "definite"}
    # when a second input lot arrives: two lots into two units is only potential, for both lots
    capture(owner, document(transformation("urn:uuid:i2", lots=["L2"], tid="urn:uuid:T", at="03")))
    # then the first record is retracted and the whole group recorded again
    assert units_of("L1") == {"U1": "potential", "U2": "potential"}
    assert units_of("L2") == {"U1": "potential", "U2": "potential"}
    records = Transformation.objects.order_by("pk")
    assert [(r.reference, r.retracted) for r in records] == [
        ("urn:uuid:T", True),
        (f"urn:uuid:T (recorded again at {records[1].recorded_position_id})", False),
    ]
    assert set(EpcisEvent.objects.values_list("record", flat=True)) == {records[1].pk}


def test_lot_to_lot_and_unit_to_unit_transformations_are_linked():
    # given
    owner = OrganisationFactory()
    # when a material lot becomes a cell lot, and a unit is refurbished into another
    capture(
        owner,
        document(
            transformation("urn:uuid:m", lots=["M1"], output_lots=["C1"]),
            transformation("urn:uuid:c", lots=["C1"], outputs=["U1"], at="02"),
            transformation("urn:uuid:r", units=["U1"], outputs=["U9"], at="03"),
        ),
    )
    # then M1 reaches U1 through C1, and U9 through U1
    assert units_of("M1") == {"U1": "definite", "U9": "definite"}
    assert LotLink.objects.count() == 1 and UnitLink.objects.count() == 1 and SegmentMember.objects.count() == 1


def test_capturing_the_same_document_twice_changes_nothing():
    # given
    owner = OrganisationFactory()
    doc = document(
        transformation("urn:uuid:e1", lots=["L1"], outputs=["U1"]),
        aggregation("urn:uuid:a1", "ADD", sscc("0000000001"), [sgtin("U1")], at="05"),
    )
    capture(owner, doc)
    before = ledger_written()[:5]
    # when
    again = capture(owner, doc)
    # then
    assert (again.captured, again.repeated, again.problems) == (0, 2, [])
    assert ledger_written()[:5] == before
    assert UnitPacking.objects.count() == 1


def test_an_event_without_an_event_id_is_recognised_by_its_event_hash():
    # given
    owner = OrganisationFactory()
    doc = document(transformation(None, lots=["L1"], outputs=["U1"]))
    first = capture(owner, doc)
    # when
    second = capture(owner, doc)
    # then
    event = EpcisEvent.objects.get()
    assert event.hashed_id and event.event_id.startswith("ni:///sha-256;")
    assert (first.captured, second.captured, second.repeated) == (1, 0, 1)


def test_an_error_declaration_retracts_what_its_event_recorded_and_the_corrective_event_applies():
    # given U1 recorded as made from L1 by mistake
    owner = OrganisationFactory()
    wrong = transformation("urn:uuid:wrong", lots=["L1"], outputs=["U1"])
    capture(owner, document(wrong))
    assert units_of("L1") == {"U1": "definite"}
    position_before = LedgerHead.objects.get().position
    # when the same event comes back declared erroneous, with its corrective event
    declared = {
        **wrong,
        "errorDeclaration": {
            "declarationTime": "2024-02-10T00:00:00Z",
            "reason": "incorrect_data",
            "correctiveEventIDs": ["urn:uuid:right"],
        },
    }
    done = capture(owner, document(declared, transformation("urn:uuid:right", lots=["L2"], outputs=["U1"], at="10")))
    # then
    assert (done.declared, done.captured) == (1, 1)
    assert units_of("L1") == {} and units_of("L2") == {"U1": "definite"}
    event = EpcisEvent.objects.get(event_id="urn:uuid:wrong")
    assert event.declaration["reason"] == "incorrect_data" and event.record.retracted
    # and a trace at the earlier position still sees the original record
    lot = Lot.objects.get(code="L1")
    earlier = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(position_before), seed_lot_ids=[lot.pk])
    assert genealogy.affected_counts(earlier) == (1, 0)


def test_an_error_declaration_that_arrives_first_keeps_its_event_out_of_the_genealogy():
    # given
    owner = OrganisationFactory()
    event = transformation("urn:uuid:e", lots=["L1"], outputs=["U1"])
    declared = {**event, "errorDeclaration": {"declarationTime": "2024-02-10T00:00:00Z"}}
    # when the declaration comes first, then the original
    capture(owner, document(declared))
    late = capture(owner, document(event))
    # then
    assert late.repeated == 1
    assert Transformation.objects.count() == 0


def test_rollback_rejects_the_whole_document_and_writes_nothing():
    # given one good event and one whose Digital Link has a wrong check digit
    owner = OrganisationFactory()
    bad = transformation("urn:uuid:bad", lots=["L2"], outputs=["U2"])
    bad["outputEPCList"] = ["https://id.gs1.org/01/04012345111119/21/U2"]
    before = ledger_written()
    # when
    done = capture(owner, document(transformation("urn:uuid:good", lots=["L1"], outputs=["U1"]), bad))
    # then
    assert done.job.status == "succeeded" and done.captured == 0
    assert [(p["event_index"], p["event_id"], p["where"]) for p in done.problems] == [
        (1, "urn:uuid:bad", "/epcisBody/eventList/1/outputEPCList/0")
    ]
    assert "check digit" in done.problems[0]["message"]
    assert ledger_written() == before


def test_proceed_applies_the_valid_events_and_reports_the_others():
    # given
    owner = OrganisationFactory()
    bad = transformation("urn:uuid:bad", lots=["L2"], outputs=["U2"])
    del bad["eventTime"]
    # when
    done = capture(owner, document(transformation("urn:uuid:good", lots=["L1"], outputs=["U1"]), bad), "proceed")
    # then
    assert (done.events, done.captured) == (2, 1)
    assert [(p["event_index"], p["event_id"]) for p in done.problems] == [(1, "urn:uuid:bad")]
    assert list(EpcisEvent.objects.values_list("event_id", flat=True)) == ["urn:uuid:good"]
    assert units_of("L1") == {"U1": "definite"}


def test_a_document_that_is_not_json_is_rejected_with_the_place():
    # given
    owner = OrganisationFactory()
    # when
    done = capture(owner, b'{"type": "EPCISDocument",\n "epcisBody": [}')
    # then
    assert done.problems == [
        {"event_index": None, "event_id": None, "where": "line 2 column 16", "message": "not JSON: Expecting value"}
    ]


def test_aggregation_events_pack_units_into_cartons_and_cartons_onto_pallets_and_delete_unpacks():
    # given
    owner = OrganisationFactory()
    carton, pallet = sscc("0000000001"), sscc("0000000002")
    capture(owner, document(transformation("urn:uuid:b", lots=["L1"], outputs=["U1"])))
    # when
    capture(
        owner,
        document(
            aggregation("urn:uuid:a1", "ADD", carton, [sgtin("U1")], at="05"),
            aggregation("urn:uuid:a2", "ADD", pallet, [carton], at="06"),
            aggregation("urn:uuid:a3", "DELETE", pallet, [], at="07"),
        ),
    )
    # then
    carton_row = Container.objects.get(identity=canonical_epc(carton))
    pallet_row = Container.objects.get(identity=canonical_epc(pallet))
    packing = UnitPacking.objects.get()
    assert (packing.container_id, packing.unit.serial, packing.unpacked_at) == (carton_row.pk, "U1", None)
    nested = ContainerPacking.objects.get()
    assert (nested.parent_id, nested.child_id, nested.unpacked_at.isoformat()) == (
        pallet_row.pk,
        carton_row.pk,
        "2024-02-07T09:00:00+00:00",
    )


@pytest.mark.parametrize("behaviour", ["rollback", "proceed"])
def test_a_transformation_that_would_close_a_cycle_is_refused_naming_the_path(behaviour):
    # given L2 made from L1 in the same document as L1 made from L2
    owner = OrganisationFactory()
    doc = document(
        transformation("urn:uuid:forth", lots=["L1"], output_lots=["L2"]),
        transformation("urn:uuid:back", lots=["L2"], output_lots=["L1"], at="02"),
    )
    before = ledger_written()
    # when
    done = capture(owner, doc, behaviour)
    # then
    (problem,) = done.problems
    assert (problem["event_index"], problem["event_id"], problem["where"]) == (
        1,
        "urn:uuid:back",
        "/epcisBody/eventList/1",
    )
    assert "would make" in problem["message"] and "from itself" in problem["message"]
    if behaviour == "rollback":
        assert ledger_written() == before
    else:
        assert list(EpcisEvent.objects.values_list("event_id", flat=True)) == ["urn:uuid:forth"]
        assert LotLink.objects.count() == 1


def shipping(event_id: str, epcs: list[str], *, to: str, desadv: str, step: str = "shipping", at: str = "08") -> dict:
    return {
        "type": "ObjectEvent",
        "eventID": event_id,
        "eventTime": f"2024-02-{at}T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "bizStep": step,
        "epcList": epcs,
        "bizTransactionList": [{"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:4012345000009:{desadv}"}],
        "sourceList": [{"type": "owning_party", "source": f"urn:epc:id:pgln:{PREFIX}.00000"}],
        "destinationList": [{"type": "owning_party", "destination": to}],
    }


def test_a_shipping_event_ships_the_pallet_to_the_owning_party_and_the_trace_finds_the_consignee():
    # given U1 built from L1, packed in a carton on a pallet
    owner = OrganisationFactory()
    carton, pallet = sscc("0000000001"), sscc("0000000002")
    capture(
        owner,
        document(
            transformation("urn:uuid:b", lots=["L1"], outputs=["U1"]),
            aggregation("urn:uuid:a1", "ADD", carton, [sgtin("U1")], at="05"),
            aggregation("urn:uuid:a2", "ADD", pallet, [carton], at="06"),
        ),
    )
    # when the pallet ships to a distributor the ledger has never heard of, then arrives (the
    # distributor, registered by the shipment, records the receipt: only a consignee may)
    capture(owner, document(shipping("urn:uuid:s", [pallet], to="urn:epc:id:pgln:0614141.00001", desadv="D1")))
    capture(
        Shipment.objects.get().consignee,
        document(
            shipping("urn:uuid:r", [pallet], to="urn:epc:id:pgln:0614141.00001", desadv="D1", step="receiving", at="09")
        ),
    )
    # then
    shipment = Shipment.objects.get()
    assert (shipment.reference, shipment.consignee.pgln, shipment.received_at.day) == (
        "urn:epcglobal:cbv:bt:4012345000009:D1",
        "0614141000012",
        9,
    )
    assert shipment.owner == owner and shipment.consignee.role_names == ["distributor"]
    lot = Lot.objects.get(code="L1")
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    assert [c.organisation_id for c in genealogy.consignees(forward)] == [shipment.consignee_id]
