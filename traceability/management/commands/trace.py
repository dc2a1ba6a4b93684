"""``trace forward|backward IDENT [--json]``: the trace engine for QA scripting and checking results.

The JSON output contract is fixed (further keys may be added, these may not change):

* forward: ``{"subject": "<canonical id>", "units": [{"epc": "urn:epc:id:sgtin:…",
  "exposure": "definite" | "potential", …}, …], "consignees": ["urn:epc:id:pgln:…", …]}``
* backward: ``{"subject": "…", "lots": ["urn:epc:class:lgtin:…", …], …}``

Without ``--as`` the command acts as the operator and sees everything. ``--as USERNAME`` acts as
that user's organisation, as the access policy answers it (``traceability.access.policy``): a
subject it may not trace is refused exactly as an unknown one is; forward, only the units it owns
or received are listed, its consignees are those of its own shipments, and the counts are its own,
with the units of others its lots went into counted per organisation (``"others"``, a key only
``--as`` adds); backward, only from its own lots and units and the units it received.

Units are written as they are read, a page at a time, so a million-unit answer streams out in
constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Membership, Organisation
from traceability import genealogy
from traceability.access.policy import OPERATOR, Actor, ResultScope, result_scope, subject_traceable, upstream_traceable
from traceability.gs1 import identifiers
from traceability.investigations.selectors import (
    AffectedConsignee,
    AffectedUnitRow,
    affected_consignees,
    affected_unit_rows,
)
from traceability.ledger.selectors import company_prefix_lengths, identifier_render, subject_find, subject_unknown
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
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            help="Act as this user: trace and show only what their organisation may (default: the operator).",
        )
        parser.add_argument(
            "--organisation", metavar="SLUG", help="With --as: the organisation the user acts for, if several."
        )

    def handle(
        self,
        *args: Any,
        direction: str,
        ident: str,
        json: bool,
        owner: str | None,
        at: int | None,
        as_user: str | None,
        organisation: str | None,
        **options: Any,
    ) -> None:
        if as_user is None and organisation is not None:
            raise CommandError("--organisation names the organisation a user acts for: give --as USERNAME too")
        actor = OPERATOR
        lookup_owner: Organisation | str | None = owner
        if as_user is not None:
            member = _membership(as_user, organisation)
            actor = Actor.of(member.organisation, member.role)
            # A bare code is looked up among the organisation's own, as the REST API does: among
            # everyone's, an ambiguous one would name other organisations' things.
            if owner is None and not actor.sees_all:
                lookup_owner = member.organisation
        subject = subject_find(ident, owner=lookup_owner)
        if as_user is not None and not (
            subject_traceable(actor, subject) if direction == "forward" else upstream_traceable(actor, subject)
        ):
            raise subject_unknown(ident, owner=lookup_owner)
        snapshot = genealogy.ledger_snapshot(at)
        prefix_length = company_prefix_lengths()
        if direction == "forward":
            forward = genealogy.forward_trace(
                snapshot=snapshot,
                seed_lot_ids=[subject.pk] if isinstance(subject, Lot) else [],
                seed_unit_ids=[subject.pk] if isinstance(subject, Unit) else [],
            )
            scope = result_scope(actor, forward) if as_user is not None else None
            report: _ForwardReport | _BackwardReport = _ForwardReport(subject, forward, prefix_length, scope=scope)
        else:
            upstream = genealogy.upstream_read(subject=subject, snapshot=snapshot)
            report = _BackwardReport(upstream, prefix_length)
        report.write_json(self.stdout) if json else report.write_text(self.stdout)


def _membership(username: str, organisation: str | None) -> Membership:
    """The membership ``--as`` acts through: the one ``--organisation`` names, else the user's only one."""
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"no user is named {username!r}")
    members = list(Membership.objects.select_related("organisation").filter(user=user).order_by("organisation__slug"))
    if not members:
        raise CommandError(f"user {username!r} acts for no organisation: make them a member of one")
    if organisation is not None:
        named = [member for member in members if member.organisation.slug == organisation]
        if not named:
            raise CommandError(f"user {username!r} is not a member of {organisation!r}")
        return named[0]
    if len(members) > 1:
        choices = ", ".join(member.organisation.slug for member in members)
        raise CommandError(
            f"user {username!r} acts for several organisations: name one with --organisation ({choices})"
        )
    return members[0]


def _epc(canonical: str, prefix_length: identifiers.PrefixLength) -> str | None:
    if canonical.startswith("own-"):
        return None
    return identifier_render(canonical, form="epc", prefix_length=prefix_length)


def _party(party: genealogy.Party, prefix_length: identifiers.PrefixLength) -> str:
    if party.pgln:
        return identifiers.to_epc_urn(identifiers.Pgln(gln=party.pgln), prefix_length=prefix_length)
    return f"own-party:{party.slug}"


class _ForwardReport:
    """A forward trace as the operator sees it (``scope`` None), or as a party's ``ResultScope`` allows."""

    def __init__(
        self,
        subject: Lot | Unit,
        forward: genealogy.Forward,
        prefix_length: identifiers.PrefixLength,
        *,
        scope: ResultScope | None = None,
    ):
        self.subject, self.forward, self.prefix_length, self.scope = subject, forward, prefix_length, scope
        self.partial = scope is not None and not scope.full

    def units(self) -> Iterator[AffectedUnitRow]:
        shown = self.scope.units_shown() if self.scope is not None and self.partial else None
        after = 0
        while page := genealogy.affected_units(self.forward, after=after):
            after = page[-1].unit_id
            if shown is not None:
                # One query per page: which of its units the party owns or received.
                kept = set(
                    Unit.objects.filter(shown, pk__any=frozenset(a.unit_id for a in page)).values_list("pk", flat=True)
                )
                page = [a for a in page if a.unit_id in kept]
            # Who received each unit is the consignees' part of the report, not each unit's.
            yield from affected_unit_rows(page, shipments=False)

    def consignees(self) -> list[AffectedConsignee]:
        party = self.scope.organisation_id if self.scope is not None and self.partial else None
        return affected_consignees(forward=self.forward, party_id=party)

    def counts(self) -> tuple[int, int]:
        """(definite, potential) units shown: all of them, or the party's own and received."""
        if self.scope is not None and self.partial:
            view = self.scope.view
            return (view.definite_units, view.potential_units) if view is not None else (0, 0)
        return genealogy.affected_counts(self.forward)

    def others(self) -> list[tuple[Organisation, int, int]]:
        """(organisation, definite, potential) of the units of others the party's lots went into."""
        counted = self.scope.others if self.scope is not None else ()
        organisations = Organisation.objects.in_bulk([o.organisation_id for o in counted])
        return [(organisations[o.organisation_id], o.definite_units, o.potential_units) for o in counted]

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
        definite, potential = self.counts()
        tail: dict[str, Any] = {"consignees": consignees, "counts": {"definite": definite, "potential": potential}}
        if self.scope is not None:
            tail["others"] = [
                {"organisation": organisation.slug, "definite": d, "potential": p}
                for organisation, d, p in self.others()
            ]
        out.write("\n], " + json.dumps(tail)[1:] + "\n")

    def write_text(self, out: TextIO) -> None:
        definite, potential = self.counts()
        # How far the trace went through others' lots is theirs: a party is told its own units.
        through = (
            ""
            if self.partial
            else f", through {len(self.forward.lots):,} lots and {len(self.forward.segments):,} segments"
        )
        out.write(
            f"Forward trace of {self.subject.identity} at ledger position {self.forward.snapshot.position}\n"
            f"  {definite:,} units{' of yours' if self.partial else ''} definitely and {potential:,}"
            f" potentially exposed{through}\n\n"
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
        if others := self.others():
            out.write("\nUnits of others your lots went into\n")
            for organisation, d, p in others:
                out.write(f"  {organisation.name:<40} {d:>9,} definite {p:>9,} potential\n")


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
