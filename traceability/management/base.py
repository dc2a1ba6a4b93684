"""What the ledger's management commands share: the domain's refusals written as command errors, and
the shape of the operator's registries (``organisation``, ``user``, ``grant``: ``add`` and ``list``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from traceability.core.errors import DomainError


class LedgerCommand(BaseCommand):
    """A command whose domain refusals (``DomainError``) end it as a ``CommandError`` with their message:
    one line on stderr and a non-zero exit, not a traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except DomainError as error:
            raise CommandError(error.message) from None


def plain(text: str) -> str:
    """Standard error's default style is the error colour; a report that nothing changed is no error."""
    return text


class RegistryCommand(LedgerCommand):
    """A command of two actions: ``add`` (idempotent) and ``list`` (one record a line on stdout).
    A subclass declares the ``add`` parser's arguments in ``add_options`` and implements ``add``
    and ``list``; one with more actions (``grant revoke``) names them in ``actions`` and declares
    each one's parser there too, and the method of the same name is called."""

    actions: tuple[str, ...] = ("add", "list")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{" + ",".join(self.actions) + "}")
        self.add_options(actions)

    def add_options(self, actions: Any) -> None:
        raise NotImplementedError

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "add":
            self.add(**options)
        elif action == "list":
            self.list()
        else:
            getattr(self, action)(**options)

    def add(self, **options: Any) -> None:
        raise NotImplementedError

    def list(self) -> None:
        raise NotImplementedError
