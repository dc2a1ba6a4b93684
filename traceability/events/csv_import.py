"""Bulk CSV for QA teams without EPCIS: four templates, turned into EPCIS events and captured.

Each template is a CSV file with a header row (``TEMPLATES`` documents the columns; the API serves
each as a file with an example row). A file is read whole and checked row by row first: every bad
row is reported by line number and column, and a file with any is rejected with nothing applied.
A good file becomes one EPCIS document and takes the capture path (``capture.document_apply``),
so the genealogy, repeats and error rules are the same as for EPCIS partners; the events' eventIDs
derive from the file's content, so loading a file twice changes nothing.

- ``assignments``: which cell (or module) lots each unit was built from, one row per unit and
  lot: one TransformationEvent per unit (its build record: definite links).
- ``work_orders``: what a work order consumed and produced, one row per input lot or output unit:
  TransformationEvents sharing the work order as ``transformationID`` (several lots into many
  units: potential links, by the design's rule).
- ``packing``: a unit or carton put into a carton or pallet: AggregationEvents (ADD).
- ``shipments``: a pallet, carton or unit shipped to a consignee: ObjectEvents (``shipping``).
- ``receipts``: a pallet, carton or unit received under a despatch advice: ObjectEvents
  (``receiving``), which mark the shipment to the importing organisation received; a receipt of
  what was not shipped to it is refused as over EPCIS (``ownership``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.utils.dateparse import parse_datetime

from traceability.core.csv_cells import unquote
from traceability.events import limits
from traceability.events.problems import DocumentRejected, Problem
from traceability.events.vocabulary import epcis_document, utc_iso
from traceability.gs1 import identifiers


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # gtin, serial, lot, sscc, gln, time, text
    help: str
    example: str
    required: bool = True


@dataclass(frozen=True)
class Template:
    kind: str
    description: str
    columns: tuple[Column, ...]

    def csv(self) -> str:
        """The template as a file: the header, then one example row."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.name for c in self.columns])
        writer.writerow([c.example for c in self.columns])
        return out.getvalue()


_UNIT = (
    Column("unit_gtin", "gtin", "GTIN of the power bank (14 digits)", "04012345111118"),
    Column("unit_serial", "serial", "its serial number (GS1 AI 21)", "PB000001"),
)
_LOT = (
    Column("lot_gtin", "gtin", "GTIN of the cell or module (14 digits)", "04012345222227"),
    Column("lot", "lot", "the lot number as printed (GS1 AI 10)", "CL-2407-01"),
)
TEMPLATES: dict[str, Template] = {
    t.kind: t
    for t in (
        Template(
            "assignments",
            "Which lots each unit was built from: one row per unit and lot.",
            (
                *_UNIT,
                *_LOT,
                Column("built_at", "time", "when it was built (ISO 8601 with offset)", "2024-07-01T08:00:00Z"),
            ),
        ),
        Template(
            "work_orders",
            "What a work order consumed and produced: one row per input lot or output unit.",
            (
                Column("work_order", "text", "the work order number", "WO-2407-17"),
                Column("role", "role", "input (a lot) or output (a unit)", "input"),
                Column("gtin", "gtin", "GTIN of the lot (input) or unit (output)", "04012345222227"),
                Column("lot_or_serial", "text", "the lot number (input) or serial (output)", "CL-2407-01"),
                Column("at", "time", "when (ISO 8601 with offset)", "2024-07-01T08:00:00Z"),
            ),
        ),
        Template(
            "packing",
            "A unit or carton put into a carton or pallet: one row per content.",
            (
                Column("container_sscc", "sscc", "SSCC of the carton or pallet (18 digits)", "340123450000000017"),
                Column("content_sscc", "sscc", "SSCC of a carton put on the pallet (or leave empty)", "", False),
                Column(
                    "unit_gtin", "gtin", "GTIN of a unit put in the carton (or leave empty)", "04012345111118", False
                ),
                Column("unit_serial", "serial", "its serial (with unit_gtin)", "PB000001", False),
                Column("packed_at", "time", "when (ISO 8601 with offset)", "2024-07-01T09:00:00Z"),
            ),
        ),
        Template(
            "shipments",
            "What was shipped to whom: one row per pallet, carton or loose unit.",
            (
                Column("despatch_advice", "text", "the despatch advice (or bill of lading) number", "DA-2407-0042"),
                Column("consignee_gln", "gln", "party GLN of the consignee (13 digits)", "4012345000009"),
                Column("shipped_at", "time", "when (ISO 8601 with offset)", "2024-07-02T14:00:00Z"),
                Column("sscc", "sscc", "SSCC of a pallet or carton (or leave empty)", "340123450000000017", False),
                Column("unit_gtin", "gtin", "GTIN of a loose unit (or leave empty)", "", False),
                Column("unit_serial", "serial", "its serial (with unit_gtin)", "", False),
            ),
        ),
        Template(
            "receipts",
            "What was received, under which despatch advice: one row per pallet, carton or loose unit.",
            (
                Column("despatch_advice", "text", "the despatch advice (or bill of lading) number", "DA-2407-0042"),
                Column("received_at", "time", "when (ISO 8601 with offset)", "2024-07-04T10:00:00Z"),
                Column("sscc", "sscc", "SSCC of a pallet or carton (or leave empty)", "340123450000000017", False),
                Column("unit_gtin", "gtin", "GTIN of a loose unit (or leave empty)", "", False),
                Column("unit_serial", "serial", "its serial (with unit_gtin)", "", False),
            ),
        ),
    )
}


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]


def csv_document(kind: str, data: bytes) -> dict[str, Any]:
    """The EPCIS document a CSV file of template ``kind`` stands for; raises DocumentRejected with
    every bad row (``where`` = ``line N, column NAME``) and changes nothing."""
    template = TEMPLATES.get(kind)
    if template is None:
        raise DocumentRejected([Problem("", f"no CSV template {kind!r}: use one of {', '.join(TEMPLATES)}")])
    rows, problems = _rows(template, data)
    if problems:
        raise DocumentRejected(problems)
    return epcis_document(_BUILDERS[kind](rows))


# --- reading and checking ------------------------------------------------------------------------------


def _rows(template: Template, data: bytes) -> tuple[list[Row], list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Problem("", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    reader = csv.DictReader(io.StringIO(text))
    expected = [c.name for c in template.columns]
    header = [name.strip() for name in reader.fieldnames or []]
    if missing := [name for name in expected if name not in header]:
        return [], [
            Problem(
                "line 1",
                f"the header lacks column(s) {', '.join(missing)}:"
                f" the {template.kind} template has {', '.join(expected)}",
            )
        ]
    rows, problems = [], []
    for record in reader:
        line = reader.line_num
        # A cell the ledger's own exports neutralised reads as what it was (core.csv_cells).
        cells = {k.strip(): unquote((v or "").strip()) for k, v in record.items() if k}
        values, bad = _values(template, cells, line)
        problems += bad
        if not bad:
            rows.append(Row(line, values))
    if not rows and not problems:
        problems.append(Problem("line 2", "the file has a header but no rows"))
    return rows, problems


def _values(template: Template, record: dict[str, str], line: int) -> tuple[dict[str, Any], list[Problem]]:
    values: dict[str, Any] = {}
    problems = []
    for column in template.columns:
        raw = record.get(column.name, "")
        if not raw:
            if column.required:
                problems.append(Problem(f"line {line}, column {column.name}", "is empty: " + column.help))
            continue
        try:
            values[column.name] = _CHECKS[column.kind](raw)
        except ValueError as exc:
            problems.append(Problem(f"line {line}, column {column.name}", f"{raw[:80]!r} is not valid: {exc}"))
    problems += _row_rules(template.kind, values, line) if not problems else []
    return values, problems


def _digits(length: int, name: str, key: Callable[[str], object]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not (value.isascii() and value.isdigit() and len(value) == length):
            raise ValueError(f"a {name} has {length} digits")
        try:
            key(value)  # the check digit
        except identifiers.InvalidIdentifier as exc:
            raise ValueError(exc.reason) from None
        return value

    return check


def _text(value: str) -> str:
    """A serial or lot number: GS1's rules (1 to 20 characters of character set 82)."""
    try:
        identifiers.Sgtin(gtin="00000000000000", serial=value)
    except identifiers.InvalidIdentifier as exc:
        raise ValueError(exc.reason.replace("serial", "a serial or lot number")) from None
    return value


def _time(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise ValueError("an ISO 8601 date-time with its offset, e.g. 2024-07-01T08:00:00Z")
    if reason := limits.time_reason(parsed):
        raise ValueError(reason.removeprefix("is "))
    return parsed


def _role(value: str) -> str:
    if value.lower() not in ("input", "output"):
        raise ValueError("input or output")
    return value.lower()


def _free_text(value: str) -> str:
    if len(value) > 64:
        raise ValueError("at most 64 characters")
    return value


_CHECKS: dict[str, Callable[[str], Any]] = {
    "gtin": _digits(14, "GTIN", lambda v: identifiers.GtinClass(gtin=v)),
    "sscc": _digits(18, "SSCC", lambda v: identifiers.Sscc(sscc=v)),
    "gln": _digits(13, "GLN", lambda v: identifiers.Pgln(gln=v)),
    "serial": _text,
    "lot": _text,
    "time": _time,
    "role": _role,
    "text": _free_text,
}


def _row_rules(kind: str, values: dict[str, Any], line: int) -> list[Problem]:
    """What a row must carry beyond its columns (one content for packing and shipments)."""
    where = f"line {line}"
    if kind == "packing" and ("content_sscc" in values) == ("unit_gtin" in values or "unit_serial" in values):
        return [Problem(where, "name either content_sscc (a carton) or unit_gtin and unit_serial (a unit)")]
    if kind in ("shipments", "receipts") and ("sscc" in values) == ("unit_gtin" in values or "unit_serial" in values):
        return [Problem(where, "name either sscc (a pallet or carton) or unit_gtin and unit_serial (a loose unit)")]
    if ("unit_gtin" in values) != ("unit_serial" in values):
        return [Problem(where, "unit_gtin and unit_serial go together")]
    if kind == "work_orders" and values["role"] == "input":
        try:
            _text(values["lot_or_serial"])
        except ValueError as exc:
            return [Problem(f"{where}, column lot_or_serial", str(exc))]
    return []


# --- events ---------------------------------------------------------------------------------------------


def _dl(*pairs: str) -> str:
    """A Digital Link of checked values: serials and lots percent-encoded (``/``, ``"``, ``%`` are
    GS1 characters that a link path would otherwise misread), as ``identifiers.to_digital_link``."""
    path = zip(pairs[::2], pairs[1::2], strict=True)
    return "https://id.gs1.org" + "".join(f"/{ai}/{quote(value, safe='')}" for ai, value in path)


def _urn(kind: str, text: str) -> str:
    """A work order's or despatch advice's URN: what a URN may not hold as itself (a space, ``"``,
    ``%``, non-ASCII) percent-encoded, or the capture refuses a file the row checks accepted."""
    return f"urn:ledger:{kind}:" + quote(text, safe="!$&'()*+,;=:@/")


def _event_id(*parts: Any) -> str:
    """An eventID from the row's content: the same row loaded twice is the same event."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return f"urn:uuid:{uuid.UUID(bytes=digest[:16], version=5)}"


def _event(kind: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    offset = at.strftime("%z")  # "+0200"
    return {"type": kind, "eventTime": utc_iso(at), "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}", **fields}


def _assignments(rows: list[Row]) -> list[dict[str, Any]]:
    units: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        units[(row.values["unit_gtin"], row.values["unit_serial"])].append(row)
    events = []
    for (gtin, serial), lots in units.items():
        classes = sorted({(r.values["lot_gtin"], r.values["lot"]) for r in lots})
        at = min(r.values["built_at"] for r in lots)
        events.append(
            _event(
                "TransformationEvent",
                at,
                eventID=_event_id("assignment", gtin, serial, classes),
                bizStep="commissioning",
                inputQuantityList=[{"epcClass": _dl("01", g, "10", lot), "quantity": 1} for g, lot in classes],
                outputEPCList=[_dl("01", gtin, "21", serial)],
            )
        )
    return events


def _work_orders(rows: list[Row]) -> list[dict[str, Any]]:
    events = []
    for row in rows:
        v = row.values
        key = "inputQuantityList" if v["role"] == "input" else "outputEPCList"
        value = (
            [{"epcClass": _dl("01", v["gtin"], "10", v["lot_or_serial"]), "quantity": 1}]
            if v["role"] == "input"
            else [_dl("01", v["gtin"], "21", v["lot_or_serial"])]
        )
        events.append(
            _event(
                "TransformationEvent",
                v["at"],
                eventID=_event_id("work order", v["work_order"], v["role"], v["gtin"], v["lot_or_serial"]),
                transformationID=_urn("work-order", v["work_order"]),
                bizStep="commissioning",
                **{key: value},
            )
        )
    return events


def _packing(rows: list[Row]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, dt.datetime], list[str]] = defaultdict(list)
    for row in rows:
        v = row.values
        child = (
            _dl("00", v["content_sscc"]) if "content_sscc" in v else _dl("01", v["unit_gtin"], "21", v["unit_serial"])
        )
        groups[(v["container_sscc"], v["packed_at"])].append(child)
    return [
        _event(
            "AggregationEvent",
            at,
            eventID=_event_id("packing", container, at, sorted(children)),
            action="ADD",
            bizStep="packing",
            parentID=_dl("00", container),
            childEPCs=sorted(set(children)),
        )
        for (container, at), children in groups.items()
    ]


def _shipments(rows: list[Row]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, dt.datetime], list[str]] = defaultdict(list)
    for row in rows:
        v = row.values
        item = _dl("00", v["sscc"]) if "sscc" in v else _dl("01", v["unit_gtin"], "21", v["unit_serial"])
        groups[(v["despatch_advice"], v["consignee_gln"], v["shipped_at"])].append(item)
    return [
        _event(
            "ObjectEvent",
            at,
            eventID=_event_id("shipment", advice, gln, at, sorted(items)),
            action="OBSERVE",
            bizStep="shipping",
            epcList=sorted(set(items)),
            bizTransactionList=[{"type": "desadv", "bizTransaction": _urn("desadv", advice)}],
            destinationList=[{"type": "owning_party", "destination": _dl("417", gln)}],
        )
        for (advice, gln, at), items in groups.items()
    ]


def _receipts(rows: list[Row]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, dt.datetime], list[str]] = defaultdict(list)
    for row in rows:
        v = row.values
        item = _dl("00", v["sscc"]) if "sscc" in v else _dl("01", v["unit_gtin"], "21", v["unit_serial"])
        groups[(v["despatch_advice"], v["received_at"])].append(item)
    return [
        _event(
            "ObjectEvent",
            at,
            eventID=_event_id("receipt", advice, at, sorted(items)),
            action="OBSERVE",
            bizStep="receiving",
            epcList=sorted(set(items)),
            bizTransactionList=[{"type": "desadv", "bizTransaction": _urn("desadv", advice)}],
        )
        for (advice, at), items in groups.items()
    ]


_BUILDERS: dict[str, Callable[[list[Row]], list[dict[str, Any]]]] = {
    "assignments": _assignments,
    "work_orders": _work_orders,
    "packing": _packing,
    "shipments": _shipments,
    "receipts": _receipts,
}
