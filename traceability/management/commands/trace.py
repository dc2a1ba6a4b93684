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
from suppliers.models import Certificate, Organisation
from traceability import genealogy
from traceability.genealogy.models import exposure_name
from traceability.gs1 import identifiers
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
            report = _ForwardReport(subject, forward, prefix_length)
            report.write_json(self.stdout) if json else report.write_text(self.stdout)
        else:
            backward = genealogy.backward_trace(
                snapshot=snapshot,
                unit_id=subject.pk if isinstance(subject, Unit) else None,
                lot_id=subject.pk if isinstance(subject, Lot) else None,
            )
            report = _BackwardReport(subject, backward, prefix_length)
            report.write_json(self.stdout) if json else report.write_text(self.stdout)


def _epc(canonical: str, prefix_length: identifiers.PrefixLength) -> str | None:
    if canonical.startswith("own-"):
        return None
    return identifier_render(canonical, form="epc", prefix_length=prefix_length)


def _party(organisation: Organisation, prefix_length: identifiers.PrefixLength) -> str:
    if organisation.pgln:
        return identifiers.to_epc_urn(identifiers.Pgln(gln=organisation.pgln), prefix_length=prefix_length)
    return f"own-party:{organisation.slug}"


class _ForwardReport:
    def __init__(self, subject: Lot | Unit, forward: genealogy.Forward, prefix_length: identifiers.PrefixLength):
        self.subject, self.forward, self.prefix_length = subject, forward, prefix_length

    def units(self) -> Iterator[dict[str, Any]]:
        after = 0
        while page := genealogy.affected_units(self.forward, after=after):
            rows = Unit.objects.in_bulk([a.unit_id for a in page])
            paths = genealogy.explain_paths([a.path for a in page])
            for affected, path in zip(page, paths, strict=True):
                unit = rows[affected.unit_id]
                yield {
                    "epc": _epc(unit.identity, self.prefix_length),
                    "exposure": exposure_name(affected.definite),
                    "identity": unit.identity,
                    "serial": unit.serial,
                    "gtin": unit.gtin,
                    "path": path,
                }
            after = page[-1].unit_id

    def consignees(self) -> list[tuple[Organisation, genealogy.Consignee]]:
        found = genealogy.consignees(self.forward)
        organisations = Organisation.objects.in_bulk([c.organisation_id for c in found])
        return [(organisations[c.organisation_id], c) for c in found]

    def write_json(self, out: TextIO) -> None:
        head = {"subject": self.subject.identity, "position": self.forward.snapshot.position}
        out.write(json.dumps(head)[:-1] + ', "units": [')
        for n, unit in enumerate(self.units()):
            out.write(("," if n else "") + "\n" + json.dumps(unit))
        consignees = [_party(organisation, self.prefix_length) for organisation, _ in self.consignees()]
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
        for n, unit in enumerate(self.units()):
            if n == TABLE_ROWS:
                out.write(f"… {definite + potential - TABLE_ROWS:,} more (use --json for all)\n")
                break
            via = unit["path"][-1]["from"] if unit["path"] else "(the subject)"
            out.write(f"{unit['serial']:<22} {unit['exposure']:<10} {unit['epc'] or unit['identity']:<48} {via}\n")
        out.write("\nConsignees\n")
        for organisation, consignee in self.consignees():
            out.write(
                f"  {organisation.name:<40} {consignee.units:>9,} units"
                f"  {consignee.first_shipped_at:%Y-%m-%d} – {consignee.last_shipped_at:%Y-%m-%d}\n"
            )


class _BackwardReport:
    def __init__(self, subject: Lot | Unit, backward: genealogy.Backward, prefix_length: identifiers.PrefixLength):
        self.subject, self.backward, self.prefix_length = subject, backward, prefix_length
        self.lots = (
            Lot.objects.select_related("owner", "site").prefetch_related("inspections").in_bulk(list(backward.lots))
        )
        self.certificates: dict[int, list[Certificate]] = {}
        for certificate in Certificate.objects.filter(owner_id__in={lot.owner_id for lot in self.lots.values()}):
            self.certificates.setdefault(certificate.owner_id, []).append(certificate)

    def ordered(self) -> list[Lot]:
        return sorted(self.lots.values(), key=lambda lot: (len(self.backward.lots[lot.pk].path), lot.identity))

    def write_json(self, out: TextIO) -> None:
        lots = self.ordered()
        paths = genealogy.explain_paths([self.backward.lots[lot.pk].path for lot in lots])
        details = [
            {
                "lot": _epc(lot.identity, self.prefix_length) or lot.identity,
                "identity": lot.identity,
                "kind": lot.kind,
                "level": len(self.backward.lots[lot.pk].path),
                "exposure": exposure_name(self.backward.lots[lot.pk].definite),
                "supplier": {"name": lot.owner.name, "party": _party(lot.owner, self.prefix_length)},
                "site": lot.site.name if lot.site else None,
                "produced": [_iso(lot.produced_from), _iso(lot.produced_to)],
                "inspections": [
                    {
                        "method": i.method,
                        "outcome": i.outcome,
                        "measurements": i.measurements,
                        "at": _iso(i.inspected_at),
                    }
                    for i in lot.inspections.all()
                ],
                "certificates": [
                    {"scheme": c.scheme, "number": c.number, "status": c.status}
                    for c in self.certificates.get(lot.owner_id, [])
                ],
                "path": path,
            }
            for lot, path in zip(lots, paths, strict=True)
        ]
        units = Unit.objects.in_bulk(list(self.backward.units))
        json.dump(
            {
                "subject": self.subject.identity,
                "position": self.backward.snapshot.position,
                "lots": [d["lot"] for d in details],
                "units": [_epc(u.identity, self.prefix_length) or u.identity for u in units.values()],
                "suppliers": sorted({d["supplier"]["party"] for d in details}),
                "details": details,
            },
            out,
        )
        out.write("\n")

    def write_text(self, out: TextIO) -> None:
        out.write(
            f"Backward trace of {self.subject.identity} at ledger position {self.backward.snapshot.position}:"
            f" {len(self.lots)} upstream lots\n\n"
        )
        out.write(f"{'level':<6} {'lot':<44} {'kind':<9} {'supplier':<36} produced\n")
        for lot in self.ordered():
            level = len(self.backward.lots[lot.pk].path)
            produced = f"{lot.produced_from:%Y-%m-%d}" if lot.produced_from else "-"
            failed = " FAILED INSPECTION" if any(i.outcome == "fail" for i in lot.inspections.all()) else ""
            out.write(f"{level:<6} {lot.identity:<44} {lot.kind:<9} {lot.owner.name[:35]:<36} {produced}{failed}\n")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None
