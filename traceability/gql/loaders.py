"""Per-request dataloaders, one per relation (Saleor's pattern), for a synchronous executor.

A field resolved once per item of a list (the owner of each lot, the model of each unit) asks its
relation's loader for its key; the list's resolver first tells the loader every key of its page
(``expect``), so the first item's ``load`` reads the whole page's keys in one batch and the others
are answered from the loader's cache. Without ``expect`` a ``load`` still works, one batch per key:
every list that renders a relation per item says what it will ask.

graphql-core runs synchronous resolvers depth-first, item by item, so the promise-based batching of
an asynchronous DataLoader would see one key at a time; ``expect`` is what makes the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from traceability.gql.context import Context

K = TypeVar("K")
V = TypeVar("V")


class Loader(Generic[K, V]):
    """The values of one relation by key, read in batches of the keys expected so far."""

    def __init__(self, context: Context, batch: Callable[[Context, list[K]], Mapping[K, V]]) -> None:
        self.context, self.batch = context, batch
        self.cache: dict[K, V | None] = {}
        self.pending: set[K] = set()
        self.batches = 0  # for tests: how many reads it made

    def expect(self, keys: Iterable[K]) -> None:
        """The keys a list is about to ask for, read together at the first ``load``."""
        self.pending.update(key for key in keys if key not in self.cache)

    def prime(self, values: Mapping[K, V]) -> None:
        """Values read already (by a read model that had them): no batch reads them again."""
        self.cache.update(values)
        self.pending.difference_update(values)

    def load(self, key: K) -> V | None:
        if key not in self.cache:
            wanted = sorted(self.pending | {key})  # type: ignore[type-var]
            self.pending.clear()
            found = self.batch(self.context, wanted)
            self.batches += 1
            for k in wanted:
                self.cache[k] = found.get(k)
        return self.cache[key]

    def load_many(self, keys: Iterable[K]) -> list[V | None]:
        keys = list(keys)
        self.expect(keys)
        return [self.load(key) for key in keys]


def loader(context: Context, batch: Callable[[Context, list[Any]], Mapping[Any, Any]]) -> Loader[Any, Any]:
    """The request's loader of ``batch``'s relation (one per batch function and request). A batch
    may tell other loaders what the rows it read will ask next (a certificate's holder and covered
    models), so a nested list costs a batch per level, not per item."""
    key = ("loader", batch)
    found = context.memo.get(key)
    if found is None:
        found = context.memo[key] = Loader(context, batch)
    return found  # type: ignore[no-any-return]
