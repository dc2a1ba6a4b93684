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
   what each event type and action must carry (EPCIS 2.0 §7.4), and ``eventID`` duplicates.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

import jsonschema_rs
from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from jsonschema import Draft7Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match

from traceability import identifiers
from traceability.epcis.problems import DocumentRejected, Problem

__all__ = ["document_problems", "document_validate", "event_problems"]

_SCHEMA_FILE = Path(__file__).resolve().parent / "standard" / "EPCIS-JSON-Schema.json"

JsonPath: TypeAlias = tuple[str | int, ...]
Finding: TypeAlias = tuple[JsonPath, str]
"""A problem inside one event or the envelope: where (relative path) and the message."""

Role: TypeAlias = Literal["instance", "class", "location", "party"]

_SHOWN = 80  # characters of a value quoted in a message

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
    envelope = [] if schema_checked else _envelope(document)
    problems = [Problem(_pointer(path), message) for path, message in _in_document_order(document, envelope)]
    base = _pointer(events_path or ())
    first_of_id: dict[str, int] = {}
    for index, event in enumerate(events):
        findings = _content(event, event["type"]) if schema_checked else _event_findings(event, standalone=False)
        findings += _duplicate_id(event, index, first_of_id)
        if findings:
            problems += _problems(event, findings, index=index, pointer=f"{base}/{index}")
    return problems


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
    event_id = event.get("eventID") if isinstance(event, dict) else None
    if not isinstance(event_id, str):
        return []
    first = first_of_id.setdefault(event_id, index)
    if first == index:
        return []
    return [(("eventID",), f"eventID {_show(event_id)} is used by events {first} and {index}; it must be unique")]


# --- Stage 1: GS1's JSON schema ---------------------------------------------------------------------

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S*")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    shape = _RFC3339.fullmatch(value)
    if shape is None:
        raise ValueError("expected YYYY-MM-DDThh:mm:ss[.sss] and Z or ±hh:mm (RFC 3339)")
    if shape[2] is None:
        raise ValueError("it has no UTC offset: add Z or ±hh:mm, or the instant is ambiguous")
    datetime.fromisoformat(value)  # the ValueError names the field out of range, e.g. "month must be in 1..12"
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
        return [(("type",), f"document type {_show(document.get('type'))} is not {allowed}")]
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
                    f'{field} does not allow "{_cut(value)}": it is not an EPCIS field, and an extension '
                    f'field must be a namespaced term such as "example:{_cut(value)}"',
                )
            ]
        case "anyOf" | "oneOf":
            return _describe_alternatives(error, owner)
        case "enum":
            allowed = ", ".join(str(choice) for choice in error.validator_value)
            return [(path, f"{field} {_show(value)} is not allowed: expected one of {allowed}")]
        case "type":
            return [(path, f"{field} must be {_types(error.validator_value)}, got {_json_type(value)} {_show(value)}")]
        case "pattern":
            rule = _PATTERN_RULES.get(str(path[-1]) if path else "", f"must match {error.validator_value}")
            return [(path, f"{field} {_show(value)} {rule}")]
        case "format" if error.validator_value == "date-time":
            return [(path, f"{field} {_show(value)} is not a valid date-time: {error.cause}")]
        case "format":
            return [(path, f"{field} {_show(value)} is not an absolute URI (scheme:rest, no spaces)")]
        case "minItems":
            need = "must not be empty" if error.validator_value == 1 else f"needs {error.validator_value} entries"
            return [(path, f"{field} {need}")]
        case "uniqueItems":
            repeated = next(item for index, item in enumerate(value) if item in value[:index])
            return [(path, f"{field} lists {_show(repeated)} more than once")]
    return [(path, f"{field}: {_cut(error.message)}")]


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
        return [(path, f"{field} must be {_types(types)}, got {_json_type(error.instance)} {_show(error.instance)}")]
    enums = [sub for sub in context if sub.validator == "enum" and tuple(sub.absolute_path) == path]
    if enums:  # a CBV code or, for the vocabulary fields, a URI of one's own (not in the CBV's namespaces)
        allowed = ", ".join(str(choice) for choice in enums[0].validator_value)
        own = ", or a URI outside the CBV's namespaces" if any(sub.validator == "pattern" for sub in context) else ""
        return [(path, f"{field} {_show(error.instance)} is not allowed: expected one of {allowed}{own}")]
    if not path and all(not sub.absolute_path and sub.validator == "required" for sub in context):
        members = " or ".join(f'"{_missing_member(sub)}"' for sub in context)
        return [(path, f"{field} requires {members}")]
    specific = best_match(context) if context else None
    return _describe(specific, owner) if specific is not None else [(path, f"{field}: {_cut(error.message)}")]


def _missing_member(error: ValidationError) -> str:
    """The member a "required" error is about; jsonschema says it only in the message."""
    missing = re.fullmatch(r"'(.*)' is a required property", error.message)
    return missing[1] if missing else str(error.validator_value)


# --- Stage 2: what the schema leaves open -------------------------------------------------------------


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
        if reason := _identifier_reason(value, role):
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
        if (reason := _identifier_reason(epc, "instance"))
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
    return f"{_show(value)} is not a valid {_ROLE_NOUNS[role]}: {reason}"


def _quantity(path: JsonPath, element: dict[str, Any]) -> list[Finding]:
    quantity = element.get("quantity")
    if quantity is None:  # optional: the amount is unknown
        return []
    if not math.isfinite(quantity) or quantity <= 0:
        return [((*path, "quantity"), f"quantity {_show(quantity)} must be a finite number greater than 0")]
    if "uom" not in element and not float(quantity).is_integer():
        return [
            (
                (*path, "quantity"),
                f'quantity {_show(quantity)} has no "uom", so it counts instances and must be a whole number',
            )
        ]
    return []


# --- Identifiers ------------------------------------------------------------------------------------

_EXPECTED: dict[Role, str] = {
    "instance": "expected an EPC URN (urn:epc:id:…) or a GS1 Digital Link (https://…)",
    "class": "expected an EPC class (urn:epc:class:… or urn:epc:idpat:…) or a GS1 Digital Link",
    "location": "expected an SGLN EPC URN, a GS1 Digital Link with AI 414, or a geo: URI",
    "party": "expected a PGLN or SGLN EPC URN, or a GS1 Digital Link with AI 417 or 414",
}


@functools.lru_cache(maxsize=65_536)
def _identifier_reason(value: str, role: Role) -> str | None:
    """Why ``value`` cannot name a ``role`` thing, or None. Cached: documents repeat classes and locations."""
    if value.startswith("urn:epc:"):
        return _epc_urn_reason(value, role)
    if value[:8].lower().startswith(("http://", "https://")):
        if _PRIMARY_KEY_IN_PATH.search(value) is None and role != "party":
            return None  # a private HTTP URI (EPCIS 2.0 admits any URI), not a Digital Link
        return _digital_link_reason(value, role)
    if _PRIVATE_URN.match(value) and role in ("instance", "class", "location"):
        return None  # a private URN (urn:example:…): EPCIS 2.0 admits any URI as an identifier
    if role == "location" and value.startswith("geo:"):  # CBV 2.0 location identifiers include RFC 5870 geo URIs
        return _geo_reason(value)
    return _EXPECTED[role]


# An HTTP URI naming a GS1 primary key in its path claims to be a Digital Link, and is checked as one.
_PRIMARY_KEY_IN_PATH = re.compile(
    r"^https?://[^/]+(/[^?#]*)?/(00|01|253|255|401|402|414|417|8003|8004|8006|8010|8017|8018)/"
)
_PRIVATE_URN = re.compile(r"urn:(?!epc:)[a-z0-9][a-z0-9-]{0,31}:\S+", re.IGNORECASE)

# --- EPC URNs

_URN_HEAD = re.compile(r"urn:epc:(id|class|idpat):([a-z0-9]+):")
# The URN forms traceability.identifiers parses (and whose reasons it gives).
_LEDGER_URNS = frozenset(
    {("id", "sgtin"), ("class", "lgtin"), ("idpat", "sgtin"), ("id", "sscc"), ("id", "sgln"), ("id", "pgln")}
)
_URN_ROLES: dict[Role, Callable[[str, str], str | None]] = {
    "instance": lambda kind, scheme: None if kind == "id" else f"urn:epc:{kind}: names a class, not one object",
    "class": lambda kind, scheme: (
        None if kind != "id" else "urn:epc:id: names one object, not a class (urn:epc:class:… or urn:epc:idpat:…)"
    ),
    "location": lambda kind, scheme: None if (kind, scheme) == ("id", "sgln") else _EXPECTED["location"],
    "party": lambda kind, scheme: None if kind == "id" and scheme in ("pgln", "sgln") else _EXPECTED["party"],
}


def _epc_urn_reason(value: str, role: Role) -> str | None:
    head = _URN_HEAD.match(value)
    if head is None:
        return "expected urn:epc:id:, urn:epc:class: or urn:epc:idpat: then a scheme and a colon"
    kind, scheme = head[1], head[2]
    if reason := _URN_ROLES[role](kind, scheme):
        return reason
    if (kind, scheme) in _LEDGER_URNS:
        try:
            identifiers.parse(value)
        except identifiers.InvalidIdentifier as exc:
            return f"{exc.form}: {exc.reason}" if exc.form else exc.reason
        return None
    if kind == "class":
        return f"the Tag Data Standard has no {scheme!r} EPC class; classes are urn:epc:class:lgtin:…"
    form = _TDS_SCHEMES.get(scheme)
    if form is None:
        return f"{scheme!r} is not an EPC scheme of the Tag Data Standard"
    return form.reason(value[head.end() :], pattern=kind == "idpat")


# Component grammars of the Tag Data Standard 2.x EPC URIs (§6.3, §7).
_GRAMMARS: dict[str, tuple[re.Pattern[str], str]] = {
    "prefix": (re.compile(r"[0-9]{6,12}"), "6 to 12 digits (a GS1 Company Prefix)"),
    "digits": (re.compile(r"[0-9]*"), "digits"),
    "pair": (re.compile(r"[0-9]{2}"), "two digits"),
    "number": (re.compile(r"0|[1-9][0-9]*"), "a decimal number without leading zeros"),
    "text": (
        re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%2[256Ff]|%3[CEFcef])+"),
        "letters, digits and !'()*+,-.:;=_ with \" % & / < > ? escaped as %22 %25 %26 %2F %3C %3E %3F",
    ),
    "part": (re.compile(r"(?:[0-9A-Z\-]|%2[3Ff])+"), "upper-case letters, digits, - and the escapes %23 %2F"),
    "cage": (re.compile(r"[0-9A-Z]{5,6}"), "a 5 or 6 character CAGE or DoDAAC code"),
    "adi": (re.compile(r"(?:%23)?(?:[0-9A-Z\-]|%2F)*"), "upper-case letters, digits, - and the escapes %23 %2F"),
    "bic": (re.compile(r"[A-Z]{3}[UJZR][0-9]{7}"), "an ISO 6346 container code: owner, category, 6 digits, check"),
    "imo": (re.compile(r"[0-9]{7}"), "7 digits"),
}


@dataclass(frozen=True)
class _Field:
    label: str
    grammar: str
    max_length: int | None = None


@dataclass(frozen=True)
class _TdsScheme:
    """An EPC scheme the ledger does not model, checked for syntax only.

    EPC URNs carry no GS1 check digit (the TDS drops it and recomputes it when converting to an
    element string), so for GS1 keys there is none to verify. BIC and IMO numbers do carry one in
    the URN, and their arithmetic is simple and public, so those are checked.
    """

    name: str
    fields: tuple[_Field, ...]
    key_digits: int | None = None  # company prefix + the next field, when the key has a fixed length
    key_chars: int | None = None  # company prefix + the next field, at most
    check: Callable[[str], str | None] | None = None

    def reason(self, body: str, *, pattern: bool) -> str | None:
        parts = body.split(".", len(self.fields) - 1)
        if len(parts) != len(self.fields):
            labels = ", ".join(field.label for field in self.fields)
            return f"{self.name} EPC URN: expected {len(self.fields)} dot-separated fields ({labels})"
        if pattern and (stars := [index for index, part in enumerate(parts) if part == "*"]):
            if any(part != "*" for part in parts[stars[0] :]):
                return f"{self.name} EPC pattern: after a * every field must be *"
            parts = parts[: stars[0]]
        for field, part in zip(self.fields, parts, strict=False):
            grammar, expected = _GRAMMARS[field.grammar]
            if grammar.fullmatch(part) is None:
                return f"{self.name} EPC URN: {field.label} {part!r} must be {expected}"
            if field.max_length and len(_unescaped(part)) > field.max_length:
                return f"{self.name} EPC URN: {field.label} is longer than {field.max_length} characters"
        key = "".join(_unescaped(part) for part in parts[:2])
        if self.key_digits and len(parts) >= 2 and len(key) != self.key_digits:
            together = f"company prefix and {self.fields[1].label} must be {self.key_digits} digits together"
            return f"{self.name} EPC URN: {together}, got {len(key)}"
        if self.key_chars and len(parts) >= 2 and len(key) > self.key_chars:
            return f"{self.name} EPC URN: company prefix and {self.fields[1].label} exceed {self.key_chars} characters"
        return self.check(parts[0]) if self.check and parts else None


def _unescaped(part: str) -> str:
    return re.sub(r"%[0-9A-Fa-f]{2}", "_", part)


def _bic_check(code: str) -> str | None:
    # ISO 6346: letters count 10.. skipping multiples of 11, weights 2**position, sum mod 11 mod 10.
    values = [n for n in range(10, 39) if n % 11]
    total = sum((values[ord(c) - 65] if c.isalpha() else int(c)) * 2**i for i, c in enumerate(code[:10]))
    expected = total % 11 % 10
    return None if int(code[10]) == expected else f"BIC check digit is {code[10]}, expected {expected}"


def _imo_check(number: str) -> str | None:
    expected = sum(int(digit) * weight for digit, weight in zip(number[:6], range(7, 1, -1), strict=True)) % 10
    return None if int(number[6]) == expected else f"IMO number check digit is {number[6]}, expected {expected}"


_PREFIX = _Field("company prefix", "prefix")
_TDS_SCHEMES: dict[str, _TdsScheme] = {
    "grai": _TdsScheme("GRAI", (_PREFIX, _Field("asset type", "digits"), _Field("serial", "text", 16)), key_digits=12),
    "giai": _TdsScheme("GIAI", (_PREFIX, _Field("asset reference", "text")), key_chars=30),
    "gsrn": _TdsScheme("GSRN", (_PREFIX, _Field("service reference", "digits")), key_digits=17),
    "gsrnp": _TdsScheme("GSRNP", (_PREFIX, _Field("service reference", "digits")), key_digits=17),
    "gdti": _TdsScheme(
        "GDTI", (_PREFIX, _Field("document type", "digits"), _Field("serial", "text", 17)), key_digits=12
    ),
    "cpi": _TdsScheme(
        "CPI", (_PREFIX, _Field("component/part reference", "part"), _Field("serial", "number", 12)), key_chars=30
    ),
    "sgcn": _TdsScheme(
        "SGCN", (_PREFIX, _Field("coupon reference", "digits"), _Field("serial", "digits", 12)), key_digits=12
    ),
    "ginc": _TdsScheme("GINC", (_PREFIX, _Field("consignment reference", "text")), key_chars=30),
    "gsin": _TdsScheme("GSIN", (_PREFIX, _Field("shipper reference", "digits")), key_digits=16),
    "itip": _TdsScheme(
        "ITIP",
        (
            _PREFIX,
            _Field("item reference", "digits"),
            _Field("piece", "pair"),
            _Field("total", "pair"),
            _Field("serial", "text", 20),
        ),
        key_digits=13,
    ),
    "upui": _TdsScheme("UPUI", (_PREFIX, _Field("item reference", "digits"), _Field("TPX", "text", 28)), key_digits=13),
    "gid": _TdsScheme(
        "GID", (_Field("manager number", "number"), _Field("object class", "number"), _Field("serial", "number"))
    ),
    "usdod": _TdsScheme("USDOD", (_Field("CAGE or DoDAAC", "cage"), _Field("serial", "number"))),
    "adi": _TdsScheme("ADI", (_Field("CAGE or DoDAAC", "cage"), _Field("part number", "adi"), _Field("serial", "adi"))),
    "bic": _TdsScheme("BIC", (_Field("container code", "bic"),), check=_bic_check),
    "imovn": _TdsScheme("IMOVN", (_Field("IMO number", "imo"),), check=_imo_check),
}


# --- GS1 Digital Links

# Primary keys (and the digits of each that end in a GS1 mod-10 check digit), GS1 General Specifications §3.
# GMN (8013) has a two-character check pair, not checked here.
_CHECKED_KEYS: dict[str, tuple[str, int, int]] = {
    "00": ("SSCC", 0, 18),
    "01": ("GTIN", 0, 14),
    "253": ("GDTI", 0, 13),
    "255": ("GCN", 0, 13),
    "402": ("GSIN", 0, 17),
    "414": ("GLN", 0, 13),
    "417": ("GLN", 0, 13),
    "8003": ("GRAI", 1, 14),
    "8006": ("GTIN", 0, 14),
    "8017": ("GSRN", 0, 18),
    "8018": ("GSRN", 0, 18),
}
# The AIs traceability.identifiers understands: for links made only of these, its reasons are given.
_LEDGER_AIS = frozenset({"00", "01", "10", "21", "254", "414", "417"})
_DL_ROLES: dict[Role, Callable[[str, set[str]], str | None]] = {
    "instance": lambda key, ais: (
        "a GTIN without a serial (AI 21) names a class, not one object" if key == "01" and "21" not in ais else None
    ),
    "class": lambda key, ais: (
        None
        if key not in ("00", "414", "417") and not (key == "01" and "21" in ais)
        else "it names one object or place, not a class (use AI 01, optionally with a lot, AI 10)"
    ),
    "location": lambda key, ais: None if key == "414" else _EXPECTED["location"],
    "party": lambda key, ais: None if key in ("417", "414") else _EXPECTED["party"],
}


def _digital_link_reason(value: str, role: Role) -> str | None:
    try:
        link = GS1DigitalLinkURI.parse(value)
    except (ParseError, ValueError) as exc:
        return f"not a GS1 Digital Link: {_cut(str(exc))}"
    for element in link.element_strings:
        if reason := _check_digit_reason(element):
            return reason
    ais = {element.ai.ai for element in link.element_strings}
    if reason := _DL_ROLES[role](link.element_strings[0].ai.ai, ais):
        return reason
    if ais <= _LEDGER_AIS:
        try:
            identifiers.parse(value)  # character set, ASCII digits, key qualifiers in the path
        except identifiers.InvalidIdentifier as exc:
            return exc.reason
    return None


def _check_digit_reason(element: GS1ElementString) -> str | None:
    if (key := _CHECKED_KEYS.get(element.ai.ai)) is None:
        return None
    title, start, end = key
    digits = element.value[start:end]
    if not (len(digits) == end - start and digits.isascii() and digits.isdigit()):
        return f"{title} must have {end - start} ASCII digits, got {digits!r}"
    expected = gs1_standard_check_digit(digits[:-1])
    return None if int(digits[-1]) == expected else f"{title} check digit is {digits[-1]}, expected {expected}"


# --- geo URIs

_GEO = re.compile(r"geo:(-?[0-9]+(?:\.[0-9]+)?),(-?[0-9]+(?:\.[0-9]+)?)(?:,-?[0-9]+(?:\.[0-9]+)?)?(?:;.*)?", re.DOTALL)


def _geo_reason(value: str) -> str | None:
    match = _GEO.fullmatch(value)
    if match is None:
        return "a geo URI is geo:latitude,longitude[,altitude] (RFC 5870)"
    if not (-90 <= float(match[1]) <= 90 and -180 <= float(match[2]) <= 180):
        return "latitude must be within ±90 and longitude within ±180"
    return None


# --- Paths and words ---------------------------------------------------------------------------------


def _pointer(path: JsonPath) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _follow(value: Any, path: JsonPath) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _replaced(document: dict[str, Any], path: JsonPath, new: Any) -> dict[str, Any]:
    """A shallow copy of ``document`` with the value at ``path`` replaced (the original is not touched)."""
    head, *rest = path
    inner = document.get(head)
    if not isinstance(inner, dict) and rest:
        return document
    return {**document, head: _replaced(inner, tuple(rest), new) if rest else new}


def _in_document_order(root: Any, findings: list[Finding]) -> list[Finding]:
    """Sort findings by where their paths fall in the document; a missing member sorts after its siblings."""

    def position(path: JsonPath) -> tuple[int, ...]:
        node, places = root, []
        for part in path:
            if isinstance(node, dict):
                keys = list(node)
                places.append(keys.index(part) if part in node else len(keys))
                node = node.get(part)  # type: ignore[arg-type]
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


def _show(value: Any) -> str:
    """A value as JSON, cut to about 80 characters (a string keeps its closing quote)."""
    if isinstance(value, str):
        return f'"{_cut(value)}"'
    return _cut(json.dumps(value, ensure_ascii=False, default=str))


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
