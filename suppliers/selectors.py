"""Reads of organisations for the interfaces that name them."""

from __future__ import annotations

from collections.abc import Iterable

from suppliers.models import OrganisationRole, Role


def roles_of(*, organisation_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each organisation's roles in ``Role`` order, in one query (an organisation with none is absent)."""
    held: dict[int, set[str]] = {}
    for organisation_id, role in OrganisationRole.objects.filter(
        organisation_id__in=set(organisation_ids)
    ).values_list("organisation_id", "role"):
        held.setdefault(organisation_id, set()).add(role)
    return {pk: [role for role in Role.values if role in roles] for pk, roles in held.items()}
