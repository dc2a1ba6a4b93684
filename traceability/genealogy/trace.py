"""The trace algorithm, pure: reachability under the link rule over a graph handed to it.

Nothing here touches the database. The caller supplies the links (one fetch per level of the
graph, see ``links_reachable``) and gets back, for every node reached, whether it is definitely or
only potentially exposed and one shortest path that explains it.

The link rule (DESIGN.md): a node is **definitely** exposed when a path of definite links reaches
it, and **potentially** exposed when it is reachable only through at least one potential link.
So the definite set is plain reachability over definite links, and the potential set is
reachability over all links minus the definite set; breadth-first search gives shortest paths.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple


class Link(NamedTuple):
    """``target`` was made from ``source`` by transformation ``record`` (or, walking backward,
    ``source`` was made from ``target``). ``kinds`` says what the ids name, source then target:
    ``"LL"`` lot to lot, ``"LU"`` lot to unit, ``"UU"`` unit to unit (``"UL"`` backward).

    Named tuples, here and below, because a large trace builds tens of thousands of them; they
    order field by field, which keeps paths deterministic."""

    source: int
    target: int
    definite: bool
    record: int
    kinds: str = "LL"


class Reached(NamedTuple):
    definite: bool
    path: tuple[Link, ...]  # from a seed to the node; empty for a seed itself


def links_reachable(seeds: Iterable[int], fetch: Callable[[frozenset[int]], Iterable[Link]]) -> list[Link]:
    """Every link reachable from ``seeds``, asking ``fetch`` once per level of the graph.

    ``fetch(frontier)`` returns the links whose source is in ``frontier``: one set-based query per
    level, never one per node. Nodes already seen are not fetched again, so a cycle that slipped
    into the data ends the walk instead of looping.
    """
    seen = set(seeds)
    frontier = frozenset(seen)
    links: list[Link] = []
    while frontier:
        level = list(fetch(frontier))
        links.extend(level)
        new = {link.target for link in level} - seen
        seen |= new
        frontier = frozenset(new)
    return links


def reach(seeds: Iterable[int], links: Iterable[Link]) -> dict[int, Reached]:
    """Every node reachable from ``seeds`` (seeds included), with its exposure and a shortest path."""
    outgoing: dict[int, list[Link]] = defaultdict(list)
    for link in links:
        outgoing[link.source].append(link)
    for edges in outgoing.values():
        edges.sort()  # deterministic paths, whatever order the database returned
    start = sorted(set(seeds))
    definite = _shortest_paths(start, outgoing, definite_only=True)
    anyhow = _shortest_paths(start, outgoing, definite_only=False)
    return {
        node: Reached(True, definite[node]) if node in definite else Reached(False, path)
        for node, path in anyhow.items()
    }


def _shortest_paths(
    start: list[int], outgoing: Mapping[int, list[Link]], *, definite_only: bool
) -> dict[int, tuple[Link, ...]]:
    paths: dict[int, tuple[Link, ...]] = {node: () for node in start}
    queue = deque(start)
    while queue:
        node = queue.popleft()
        for link in outgoing.get(node, ()):
            if definite_only and not link.definite:
                continue
            if link.target not in paths:
                paths[link.target] = (*paths[node], link)
                queue.append(link.target)
    return paths


class SegmentReached(NamedTuple):
    """How a segment was reached: its units' exposure and the path to the input lot ``via_lot``."""

    segment: int
    definite: bool
    via_lot: int
    path: tuple[Link, ...]


def segments_reached(
    lots: Mapping[int, Reached], segment_inputs: Iterable[tuple[int, int, bool]]
) -> dict[int, SegmentReached]:
    """The segments whose inputs include a reached lot, from ``(segment, lot, segment_is_definite)``.

    A segment's units are definitely exposed when the segment's own link is definite and one of
    its inputs was reached definitely; the explanation goes through the input reached best
    (definite first, then the shortest path, then the lowest id for determinism).
    """
    best: dict[int, tuple[tuple[bool, int, int], bool, tuple[Link, ...]]] = {}
    for segment, lot, segment_definite in segment_inputs:
        reached = lots.get(lot)
        if reached is None:
            continue
        definite = segment_definite and reached.definite
        rank = (not definite, len(reached.path), lot)
        current = best.get(segment)
        if current is None or rank < current[0]:
            best[segment] = (rank, definite, reached.path)
    return {
        segment: SegmentReached(segment, definite, rank[2], path) for segment, (rank, definite, path) in best.items()
    }


def combine(first: Reached | None, second: Reached) -> Reached:
    """The better of two ways a node was reached: definite beats potential, then shorter wins."""
    if first is None:
        return second
    return min(first, second, key=lambda r: (not r.definite, len(r.path)))


def extend(reached: Reached, link: Link) -> Reached:
    """``reached`` carried one link further."""
    return Reached(reached.definite and link.definite, (*reached.path, link))
