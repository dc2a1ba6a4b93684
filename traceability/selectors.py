"""Reads over the ledger that the interfaces share."""

from __future__ import annotations

from typing import Literal

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
