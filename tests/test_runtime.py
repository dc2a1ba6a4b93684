"""A loaded process's heap, frozen out of the garbage collector's full collections (``heap_settle``)."""

from __future__ import annotations

import gc
import weakref

from traceability.core.runtime import heap_settle


class _Node:
    pass


def test_a_settled_heap_is_frozen_and_what_is_made_afterwards_is_still_collected():
    # given a cycle made before settling and one made after
    before = _Node()
    before.self = before  # type: ignore[attr-defined]
    frozen = weakref.ref(before)
    try:
        # when
        heap_settle(urls=True)
        after = _Node()
        after.self = after  # type: ignore[attr-defined]
        collected = weakref.ref(after)
        del before, after
        gc.collect()
        # then the loaded heap is out of reach of the collector, and new garbage is not
        assert gc.get_freeze_count() > 0
        assert frozen() is not None and collected() is None
    finally:
        gc.unfreeze()
    gc.collect()
    assert frozen() is None
