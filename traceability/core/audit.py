"""The audit trail: every write, and every read by a regulator, appended as one ``AuditEntry``.

As Zulip's ``RealmAuditLog``: the service that acts writes its entry itself, inside its own
transaction, so an action and its entry commit or roll back together (one INSERT, no signal).
Who acted and for which organisation come from the caller; the request id and the interface come
from the context a request (``traceability.middleware``) or a command sets around the action.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from celery import current_task
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet

from traceability.core import csv_cells
from traceability.core.models import AuditAction, AuditEntry, AuditSource

__all__ = [
    "AuditAction",
    "AuditSource",
    "audit_context",
    "audit_csv_lines",
    "audit_entries",
    "audit_record",
    "audit_records",
]


@dataclass(frozen=True)
class AuditContext:
    """Where the actions of this request (or command, or task) come from."""

    request_id: str
    source: str


_context: ContextVar[AuditContext | None] = ContextVar("ledger_audit_context", default=None)


@contextmanager
def audit_context(*, request_id: str = "", source: str) -> Iterator[AuditContext]:
    """Entries written inside this block carry ``request_id`` and ``source``."""
    context = AuditContext(request_id=request_id, source=source)
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def current_audit_context() -> AuditContext:
    """The context set around this action; outside any, a Celery worker's task or the command line."""
    context = _context.get()
    if context is not None:
        return context
    # ``current_task`` is a proxy: false outside a task. An eager task runs in its caller's process.
    in_worker = bool(current_task) and not getattr(current_task.request, "is_eager", False)
    return AuditContext(request_id="", source=AuditSource.WORKER if in_worker else AuditSource.CLI)


def audit_record(
    *,
    action: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    organisation: Model | int | None = None,
    identifiers: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
    source: str | None = None,
) -> AuditEntry:
    """Append one entry to the audit trail, in the caller's transaction: one INSERT.

    ``organisation`` is the one the action was done for (a ``suppliers.Organisation`` or its id);
    ``identifiers`` the identities and ids it concerns; ``detail`` a small JSON object. Never put a
    secret (a token, a password) in either: the trail is read by people and exported.
    """
    entry = _entry(action, user, organisation, identifiers, detail, source, current_audit_context())
    entry.save(force_insert=True)
    return entry


def audit_records(
    *,
    action: str,
    records: Iterable[tuple[Model | int | None, Iterable[str], dict[str, Any]]],
    user: AbstractBaseUser | AnonymousUser | None = None,
    source: str | None = None,
) -> int:
    """Append one entry per ``(organisation, identifiers, detail)`` of a set-based write, all in one
    INSERT; returns how many. Otherwise as ``audit_record``."""
    context = current_audit_context()
    entries = [_entry(action, user, *record, source, context) for record in records]
    return len(AuditEntry.objects.bulk_create(entries))


def _entry(
    action: str,
    user: AbstractBaseUser | AnonymousUser | None,
    organisation: Model | int | None,
    identifiers: Iterable[str],
    detail: dict[str, Any] | None,
    source: str | None,
    context: AuditContext,
) -> AuditEntry:
    acting = user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None
    return AuditEntry(
        action=action,
        user_id=acting.pk if acting is not None else None,
        username=acting.get_username() if acting is not None else "",
        organisation_id=organisation.pk if isinstance(organisation, Model) else organisation,
        identifiers=[str(identifier) for identifier in identifiers],
        detail=detail or {},
        request_id=context.request_id,
        source=source or context.source,
    )


# --- reading the trail -----------------------------------------------------------------------------------


def audit_entries(
    *,
    organisation: Model | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries newest first, of one organisation (every organisation's when None), filtered."""
    entries = AuditEntry.objects.select_related("organisation").order_by("-at", "-id")
    if organisation is not None:
        entries = entries.filter(organisation_id=organisation.pk if isinstance(organisation, Model) else organisation)
    if action:
        entries = entries.filter(action=action)
    if since is not None:
        entries = entries.filter(at__gte=since)
    if until is not None:
        entries = entries.filter(at__lt=until)
    return entries


CSV_COLUMNS = ("at", "action", "username", "organisation", "source", "request_id", "identifiers", "detail")


def audit_csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The entries as CSV, a line at a time: a header, then one row an entry (identifiers and
    detail as JSON), neutralised (``core.csv_cells``): usernames and identifiers are
    anyone's input. Iterate a queryset with ``.iterator()`` to keep memory flat on a long trail."""
    writer = csv_cells.line_writer()
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries:
        yield writer.writerow(
            [
                entry.at.isoformat(),
                entry.action,
                entry.username,
                entry.organisation.slug if entry.organisation else "",
                entry.source,
                entry.request_id,
                json.dumps(entry.identifiers, ensure_ascii=False),
                json.dumps(entry.detail, ensure_ascii=False, sort_keys=True),
            ]
        )
