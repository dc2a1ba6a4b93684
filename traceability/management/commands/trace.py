"""``trace forward|backward IDENT [--json]``: the trace engine for QA scripting and checking results.

The JSON output contract is fixed (further keys may be added, these may not change):

* forward: ``{"subject": "<canonical id>", "units": [{"epc": "urn:epc:id:sgtin:…",
  "exposure": "definite" | "potential", …}, …], "consignees": ["urn:epc:id:pgln:…", …]}``
* backward: ``{"subject": "…", "lots": ["urn:epc:class:lgtin:…", …], …}``

Units are written as they are read, a page at a time, so a million-unit answer streams out in
constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from django.core.management.base import CommandParser

from cells.models import Lot
from packs.models import Unit
from traceability import genealogy
from traceability.gs1 import identifiers
from traceability.investigations.selectors import (
    AffectedConsignee,
    AffectedUnitRow,
    affected_consignees,
    affected_unit_rows,
)
from traceability.ledger.selectors import company_prefix_lengths, identifier_render, subject_find
from traceability.management.base import LedgerCommand

TABLE_ROWS = 50


class Command(LedgerCommand):
    help = "Trace a lot or unit forward (affected units, consignees) or backward (upstream lots)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("direction", choices=["forward", "backward"])
        parser.add_argument("ident", help="EPC URN, GS1 Digital Link, lot code or serial")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--owner", help="Organisation slug, when a code is used by several organisations.")
        parser.add_argument("--at", type=int, help="Trace at this ledger position (default: now).")

    def handle(
        self, *args: Any, direction: str, ident: str, json: bool, owner: str | None, at: int | None, **options: Any
    ) -> None:
        subject = subject_find(ident, owner=owner)
        snapshot = genealogy.ledger_snapshot(at)
        prefix_length = company_prefix_lengths()
        if direction == "forward":
            forward = genealogy.forward_trace(
                snapshot=snapshot,
                seed_lot_ids=[subject.pk] if isinstance(subject, Lot) else [],
                seed_unit_ids=[subject.pk] if isinstance(subject, Unit) else [],
            )
            report: _ForwardReport | _BackwardReport = _ForwardReport(subject, forward, prefix_length)
        else:
            upstream = genealogy.upstream_read(subject=subject, snapshot=snapshot)
            report = _BackwardReport(upstream, prefix_length)
        report.write_json(self.stdout) if json else report.write_text(self.stdout)


def _epc(canonical: str, prefix_length: identifiers.PrefixLength) -> str | None:
    if canonical.startswith("own-"):
        return None
    return identifier_render(canonical, form="epc", prefix_length=prefix_length)


def _party(party: genealogy.Party, prefix_length: identifiers.PrefixLength) -> str:
    if party.pgln:
        return identifiers.to_epc_urn(identifiers.Pgln(gln=party.pgln), prefix_length=prefix_length)
    return f"own-party:{party.slug}"


class _ForwardReport:
    def __init__(self, subject: Lot | Unit, forward: genealogy.Forward, prefix_length: identifiers.PrefixLength):
        self.subject, self.forward, self.prefix_length = subject, forward, prefix_length

    def units(self) -> Iterator[AffectedUnitRow]:
        after = 0
        while page := genealogy.affected_units(self.forward, after=after):
            # Who received each unit is the consignees' part of the report, not each unit's.
            yield from affected_unit_rows(page, shipments=False)
            after = page[-1].unit_id

    def consignees(self) -> list[AffectedConsignee]:
        return affected_consignees(forward=self.forward)

    def write_json(self, out: TextIO) -> None:
        head = {"subject": self.subject.identity, "position": self.forward.snapshot.position}
        out.write(json.dumps(head)[:-1] + ', "units": [')
        for n, row in enumerate(self.units()):
            unit = {
                "epc": _epc(row.identity, self.prefix_length),
                "exposure": row.exposure,
                "identity": row.identity,
                "serial": row.serial,
                "gtin": row.gtin,
                "path": [step.as_dict() for step in row.path],
            }
            out.write(("," if n else "") + "\n" + json.dumps(unit))
        consignees = [_party(consignee.party, self.prefix_length) for consignee in self.consignees()]
        definite, potential = genealogy.affected_counts(self.forward)
        tail = {"consignees": consignees, "counts": {"definite": definite, "potential": potential}}
        out.write("\n], " + json.dumps(tail)[1:] + "\n")

    def write_text(self, out: TextIO) -> None:
        definite, potential = genealogy.affected_counts(self.forward)
        out.write(
            f"Forward trace of {self.subject.identity} at ledger position {self.forward.snapshot.position}\n"
            f"  {definite:,} units definitely and {potential:,} potentially exposed,"
            f" through {len(self.forward.lots):,} lots and {len(self.forward.segments):,} segments\n\n"
        )
        out.write(f"{'serial':<22} {'exposure':<10} {'EPC':<48} via\n")
        for n, row in enumerate(self.units()):
            if n == TABLE_ROWS:
                out.write(f"… {definite + potential - TABLE_ROWS:,} more (use --json for all)\n")
                break
            via = row.path[-1].source if row.path else "(the subject)"
            epc = _epc(row.identity, self.prefix_length)
            out.write(f"{row.serial:<22} {row.exposure:<10} {epc or row.identity:<48} {via}\n")
        out.write("\nConsignees\n")
        for consignee in self.consignees():
            out.write(
                f"  {consignee.party.name:<40} {consignee.units:>9,} units"
                f"  {consignee.first_shipped_at:%Y-%m-%d} – {consignee.last_shipped_at:%Y-%m-%d}\n"
            )


class _BackwardReport:
    def __init__(self, upstream: genealogy.Upstream, prefix_length: identifiers.PrefixLength):
        self.upstream, self.prefix_length = upstream, prefix_length

    def write_json(self, out: TextIO) -> None:
        details = [
            {
                "lot": _epc(found.lot.identity, self.prefix_length) or found.lot.identity,
                "identity": found.lot.identity,
                "kind": found.lot.kind,
                "level": found.level,
                "exposure": found.exposure,
                "supplier": {"name": found.supplier.name, "party": _party(found.supplier, self.prefix_length)},
                "site": found.site.name if found.site else None,
                "produced": [_iso(found.produced_from), _iso(found.produced_to)],
                "inspections": [
                    {
                        "method": i.method,
                        "outcome": i.outcome,
                        "measurements": i.measurements,
                        "at": _iso(i.inspected_at),
                    }
                    # Newest first (the read gives them oldest first; equal times keep their order).
                    for i in sorted(found.inspections, key=lambda i: i.inspected_at, reverse=True)
                ],
                "certificates": [
                    {"scheme": c.scheme, "number": c.number, "status": c.status} for c in found.certificates
                ],
                "path": [step.as_dict() for step in found.path],
            }
            for found in self.upstream.lots
        ]
        json.dump(
            {
                "subject": self.upstream.subject.identity,
                "position": self.upstream.position,
                "lots": [d["lot"] for d in details],
                "units": [_epc(u.unit.identity, self.prefix_length) or u.unit.identity for u in self.upstream.units],
                "suppliers": sorted({_party(found.supplier, self.prefix_length) for found in self.upstream.lots}),
                "details": details,
            },
            out,
        )
        out.write("\n")

    def write_text(self, out: TextIO) -> None:
        upstream = self.upstream
        out.write(
            f"Backward trace of {upstream.subject.identity} at ledger position {upstream.position}:"
            f" {len(upstream.lots)} upstream lots\n\n"
        )
        out.write(f"{'level':<6} {'lot':<44} {'kind':<9} {'supplier':<36} produced\n")
        for found in upstream.lots:
            lot, produced = found.lot, f"{found.produced_from:%Y-%m-%d}" if found.produced_from else "-"
            failed = " FAILED INSPECTION" if any(i.outcome == "fail" for i in found.inspections) else ""
            out.write(
                f"{found.level:<6} {lot.identity:<44} {lot.kind:<9} {found.supplier.name[:35]:<36} {produced}{failed}\n"
            )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None
