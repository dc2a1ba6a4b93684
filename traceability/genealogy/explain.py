"""A trace's paths in words: the lots and records from the subject to a unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cells.models import Lot
from packs.models import Unit
from traceability.genealogy.models import (
    Transformation,
    exposure_name,
)
from traceability.genealogy.trace import Link


@dataclass(frozen=True)
class PathStep:
    """One link of a path in words: its two ends by canonical identity, and the record that made it."""

    source: str
    target: str
    record: str  # the record's reference: an event, a work order, a build record
    exposure: str  # "definite" or "potential"

    def as_dict(self) -> dict[str, str]:
        """The step as every interface writes it (``from`` is a Python keyword, hence ``source``)."""
        return {"from": self.source, "to": self.target, "record": self.record, "exposure": self.exposure}


def explain_paths(
    paths: Sequence[tuple[Link, ...]],
    *,
    known: Mapping[tuple[str, int], str] | None = None,
    known_records: Mapping[int, str] | None = None,
) -> list[tuple[PathStep, ...]]:
    """Paths as people read them: each step names both ends by canonical identity and the record.

    At most three queries for any number of paths (lots, units, records), so a page of units costs
    the same whatever its size; ``known`` names nodes the caller has loaded already, by
    ``("L" | "U", id)``, and ``known_records`` records by id (their references), and saves their query.
    """
    known = known or {}
    known_records = known_records or {}
    wanted: dict[str, set[int]] = {"L": set(), "U": set()}
    record_ids = set()
    for path in paths:
        for link in path:
            wanted[link.kinds[0]].add(link.source)
            wanted[link.kinds[1]].add(link.target)
            if link.record not in known_records:
                record_ids.add(link.record)
    names = dict(known)
    for kind, model in (("L", Lot), ("U", Unit)):
        if missing := {node for node in wanted[kind] if (kind, node) not in known}:
            names.update(
                ((kind, pk), identity)
                for pk, identity in model.objects.filter(pk__any=missing).values_list("pk", "identity")
            )
    records = dict(known_records)
    if record_ids:
        records.update(Transformation.objects.filter(pk__any=record_ids).values_list("pk", "reference"))

    def name(kind: str, node: int) -> str:
        return names.get((kind, node), f"{'lot' if kind == 'L' else 'unit'}:{node}")

    return [
        tuple(
            PathStep(
                source=name(link.kinds[0], link.source),
                target=name(link.kinds[1], link.target),
                record=records.get(link.record, str(link.record)),
                exposure=exposure_name(link.definite),
            )
            for link in path
        )
        for path in paths
    ]
