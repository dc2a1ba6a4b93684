"""A party writes only its own records (issue 12): EPCIS capture (JSON and XML) and CSV import refuse
each cross-organisation write with its reason, and leave the victim's genealogy, packing and
shipments as they were. XML documents are read into the JSON binding and take the same path
(``capture.document_read``), so one XML case per rule shows the binding carries the refusal."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cells.models import Lot
from packs.models import Shipment, Unit, UnitPacking
from suppliers.models import Organisation, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding
from tests.test_csv_import import _csv, _load
from tests.test_epcis_capture import capture
from traceability import genealogy
from traceability.access.policy import Actor, trace_allowed
from traceability.events.csv_import import csv_document
from traceability.events.models import EpcisCapture, EpcisEvent
from traceability.events.queries import readable_events, reader_of
from traceability.events.services import capture_now
from traceability.genealogy.models import LotLink, SegmentMember, Transformation
from traceability.gs1 import keys

pytestmark = pytest.mark.django_db

A, B, D = "4012345", "4098765", "4055555"  # brand A's, brand B's and the distributor's prefixes
CELLS = "4011111"  # a cell maker's prefix that no organisation registered
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def sgtin(prefix: str, serial: str) -> str:
    return f"urn:epc:id:sgtin:{prefix}.011111.{serial}"


def lgtin(prefix: str, lot: str) -> str:
    return f"urn:epc:class:lgtin:{prefix}.022222.{lot}"


def sscc(prefix: str, serial: int) -> str:
    return f"urn:epc:id:sscc:{prefix}.{serial:0{17 - len(prefix)}d}"


def pgln(prefix: str) -> str:
    return f"urn:epc:id:pgln:{prefix}.{'0' * (11 - len(prefix))}1"


def gtin14(prefix: str, item: str = "11111") -> str:
    return keys.gtin14(prefix, int(item))


def document(*events: dict) -> dict:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def _base(kind: str, event_id: str, at: str) -> dict:
    return {"type": kind, "eventID": event_id, "eventTime": f"2024-02-{at}T08:00:00Z", "eventTimeZoneOffset": "+00:00"}


def transformation(event_id: str, *, lots=(), outputs=(), output_lots=(), tid=None, at="01") -> dict:
    event = _base("TransformationEvent", event_id, at) | {"bizStep": "commissioning"}
    if lots:
        event["inputQuantityList"] = [{"epcClass": lot, "quantity": 10, "uom": "KGM"} for lot in lots]
    if outputs:
        event["outputEPCList"] = list(outputs)
    if output_lots:
        event["outputQuantityList"] = [{"epcClass": lot, "quantity": 5, "uom": "KGM"} for lot in output_lots]
    if tid:
        event["transformationID"] = tid
    return event


def commissioning(event_id: str, epcs: list[str], at: str = "01") -> dict:
    return _base("ObjectEvent", event_id, at) | {"epcList": epcs, "action": "ADD", "bizStep": "commissioning"}


def aggregation(event_id: str, action: str, parent: str, children: list[str], at: str = "05") -> dict:
    return _base("AggregationEvent", event_id, at) | {
        "parentID": parent,
        "childEPCs": children,
        "action": action,
        "bizStep": "packing",
    }


def shipping(event_id: str, epcs: list[str], *, source: str | None, to: str, desadv: str, step="shipping", at="08"):
    event = _base("ObjectEvent", event_id, at) | {
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": step,
        "bizTransactionList": [{"type": "desadv", "bizTransaction": f"urn:ledger:desadv:{desadv}"}],
    }
    if source:
        event["sourceList"] = [{"type": "owning_party", "source": source}]
    event["destinationList"] = [{"type": "owning_party", "destination": to}]
    return event


def declaration(event: dict, reason: str = "incorrect_data") -> dict:
    return event | {"errorDeclaration": {"declarationTime": "2024-03-02T08:00:00Z", "reason": reason}}


# --- the XML binding: the same events, in the XSD's element order -----------------------------------------


def _list(tag: str, item: str, values) -> str:
    return f"<{tag}>" + "".join(f"<{item}>{v}</{item}>" for v in values) + f"</{tag}>"


def _quantities(tag: str, items) -> str:
    return (
        f"<{tag}>"
        + "".join(
            f"<quantityElement><epcClass>{i['epcClass']}</epcClass><quantity>{i['quantity']}</quantity>"
            f"<uom>{i['uom']}</uom></quantityElement>"
            for i in items
        )
        + f"</{tag}>"
    )


def xml_document(*events: dict) -> bytes:
    """The EPCIS 2.0 XML binding of these (JSON-binding) events."""
    out = []
    for e in events:
        head = f"<eventTime>{e['eventTime']}</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>"
        head += f"<eventID>{e['eventID']}</eventID>"
        if declared := e.get("errorDeclaration"):
            head += (
                f"<errorDeclaration><declarationTime>{declared['declarationTime']}</declarationTime>"
                f"<reason>{declared['reason']}</reason></errorDeclaration>"
            )
        transactions = "".join(
            f'<bizTransaction type="{t["type"]}">{t["bizTransaction"]}</bizTransaction>'
            for t in e.get("bizTransactionList") or ()
        )
        transactions = f"<bizTransactionList>{transactions}</bizTransactionList>" if transactions else ""
        parties = "".join(
            f"<{key}>"
            + "".join(f'<{key[:-4]} type="{p["type"]}">{p[key[:-4]]}</{key[:-4]}>' for p in e[key])
            + f"</{key}>"
            for key in ("sourceList", "destinationList")
            if key in e
        )
        match e["type"]:
            case "ObjectEvent":
                body = _list("epcList", "epc", e["epcList"]) + f"<action>{e['action']}</action>"
                body += f"<bizStep>{e['bizStep']}</bizStep>{transactions}{parties}"
            case "AggregationEvent":
                body = f"<parentID>{e['parentID']}</parentID>" + _list("childEPCs", "epc", e["childEPCs"])
                body += f"<action>{e['action']}</action><bizStep>{e['bizStep']}</bizStep>"
            case "TransformationEvent":
                body = _list("inputEPCList", "epc", e["inputEPCList"]) if "inputEPCList" in e else ""
                body += _quantities("inputQuantityList", e["inputQuantityList"]) if "inputQuantityList" in e else ""
                body += _list("outputEPCList", "epc", e["outputEPCList"]) if "outputEPCList" in e else ""
                if "outputQuantityList" in e:
                    body += _quantities("outputQuantityList", e["outputQuantityList"])
                if "transformationID" in e:
                    body += f"<transformationID>{e['transformationID']}</transformationID>"
                body += f"<bizStep>{e['bizStep']}</bizStep>"
        out.append(f"<{e['type']}>{head}{body}</{e['type']}>")
    return (
        '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"'
        ' creationDate="2024-03-01T08:00:00Z"><EPCISBody><EventList>'
        + "".join(out)
        + "</EventList></EPCISBody></epcis:EPCISDocument>"
    ).encode()


# --- the world: brand A's records, made through capture itself --------------------------------------------


@dataclass
class World:
    a: Organisation
    b: Organisation
    d: Organisation


def _organisation(slug: str, prefix: str, role: str = Role.BRAND) -> Organisation:
    return OrganisationFactory(slug=slug, role=role, gs1_company_prefix=prefix, pgln=keys.gln(prefix, 1))


@pytest.fixture
def world() -> World:
    """Brand A builds U1-U3 from cell lot CL1 (work order T-A), packs U1 and U2 in carton 1 and ships
    it to distributor D under despatch advice DA-1; brand B and D are registered with their prefixes."""
    w = World(a=_organisation("a", A), b=_organisation("b", B), d=_organisation("d", D, Role.DISTRIBUTOR))
    done = capture(
        w.a,
        document(
            transformation("urn:uuid:a-in", lots=[lgtin(CELLS, "CL1")], tid="urn:uuid:T-A"),
            transformation("urn:uuid:a-out", outputs=[sgtin(A, s) for s in ("U1", "U2", "U3")], tid="urn:uuid:T-A"),
            aggregation("urn:uuid:a-pack", "ADD", sscc(A, 1), [sgtin(A, "U1"), sgtin(A, "U2")]),
            shipping("urn:uuid:a-ship", [sscc(A, 1)], source=pgln(A), to=pgln(D), desadv="DA-1"),
        ),
    )
    assert (done.captured, done.problems) == (4, [])
    return w


def a_state(w: World) -> tuple:
    """A's forward trace of its cell lot, and its genealogy, packing and shipment rows."""
    lot = Lot.objects.get(code="CL1")
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    a_records = Transformation.objects.filter(owner=w.a)
    return (
        genealogy.affected_counts(forward),
        [(u.unit_id, u.definite) for u in genealogy.all_affected_units(forward)],
        [(c.organisation_id, c.units) for c in genealogy.consignees(forward)],
        list(a_records.values_list("pk", "reference", "retracted_position")),
        LotLink.objects.filter(transformation__in=a_records).count(),
        SegmentMember.objects.filter(transformation__in=a_records).count(),
        list(UnitPacking.objects.filter(container__owner=w.a).values_list("unit_id", "container_id", "unpacked_at")),
        list(Shipment.objects.filter(owner=w.a).values_list("reference", "consignee_id", "received_at")),
        list(EpcisEvent.objects.filter(capture__owner=w.a).values_list("event_id", "declared_at", "record_id")),
    )


def refusals(done) -> list[tuple[str | None, str]]:
    return [(p["event_id"], p["message"]) for p in done.problems]


def b_wrote(w: World) -> int:
    return EpcisEvent.objects.filter(capture__owner=w.b).count()


def test_the_world_is_as_a_built_it(world):
    # then: A's three units carry CL1 definitely, two went to D in carton 1
    (counts, units, consignees, records, *_) = a_state(world)
    assert counts == (3, 0) and len(units) == 3
    assert consignees == [(world.d.pk, 2)]
    assert [(ref, retracted) for _, ref, retracted in records] == [("urn:uuid:T-A", None)]


# --- rule 1: new keys under another's registered company prefix ---------------------------------------------

NOT_MADE = "is not yours: a transformation records what you made"
NOT_COMMISSIONED = (
    "is not yours: only its owner, or the organisation that registered its company prefix, may commission it"
)


@pytest.mark.parametrize("binding", ["json", "xml"])
@pytest.mark.parametrize("serial", ["FAKE1", "U3"], ids=["a-new-serial", "a-s-existing-unit"])
def test_b_cannot_commission_units_under_a_registered_prefix_and_is_told_the_same_whether_they_exist(
    world, binding, serial
):
    # given
    before = a_state(world)
    event = commissioning("urn:uuid:b-fake", [sgtin(A, serial)])
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-fake", f"{sgtin(A, serial)} {NOT_COMMISSIONED}")]
    assert a_state(world) == before and b_wrote(world) == 0


def observation(event_id: str, epcs: list[str]) -> dict:
    return _base("ObjectEvent", event_id, "09") | {"epcList": epcs, "action": "OBSERVE", "bizStep": "inspecting"}


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_observing_a_unit_under_a_registered_prefix_is_answered_the_same_whether_it_exists(world, binding):
    # given
    before = a_state(world)
    units = Unit.objects.count()

    def as_sent(event):
        return document(event) if binding == "json" else xml_document(event)

    # when B inspects A's unit U3, and a serial under A's prefix A never commissioned
    existing = capture(world.b, as_sent(observation("urn:uuid:b-obs-1", [sgtin(A, "U3")])))
    unknown = capture(world.b, as_sent(observation("urn:uuid:b-obs-2", [sgtin(A, "NEVER1")])))
    # then both are taken alike, and the unknown serial is not made anyone's unit
    assert [(d.captured, d.problems) for d in (existing, unknown)] == [(1, []), (1, [])]
    assert a_state(world) == before and Unit.objects.count() == units
    assert not Unit.objects.filter(serial="NEVER1").exists()
    # and when A commissions it later, it is A's, and A reads B's observation of it
    assert capture(world.a, document(commissioning("urn:uuid:a-never1", [sgtin(A, "NEVER1")], at="10"))).problems == []
    assert Unit.objects.get(serial="NEVER1").owner == world.a
    assert "urn:uuid:b-obs-2" in readable_events(reader_of(world.a)).values_list("event_id", flat=True)


def test_b_cannot_build_units_under_a_registered_prefix_in_csv(world):
    # given
    before = a_state(world)
    row = {
        "unit_gtin": gtin14(A),
        "unit_serial": "FAKE1",
        "lot_gtin": gtin14(B, "22222"),
        "lot": "BL1",
        "built_at": "2024-07-01T08:00:00Z",
    }
    # when
    done = _load(world.b, "assignments", _csv("assignments", row))
    # then
    dl = f"https://id.gs1.org/01/{gtin14(A)}/21/FAKE1"
    assert [message for _, message in refusals(done)] == [f"{dl} {NOT_MADE}"]
    assert a_state(world) == before and b_wrote(world) == 0


def test_with_proceed_only_the_foreign_event_is_left_out(world):
    # given
    before = a_state(world)
    # when
    done = capture(
        world.b,
        document(
            commissioning("urn:uuid:b-fake", [sgtin(A, "FAKE1")]),
            commissioning("urn:uuid:b-own", [sgtin(B, "1")]),
        ),
        behaviour="proceed",
    )
    # then
    assert [event_id for event_id, _ in refusals(done)] == ["urn:uuid:b-fake"]
    assert done.captured == 1 and a_state(world) == before
    assert list(EpcisEvent.objects.filter(capture__owner=world.b).values_list("event_id", flat=True)) == [
        "urn:uuid:b-own"
    ]


def test_keys_under_an_unregistered_prefix_belong_to_the_first_to_capture_them(world):
    # when B commissions units under its own prefix and under one nobody registered, and A under its own
    b_done = capture(world.b, document(commissioning("urn:uuid:b-own", [sgtin(B, "1"), sgtin("4077777", "1")])))
    a_done = capture(world.a, document(commissioning("urn:uuid:a-more", [sgtin(A, "U9")])))
    # then
    assert (b_done.problems, a_done.problems) == ([], [])
    assert dict(Unit.objects.filter(serial__in=["1", "U9"]).values_list("gtin", "owner__slug")) == {
        gtin14(B): "b",
        gtin14("4077777"): "b",
        gtin14(A): "a",
    }


# --- rule 2: a transformation records what its capturer made ------------------------------------------------


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_cannot_record_its_lot_as_an_input_of_a_unit_of_a(world, binding):
    # given
    before = a_state(world)
    event = transformation("urn:uuid:b-into-a", lots=[lgtin(B, "BL1")], outputs=[sgtin(A, "U3")])
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-into-a", f"{sgtin(A, 'U3')} {NOT_MADE}")]
    assert a_state(world) == before and b_wrote(world) == 0
    assert not Lot.objects.filter(code="BL1").exists()


@pytest.mark.parametrize("kind", ["assignments", "work_orders"])
def test_b_cannot_build_a_unit_of_a_in_csv(world, kind):
    # given
    before = a_state(world)
    lot = {"gtin": gtin14(B, "22222"), "lot_or_serial": "BL1", "at": "2024-07-01T08:00:00Z"}
    rows = {
        "assignments": [
            {
                "unit_gtin": gtin14(A),
                "unit_serial": "U3",
                "lot_gtin": lot["gtin"],
                "lot": "BL1",
                "built_at": lot["at"],
            }
        ],
        "work_orders": [
            {"work_order": "WO-9", "role": "input"} | lot,
            {"work_order": "WO-9", "role": "output", "gtin": gtin14(A), "lot_or_serial": "U3", "at": lot["at"]},
        ],
    }[kind]
    # when
    done = _load(world.b, kind, _csv(kind, *rows))
    # then
    assert [message for _, message in refusals(done)] == [f"https://id.gs1.org/01/{gtin14(A)}/21/U3 {NOT_MADE}"]
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("serial", ["U3", "U9"], ids=["a-s-unit", "a-new-serial"])
def test_b_is_told_the_same_of_an_output_of_a_whether_it_exists(world, serial):
    # given
    before = a_state(world)
    event = transformation("urn:uuid:b-into-a", lots=[lgtin(B, "BL1")], outputs=[sgtin(A, serial)])
    # when
    done = capture(world.b, document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-into-a", f"{sgtin(A, serial)} {NOT_MADE}")]
    assert a_state(world) == before and b_wrote(world) == 0


# --- rule 2: a transformation consumes what its capturer owns or was shipped ------------------------------------

NOT_CONSUMABLE = "is not yours: a transformation's inputs are what you own or were shipped"


def lot_shipping(event_id: str, lots: list[str], *, to: str, desadv: str, at: str = "03") -> dict:
    """A shipping ObjectEvent of lots (a quantity of each), sent by its capturer to the party ``to``."""
    event = shipping(event_id, [], source=None, to=to, desadv=desadv, at=at)
    del event["epcList"]
    event["quantityList"] = [{"epcClass": lot, "quantity": 10, "uom": "KGM"} for lot in lots]
    return event


def traced(code: str) -> tuple[int, int]:
    lot = Lot.objects.get(code=code)
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    return genealogy.affected_counts(forward)


def b_may_trace(w: World, code: str) -> bool:
    return trace_allowed(Actor.of(w.b), lot_ids=[Lot.objects.get(code=code).pk])


@pytest.fixture
def a_lot(world) -> str:
    """A's lot AL1, under its registered prefix, made by A from its lot AM1."""
    made = capture(
        world.a, document(transformation("urn:uuid:a-al1", lots=[lgtin(A, "AM1")], output_lots=[lgtin(A, "AL1")]))
    )
    assert made.problems == []
    return lgtin(A, "AL1")


VICTIM_LOTS = {
    "a-s-lot-under-an-unregistered-prefix": lgtin(CELLS, "CL1"),
    "a-s-lot-under-its-prefix": lgtin(A, "AL1"),
    "a-new-lot-under-its-prefix": lgtin(A, "AL9"),
}


@pytest.mark.parametrize("binding", ["json", "xml"])
@pytest.mark.parametrize("lot", VICTIM_LOTS.values(), ids=VICTIM_LOTS.keys())
def test_b_cannot_consume_a_lot_of_a_and_is_told_the_same_whether_it_exists(world, a_lot, binding, lot):
    # given
    before = a_state(world), traced("AL1")
    event = transformation("urn:uuid:b-from-a", lots=[lot], outputs=[sgtin(B, "B1")])
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then: the same words whether A has the lot or not; A's traces as they were; B traces neither
    assert refusals(done) == [("urn:uuid:b-from-a", f"{lot} {NOT_CONSUMABLE}")]
    assert (a_state(world), traced("AL1")) == before and b_wrote(world) == 0
    assert not b_may_trace(world, "CL1") and not b_may_trace(world, "AL1")
    assert not Unit.objects.filter(serial="B1").exists()


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_cannot_consume_a_unit_of_a_it_was_not_shipped(world, binding):
    # given
    before = a_state(world)
    event = transformation("urn:uuid:b-refurb", outputs=[sgtin(B, "R1")]) | {"inputEPCList": [sgtin(A, "U3")]}
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-refurb", f"{sgtin(A, 'U3')} {NOT_CONSUMABLE}")]
    assert a_state(world) == before and b_wrote(world) == 0


def test_b_consuming_a_lot_of_a_is_refused_over_http_and_b_is_told_a_s_lot_is_unknown_after(world):
    # given B's QA engineer, and its document naming A's cell lot CL1 as an input of its unit
    before = a_state(world)
    client = client_for(member(world.b))
    event = transformation("urn:uuid:b-from-a", lots=[lgtin(CELLS, "CL1")], outputs=[sgtin(B, "B1")])
    # when it captures it, then records a finding on CL1
    captured = client.generic(
        "POST", "/epcis/capture", json.dumps(document(event)).encode(), content_type="application/ld+json"
    )
    run_job(EpcisCapture.objects.get(pk=int(captured.headers["Location"].rsplit("/", 1)[1])).job)
    finding = raise_finding(client, lgtin(CELLS, "CL1"))
    # then the capture is refused with the event and its reason, and CL1 is not B's to trace
    assert captured.status_code == 202
    job = client.get(captured.headers["Location"]).json()
    assert (job["success"], [(e["eventID"], e["detail"]) for e in job["errors"]]) == (
        False,
        [
            (
                "urn:uuid:b-from-a",
                f"event 0 (urn:uuid:b-from-a): /epcisBody/eventList/0: {lgtin(CELLS, 'CL1')} {NOT_CONSUMABLE}",
            )
        ],
    )
    assert (finding.status_code, finding.json()["code"]) == (400, "unknown_subject")
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("kind", ["assignments", "work_orders"])
@pytest.mark.parametrize(("prefix", "code"), [(CELLS, "CL1"), (A, "AL1"), (A, "AL9")], ids=VICTIM_LOTS.keys())
def test_b_cannot_consume_a_lot_of_a_in_csv(world, a_lot, kind, prefix, code):
    # given
    before = a_state(world), traced("AL1")
    at = "2024-07-01T08:00:00Z"
    rows = {
        "assignments": [
            {
                "unit_gtin": gtin14(B),
                "unit_serial": "B1",
                "lot_gtin": gtin14(prefix, "22222"),
                "lot": code,
                "built_at": at,
            }
        ],
        "work_orders": [
            {"work_order": "WO-9", "role": "input", "gtin": gtin14(prefix, "22222"), "lot_or_serial": code, "at": at},
            {"work_order": "WO-9", "role": "output", "gtin": gtin14(B), "lot_or_serial": "B1", "at": at},
        ],
    }[kind]
    # when
    done = _load(world.b, kind, _csv(kind, *rows))
    # then
    dl = f"https://id.gs1.org/01/{gtin14(prefix, '22222')}/10/{code}"
    assert [message for _, message in refusals(done)] == [f"{dl} {NOT_CONSUMABLE}"]
    assert (a_state(world), traced("AL1")) == before and b_wrote(world) == 0
    assert not b_may_trace(world, "CL1") and not b_may_trace(world, "AL1")


@pytest.mark.parametrize("source", ["epcis", "csv"])
def test_with_proceed_only_the_event_consuming_a_lot_of_a_is_left_out(world, source):
    # given B's document: its unit B1 built from A's lot CL1, and B2 from its own lot BL1
    before = a_state(world)
    at = "2024-07-01T08:00:00Z"
    if source == "epcis":
        doc = document(
            transformation("urn:uuid:b-from-a", lots=[lgtin(CELLS, "CL1")], outputs=[sgtin(B, "B1")]),
            transformation("urn:uuid:b-own", lots=[lgtin(B, "BL1")], outputs=[sgtin(B, "B2")]),
        )
    else:
        rows = [
            {"unit_gtin": gtin14(B), "unit_serial": s, "lot_gtin": gtin14(p, "22222"), "lot": lot, "built_at": at}
            for s, p, lot in (("B1", CELLS, "CL1"), ("B2", B, "BL1"))
        ]
        doc = csv_document("assignments", _csv("assignments", *rows))
    # when
    done = capture_now(owner=world.b, document=io.BytesIO(json.dumps(doc).encode()), error_behaviour="proceed")
    # then B2 is B's, B1 was never made from CL1, and CL1 is still not B's to trace
    assert [message.split(" ", 1)[1] for _, message in refusals(done)] == [NOT_CONSUMABLE]
    assert done.captured == 1 and a_state(world) == before
    assert traced("BL1") == (1, 0) and not b_may_trace(world, "CL1")


def test_b_consumes_a_lot_a_shipped_to_it_and_may_then_trace_it(world):
    # given A ships its cell lot CL1 to B, and another lot to D
    shipped = capture(
        world.a,
        document(
            lot_shipping("urn:uuid:a-ship-cl1", [lgtin(CELLS, "CL1")], to=pgln(B), desadv="DA-L1"),
            lot_shipping("urn:uuid:a-ship-cl2", [lgtin(CELLS, "CL2")], to=pgln(D), desadv="DA-L2"),
        ),
    )
    assert shipped.problems == []
    # when B builds B1 from CL1, and B2 from CL2 (shipped to D, not to B)
    b1 = capture(world.b, document(transformation("urn:uuid:b1", lots=[lgtin(CELLS, "CL1")], outputs=[sgtin(B, "B1")])))
    b2 = capture(world.b, document(transformation("urn:uuid:b2", lots=[lgtin(CELLS, "CL2")], outputs=[sgtin(B, "B2")])))
    # then
    assert (b1.problems, refusals(b2)) == ([], [("urn:uuid:b2", f"{lgtin(CELLS, 'CL2')} {NOT_CONSUMABLE}")])
    assert traced("CL1") == (4, 0) and b_may_trace(world, "CL1")


def test_checking_inputs_costs_the_same_queries_for_few_or_many_lots_shipped(world):
    # given A's lots AL0-AL20, shipped to B one shipment each
    lots = [lgtin(A, f"AL{i}") for i in range(21)]
    assert (
        capture(
            world.a,
            document(
                commissioning("urn:uuid:a-lots", [], at="02")
                | {"quantityList": [{"epcClass": lot, "quantity": 1, "uom": "KGM"} for lot in lots]}
            ),
        ).problems
        == []
    )
    shipments = [
        lot_shipping(f"urn:uuid:a-ship-{i}", [lot], to=pgln(B), desadv=f"DA-L{i}") for i, lot in enumerate(lots)
    ]
    assert capture(world.a, document(*shipments)).problems == []

    def queries_for(serial: str, inputs: list[str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            done = capture(
                world.b, document(transformation(f"urn:uuid:b-{serial}", lots=inputs, outputs=[sgtin(B, serial)]))
            )
        assert done.problems == []
        return len(queries)

    queries_for("B0", lots[:1])  # B's first capture learns what later ones find learnt
    # when / then
    assert queries_for("B1", lots[1:3]) == queries_for("B2", lots[3:])


def test_a_shipment_b_records_itself_or_a_declared_one_does_not_make_a_lot_of_a_b_s_to_consume(world):
    # given B's own "shipment" of A's CL1 to itself (refused: not its to ship), and A's shipment of
    # CL1 to B, since declared erroneous by A
    assert refusals(
        capture(world.b, document(lot_shipping("urn:uuid:b-ship", [lgtin(CELLS, "CL1")], to=pgln(B), desadv="X")))
    )
    a_ship = lot_shipping("urn:uuid:a-ship-cl1", [lgtin(CELLS, "CL1")], to=pgln(B), desadv="DA-L1")
    assert capture(world.a, document(a_ship)).problems == []
    assert capture(world.a, document(declaration(a_ship))).declared == 1
    # when
    done = capture(
        world.b, document(transformation("urn:uuid:b1", lots=[lgtin(CELLS, "CL1")], outputs=[sgtin(B, "B1")]))
    )
    # then
    assert refusals(done) == [("urn:uuid:b1", f"{lgtin(CELLS, 'CL1')} {NOT_CONSUMABLE}")]
    assert not b_may_trace(world, "CL1")


def test_b_refurbishes_a_unit_of_a_shipped_to_it_and_a_builds_on_its_own_units(world):
    # given A ships U3 loose to B
    a_ship = capture(
        world.a, document(shipping("urn:uuid:a-s3", [sgtin(A, "U3")], source=None, to=pgln(B), desadv="DA-3"))
    )
    assert a_ship.problems == []
    # when B makes R1 from U3, and A adds a lot of its own to its unit U2
    refurbished = transformation("urn:uuid:b-refurb", outputs=[sgtin(B, "R1")]) | {"inputEPCList": [sgtin(A, "U3")]}
    b_done = capture(world.b, document(refurbished))
    a_done = capture(
        world.a, document(transformation("urn:uuid:a-more", lots=[lgtin(A, "AL2")], outputs=[sgtin(A, "U2")]))
    )
    # then
    assert (b_done.problems, a_done.problems) == ([], [])
    assert Transformation.objects.filter(owner=world.b).count() == 1


# --- rule 3: aggregation of its own containers ----------------------------------------------------------------

NOT_YOUR_CONTAINER = "is not yours: you may pack and unpack only your own containers"


@pytest.mark.parametrize(
    ("binding", "action", "children"),
    [("json", "DELETE", []), ("json", "DELETE", ["U1"]), ("xml", "DELETE", ["U1"]), ("json", "ADD", ["B1"])],
)
def test_b_cannot_pack_or_unpack_a_container_of_a(world, binding, action, children):
    # given
    before = a_state(world)
    epcs = [sgtin(A if c.startswith("U") else B, c) for c in children]
    event = aggregation("urn:uuid:b-agg", action, sscc(A, 1), epcs, at="09")
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-agg", f"{sscc(A, 1)} {NOT_YOUR_CONTAINER}")]
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("lot", VICTIM_LOTS.values(), ids=VICTIM_LOTS.keys())
def test_b_packing_or_receiving_a_lot_of_a_is_told_the_same_whether_it_exists(world, a_lot, lot):
    # given
    before = a_state(world), traced("AL1")
    packing = aggregation("urn:uuid:b-agg", "ADD", sscc(B, 1), [], at="09")
    packing["childQuantityList"] = [{"epcClass": lot, "quantity": 1, "uom": "KGM"}]
    receipt = lot_shipping("urn:uuid:b-recv", [lot], to=pgln(B), desadv="DA-1") | {"bizStep": "receiving"}
    # when
    done = [capture(world.b, document(event)) for event in (packing, receipt)]
    # then
    assert [refusals(d) for d in done] == [
        [("urn:uuid:b-agg", f"{lot} is not yours: you may pack only what is yours")],
        [("urn:uuid:b-recv", f"{lot} was {NOT_SHIPPED}")],
    ]
    assert (a_state(world), traced("AL1")) == before and b_wrote(world) == 0


def test_b_cannot_pack_a_unit_of_a_into_its_own_carton(world):
    # given
    before = a_state(world)
    # when
    done = capture(world.b, document(aggregation("urn:uuid:b-agg", "ADD", sscc(B, 1), [sgtin(A, "U3")], at="09")))
    # then
    assert refusals(done) == [("urn:uuid:b-agg", f"{sgtin(A, 'U3')} is not yours: you may pack only what is yours")]
    assert a_state(world) == before and b_wrote(world) == 0


def test_b_cannot_pack_into_a_carton_of_a_in_csv(world):
    # given
    before = a_state(world)
    row = {
        "container_sscc": keys.sscc(A, 1),
        "unit_gtin": gtin14(B),
        "unit_serial": "B1",
        "packed_at": "2024-07-01T09:00:00Z",
    }
    # when
    done = _load(world.b, "packing", _csv("packing", row))
    # then
    assert [message for _, message in refusals(done)] == [
        f"https://id.gs1.org/00/{keys.sscc(A, 1)} {NOT_YOUR_CONTAINER}"
    ]
    assert a_state(world) == before and b_wrote(world) == 0


def test_a_unpacks_its_carton_and_b_packs_its_own(world):
    # when
    a_done = capture(
        world.a, document(aggregation("urn:uuid:a-unpack", "DELETE", sscc(A, 1), [sgtin(A, "U1")], at="09"))
    )
    b_done = capture(world.b, document(aggregation("urn:uuid:b-pack", "ADD", sscc(B, 1), [sgtin(B, "B1")], at="09")))
    # then
    assert (a_done.problems, b_done.problems) == ([], [])
    open_packings = UnitPacking.objects.filter(unpacked_at__isnull=True)
    assert sorted(open_packings.values_list("unit__serial", "container__owner__slug")) == [("B1", "b"), ("U2", "a")]


# --- rule 4: shipments it sends, receipts of shipments addressed to it ------------------------------------------


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_cannot_ship_as_a(world, binding):
    # given
    before = a_state(world)
    event = shipping("urn:uuid:b-ship", [sgtin(B, "B1")], source=pgln(A), to=pgln(D), desadv="DA-B")
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [
        (
            "urn:uuid:b-ship",
            f"the sending party {pgln(A)} is registered by another organisation:"
            " you may record only shipments you send",
        )
    ]
    assert a_state(world) == before and b_wrote(world) == 0 and Shipment.objects.count() == 1


@pytest.mark.parametrize("source", [None, "b"])
def test_b_cannot_ship_a_carton_of_a(world, source):
    # given
    before = a_state(world)
    event = shipping("urn:uuid:b-ship", [sscc(A, 1)], source=source and pgln(B), to=pgln(D), desadv="DA-B")
    # when
    done = capture(world.b, document(event))
    # then
    assert refusals(done) == [("urn:uuid:b-ship", f"{sscc(A, 1)} is not yours: you may ship only what you own")]
    assert a_state(world) == before and b_wrote(world) == 0 and Shipment.objects.count() == 1


def test_b_cannot_ship_a_carton_of_a_in_csv(world):
    # given
    before = a_state(world)
    row = {
        "despatch_advice": "DA-B",
        "consignee_gln": world.d.pgln,
        "shipped_at": "2024-07-02T14:00:00Z",
        "sscc": keys.sscc(A, 1),
    }
    # when
    done = _load(world.b, "shipments", _csv("shipments", row))
    # then
    assert [m for _, m in refusals(done)] == [
        f"https://id.gs1.org/00/{keys.sscc(A, 1)} is not yours: you may ship only what you own"
    ]
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_cannot_receive_as_the_consignee_of_a_shipment(world, binding):
    # given
    before = a_state(world)
    event = shipping("urn:uuid:b-recv", [sscc(A, 1)], source=None, to=pgln(D), desadv="DA-1", step="receiving")
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [
        (
            "urn:uuid:b-recv",
            f"the receiving party {pgln(D)} is registered by another organisation:"
            " you may record receipts only of shipments addressed to you",
        )
    ]
    assert a_state(world) == before and b_wrote(world) == 0


NOT_SHIPPED = "not shipped to you: you may record receipts only of what was"


def receiving(event_id: str, epcs: list[str], *, desadv: str, at: str = "09") -> dict:
    """A receipt as a consignee's warehouse records it: no destinationList (the capturer receives)."""
    event = shipping(event_id, epcs, source=None, to="", desadv=desadv, step="receiving", at=at)
    del event["destinationList"]
    return event


@pytest.mark.parametrize("binding", ["json", "xml"])
@pytest.mark.parametrize("desadv", ["DA-1", "DA-0"], ids=["a-shipment-to-d", "a-reference-nobody-sent"])
@pytest.mark.parametrize(
    "epc",
    [sscc(A, 1), sscc(A, 7), sgtin(A, "U3")],
    ids=["a-carton-shipped-to-d", "a-carton-never-captured", "a-unit-never-shipped"],
)
def test_b_cannot_receive_what_was_not_shipped_to_it_and_is_told_the_same_whatever_exists(world, binding, desadv, epc):
    # given
    before = a_state(world)
    event = receiving("urn:uuid:b-recv", [epc], desadv=desadv)
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then the reason names the event and the object, and depends on nothing B may not see
    assert refusals(done) == [("urn:uuid:b-recv", f"{epc} was {NOT_SHIPPED}")]
    assert a_state(world) == before and b_wrote(world) == 0
    assert Shipment.objects.get(reference="urn:ledger:desadv:DA-1").received_at is None


def test_a_receipt_names_every_object_not_shipped_to_the_capturer(world):
    # given B's own unit beside two of A's
    before = a_state(world)
    epcs = [sscc(A, 1), sgtin(B, "B1"), sgtin(A, "U3")]
    # when
    done = capture(world.b, document(receiving("urn:uuid:b-recv", epcs, desadv="DA-1")))
    # then
    assert refusals(done) == [("urn:uuid:b-recv", f"{sscc(A, 1)}, {sgtin(A, 'U3')} were {NOT_SHIPPED}")]
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("desadv", ["DA-1", "DA-0"])
def test_b_cannot_receive_a_carton_of_a_in_csv(world, desadv):
    # given
    before = a_state(world)
    row = {"despatch_advice": desadv, "received_at": "2024-07-04T10:00:00Z", "sscc": keys.sscc(A, 1)}
    # when
    done = _load(world.b, "receipts", _csv("receipts", row))
    # then
    assert [m for _, m in refusals(done)] == [f"https://id.gs1.org/00/{keys.sscc(A, 1)} was {NOT_SHIPPED}"]
    assert a_state(world) == before and b_wrote(world) == 0


def test_d_receives_in_csv_what_was_shipped_to_it(world):
    # given A's carton 1, shipped to D under DA-1
    row = {"despatch_advice": "DA-1", "received_at": "2024-07-04T10:00:00Z", "sscc": keys.sscc(A, 1)}
    # when
    done = _load(world.d, "receipts", _csv("receipts", row))
    # then
    assert (done.captured, done.problems) == (1, [])
    assert Shipment.objects.get(reference="urn:ledger:desadv:DA-1").received_at.day == 4


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_d_receives_what_was_shipped_to_it_loose_or_packed_at_any_depth(world, binding):
    # given A packs U3 into carton 2, carton 2 onto pallet 3, and ships the pallet to D under DA-3
    assert (
        capture(
            world.a,
            document(
                aggregation("urn:uuid:a-pack2", "ADD", sscc(A, 2), [sgtin(A, "U3")], at="06"),
                aggregation("urn:uuid:a-pack3", "ADD", sscc(A, 3), [sscc(A, 2)], at="07"),
                shipping("urn:uuid:a-ship3", [sscc(A, 3)], source=pgln(A), to=pgln(D), desadv="DA-3"),
            ),
        ).problems
        == []
    )
    # when D records receipts of the pallet, the carton in it, the unit in that, and U1 of carton 1
    events = [
        receiving("urn:uuid:d-r3", [sscc(A, 3), sscc(A, 2), sgtin(A, "U3")], desadv="DA-3"),
        receiving("urn:uuid:d-r1", [sgtin(A, "U1")], desadv="DA-1", at="10"),
    ]
    done = capture(world.d, document(*events) if binding == "json" else xml_document(*events))
    # then
    assert (done.captured, done.problems) == (2, [])
    received = dict(Shipment.objects.values_list("reference", "received_at__day"))
    assert received == {"urn:ledger:desadv:DA-1": 10, "urn:ledger:desadv:DA-3": 9}


def test_d_cannot_receive_what_was_shipped_to_another(world):
    # given A ships U3 loose to B
    a_done = capture(
        world.a, document(shipping("urn:uuid:a-s2", [sgtin(A, "U3")], source=None, to=pgln(B), desadv="DA-2"))
    )
    assert a_done.problems == []
    # when
    done = capture(world.d, document(receiving("urn:uuid:d-r2", [sgtin(A, "U3")], desadv="DA-2")))
    # then
    assert refusals(done) == [("urn:uuid:d-r2", f"{sgtin(A, 'U3')} was {NOT_SHIPPED}")]
    assert Shipment.objects.get(reference="urn:ledger:desadv:DA-2").received_at is None


@pytest.mark.parametrize("behaviour", ["rollback", "proceed"])
def test_a_receipt_not_shipped_to_the_capturer_is_refused_whole_or_alone(world, behaviour):
    # given D's document: a receipt of carton 1 (shipped to it), one of U3 (never shipped)
    events = [
        receiving("urn:uuid:d-r1", [sscc(A, 1)], desadv="DA-1"),
        receiving("urn:uuid:d-r3", [sgtin(A, "U3")], desadv="DA-1", at="10"),
    ]
    before = a_state(world)
    # when
    done = capture(world.d, document(*events), behaviour=behaviour)
    # then
    assert refusals(done) == [("urn:uuid:d-r3", f"{sgtin(A, 'U3')} was {NOT_SHIPPED}")]
    stored = list(EpcisEvent.objects.filter(owner=world.d).values_list("event_id", flat=True))
    received_at = Shipment.objects.get(reference="urn:ledger:desadv:DA-1").received_at
    if behaviour == "rollback":
        assert (done.captured, stored, received_at) == (0, [], None)
        assert a_state(world) == before
    else:
        assert (done.captured, stored, received_at.day) == (1, ["urn:uuid:d-r1"], 9)


def test_b_receives_in_csv_with_proceed_only_what_was_shipped_to_it(world):
    # given A ships U3 loose to B under DA-2
    capture(world.a, document(shipping("urn:uuid:a-s2", [sgtin(A, "U3")], source=None, to=pgln(B), desadv="DA-2")))
    rows = [
        {"despatch_advice": "DA-2", "received_at": "2024-07-04T10:00:00Z", "unit_gtin": gtin14(A), "unit_serial": "U3"},
        {"despatch_advice": "DA-1", "received_at": "2024-07-04T10:00:00Z", "sscc": keys.sscc(A, 1)},
    ]
    # when
    done = capture_now(
        owner=world.b,
        document=io.BytesIO(json.dumps(csv_document("receipts", _csv("receipts", *rows))).encode()),
        error_behaviour="proceed",
    )
    # then
    assert [m for _, m in refusals(done)] == [f"https://id.gs1.org/00/{keys.sscc(A, 1)} was {NOT_SHIPPED}"]
    received = dict(Shipment.objects.values_list("reference", "received_at__day"))
    assert received == {"urn:ledger:desadv:DA-1": None, "urn:ledger:desadv:DA-2": 4}


def test_checking_a_receipt_costs_the_same_queries_for_few_or_many_objects(world):
    # given A ships U10-U19 loose to D
    units = [sgtin(A, f"U1{i}") for i in range(10)]
    capture(world.a, document(commissioning("urn:uuid:a-more", units)))
    capture(world.a, document(shipping("urn:uuid:a-s4", units, source=None, to=pgln(D), desadv="DA-4")))

    def queries_for(event_id: str, epcs: list[str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            done = capture(world.d, document(receiving(event_id, epcs, desadv="DA-4")))
        assert done.problems == []
        return len(queries)

    queries_for("urn:uuid:d-first", units[:1])  # D's first capture learns what later ones find learnt
    # when / then
    assert queries_for("urn:uuid:d-few", units[1:3]) == queries_for("urn:uuid:d-many", units[3:])


def test_a_ships_its_carton_and_d_receives_it(world):
    # when
    a_done = capture(
        world.a, document(shipping("urn:uuid:a-s2", [sgtin(A, "U3")], source=None, to=pgln(D), desadv="DA-2"))
    )
    d_done = capture(
        world.d,
        document(
            shipping("urn:uuid:d-r1", [sscc(A, 1)], source=None, to=pgln(D), desadv="DA-1", step="receiving", at="09")
        ),
    )
    # then
    assert (a_done.problems, d_done.problems) == ([], [])
    received = dict(Shipment.objects.values_list("reference", "received_at__day"))
    assert received == {"urn:ledger:desadv:DA-1": 9, "urn:ledger:desadv:DA-2": None}


# --- rule 5: an errorDeclaration retracts only the declaring organisation's own events ---------------------------


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_declaring_an_event_of_a_is_answered_as_a_declaration_of_an_unknown_event(world, binding):
    # given
    before = a_state(world)
    a_event = transformation("urn:uuid:a-out", outputs=[sgtin(A, s) for s in ("U1", "U2", "U3")], tid="urn:uuid:T-A")
    unknown = transformation("urn:uuid:nobody", outputs=[sgtin(B, "B1")], tid="urn:uuid:T-B")

    def as_sent(*events):
        return document(*events) if binding == "json" else xml_document(*events)

    # when
    foreign = capture(world.b, as_sent(declaration(a_event)))
    not_known = capture(world.b, as_sent(declaration(unknown)))
    # then: the same answer, and A's event and record as they were
    assert (foreign.captured, foreign.declared, foreign.problems) == (1, 0, [])
    assert (not_known.captured, not_known.declared, not_known.problems) == (1, 0, [])
    assert a_state(world) == before


def test_b_sending_an_event_id_a_used_records_a_new_event_of_its_own(world):
    # given B's own commissioning, under the eventID of A's packing event
    before = a_state(world)
    own = commissioning("urn:uuid:a-pack", [sgtin(B, "B1")])
    # when it arrives twice
    first = capture(world.b, document(own))
    again = capture(world.b, document(own))
    # then it is B's new event, then a repeat of B's own; A's event and records are as they were
    assert (first.captured, first.repeated, first.problems) == (1, 0, [])
    assert (again.captured, again.repeated, again.problems) == (0, 1, [])
    assert a_state(world) == before
    assert sorted(EpcisEvent.objects.filter(event_id="urn:uuid:a-pack").values_list("owner__slug", "type")) == [
        ("a", "AggregationEvent"),
        ("b", "ObjectEvent"),
    ]


@pytest.mark.parametrize("event_id", ["urn:uuid:a-pack", "urn:uuid:b-new"], ids=["a-s-event-id", "a-new-one"])
def test_b_repeating_an_event_of_a_is_judged_by_what_it_writes_whatever_its_event_id(world, event_id):
    # given A's packing event, as B might have copied it
    before = a_state(world)
    a_event = aggregation(event_id, "ADD", sscc(A, 1), [sgtin(A, "U1"), sgtin(A, "U2")])
    # when
    done = capture(world.b, document(a_event))
    # then the same answer under A's eventID as under a new one: nothing says A's exists
    assert refusals(done) == [(event_id, f"{sscc(A, 1)} {NOT_YOUR_CONTAINER}")]
    assert a_state(world) == before and b_wrote(world) == 0


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_a_declaration_reaches_only_the_declarers_own_event_of_that_event_id(world, binding):
    # given B's own build of B1 from BL1, under the eventID of A's build event
    b_event = transformation("urn:uuid:a-out", lots=[lgtin(B, "BL1")], outputs=[sgtin(B, "B1")])
    a_event = transformation("urn:uuid:a-out", outputs=[sgtin(A, s) for s in ("U1", "U2", "U3")], tid="urn:uuid:T-A")
    assert capture(world.b, document(b_event)).problems == []
    before = a_state(world)

    def as_sent(event):
        return document(event) if binding == "json" else xml_document(event)

    def traced(code: str) -> tuple[int, int]:
        forward = genealogy.forward_trace(
            snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[Lot.objects.get(code=code).pk]
        )
        return genealogy.affected_counts(forward)

    assert traced("BL1") == (1, 0)
    # when B declares its event erroneous
    b_done = capture(world.b, as_sent(declaration(b_event)))
    # then B's record is retracted, A's event and record are as they were
    assert (b_done.declared, b_done.problems) == (1, [])
    assert traced("BL1") == (0, 0) and a_state(world) == before
    # and when A declares its own, A's record is retracted and B's declaration stays B's
    a_done = capture(world.a, as_sent(declaration(a_event, reason="did_not_occur")))
    assert (a_done.declared, a_done.problems) == (1, [])
    assert traced("CL1") == (0, 0)
    declared = EpcisEvent.objects.filter(event_id="urn:uuid:a-out").order_by("owner__slug")
    assert [(e.owner.slug, e.declaration["reason"]) for e in declared] == [
        ("a", "did_not_occur"),
        ("b", "incorrect_data"),
    ]


def test_a_declares_its_own_event_and_its_record_is_retracted(world):
    # given
    a_event = transformation("urn:uuid:a-out", outputs=[sgtin(A, s) for s in ("U1", "U2", "U3")], tid="urn:uuid:T-A")
    # when
    done = capture(world.a, document(declaration(a_event)))
    # then
    assert (done.declared, done.problems) == (1, [])
    lot = Lot.objects.get(code="CL1")
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    assert genealogy.affected_counts(forward) == (0, 0)


# --- rule 6: a transformationID and a work order are the recording organisation's ------------------------------


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_b_reusing_the_transformation_id_of_a_forms_its_own_group(world, binding):
    # given
    before = a_state(world)
    event = transformation("urn:uuid:b-t", lots=[lgtin(B, "BL1")], outputs=[sgtin(B, "B1")], tid="urn:uuid:T-A")
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert (done.captured, done.problems) == (1, [])
    assert a_state(world) == before
    assert list(Transformation.objects.filter(owner=world.b).values_list("reference", "retracted_position")) == [
        ("urn:uuid:T-A", None)
    ]


def test_b_reusing_a_work_order_number_of_a_in_csv_forms_its_own_work_order(world):
    # given A's work order WO-1: its lot AL1 into its units W1 and W2
    at = "2024-07-01T08:00:00Z"

    def work_order(prefix: str, lot: str, serials: tuple[str, ...]) -> bytes:
        rows = [
            {"work_order": "WO-1", "role": "input", "gtin": gtin14(prefix, "22222"), "lot_or_serial": lot, "at": at}
        ]
        rows += [
            {"work_order": "WO-1", "role": "output", "gtin": gtin14(prefix), "lot_or_serial": s, "at": at}
            for s in serials
        ]
        return _csv("work_orders", *rows)

    assert _load(world.a, "work_orders", work_order(A, "AL1", ("W1", "W2"))).problems == []
    before = a_state(world)
    # when B loads a work order WO-1 of its own
    done = _load(world.b, "work_orders", work_order(B, "BL1", ("X1",)))
    # then A's work order is as it was: its lot reaches its two units only, definitely
    assert (done.captured, done.problems) == (2, [])
    assert a_state(world) == before
    lot = Lot.objects.get(code="AL1")
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    assert genealogy.affected_counts(forward) == (2, 0)
    references = Transformation.objects.filter(reference="urn:ledger:work-order:WO-1", retracted_position=None)
    assert sorted(references.values_list("owner__slug", flat=True)) == ["a", "b"]


# --- rule 7: a registered company prefix fixes how its keys split -----------------------------------------------


@pytest.mark.parametrize("binding", ["json", "xml"])
def test_a_urn_splitting_a_registered_prefix_otherwise_is_refused(world, binding):
    # given U1's key, split after six digits instead of A's seven
    before = a_state(world)
    wrong = "urn:epc:id:sgtin:401234.0511111.U1"
    event = commissioning("urn:uuid:b-split", [wrong])
    # when
    done = capture(world.b, document(event) if binding == "json" else xml_document(event))
    # then
    assert refusals(done) == [
        ("urn:uuid:b-split", f"{wrong} splits company prefix {A} otherwise: its registered split is {sgtin(A, 'U1')}")
    ]
    assert a_state(world) == before and b_wrote(world) == 0


def test_a_urn_splitting_a_registered_prefix_as_registered_is_taken(world):
    # when A observes its unit by the registered split, and by a Digital Link (which has no split)
    done = capture(
        world.a, document(commissioning("urn:uuid:a-obs", [sgtin(A, "U1"), f"https://id.gs1.org/01/{gtin14(A)}/21/U9"]))
    )
    # then
    assert done.problems == []


def test_a_capture_reads_only_the_registrations_its_keys_and_parties_need(world):
    # given a directory of many other organisations, each with its prefix and party GLN
    for n in range(30):
        _organisation(f"other-{n}", f"{4200000 + n}")
    organisations = Organisation._meta.db_table

    def directory_reads(event_id: str, units: list[str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            done = capture(
                world.b,
                document(
                    transformation(event_id, lots=[lgtin(CELLS, "CL9")], outputs=units),
                    shipping(f"{event_id}-s", units, source=pgln(B), to=pgln(D), desadv=event_id),
                ),
            )
        assert (done.captured, done.problems) == (2, [])
        read = [q["sql"] for q in queries if f'FROM "{organisations}"' in q["sql"]]
        # every read of the directory names what it looks for: none lists every organisation that
        # registered a prefix or a party GLN
        assert all(" WHERE " in sql and " IS NULL" not in sql for sql in read), read
        return len(read)

    # when B builds and ships one unit, then ten, under its own prefix
    few = directory_reads("urn:uuid:b-few", [sgtin(B, "F1")])
    many = directory_reads("urn:uuid:b-many", [sgtin(B, f"M{i}") for i in range(10)])
    # then the directory is asked as often whatever the batch names
    assert few == many
