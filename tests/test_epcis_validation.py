"""Validating an EPCIS 2.0 document (JSON binding) before capture: GS1's schema, then what it leaves open.

No database: ``traceability.events.validation`` is pure Python.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from traceability.events.problems import DocumentRejected, Problem
from traceability.events.validation import document_problems, document_validate, event_problems

CORPUS_JSON = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "epcis" / "json"
# Collected at import for the test ids; the corpus fixture skips (or fails in CI) when it is absent.
CORPUS_FILES = sorted(path.name for path in CORPUS_JSON.glob("*.jsonld")) or ["corpus-absent"]

EVENT_ID = "urn:uuid:6f1c0a9e-0b1d-4e3a-9c1e-000000000001"
SGTIN = "urn:epc:id:sgtin:6970011.000002.A1263-000001"
LGTIN = "urn:epc:class:lgtin:6970011.000001.NWC-2306-17"
SGLN = "urn:epc:id:sgln:6970011.00001.0"
PGLN = "urn:epc:id:pgln:6970011.00001"
HERE = "/epcisBody/eventList/0"


def an_event(event_type: str = "ObjectEvent", **members: Any) -> dict[str, Any]:
    """A valid event of ``event_type``; ``members`` replace its members, None removes one."""
    shapes: dict[str, dict[str, Any]] = {
        "ObjectEvent": {"action": "OBSERVE", "epcList": [SGTIN]},
        "AggregationEvent": {"action": "ADD", "parentID": "urn:epc:id:sscc:6970011.0000000001", "childEPCs": [SGTIN]},
        "AssociationEvent": {"action": "ADD", "parentID": "urn:epc:id:grai:6970011.00001.7", "childEPCs": [SGTIN]},
        "TransactionEvent": {
            "action": "ADD",
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:6970011000013:PO-1"}],
            "epcList": [SGTIN],
        },
        "TransformationEvent": {
            "inputQuantityList": [{"epcClass": LGTIN, "quantity": 2.5, "uom": "KGM"}],
            "outputEPCList": [SGTIN],
        },
    }
    event = {
        "type": event_type,
        "eventTime": "2024-05-01T09:30:00.000+02:00",
        "eventTimeZoneOffset": "+02:00",
        "eventID": EVENT_ID,
        **shapes[event_type],
        "bizStep": "commissioning",
        "readPoint": {"id": SGLN},
    }
    event.update(members)
    return {name: value for name, value in event.items() if value is not None}


def a_document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def the_problem(event: dict[str, Any]) -> Problem:
    problems = document_problems(a_document(event))
    assert len(problems) == 1, problems
    return problems[0]


# --- the corpus ---------------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_gs1_example_document_is_valid(corpus: Path, name: str) -> None:
    # given: one of GS1's own example documents (all are valid: none needed an exception, and the
    # geo: readPoint of the rail example is a CBV 2.0 location identifier, so it is accepted)
    document = json.loads((corpus / "json" / name).read_text(encoding="utf-8"))

    # when
    problems = document_problems(document)

    # then
    assert problems == []


@pytest.mark.corpus
def test_a_corrupted_gs1_example_is_rejected_at_the_right_place(corpus: Path) -> None:
    # given: GS1's Digital Link example with the GTIN check digit of its second event's EPC changed
    document = json.loads((corpus / "json" / "Example_9.6.1-ObjectEventWithDigitalLink.jsonld").read_text())
    second = document["epcisBody"]["eventList"][1]
    second["epcList"][0] = second["epcList"][0].replace("/01/70614141123451/", "/01/70614141123452/")

    # when
    problems = document_problems(document)

    # then
    assert [(p.where, p.event_index, p.event_id) for p in problems] == [
        ("/epcisBody/eventList/1/epcList/0", 1, second["eventID"])
    ]
    assert "GTIN check digit is 2, expected 1" in problems[0].message


# --- valid documents ---------------------------------------------------------------------------------


def test_a_valid_document_of_every_event_type_has_no_problems() -> None:
    # given
    event_types = ["ObjectEvent", "AggregationEvent", "AssociationEvent", "TransactionEvent", "TransformationEvent"]
    document = a_document(*(an_event(kind, eventID=f"urn:uuid:{n}") for n, kind in enumerate(event_types)))

    # when
    problems = document_problems(document)

    # then
    assert problems == []
    document_validate(document)  # does not raise


def test_an_epcis_query_document_has_its_events_checked_where_they_are() -> None:
    # given: a query result keeps its events under queryResults
    document = a_document()
    document["type"] = "EPCISQueryDocument"
    document["epcisBody"] = {
        "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [an_event(action="FOO")]}}
    }

    # when
    problems = document_problems(document)

    # then
    assert [p.where for p in problems] == ["/epcisBody/queryResults/resultsBody/eventList/0/action"]


# --- stage 1: the schema, in plain words -------------------------------------------------------------

SCHEMA_CASES = [
    # (test id, members changed, where under the event, message fragment)
    ("action missing", {"action": None}, "/action", 'ObjectEvent requires "action"'),
    (
        "action unknown",
        {"action": "FOO"},
        "/action",
        'action "FOO" is not allowed: expected one of OBSERVE, ADD, DELETE',
    ),
    ("eventTime missing", {"eventTime": None}, "/eventTime", 'ObjectEvent requires "eventTime"'),
    ("eventTime not a string", {"eventTime": 5}, "/eventTime", "eventTime must be a string, got number 5"),
    (
        "eventTime unparseable",
        {"eventTime": "2024-13-01T09:30:00Z"},
        "/eventTime",
        'eventTime "2024-13-01T09:30:00Z" is not a valid date-time: month must be in 1..12',
    ),
    (
        "eventTime not a date-time",
        {"eventTime": "yesterday"},
        "/eventTime",
        'eventTime "yesterday" is not a valid date-time: expected YYYY-MM-DDThh:mm:ss',
    ),
    (
        "eventTime without offset",
        {"eventTime": "2024-05-01T09:30:00"},
        "/eventTime",
        "it has no UTC offset",
    ),
    (
        "recordTime unparseable",
        {"recordTime": "2024-05-01 09:30"},
        "/recordTime",
        'recordTime "2024-05-01 09:30" is not a valid date-time',
    ),
    (
        "time zone offset out of range",
        {"eventTimeZoneOffset": "+15:00"},
        "/eventTimeZoneOffset",
        'eventTimeZoneOffset "+15:00" must be +hh:mm or -hh:mm between -14:00 and +14:00',
    ),
    (
        "uom not a Rec 20 code",
        {"epcList": None, "quantityList": [{"epcClass": LGTIN, "quantity": 2, "uom": "kg"}]},
        "/quantityList/0/uom",
        'uom "kg" must be a UN/ECE Recommendation 20 common code',
    ),
    (
        "quantity element without epcClass",
        {"epcList": None, "quantityList": [{"quantity": 2}]},
        "/quantityList/0/epcClass",
        'quantityList entry requires "epcClass"',
    ),
    (
        "unknown member of a quantity element",
        {"epcList": None, "quantityList": [{"epcClass": LGTIN, "quantity": 2, "lot": "x"}]},
        "/quantityList/0/lot",
        'quantityList entry does not allow "lot"',
    ),
    (
        "member that is neither EPCIS nor an extension",
        {"acton": "ADD"},
        "/acton",
        'ObjectEvent does not allow "acton": it is not an EPCIS field',
    ),
    (
        "bizStep in the CBV namespace",
        {"bizStep": "urn:epcglobal:cbv:bizstep:shipping"},
        "/bizStep",
        "expected one of accepting, arriving,",
    ),
    ("bizStep not a string", {"bizStep": 5}, "/bizStep", "bizStep must be a string, got number 5"),
    ("epcList not a list", {"epcList": SGTIN}, "/epcList", "epcList must be an array, got string"),
    ("epcList with a repeated EPC", {"epcList": [SGTIN, SGTIN]}, "/epcList", f'lists "{SGTIN}" more than once'),
    ("EPC that is not a URI", {"epcList": ["A1263 000001"]}, "/epcList/0", "is not an absolute URI"),
    (
        "readPoint without id",
        {"readPoint": {"name": "line 3"}},
        "/readPoint/id",
        'readPoint requires "id"',
    ),
    (
        "error declaration without declarationTime",
        {"errorDeclaration": {"reason": "incorrect_data"}},
        "/errorDeclaration/declarationTime",
        'errorDeclaration requires "declarationTime"',
    ),
    ("type missing", {"type": None}, "/type", 'an event requires "type"'),
]


@pytest.mark.parametrize(
    ("changes", "where", "fragment"), [case[1:] for case in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_a_schema_problem_is_reported_at_its_value_in_plain_words(
    changes: dict[str, Any], where: str, fragment: str
) -> None:
    # given
    event = an_event(**changes)

    # when
    problem = the_problem(event)

    # then
    assert (problem.where, problem.event_index, problem.event_id) == (HERE + where, 0, EVENT_ID)
    assert fragment in problem.message


def test_a_bare_event_needs_its_own_context() -> None:
    # given: an event sent alone (POST /epcis/events), without the document's @context
    event = an_event()

    # when
    problems = event_problems(event, index=0, pointer="")

    # then
    assert problems == [Problem("/@context", 'ObjectEvent requires "@context"', event_index=0, event_id=EVENT_ID)]


def test_an_event_inside_a_document_is_checked_at_its_pointer() -> None:
    # given
    event = an_event(action="FOO", eventID=None)

    # when
    problems = event_problems(event, index=3, pointer="/epcisBody/eventList/3")

    # then
    assert [(p.where, p.event_index, p.event_id) for p in problems] == [("/epcisBody/eventList/3/action", 3, None)]


def test_a_document_level_problem_has_no_event() -> None:
    # given
    document = a_document(an_event())
    del document["creationDate"]

    # when
    problems = document_problems(document)

    # then
    assert problems == [Problem("/creationDate", 'EPCISDocument requires "creationDate"')]


def test_a_document_of_another_type_is_refused() -> None:
    # given
    document = a_document(an_event())
    document["type"] = "ObjectEvent"

    # when
    problems = document_problems(document)

    # then
    assert problems == [Problem("/type", 'document type "ObjectEvent" is not EPCISDocument or EPCISQueryDocument')]


def test_an_event_broken_by_the_schema_is_not_also_checked_for_identifiers() -> None:
    # given: a missing action and a bad check digit in the same event
    event = an_event(action=None, epcList=["https://id.gs1.org/01/06970011000029/21/1"])

    # when
    problems = document_problems(a_document(event))

    # then: only the schema's complaint, not the noise of stage 2
    assert [p.where for p in problems] == [f"{HERE}/action"]


# --- stage 2: what each event type must carry ----------------------------------------------------------

SHAPE_CASES = [
    (
        "ObjectEvent with an empty epcList",
        an_event(epcList=[]),
        "/epcList",
        'ObjectEvent with action OBSERVE needs a non-empty "epcList", "quantityList" or "sensorElementList"',
    ),
    (
        "ObjectEvent with ilmd when not ADD",
        an_event(ilmd={"example:lot": "x"}),
        "/ilmd",
        "ilmd is only allowed when action is ADD",
    ),
    (
        "AggregationEvent ADD without parent",
        an_event("AggregationEvent", parentID=None),
        "/parentID",
        'AggregationEvent ADD requires "parentID"',
    ),
    (
        "AggregationEvent OBSERVE without children",
        an_event("AggregationEvent", action="OBSERVE", childEPCs=[]),
        "/childEPCs",
        'AggregationEvent with action OBSERVE needs a non-empty "childEPCs" or "childQuantityList"',
    ),
    (
        "AggregationEvent DELETE without parent",
        an_event("AggregationEvent", action="DELETE", parentID=None, childEPCs=None),
        "/parentID",
        'AggregationEvent DELETE requires "parentID"',
    ),
    (
        "AssociationEvent without parent",
        an_event("AssociationEvent", parentID=None),
        "/parentID",
        'AssociationEvent requires "parentID"',
    ),
    (
        "AssociationEvent ADD without children",
        an_event("AssociationEvent", childEPCs=None),
        "/childEPCs",
        'AssociationEvent with action ADD needs a non-empty "childEPCs" or "childQuantityList"',
    ),
    (
        "TransactionEvent with an empty bizTransactionList",
        an_event("TransactionEvent", bizTransactionList=[]),
        "/bizTransactionList",
        "bizTransactionList must not be empty",
    ),
    (
        "TransactionEvent without bizTransactionList",
        an_event("TransactionEvent", bizTransactionList=None),
        "/bizTransactionList",
        'TransactionEvent requires "bizTransactionList"',
    ),
    (
        "TransformationEvent without outputs",
        an_event("TransformationEvent", outputEPCList=None),
        "/outputEPCList",
        'TransformationEvent needs a non-empty "outputEPCList" or "outputQuantityList"',
    ),
    (
        "TransformationEvent with a transformationID but nothing in or out",
        an_event("TransformationEvent", transformationID="urn:uuid:1", inputQuantityList=None, outputEPCList=None),
        "/inputEPCList",
        "TransformationEvent with a transformationID needs a non-empty",
    ),
]


@pytest.mark.parametrize(
    ("event", "where", "fragment"), [case[1:] for case in SHAPE_CASES], ids=[c[0] for c in SHAPE_CASES]
)
def test_an_event_missing_what_its_type_and_action_need_is_reported(
    event: dict[str, Any], where: str, fragment: str
) -> None:
    # when
    problem = the_problem(event)

    # then
    assert (problem.where, problem.event_index, problem.event_id) == (HERE + where, 0, EVENT_ID)
    assert fragment in problem.message


@pytest.mark.parametrize(
    "event",
    [
        an_event("AggregationEvent", action="DELETE", childEPCs=None),  # no children: all of them
        an_event("TransformationEvent", transformationID="urn:uuid:1", inputQuantityList=None),  # outputs only
        an_event("TransformationEvent", transformationID="urn:uuid:1", outputEPCList=None),  # inputs only
        an_event(
            epcList=[], sensorElementList=[{"sensorReport": [{"type": "Temperature", "value": 21, "uom": "CEL"}]}]
        ),
        an_event(action="ADD", ilmd={"example:lot": "x"}, **{"@context": [{"example": "https://example.com/"}]}),
    ],
    ids=["DELETE without children", "outputs only", "inputs only", "sensor data only", "ilmd with ADD"],
)
def test_what_the_standard_allows_an_event_to_leave_out_is_accepted(event: dict[str, Any]) -> None:
    # when
    problems = document_problems(a_document(event))

    # then
    assert problems == []


# --- stage 2: identifiers, quantities, duplicates ------------------------------------------------------

IDENTIFIER_CASES = [
    (
        "Digital Link with a wrong GTIN check digit",
        {"epcList": ["https://id.gs1.org/01/06970011000029/21/1"]},
        "/epcList/0",
        '"https://id.gs1.org/01/06970011000029/21/1" is not a valid EPC: GTIN check digit is 9, expected 0',
    ),
    (
        "SGTIN URN whose prefix and reference are too short",
        {"epcList": ["urn:epc:id:sgtin:0614141.10734.2017"]},
        "/epcList/0",
        "SGTIN EPC URN: company prefix and item reference must be 13 digits together, got 12",
    ),
    (
        "SGTIN URN with a bad escape",
        {"epcList": ["urn:epc:id:sgtin:0614141.107346.20%2"]},
        "/epcList/0",
        "serial character '%' must be escaped as %25",
    ),
    (
        "GRAI URN with a short asset type",
        {"epcList": ["urn:epc:id:grai:4012345.5555.1"]},
        "/epcList/0",
        "GRAI EPC URN: company prefix and asset type must be 12 digits together, got 11",
    ),
    (
        "GIAI URN with an unescaped slash",
        {"epcList": ["urn:epc:id:giai:4012345.A/B"]},
        "/epcList/0",
        "GIAI EPC URN: asset reference 'A/B' must be letters, digits",
    ),
    (
        "GRAI Digital Link with a wrong check digit",
        {"epcList": ["https://id.gs1.org/8003/040123450007728765"]},
        "/epcList/0",
        "GRAI check digit is 2, expected 1",
    ),
    (
        "container code with a wrong check digit",
        {"epcList": ["urn:epc:id:bic:CSQU3054384"]},
        "/epcList/0",
        "BIC check digit is 4, expected 3",
    ),
    (
        "unknown EPC scheme",
        {"epcList": ["urn:epc:id:sgtn:0614141.107346.2017"]},
        "/epcList/0",
        "'sgtn' is not an EPC scheme of the Tag Data Standard",
    ),
    (
        "a class where one object is needed",
        {"epcList": [LGTIN]},
        "/epcList/0",
        "is not a valid EPC: urn:epc:class: names a class, not one object",
    ),
    (
        "one object where a class is needed",
        {"epcList": None, "quantityList": [{"epcClass": SGTIN, "quantity": 1}]},
        "/quantityList/0/epcClass",
        "is not a valid EPC class: urn:epc:id: names one object, not a class",
    ),
    (
        "a GTIN without serial where one object is needed",
        {"epcList": ["https://id.gs1.org/01/06970011000020"]},
        "/epcList/0",
        "a GTIN without a serial (AI 21) names a class, not one object",
    ),
    (
        "an EPC that is neither URN nor Digital Link",
        {"epcList": ["tag:example.com,2024:A1263-000001"]},
        "/epcList/0",
        "expected an EPC URN (urn:epc:id:…) or a GS1 Digital Link",
    ),
    (
        "readPoint that is not a location",
        {"readPoint": {"id": SGTIN}},
        "/readPoint/id",
        "is not a valid location identifier: expected an SGLN EPC URN, a GS1 Digital Link with AI 414",
    ),
    (
        "bizLocation Digital Link with a wrong GLN check digit",
        {"bizLocation": {"id": "https://id.gs1.org/414/6970011000011"}},
        "/bizLocation/id",
        "GLN check digit is 1, expected 3",
    ),
    (
        "geo readPoint off the globe",
        {"readPoint": {"id": "geo:100,23"}},
        "/readPoint/id",
        "latitude must be within ±90",
    ),
    (
        "owning party that is not a party",
        {"sourceList": [{"type": "owning_party", "source": "urn:epc:id:sscc:6970011.0000000001"}]},
        "/sourceList/0/source",
        "is not a valid party identifier: expected a PGLN or SGLN EPC URN",
    ),
    (
        "destination location that is not a location",
        {"destinationList": [{"type": "location", "destination": PGLN}]},
        "/destinationList/0/destination",
        "is not a valid location identifier",
    ),
    (
        "parentID with a bad check digit",
        {"parentID": "https://id.gs1.org/00/069700110000000010"},
        "/parentID",
        "SSCC check digit is 0, expected 3",
    ),
    (
        "quantity of zero",
        {"epcList": None, "quantityList": [{"epcClass": LGTIN, "quantity": 0, "uom": "KGM"}]},
        "/quantityList/0/quantity",
        "quantity 0 must be a finite number greater than 0",
    ),
    (
        "quantity that is not finite",
        {"epcList": None, "quantityList": [{"epcClass": LGTIN, "quantity": float("inf"), "uom": "KGM"}]},
        "/quantityList/0/quantity",
        "quantity Infinity must be a finite number greater than 0",
    ),
    (
        "fractional count",
        {"epcList": None, "quantityList": [{"epcClass": LGTIN, "quantity": 2.5}]},
        "/quantityList/0/quantity",
        'quantity 2.5 has no "uom", so it counts instances and must be a whole number',
    ),
]


@pytest.mark.parametrize(
    ("changes", "where", "fragment"), [case[1:] for case in IDENTIFIER_CASES], ids=[c[0] for c in IDENTIFIER_CASES]
)
def test_a_bad_identifier_or_quantity_is_reported_with_its_reason(
    changes: dict[str, Any], where: str, fragment: str
) -> None:
    # given
    event_type = "AggregationEvent" if "parentID" in changes else "ObjectEvent"
    event = an_event(event_type, **changes)

    # when
    problem = the_problem(event)

    # then
    assert (problem.where, problem.event_index, problem.event_id) == (HERE + where, 0, EVENT_ID)
    assert fragment in problem.message


@pytest.mark.parametrize(
    "identifier",
    [
        "https://id.gs1.org/01/06970011000020/21/A1263-000001",
        "https://example.com/dl/01/06970011000020/21/1?17=261231",
        "https://id.example.com/8003/040123450007718765",
        "urn:epc:id:sscc:6970011.0000000001",
        "urn:epc:id:giai:4000001.12345",
        "urn:epc:id:gsrn:95252084.000000001",
        "urn:epc:id:gdti:0614141.12345.400",
        "urn:epc:id:cpi:0614141.123ABC.123456789",
        "urn:epc:id:itip:4012345.012345.01.02.987",
        "urn:epc:id:sgcn:4012345.67890.04711",
        "urn:epc:id:ginc:0614141.xyz47%2F11",
        "urn:epc:id:gid:95100000.12345.400",
        "urn:epc:id:bic:CSQU3054383",
        "urn:epc:id:imovn:9176187",
    ],
)
def test_valid_epcs_of_every_scheme_are_accepted(identifier: str) -> None:
    # given
    event = an_event(epcList=[identifier])

    # when
    problems = document_problems(a_document(event))

    # then
    assert problems == []


def test_locations_parties_and_other_source_types_are_accepted() -> None:
    # given: a geo: readPoint (a CBV location identifier), GLN parties, and a source of a type of one's
    # own, whose value may be any URI
    event = an_event(
        readPoint={"id": "geo:42.698334,23.319941"},
        bizLocation={"id": "https://id.gs1.org/414/6970011000013/254/1"},
        sourceList=[
            {"type": "owning_party", "source": PGLN},
            {"type": "possessing_party", "source": SGLN},
            {"type": "https://example.com/source-type/carrier", "source": "https://carrier.example.com/"},
        ],
        destinationList=[{"type": "location", "destination": "https://id.gs1.org/414/6970011000013"}],
    )

    # when
    problems = document_problems(a_document(event))

    # then
    assert problems == []


def test_the_same_event_id_twice_names_both_events() -> None:
    # given
    document = a_document(an_event(), an_event(eventID="urn:uuid:other"), an_event())

    # when
    problems = document_problems(document)

    # then
    assert problems == [
        Problem(
            "/epcisBody/eventList/2/eventID",
            f'eventID "{EVENT_ID}" is used by events 0 and 2; it must be unique',
            event_index=2,
            event_id=EVENT_ID,
        )
    ]


# --- all problems, in order, and the rejection ---------------------------------------------------------


def test_all_problems_of_all_events_are_reported_in_document_order() -> None:
    # given: problems in three of four events, and in the envelope
    broken_quantity = an_event(
        eventID="urn:uuid:2", epcList=None, quantityList=[{"epcClass": "urn:epc:id:sscc:6970011.0000000001"}]
    )
    del broken_quantity["readPoint"]
    broken_quantity["readPoint"] = {"id": PGLN}  # now after the quantity list
    document = a_document(
        an_event(eventID="urn:uuid:0", eventTimeZoneOffset="2:00", action="MOVE"),
        an_event(eventID="urn:uuid:1"),
        broken_quantity,
        an_event("AggregationEvent", eventID=None, parentID=None),
    )
    document["creationDate"] = "today"

    # when
    problems = document_problems(document)

    # then
    assert [(p.where, p.event_index, p.event_id) for p in problems] == [
        ("/creationDate", None, None),
        ("/epcisBody/eventList/0/eventTimeZoneOffset", 0, "urn:uuid:0"),
        ("/epcisBody/eventList/0/action", 0, "urn:uuid:0"),
        ("/epcisBody/eventList/2/quantityList/0/epcClass", 2, "urn:uuid:2"),
        ("/epcisBody/eventList/2/readPoint/id", 2, "urn:uuid:2"),
        ("/epcisBody/eventList/3/parentID", 3, None),
    ]


def test_a_rejected_document_says_how_many_problems_and_shows_the_first_five() -> None:
    # given: seven events, each with an unknown action
    document = a_document(*(an_event(eventID=f"urn:uuid:{n}", action="MOVE") for n in range(7)))

    # when
    with pytest.raises(DocumentRejected) as rejected:
        document_validate(document)

    # then
    assert len(rejected.value.problems) == 7
    message = str(rejected.value)
    assert message.startswith(
        "document rejected, 7 problem(s): event 0 (urn:uuid:0): /epcisBody/eventList/0/action: "
        'action "MOVE" is not allowed: expected one of OBSERVE, ADD, DELETE; event 1 (urn:uuid:1): '
    )
    assert "event 4 (urn:uuid:4)" in message
    assert "event 5" not in message
    assert message.endswith(" (and 2 more)")


def test_validation_does_not_change_the_document() -> None:
    # given
    document = a_document(an_event(), an_event(eventID="urn:uuid:2", action="MOVE"))
    before = copy.deepcopy(document)

    # when
    document_problems(document)

    # then
    assert document == before


def test_long_values_are_cut_in_messages() -> None:
    # given
    value = "urn:epc:id:sgtin:0614141.107346." + "9" * 200

    # when
    problem = the_problem(an_event(epcList=[value]))

    # then
    assert problem.message.startswith(f'"{value[:79]}…" is not a valid EPC')


def test_an_aggregation_observed_without_its_parent_is_valid():
    # given EPCIS 2.0 §7.4.3: parentID may be omitted when the action is OBSERVE
    event = an_event("AggregationEvent", action="OBSERVE", parentID=None)
    # when
    problems = event_problems(event, index=0, pointer="/epcisBody/eventList/0")
    # then
    assert problems == []


def _mutations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Ways to break an event that the schema should notice."""
    broken = [
        {k: v for k, v in event.items() if k != "eventTime"},
        {**event, "eventTime": "2024-13-01T00:00:00Z"},
        {**event, "eventTime": "2024-03-01T00:00:00"},
        {**event, "eventTimeZoneOffset": "+25:00"},
        {**event, "action": "MOVE"},
        {**event, "acton": "ADD"},
        {**event, "bizStep": 7},
        {**event, "readPoint": {"id": "not a uri"}},
    ]
    return [event, *broken]


@pytest.mark.corpus
def test_the_compiled_schema_and_jsonschema_agree_on_every_event(corpus):
    # given every event of GS1's examples, and each broken in several ways; jsonschema-rs answers for
    # the valid ones alone, so it must never accept what jsonschema refuses (nor refuse what it accepts)
    from traceability.events.validation import _EVENT_TYPES, _fast_valid, _validator

    events = [
        event
        for path in sorted((corpus / "json").glob("*.jsonld"))
        for event in json.loads(path.read_text())["epcisBody"].get("eventList", [])
    ]
    checked = 0
    for event in events:
        for candidate in _mutations(event):
            definition = candidate["type"] if candidate["type"] in _EVENT_TYPES else "Extended-Event"
            # when
            fast = _fast_valid(definition, candidate, standalone=False)
            slow = not list(_validator(definition).iter_errors(candidate))
            # then
            assert fast == slow, (candidate.get("eventID"), candidate)
            checked += 1
    assert checked > 400  # 54 events, 9 variants each


def test_an_event_the_compiled_schema_cannot_read_is_validated_by_jsonschema() -> None:
    # given a lone surrogate, which json.loads gives for "\ud800" and Rust strings cannot hold
    event = an_event(eventID="urn:uuid:\ud800")
    # when
    problems = event_problems(event, index=0, pointer=HERE)
    # then
    assert problems == []
