"""Reads of organisations for the interfaces that name them, and of the registrations captures check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

import traceability.core.db  # noqa: F401 (registers the ``any`` lookup)
from suppliers.models import Organisation, OrganisationRole, in_role_order


def roles_of(*, organisation_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each organisation's roles in ``Role`` order, in one query (an organisation with none is absent)."""
    held: dict[int, set[str]] = {}
    for organisation_id, role in OrganisationRole.objects.filter(organisation_id__in=set(organisation_ids)).values_list(
        "organisation_id", "role"
    ):
        held.setdefault(organisation_id, set()).add(role)
    return {pk: in_role_order(roles) for pk, roles in held.items()}


# GS1 Company Prefixes have 6 to 12 digits; where registrations nest, the longest wins.
PREFIX_SIZES = range(12, 5, -1)


@dataclass(frozen=True)
class Registrations:
    """The organisations that registered the company prefixes some keys fall under, and those that
    registered some party GLNs: what a capture needs to know of the directory, and no more."""

    prefixes: dict[str, Organisation]  # registered company prefix -> its organisation
    parties: dict[str, Organisation]  # registered party GLN -> its organisation

    def registrant(self, digits: str) -> tuple[str, Organisation] | None:
        """(prefix, organisation) of the registered company prefix these key digits fall under."""
        for size in PREFIX_SIZES:
            if (organisation := self.prefixes.get(digits[:size])) is not None:
                return digits[:size], organisation
        return None


def registrations(*, key_digits: Iterable[str] = (), glns: Iterable[str] = ()) -> Registrations:
    """The registrations ``key_digits`` (keys' digits without the indicator, as
    ``identifiers.prefix_digits`` gives them) and party ``glns`` need: one query, by the prefix and
    PGLN indexes, whatever the size of the directory (it grows with every GS1 member the ledger has
    dealt with; a batch names a few)."""
    candidates = frozenset(digits[:size] for digits in key_digits if digits for size in PREFIX_SIZES)
    wanted = frozenset(gln for gln in glns if gln)
    if not (candidates or wanted):
        return Registrations({}, {})
    named = Q(gs1_company_prefix__any=candidates) if candidates else Q(pk__in=[])
    if wanted:
        named |= Q(pgln__any=wanted)
    prefixes: dict[str, Organisation] = {}
    parties: dict[str, Organisation] = {}
    for organisation in Organisation.objects.filter(named).order_by("pk"):
        if organisation.gs1_company_prefix in candidates:
            prefixes[organisation.gs1_company_prefix] = organisation
        if organisation.pgln in wanted:
            parties[organisation.pgln] = organisation
    return Registrations(prefixes, parties)
