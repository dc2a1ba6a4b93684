"""Validate a whole EPCIS 2.0 document before capture writes anything of it.

A document arrives as the JSON binding (what ``json.loads`` gives for JSON-LD; XML is converted into
the same structure first). Any problem rejects the whole document, and every problem is reported
with the JSON pointer of the offending value, the event's position and its ``eventID``.

Two stages, the second only for events the first found sound, so a broken event does not also
produce a cascade of follow-on complaints:

1. GS1's official JSON schema (``standard/EPCIS-JSON-Schema.json``, Draft 7). The envelope is
   validated once with its event list emptied, then each event against its own type's definition,
   so a document of a million events is validated in flat memory. jsonschema's messages are
   rewritten into specific ones; the schema's vague ``anyOf`` rules on what an event must carry are
   reported from the same table stage 2 uses (``_SHAPES``). Formats are asserted, which jsonschema
   does not do by default: ``date-time`` (RFC 3339, so an offset is required) and ``uri``.
2. What the schema leaves open: identifiers (EPC URNs with the Tag Data Standard's syntax, GS1
   Digital Links with check digits, the right kind of identifier in each place), quantities,
   what each event type and action must carry (EPCIS 2.0 §7.4), and ``eventID`` duplicates (an
   event and its error declarations share one).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import unquote

import jsonschema_rs
import orjson
from jsonschema import Draft7Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match

from traceability.events import limits
from traceability.events.problems import DocumentRejected, Problem
from traceability.gs1.tds import Role, cut, identifier_reason, shown

__all__ = ["document_hazards", "document_problems", "document_validate", "event_problems"]


_SCHEMA_FILE = Path(__file__).resolve().parent / "standard" / "EPCIS-JSON-Schema.json"


JsonPath: TypeAlias = tuple[str | int, ...]


Finding: TypeAlias = tuple[JsonPath, str]


"""A problem inside one event or the envelope: where (relative path) and the message."""


# Where each document type keeps its events.
_EVENT_LISTS: dict[str, JsonPath] = {
    "EPCISDocument": ("epcisBody", "eventList"),
    "EPCISQueryDocument": ("epcisBody", "queryResults", "resultsBody", "eventList"),
}


_EVENT_TYPES = frozenset(
    {"ObjectEvent", "AggregationEvent", "AssociationEvent", "TransactionEvent", "TransformationEvent"}
)


def document_validate(document: dict[str, Any]) -> None:
    """Raise DocumentRejected with every problem of ``document``; return quietly when it is valid."""
    if problems := document_problems(document):
        raise DocumentRejected(problems)


def document_problems(document: dict[str, Any], *, schema_checked: bool = False) -> list[Problem]:
    """Every problem of an EPCIS document, in document order (envelope first); [] when it is valid.

    ``schema_checked``: the document came as XML and GS1's XSD has validated it already; the XSD is
    the XML binding's schema (it admits, say, CBV sensor types and persistentDisposition that this
    JSON schema's draft lacks), so only the checks beyond any schema run.
    """
    if not isinstance(document, dict):
        return [Problem("", f"an EPCIS document must be a JSON object, got {_json_type(document)}")]
    document_type = document.get("type")
    events_path = _EVENT_LISTS.get(document_type) if isinstance(document_type, str) else None
    events = _follow(document, events_path) if events_path else None
    if not isinstance(events, list):
        events_path, events = None, []
    # What cannot be stored or walked safely first: nothing recursive may touch a too-deep value.
    around, within = _hazards(document, events_path)
    envelope = around or ([] if schema_checked else _envelope(document))
    problems = [Problem(_pointer(path), message) for path, message in _in_document_order(document, envelope)]
    base = _pointer(events_path or ())
    first_of_id: dict[str, int] = {}
    for index, event in enumerate(events):
        if index in within:
            problems += _problems(event, within[index], index=index, pointer=f"{base}/{index}")
            continue
        findings = _content(event, event["type"]) if schema_checked else _event_findings(event, standalone=False)
        findings += _duplicate_id(event, index, first_of_id)
        if findings:
            problems += _problems(event, findings, index=index, pointer=f"{base}/{index}")
    return problems


def document_hazards(document: Any) -> list[Problem]:
    """What in a parsed document could not be stored or walked safely (``limits``): too deep, a NUL
    or other control character, an identifier too long, a date-time out of range; [] when none.

    Cheap and schema-free, so a request can ask it before it keeps anything."""
    document_type = document.get("type") if isinstance(document, dict) else None
    events_path = _EVENT_LISTS.get(document_type) if isinstance(document_type, str) else None
    events = _follow(document, events_path) if events_path else None
    if not isinstance(events, list):
        events_path, events = None, []
    around, within = _hazards(document, events_path)
    problems = [Problem(_pointer(path), message) for path, message in around]
    base = _pointer(events_path or ())
    for index, findings in within.items():
        problems += _problems(events[index], findings, index=index, pointer=f"{base}/{index}")
    return problems


_RECORD_NAMES = ("eventID", "transformationID")
_SINGLE_IDENTIFIERS = ("parentID", "bizStep", "disposition")
_LISTED_IDENTIFIERS = (
    ("sourceList", "source"),
    ("destinationList", "destination"),
    ("bizTransactionList", "bizTransaction"),
    *((name, "epcClass") for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")),
)


def _hazards(document: Any, events_path: JsonPath | None) -> tuple[list[Finding], dict[int, list[Finding]]]:
    """(findings outside the events, with paths from the document; findings by event index, with
    paths from the event). A fast look at the whole document's JSON (``_scan``) decides what needs
    a closer one: text and depth are walked node by node only when it saw a control character or
    too many levels, identifiers and date-times read where the standard puts them only when it saw
    a string that long or a year that far out."""
    around: list[Finding] = []
    within: dict[int, list[Finding]] = {}
    sound, unusual = _scan(document)
    if not sound:
        around, within = _walked(document, events_path)
    events = _follow(document, events_path) if events_path else None
    for index, event in enumerate(events if isinstance(events, list) else ()):
        if index in within or not isinstance(event, dict):
            continue
        suspect = unusual or len(str(event.get("type"))) > limits.EVENT_TYPE_MAX
        if suspect and (findings := _beyond_columns(event)):
            within[index] = findings
    return around, within


# orjson writes a control character as \uXXXX, or \b and \f; a backslash as \\ (masked first).
_ESCAPED_CONTROL = re.compile(rb"\\(?:u00(?:0[0-8bef]|1[0-9a-f])|[bf])")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# A date-time whose UTC instant may fall outside 1900-2999 (an offset can move 1900 and 2999 out).
_FAR_YEAR = re.compile(rb'"(?:(?!19|2)[0-9]{4}|1900|2999)-[0-9]{2}-[0-9]{2}T')


def _scan(document: Any) -> tuple[bool, bool]:
    """(sound: no control character and at most ``limits.MAX_DEPTH`` levels; unusual: a string
    longer than an eventID may be, or a date-time in a year near or beyond the range), judged from
    the document's JSON at C speed (some 20 times faster than walking it in Python). A lone
    surrogate, or more levels than orjson writes, is not sound, and the walk says where."""
    try:
        text = orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        return False, True
    # Escaped backslashes and quotes masked, keeping lengths: the bytes between quotes are strings.
    masked = text.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    parts = masked.split(b'"')
    strings = parts[1::2]
    unusual = max(map(len, strings), default=0) > limits.RECORD_NAME_MAX or _FAR_YEAR.search(text) is not None
    if _ESCAPED_CONTROL.search(masked):
        return False, unusual
    brackets = b"".join(parts[::2]).translate(None, _NOT_BRACKETS)
    for _ in range(limits.MAX_DEPTH):  # each pass removes the innermost level
        if not brackets:
            return True, unusual
        brackets = _INNERMOST.sub(b"", brackets)
    return not brackets, unusual


def _walked(document: Any, events_path: JsonPath | None) -> tuple[list[Finding], dict[int, list[Finding]]]:
    """Every string and member name, and every level, walked without recursion (any depth is safe)."""
    around: list[Finding] = []
    within: dict[int, list[Finding]] = {}
    events_at = len(events_path) if events_path else -1
    stack: list[tuple[Any, JsonPath]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        findings: list[Finding] = []
        if isinstance(value, str):
            if reason := limits.text_reason(value):
                findings = [(path, f"{_field(path, 'the document')} {reason}")]
        elif len(path) + 1 > limits.MAX_DEPTH and isinstance(value, (dict, list)):
            findings = [(path, f"nests arrays and objects more than {limits.MAX_DEPTH} levels deep")]
        elif isinstance(value, dict):
            for key, member in value.items():
                if reason := limits.text_reason(key):
                    findings.append(((*path, key), f"the member name {shown(key)} {reason}"))
                else:
                    stack.append((member, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        for found_path, message in findings:
            if events_at >= 0 and len(found_path) > events_at and found_path[:events_at] == events_path:
                index = found_path[events_at]
                assert isinstance(index, int)
                within.setdefault(index, []).append((found_path[events_at + 1 :], message))
            else:
                around.append((found_path, message))
    return around, within


def _beyond_columns(event: dict[str, Any]) -> list[Finding]:
    """Identifiers longer than the ledger keeps, and date-times with no instant it stores."""
    findings: list[Finding] = []
    for path, value, limit in _identifiers_with_limits(event):
        if isinstance(value, str) and len(value) > limit:
            what = "event type" if path == ("type",) else "identifier"
            field = _field(path, "the event")
            findings.append((path, f"{field} is {len(value)} characters long; an {what} here may have at most {limit}"))
    declaration = event.get("errorDeclaration")
    times: list[tuple[JsonPath, Any]] = [(("eventTime",), event.get("eventTime"))]
    if isinstance(declaration, dict):
        times.append((("errorDeclaration", "declarationTime"), declaration.get("declarationTime")))
    for path, value in times:
        instant = limits.parsed_time(value) if isinstance(value, str) else None
        if instant is not None and (reason := limits.time_reason(instant)):
            findings.append((path, f"{path[-1]} {shown(value)} {reason}"))
    return findings


def _identifiers_with_limits(event: dict[str, Any]) -> Iterator[tuple[JsonPath, Any, int]]:
    yield ("type",), event.get("type"), limits.EVENT_TYPE_MAX
    for name in _RECORD_NAMES:
        yield (name,), event.get(name), limits.RECORD_NAME_MAX
    for name in _SINGLE_IDENTIFIERS:
        yield (name,), event.get(name), limits.IDENTIFIER_MAX
    for name in ("readPoint", "bizLocation"):
        if isinstance(place := event.get(name), dict):
            yield (name, "id"), place.get("id"), limits.IDENTIFIER_MAX
    for name in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        if isinstance(epcs := event.get(name), list):
            for index, epc in enumerate(epcs):
                yield (name, index), epc, limits.IDENTIFIER_MAX
    for name, member in _LISTED_IDENTIFIERS:
        if isinstance(entries := event.get(name), list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    yield (name, index, member), entry.get(member), limits.IDENTIFIER_MAX


def event_problems(event: dict[str, Any], *, index: int, pointer: str) -> list[Problem]:
    """Every problem of one event sitting at ``pointer`` (``""`` for a bare event, which needs its own
    ``@context`` as the schema requires of an event sent alone)."""
    findings = _event_findings(event, standalone=pointer == "")
    return _problems(event, findings, index=index, pointer=pointer)


def _problems(event: Any, findings: list[Finding], *, index: int, pointer: str) -> list[Problem]:
    event_id = event.get("eventID") if isinstance(event, dict) else None
    event_id = event_id if isinstance(event_id, str) else None
    return [
        Problem(pointer + _pointer(path), message, event_index=index, event_id=event_id)
        for path, message in _in_document_order(event, findings)
    ]


def _duplicate_id(event: Any, index: int, first_of_id: dict[str, int]) -> list[Finding]:
    """An eventID names one event. The standard declares an event erroneous by sending it again with
    its eventID and an ``errorDeclaration``, and a repository's exported history or an MES's day
    file holds both, in either order: so only declarations may repeat an event's eventID."""
    event_id = event.get("eventID") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or event.get("errorDeclaration"):
        return []
    first = first_of_id.setdefault(event_id, index)
    if first == index:
        return []
    return [(("eventID",), f"eventID {shown(event_id)} is used by events {first} and {index}; it must be unique")]


_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S*")


_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?")


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


_OFFSET_MAX = timedelta(hours=14)


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    shape = _RFC3339.fullmatch(value)
    if shape is None:
        raise ValueError("expected YYYY-MM-DDThh:mm:ss[.sss] and Z or ±hh:mm (RFC 3339)")
    if shape[2] is None:
        raise ValueError("it has no UTC offset: add Z or ±hh:mm, or the instant is ambiguous")
    parsed = datetime.fromisoformat(value)  # the ValueError names the field out of range, e.g. "month must be in 1..12"
    offset = parsed.utcoffset()
    if offset is not None and abs(offset) > _OFFSET_MAX:  # PostgreSQL refuses beyond ±15:59, a 500
        raise ValueError(f"its UTC offset {shape[2]} is beyond ±14:00, the range of time zones")
    return True


@functools.cache
def _schema() -> dict[str, Any]:
    schema = json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return schema


# Speed, measured on 20,000 events: jsonschema resolves every "$ref" through its registry and checks
# every member name of every event against the schema's propertyNames alternatives (1,500 events/s;
# 5,500 with the two shortcuts below).
# GS1's schema is one file whose refs all point into its own "definitions", so they are looked up in
# a dict; and a scalar that was valid under a ref or a propertyNames schema once (a member name, a
# bizStep, an offset) is valid again, so that is remembered (bounded, so memory stays flat).
_KNOWN_VALID: dict[tuple[int, type, object], None] = {}


_KNOWN_VALID_MAX = 50_000


_SCALARS = (str, int, float, bool, type(None))


def _valid_once(validator: Any, instance: object, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not isinstance(instance, _SCALARS):
        yield from validator.descend(instance, schema)
        return
    key = (id(schema), type(instance), instance)
    if key in _KNOWN_VALID:
        return
    errors = list(validator.descend(instance, schema))
    if errors:
        yield from errors
        return
    if len(_KNOWN_VALID) >= _KNOWN_VALID_MAX:
        _KNOWN_VALID.clear()
    _KNOWN_VALID[key] = None


def _local_ref(validator: Any, ref: str, instance: object, schema: dict[str, Any]) -> Iterator[ValidationError]:
    name = unquote(ref.removeprefix("#/definitions/"))  # "#/definitions/%40context" is "@context"
    yield from _valid_once(validator, instance, _schema()["definitions"][name])


def _property_names(
    validator: Any, names: dict[str, Any], instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, dict):
        for name in instance:
            yield from _valid_once(validator, name, names)


_EPCISValidator = validators.extend(Draft7Validator, {"$ref": _local_ref, "propertyNames": _property_names})


@functools.cache
def _root_validator() -> Draft7Validator:
    return _EPCISValidator(_schema(), format_checker=_FORMATS)


@functools.cache
def _validator(definition: str, *, standalone: bool = False) -> Draft7Validator:
    """A validator for one of the schema's definitions, resolving its ``$ref``s against the whole schema.

    A bare event must also carry ``@context``, as the schema's root says (``required-ld-context``).
    """
    parts = [{"$ref": f"#/definitions/{definition}"}]
    if standalone:
        parts.append({"$ref": "#/definitions/required-ld-context"})
    return _root_validator().evolve(schema={"allOf": parts})


@functools.cache
def _fast_validator(definition: str, *, standalone: bool = False) -> jsonschema_rs.Validator:
    """The same check as ``_validator``, compiled by jsonschema-rs (Rust, 30× faster): it only answers
    valid or not, so events it refuses are checked again by ``_validator``, which says why.
    tests/test_epcis_validation.py holds the two to the same verdicts on GS1's examples.

    Where they differ, the compiled one is the stricter, which costs time but changes no verdict: in
    its patterns ``\\d`` is an ASCII digit and ``$`` does not match before a final newline, unlike
    Python's, and NaN and infinity are no JSON numbers to it (jsonschema accepts them, and the quantity
    check beyond the schema refuses them).
    """
    parts = [{"$ref": f"#/definitions/{definition}"}]
    if standalone:
        parts.append({"$ref": "#/definitions/required-ld-context"})
    schema = {"$schema": _schema()["$schema"], "definitions": _schema()["definitions"], "allOf": parts}
    return jsonschema_rs.validator_for(
        schema, formats={"uri": _is_uri, "date-time": _is_date_time_or_false}, validate_formats=True
    )


def _is_date_time_or_false(value: object) -> bool:
    try:
        return _is_date_time(value)
    except ValueError:
        return False


def _fast_valid(definition: str, event: dict[str, Any], *, standalone: bool) -> bool:
    try:
        return _fast_validator(definition, standalone=standalone).is_valid(event)
    except ValueError:  # a value Rust cannot take, such as a lone surrogate in a string: jsonschema decides
        return False


def _envelope(document: dict[str, Any]) -> list[Finding]:
    """The document checked against the schema's root, with its (separately checked) events left out."""
    if document.get("type") not in _EVENT_LISTS:
        allowed = " or ".join(_EVENT_LISTS)
        return [(("type",), f"document type {shown(document.get('type'))} is not {allowed}")]
    envelope = _replaced(document, _EVENT_LISTS[document["type"]], [])
    return [found for error in _root_validator().iter_errors(envelope) for found in _describe(error, document["type"])]


def _event_findings(event: Any, *, standalone: bool) -> list[Finding]:
    if not isinstance(event, dict):
        return [((), f"an event must be a JSON object, got {_json_type(event)}")]
    event_type = event.get("type")
    if not isinstance(event_type, str):
        return [(("type",), 'an event requires "type", a string such as "ObjectEvent"')]
    definition = event_type if event_type in _EVENT_TYPES else "Extended-Event"
    if _fast_valid(definition, event, standalone=standalone):
        return _content(event, event_type)
    errors = list(_validator(definition, standalone=standalone).iter_errors(event))
    if not errors:
        return _content(event, event_type)
    shape_errors = [error for error in errors if _is_shape_error(error)]
    findings = [found for error in errors if error not in shape_errors for found in _describe(error, event_type)]
    if shape_errors:
        # The schema's anyOf says only "not valid under any of the given schemas"; the table says why.
        # When it has nothing to add, the other errors already explain the failed alternatives.
        reported = {path for path, _ in findings}
        shape = [found for found in _shape(event, event_type) if found[0] not in reported]
        findings += shape or (
            [] if findings else [found for error in shape_errors for found in _describe_alternatives(error, event_type)]
        )
    return findings


def _is_shape_error(error: ValidationError) -> bool:
    """An event type's rule on which members it carries: an anyOf at the event itself."""
    return (
        error.validator in ("anyOf", "oneOf") and not error.absolute_path and "propertyNames" not in error.schema_path
    )


def _describe(error: ValidationError, owner: str) -> list[Finding]:
    """jsonschema's error as one or more specific findings; ``owner`` names the validated object."""
    path = tuple(error.absolute_path)
    field = _field(path, owner)
    value = error.instance
    match error.validator:
        case "required":
            name = _missing_member(error)
            return [((*path, name), f'{field} requires "{name}"')]
        case "additionalProperties":
            known = error.schema.get("properties", {})
            allowed = ", ".join(f'"{name}"' for name in known)
            return [
                ((*path, name), f'{field} does not allow "{name}"; its members are {allowed}')
                for name in value
                if name not in known
            ]
        case "anyOf" | "oneOf" if "propertyNames" in error.schema_path:
            return [
                (
                    (*path, value),
                    f'{field} does not allow "{cut(value)}": it is not an EPCIS field, and an extension '
                    f'field must be a namespaced term such as "example:{cut(value)}"',
                )
            ]
        case "anyOf" | "oneOf":
            return _describe_alternatives(error, owner)
        case "enum":
            allowed = ", ".join(str(choice) for choice in error.validator_value)
            return [(path, f"{field} {shown(value)} is not allowed: expected one of {allowed}")]
        case "type":
            return [(path, f"{field} must be {_types(error.validator_value)}, got {_json_type(value)} {shown(value)}")]
        case "pattern":
            rule = _PATTERN_RULES.get(str(path[-1]) if path else "", f"must match {error.validator_value}")
            return [(path, f"{field} {shown(value)} {rule}")]
        case "format" if error.validator_value == "date-time":
            return [(path, f"{field} {shown(value)} is not a valid date-time: {error.cause}")]
        case "format":
            return [(path, f"{field} {shown(value)} is not an absolute URI (scheme:rest, no spaces)")]
        case "minItems":
            need = "must not be empty" if error.validator_value == 1 else f"needs {error.validator_value} entries"
            return [(path, f"{field} {need}")]
        case "uniqueItems":
            repeated = next(item for index, item in enumerate(value) if item in value[:index])
            return [(path, f"{field} lists {shown(repeated)} more than once")]
    return [(path, f"{field}: {cut(error.message)}")]


# Why the schema's patterns exist, said in words. The schema's offset pattern (up to ±14:00, the
# real range of time zones) is stricter than ±23:59, so it alone decides eventTimeZoneOffset.
# uom: UN/ECE Recommendation 20 has some 2,000 common codes and the project does not ship the list;
# checking the syntax catches case and unit-symbol mistakes ("kg") without rejecting real codes
# that a hand-picked subset would miss.
_PATTERN_RULES = {
    "eventTimeZoneOffset": "must be +hh:mm or -hh:mm between -14:00 and +14:00",
    "uom": "must be a UN/ECE Recommendation 20 common code: 2 or 3 upper-case letters or digits, e.g. KGM",
}


def _describe_alternatives(error: ValidationError, owner: str) -> list[Finding]:
    """An anyOf/oneOf failure reduced to its most specific alternative."""
    path = tuple(error.absolute_path)
    field = _field(path, owner)
    context = error.context or []
    type_errors = [sub for sub in context if sub.validator == "type"]
    if type_errors and {sub.relative_schema_path[0] for sub in type_errors} == {
        sub.relative_schema_path[0] for sub in context
    }:  # every alternative wanted another JSON type
        types = sorted({str(t) for sub in type_errors for t in _listed(sub.validator_value)})
        return [(path, f"{field} must be {_types(types)}, got {_json_type(error.instance)} {shown(error.instance)}")]
    enums = [sub for sub in context if sub.validator == "enum" and tuple(sub.absolute_path) == path]
    if enums:  # a CBV code or, for the vocabulary fields, a URI of one's own (not in the CBV's namespaces)
        allowed = ", ".join(str(choice) for choice in enums[0].validator_value)
        own = ", or a URI outside the CBV's namespaces" if any(sub.validator == "pattern" for sub in context) else ""
        return [(path, f"{field} {shown(error.instance)} is not allowed: expected one of {allowed}{own}")]
    if not path and all(not sub.absolute_path and sub.validator == "required" for sub in context):
        members = " or ".join(f'"{_missing_member(sub)}"' for sub in context)
        return [(path, f"{field} requires {members}")]
    specific = best_match(context) if context else None
    return _describe(specific, owner) if specific is not None else [(path, f"{field}: {cut(error.message)}")]


def _missing_member(error: ValidationError) -> str:
    """The member a "required" error is about; jsonschema says it only in the message."""
    missing = re.fullmatch(r"'(.*)' is a required property", error.message)
    return missing[1] if missing else str(error.validator_value)


@dataclass(frozen=True)
class _Shape:
    """What an event type must carry (EPCIS 2.0 §7.4).

    ``needs``: each group needs one non-empty member. ``waived_by``: the action for which ``needs`` does
    not apply (DELETE without children means all children). ``relaxed_by``: the member whose presence
    makes one non-empty member of any group enough. ``parent``: parentID is required (but to OBSERVE).
    """

    needs: tuple[tuple[str, ...], ...] = ()
    waived_by: str | None = None
    relaxed_by: str | None = None
    parent: bool = False
    ilmd_only_with_add: bool = False


_CHILDREN = (("childEPCs", "childQuantityList"),)


_SHAPES: dict[str, _Shape] = {
    # The schema also accepts an ObjectEvent that only reports sensor data (with a readPoint).
    "ObjectEvent": _Shape(needs=(("epcList", "quantityList", "sensorElementList"),), ilmd_only_with_add=True),
    "AggregationEvent": _Shape(needs=_CHILDREN, waived_by="DELETE", parent=True),
    "AssociationEvent": _Shape(needs=_CHILDREN, waived_by="DELETE", parent=True),
    "TransactionEvent": _Shape(needs=(("epcList", "quantityList"),), waived_by="DELETE"),
    # Events sharing a transformationID form one transformation, so each may carry only one side.
    "TransformationEvent": _Shape(
        needs=(("inputEPCList", "inputQuantityList"), ("outputEPCList", "outputQuantityList")),
        relaxed_by="transformationID",
    ),
}


def _content(event: dict[str, Any], event_type: str) -> list[Finding]:
    """The checks beyond the schema, on an event it found sound (so the types are right)."""
    findings = _shape(event, event_type)
    for name in _OBJECT_LISTS:
        if name in event:
            findings += _invalid_entries(event[name], name)
    for path, value, role in _other_identifiers(event):
        if reason := identifier_reason(value, role):
            findings.append((path, _invalid(value, role, reason)))
    for name in _QUANTITY_LISTS:
        for index, element in enumerate(event.get(name, ())):
            findings += _quantity((name, index), element)
    return findings


def _shape(event: dict[str, Any], event_type: str) -> list[Finding]:
    shape = _SHAPES.get(event_type)
    if shape is None:
        return []
    action = event.get("action")
    findings: list[Finding] = []
    # EPCIS 2.0 §7.4.3: parentID is optional when observing (OBSERVE), required to ADD or DELETE.
    if shape.parent and action != "OBSERVE" and "parentID" not in event:
        findings.append(
            (("parentID",), f'{event_type} {action} requires "parentID" (the object the children belong to)')
        )
    if shape.needs and (shape.waived_by is None or action != shape.waived_by):
        findings += _needs(event, event_type, shape)
    if shape.ilmd_only_with_add and "ilmd" in event and action != "ADD":
        findings.append(
            (
                ("ilmd",),
                f"ilmd is only allowed when action is ADD (objects are described once, when created), got {action}",
            )
        )
    return findings


def _needs(event: dict[str, Any], event_type: str, shape: _Shape) -> list[Finding]:
    if shape.relaxed_by and shape.relaxed_by in event:
        members = [name for group in shape.needs for name in group]
        if _carries_any(event, members):
            return []
        return [((members[0],), f"{event_type} with a {shape.relaxed_by} needs a non-empty {_either(members)}")]
    findings: list[Finding] = []
    for group in shape.needs:
        if _carries_any(event, group):
            continue
        with_action = f" with action {event['action']}" if "action" in event else ""
        why = ""
        if shape.waived_by:
            why = f" (only {shape.waived_by} may leave them out)"
        elif shape.relaxed_by:
            why = f" (only an event with a {shape.relaxed_by} may carry one side of a transformation)"
        findings.append(((group[0],), f"{event_type}{with_action} needs a non-empty {_either(group)}{why}"))
    return findings


def _carries_any(event: dict[str, Any], names: Iterable[str]) -> bool:
    """Whether the event has one of ``names`` as a non-empty list or any other value but null."""
    for name in names:
        value = event.get(name)
        if bool(value) if isinstance(value, list) else value is not None:
            return True
    return False


_OBJECT_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")


_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


_LOCATIONS = ("readPoint", "bizLocation")


_PARTY_LISTS = (("sourceList", "source"), ("destinationList", "destination"))


# CBV 2.0 source/destination types whose value is a GS1 party or location; other types take any URI.
_PARTY_ROLES: dict[str, Role] = {"owning_party": "party", "possessing_party": "party", "location": "location"}


_ROLE_NOUNS: dict[Role, str] = {
    "instance": "EPC",
    "class": "EPC class",
    "location": "location identifier",
    "party": "party identifier",
}


def _invalid_entries(epcs: list[str], name: str) -> list[Finding]:
    """The entries of an EPC list that name no object (the schema made them strings).

    These lists are most of a document's identifiers (a pallet's children), so they are walked
    without a generator, and a path is made only for a finding.
    """
    return [
        ((name, index), _invalid(epc, "instance", reason))
        for index, epc in enumerate(epcs)
        if (reason := identifier_reason(epc, "instance"))
    ]


def _other_identifiers(event: dict[str, Any]) -> Iterator[tuple[JsonPath, str, Role]]:
    """The identifiers outside the EPC lists, with the kind of thing each must name."""
    if "parentID" in event:
        yield ("parentID",), event["parentID"], "instance"
    for name in _QUANTITY_LISTS:
        for index, element in enumerate(event.get(name, ())):
            yield (name, index, "epcClass"), element["epcClass"], "class"
    for name in _LOCATIONS:
        if name in event:
            yield (name, "id"), event[name]["id"], "location"
    for name, member in _PARTY_LISTS:
        for index, entry in enumerate(event.get(name, ())):
            if role := _PARTY_ROLES.get(entry["type"]):
                yield (name, index, member), entry[member], role


def _invalid(value: str, role: Role, reason: str) -> str:
    return f"{shown(value)} is not a valid {_ROLE_NOUNS[role]}: {reason}"


def _quantity(path: JsonPath, element: dict[str, Any]) -> list[Finding]:
    quantity = element.get("quantity")
    if quantity is None:  # optional: the amount is unknown
        return []
    if not math.isfinite(quantity) or quantity <= 0:
        return [((*path, "quantity"), f"quantity {shown(quantity)} must be a finite number greater than 0")]
    if "uom" not in element and not float(quantity).is_integer():
        return [
            (
                (*path, "quantity"),
                f'quantity {shown(quantity)} has no "uom", so it counts instances and must be a whole number',
            )
        ]
    return []


def _pointer(path: JsonPath) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _follow(value: Any, path: JsonPath) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _replaced(document: dict[Any, Any], path: JsonPath, new: Any) -> dict[Any, Any]:
    """A shallow copy of ``document`` with the value at ``path`` replaced (the original is not touched)."""
    head, *rest = path
    if not rest:
        return {**document, head: new}
    inner = document.get(head)
    if not isinstance(inner, dict):
        return document
    return {**document, head: _replaced(inner, tuple(rest), new)}


def _in_document_order(root: Any, findings: list[Finding]) -> list[Finding]:
    """Sort findings by where their paths fall in the document; a missing member sorts after its siblings."""

    def position(path: JsonPath) -> tuple[int, ...]:
        node, places = root, []
        for part in path:
            if isinstance(node, dict):
                keys = list(node)
                places.append(keys.index(part) if part in node else len(keys))
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int):
                places.append(part)
                node = node[part] if part < len(node) else None
            else:
                break
        return tuple(places)

    return sorted(findings, key=lambda found: position(found[0]))


def _field(path: JsonPath, owner: str) -> str:
    """How a message names the value at ``path``: its member name, or the owner at the top."""
    names = [part for part in path if isinstance(part, str)]
    if not names:
        return owner
    return f"{names[-1]} entry" if isinstance(path[-1], int) else names[-1]


def _either(names: list[str] | tuple[str, ...]) -> str:
    quoted = [f'"{name}"' for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _types(names: Any) -> str:
    words = {"object": "an object", "array": "an array", "integer": "an integer"}
    return " or ".join(words.get(name, f"a {name}") for name in _listed(names))


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "number"), (float, "number")):
        if isinstance(value, kind):
            return name
    return {dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)
