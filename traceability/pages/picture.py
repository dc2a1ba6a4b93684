"""A genealogy picture's layout: paths of links (from the subject through the lots in between to a
unit) laid out left to right in layers, one box per node, as coordinates an SVG template draws.

Pure presentation: no query, no Django. A node's layer is its longest distance from a path's start,
so every arrow points right; a layer holds ``LAYER_CAP`` boxes at most, the rest said in a count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The most boxes a layer draws; a layer with more says how many it leaves out.
LAYER_CAP = 20
# A box's text is monospace at ``FONT`` px: a character is about 0.6 of that wide. Labels longer
# than ``LABEL_CHARS`` are cut with an ellipsis (the whole label is the box's tooltip and in the words).
FONT = 12
CHAR_WIDTH = 0.6 * FONT  # pixels
LABEL_CHARS = 40
PADDING = 10
BOX_HEIGHT = 44
COLUMN_GAP = 56
ROW_GAP = 16
MARGIN = 8


@dataclass(frozen=True)
class Step:
    """One link to draw: its two ends (a node's key is its identity) and whether it is definite."""

    source: str
    target: str
    definite: bool
    record: str = ""


@dataclass(frozen=True)
class Box:
    key: str
    label: str  # the key, cut to ``LABEL_CHARS``
    layer: int
    x: int
    y: int
    width: int
    height: int

    @property
    def middle(self) -> int:
        return self.y + self.height // 2


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    definite: bool
    record: str
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Picture:
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    left_out: tuple[tuple[int, int], ...]  # (layer, boxes not drawn) of each layer over the cap
    width: int  # pixels, as every coordinate
    height: int  # of the drawing, without a legend

    @property
    def potential(self) -> int:
        return sum(not arrow.definite for arrow in self.arrows)


def layers_of(paths: Iterable[Sequence[Step]]) -> list[list[str]]:
    """The nodes of ``paths`` by layer: each at its longest distance from a start (a node no step
    leads to), in the order first met. Steps that would close a cycle are not followed round it."""
    order: dict[str, None] = {}
    steps: dict[tuple[str, str], None] = {}
    for path in paths:
        for step in path:
            order.setdefault(step.source)
            order.setdefault(step.target)
            steps.setdefault((step.source, step.target))
    layer = dict.fromkeys(order, 0)
    # Relaxed at most once per node: a longest path in a graph of n nodes has n - 1 steps.
    for _ in range(len(order)):
        moved = False
        for source, target in steps:
            if layer[target] < layer[source] + 1 < len(order):
                layer[target] = layer[source] + 1
                moved = True
        if not moved:
            break
    found: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in order:
        found[layer[node]].append(node)
    return found


def picture_layout(paths: Sequence[Sequence[Step]], *, cap: int = LAYER_CAP) -> Picture:
    """The boxes and arrows of ``paths``, left to right; all boxes as wide as the longest label, each
    layer centred on the tallest one. An arrow whose end was left out of its layer is not drawn."""
    layers = layers_of(paths)
    shown = [layer[:cap] for layer in layers]
    labels = {node: _cut(node) for layer in shown for node in layer}
    width = math.ceil(max((len(label) for label in labels.values()), default=0) * CHAR_WIDTH) + 2 * PADDING
    rows = max((len(layer) for layer in shown), default=0)
    height = rows * BOX_HEIGHT + max(rows - 1, 0) * ROW_GAP
    boxes: dict[str, Box] = {}
    for number, layer in enumerate(shown):
        own = len(layer) * BOX_HEIGHT + (len(layer) - 1) * ROW_GAP
        top = MARGIN + (height - own) // 2
        for row, node in enumerate(layer):
            boxes[node] = Box(
                key=node,
                label=labels[node],
                layer=number,
                x=MARGIN + number * (width + COLUMN_GAP),
                y=top + row * (BOX_HEIGHT + ROW_GAP),
                width=width,
                height=BOX_HEIGHT,
            )
    arrows: dict[tuple[str, str], Arrow] = {}
    for path in paths:
        for step in path:
            start, end = boxes.get(step.source), boxes.get(step.target)
            if start is None or end is None:
                continue
            known = arrows.get((step.source, step.target))
            if known is not None and (known.definite or not step.definite):
                continue  # drawn already, as definite or as potential alike
            arrows[(step.source, step.target)] = Arrow(
                source=step.source,
                target=step.target,
                definite=step.definite,
                record=step.record,
                x1=start.x + start.width,
                y1=start.middle,
                x2=end.x,
                y2=end.middle,
            )
    return Picture(
        boxes=tuple(boxes.values()),
        arrows=tuple(arrows.values()),
        left_out=tuple((number, len(layer) - cap) for number, layer in enumerate(layers) if len(layer) > cap),
        width=2 * MARGIN + len(shown) * width + max(len(shown) - 1, 0) * COLUMN_GAP,
        height=2 * MARGIN + height,
    )


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
