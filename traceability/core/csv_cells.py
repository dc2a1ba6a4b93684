"""CSV that a spreadsheet cannot be made to execute (OWASP's "CSV Injection").

A serial, a lot or a slug is written by whoever captured it, and an export or the audit CSV hands
it to someone else, who opens the file in a spreadsheet. A cell beginning with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is read there as a formula (``=HYPERLINK(…)``, ``=1+2``), so
every file the ledger writes goes through ``writer``, which does what OWASP recommends: every
cell quoted (a separator inside a cell cannot start a new one, whatever separator the reader's
locale uses) and a cell that could start a formula prefixed with a single quote, which
spreadsheets show as text and do not display.

The prefix is reversible, so the CSV import reads back what an export wrote: a cell is prefixed
when it begins with any number of single quotes and then a formula character, and ``unquote``
drops one quote from a cell of that form that begins with a quote. A serial that really begins
with ``'=`` is written ``''=`` and read back as ``'=``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

# What OWASP lists as starting a formula in Excel, LibreOffice and Google Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_PREFIX = re.compile(r"'*[=+\-@\t\r]")
_PREFIXED = re.compile(r"''*[=+\-@\t\r]")


class _Sink(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralised(value: object) -> str:
    """The cell as text that no spreadsheet evaluates: a quote before a possible formula."""
    text = "" if value is None else str(value)
    return "'" + text if _NEEDS_PREFIX.match(text) else text


def unquote(cell: str) -> str:
    """What ``neutralised`` was given: one leading quote less on a cell it prefixed."""
    return cell[1:] if _PREFIXED.match(cell) else cell


class Writer:
    """``csv.writer`` with every cell quoted and neutralised; ``writerow`` returns what the sink's
    ``write`` returned (the line, for the line sinks of the streamed exports)."""

    def __init__(self, sink: _Sink, *, lineterminator: str = "\r\n") -> None:
        self._writer = csv.writer(sink, quoting=csv.QUOTE_ALL, lineterminator=lineterminator)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([neutralised(value) for value in row])


def writer(sink: _Sink, *, lineterminator: str = "\r\n") -> Writer:
    return Writer(sink, lineterminator=lineterminator)


class _Line:
    """A file-like sink for csv.writer that hands back each written line."""

    def write(self, text: str, /) -> str:
        return text


def line_writer() -> Writer:
    """A ``writer`` whose ``writerow`` returns the row's line: for a file streamed a line at a time."""
    return Writer(_Line())
