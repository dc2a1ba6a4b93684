"""The EPCIS 2.0 XML binding, read into the JSON binding's structure.

Everything after the parser (validation, capture, storage) works on one representation: the dict
``json.loads`` gives for the equivalent JSON-LD document. ``document_from_xml`` parses an XML
document safely, validates it against GS1's XSD and converts it to that dict.

Where the mapping comes from: GS1's EPCIS 2.0 JSON schema (``standard/EPCIS-JSON-Schema.json``),
the JSON-LD context (``standard/epcis-context.jsonld``) and the XML / JSON twins of GS1's example
documents (``../shared/corpus/epcis``). The rules:

- the root becomes ``{"@context", "type", "schemaVersion", "creationDate", "epcisBody"}``; an
  ``EPCISQueryDocument``'s events go under ``epcisBody.queryResults.resultsBody.eventList``;
- an event element's name becomes ``"type"``; its children keep their names as keys; the 1.x
  ``<extension>`` / ``<baseExtension>`` wrappers are flattened into the event;
- ``epcList/epc`` (and ``childEPCs``, ``inputEPCList``, ``outputEPCList``) become lists of strings;
  ``quantityElement`` becomes ``{"epcClass", "quantity" (a number; omitted when xsi:nil), "uom"}``;
  ``bizTransaction``, ``source``, ``destination`` become ``{"type", "<name>": value}``;
  ``readPoint`` / ``bizLocation`` become ``{"id"}``; ``correctiveEventIDs`` and
  ``persistentDisposition``'s ``set`` / ``unset`` become lists; a ``sensorElement`` becomes
  ``{"sensorMetadata": {attributes}, "sensorReport": [{attributes}]}`` with numbers and booleans
  typed as the JSON schema says;
- CBV standard vocabulary written as a URN or CURIE (``urn:epcglobal:cbv:bizstep:shipping``,
  ``gs1:Temperature``) becomes the bare word (``shipping``, ``Temperature``): the CBV defines the
  forms as the same value, the JSON schema refuses the URN and CURIE forms in the JSON binding
  (gs1/EPCIS pull request 421) and GS1's JSON twins use the bare word. GS1 Web URIs
  (``https://ref.gs1.org/cbv/BizStep-shipping``) and user vocabulary are kept as written;
- any element or attribute in a non-EPCIS namespace (user extensions, ILMD) becomes a
  ``"prefix:localName"`` key with the document's own prefix, and the prefix is declared in an
  ``@context`` entry ``{"prefix": "namespace"}``; a namespace GS1's context already names (CBV
  master data ``urn:epcglobal:cbv:mda``, ``https://gs1.org/voc/`` ...) takes GS1's prefix instead,
  because that context is ``@protected``. Nested elements become nested dicts, repeated elements
  lists, leaf text a string (as in GS1's twins, ``xsi:type`` does not make numbers), and an
  element's own attributes keys beside its children (its text then under ``"#text"``).

Untrusted input: lxml parses without entity expansion, DTD loading or network access, and a
document declaring entities (the "billion laughs" bomb) is refused before anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeGuard

import xmlschema
from lxml import etree

from traceability.events.limits import MAX_DEPTH
from traceability.events.problems import DocumentRejected, Problem

EPCIS_NS = "urn:epcglobal:epcis:xsd:2"
QUERY_NS = "urn:epcglobal:epcis-query:xsd:2"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
GS1_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"

STANDARD = Path(__file__).resolve().parent / "standard"
XSD_FOLDER = STANDARD / "xsd"
DOCUMENT_XSD = XSD_FOLDER / "EPCglobal-epcis-2_0.xsd"
QUERY_XSD = XSD_FOLDER / "EPCglobal-epcis-query-2_0.xsd"

EPCIS_DOCUMENT = f"{{{EPCIS_NS}}}EPCISDocument"
QUERY_DOCUMENT = f"{{{QUERY_NS}}}EPCISQueryDocument"
XSI_NIL = f"{{{XSI_NS}}}nil"

# Entities are how XML bombs grow (10 levels of 10 references is 10**10 copies); no EPCIS
# document needs one. A bomb big enough trips libxml2's own amplification limit while the DTD is
# read, a smaller one is found in the parsed DTD: both get this answer, unexpanded.
ENTITIES_REFUSED = Problem(
    where="DOCTYPE",
    message="the document declares XML entities; EPCIS documents may not, and they were not expanded",
)

# Namespaces GS1's JSON-LD context already names. The context is @protected, so a document may not
# bind these prefixes to anything else; the XML binding's CBV master data namespace has no
# trailing colon, the context's has one, and both mean the same attribute names.
GS1_CONTEXT_PREFIXES = {
    "urn:epcglobal:cbv:mda": "cbvmda",
    "urn:epcglobal:cbv:mda:": "cbvmda",
    "https://ref.gs1.org/cbv/": "cbv",
    "https://ref.gs1.org/epcis/": "epcis",
    "https://gs1.org/voc/": "gs1",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://www.w3.org/2002/07/owl#": "owl",
    "http://www.w3.org/2001/XMLSchema#": "xsd",
    "http://purl.org/dc/terms/": "dcterms",
}

# The URN, CURIE and retired Web URI forms of each CBV vocabulary; what follows is the bare word.
_CBV = ("urn:epcglobal:cbv:{urn}:", "https://ns.gs1.org/cbv/{web}-", "cbv:{web}-")
_GS1_VOC = ("gs1:", "https://gs1.org/voc/", "https://www.gs1.org/voc/")


def _cbv_forms(urn: str, web: str) -> tuple[str, ...]:
    return tuple(form.format(urn=urn, web=web) for form in _CBV)


BIZ_STEP_FORMS = _cbv_forms("bizstep", "BizStep")
DISPOSITION_FORMS = _cbv_forms("disp", "Disp")
BIZ_TRANSACTION_TYPE_FORMS = _cbv_forms("btt", "BTT")
SOURCE_DESTINATION_TYPE_FORMS = _cbv_forms("sdt", "SDT")
ERROR_REASON_FORMS = _cbv_forms("er", "ER")
COMPONENT_FORMS = _cbv_forms("comp", "Comp")

# Wrappers of the 1.x extension mechanism: their children are ordinary fields in JSON.
EXTENSION_WRAPPERS = frozenset({"extension", "baseExtension"})

# Children of these elements get an index in an error's path even when alone (``epc[1]``).
LIST_ELEMENTS = frozenset(
    {
        "EventList",
        "epcList",
        "childEPCs",
        "inputEPCList",
        "outputEPCList",
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
        "bizTransactionList",
        "sourceList",
        "destinationList",
        "sensorElementList",
        "correctiveEventIDs",
        "VocabularyList",
        "VocabularyElementList",
    }
)

# Sensor attributes the JSON schema types as numbers or booleans; all others stay strings.
SENSOR_NUMBERS = frozenset({"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"})
SENSOR_BOOLEANS = frozenset({"booleanValue"})

# How an XSD simple type is described to whoever wrote the document.
TYPE_DESCRIPTIONS = {
    "DateTimeStamp": "a date and time with its UTC offset, like 2005-04-03T20:33:31.116-06:00",
    "dateTime": "a date and time, like 2005-04-03T20:33:31.116-06:00",
    "decimal": "a decimal number",
    "double": "a number",
    "boolean": "true or false",
    "anyURI": "a URI",
    "hexBinary": "hexadecimal digits",
    "int": "a whole number",
}


# ---------------------------------------------------------------------------------------------
# Public API


def looks_like_xml(data: bytes) -> bool:
    """Whether ``data`` is XML rather than JSON: its first character after a BOM and blanks is ``<``."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if data.startswith(bom):
            data = data[len(bom) :].replace(b"\x00", b"")  # UTF-16: drop the zero bytes to look
            break
    return data.lstrip()[:1] == b"<"


def document_from_xml(data: bytes | str) -> dict[str, Any]:
    """Parse, validate and convert an EPCIS 2.0 XML document to the JSON binding's dict.

    Raises ``DocumentRejected`` with every problem found: one for XML that is not well-formed or
    not an EPCIS event document, one per XSD error otherwise.
    """
    root = xml_check(data)
    if root.tag not in (EPCIS_DOCUMENT, QUERY_DOCUMENT):
        raise DocumentRejected([Problem(where=_name(root), message=_not_epcis_message(root))])
    events = _event_elements(root)
    problems = _schema_problems(root, events)
    if problems:
        raise DocumentRejected(problems)
    return _Converter().document(root, list(events))


def xml_check(data: bytes | str) -> etree._Element:
    """The document's root, once it is well-formed XML declaring no entities and nested no deeper
    than ``limits.MAX_DEPTH`` elements (the conversion recurses once a level); raises
    ``DocumentRejected`` naming the line otherwise. Cheap: a request asks it before keeping a document."""
    root = _parse(data)
    _refuse_entities(root)
    depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            where = f"{_name(element)} (line {element.sourceline})"
            message = f"nests elements more than {MAX_DEPTH} levels deep"
            raise DocumentRejected([Problem(where=where, message=message)])
    return root


# ---------------------------------------------------------------------------------------------
# Parsing and validation


def _parse(data: bytes | str) -> etree._Element:
    # No entity expansion, no DTD or network fetches; libxml2's size limits stay on (huge_tree off).
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    if isinstance(data, str):
        data = data.encode("utf-8") if not data.lstrip().startswith("<?xml") else _without_declaration(data)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        where = f"line {line}, column {column}"
        reason = error.msg.removesuffix(f", {where}")  # libxml2 repeats the place in its message
        if "amplification" in reason or "entity reference loop" in reason:
            raise DocumentRejected([ENTITIES_REFUSED]) from None  # libxml2 stopped a bomb itself
        raise DocumentRejected([Problem(where=where, message=f"not well-formed XML: {reason}")]) from None


def _without_declaration(text: str) -> bytes:
    """A str has been decoded already: its ``encoding=`` declaration no longer applies."""
    end = text.find("?>")
    return text[end + 2 :].encode("utf-8")


def _refuse_entities(root: etree._Element) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and next(dtd.iterentities(), None) is not None:
        raise DocumentRejected([ENTITIES_REFUSED])


def _not_epcis_message(root: etree._Element) -> str:
    namespace, local = _split(root.tag)
    found = f"<{local}>" + (f" in namespace {namespace}" if namespace else " in no namespace")
    return (
        f"the root element is {found}; an EPCIS event document is an <EPCISDocument> in namespace"
        f" {EPCIS_NS} or an <EPCISQueryDocument> in namespace {QUERY_NS}"
    )


@cache
def _schema(root_tag: str) -> xmlschema.XMLSchema10:
    """GS1's XSD, built once per process (about 0.2 s); ``sandbox`` keeps imports in ``xsd/``."""
    location = QUERY_XSD if root_tag == QUERY_DOCUMENT else DOCUMENT_XSD
    return xmlschema.XMLSchema10(str(location), allow="sandbox")


def _schema_problems(root: etree._Element, events: dict[etree._Element, int]) -> list[Problem]:
    resource = xmlschema.XMLResource(root, allow="none")  # an in-memory tree: nothing to fetch
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in _schema(root.tag).iter_errors(resource):
        problem = _problem(error, events)
        key = (problem.where, _error_kind(error))
        if key not in seen:  # a bad dateTime fails its pattern and its type: say it once
            seen.add(key)
            problems.append(problem)
    return problems


def _error_kind(error: xmlschema.XMLSchemaValidationError) -> str:
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        return "content"
    reason = error.reason or ""
    return reason.split("=")[0] if reason.startswith("attribute ") else "value"


def _problem(error: xmlschema.XMLSchemaValidationError, events: dict[etree._Element, int]) -> Problem:
    element = error.elem if isinstance(error.elem, etree._Element) else None
    if element is None:
        return Problem(where=error.path or "", message=error.reason or str(error))
    event = _enclosing_event(element, events)
    event_index = event_id = None
    if event is not None:
        event_index = events[event]
        event_id = _text(event.find("eventID")) or None
    where = f"{_path(element)} (line {element.sourceline})"
    return Problem(where=where, message=_message(error, element), event_index=event_index, event_id=event_id)


def _message(error: xmlschema.XMLSchemaValidationError, element: etree._Element) -> str:
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        return _content_message(error, element)
    reason = error.reason or str(error)
    if reason.startswith("attribute "):
        return reason
    if reason.startswith("value must be one of "):
        allowed = reason.removeprefix("value must be one of ").strip("[]").replace("'", "")
        return f"{_text(element)!r} is not one of {allowed}"
    type_name = _simple_type_name(error)
    if type_name in TYPE_DESCRIPTIONS:
        return f"{_text(element)!r} is not {TYPE_DESCRIPTIONS[type_name]}"
    return reason


def _content_message(error: xmlschema.XMLSchemaChildrenValidationError, element: etree._Element) -> str:
    expected = [f"<{getattr(particle, 'local_name', None) or particle}>" for particle in error.expected or ()]
    wanted = " or ".join(expected)
    children = list(element)
    if error.index < len(children):
        found = _split(children[error.index].tag)[1]
        return f"found <{found}> where {wanted} is expected" if wanted else f"<{found}> is not allowed here"
    return f"<{_split(element.tag)[1]}> ends where {wanted or 'more'} is expected"


def _simple_type_name(error: xmlschema.XMLSchemaValidationError) -> str | None:
    """The name of the XSD type a value failed, walking up from the failing facet."""
    validator: object = error.validator
    for _ in range(4):
        name = getattr(validator, "local_name", None)
        if name:
            return name
        validator = getattr(validator, "parent", None) or getattr(validator, "base_type", None)
        if validator is None:
            return None
    return None


def _event_elements(root: etree._Element) -> dict[etree._Element, int]:
    """Each event element with its index, counted from 0 in document order across the event list.

    The dict holds the elements, which keeps lxml's proxies (and so their hashes) stable.
    """
    event_list = _event_list(root)
    if event_list is None:
        return {}
    events: dict[etree._Element, int] = {}
    for child in event_list:
        members = child if child.tag == "extension" else (child,)  # EventList/extension: ##other events
        for event in members:
            events[event] = len(events)
    return events


def _event_list(root: etree._Element) -> etree._Element | None:
    if root.tag == QUERY_DOCUMENT:
        return root.find(f"EPCISBody/{{{QUERY_NS}}}QueryResults/resultsBody/EventList")
    return root.find("EPCISBody/EventList")


def _enclosing_event(element: etree._Element, events: dict[etree._Element, int]) -> etree._Element | None:
    for ancestor in element.iterancestors():
        if ancestor in events:
            return ancestor
    return element if element in events else None


def _path(element: etree._Element) -> str:
    """``EPCISBody/EventList/ObjectEvent[2]/epcList/epc[1]``: below the root, XPath-like."""
    steps = []
    for node in (element, *element.iterancestors()):
        parent = node.getparent()
        if parent is None:
            break
        steps.append(_step(node, parent))
    return "/".join(reversed(steps))


def _step(node: etree._Element, parent: etree._Element) -> str:
    name = _name(node)
    same_name_before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
    repeated = same_name_before or next(node.itersiblings(node.tag), None) is not None
    if repeated or _split(parent.tag)[1] in LIST_ELEMENTS:
        return f"{name}[{same_name_before + 1}]"
    return name


def _name(element: etree._Element) -> str:
    _, local = _split(element.tag)
    return f"{element.prefix}:{local}" if element.prefix else local


def _split(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _text(element: etree._Element | None) -> str:
    # Every EPCIS simple type (anyURI, dateTime, decimal, the enumerations) collapses whitespace.
    if element is None:
        return ""
    return (element.text or "").strip()


# ---------------------------------------------------------------------------------------------
# Conversion


@cache
def _gs1_context_terms() -> frozenset[str]:
    """Terms GS1's @protected context defines: a document prefix may not take their names."""
    context = json.loads((STANDARD / "epcis-context.jsonld").read_text(encoding="utf-8"))["@context"]
    return frozenset(context)


@dataclass
class _Prefixes:
    """The JSON-LD prefix of each namespace met, and the ``@context`` entries they need."""

    by_namespace: dict[str, str] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)  # prefix -> namespace, in order of use

    def key(self, namespace: str | None, local: str, hint: str | None) -> str:
        if namespace is None:
            return local
        prefix = self.by_namespace.get(namespace) or self._add(namespace, hint)
        return f"{prefix}:{local}"

    def _add(self, namespace: str, hint: str | None) -> str:
        prefix = GS1_CONTEXT_PREFIXES.get(namespace)
        if prefix is None:
            prefix = hint if self._free(hint) else self._generated()
            self.declared[prefix] = namespace
        self.by_namespace[namespace] = prefix
        return prefix

    def _free(self, prefix: str | None) -> TypeGuard[str]:
        return bool(prefix) and prefix not in self.declared and prefix not in _gs1_context_terms()

    def _generated(self) -> str:
        number = 1
        while not self._free(f"ns{number}"):
            number += 1
        return f"ns{number}"

    def context(self) -> list[Any]:
        return [GS1_CONTEXT_URL, *({prefix: namespace} for prefix, namespace in self.declared.items())]


Converter = Callable[["_Converter", etree._Element], Any]


class _Converter:
    """One document's conversion; it remembers the namespaces met for the ``@context``."""

    def __init__(self) -> None:
        self.prefixes = _Prefixes()

    # --- document

    def document(self, root: etree._Element, events: list[etree._Element]) -> dict[str, Any]:
        _, kind = _split(root.tag)
        document: dict[str, Any] = {"@context": None, "type": kind}
        for name in ("schemaVersion", "creationDate"):
            if root.get(name) is not None:
                document[name] = root.get(name)
        self._extension_attributes_into(document, root)
        header = root.find("EPCISHeader")
        if header is not None:
            self._header_into(document, header)
        event_list = [self.event(event) for event in events]
        if kind == "EPCISQueryDocument":
            document["epcisBody"] = {"queryResults": self._query_results(root, event_list)}
        else:
            document["epcisBody"] = {"eventList": event_list}
        for child in root:
            if child.tag not in ("EPCISHeader", "EPCISBody"):
                self._field_into(document, child)
        document["@context"] = self.prefixes.context()
        return document

    def _query_results(self, root: etree._Element, event_list: list[dict[str, Any]]) -> dict[str, Any]:
        results = root.find(f"EPCISBody/{{{QUERY_NS}}}QueryResults")
        if results is None:
            message = "the query document carries no <QueryResults>: only query results hold events"
            raise DocumentRejected([Problem(where="EPCISBody", message=message)])
        converted: dict[str, Any] = {"queryName": _text(results.find("queryName"))}
        if results.find("subscriptionID") is not None:
            converted["subscriptionID"] = _text(results.find("subscriptionID"))
        body: dict[str, Any] = {"eventList": event_list}
        vocabularies = results.find("resultsBody/VocabularyList")
        if vocabularies is not None:
            body["vocabularyList"] = [self._vocabulary(vocabulary) for vocabulary in vocabularies]
        converted["resultsBody"] = body
        return converted

    def _header_into(self, document: dict[str, Any], header: etree._Element) -> None:
        # The JSON binding has no SBDH: only its sender, receiver and instance identifier have a
        # place, as the document's own fields.
        sbdh = {"sbdh": SBDH_NS}
        for key, path in (
            ("sender", "sbdh:Sender/sbdh:Identifier"),
            ("receiver", "sbdh:Receiver/sbdh:Identifier"),
            ("instanceIdentifier", "sbdh:DocumentIdentification/sbdh:InstanceIdentifier"),
        ):
            found = header.find(f"sbdh:StandardBusinessDocumentHeader/{path}", namespaces=sbdh)
            if found is not None:
                document[key] = _text(found)
        vocabularies = header.find("extension/EPCISMasterData/VocabularyList")
        if vocabularies is not None:
            master_data = {"vocabularyList": [self._vocabulary(vocabulary) for vocabulary in vocabularies]}
            document["epcisHeader"] = {"epcisMasterData": master_data}

    def _vocabulary(self, vocabulary: etree._Element) -> dict[str, Any]:
        converted: dict[str, Any] = {"type": vocabulary.get("type", "")}
        elements = vocabulary.find("VocabularyElementList")
        if elements is not None:
            converted["vocabularyElementList"] = [self._vocabulary_element(element) for element in elements]
        return converted

    def _vocabulary_element(self, element: etree._Element) -> dict[str, Any]:
        converted: dict[str, Any] = {"id": element.get("id", "")}
        attributes = [
            {"id": attribute.get("id", ""), "attribute": self._extension_value(attribute, with_attributes=False)}
            for attribute in element.iterchildren("attribute")
        ]
        if attributes:
            converted["attributes"] = attributes
        children = element.find("children")
        if children is not None:
            converted["children"] = [_text(child) for child in children]
        return converted

    # --- events

    def event(self, element: etree._Element) -> dict[str, Any]:
        namespace, local = _split(element.tag)
        kind = local if namespace in (None, EPCIS_NS) else self.prefixes.key(namespace, local, element.prefix)
        event: dict[str, Any] = {"type": kind}
        self._children_into(event, element)
        return event

    def _children_into(self, target: dict[str, Any], element: etree._Element) -> None:
        self._extension_attributes_into(target, element)
        for child in element:
            self._field_into(target, child)

    def _field_into(self, target: dict[str, Any], child: etree._Element) -> None:
        namespace, local = _split(child.tag)
        if namespace is None and local in EXTENSION_WRAPPERS:
            self._children_into(target, child)
            return
        convert = FIELDS.get(local) if namespace is None else None
        if convert is not None:
            target[local] = convert(self, child)
        else:
            self._add_extension(target, child)

    def _strings(self, element: etree._Element) -> list[str]:
        return [_text(child) for child in element]

    def _quantities(self, element: etree._Element) -> list[dict[str, Any]]:
        return [self._quantity(child) for child in element.iterchildren("quantityElement")]

    def _quantity(self, element: etree._Element) -> dict[str, Any]:
        quantity: dict[str, Any] = {"epcClass": _text(element.find("epcClass"))}
        amount = element.find("quantity")
        if amount is not None and amount.get(XSI_NIL) not in ("true", "1"):
            quantity["quantity"] = _number(_text(amount))
        if element.find("uom") is not None:
            quantity["uom"] = _text(element.find("uom"))
        return quantity

    def _location(self, element: etree._Element) -> dict[str, Any]:
        location: dict[str, Any] = {}
        self._children_into(location, element)  # ``id`` is a plain field; extensions ride along
        return location

    def _typed_list(self, element: etree._Element, forms: tuple[str, ...]) -> list[dict[str, Any]]:
        """``<source type="t">v</source>`` → ``{"type": "t", "source": "v"}``, likewise the others."""
        items = []
        for child in element:
            _, local = _split(child.tag)
            item: dict[str, Any] = {}
            if child.get("type") is not None:
                item["type"] = _bare_word(child.get("type", ""), forms)
            item[local] = _text(child)
            items.append(item)
        return items

    def _biz_transactions(self, element: etree._Element) -> list[dict[str, Any]]:
        return self._typed_list(element, BIZ_TRANSACTION_TYPE_FORMS)

    def _sources_or_destinations(self, element: etree._Element) -> list[dict[str, Any]]:
        return self._typed_list(element, SOURCE_DESTINATION_TYPE_FORMS)

    def _error_declaration(self, element: etree._Element) -> dict[str, Any]:
        declaration: dict[str, Any] = {}
        self._children_into(declaration, element)
        return declaration

    def _persistent_disposition(self, element: etree._Element) -> dict[str, list[str]]:
        disposition: dict[str, list[str]] = {}
        for child in element:  # the XSD allows only <set> and <unset> here
            disposition.setdefault(_split(child.tag)[1], []).append(_bare_word(_text(child), DISPOSITION_FORMS))
        return disposition

    def _sensor_elements(self, element: etree._Element) -> list[dict[str, Any]]:
        return [self._sensor_element(child) for child in element.iterchildren("sensorElement")]

    def _sensor_element(self, element: etree._Element) -> dict[str, Any]:
        sensor: dict[str, Any] = {}
        reports = []
        for child in element:
            if child.tag == "sensorMetadata":
                sensor["sensorMetadata"] = self._sensor_attributes(child)
            elif child.tag == "sensorReport":
                reports.append(self._sensor_attributes(child))
            else:
                self._field_into(sensor, child)
        sensor["sensorReport"] = reports
        return sensor

    def _sensor_attributes(self, element: etree._Element) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, value in element.attrib.items():
            namespace, local = _split(name)
            if namespace is not None:
                if namespace not in (XSI_NS, XML_NS):
                    attributes[self.prefixes.key(namespace, local, _prefix_of(element, namespace))] = value
            else:
                attributes[local] = _sensor_value(local, value)
        return attributes

    def _ilmd(self, element: etree._Element) -> dict[str, Any]:
        ilmd: dict[str, Any] = {}
        self._children_into(ilmd, element)
        return ilmd

    # --- user extensions

    def _add_extension(self, target: dict[str, Any], element: etree._Element) -> None:
        namespace, local = _split(element.tag)
        key = self.prefixes.key(namespace, local, element.prefix)
        value = self._extension_value(element)
        if key not in target:
            target[key] = value
        elif isinstance(target[key], list):  # extension values are never lists of their own
            target[key].append(value)
        else:
            target[key] = [target[key], value]

    def _extension_value(self, element: etree._Element, *, with_attributes: bool = True) -> Any:
        if element.get(XSI_NIL) in ("true", "1"):
            return None
        value: dict[str, Any] = {}
        if with_attributes:
            self._extension_attributes_into(value, element, unqualified_too=True)
        for child in element:
            self._add_extension(value, child)
        if not value:
            return _text(element)
        if len(element) == 0 and _text(element):
            value["#text"] = _text(element)
        return value

    def _extension_attributes_into(
        self, target: dict[str, Any], element: etree._Element, *, unqualified_too: bool = False
    ) -> None:
        for name, value in element.attrib.items():
            namespace, local = _split(name)
            if namespace in (XSI_NS, XML_NS) or (namespace is None and not unqualified_too):
                continue  # unqualified attributes of EPCIS elements are the XSD's own (type, id...)
            target[self.prefixes.key(namespace, local, _prefix_of(element, namespace))] = value


def _bare(forms: tuple[str, ...]) -> Converter:
    return lambda converter, element: _bare_word(_text(element), forms)


def _plain(converter: _Converter, element: etree._Element) -> str:
    return _text(element)


def _corrective_event_ids(converter: _Converter, element: etree._Element) -> list[str]:
    return [_text(child) for child in element]


FIELDS: dict[str, Converter] = {
    **dict.fromkeys(
        (
            "eventTime",
            "recordTime",
            "eventTimeZoneOffset",
            "eventID",
            "certificationInfo",
            "action",
            "parentID",
            "transformationID",
            "id",
            "declarationTime",
        ),
        _plain,
    ),
    "bizStep": _bare(BIZ_STEP_FORMS),
    "disposition": _bare(DISPOSITION_FORMS),
    "reason": _bare(ERROR_REASON_FORMS),
    **dict.fromkeys(("epcList", "childEPCs", "inputEPCList", "outputEPCList"), _Converter._strings),
    "correctiveEventIDs": _corrective_event_ids,
    **dict.fromkeys(
        ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"), _Converter._quantities
    ),
    "readPoint": _Converter._location,
    "bizLocation": _Converter._location,
    "bizTransactionList": _Converter._biz_transactions,
    "sourceList": _Converter._sources_or_destinations,
    "destinationList": _Converter._sources_or_destinations,
    "errorDeclaration": _Converter._error_declaration,
    "persistentDisposition": _Converter._persistent_disposition,
    "sensorElementList": _Converter._sensor_elements,
    "ilmd": _Converter._ilmd,
}


def _bare_word(value: str, forms: tuple[str, ...]) -> str:
    for form in forms:
        if value.startswith(form):
            return value[len(form) :]
    return value


def _sensor_value(name: str, value: str) -> Any:
    if name in SENSOR_NUMBERS:
        return _number(value)
    if name in SENSOR_BOOLEANS:
        return value.strip() in ("true", "1")
    if name in ("type", "exception"):
        return _bare_word(value, _GS1_VOC)
    if name == "component":
        return _bare_word(value, COMPONENT_FORMS)
    return value


def _number(text: str) -> int | float | str:
    """An XSD decimal or double as JSON would carry it; INF and NaN have no JSON form and stay text."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    number = float(text)
    return number if math.isfinite(number) else text


def _prefix_of(element: etree._Element, namespace: str | None) -> str | None:
    for prefix, uri in element.nsmap.items():
        if uri == namespace and prefix:
            return prefix
    return None
