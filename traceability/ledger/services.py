"""Writes to the ledger itself: positions taken under the head's lock, and company prefixes learnt."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from suppliers.models import Organisation
from suppliers.services import recorded_user
from traceability.gs1 import identifiers
from traceability.ledger.models import LearntCompanyPrefix, LedgerEntry, LedgerHead

# bulk_create batch: 5,000 member rows is about 0.5 MB of parameters, well inside both
# PostgreSQL's 65,535-parameter limit (3 columns) and SQLite's 32,766 (3 columns, 15,000 rows).
BATCH_SIZE = 5_000


def require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger writes must run inside the caller's transaction.atomic() block")


def ledger_append(
    *,
    source: str,
    summary: str,
    organisation: Organisation | None = None,
    actor: AbstractBaseUser | None = None,
) -> LedgerEntry:
    """Take the next ledger position for the write in progress.

    The lock on the single ``LedgerHead`` row is held until the caller's transaction ends, so
    ledger writes are serialised: positions are gapless, commit in order, and transformation ids
    grow with position (the trace engine's reproducibility relies on that).
    """
    head = ledger_lock()
    head.position += 1
    head.save(update_fields=["position"])
    return LedgerEntry.objects.create(
        position=head.position,
        recorded_at=timezone.now(),
        source=source,
        summary=summary[:300],
        organisation=organisation,
        actor=recorded_user(actor),
    )


def ledger_lock() -> LedgerHead:
    """Hold the ledger's lock until the caller's transaction ends (every genealogy write does)."""
    require_transaction()
    head, _ = LedgerHead.objects.select_for_update().get_or_create(pk=1)
    return head


def ids_missing(model: type[models.Model], ids: set[int]) -> list[int]:
    """Those of ``ids`` that ``model`` has no row for: one query for any number of ids, instead of
    a foreign-key check per row (the hot tables have none)."""
    if not ids:
        return []
    return sorted(ids - set(model._default_manager.filter(pk__any=ids).values_list("pk", flat=True)))


def company_prefixes_learn(parsed: Iterable[identifiers.Parsed], *, source: Iterable[str]) -> int:
    """Remember the company prefixes that EPC URNs spelled out; returns how many were new.

    ``source`` gives, in the same order, the text each identity was parsed from.
    """
    seen: dict[str, str] = {}
    for item, text in zip(parsed, source, strict=True):
        if item.company_prefix and item.company_prefix not in seen:
            seen[item.company_prefix] = text[:200]
    if not seen:
        return 0
    already = set(LearntCompanyPrefix.objects.filter(prefix__in=seen).values_list("prefix", flat=True))
    LearntCompanyPrefix.objects.bulk_create(
        [LearntCompanyPrefix(prefix=p, learnt_from=t) for p, t in seen.items() if p not in already],
        ignore_conflicts=True,
    )
    return len(seen) - len(already)
