"""How containers nest (a carton on a pallet, a pallet in a shipping container): walked up from
what was packed, or down from what was shipped, one level of nesting per query.

Packing is a few levels deep and each level a few rows for the containers asked about, so a query
per level probes the packings by their indexes, where a recursive query left to the planner was
guessed at thousands of rows and hashed every packing of the ledger. The walks end at a container
met already, so a cycle that bad data slipped in ends them too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from packs.models import ContainerPacking


def containers_within(containers: Iterable[int]) -> frozenset[int]:
    """``containers`` and those packed in them, at any depth (one query per level)."""
    found = set(containers)
    level = set(found)
    while level:
        level = set(ContainerPacking.objects.filter(parent_id__any=level).values_list("child_id", flat=True)) - found
        found |= level
    return frozenset(found)


def containers_nesting(containers: Iterable[int]) -> dict[int, list[int]]:
    """The containers holding ``containers`` at any depth, each with the containers directly in it
    (parent -> children): read upward, one level of nesting per query."""
    children_of: dict[int, list[int]] = defaultdict(list)
    frontier = seen = set(containers)
    while frontier:
        rows = ContainerPacking.objects.filter(child_id__any=frontier).values_list("child_id", "parent_id").order_by()
        for child, parent in rows:
            children_of[parent].append(child)
        frontier = children_of.keys() - seen
        seen = seen | frontier
    return children_of


def containers_around(containers: Iterable[int]) -> frozenset[int]:
    """``containers`` and those they were packed in, at any depth (``containers_nesting``)."""
    found = set(containers)
    return frozenset(found | containers_nesting(found).keys())
