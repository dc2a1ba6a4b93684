"""The EPCIS 2.0 query interface's reads: ``GET /epcis/events`` and its relatives.

Query parameters are the standard's (EPCIS 2.0 §8.2.7.1, the REST binding's OpenAPI document);
values are pipe-separated lists. Identifier parameters are compared in canonical form through the
identifier index (``EpcisEventEpc``), so an EPC URN and a GS1 Digital Link find the same events,
and EPC patterns (``urn:epc:idpat:sgtin:4012345.011111.*``) match every serial of the GTIN. Pages
are cut by event id (events are stored in record-time order), and the next page's token is signed
with the query it belongs to.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, When
from django.utils.dateparse import parse_datetime

from cells.models import Lot
from packs.models import Container, Unit
from traceability import genealogy
from traceability.events import limits
from traceability.events.models import EpcisCapture, EpcisEvent, EpcisEventEpc, EpcisEventType
from traceability.events.models import EpcisRole as R
from traceability.events.vocabulary import GS1_CONTEXT, listed, utc_iso
from traceability.gs1 import identifiers
from traceability.gs1.cbv import canonical_epc, cbv_bare

PER_PAGE, MAX_PER_PAGE = 30, 1000
EPC_FORMATS = ("Always_GS1_Digital_Link", "Always_EPC_URN", "Never_Translates", "No_Preference")
_TOKEN_SALT = "epcis-next-page"

# The identifier parameters: which places of an event each one looks at.
MATCH_ROLES: dict[str, tuple[str, ...]] = {
    "MATCH_epc": (R.EPC, R.CHILD),
    "MATCH_parentID": (R.PARENT,),
    "MATCH_inputEPC": (R.INPUT,),
    "MATCH_outputEPC": (R.OUTPUT,),
    "MATCH_anyEPC": (R.EPC, R.CHILD, R.PARENT, R.INPUT, R.OUTPUT),
    "MATCH_epcClass": (R.CLASS, R.CHILD_CLASS),
    "MATCH_inputEPCClass": (R.INPUT_CLASS,),
    "MATCH_outputEPCClass": (R.OUTPUT_CLASS,),
    "MATCH_anyEPCClass": (R.CLASS, R.CHILD_CLASS, R.INPUT_CLASS, R.OUTPUT_CLASS),
}
_TIMES = {
    "GE_eventTime": "event_time__gte",
    "LT_eventTime": "event_time__lt",
    "GE_recordTime": "record_time__gte",
    "LT_recordTime": "record_time__lt",
}
_LISTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "eventType": ("type__in", str),
    "EQ_action": ("action__in", str),
    "EQ_bizStep": ("biz_step__in", cbv_bare),
    "EQ_disposition": ("disposition__in", cbv_bare),
    "EQ_eventID": ("event_id__in", str),
    "EQ_transformationID": ("transformation_id__in", str),
}
PAGING = {"perPage", "nextPageToken"}
KNOWN = set(MATCH_ROLES) | set(_TIMES) | set(_LISTS) | PAGING | {"EXISTS_errorDeclaration"}


class QueryError(ValueError):
    """A query the standard does not allow: ``parameter`` names the parameter at fault."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    context: list[Any]
    next_token: str | None


@dataclass(frozen=True)
class Reader:
    """An organisation that reads events in part (``readable_events``): the identifiers it may see
    (``its_own``), as a condition on identifier index rows read once for a request. Who reads which
    identifiers is the access policy's answer (``access.policy.event_reader``); a party's own are
    ``party_identifiers``."""

    organisation: Any
    its_own: Q


def reader_of(organisation: Any) -> Reader:
    """A party reading what it owns or received (``party_identifiers``)."""
    return Reader(organisation, party_identifiers(organisation))


def events_query(
    params: Mapping[str, str], *, visible: QuerySet[EpcisEvent], reader: Reader | None = None
) -> QuerySet[EpcisEvent]:
    """The events the parameters select, among ``visible``; raises QueryError naming a bad one.

    With ``reader`` (an organisation that does not see every event), an event another organisation
    captured is selected by an identifier only through one the reader may see in it, and never by
    its transformationID: else the answer would tell whether the other's units exist and what its
    work order made (the event itself shows the reader only its part: ``events_page``).
    """
    if unknown := sorted(set(params) - KNOWN):
        raise QueryError(unknown[0], "is not a query parameter of this repository (EPCIS 2.0 SimpleEventQuery)")
    for name, raw in params.items():  # the database compares no NUL: refused here, not as a 500 there
        if reason := limits.text_reason(raw):
            raise QueryError(name, reason)
    condition = Q()
    for name, lookup in _TIMES.items():
        if name in params:
            condition &= Q(**{lookup: _time(name, params[name])})
    for name, (lookup, normalise) in _LISTS.items():
        if name in params:
            values = _values(name, params[name])
            if name == "eventType" and (bad := sorted(set(values) - set(EpcisEventType.values))):
                raise QueryError(name, f"{bad[0]!r} is not an event type ({', '.join(EpcisEventType.values)})")
            listed = Q(**{lookup: [normalise(v) for v in values]})
            if name == "EQ_transformationID" and reader is not None:
                listed &= Q(capture__owner=reader.organisation)
            condition &= listed
    for name, roles in MATCH_ROLES.items():
        if name in params:
            matching = _matching(name, _values(name, params[name]), roles)
            if reader is None:
                condition &= Q(Exists(matching))
            else:
                own_event = Q(capture__owner=reader.organisation)
                condition &= own_event & Q(Exists(matching)) | Q(Exists(matching.filter(reader.its_own)))
    if "EXISTS_errorDeclaration" in params:
        if params["EXISTS_errorDeclaration"].lower() not in ("", "true", "false"):
            raise QueryError("EXISTS_errorDeclaration", "must be true or false")
        if params["EXISTS_errorDeclaration"].lower() != "false":
            condition &= Q(declared_at__isnull=False)
    return visible.filter(condition).order_by("pk")


def own_first(query: QuerySet[EpcisEvent], *, organisation: Any) -> QuerySet[EpcisEvent]:
    """The query's events with ``organisation``'s own first: an eventID is unique per capturing
    organisation, so ``GET /epcis/events/<id>`` may find another's event beside the caller's."""
    return query.order_by(Case(When(owner=organisation, then=0), default=1), "pk")


def events_page(
    query: QuerySet[EpcisEvent],
    params: Mapping[str, str],
    *,
    epc_format: str,
    prefix_length: Any,
    reader: Reader | None = None,
) -> Page:
    """One page of the query's events as the JSON binding renders them, and the next page's token.

    With ``reader`` (an organisation that does not see every event), the events others captured
    show only the reader's part of them (``Shown``); one query more for the page."""
    per_page = _per_page(params.get("perPage"))
    signature = _signature(params)
    if token := params.get("nextPageToken"):
        query = query.filter(pk__gt=_token_position(token, signature))
    rows = list(query.select_related("capture__owner")[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    render = renderer(epc_format, prefix_length)
    shown = {} if reader is None else _shown_to(reader, rows)
    # Another's extension prefixes name its namespaces, and its extension fields are not shown.
    contexts = _contexts([row for row in rows if row.pk not in shown])
    return Page(
        events=[event_render(row, render, shown=shown.get(row.pk)) for row in rows],
        context=contexts,
        next_token=signing.dumps({"after": rows[-1].pk, "q": signature}, salt=_TOKEN_SALT) if more else None,
    )


def event_render(row: EpcisEvent, render: Callable[[str], str], *, shown: Shown | None = None) -> dict[str, Any]:
    """The stored event as the query interface returns it: with its eventID, recordTime, and the
    errorDeclaration it received after capture; identifiers in the asked format. With ``shown``,
    only that part of it (another organisation's event, read by a party it names)."""
    event = {key: value for key, value in row.body.items() if key != "@context"}
    if shown is not None:
        event = shown.part_of(event)
    event["eventID"] = row.event_id
    event["recordTime"] = utc_iso(row.record_time)
    if row.declaration:
        event["errorDeclaration"] = (
            row.declaration if shown is None else {k: v for k, v in row.declaration.items() if k in _DECLARED}
        )
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        if key in event:
            event[key] = [render(epc) for epc in event[key]]
    if "parentID" in event:
        event["parentID"] = render(event["parentID"])
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        if key in event:
            event[key] = [{**item, "epcClass": render(item["epcClass"])} for item in event[key]]
    return event


def query_document(page: Page, *, created: dt.datetime) -> dict[str, Any]:
    return {
        "@context": page.context,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_iso(created),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": page.events}}},
    }


# --- parameters ----------------------------------------------------------------------------------------


def _values(name: str, raw: str) -> list[str]:
    values = [value.strip() for value in raw.split("|") if value.strip()]
    if not values:
        raise QueryError(name, "needs at least one value (values are separated by |)")
    return values


def _time(name: str, raw: str) -> dt.datetime:
    try:
        value = parse_datetime(raw.strip().replace(" ", "+"))  # a + in a query string arrives as a space
    except ValueError as exc:  # the shape of one, with a field out of range ("month must be in 1..12")
        raise QueryError(name, f"{raw!r} is not a date-time: {exc}") from None
    if value is None or value.tzinfo is None:
        raise QueryError(name, f"{raw!r} is not a date-time with a UTC offset (e.g. 2024-03-01T08:00:00Z)")
    if reason := limits.time_reason(value):
        raise QueryError(name, f"{raw!r} {reason}")
    return value


def _per_page(raw: str | None) -> int:
    if raw is None:
        return PER_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PER_PAGE:
        raise QueryError("perPage", f"{raw!r} is not a whole number from 1 to {MAX_PER_PAGE}")
    return int(raw)


def _signature(params: Mapping[str, str]) -> str:
    return signing.Signer(salt=_TOKEN_SALT).signature(
        "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in PAGING)
    )


def _token_position(token: str, signature: str) -> int:
    try:
        data = signing.loads(token, salt=_TOKEN_SALT)
    except signing.BadSignature:
        raise QueryError("nextPageToken", "is not a token this repository issued") from None
    if data.get("q") != signature:
        raise QueryError("nextPageToken", "belongs to another query: repeat the query's parameters with it")
    return int(data["after"])


def _matching(name: str, values: Iterable[str], roles: tuple[str, ...]) -> QuerySet[EpcisEventEpc]:
    """Index rows of the event in these places naming one of the values (or patterns)."""
    exact, prefixes = set(), set()
    for value in values:
        try:
            identity = identifiers.parse(value).identity
        except identifiers.InvalidIdentifier as exc:
            if value.startswith(("urn:epc:", "https://id.gs1.org/")):
                raise QueryError(name, str(exc)) from None
            exact.add(value)  # a private URI, matched as written
            continue
        if isinstance(identity, identifiers.GtinClass):  # a pattern: every serial or lot of the GTIN
            prefixes |= {f"sgtin:{identity.gtin}:", f"lgtin:{identity.gtin}:"}
            exact.add(identity.canonical)
        else:
            exact.add(canonical_epc(value))
    match = Q(epc__in=exact)
    for prefix in prefixes:
        match |= Q(epc__startswith=prefix)
    return EpcisEventEpc.objects.filter(match, event=OuterRef("pk"), role__in=roles)


# --- rendering -----------------------------------------------------------------------------------------


def _contexts(rows: list[EpcisEvent]) -> list[Any]:
    """GS1's context and the extension prefixes the page's events were captured with."""
    return merged_context({row.capture_id: row.capture.context for row in rows}.values())


def merged_context(contexts: Iterable[Any]) -> list[Any]:
    """One @context for events captured with these: GS1's, then every extension prefix."""
    context: list[Any] = [GS1_CONTEXT]
    prefixes: dict[str, Any] = {}
    for captured in contexts:
        for entry in listed(captured):
            if isinstance(entry, dict):
                prefixes.update(entry)
            elif isinstance(entry, str) and entry not in context:
                context.append(entry)
    return [*context, prefixes] if prefixes else context


def renderer(epc_format: str, prefix_length: Any) -> Callable[[str], str]:
    if epc_format in ("Never_Translates", "No_Preference"):
        return lambda value: value
    to_urn = epc_format == "Always_EPC_URN"
    rendered: dict[str, str] = {}

    def render(value: str) -> str:
        if value not in rendered:
            try:
                identity = identifiers.parse(value).identity
                rendered[value] = (
                    identifiers.to_epc_urn(identity, prefix_length=prefix_length)
                    if to_urn
                    else identifiers.to_digital_link(identity)
                )
            except identifiers.InvalidIdentifier:
                rendered[value] = value  # not a GS1 key the ledger converts (GRAI, a private URI): as sent
        return rendered[value]

    return render


def visible_events(*, organisation: Any, sees_all: bool) -> QuerySet[EpcisEvent]:
    """A regulator reads every event; an organisation the events it captured (what ``export_epcis``
    writes back out, to be captured again by the same organisation)."""
    events = EpcisEvent.objects.all()
    return events if sees_all else events.filter(capture__in=EpcisCapture.objects.filter(owner=organisation))


# --- what a party reads of others' events -----------------------------------------------------------------

# What another's event shows any party it names: what happened, when, and in which step; not where
# (its sites), in which business transaction or transformation (its despatch advices, its work
# orders), nor any extension or sensor data. Identifiers and parties are kept when they are the
# reader's own (``Shown``).
_SHOWN_WHOLE = ("type", "eventTime", "eventTimeZoneOffset", "action", "bizStep", "disposition")
_DECLARED = ("declarationTime", "reason")  # an errorDeclaration's corrective events are the other's
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


@dataclass(frozen=True)
class Shown:
    """The part of another organisation's event a party may read: the identifiers in it that name
    what the party owns or received (canonical), and the parties that are the reader or the event's
    capturer (canonical PGLNs); everyone else named in it is the capturer's business."""

    identifiers: frozenset[str]
    parties: frozenset[str]

    def part_of(self, event: dict[str, Any]) -> dict[str, Any]:
        part = {key: event[key] for key in _SHOWN_WHOLE if key in event}
        for key in _EPC_LISTS:
            if kept := [epc for epc in event.get(key) or () if self._names_own(epc)]:
                part[key] = kept
        if self._names_own(event.get("parentID")):
            part["parentID"] = event["parentID"]
        for key in _QUANTITY_LISTS:
            items = event.get(key) or ()
            if kept := [item for item in items if isinstance(item, dict) and self._names_own(item.get("epcClass"))]:
                part[key] = kept
        for key, field in (("sourceList", "source"), ("destinationList", "destination")):
            items = event.get(key) or ()
            if kept := [p for p in items if isinstance(p, dict) and _canonical(p.get(field)) in self.parties]:
                part[key] = kept
        return part

    def _names_own(self, value: Any) -> bool:
        return _canonical(value) in self.identifiers


def _canonical(value: Any) -> str | None:
    return canonical_epc(value) if isinstance(value, str) else None


def _shown_to(reader: Reader, rows: list[EpcisEvent]) -> dict[int, Shown]:
    """What ``reader`` may read of each of ``rows`` another organisation captured: one query."""
    foreign = [row for row in rows if row.capture.owner_id != reader.organisation.pk]
    if not foreign:
        return {}
    own: dict[int, set[str]] = defaultdict(set)
    for event, epc in EpcisEventEpc.objects.filter(
        reader.its_own, event_id__any=frozenset(row.pk for row in foreign)
    ).values_list("event_id", "epc"):
        own[event].add(epc)
    return {
        row.pk: Shown(
            frozenset(own[row.pk]),
            frozenset(
                identifiers.Pgln(gln=org.pgln).canonical for org in (reader.organisation, row.capture.owner) if org.pgln
            ),
        )
        for row in foreign
    }


def party_identifiers(organisation: Any) -> Q:
    """Whether an identifier index row (``EpcisEventEpc``) names what ``organisation`` owns or
    received: its lot, unit or container, or a unit or container shipped to it.

    Correlated on the identity: the database hashes a party's few identities once per query, or
    probes the unique identity indexes of lots, units and containers row by row where they are many.
    """
    named = OuterRef("epc")
    received = genealogy.received_containers(organisation.pk)
    containers = Q(owner=organisation) | Q(pk__any=received) if received else Q(owner=organisation)
    return (
        Q(Exists(Lot.objects.filter(identity=named, owner=organisation)))
        | Q(Exists(Unit.objects.filter(genealogy.units_of(organisation.pk, containers=received), identity=named)))
        | Q(Exists(Container.objects.filter(containers, identity=named)))
    )


def readable_events(reader: Reader | None) -> QuerySet[EpcisEvent]:
    """The events the query interface answers a reader (issue 12): those it captured, and those
    anyone captured that name something it may see (``reader.its_own``: for a party a lot, unit or
    container it owns, or a unit or container shipped to it, so a party sees who else recorded
    something about its units; for a regulator what its grants cover); of those it reads only its
    part (``Shown``). With ``reader`` None (the access policy's answer for one who sees all), every
    event, whole.

    One EXISTS over the event's identifier index rows; nothing is read into Python but what the
    reader's condition was built from (the containers shipped to a party).
    """
    events = EpcisEvent.objects.all()
    if reader is None:
        return events
    names_its_own = Exists(EpcisEventEpc.objects.filter(reader.its_own, event=OuterRef("pk")))
    return events.filter(Q(capture__in=EpcisCapture.objects.filter(owner=reader.organisation)) | names_its_own)
