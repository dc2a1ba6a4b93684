"""Reads over the ledger that the interfaces share."""

from __future__ import annotations

from typing import Literal

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Organisation
from traceability import identifiers
from traceability.models import LearntCompanyPrefix

IdentifierForm = Literal["canonical", "epc", "digital_link"]


def company_prefix_lengths() -> identifiers.PrefixLength:
    """The prefix-length resolver for ``identifiers.to_epc_urn``: registered, then learnt prefixes.

    Both sets are small (one row per GS1 member the ledger has dealt with), so they are read once
    and the lookups run in memory: rendering a million URNs costs two queries.
    """
    known = set(Organisation.objects.exclude(gs1_company_prefix=None).values_list("gs1_company_prefix", flat=True))
    known |= set(LearntCompanyPrefix.objects.values_list("prefix", flat=True))

    def length(digits: str) -> int | None:
        for size in range(12, 3, -1):  # GS1 prefixes never nest, but prefer the longest if data does
            if digits[:size] in known:
                return size
        return None

    return length


def identifier_render(
    canonical: str, *, form: IdentifierForm, prefix_length: identifiers.PrefixLength | None = None
) -> str:
    """One stored identity in the form a caller asked for; own codes stay as they are."""
    identity = identifiers.from_canonical(canonical)
    if form == "canonical" or isinstance(identity, identifiers.OwnCode):
        return identity.canonical if form == "canonical" else identity.code
    if form == "digital_link":
        return identifiers.to_digital_link(identity)
    return identifiers.to_epc_urn(identity, prefix_length=prefix_length or company_prefix_lengths())


class UnknownSubject(LookupError):
    pass


def subject_find(value: str, *, owner: str | None = None) -> Lot | Unit:
    """The lot or unit an identifier names: an EPC URN, a GS1 Digital Link, or a lot code or serial.

    Codes are looked up as printed (GS1 lot numbers and serials, and organisations' own codes);
    ``owner`` (an organisation slug) narrows them when two organisations use the same code.
    Raises ``identifiers.InvalidIdentifier`` for a malformed URN or link and ``UnknownSubject``
    with the reason otherwise.
    """
    value = value.strip()
    if value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://")):
        identity = identifiers.parse(value).identity
        if isinstance(identity, identifiers.Lgtin):
            found: Lot | Unit | None = Lot.objects.filter(identity=identity.canonical).first()
        elif isinstance(identity, identifiers.Sgtin):
            found = Unit.objects.filter(identity=identity.canonical).first()
        else:
            raise UnknownSubject(f"{value!r} names a {identity.kind.upper()}: trace a lot (LGTIN) or a unit (SGTIN)")
        if found is None:
            raise UnknownSubject(f"no lot or unit is known as {value!r} ({identity.canonical})")
        return found
    lots = Lot.objects.filter(code=value)
    units = Unit.objects.filter(serial=value)
    if owner:
        lots, units = lots.filter(owner__slug=owner), units.filter(owner__slug=owner)
    candidates: list[Lot | Unit] = [*lots.select_related("owner")[:5], *units.select_related("owner")[:5]]
    if not candidates:
        scope = f" of organisation {owner!r}" if owner else ""
        raise UnknownSubject(f"no lot or unit{scope} is known as {value!r}")
    if len(candidates) > 1:
        named = ", ".join(f"{c.identity} ({c.owner.slug})" for c in candidates)
        raise UnknownSubject(f"{value!r} is ambiguous: {named}; name the organisation with --owner or use a URN")
    return candidates[0]
