"""The EPCIS 2.0 XML binding read into the JSON binding's dict: GS1's corpus, its twins, bad input."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from traceability.events.problems import DocumentRejected, Problem
from traceability.events.xml import document_from_xml, looks_like_xml

JSON_SCHEMA = Path(__file__).resolve().parents[1] / "traceability" / "events" / "standard" / "EPCIS-JSON-Schema.json"

# Corpus files that are not event documents, by their root element:
# CBV-11.4 is an <epcismd:EPCISMasterDataDocument> (master data only: it has no event list, and
# master data is imported by its own path, not as events); the capture-job files are
# <epcis:EPCISCaptureJob> status responses of the capture interface. Both are refused by
# document_from_xml (see test_not_an_epcis_event_document_is_rejected_with_its_root_named).
# masterdata_all_possible_fields.xml is kept: its root is an <EPCISDocument> with master data in
# its header and an empty event list, which the JSON binding carries as epcisHeader.
NOT_EVENT_DOCUMENTS = {
    "CBV-11.4-2020-06-16a.xml": "EPCISMasterDataDocument",
    "Example-CaptureJobRunning.xml": "EPCISCaptureJob",
    "Example-CaptureJobSuccess.xml": "EPCISCaptureJob",
    "Example-CaptureJobWithErrorFile.xml": "EPCISCaptureJob",
    "Example-CaptureJobWithErrors.xml": "EPCISCaptureJob",
}

# The XSD makes sensorReport's type optional, the JSON schema requires it: GS1's XML example of
# sensor exceptions (event 8) has reports with no type; its JSON twin, SensorDataExample9, adds
# Temperature / AbsoluteHumidity, which the XML does not say.
KNOWN_JSON_SCHEMA_ERRORS = {
    "SensorDataExamples.xml": [
        ("/epcisBody/eventList/8/sensorElementList/0/sensorReport/0", "'type' is a required property"),
        ("/epcisBody/eventList/8/sensorElementList/0/sensorReport/1", "'type' is a required property"),
    ],
}

# Listed at collection; without the corpus one placeholder lets the ``corpus`` fixture skip (or,
# with LEDGER_REQUIRE_CORPUS=1, fail) instead of pytest silently collecting nothing.
CORPUS_XML = sorted(
    path.name
    for path in (Path(__file__).resolve().parents[2] / "shared" / "corpus" / "epcis" / "xml").glob("*.xml")
    if path.name not in NOT_EVENT_DOCUMENTS
) or ["corpus-not-found"]

# XML / JSON twins: (XML file, JSON file, [(XML event index, JSON event index), ...]).
# Example-PersistentDisposition.xml and PersistentDisposition-example.jsonld are not twins (the XML
# has AggregationEvents, the JSON ObjectEvents with other steps), so they are not compared.
TWINS = [
    ("ErrorDeclarationAndCorrectiveEvent.xml", "ErrorDeclarationAndCorrectiveEvent.jsonld", [(0, 0), (1, 1)]),
    ("Example-TransactionEvent-2020_07_03y.xml", "Example-TransactionEvents-2020_07_03y.jsonld", [(0, 0), (1, 1)]),
    ("Example_9.6.1-ObjectEvent-2020_06_18a.xml", "Example_9.6.1-ObjectEvent.jsonld", [(0, 0), (1, 1)]),
    *(
        (f"{kind}_event_all_possible_fields.xml", f"{kind}_event_all_possible_fields.jsonld", [(0, 0)])
        for kind in ("aggregation", "association", "object", "transaction", "transformation")
    ),
    *(
        ("AssociationEventExamples.xml", f"AssociationEvent-{letter}.jsonld", [(index, 0)])
        for index, letter in enumerate("abcdef")
    ),
    ("AssociationEventExamples.xml", "AssociationEvent-h.jsonld", [(7, 0)]),
    *(
        ("SensorDataExamples.xml", f"SensorDataExample{number}.jsonld", [(index, 0)])
        for index, number in ((0, 1), (1, 2), (2, 3), (4, 5), (8, 9), (9, 10), (10, 11), (11, 12), (12, 14))
    ),
]

# The fields the ledger uses.
LEDGER_FIELDS = (
    "type",
    "eventID",
    "eventTime",
    "action",
    "bizStep",
    "disposition",
    "epcList",
    "parentID",
    "childEPCs",
    "inputEPCList",
    "outputEPCList",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputQuantityList",
    "transformationID",
    "sourceList",
    "destinationList",
    "errorDeclaration",
    "ilmd",
)

# Where GS1's twins say something the XML does not: each difference is asserted to be there, so
# a corrected corpus shows up here rather than hiding behind a skip.
_HASH_ID = "the JSON twin carries a hash eventID (ni:///sha-256) that the XML event does not have"
_ADDED_ERROR = "the JSON twin adds an errorDeclaration that the XML event does not have"
KNOWN_TWIN_DIFFERENCES: dict[tuple[str, int], dict[str, str]] = {
    **{
        ("ErrorDeclarationAndCorrectiveEvent.xml", index): {
            "inputQuantityList": "the XML quantity is xsi:nil (unknown); the twin says 500 KGM",
        }
        for index in (0, 1)
    },
    **{("Example_9.6.1-ObjectEvent-2020_06_18a.xml", index): {"eventID": _HASH_ID} for index in (0, 1)},
    **{
        (f"{kind}_event_all_possible_fields.xml", 0): {"eventID": _HASH_ID, "errorDeclaration": _ADDED_ERROR}
        for kind in ("aggregation", "association", "transaction")
    },
    ("object_event_all_possible_fields.xml", 0): {
        "eventID": "the JSON twin has a urn:uuid eventID the XML event does not have",
        "errorDeclaration": _ADDED_ERROR,
        "action": "the XML says OBSERVE, the twin ADD",
        "ilmd": "the JSON twin has ILMD the XML event does not have",
    },
    ("transformation_event_all_possible_fields.xml", 0): {
        "eventID": _HASH_ID,
        "errorDeclaration": _ADDED_ERROR,
        "ilmd": "GS1's converter dropped the measurementUnitCode attributes of cbvmda weights and "
        "nested ext1:object and ext2:object twice; this module keeps them as the XML has them",
    },
    **{("AssociationEventExamples.xml", index): {"eventID": _HASH_ID} for index in range(6)},
    **{("SensorDataExamples.xml", index): {"eventID": _HASH_ID} for index in (0, 1, 2, 4, 9, 10)},
    ("SensorDataExamples.xml", 11): {
        "errorDeclaration": "the XML's example:field is an element with a child, the twin's a string",
    },
    ("SensorDataExamples.xml", 12): {
        "bizStep": "the XML writes https://ref.gs1.org/cbv/Bizstep-sensor_reporting (lower-case s),"
        " which is not the CBV Web URI of sensor_reporting; the twin says sensor_reporting",
    },
}

EPCIS_OPEN = (
    b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"'
    b' creationDate="2024-03-01T08:00:00Z">\n<EPCISBody>\n<EventList>\n'
)
EPCIS_CLOSE = b"</EventList>\n</EPCISBody>\n</epcis:EPCISDocument>\n"
GOOD_EVENT = (
    b"<ObjectEvent><eventTime>2024-03-01T08:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>"
    b"<epcList><epc>urn:epc:id:sgtin:6970011.000002.1</epc></epcList><action>OBSERVE</action></ObjectEvent>\n"
)


@cache
def _json_schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(JSON_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def _json_schema_errors(document: dict[str, Any]) -> list[tuple[str, str]]:
    errors = _json_schema_validator().iter_errors(document)
    return sorted(
        (error.json_path.removeprefix("$").replace(".", "/").replace("[", "/").replace("]", ""), error.message)
        for error in errors
    )


# The standard makes these forms the same value, and only these are normalised before comparing:
# an event time is an instant (its offset is recorded apart, in eventTimeZoneOffset), so
# 2005-04-04T20:33:31.116-06:00 equals 2005-04-05T02:33:31.116Z; and a CBV value's URN form equals
# its bare word (urn:epcglobal:cbv:bizstep:shipping is shipping).
CBV_URN = re.compile(r"^urn:epcglobal:cbv:(bizstep|disp|btt|sdt|er):")
INSTANT_FIELDS = frozenset({"eventTime", "declarationTime"})


def _normalised(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _normalised(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item, key) for item in value]
    if isinstance(value, str) and key in INSTANT_FIELDS:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, str):
        return CBV_URN.sub("", value)
    return value


def _problems(data: bytes | str) -> list[Problem]:
    with pytest.raises(DocumentRejected) as rejected:
        document_from_xml(data)
    return rejected.value.problems


# --- GS1's corpus


@pytest.mark.parametrize("name", CORPUS_XML)
def test_corpus_document_converts_to_a_json_binding_the_json_schema_accepts(corpus: Path, name: str) -> None:
    # given
    data = (corpus / "xml" / name).read_bytes()

    # when
    document = document_from_xml(data)

    # then
    assert document["type"] in ("EPCISDocument", "EPCISQueryDocument")
    assert document["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert json.loads(json.dumps(document)) == document  # plain JSON values only
    assert _json_schema_errors(document) == KNOWN_JSON_SCHEMA_ERRORS.get(name, [])


@pytest.mark.parametrize(("name", "root"), sorted(NOT_EVENT_DOCUMENTS.items()))
def test_not_an_event_document_in_the_corpus_is_refused(corpus: Path, name: str, root: str) -> None:
    # given
    data = (corpus / "xml" / name).read_bytes()

    # when
    problems = _problems(data)

    # then
    assert len(problems) == 1
    assert problems[0].where.endswith(f":{root}")
    assert problems[0].message.startswith(f"the root element is <{root}> in namespace urn:epcglobal:")


@pytest.mark.parametrize(("xml_name", "json_name", "events"), TWINS, ids=[f"{xml}~{twin}" for xml, twin, _ in TWINS])
def test_corpus_xml_equals_its_json_twin_on_the_ledger_fields(
    corpus: Path, xml_name: str, json_name: str, events: list[tuple[int, int]]
) -> None:
    # given
    twin = json.loads((corpus / "json" / json_name).read_text(encoding="utf-8"))["epcisBody"]["eventList"]

    # when
    converted = document_from_xml((corpus / "xml" / xml_name).read_bytes())["epcisBody"]["eventList"]

    # then
    for xml_index, json_index in events:
        known = KNOWN_TWIN_DIFFERENCES.get((xml_name, xml_index), {})
        for field in LEDGER_FIELDS:
            ours = _normalised(converted[xml_index].get(field), field)
            theirs = _normalised(twin[json_index].get(field), field)
            if field in known:
                assert ours != theirs, f"event {xml_index} {field}: no longer differs ({known[field]})"
            else:
                assert ours == theirs, f"event {xml_index} {field}"


def test_error_declaration_twin_converts_field_by_field(corpus: Path) -> None:
    # given
    data = (corpus / "xml" / "ErrorDeclarationAndCorrectiveEvent.xml").read_bytes()

    # when
    document = document_from_xml(data)

    # then
    assert document["@context"] == [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"example": "http://ns.example.com/epcis"},
    ]
    event = document["epcisBody"]["eventList"][0]
    assert event == {
        "type": "TransformationEvent",
        "eventTime": "2020-01-14T00:00:00+01:00",
        "eventTimeZoneOffset": "+01:00",
        "eventID": "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8",
        "errorDeclaration": {
            "example:vendorExtension": "Test1",
            "declarationTime": "2020-01-15T00:00:00+01:00",
            "reason": "incorrect_data",
            "correctiveEventIDs": ["urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8"],
        },
        "inputEPCList": ["urn:epc:id:sgtin:4012345.011111.987"],
        "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.022222.87545GHGH"}],
        "outputEPCList": ["urn:epc:id:sgtin:4012345.033333.AGHFG"],
        "outputQuantityList": [{"epcClass": "urn:epc:idpat:sgtin:4012345.044444.*", "quantity": 452, "uom": "KGM"}],
        "bizStep": "commissioning",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00000.0"},
    }


def test_ilmd_and_sensor_data_keep_prefixes_numbers_and_booleans(corpus: Path) -> None:
    # given
    data = (corpus / "xml" / "transformation_event_all_possible_fields.xml").read_bytes()

    # when
    document = document_from_xml(data)

    # then
    event = document["epcisBody"]["eventList"][0]
    # CBV master data's XML namespace is GS1's cbvmda prefix, already in GS1's protected context
    assert {"ext1": "http://example.com/ext1/"} in document["@context"]
    assert not any(isinstance(entry, dict) and "cbvmda" in entry for entry in document["@context"])
    assert event["ilmd"]["cbvmda:lotNumber"] == "ABC123"
    assert event["ilmd"]["cbvmda:netWeight"] == {"measurementUnitCode": "KGM", "#text": "3.5"}
    assert event["ilmd"]["ext1:array"][:5] == ["12", "22", "2013-06-08T14:58:56.591Z", "true", "stringInArray"]
    assert event["ilmd"]["ext1:object"]["ext2:object"] == {"ext3:string": "stringInObjectInObject"}
    report = event["sensorElementList"][0]["sensorReport"][0]
    assert (report["value"], report["booleanValue"], report["percRank"]) == (26.0, True, 50)
    assert report["type"] == "Temperature"  # gs1:Temperature in the XML


# --- the query document


QUERY_DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<epcisq:EPCISQueryDocument xmlns:epcisq="urn:epcglobal:epcis-query:xsd:2"
    xmlns:example="http://ns.example.com/epcis/" schemaVersion="2.0" creationDate="2024-03-01T08:00:00Z">
  <EPCISBody>
    <epcisq:QueryResults>
      <queryName>SimpleEventQuery</queryName>
      <subscriptionID>recall-watch</subscriptionID>
      <resultsBody>
        <EventList>
          <ObjectEvent>
            <eventTime>2024-03-01T08:00:00+08:00</eventTime>
            <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
            <eventID>urn:uuid:8c1e5a8e-2f53-4e0c-9d0a-1f0b7b3d9a11</eventID>
            <epcList><epc>urn:epc:id:sgtin:6970011.000002.1</epc></epcList>
            <action>OBSERVE</action>
            <bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>
            <extension><example:carton>C-17</example:carton></extension>
          </ObjectEvent>
        </EventList>
      </resultsBody>
    </epcisq:QueryResults>
  </EPCISBody>
</epcisq:EPCISQueryDocument>
"""


def test_query_document_puts_events_under_query_results() -> None:
    # when
    document = document_from_xml(QUERY_DOCUMENT)

    # then
    assert document == {
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"example": "http://ns.example.com/epcis/"},
        ],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T08:00:00Z",
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "subscriptionID": "recall-watch",
                "resultsBody": {
                    "eventList": [
                        {
                            "type": "ObjectEvent",
                            "eventTime": "2024-03-01T08:00:00+08:00",
                            "eventTimeZoneOffset": "+08:00",
                            "eventID": "urn:uuid:8c1e5a8e-2f53-4e0c-9d0a-1f0b7b3d9a11",
                            "epcList": ["urn:epc:id:sgtin:6970011.000002.1"],
                            "action": "OBSERVE",
                            "bizStep": "shipping",
                            "example:carton": "C-17",
                        }
                    ]
                },
            }
        },
    }
    assert _json_schema_errors(document) == []


def test_text_input_with_an_encoding_declaration_converts_like_bytes() -> None:
    # when
    document = document_from_xml(QUERY_DOCUMENT.decode("utf-8"))

    # then
    assert document == document_from_xml(QUERY_DOCUMENT)


# --- bad input


def test_not_xml_at_all_is_rejected_with_line_and_column() -> None:
    # when
    problems = _problems(b"type,eventTime\nObjectEvent,2024-03-01T08:00:00Z\n")

    # then
    assert problems == [
        Problem(where="line 1, column 1", message="not well-formed XML: Start tag expected, '<' not found")
    ]


def test_not_an_epcis_event_document_is_rejected_with_its_root_named() -> None:
    # when
    problems = _problems(b"<order><id>PO-1</id></order>")

    # then
    assert problems == [
        Problem(
            where="order",
            message="the root element is <order> in no namespace; an EPCIS event document is an"
            " <EPCISDocument> in namespace urn:epcglobal:epcis:xsd:2 or an <EPCISQueryDocument> in"
            " namespace urn:epcglobal:epcis-query:xsd:2",
        )
    ]


def test_object_event_missing_action_is_rejected_at_that_event() -> None:
    # given
    missing_action = (
        b"<ObjectEvent><eventTime>2024-03-01T09:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>"
        b"<eventID>urn:uuid:0b6f2c1e-missing-action</eventID>"
        b"<epcList><epc>urn:epc:id:sgtin:6970011.000002.2</epc></epcList>"
        b"<bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep></ObjectEvent>\n"
    )

    # when
    problems = _problems(EPCIS_OPEN + GOOD_EVENT + missing_action + EPCIS_CLOSE)

    # then
    assert problems == [
        Problem(
            where="EPCISBody/EventList/ObjectEvent[2] (line 5)",
            message="found <bizStep> where <action> is expected",
            event_index=1,
            event_id="urn:uuid:0b6f2c1e-missing-action",
        )
    ]


def test_event_with_two_errors_gives_two_problems_naming_the_event() -> None:
    # given
    two_errors = (
        b"<AggregationEvent>\n<eventTime>yesterday</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>\n"
        b"<eventID>urn:uuid:two-errors</eventID><parentID>urn:epc:id:sscc:6970011.0000000001</parentID>\n"
        b"<action>MOVE</action>\n</AggregationEvent>\n"
    )

    # when
    problems = _problems(EPCIS_OPEN + GOOD_EVENT + GOOD_EVENT + two_errors + EPCIS_CLOSE)

    # then
    assert problems == [
        Problem(
            where="EPCISBody/EventList/AggregationEvent[1]/eventTime (line 7)",
            message="'yesterday' is not a date and time with its UTC offset, like 2005-04-03T20:33:31.116-06:00",
            event_index=2,
            event_id="urn:uuid:two-errors",
        ),
        Problem(
            where="EPCISBody/EventList/AggregationEvent[1]/action (line 9)",
            message="'MOVE' is not one of ADD, OBSERVE, DELETE",
            event_index=2,
            event_id="urn:uuid:two-errors",
        ),
    ]


@pytest.mark.parametrize("levels", [10, 3], ids=["billion-laughs", "small-bomb"])
def test_billion_laughs_is_refused_without_expanding(levels: int) -> None:
    # given: ten references per level; ten levels are 10**10 "lol"s if expanded (libxml2 stops
    # that one itself), three levels parse and are refused for declaring entities at all
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, levels)
    ]
    bomb = f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{"".join(entities)}]>\n<lolz>&lol{levels - 1};</lolz>'.encode()
    started = time.monotonic()

    # when
    problems = _problems(bomb)

    # then
    assert time.monotonic() - started < 2
    assert problems == [
        Problem(
            where="DOCTYPE",
            message="the document declares XML entities; EPCIS documents may not, and they were not expanded",
        )
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<?xml version='1.0'?><a/>", True),
        (b"\xef\xbb\xbf  \n<epcis:EPCISDocument/>", True),
        ("<a/>".encode("utf-16"), True),
        (b'  {"type": "EPCISDocument"}', False),
        (b"", False),
    ],
)
def test_looks_like_xml(data: bytes, expected: bool) -> None:
    # when / then
    assert looks_like_xml(data) is expected
