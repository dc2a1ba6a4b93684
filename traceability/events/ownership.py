"""What a capture may write (issue 12): a party writes only its own records.

EPCIS capture and CSV import create or change only what the capturing organisation owns or is
party to. An event that would touch anything else is refused with its reason, like any other bad
event (whole document with ``rollback``, that event alone with ``proceed``). The rules:

- a lot, unit or container named for the first time under a company prefix another organisation
  registered is that organisation's to name: an event that would write it is refused as one
  writing its existing keys is (the rules below), and an observation of it names it without
  creating it (``capture``), as an observation of an existing one is taken: no answer differs with
  whether the key exists. Keys under a prefix nobody registered stay as they were: owned by the
  first to capture them, so an operator can load a whole chain's history;
- a transformation records what the capturer made: its outputs are the capturer's, and its inputs
  are what the capturer owns or was shipped: a lot its owner shipped to it (a ``shipping`` event
  the lot's owner captured, addressed to the capturer's party, not since declared erroneous), a
  unit shipped to it (as receipts read it, below), or a key nobody has yet under a prefix no
  other organisation registered (it becomes the capturer's). Else naming another's lot as an input
  of its own unit would make that lot "consumed" by the capturer, which may then trace it and
  learn where its owner's other units went;
- an aggregation (ADD or DELETE) packs the capturer's own containers, with what is the
  capturer's or already packed in one of its containers;
- a shipment is sent by the capturer (its ``sourceList`` owning or possessing party, if given, is
  not another organisation's) and carries only what the capturer owns; a receipt is of what was
  shipped to the capturer: its ``destinationList`` party, if given, is not another's, and each unit
  or container it names is the capturer's own or was shipped to it (named in a shipment to it, or
  packed, at any depth, in a container that was). The refusal names the objects and says only
  "not shipped to you": the same words whether another's shipment of them exists, or the objects
  do (one never captured, under another's registered prefix, was not shipped to you either). A
  receipt marks only shipments whose consignee is the capturer (``shipments``);
- a registered company prefix fixes how its keys split: an EPC URN splitting them otherwise would
  name, and teach the ledger, a wrong company prefix.

Where a rule judges what the capturer may write of a thing (a transformation's inputs and outputs,
an aggregation's parent and children, what a commissioning, a shipment or a receipt names), a key
the ledger has not seen under another's registered prefix answers as another's existing one does
(``_Ledger.yours``, ``_Ledger.receivable``): one wording whether the foreign key exists or not, so
a refusal never tells the capturer whether another organisation has a lot, unit or container.

Read set-based: a fixed number of queries per batch of events, whatever its size. Refusals never
name the other organisation ("registered by another organisation"): existence must not leak.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cells.models import Lot
from packs.models import Container, ContainerPacking, ShipmentItem, Unit, UnitPacking
from suppliers.models import Organisation
from suppliers.selectors import Registrations, registrations
from traceability.events.models import EpcisEventEpc, EpcisRole
from traceability.events.vocabulary import (
    PARTY_TYPES,
    SIDES,
    CapturedEvent,
    identifiers_named,
    parties_named,
    party_gln,
    party_glns,
)
from traceability.gs1 import identifiers
from traceability.gs1.cbv import cbv_bare, parsed_epc

# The part each place an event names something in plays.
_PARTS = {
    EpcisRole.PARENT: "parent",
    EpcisRole.EPC: "object",
    EpcisRole.CLASS: "object",
    EpcisRole.CHILD: "child",
    EpcisRole.CHILD_CLASS: "child",
    EpcisRole.INPUT: "input",
    EpcisRole.INPUT_CLASS: "input",
    EpcisRole.OUTPUT: "output",
    EpcisRole.OUTPUT_CLASS: "output",
}
_KINDS = {identifiers.Lgtin: "lot", identifiers.Sgtin: "unit", identifiers.Sscc: "container"}


@dataclass(frozen=True, slots=True)
class _Named:
    """An identifier an event names, as sent and as read."""

    part: str  # object, child, input, output or parent
    text: str
    parsed: identifiers.Parsed

    @property
    def kind(self) -> str | None:
        """lot, unit or container: the kinds the genealogy owns (None for sites, parties, classes)."""
        return _KINDS.get(type(self.parsed.identity))


def _named(body: dict[str, Any]) -> Iterator[_Named]:
    for role, text in identifiers_named(body):
        if (parsed := parsed_epc(text)) is not None:
            yield _Named(_PARTS[role], text, parsed)


@dataclass(frozen=True)
class _Ledger:
    """What the rules read of the ledger, once per batch."""

    owner: Organisation
    registered: Registrations  # the company prefixes and party GLNs the batch's keys and parties need
    owners: dict[str, int]  # canonical key -> owner id, of the lots, units and containers the ledger has
    packed_in_own: frozenset[str]  # foreign units and containers now packed in the capturer's containers
    shipped_to_owner: frozenset[str]  # foreign lots, units and containers named that were shipped to the capturer

    def party_foreign(self, text: str) -> bool:
        """Whether a party (a PGLN, as sent) is another organisation's: its registered party GLN, or
        a GLN under its registered company prefix. A party nobody registered may be the capturer."""
        gln = party_gln(text)  # None: validation reported it, or it is not a GLN the ledger reads
        if gln is None or gln == self.owner.pgln:
            return False
        registered = self.registrant(gln)
        party = self.registered.parties.get(gln)
        return (party is not None and party.pk != self.owner.pk) or (
            registered is not None and registered[1] != self.owner.pk
        )

    def registrant(self, digits: str) -> tuple[str, int] | None:
        """(prefix, organisation id) of the registered company prefix these key digits fall under."""
        found = self.registered.registrant(digits)
        return (found[0], found[1].pk) if found is not None else None

    def foreign(self, canonical: str) -> bool:
        """Whether the ledger has this lot, unit or container, owned by another organisation."""
        return self.owners.get(canonical, self.owner.pk) != self.owner.pk

    def yours(self, canonical: str) -> bool:
        """Whether this lot, unit or container is the capturer's to write: its own, or one it names
        first under its own or an unregistered prefix. A key the ledger has not seen under
        another's registered prefix is that one's, as its existing keys are: the same answer."""
        if canonical in self.owners:
            return not self.foreign(canonical)
        digits = identifiers.prefix_digits(canonical)
        registered = self.registrant(digits) if digits else None
        return registered is None or registered[1] == self.owner.pk

    def receivable(self, canonical: str) -> bool:
        """Whether the capturer may record a receipt of this lot, unit or container, or consume it
        in a transformation: its own (``yours``), or one shipped to it."""
        return self.yours(canonical) or canonical in self.shipped_to_owner


def writes_refused(rows: Sequence[CapturedEvent], *, owner: Organisation) -> list[tuple[str, str]]:
    """(event id, why) of the events that would write what ``owner`` may not write."""
    if not rows:
        return []
    named = {row.event_id: list(_named(row.body)) for row in rows}
    # What the capturer says it received or consumed: asked whether it was shipped to it.
    received = {
        name.parsed.identity.canonical
        for row in rows
        for name in named[row.event_id]
        if name.kind is not None and (name.part == "input" or (_is_receipt(row) and name.part == "object"))
    }
    glns = {gln for row in rows for side in SIDES for gln in party_glns(row.body, side)}
    ledger = _ledger_read(
        (n for names in named.values() for n in names), owner=owner, received=received, party_glns=glns
    )
    refused = []
    for row in rows:
        if (why := _why_refused(row, named[row.event_id], ledger)) is not None:
            refused.append((row.event_id, why))
    return refused


def _is_receipt(row: CapturedEvent) -> bool:
    return row.type == "ObjectEvent" and cbv_bare(row.body.get("bizStep", "")) == "receiving"


def _ledger_read(named: Iterable[_Named], *, owner: Organisation, received: set[str], party_glns: set[str]) -> _Ledger:
    keys: dict[str, set[str]] = {"lot": set(), "unit": set(), "container": set()}
    key_digits: set[str] = set()  # of every identifier named: each may fall under a registered prefix
    for name in named:
        if name.kind is not None:
            keys[name.kind].add(name.parsed.identity.canonical)
        if digits := identifiers.prefix_digits(name.parsed.identity.canonical):
            key_digits.add(digits)
    owners: dict[str, int] = {}
    for kind, model in (("lot", Lot), ("unit", Unit), ("container", Container)):
        if keys[kind]:
            owners.update(model.objects.filter(identity__any=keys[kind]).values_list("identity", "owner_id"))
    foreign = {key for key, org in owners.items() if org != owner.pk}
    packed: set[str] = set()
    if foreign_units := foreign & keys["unit"]:
        packed.update(
            UnitPacking.objects.filter(
                unit__identity__any=foreign_units, unpacked_at__isnull=True, container__owner=owner
            ).values_list("unit__identity", flat=True)
        )
    if foreign_containers := foreign & keys["container"]:
        packed.update(
            ContainerPacking.objects.filter(
                child__identity__any=foreign_containers, unpacked_at__isnull=True, parent__owner=owner
            ).values_list("child__identity", flat=True)
        )
    ledger = _Ledger(
        owner=owner,
        registered=registrations(key_digits=key_digits | party_glns, glns=party_glns),
        owners=owners,
        packed_in_own=frozenset(packed),
        shipped_to_owner=frozenset(),
    )
    asked = foreign & received
    shipped = _shipped_to(owner, units=asked & keys["unit"], containers=asked & keys["container"])
    shipped |= _lots_shipped_to(owner, lots={key: owners[key] for key in asked & keys["lot"]})
    return dataclasses.replace(ledger, shipped_to_owner=shipped)


def _lots_shipped_to(owner: Organisation, *, lots: dict[str, int]) -> frozenset[str]:
    """Which of these lots (canonical identity -> owner id) their owner shipped to the capturer:
    named in a ``shipping`` event the lot's owner captured, not declared erroneous, whose
    destination party is the capturer's (``_own_parties``). The ledger keeps lots' shipments as
    events only (a ``Shipment`` holds units and containers), so their index rows are read: one
    query, of the shipping events naming these lots, with only their destinations; then one for
    the registrations of the GLNs they name."""
    if not lots:
        return frozenset()
    rows = EpcisEventEpc.objects.filter(
        epc__any=frozenset(lots),
        role=EpcisRole.CLASS,
        event__biz_step="shipping",
        event__declared_at__isnull=True,
        event__owner_id__any=frozenset(lots.values()),
    ).values_list("epc", "event__owner_id", "event__body__destinationList")
    shipped_to: set[tuple[str, str]] = {
        (lot, gln)
        for lot, shipper, destinations in rows
        if lots[lot] == shipper
        for entry in destinations or ()
        if isinstance(entry, dict)
        and cbv_bare(entry.get("type", "")) in PARTY_TYPES
        and (gln := party_gln(str(entry.get("destination", "")))) is not None
    }
    own = _own_parties(owner, {gln for _, gln in shipped_to})
    return frozenset(lot for lot, gln in shipped_to if gln in own)


def _own_parties(owner: Organisation, glns: set[str]) -> set[str]:
    """Which of these party GLNs are the capturer's: its party GLN, or a GLN registered to nobody
    else and under the capturer's own registered company prefix (one query)."""
    registered = registrations(key_digits=glns, glns=glns)

    def owns(gln: str) -> bool:
        if gln == owner.pgln:
            return True
        if (party := registered.parties.get(gln)) is not None:
            return party.pk == owner.pk
        prefix = registered.registrant(gln)
        return prefix is not None and prefix[1].pk == owner.pk

    return {gln for gln in glns if owns(gln)}


def _shipped_to(owner: Organisation, *, units: set[str], containers: set[str]) -> frozenset[str]:
    """Which of these units and containers were shipped to ``owner``: named in a shipment to it, or
    packed (at any depth, at any time) in a container that was, as ``genealogy.received_units``
    reads "received". Walked upward from them, one query per level of nesting: a distributor may
    have received thousands of pallets, a receipt names a few of them."""
    if not units and not containers:
        return frozenset()
    unit_ids = dict(Unit.objects.filter(identity__any=units).values_list("pk", "identity")) if units else {}
    container_ids = (
        dict(Container.objects.filter(identity__any=containers).values_list("pk", "identity")) if containers else {}
    )
    # What each unit and container was ever packed in: (kind, id) -> container ids.
    parents: dict[tuple[str, int], set[int]] = defaultdict(set)
    for unit, container in UnitPacking.objects.filter(unit_id__any=unit_ids).values_list("unit_id", "container_id"):
        parents[("unit", unit)].add(container)
    level = set(container_ids) | {c for found in parents.values() for c in found}
    walked = set(level)
    while level:
        rows = list(ContainerPacking.objects.filter(child_id__any=level).values_list("child_id", "parent_id"))
        for child, parent in rows:
            parents[("container", child)].add(parent)
        level = {parent for _, parent in rows} - walked
        walked |= level
    to_owner = ShipmentItem.objects.filter(shipment__consignee=owner)
    reached = {
        ("container", pk) for pk in to_owner.filter(container_id__any=walked).values_list("container_id", flat=True)
    }
    reached |= {("unit", pk) for pk in to_owner.filter(unit_id__any=unit_ids).values_list("unit_id", flat=True)}
    # Down from the containers shipped to it: a fixpoint, one round per level of nesting.
    grown = True
    while grown:
        before = len(reached)
        reached |= {node for node, packed_in in parents.items() if any(("container", c) in reached for c in packed_in)}
        grown = len(reached) > before
    return frozenset(
        [identity for pk, identity in unit_ids.items() if ("unit", pk) in reached]
        + [identity for pk, identity in container_ids.items() if ("container", pk) in reached]
    )


def _why_refused(row: CapturedEvent, named: list[_Named], ledger: _Ledger) -> str | None:
    for name in named:
        if (why := _split_refused(name, ledger)) is not None:
            return why
    # What a rule below judges answers to it alone ("not yours", "not shipped to you"), the same
    # whether another's key exists or is new under its prefix.
    match row.type:
        case "TransformationEvent":
            return _inputs_refused(named, ledger) or _outputs_refused(named, ledger)
        case "AggregationEvent" if row.action in ("ADD", "DELETE"):
            return _packing_refused(named, ledger)
        case "ObjectEvent":
            return _shipment_refused(row.body, named, ledger) or _commissioning_refused(row, named, ledger)
    return None


def _is_commissioning(row: CapturedEvent) -> bool:
    """An ObjectEvent ``ADD`` that is no shipment or receipt: the objects come into being."""
    return row.type == "ObjectEvent" and row.action == "ADD" and not _is_receipt(row) and not _is_shipping(row)


def _is_shipping(row: CapturedEvent) -> bool:
    return cbv_bare(row.body.get("bizStep", "")) == "shipping"


def _split_refused(name: _Named, ledger: _Ledger) -> str | None:
    """Rule 7: an EPC URN splits a registered prefix's keys where the registration says."""
    spelt = name.parsed.company_prefix
    digits = identifiers.prefix_digits(name.parsed.identity.canonical) if spelt is not None else None
    if not digits or (registered := ledger.registrant(digits)) is None or registered[0] == spelt:
        return None
    prefix = registered[0]
    expected = identifiers.to_epc_urn(name.parsed.identity, prefix_length=lambda _: len(prefix))
    return f"{name.text} splits company prefix {prefix} otherwise: its registered split is {expected}"


def _inputs_refused(named: list[_Named], ledger: _Ledger) -> str | None:
    """Rule 2: a transformation consumes what the capturer owns or was shipped."""
    for name in named:
        if name.part == "input" and name.kind is not None and not ledger.receivable(name.parsed.identity.canonical):
            return f"{name.text} is not yours: a transformation's inputs are what you own or were shipped"
    return None


def _outputs_refused(named: list[_Named], ledger: _Ledger) -> str | None:
    """Rule 2: a transformation's outputs are what the capturer made."""
    for name in named:
        if name.part == "output" and name.kind is not None and not ledger.yours(name.parsed.identity.canonical):
            return f"{name.text} is not yours: a transformation records what you made"
    return None


def _commissioning_refused(row: CapturedEvent, named: list[_Named], ledger: _Ledger) -> str | None:
    """Rule 1: a commissioning brings into being what the capturer makes, under its own keys."""
    if not _is_commissioning(row):
        return None
    for name in named:
        if name.kind is not None and not ledger.yours(name.parsed.identity.canonical):
            return (
                f"{name.text} is not yours: only its owner, or the organisation that registered its company"
                " prefix, may commission it"
            )
    return None


def _packing_refused(named: list[_Named], ledger: _Ledger) -> str | None:
    """Rule 3: the capturer packs and unpacks its own containers, with its own things (or things
    already packed in its containers)."""
    for name in named:
        canonical = name.parsed.identity.canonical
        if name.kind is None:
            continue
        if name.part == "parent" and not ledger.yours(canonical):
            return f"{name.text} is not yours: you may pack and unpack only your own containers"
        if name.part == "child" and not ledger.yours(canonical) and canonical not in ledger.packed_in_own:
            return f"{name.text} is not yours: you may pack only what is yours"
    return None


def _shipment_refused(body: dict[str, Any], named: list[_Named], ledger: _Ledger) -> str | None:
    """Rule 4: the capturer ships what it owns, as itself, and receives what is addressed to it."""
    match cbv_bare(body.get("bizStep", "")):
        case "shipping":
            for party in parties_named(body, "source"):
                if ledger.party_foreign(party):
                    return (
                        f"the sending party {party} is registered by another organisation:"
                        " you may record only shipments you send"
                    )
            for name in named:
                if name.kind is not None and not ledger.yours(name.parsed.identity.canonical):
                    return f"{name.text} is not yours: you may ship only what you own"
        case "receiving":
            for party in parties_named(body, "destination"):
                if ledger.party_foreign(party):
                    return (
                        f"the receiving party {party} is registered by another organisation:"
                        " you may record receipts only of shipments addressed to you"
                    )
            not_shipped = dict.fromkeys(
                name.text
                for name in named
                if name.kind is not None and not ledger.receivable(name.parsed.identity.canonical)
            )
            if not_shipped:
                return f"{_listed(list(not_shipped))} not shipped to you: you may record receipts only of what was"
    return None


def _listed(texts: list[str], *, shown: int = 5) -> str:
    """ "X was", "X, Y were", or the first few "… and N more were": a receipt may name thousands."""
    if len(texts) == 1:
        return f"{texts[0]} was"
    more = f" and {len(texts) - shown} more" if len(texts) > shown else ""
    return f"{', '.join(texts[:shown])}{more} were"
