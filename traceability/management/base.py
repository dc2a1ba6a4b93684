"""What the ledger's management commands share: the domain's refusals written as command errors."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from traceability.core.errors import DomainError


class LedgerCommand(BaseCommand):
    """A command whose domain refusals (``DomainError``) end it as a ``CommandError`` with their message:
    one line on stderr and a non-zero exit, not a traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except DomainError as error:
            raise CommandError(error.message) from None
