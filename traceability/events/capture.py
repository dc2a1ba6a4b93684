"""Apply an EPCIS 2.0 document to the ledger: store its events, index their identifiers, derive the
genealogy. The one path for ``POST /epcis/capture``, ``POST /epcis/events`` and ``import_epcis``.

Order of work, all of it set-based (a fixed number of queries per batch of events, never one per
event or identifier):

1. Validate the whole document (``validation``). With ``rollback`` any problem rejects all of it;
   with ``proceed`` the events that have problems are left out and reported, the rest apply.
2. Identify each event: its ``eventID``, or the standard's event hash for one sent without, so a
   repeat is recognised. Identifiers are the capturing organisation's: another organisation's
   event with the same one is not this organisation's to repeat or declare, and this one's is a
   new event of its own (``EpcisEvent``). Known events are left as they were, unless the repeat carries an
   ``errorDeclaration`` the stored one did not: then the stored event is declared erroneous and
   the genealogy record derived from it is retracted from this ledger position on. An event and
   its declaration in the same document (an exported history, a day's file), in either order, are
   the event followed by its declaration: it applies, and its record is retracted at once (a
   member of a transformationID group leaves its group before the group is recorded).
3. Store the new events and one index row per identifier they name, in canonical form, so an
   EPC URN and a GS1 Digital Link of the same thing are one identifier.
4. Derive the genealogy (DESIGN.md, the link rule): TransformationEvents, grouped by
   ``transformationID`` (an event without one is its own transformation), become records linking
   every input lot or unit to every output; AggregationEvents put units and containers into
   containers (ADD) or take them out (DELETE); commissioning creates the units and lots it names.
   Lots, units and containers named for the first time are created, owned by the capturing
   organisation (one under a company prefix another organisation registered is not: an event
   writing it is refused, as is any other write of what the capturer does not own, ``ownership``,
   and an observation names it without creating it), with master data
   (material, product model) created for GTINs the ledger does not know yet, named after the GTIN.

Events sharing a ``transformationID`` may arrive in several documents and in any order: when a
group grows, its earlier record is retracted and the whole group recorded again (from the members
still counting: none declared erroneous, in an earlier document or in the same one), so the link
rule always sees all of its inputs and outputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import orjson
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from cells.models import CellLot, CellModel, Lot, LotKind, Material, MaterialKind, MaterialLot
from packs.models import Container, ContainerKind, ContainerPacking, ProductModel, Unit, UnitPacking
from suppliers.models import Organisation
from suppliers.selectors import registrations
from traceability.core.bulk import insert_rows
from traceability.events.limits import MAX_DEPTH
from traceability.events.models import (
    CaptureErrorBehaviour,
    EpcisCapture,
    EpcisEvent,
    EpcisEventEpc,
    EpcisEventType,
)
from traceability.events.ownership import writes_refused
from traceability.events.parties import roles_shown
from traceability.events.problems import DocumentRejected, Problem
from traceability.events.shipments import shipments_derive
from traceability.events.vocabulary import epcis_document, identifiers_named, listed
from traceability.genealogy.commissioning import units_pack
from traceability.genealogy.models import RecordKind, Transformation
from traceability.genealogy.writes import (
    GenealogyError,
    UnitBuild,
    transformation_record,
    transformations_retract,
    unit_builds_record,
)
from traceability.gs1 import identifiers
from traceability.gs1.cbv import canonical_epc, cbv_bare, parsed_epc
from traceability.ledger.models import LedgerEntry, LedgerSource
from traceability.ledger.services import BATCH_SIZE, company_prefixes_learn, ledger_append

Progress = Callable[[str, int, int], None]  # (phase, done, total)

XSD_CHECKED = "__xsd_checked__"  # read from XML and valid by GS1's XSD (never a JSON member name)


@dataclass
class Applied:
    """What a capture did."""

    events: int = 0
    captured: int = 0
    repeated: int = 0
    declared: int = 0
    problems: list[Problem] = field(default_factory=list)
    position: int | None = None


# --- reading -----------------------------------------------------------------------------------------


def document_read(data: bytes) -> dict[str, Any]:
    """An EPCIS document in the JSON binding, from JSON / JSON-LD or XML bytes (detected)."""
    from traceability.events import xml  # lxml and xmlschema load only when XML arrives

    if xml.looks_like_xml(data):
        return xml.document_from_xml(data) | {XSD_CHECKED: True}
    document = json_read(data)
    if not isinstance(document, dict):
        raise DocumentRejected([Problem("", f"an EPCIS document is a JSON object, not a {type(document).__name__}")])
    return document


def document_check(data: bytes) -> None:
    """Raise DocumentRejected when ``data`` is no well-formed document or holds what the ledger
    cannot store (``validation.document_hazards``): the checks a request makes before it keeps a
    document; the rest (GS1's schemas, identifiers, ownership) is the capture job's."""
    from traceability.events import xml
    from traceability.events.validation import document_hazards

    if xml.looks_like_xml(data):
        xml.xml_check(data)
        return
    if problems := document_hazards(json_read(data)):
        raise DocumentRejected(problems)


def json_read(data: bytes) -> Any:
    """JSON from bytes, any value; raises DocumentRejected naming the line and column of what is
    not JSON, and refusing nesting deeper than ``limits.MAX_DEPTH`` before the standard library's
    reader (which recurses once a level) can exhaust the stack."""
    try:
        return orjson.loads(data)  # refuses 1,024 levels and more itself, without recursing in Python
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg or "recursion" in exc.msg:
            raise DocumentRejected([_too_deep(exc.lineno, exc.colno)]) from None
        if "infinity" in exc.msg:  # 1e999: the standard library would make it inf, stored as null or not at all
            raise DocumentRejected([Problem(f"line {exc.lineno} column {exc.colno}", _NOT_FINITE)]) from None
        return _json_explained(data)


_NOT_FINITE = "a number beyond the range of a double (about 1.8e308): JSON numbers are kept as doubles"


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text}: {_NOT_FINITE}")
    return number


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


def _too_deep(line: int, column: int) -> Problem:
    return Problem(f"line {line} column {column}", f"nests arrays and objects more than {MAX_DEPTH} levels deep")


def _json_explained(data: bytes) -> Any:
    """The standard library's reading of what orjson (several times faster) refused: its messages
    name the line and column, and it reads the UTF-16 and UTF-32 that JSON also allows."""
    try:
        return json.loads(data, parse_float=_finite, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise DocumentRejected([Problem("", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    except json.JSONDecodeError as exc:
        raise DocumentRejected([Problem(f"line {exc.lineno} column {exc.colno}", f"not JSON: {exc.msg}")]) from None
    except ValueError as exc:  # from _finite or _no_constant: the reader gives no place for them
        raise DocumentRejected([Problem("", f"not JSON the ledger keeps: {exc}")]) from None
    except RecursionError:  # UTF-16 or broken JSON nested about a thousand levels: orjson did not get there
        raise DocumentRejected([Problem("", f"nests arrays and objects more than {MAX_DEPTH} levels deep")]) from None


def document_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of an EPCISDocument or EPCISQueryDocument (empty when the body holds none)."""
    body = document.get("epcisBody") or {}
    if "queryResults" in body:
        body = (body["queryResults"] or {}).get("resultsBody") or {}
    if "event" in body:
        return [body["event"]]
    return list(body.get("eventList") or [])


def event_document(event: dict[str, Any]) -> dict[str, Any]:
    """A one-event EPCISDocument, for ``POST /epcis/events`` (the event's own @context moves up)."""
    event = dict(event)
    return epcis_document([event], context=event.pop("@context", None))


# --- applying ----------------------------------------------------------------------------------------


def document_apply(
    document: dict[str, Any], *, capture: EpcisCapture, progress: Progress | None = None, validated: bool = False
) -> Applied:
    """Apply a document for ``capture`` (see the module docstring). Raises ``DocumentRejected``
    having written nothing; with ``proceed``, returns the problems of the events it left out.
    ``validated``: the request found no problem in it already (``POST /epcis/events``), and its
    schema is not walked twice."""
    from traceability.events.validation import document_problems

    report = progress or (lambda phase, done, total: None)
    events = document_events(document)
    report("validating", 0, len(events))
    problems = [] if validated else document_problems(document, schema_checked=document.get(XSD_CHECKED, False))
    rejected = {p.event_index for p in problems}
    if problems and (capture.error_behaviour == CaptureErrorBehaviour.ROLLBACK or None in rejected):
        raise DocumentRejected(problems)
    kept = [(index, event) for index, event in enumerate(events) if index not in rejected]
    applied = Applied(events=len(events), problems=problems)
    capture.context = document.get("@context") or []
    with transaction.atomic():
        entry = ledger_append(
            source=LedgerSource.EPCIS,
            summary=f"EPCIS capture {capture.pk}: {len(kept)} of {len(events)} events",
            organisation=capture.owner,
            actor=capture.created_by,
        )
        applied.position = entry.position
        ids = _event_ids(document, [event for _, event in kept])
        fresh, declarations, applied.repeated = _sorted_out(kept, ids, owner=capture.owner)
        report("deriving the genealogy", 0, len(fresh))
        hashed = {event_id for (_, event), event_id in zip(kept, ids, strict=True) if not event.get("eventID")}
        rows = _events_build(fresh, hashed=hashed)
        index_of = {event_id: index for (index, _), event_id in zip(kept, ids, strict=True)}
        index_of.update((new.event_id, new.index) for new in fresh)  # the event's place, not its declaration's
        # The genealogy first, so each event is stored with the record derived from it.
        derived = _genealogy_derive(
            [row for row in rows if _derives(row)],
            entry=entry,
            owner=capture.owner,
            declared=[event for event, _ in declarations],
        )
        refused = [(event_id, why) for event_id, why in derived if event_id in index_of]  # this document's
        if refused:
            refusals = [
                Problem(f"/epcisBody/eventList/{index_of[e]}", message, index_of[e], e) for e, message in refused
            ]
            if capture.error_behaviour == CaptureErrorBehaviour.ROLLBACK:
                raise DocumentRejected(sorted(refusals, key=lambda p: p.order))
            applied.problems = sorted([*problems, *refusals], key=lambda p: p.order)
            refused_ids = {event_id for event_id, _ in refused}
            rows = [row for row in rows if row.event_id not in refused_ids]
        report("storing", 0, len(rows))
        _events_store(rows, capture=capture, entry=entry)
        applied.captured = len(rows)
        applied.declared = _declarations_apply(declarations, entry=entry, owner=capture.owner)
        applied.declared += _declared_beside_apply(rows, entry=entry)
        report("done", len(rows), len(rows))
    return applied


@dataclass(slots=True)
class _New:
    """An event the ledger does not have yet, with the errorDeclaration it is stored with, if any."""

    index: int  # its place in the document
    event_id: str
    event: dict[str, Any]
    declaration: dict[str, Any] | None
    declaration_only: bool  # the document holds its declaration and not the event itself


def _sorted_out(
    kept: list[tuple[int, dict[str, Any]]], ids: list[str], *, owner: Organisation
) -> tuple[list[_New], list[tuple[EpcisEvent, dict[str, Any]]], int]:
    """(new events, declarations of stored ones, how many repeat what ``owner``'s events or the
    document have). Only ``owner``'s stored events are read: another organisation's event with the
    same identifier is neither repeated nor declared by this document, which answers as if it
    did not exist (its event is new here, its declaration one of an event the ledger lacks).

    A new event and a declaration of it in the same document, in either order, are one new event
    with its declaration, as if the declaration had come in a document of its own right after it.
    An event's first declaration counts; another, in the same document or a later one, is a repeat.
    """
    known = _known_events(ids, owner=owner)
    fresh: dict[str, _New] = {}  # in the order their identifiers first appear
    declarations: list[tuple[EpcisEvent, dict[str, Any]]] = []
    declared: set[str] = set()
    repeated = 0
    for (index, event), event_id in zip(kept, ids, strict=True):
        declaration = event.get("errorDeclaration")
        stored = known.get(event_id)
        if stored is not None:
            if declaration and stored.declared_at is None and event_id not in declared:
                declarations.append((stored, declaration))
                declared.add(event_id)
            else:
                repeated += 1
        elif (new := fresh.get(event_id)) is None:
            fresh[event_id] = _New(index, event_id, event, declaration, declaration_only=bool(declaration))
        elif new.declaration_only and not declaration:  # the event, after its declaration
            new.index, new.event, new.declaration_only = index, event, False
        elif new.declaration is None and declaration:  # its declaration, after the event
            new.declaration = declaration
        else:
            repeated += 1  # the document holds it twice, or declares it twice
    return list(fresh.values()), declarations, repeated


def _event_ids(document: dict[str, Any], events: Sequence[dict[str, Any]]) -> list[str]:
    """Each event's eventID, or its event hash (computed for all of them in one pass)."""
    missing = [event for event in events if not event.get("eventID")]
    hashes = iter(_event_hashes(document.get("@context"), missing) if missing else [])
    return [event.get("eventID") or next(hashes) for event in events]


def _event_hashes(context: Any, events: list[dict[str, Any]]) -> list[str]:
    """The EPCIS 2.0 event hash (``ni:///sha-256;…?ver=CBV2.0``), by GS1's reference generator.

    The generator reads namespace prefixes from the context and fails on term definitions (objects),
    so it gets the prefixes only. Should it fail on an event all the same, the event is identified
    by a SHA-256 of its canonical JSON instead (``urn:ledger:event-sha256:…``): still the same for
    a repeat of the same event, though not comparable with other repositories' hashes.
    """
    from epcis_event_hash_generator import hash_generator, json_to_py

    prefixes: list[str | dict[str, str]] = [c for c in listed(context) if isinstance(c, str)]
    prefixes += [{k: v for k, v in c.items() if isinstance(v, str)} for c in listed(context) if isinstance(c, dict)]
    document = {"@context": prefixes, "type": "EPCISDocument", "epcisBody": {"eventList": events}}
    try:
        converted = json_to_py.event_list_from_epcis_document_json(json.loads(json.dumps(document)))
        return list(hash_generator.epcis_hashes_from_events(converted))
    except Exception:  # noqa: BLE001 (a third-party generator: any failure falls back, per event below)
        return [_event_digest(context, event) for event in events]


def _event_digest(context: Any, event: dict[str, Any]) -> str:
    canonical = json.dumps({"@context": context, "event": event}, sort_keys=True, separators=(",", ":"))
    return "urn:ledger:event-sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _known_events(ids: Sequence[str], *, owner: Organisation) -> dict[str, EpcisEvent]:
    """``owner``'s stored events of these identifiers (read through UNIQUE(event_id, owner))."""
    if not ids:
        return {}
    stored = EpcisEvent.objects.filter(event_id__any=set(ids), owner=owner).only(
        "id", "event_id", "declared_at", "record"
    )
    return {row.event_id: row for row in stored}


@dataclass(slots=True)
class _Event:
    """A new event on its way to the store: what derivation reads of it, as ``EpcisEvent`` names it
    (derivation also regroups stored events, which it reads as ``EpcisEvent`` instances)."""

    event_id: str
    hashed: bool
    type: str
    event_time: dt.datetime
    action: str
    transformation_id: str
    declared_at: dt.datetime | None
    declaration: dict[str, Any] | None
    declared_beside: bool  # by a declaration beside it in its document (not by its own errorDeclaration)
    body: dict[str, Any]
    record_id: int | None = None
    pk: int | None = None


_Row: TypeAlias = _Event | EpcisEvent  # new, or stored and regrouped with new ones


def _events_build(fresh: list[_New], *, hashed: set[str]) -> list[_Event]:
    times: dict[str, dt.datetime] = {}  # an MES stamps thousands of events with the same few times

    def parsed(text: str) -> dt.datetime:
        if (found := times.get(text)) is None:
            found = parse_datetime(text)
            if found is None:  # validation let only date-times through
                raise ValueError(f"{text!r} is not a date-time")
            times[text] = found
        return found

    rows = []
    for new in fresh:
        event, declaration = new.event, new.declaration
        rows.append(
            _Event(
                event_id=new.event_id,
                hashed=new.event_id in hashed,
                type=event["type"],
                event_time=parsed(event["eventTime"]),
                action=event.get("action", ""),
                transformation_id=event.get("transformationID", ""),
                declared_at=parse_datetime(declaration["declarationTime"]) if declaration else None,
                declaration=declaration,
                declared_beside=declaration is not None and not new.declaration_only,
                body=event,
            )
        )
    return rows


def _derives(row: _Event) -> bool:
    """Whether the genealogy is derived from a new event: not from one the ledger knows only by its
    declaration (it never counted anywhere). One declared beside it is derived, and its record
    retracted at the same position, as when its declaration comes in a later document: it never
    counts, and the ledger shows what the declaration retracted."""
    return row.declaration is None or row.declared_beside


_EVENT_COLUMNS = (
    "event_id", "hashed_id", "type", "event_time", "time_zone_offset", "record_time", "action", "biz_step",
    "disposition", "transformation_id", "declared_at", "declaration", "body", "owner_id", "capture_id",
    "recorded_position_id", "record_id",
)  # fmt: skip


def _events_store(rows: list[_Event], *, capture: EpcisCapture, entry: LedgerEntry) -> None:
    """The events, then one index row per identifier they name (COPY on PostgreSQL)."""
    ids = insert_rows(
        EpcisEvent,
        _EVENT_COLUMNS,
        (
            (
                row.event_id,
                row.hashed,
                row.type,
                row.event_time,
                row.body.get("eventTimeZoneOffset", ""),
                entry.recorded_at,
                row.action,
                cbv_bare(row.body.get("bizStep", "")),
                cbv_bare(row.body.get("disposition", "")),
                row.transformation_id,
                row.declared_at,
                row.declaration,
                row.body,
                capture.owner_id,
                capture.pk,
                entry.pk,
                row.record_id,
            )
            for row in rows
        ),
    )
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
    insert_rows(
        EpcisEventEpc,
        ("event_id", "role", "epc"),
        ((row.pk, role, epc) for row in rows for role, epc in sorted(set(_identifiers(row.body)))),
    )


def _identifiers(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, canonical identifier) of everything the event names."""
    return ((role, canonical_epc(text)) for role, text in identifiers_named(event))


# --- the genealogy -----------------------------------------------------------------------------------


@dataclass
class _Things:
    """Lots, units and containers by canonical identity, created on first sight."""

    lots: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    containers: dict[str, int] = field(default_factory=dict)


def _genealogy_derive(
    rows: list[_Event], *, entry: LedgerEntry, owner: Organisation, declared: list[EpcisEvent]
) -> list[tuple[str, str]]:
    """Derive what the events say; returns (event id, why) of the events refused (what the capturer
    may not write, see ``ownership``; a record that would make something from itself), with
    nothing of theirs written. ``declared``: the stored events this document declares erroneous.

    A transformationID group's member declared in this document, beside it or stored before,
    leaves the group before the group is recorded. Recording the group with it, then again without
    it, would give the same links at every position, but two records of one group at one position
    would need one reference (``transformation_unique_reference``)."""
    if not rows:
        return []
    # What the capturer may not write is refused before anything is found or created for it.
    refused = writes_refused(rows, owner=owner)
    if refused:
        left_out = {event_id for event_id, _ in refused}
        rows = [row for row in rows if row.event_id not in left_out]
    things = _things_ensure(rows, owner=owner)
    refused += _transformations_derive(
        [
            row
            for row in rows
            if row.type == EpcisEventType.TRANSFORMATION and not (row.declared_beside and row.transformation_id)
        ],
        things,
        entry=entry,
        owner=owner,
        declared=declared,
    )
    _aggregations_derive([row for row in rows if row.type == EpcisEventType.AGGREGATION], things)
    shipments_derive(
        [row for row in rows if row.type == EpcisEventType.OBJECT],
        containers=things.containers,
        units=things.units,
        owner=owner,
    )
    written = [row for row in rows if row.event_id not in {event_id for event_id, _ in refused}]
    roles_shown(written, owner=owner, lots=things.lots, units=things.units)
    return refused


_Identity = TypeVar("_Identity", identifiers.Lgtin, identifiers.Sgtin, identifiers.Sscc)
_ByCanonical: TypeAlias = dict[str, _Identity]  # identities by their canonical key
_OwnerOf: TypeAlias = Callable[[str], Organisation]  # who owns a GS1 key (digits without indicator)


def _things_ensure(rows: Iterable[_Row], *, owner: Organisation) -> _Things:
    """Find or create every lot, unit and container the events name (queries per kind, not per id)."""
    lots: _ByCanonical[identifiers.Lgtin] = {}
    units: _ByCanonical[identifiers.Sgtin] = {}
    containers: _ByCanonical[identifiers.Sscc] = {}
    parsed: dict[str, identifiers.Parsed] = {}
    for row in rows:
        for _, text in identifiers_named(row.body):
            if text in parsed or (item := parsed_epc(text)) is None:
                continue  # seen already (a lot class recurs across events), or not a kind the genealogy models
            parsed[text] = item
            match item.identity:  # the kinds the genealogy models
                case identifiers.Lgtin() as lot:
                    lots[lot.canonical] = lot
                case identifiers.Sgtin() as unit:
                    units[unit.canonical] = unit
                case identifiers.Sscc() as container:
                    containers[container.canonical] = container
    company_prefixes_learn(list(parsed.values()), source=list(parsed))
    digits = {
        identifiers.prefix_digits(thing.canonical) for found in (lots, units, containers) for thing in found.values()
    }
    owners = _owners_by_prefix(owner, key_digits={d for d in digits if d})

    def creatable(digits: str) -> bool:
        # A key new under another's registered prefix is that one's to name: what would write it
        # (a transformation, a packing, a shipment, a commissioning) was refused (``ownership``);
        # an observation of it is kept, naming it, and creates nothing. Refusing that observation
        # alone would tell the capturer which of the other's keys exist (those it may observe).
        return owners(digits).pk == owner.pk

    return _Things(
        lots=_lots_ensure(lots, owners, creatable),
        units=_units_ensure(units, owners, creatable),
        containers=_containers_ensure(containers, owners, creatable),
    )


def _owners_by_prefix(default: Organisation, *, key_digits: set[str]) -> _OwnerOf:
    """Who owns a GS1 key among ``key_digits``: the organisation that registered its company
    prefix, else ``default`` (one query, for the prefixes those keys may fall under)."""
    registered = registrations(key_digits=key_digits)

    def owner_of(digits: str) -> Organisation:
        found = registered.registrant(digits)
        return found[1] if found is not None else default

    return owner_of


def _existing(model: type[Lot] | type[Unit] | type[Container], identities: Iterable[str]) -> dict[str, int]:
    if not identities:
        return {}
    return dict(model.objects.filter(identity__any=identities).values_list("identity", "pk"))


def _units_ensure(
    identities: _ByCanonical[identifiers.Sgtin], owner_of: _OwnerOf, creatable: Callable[[str], bool]
) -> dict[str, int]:
    found = _existing(Unit, identities)
    missing = [identities[i] for i in sorted(identities.keys() - found.keys()) if creatable(identities[i].gtin[1:])]
    if missing:
        models = _product_models({unit.gtin for unit in missing}, owner_of)
        ids = insert_rows(
            Unit,
            ("owner_id", "identity", "serial", "gtin", "product_model_id"),
            ((owner_of(u.gtin[1:]).pk, u.canonical, u.serial, u.gtin, models[u.gtin]) for u in missing),
        )
        found.update(zip((unit.canonical for unit in missing), ids, strict=True))
    return found


def _product_models(gtins: set[str], owner_of: _OwnerOf) -> dict[str | None, int]:
    found = dict(ProductModel.objects.filter(gtin__in=gtins).values_list("gtin", "pk"))
    created = ProductModel.objects.bulk_create(
        ProductModel(owner=owner_of(g[1:]), name=f"GTIN {g} (from EPCIS)", model_number=g, gtin=g)
        for g in sorted(gtins - found.keys())
    )
    return found | {model.gtin: model.pk for model in created}


def _lots_ensure(
    identities: _ByCanonical[identifiers.Lgtin], owner_of: _OwnerOf, creatable: Callable[[str], bool]
) -> dict[str, int]:
    """Lots of a cell model's GTIN are cell lots; all others material lots (of a material created for
    the GTIN when the ledger has none): the genealogy only needs them linked, QA completes them."""
    found = _existing(Lot, identities)
    missing = [identities[i] for i in sorted(identities.keys() - found.keys()) if creatable(identities[i].gtin[1:])]
    if not missing:
        return found
    gtins = {lot.gtin for lot in missing}
    cell_models = dict(CellModel.objects.filter(gtin__in=gtins).values_list("gtin", "pk"))
    materials = dict(Material.objects.filter(gtin__in=gtins - cell_models.keys()).values_list("gtin", "pk"))
    materials.update(
        (material.gtin, material.pk)
        for material in Material.objects.bulk_create(
            Material(owner=owner_of(g[1:]), name=f"GTIN {g} (from EPCIS)", kind=MaterialKind.OTHER, gtin=g)
            for g in sorted(gtins - cell_models.keys() - materials.keys())
        )
    )
    created = Lot.objects.bulk_create(
        (
            Lot(
                owner=owner_of(lot.gtin[1:]),
                kind=LotKind.CELL if lot.gtin in cell_models else LotKind.MATERIAL,
                identity=lot.canonical,
                code=lot.lot,
                gtin=lot.gtin,
            )
            for lot in missing
        ),
        batch_size=BATCH_SIZE,
    )
    # Multi-table inheritance: bulk_create writes the parent rows only; the child rows follow.
    _children_insert(
        CellLot, "cell_model_id", [(lot.pk, cell_models[lot.gtin]) for lot in created if lot.kind == LotKind.CELL]
    )
    _children_insert(
        MaterialLot, "material_id", [(lot.pk, materials[lot.gtin]) for lot in created if lot.kind == LotKind.MATERIAL]
    )
    return found | {lot.identity: lot.pk for lot in created}


def _children_insert(model: type[Lot], column: str, rows: list[tuple[int, int]]) -> None:
    if not rows:
        return
    table, pointer = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({pointer}, {column}) VALUES (%s, %s)", rows)


def _containers_ensure(
    identities: _ByCanonical[identifiers.Sscc], owner_of: _OwnerOf, creatable: Callable[[str], bool]
) -> dict[str, int]:
    found = _existing(Container, identities)
    missing = [identities[i] for i in sorted(identities.keys() - found.keys()) if creatable(identities[i].sscc[1:])]
    created = Container.objects.bulk_create(
        (
            Container(owner=owner_of(c.sscc[1:]), identity=c.canonical, sscc=c.sscc, kind=ContainerKind.OTHER)
            for c in missing
        ),
        batch_size=BATCH_SIZE,
    )
    return found | {c.identity: c.pk for c in created}


# --- transformations ---------------------------------------------------------------------------------


@dataclass
class _Group:
    """One transformation: a TransformationEvent, or every event sharing its transformationID."""

    reference: str
    events: list[_Row] = field(default_factory=list)
    again: bool = False  # recorded before: its new record's reference names the ledger position

    def sides(self, things: _Things) -> tuple[set[int], set[int], set[int], set[int]]:
        """Input lots, input units, output lots, output units (identifiers the genealogy models)."""
        sides: tuple[set[int], set[int], set[int], set[int]] = (set(), set(), set(), set())
        for event in self.events:
            body = event.body
            for index, (epcs, classes) in enumerate(
                (("inputEPCList", "inputQuantityList"), ("outputEPCList", "outputQuantityList"))
            ):
                for epc in body.get(epcs) or ():
                    if (unit := things.units.get(canonical_epc(epc))) is not None:
                        sides[2 * index + 1].add(unit)
                for item in body.get(classes) or ():
                    if (lot := things.lots.get(canonical_epc(item["epcClass"]))) is not None:
                        sides[2 * index].add(lot)
        return sides

    @property
    def occurred_at(self) -> dt.datetime:
        return min(event.event_time for event in self.events)


def _transformations_derive(
    rows: list[_Row], things: _Things, *, entry: LedgerEntry, owner: Organisation, declared: list[EpcisEvent]
) -> list[tuple[str, str]]:
    """Record each transformation; a group that grew is retracted and recorded whole again, from
    its members still counting: not those ``declared`` in this document, whose declarations
    retract the earlier record (``_declarations_apply``) with their own reason."""
    if not rows:
        return []
    groups: dict[str, _Group] = {}
    for row in rows:
        key = row.transformation_id or row.event_id
        groups.setdefault(key, _Group(reference=key)).events.append(row)
    grouped = [g for g in groups.values() if g.events[0].transformation_id]
    grown = _earlier_members(grouped, owner=owner, declared={event.event_id for event in declared})
    for reference, earlier in grown.items():
        groups[reference].events[:0] = earlier
        groups[reference].again = any(event.record_id for event in earlier)
    # A group whose earlier events were all declared erroneous (or whose record was retracted by
    # hand) has no earlier member left, but its retracted record still holds the reference.
    recorded = Transformation.objects.filter(
        owner=owner, kind=RecordKind.EPCIS_TRANSFORMATION, reference__any={g.reference for g in grouped}
    )
    for reference in recorded.values_list("reference", flat=True) if grouped else ():
        groups[reference].again = True
    if grown:
        # The earlier events' lots and units, created by earlier captures, are found by identity.
        more = _things_ensure([event for events in grown.values() for event in events], owner=owner)
        things.lots.update(more.lots), things.units.update(more.units)
    grew = "its transformationID group grew: recorded again whole"
    records = {event.record_id for events in grown.values() for event in events if event.record_id}
    records -= {event.record_id for event in declared}
    transformations_retract(reasons=dict.fromkeys(records, grew), entry=entry)
    return _groups_record(list(groups.values()), things, entry=entry, owner=owner)


def _earlier_members(groups: list[_Group], *, owner: Organisation, declared: set[str]) -> dict[str, list[EpcisEvent]]:
    """Events of these transformationIDs captured before by ``owner``, still counting (not
    declared erroneous, by an earlier document or by this one's ``declared``): a transformationID
    (and a CSV work order, ``urn:ledger:work-order:N``) is scoped to the organisation that recorded
    it, so another's events with the same one form their own group."""
    if not groups:
        return {}
    earlier: dict[str, list[EpcisEvent]] = defaultdict(list)
    fresh = {event.event_id for group in groups for event in group.events}
    for event in EpcisEvent.objects.filter(
        transformation_id__any={g.reference for g in groups}, declared_at__isnull=True, owner=owner
    ).exclude(event_id__any=fresh | declared):
        earlier[event.transformation_id].append(event)
    return dict(earlier)


def _groups_record(
    groups: list[_Group], things: _Things, *, entry: LedgerEntry, owner: Organisation
) -> list[tuple[str, str]]:
    """Lots → one unit (a brand's build events, by far the most) in bulk; the rest one by one,
    each in a savepoint, so a refused one (a cycle) leaves nothing and is reported.

    A lot made from finished units (recycling, say) is outside the genealogy's model, which runs
    from lots to units: such output lots are left out of the record, and the event stays stored."""
    builds: list[tuple[_Group, UnitBuild]] = []
    records: dict[int, list[_Row]] = {}
    refused: list[tuple[str, str]] = []
    for group in groups:
        input_lots, input_units, output_lots, output_units = group.sides(things)
        if input_units:
            output_lots = set()
        reference = group.reference + (f" (recorded again at {entry.position})" if group.again else "")
        if not (input_lots or input_units) or not (output_lots or output_units):
            continue  # the rest of its transformationID group has not arrived yet
        if input_lots and not input_units and not output_lots and len(output_units) == 1:
            (unit,) = output_units
            builds.append((group, UnitBuild(reference, unit, frozenset(input_lots), group.occurred_at)))
            continue
        try:
            with transaction.atomic():
                record = transformation_record(
                    entry=entry,
                    owner=owner,
                    kind=RecordKind.EPCIS_TRANSFORMATION,
                    reference=reference,
                    occurred_at=group.occurred_at,
                    input_lot_ids=input_lots,
                    input_unit_ids=input_units,
                    output_lot_ids=output_lots,
                    output_unit_ids=output_units,
                )
        except GenealogyError as exc:
            refused += [(event.event_id, str(exc)) for event in group.events]
            continue
        records[record.pk] = group.events
    if builds:
        recorded = unit_builds_record(
            entry=entry, owner=owner, builds=[build for _, build in builds], kind=RecordKind.EPCIS_TRANSFORMATION
        )
        for (group, _), record_id in zip(builds, recorded.transformation_ids, strict=True):
            records[record_id] = group.events
    _records_link(records)
    return refused


def _records_link(records: dict[int, list[_Row]]) -> None:
    """Name each event's record: on the events about to be stored, and on stored ones (the earlier
    members of a group recorded again) in one bulk update."""
    stored = []
    for record, events in records.items():
        for event in events:
            event.record_id = record
            if isinstance(event, EpcisEvent):  # stored already: the others are about to be
                stored.append(event)
    EpcisEvent.objects.bulk_update(stored, ["record"], batch_size=BATCH_SIZE)


# --- aggregations ------------------------------------------------------------------------------------


def _aggregations_derive(rows: list[_Row], things: _Things) -> None:
    """ADD puts children into the parent from eventTime on; DELETE takes them (all, when it names
    none) out at eventTime. OBSERVE changes nothing. In event-time order: the packings gathered so
    far are written before a DELETE that may concern them (one write per run of ADDs)."""
    unit_rows: list[tuple[int, int, dt.datetime]] = []
    container_rows: list[ContainerPacking] = []

    def flush() -> None:
        if unit_rows:
            units_pack(packings=unit_rows)
        ContainerPacking.objects.bulk_create(container_rows, batch_size=BATCH_SIZE)
        unit_rows.clear()
        container_rows.clear()

    for row in sorted(rows, key=lambda r: r.event_time):
        body = row.body
        parent = things.containers.get(canonical_epc(body.get("parentID", "")))
        if parent is None:
            continue
        children = [canonical_epc(epc) for epc in body.get("childEPCs") or ()]
        if row.action == "ADD":
            unit_rows.extend((parent, things.units[c], row.event_time) for c in children if c in things.units)
            container_rows.extend(
                ContainerPacking(parent_id=parent, child_id=things.containers[c], packed_at=row.event_time)
                for c in children
                if c in things.containers and things.containers[c] != parent
            )
        elif row.action == "DELETE":
            flush()
            _unpack(parent, children, things, at=row.event_time)
    flush()


def _unpack(parent: int, children: list[str], things: _Things, *, at: dt.datetime) -> None:
    units = [things.units[c] for c in children if c in things.units]
    containers = [things.containers[c] for c in children if c in things.containers]
    open_units = UnitPacking.objects.filter(container_id=parent, unpacked_at__isnull=True, packed_at__lte=at)
    open_containers = ContainerPacking.objects.filter(parent_id=parent, unpacked_at__isnull=True, packed_at__lte=at)
    if children:
        open_units, open_containers = (
            open_units.filter(unit_id__in=units),
            open_containers.filter(child_id__in=containers),
        )
    open_units.update(unpacked_at=at)
    open_containers.update(unpacked_at=at)


# --- error declarations ------------------------------------------------------------------------------


def _declared_beside_apply(rows: list[_Event], *, entry: LedgerEntry) -> int:
    """Retract what the events declared beside them in their document recorded (see ``_derives``)."""
    reasons = {
        row.record_id: _retraction_reason(row.declaration)
        for row in rows
        if row.declared_beside and row.declaration is not None and row.record_id
    }
    transformations_retract(reasons=reasons, entry=entry)
    return sum(row.declared_beside for row in rows)


def _retraction_reason(declaration: dict[str, Any]) -> str:
    return f"EPCIS errorDeclaration: {declaration.get('reason', '')}".strip()


def _declarations_apply(
    declarations: list[tuple[EpcisEvent, dict[str, Any]]], *, entry: LedgerEntry, owner: Organisation
) -> int:
    """Declare stored events erroneous; their genealogy records stop counting from ``entry`` on.
    A declared member of a transformationID group leaves the group, which is recorded again, unless
    a new member in the document had it recorded again without it already (its undeclared members
    then name the new record, not the retracted one)."""
    if not declarations:
        return 0
    for event, declaration in declarations:
        event.declared_at = parse_datetime(declaration["declarationTime"])
        event.declaration = declaration
    EpcisEvent.objects.bulk_update([event for event, _ in declarations], ["declared_at", "declaration"])
    reasons = {
        event.record_id: _retraction_reason(declaration) for event, declaration in declarations if event.record_id
    }
    transformations_retract(reasons=reasons, entry=entry)
    records = set(reasons)
    survivors = list(
        EpcisEvent.objects.filter(record_id__in=records, declared_at__isnull=True).exclude(transformation_id="")
    )
    if survivors:
        things = _things_ensure(survivors, owner=owner)
        groups: dict[str, _Group] = {}
        for event in survivors:
            groups.setdefault(event.transformation_id, _Group(event.transformation_id, again=True)).events.append(event)
        _groups_record(list(groups.values()), things, entry=entry, owner=owner)
    return len(declarations)
