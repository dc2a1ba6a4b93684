"""An event and its error declaration (the same eventID, with ``errorDeclaration``) in one EPCIS
document, as a repository's exported history or an MES's day file holds them: one correction, the
same as capturing the event, then its declaration, in documents of their own."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from cells.models import Lot
from packs.models import Unit
from tests.factories import OrganisationFactory
from tests.test_epcis_capture import capture, document, ledger_written, sgtin, transformation, units_of
from traceability import genealogy
from traceability.events.models import EpcisEvent
from traceability.genealogy.models import Transformation

pytestmark = pytest.mark.django_db

# U1..U3 commissioned, then recorded as made from L1 by mistake; the corrective event says U1 and U2
# were made from L1 and L2 (two lots into two units: potential), and U3 from neither.
COMMISSIONING = {
    "type": "ObjectEvent",
    "eventID": "urn:uuid:commissioning",
    "eventTime": "2024-02-01T07:00:00Z",
    "eventTimeZoneOffset": "+00:00",
    "action": "ADD",
    "bizStep": "commissioning",
    "epcList": [sgtin("U1"), sgtin("U2"), sgtin("U3")],
}
WRONG = transformation("urn:uuid:wrong", lots=["L1"], outputs=["U1", "U2", "U3"], at="02")
DECLARATION = {
    **WRONG,
    "errorDeclaration": {
        "declarationTime": "2024-02-10T00:00:00Z",
        "reason": "incorrect_data",
        "correctiveEventIDs": ["urn:uuid:right"],
    },
}
RIGHT = transformation("urn:uuid:right", lots=["L1", "L2"], outputs=["U1", "U2"], at="02")

CORRECTED = {"L1": {"U1": "potential", "U2": "potential"}, "L2": {"U1": "potential", "U2": "potential"}}


def corrected_ledger() -> tuple:
    """What the correction leaves: each lot's trace at the head, its counts, the stored events and records."""
    lot = Lot.objects.get(code="L1")
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    events = [
        (e.event_id, e.declared_at is not None, (e.declaration or {}).get("reason"), "errorDeclaration" in e.body)
        for e in EpcisEvent.objects.order_by("event_id")
    ]
    records = [
        (r.reference, r.exposure, r.retracted, r.retraction_reason)
        for r in Transformation.objects.order_by("reference")
    ]
    return {code: units_of(code) for code in ("L1", "L2")}, genealogy.affected_counts(forward), events, records


EXPECTED_EVENTS = [
    ("urn:uuid:commissioning", False, None, False),
    ("urn:uuid:right", False, None, False),
    ("urn:uuid:wrong", True, "incorrect_data", False),
]
EXPECTED_RECORDS = [
    ("urn:uuid:right", "potential", False, ""),
    ("urn:uuid:wrong", "definite", True, "EPCIS errorDeclaration: incorrect_data"),
]


@pytest.mark.parametrize(
    ("files", "reports"),
    [
        (
            [[COMMISSIONING, WRONG], [DECLARATION], [RIGHT]],
            [
                "2 events, 2 new, 0 known already, 0 declared erroneous",
                "1 events, 0 new, 0 known already, 1 declared erroneous",
                "1 events, 1 new, 0 known already, 0 declared erroneous",
            ],
        ),
        (
            [[COMMISSIONING, WRONG, DECLARATION, RIGHT]],
            ["4 events, 3 new, 0 known already, 1 declared erroneous"],
        ),
        (
            [[COMMISSIONING, DECLARATION, RIGHT, WRONG]],
            ["4 events, 3 new, 0 known already, 1 declared erroneous"],
        ),
    ],
    ids=["three documents", "one document", "one document, the declaration first"],
)
def test_an_event_its_declaration_and_its_corrective_event_trace_the_same_in_one_document_or_three(
    tmp_path, files, reports
):
    # given
    owner = OrganisationFactory(slug="brand")
    paths = []
    for number, events in enumerate(files):
        paths.append(tmp_path / f"day-{number}.jsonld")
        paths[-1].write_text(json.dumps(document(*events)))
    out = StringIO()
    # when
    call_command("import_epcis", *map(str, paths), "--owner", owner.slug, "--no-progress", stdout=out)
    # then
    assert [line.split(": ")[1] for line in out.getvalue().splitlines()] == [
        f"{report}, 0 problem(s)" for report in reports
    ]
    assert corrected_ledger() == (CORRECTED, (0, 2), EXPECTED_EVENTS, EXPECTED_RECORDS)


def test_in_one_document_the_declared_event_never_counts_at_any_position():
    # given
    owner = OrganisationFactory()
    # when
    done = capture(owner, document(COMMISSIONING, WRONG, DECLARATION, RIGHT))
    # then the erroneous record was retracted at the position that recorded it
    wrong = Transformation.objects.get(reference="urn:uuid:wrong")
    assert (wrong.recorded_position_id, wrong.retracted_position_id) == (done.entry_id, done.entry_id)
    assert EpcisEvent.objects.get(event_id="urn:uuid:wrong").record == wrong
    lot = Lot.objects.get(code="L1")
    at_capture = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(done.entry_id), seed_lot_ids=[lot.pk])
    assert genealogy.affected_counts(at_capture) == (0, 2)


@pytest.mark.parametrize(
    "events",
    [[COMMISSIONING, WRONG, DECLARATION, RIGHT], [DECLARATION, COMMISSIONING, RIGHT, WRONG]],
    ids=["event first", "declaration first"],
)
def test_capturing_a_document_with_an_event_and_its_declaration_twice_changes_nothing(events):
    # given
    owner = OrganisationFactory()
    capture(owner, document(*events))
    before = (ledger_written()[:5], corrected_ledger())
    # when
    again = capture(owner, document(*events))
    # then
    assert (again.captured, again.repeated, again.declared, again.problems) == (0, 4, 0, [])
    assert (ledger_written()[:5], corrected_ledger()) == before


@pytest.mark.parametrize(
    ("events", "first", "second"),
    [([COMMISSIONING, WRONG, WRONG], 1, 2), ([WRONG, DECLARATION, RIGHT, WRONG], 0, 3)],
    ids=["twice", "twice, with its declaration between"],
)
def test_the_same_event_id_twice_without_a_declaration_is_still_refused(events, first, second):
    # given
    owner = OrganisationFactory()
    before = ledger_written()
    # when
    done = capture(owner, document(*events))
    # then
    assert [(p["where"], p["message"]) for p in done.problems] == [
        (
            f"/epcisBody/eventList/{second}/eventID",
            f'eventID "urn:uuid:wrong" is used by events {first} and {second}; it must be unique',
        )
    ]
    assert ledger_written() == before


def test_a_second_declaration_of_the_same_event_in_one_document_is_a_repeat():
    # given
    owner = OrganisationFactory()
    again = {**WRONG, "errorDeclaration": {"declarationTime": "2024-02-11T00:00:00Z", "reason": "did_not_occur"}}
    # when
    done = capture(owner, document(COMMISSIONING, DECLARATION, WRONG, again, RIGHT))
    # then the first declaration is the one that counts
    assert (done.captured, done.declared, done.repeated, done.problems) == (3, 1, 1, [])
    assert corrected_ledger() == (CORRECTED, (0, 2), EXPECTED_EVENTS, EXPECTED_RECORDS)


def test_two_declarations_of_a_stored_event_in_one_document_declare_it_once():
    # given
    owner = OrganisationFactory()
    capture(owner, document(COMMISSIONING, WRONG))
    again = {**WRONG, "errorDeclaration": {"declarationTime": "2024-02-11T00:00:00Z", "reason": "did_not_occur"}}
    # when
    done = capture(owner, document(DECLARATION, again, RIGHT))
    # then
    assert (done.captured, done.declared, done.repeated, done.problems) == (1, 1, 1, [])
    assert corrected_ledger() == (CORRECTED, (0, 2), EXPECTED_EVENTS, EXPECTED_RECORDS)


def test_a_declaration_without_its_event_is_stored_declared_and_its_event_later_is_a_repeat():
    # given
    owner = OrganisationFactory()
    # when
    first = capture(owner, document(COMMISSIONING, DECLARATION, RIGHT))
    late = capture(owner, document(WRONG))
    # then: the declaration is kept as it came, and nothing of the event ever counts
    assert (first.captured, first.declared, late.captured, late.repeated) == (3, 0, 0, 1)
    assert corrected_ledger() == (
        CORRECTED,
        (0, 2),
        [*EXPECTED_EVENTS[:2], ("urn:uuid:wrong", True, "incorrect_data", True)],
        EXPECTED_RECORDS[:1],
    )


def test_an_event_without_event_id_and_its_declaration_in_one_document_are_paired_by_event_hash():
    # given: the event hash leaves errorDeclaration out, so an event and its declaration hash alike
    owner = OrganisationFactory()
    wrong = transformation(None, lots=["L1"], outputs=["U1", "U2", "U3"], at="02")
    declared = {**wrong, "errorDeclaration": DECLARATION["errorDeclaration"]}
    # when
    done = capture(owner, document(COMMISSIONING, declared, wrong, RIGHT))
    # then
    assert (done.captured, done.declared, done.repeated, done.problems) == (3, 1, 0, [])
    assert {code: units_of(code) for code in ("L1", "L2")} == CORRECTED
    hashed = EpcisEvent.objects.get(hashed_id=True)
    assert (hashed.declaration["reason"], hashed.record.retracted, "errorDeclaration" in hashed.body) == (
        "incorrect_data",
        True,
        False,
    )


GROUP_MEMBER = transformation("urn:uuid:t2", lots=["L2"], tid="urn:uuid:T", at="03")
GROUP_MEMBER_DECLARED = {
    **GROUP_MEMBER,
    "errorDeclaration": {"declarationTime": "2024-02-10T00:00:00Z", "reason": "did_not_occur"},
}


@pytest.mark.parametrize(
    ("documents", "records"),
    [
        (
            [[GROUP_MEMBER], [GROUP_MEMBER_DECLARED]],
            ["urn:uuid:T", "urn:uuid:T (recorded again at {0})", "urn:uuid:T (recorded again at {1})"],
        ),
        ([[GROUP_MEMBER, GROUP_MEMBER_DECLARED]], ["urn:uuid:T"]),
    ],
    ids=["two documents", "one document: it leaves its group before the group is recorded"],
)
def test_a_transformation_id_group_member_and_its_declaration_leave_the_group_as_it_was(documents, records):
    # given L1 feeds U1 and U2 through transformation T
    owner = OrganisationFactory()
    capture(owner, document(transformation("urn:uuid:t1", lots=["L1"], outputs=["U1", "U2"], tid="urn:uuid:T")))
    # when L2's part of T arrives, and its declaration
    positions = [capture(owner, document(*events)).entry_id for events in documents]
    # then
    records = [reference.format(*positions) for reference in records]
    assert {code: units_of(code) for code in ("L1", "L2")} == {"L1": {"U1": "definite", "U2": "definite"}, "L2": {}}
    assert [r.reference for r in Transformation.objects.order_by("pk")] == records
    assert [r.reference for r in Transformation.objects.filter(retracted_position=None)] == [records[-1]]
    assert EpcisEvent.objects.get(event_id="urn:uuid:t2").declaration["reason"] == "did_not_occur"


def xml_event(event: dict) -> str:
    """The JSON-binding events above in the XML binding (only the members they use)."""
    inner = [
        f"<eventTime>{event['eventTime']}</eventTime>",
        f"<eventTimeZoneOffset>{event['eventTimeZoneOffset']}</eventTimeZoneOffset>",
        f"<eventID>{event['eventID']}</eventID>",
    ]
    if declaration := event.get("errorDeclaration"):
        corrective = "".join(
            f"<correctiveEventID>{e}</correctiveEventID>" for e in declaration.get("correctiveEventIDs", [])
        )
        inner.append(
            f"<errorDeclaration><declarationTime>{declaration['declarationTime']}</declarationTime>"
            f"<reason>urn:epcglobal:cbv:er:{declaration['reason']}</reason>"
            f"<correctiveEventIDs>{corrective}</correctiveEventIDs></errorDeclaration>"
        )

    def epcs(name: str) -> None:
        if event.get(name):
            inner.append(f"<{name}>{''.join(f'<epc>{epc}</epc>' for epc in event[name])}</{name}>")

    def quantities(name: str) -> None:
        if event.get(name):
            elements = "".join(
                f"<quantityElement><epcClass>{q['epcClass']}</epcClass><quantity>{q['quantity']}</quantity>"
                f"<uom>{q['uom']}</uom></quantityElement>"
                for q in event[name]
            )
            inner.append(f"<{name}>{elements}</{name}>")

    if event["type"] == "ObjectEvent":
        epcs("epcList")
        inner.append(f"<action>{event['action']}</action>")
    else:
        epcs("inputEPCList")
        quantities("inputQuantityList")
        epcs("outputEPCList")
    inner.append(f"<bizStep>urn:epcglobal:cbv:bizstep:{event['bizStep']}</bizStep>")
    return f"<{event['type']}>{''.join(inner)}</{event['type']}>"


def xml_document(*events: dict) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"'
        ' creationDate="2024-03-01T00:00:00Z"><EPCISBody><EventList>'
        + "".join(xml_event(event) for event in events)
        + "</EventList></EPCISBody></epcis:EPCISDocument>"
    ).encode()


@pytest.mark.parametrize(
    "events",
    [[COMMISSIONING, WRONG, DECLARATION, RIGHT], [COMMISSIONING, DECLARATION, RIGHT, WRONG]],
    ids=["event first", "declaration first"],
)
def test_an_xml_document_with_an_event_and_its_declaration_is_one_correction_too(events):
    # given
    owner = OrganisationFactory()
    # when
    done = capture(owner, xml_document(*events))
    # then
    assert (done.captured, done.declared, done.repeated, done.problems) == (3, 1, 0, [])
    assert corrected_ledger() == (CORRECTED, (0, 2), EXPECTED_EVENTS, EXPECTED_RECORDS)


# Transformation T made U1 and U2 from L1 (event A); A is declared erroneous, and B, of the same T,
# says L1 made U3. From the declaration on, T is B alone.
GROUP_COMMISSIONING = {**COMMISSIONING, "eventID": "urn:uuid:group-commissioning"}
GROUP_A = transformation("urn:uuid:a", lots=["L1"], outputs=["U1", "U2"], tid="urn:uuid:T", at="02")
GROUP_A_DECLARED = {
    **GROUP_A,
    "errorDeclaration": {"declarationTime": "2024-02-10T00:00:00Z", "reason": "incorrect_data"},
}
GROUP_B = transformation("urn:uuid:b", lots=["L1"], outputs=["U3"], tid="urn:uuid:T", at="03")
GROUP_C = transformation("urn:uuid:c", lots=["L2"], outputs=["U3"], tid="urn:uuid:T", at="03")


def units_at(lot_code: str, position: int | None = None) -> dict[str, str]:
    """Serial -> exposure of every unit the lot reaches at a ledger position (the head by default)."""
    lot = Lot.objects.get(code=lot_code)
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(position), seed_lot_ids=[lot.pk])
    found = {a.unit_id: a.definite for a in genealogy.all_affected_units(forward)}
    serials = dict(Unit.objects.filter(pk__in=found).values_list("pk", "serial"))
    return {serials[u]: "definite" if d else "potential" for u, d in found.items()}


@pytest.mark.parametrize(
    "documents",
    [[[GROUP_A_DECLARED, GROUP_B]], [[GROUP_B, GROUP_A_DECLARED]], [[GROUP_A_DECLARED], [GROUP_B]]],
    ids=["one document", "one document, the declaration last", "two documents"],
)
def test_a_declared_transformation_id_group_member_stops_counting_when_its_group_grows(documents):
    # given A of transformation T: L1 made U1 and U2
    owner = OrganisationFactory()
    first = capture(owner, document(GROUP_COMMISSIONING, GROUP_A)).entry_id
    # when A is declared erroneous, and B of the same T says L1 made U3
    done = [capture(owner, document(*events)) for events in documents]
    # then from the declaration on L1 made only U3; before it, U1 and U2 as A said
    assert [(d.captured, d.declared, d.problems) for d in done] == (
        [(1, 1, [])] if len(documents) == 1 else [(0, 1, []), (1, 0, [])]
    )
    assert (units_at("L1"), units_at("L1", first)) == (
        {"U3": "definite"},
        {"U1": "definite", "U2": "definite"},
    )
    declared_at, recorded_again_at = done[0].entry_id, done[-1].entry_id
    assert [
        (r.reference, r.recorded_position_id, r.retracted_position_id, r.retraction_reason)
        for r in Transformation.objects.order_by("pk")
    ] == [
        ("urn:uuid:T", first, declared_at, "EPCIS errorDeclaration: incorrect_data"),
        (f"urn:uuid:T (recorded again at {recorded_again_at})", recorded_again_at, None, ""),
    ]
    assert [
        (e.event_id, e.declared_at is not None, e.record.reference)
        for e in EpcisEvent.objects.filter(transformation_id="urn:uuid:T").order_by("event_id")
    ] == [
        ("urn:uuid:a", True, "urn:uuid:T"),
        ("urn:uuid:b", False, f"urn:uuid:T (recorded again at {recorded_again_at})"),
    ]


def test_a_group_grown_beside_a_declaration_keeps_its_earlier_members_still_counting():
    # given T: A (L1 made U1 and U2) and C (L2 made U3), two lots into three units: potential
    owner = OrganisationFactory()
    first = capture(owner, document(GROUP_COMMISSIONING, GROUP_A, GROUP_C)).entry_id
    # when one document declares A and brings B (L1 made U3)
    done = capture(owner, document(GROUP_A_DECLARED, GROUP_B))
    # then T is C and B: L1 and L2 into U3 alone, definite
    assert {code: (units_at(code), units_at(code, first)) for code in ("L1", "L2")} == {
        "L1": ({"U3": "definite"}, {"U1": "potential", "U2": "potential", "U3": "potential"}),
        "L2": ({"U3": "definite"}, {"U1": "potential", "U2": "potential", "U3": "potential"}),
    }
    assert [
        (r.reference, r.retracted_position_id, r.retraction_reason) for r in Transformation.objects.order_by("pk")
    ] == [
        ("urn:uuid:T", done.entry_id, "EPCIS errorDeclaration: incorrect_data"),
        (f"urn:uuid:T (recorded again at {done.entry_id})", None, ""),
    ]
    assert [(e.event_id, e.record.reference) for e in EpcisEvent.objects.filter(transformation_id="urn:uuid:T")] == [
        ("urn:uuid:a", "urn:uuid:T"),
        ("urn:uuid:c", f"urn:uuid:T (recorded again at {done.entry_id})"),
        ("urn:uuid:b", f"urn:uuid:T (recorded again at {done.entry_id})"),
    ]


GROUP_C_DECLARED = {
    **GROUP_C,
    "errorDeclaration": {"declarationTime": "2024-02-11T00:00:00Z", "reason": "incorrect_data"},
}
GROUP_D = transformation("urn:uuid:d", lots=["L3"], outputs=["U3"], tid="urn:uuid:T", at="04")
GROUP_D_DECLARED = {
    **GROUP_D,
    "errorDeclaration": {"declarationTime": "2024-02-12T00:00:00Z", "reason": "did_not_occur"},
}


@pytest.mark.parametrize(
    ("documents", "records"),
    [
        ([[GROUP_A_DECLARED, GROUP_C_DECLARED]], ["urn:uuid:T"]),
        ([[GROUP_A_DECLARED], [GROUP_C_DECLARED]], ["urn:uuid:T", "urn:uuid:T (recorded again at {0})"]),
        ([[GROUP_A_DECLARED, GROUP_D, GROUP_C_DECLARED, GROUP_D_DECLARED]], ["urn:uuid:T"]),
    ],
    ids=["one document", "two documents", "one document, with a new member declared beside it"],
)
def test_a_group_whose_every_member_is_declared_counts_nowhere_from_then_on(documents, records):
    # given T: A (L1 made U1 and U2) and C (L2 made U3)
    owner = OrganisationFactory()
    first = capture(owner, document(GROUP_COMMISSIONING, GROUP_A, GROUP_C)).entry_id
    # when every member of T is declared erroneous
    positions = [capture(owner, document(*events)).entry_id for events in documents]
    # then nothing of T counts at the head, and all of it before
    assert {code: (units_at(code), units_at(code, first)) for code in ("L1", "L2")} == {
        "L1": ({}, {"U1": "potential", "U2": "potential", "U3": "potential"}),
        "L2": ({}, {"U1": "potential", "U2": "potential", "U3": "potential"}),
    }
    assert [r.reference for r in Transformation.objects.order_by("pk")] == [r.format(*positions) for r in records]
    assert not Transformation.objects.filter(retracted_position=None).exists()
    assert not EpcisEvent.objects.filter(transformation_id="urn:uuid:T", declared_at=None).exists()
