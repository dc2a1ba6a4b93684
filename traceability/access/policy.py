"""Who may trace what: the one answer every interface asks for (DESIGN.md, "Who sees what").

A party may trace what it owns, received or consumed, and what is upstream of its own units; a
regulator what its grants cover (``traceability.access.models``: everything, a jurisdiction, an
investigation; their union), and the operator at the command line anything. Anything else answers
as unknown, so an interface that is refused says "not found", never "forbidden": existence does not
leak.

A regulator reads what its grants cover in full ("a regulator in scope sees all"). A jurisdiction
grant covers a result that reaches the jurisdiction at all, whole: the regulator is asked to judge
where a defect came from and where it went, which the units of its own market alone do not tell,
and the match is one indexed probe of the countries a run stored (``TraceRunCountry``), with no
per-unit filter on any read. A regulator writes nothing in the ledger: it records inquiries (its own
findings, on subjects its grants cover), traces and exports them, and they are its own records,
which no party of the chain sees.

"Consumed" and "upstream of its own units" are one question asked of the forward trace the finding
would start anyway: does anything the subject reaches belong to the party (a lot it made from the
subject, a unit it built or received)? The trace's own reads answer it, set-based: the lots reached,
one existence probe of the reached segments' members for the party's units, and the consignees.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from cells.models import Inspection, Lot
from packs.models import Container, Unit
from suppliers.models import ApiToken, MemberRole, Membership, Organisation, OrganisationRole, Role, Site
from traceability import genealogy
from traceability.access.models import GrantScope, active_all_grants, active_grants
from traceability.core.db import CompiledOnce
from traceability.core.models import Job, JobKind, JobStatus
from traceability.events import queries
from traceability.genealogy import scopes
from traceability.genealogy.models import SegmentMember, SegmentOwner
from traceability.investigations.exports import export_progress
from traceability.investigations.models import Finding, Investigation, TraceRunCountry
from traceability.investigations.selectors import (
    findings_about,
    findings_upstream_of,
    latest_finished_runs,
    runs_reach,
)
from traceability.investigations.services import finding_seeds


@dataclass(frozen=True)
class Actor:
    """Who is asking: the organisation a user acts for and their role in it, a regulator, or the
    operator (a command run without ``--as``, which acts for no organisation and sees everything).

    A regulator writes nothing in the ledger; it sees everything with an active ``all`` grant, and
    with others the ``jurisdictions`` and ``investigation_ids`` they cover
    (``traceability.access.models``); beyond them, what any organisation sees of its own.
    """

    organisation_id: int | None
    member_role: str | None = None
    regulator: bool = False
    operator: bool = False

    records_findings: bool = False
    grants_all: bool = False
    jurisdictions: frozenset[str] = frozenset()
    investigation_ids: frozenset[int] = frozenset()

    @classmethod
    def of(
        cls,
        organisation: Organisation | None,
        member_role: str | None = None,
        *,
        roles: Iterable[str] | None = None,
    ) -> Actor:
        """The actor for a member of ``organisation``; its ``roles`` when the caller has read them
        already (else they are read: a query), and a regulator's grants (a query)."""
        held = frozenset(() if organisation is None else organisation.role_names if roles is None else roles)
        regulator = Role.REGULATOR in held and organisation is not None
        actor = cls(
            organisation_id=organisation.pk if organisation is not None else None,
            member_role=member_role,
            records_findings=bool(held & MAKERS),
        )
        return actor.with_grants() if regulator else actor

    def with_grants(self) -> Actor:
        """This actor as a regulator, holding the grants active now (one query)."""
        if self.organisation_id is None:
            return self
        grants = list(active_grants(self.organisation_id).values_list("scope", "jurisdiction", "investigation_id"))
        return dataclasses.replace(
            self,
            regulator=True,
            grants_all=any(scope == GrantScope.ALL for scope, _, _ in grants),
            jurisdictions=frozenset(j for scope, j, _ in grants if scope == GrantScope.JURISDICTION),
            investigation_ids=frozenset(i for scope, _, i in grants if scope == GrantScope.INVESTIGATION and i),
        )

    @property
    def scoped_regulator(self) -> bool:
        """A regulator whose grants (if any) are narrower than the whole ledger."""
        return self.regulator and not self.sees_all

    @property
    def sees_all(self) -> bool:
        return self.operator or (self.regulator and self.grants_all)

    @property
    def may_write(self) -> bool:
        """QA engineers and organisation admins write; viewers and regulators read."""
        return self.operator or (not self.regulator and self.member_role in (MemberRole.QA, MemberRole.ADMIN))

    @property
    def opens_findings(self) -> bool:
        """Makers record findings on what they make; a regulator records inquiries (``Finding.inquiry``)."""
        return self.records_findings or self.regulator

    @property
    def may_inquire(self) -> bool:
        """A regulator's QA engineers and admins record its inquiries, trace and export them."""
        return self.regulator and self.member_role in (MemberRole.QA, MemberRole.ADMIN)

    def owns(self, owner_id: int | None) -> bool:
        return self.organisation_id is not None and owner_id == self.organisation_id


# Who makes what the ledger traces records findings on it; distributors and carriers are told of
# findings, regulators open inquiries (their own kind of finding: ``Finding.inquiry``).
MAKERS = frozenset({Role.MATERIAL_SUPPLIER, Role.CELL_MAKER, Role.MODULE_ASSEMBLER, Role.BRAND})


def caller_annotations(organisation_id: str) -> dict[str, Exists]:
    """What the policy needs to know of the organisation at ``organisation_id`` (a path from the
    queried model), as annotations of the query that finds the membership: no second query."""
    held = OrganisationRole.objects.filter(organisation_id=OuterRef(organisation_id))
    return {
        "caller_regulator": Exists(held.filter(role=Role.REGULATOR)),
        "caller_records_findings": Exists(held.filter(role__in=MAKERS)),
        "caller_grants_all": Exists(active_all_grants(OuterRef(organisation_id))),
    }


CALLER_FLAGS = ("caller_regulator", "caller_records_findings", "caller_grants_all")

# What a token's sign-in reads, in this order: the token, its membership, the member and the
# organisation, each model's concrete fields as ``Model.from_db`` takes them, then ``CALLER_FLAGS``.
_SIGNED_IN: tuple[tuple[type[Model], str], ...] = (
    (ApiToken, ""),
    (Membership, "membership__"),
    (Membership.user.field.related_model, "membership__user__"),
    (Organisation, "membership__organisation__"),
)
_TOKEN_SIGN_IN = CompiledOnce(
    lambda key_hash: (
        ApiToken.objects.filter(key_hash=key_hash)
        .annotate(**caller_annotations("membership__organisation_id"))
        .order_by()
        .values_list(*(c for model, prefix in _SIGNED_IN for c in CompiledOnce.columns(model, prefix)), *CALLER_FLAGS)
    )
)


def token_signing_in(key_hash: str) -> ApiToken | None:
    """The API token whose key has ``key_hash``, with its membership, user and organisation read
    with it, and what ``caller_annotations`` tells of the organisation as its attributes: one
    statement, prepared once per connection (it runs on every token-authenticated request). Whether
    the token is revoked, expired or its user inactive is the caller's to judge, on every request:
    nothing here is kept between them. None when no token has the hash."""
    rows = _TOKEN_SIGN_IN.rows(key_hash)
    if not rows:
        return None
    row, at, read = rows[0], 0, []
    for model, _ in _SIGNED_IN:
        width = len(model._meta.concrete_fields)
        read.append(CompiledOnce.instance(model, row[at : at + width]))
        at += width
    token, membership, user, organisation = read
    assert isinstance(token, ApiToken) and isinstance(membership, Membership)
    assert isinstance(user, User) and isinstance(organisation, Organisation)
    membership.user, membership.organisation, token.membership = user, organisation, membership
    for flag, value in zip(CALLER_FLAGS, row[at:], strict=True):
        setattr(token, flag, value)
    return token


OPERATOR = Actor(organisation_id=None, operator=True, records_findings=True)


def operates_deployment(user: object) -> bool:
    """Whether a web user is one of the deployment's operators (an active superuser, as the audit
    trail's admin pages ask), who may read how it runs: ``/health/``'s details, for one."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def subject_traceable(
    actor: Actor, subject: Lot | Unit | Organisation | Site, *, lot_ids: Iterable[int] | None = None
) -> bool:
    """Whether ``actor`` may open an investigation of ``subject``: a lot or unit it may trace; all
    lots of a supplier or a site when it may trace at least one of them (``lot_ids``: the lots the
    finding would trace, those of its production window; else every lot of the supplier or site).

    A supplier or a site is a party of the directory, but which lots it made, and where they went,
    are the ledger's: a party that may trace none of them is answered as for an unknown subject,
    whether the supplier has lots or not (what the trace then finds is shown as ``result_scope``
    says: the actor's own units, and counts of others only where its own lots went).
    """
    return subject_check(actor, subject, lot_ids=lot_ids).allowed


@dataclass(frozen=True)
class SubjectCheck:
    """``subject_traceable``'s answer, with the forward trace of the subject it made to reach it
    (when it made one: a lot or unit the actor does not own; a supplier's or site's lots, none of
    them the actor's; the subject a regulator's jurisdiction grant was asked about), which recording
    the finding then counts its preview from instead of tracing the subject again."""

    allowed: bool
    forward: genealogy.Forward | None = None


def subject_check(
    actor: Actor, subject: Lot | Unit | Organisation | Site, *, lot_ids: Iterable[int] | None = None
) -> SubjectCheck:
    """``subject_traceable``, keeping the subject's trace it made (``SubjectCheck``)."""
    if actor.scoped_regulator:
        if lot_ids is not None and isinstance(subject, Organisation | Site):
            lot_ids = list(lot_ids)
            if not lot_ids:  # none in the window: answered as outside the grants, not as "has none here"
                return SubjectCheck(False)
        return _grants_checked(actor, subject, lot_ids=lot_ids)
    match subject:
        case Lot():
            return _traces_checked(actor, lots=[subject.pk], units=[])
        case Unit():
            return _traces_checked(actor, lots=[], units=[subject.pk])
    if lot_ids is None and not actor.sees_all:
        lot_ids = _lots_of(subject).values_list("pk", flat=True)
    return _any_checked(actor, lot_ids=lot_ids or ())


def _lots_of(subject: Organisation | Site) -> QuerySet[Lot]:
    return Lot.objects.filter(owner=subject) if isinstance(subject, Organisation) else Lot.objects.filter(site=subject)


def inspections_citable(actor: Actor, ids: Iterable[int]) -> frozenset[int]:
    """Which of these inspections ``actor`` may cite in a finding: those it made, and those of a lot
    it may trace (``subject_traceable``: a supplier's inspection of a lot the actor consumed, say).
    Another's inspection of a lot it may not trace is answered as one that does not exist: citing it
    would show its results to the finding's readers, and the answer would tell that it exists. One
    query, then one check per foreign lot (a finding cites a few)."""
    rows = list(Inspection.objects.filter(pk__in=list(ids)).values_list("pk", "owner_id", "lot_id"))
    if actor.sees_all:
        return frozenset(pk for pk, _, _ in rows)
    own = actor.organisation_id
    foreign = {lot for _, owner, lot in rows if owner != own}
    traceable = {lot.pk for lot in Lot.objects.filter(pk__in=sorted(foreign)) if subject_traceable(actor, lot)}
    return frozenset(pk for pk, owner, lot in rows if owner == own or lot in traceable)


def any_traceable(actor: Actor, *, lot_ids: Iterable[int]) -> bool:
    """Whether ``actor`` may trace at least one of these lots (``trace_allowed`` of one of them).

    One query for those it owns, then one forward trace of them all: what a set of lots reaches
    is what each of them reaches, together, so the set reaches something of the actor's exactly
    when one of its lots does. A supplier's hundreds of lots cost one trace, not one each.
    """
    return _any_checked(actor, lot_ids=lot_ids).allowed


def _any_checked(actor: Actor, *, lot_ids: Iterable[int]) -> SubjectCheck:
    """``any_traceable``, with the trace of the lots it made (when it made one: none is the actor's),
    which a finding on them then counts its preview from."""
    lots = frozenset(lot_ids)
    if actor.sees_all:
        return SubjectCheck(True)
    if actor.organisation_id is None or not lots:
        return SubjectCheck(False)
    if Lot.objects.filter(pk__any=lots, owner_id=actor.organisation_id).exists():
        return SubjectCheck(True)
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=sorted(lots))
    allowed = _reaches_own(actor, forward)
    return SubjectCheck(allowed, forward if allowed else None)


def grants_cover_subject(
    actor: Actor, subject: Lot | Unit | Organisation | Site, *, lot_ids: Iterable[int] | None = None
) -> bool:
    """Whether a regulator's grants cover ``subject``, on which it may then open an inquiry.

    An investigation grant covers that investigation's own subject (the same lot, unit, supplier or
    site: one query); a jurisdiction grant a subject whose forward trace reaches units sold into it
    (the trace and its consignees, set-based; for a supplier or site, of ``lot_ids`` when given: the
    lots of the finding's window, else all its lots). An ``all`` grant covers everything.
    """
    return _grants_checked(actor, subject, lot_ids=lot_ids).allowed


def _grants_checked(
    actor: Actor, subject: Lot | Unit | Organisation | Site, *, lot_ids: Iterable[int] | None = None
) -> SubjectCheck:
    """``grants_cover_subject``, with the trace of the subject it made for a jurisdiction grant (when
    it covers the subject), which the inquiry then counts its preview from: a supplier's hundreds of
    lots are walked once in the request, not once to judge and again to count."""
    if actor.sees_all:
        return SubjectCheck(True)
    if not actor.regulator:
        return SubjectCheck(False)
    if actor.investigation_ids and _granted_findings(actor).filter(**_same_subject(subject)).exists():
        return SubjectCheck(True)
    if not actor.jurisdictions:
        return SubjectCheck(False)
    match subject:
        case Lot():
            seeds: tuple[list[int], list[int]] = ([subject.pk], [])
        case Unit():
            seeds = ([], [subject.pk])
        case Organisation() | Site():
            lots = _lots_of(subject).values_list("pk", flat=True) if lot_ids is None else lot_ids
            seeds = (list(lots), [])
    if not (seeds[0] or seeds[1]):
        return SubjectCheck(False)
    forward = genealogy.forward_trace(
        snapshot=genealogy.ledger_snapshot(), seed_lot_ids=seeds[0], seed_unit_ids=seeds[1]
    )
    allowed = reaches_jurisdiction(actor, forward)
    return SubjectCheck(allowed, forward if allowed else None)


def reaches_jurisdiction(actor: Actor, forward: genealogy.Forward) -> bool:
    """Whether a trace's units were sold into one of the actor's jurisdictions."""
    if not actor.jurisdictions:
        return False
    return bool(genealogy.consignee_countries(genealogy.consignees(forward)) & actor.jurisdictions)


def _granted_findings(actor: Actor) -> QuerySet[Finding]:
    return Finding.objects.filter(investigation__pk__in=sorted(actor.investigation_ids))


def _same_subject(subject: Lot | Unit | Organisation | Site) -> dict[str, object]:
    match subject:
        case Lot():
            return {"subject_lot": subject}
        case Unit():
            return {"subject_unit": subject}
        case Organisation():
            return {"subject_organisation": subject}
    return {"subject_site": subject}


def trace_allowed(actor: Actor, *, lot_ids: Iterable[int] = (), unit_ids: Iterable[int] = ()) -> bool:
    """Whether ``actor`` may trace forward from these lots and units (all of them).

    Each seed must be the actor's own, or reach (at the ledger's head) something the actor owns or
    received: a lot it made from it, a unit it built from it, a unit shipped to it (the seed unit
    itself included).
    """
    return _traces_checked(actor, lots=sorted(set(lot_ids)), units=sorted(set(unit_ids))).allowed


def _traces_checked(actor: Actor, *, lots: list[int], units: list[int]) -> SubjectCheck:
    """``trace_allowed``, with the trace it made of a single seed (``SubjectCheck.forward``)."""
    if actor.sees_all:
        return SubjectCheck(True)
    if actor.organisation_id is None or not (lots or units):
        return SubjectCheck(False)
    org = actor.organisation_id
    owned_lots = set(Lot.objects.filter(pk__any=frozenset(lots), owner_id=org).values_list("pk", flat=True))
    owned_units = set(Unit.objects.filter(pk__any=frozenset(units), owner_id=org).values_list("pk", flat=True))
    snapshot = genealogy.ledger_snapshot()
    forward = None
    for lot in (lot for lot in lots if lot not in owned_lots):
        forward = genealogy.forward_trace(snapshot=snapshot, seed_lot_ids=[lot])
        if not _reaches_own(actor, forward):
            return SubjectCheck(False)
    for unit in (unit for unit in units if unit not in owned_units):
        forward = genealogy.forward_trace(snapshot=snapshot, seed_unit_ids=[unit])
        if not _reaches_own(actor, forward, seed_unit=unit):
            return SubjectCheck(False)
    return SubjectCheck(True, forward if len(lots) + len(units) == 1 else None)


def upstream_traceable(actor: Actor, subject: Lot | Unit) -> bool:
    """Whether ``actor`` may trace backward from ``subject``: a lot or unit it owns, or a unit shipped
    to it (the units ``unit_find`` lets it look up); a regulator what its grants cover (an
    investigation's subject and what its latest finished run reached; a jurisdiction's units and
    what is upstream of them); a regulator seeing all and the operator anything. What is upstream
    of a party's own things is its to know; upstream of another's is that one's."""
    if actor.sees_all:
        return True
    if actor.organisation_id is None:
        return False
    if actor.owns(subject.owner_id):
        return True
    # an investigation's subject and what its run reached (what its EPCIS reader names): no trace once it finished
    if (reach := _granted_reach(actor)) is not None and (
        subject.pk in reach.lots if isinstance(subject, Lot) else reach.units.filter(pk=subject.pk).exists()
    ):
        return True
    if actor.jurisdictions:  # a unit sold into its jurisdiction, and what is upstream of such units
        if isinstance(subject, Unit):
            return genealogy.unit_shipped(subject.pk, genealogy.into_countries(actor.jurisdictions))
        forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[subject.pk])
        return reaches_jurisdiction(actor, forward)
    # Asked of the one unit, walking up its packing: not of every shipment the party received.
    return isinstance(subject, Unit) and genealogy.unit_shipped(
        subject.pk, genealogy.to_organisation(actor.organisation_id)
    )


def _reaches_own(actor: Actor, forward: genealogy.Forward, *, seed_unit: int | None = None) -> bool:
    org = actor.organisation_id
    downstream_lots = forward.lots.keys()
    if downstream_lots and Lot.objects.filter(pk__any=frozenset(downstream_lots), owner_id=org).exists():
        return True  # it made a lot from the subject
    # Only segments holding its units can answer: those with a party roll-up row of it, mixed ones
    # too (one index probe each); their members are then asked, so a retracted record does not count.
    segments = frozenset(forward.segment_ids())
    candidates = frozenset(
        SegmentOwner.objects.filter(owner_id=org, segment_id__any=segments).values_list("segment_id", flat=True)
        if segments
        else ()
    )
    if (
        candidates
        and SegmentMember.objects.filter(
            forward.snapshot.valid(), segment_id__any=candidates, unit__owner_id=org
        ).exists()
    ):
        return True  # it built a unit from the subject
    reached_units = forward.units.keys() - {seed_unit}
    if reached_units and Unit.objects.filter(pk__any=frozenset(reached_units), owner_id=org).exists():
        return True  # it rebuilt a unit from the subject
    # received one: the consignees through the shipments it sent or received only
    return any(consignee.organisation_id == org for consignee in genealogy.consignees(forward, party_id=org))


# --- what a result shows whom ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResultScope:
    """What one party may see of a trace result.

    ``full``: everything (a regulator, the operator). Otherwise the units the party owns or received
    are shown in full (``units_shown``, counted in ``view``); the units of others that its own lots
    went into (it supplied them, directly or through what it made) are counted per organisation
    (``view.others``); anything else is not there at all, not even as a number.
    """

    full: bool
    organisation_id: int | None = None
    view: genealogy.PartyView | None = None

    @property
    def others(self) -> tuple[genealogy.OthersCount, ...]:
        return self.view.others if self.view is not None else ()

    def units_shown(self) -> Q:
        """The units shown in full, as a filter on ``Unit``."""
        if self.full:
            return Q()
        if self.organisation_id is None:
            return Q(pk__in=[])
        return genealogy.units_of(self.organisation_id)


FULL = ResultScope(full=True)


def result_scope(actor: Actor, forward: genealogy.Forward | None = None) -> ResultScope:
    """How much of a trace's result ``actor`` may see; with ``forward`` (the result, at its own
    ledger position) the party's counts are read too, and a result reaching a regulator's
    jurisdiction is shown in full."""
    if actor.sees_all or (forward is not None and reaches_jurisdiction(actor, forward)):
        return FULL
    if actor.organisation_id is None:
        return ResultScope(full=False)
    view = genealogy.party_view(forward, actor.organisation_id) if forward is not None else None
    return ResultScope(full=False, organisation_id=actor.organisation_id, view=view)


def downstream_scope(actor: Actor, forward: genealogy.Forward) -> ResultScope:
    """What ``actor`` sees of the forward trace of a lot it may trace (``subject_traceable`` let it
    ask): a regulator whose grants cover the lot in full, as it sees a covered investigation's runs;
    anyone else as ``result_scope`` says."""
    if actor.scoped_regulator:
        return FULL
    return result_scope(actor, forward)


# --- which investigations a regulator's grants cover ------------------------------------------------


def investigations_covered(actor: Actor) -> Q:
    """The investigations a scoped regulator's grants cover, as a condition on ``Investigation``:
    those granted; those with a run whose units were sold into a granted jurisdiction (another
    regulator's inquiries apart: they are that regulator's); and its own inquiries on the subject of
    a granted investigation. Nothing for anyone else (``sees_all`` covers everything)."""
    nothing = Q(pk__in=[])
    if not actor.scoped_regulator or actor.organisation_id is None:
        return nothing
    covered = nothing
    if actor.investigation_ids:
        ids = sorted(actor.investigation_ids)
        granted = _granted_findings(actor)
        same_subject = (
            Q(finding__subject_lot__in=granted.values("subject_lot"))
            | Q(finding__subject_unit__in=granted.values("subject_unit"))
            | Q(finding__subject_organisation__in=granted.values("subject_organisation"))
            | Q(finding__subject_site__in=granted.values("subject_site"))
        )
        covered |= Q(pk__in=ids) | (Q(owner_id=actor.organisation_id, finding__inquiry=True) & same_subject)
    if actor.jurisdictions:
        reached = TraceRunCountry.objects.filter(
            run__investigation_id=OuterRef("pk"), country__in=sorted(actor.jurisdictions)
        )
        covered |= Q(Exists(reached)) & (Q(finding__inquiry=False) | Q(owner_id=actor.organisation_id))
    return covered


def investigations_readable(actor: Actor) -> Q:
    """The investigations ``actor`` reads, as a condition on ``Investigation``: its own, and those its
    grants cover."""
    if actor.sees_all:
        return Q()
    if actor.organisation_id is None:
        return Q(pk__in=[])
    return Q(owner_id=actor.organisation_id) | investigations_covered(actor)


def readable_through_investigation(actor: Actor, *, owner: str, investigation: str) -> Q:
    """``investigations_readable`` from another model: ``owner`` is the path to the investigation's
    owner, ``investigation`` the path to the investigation (``"investigation"`` from a finding or a
    run). The owner's condition is kept apart, so a party's own rows need no subquery."""
    if actor.sees_all:
        return Q()
    if actor.organisation_id is None:
        return Q(pk__in=[])
    own = Q(**{owner: actor.organisation_id})
    if not actor.scoped_regulator:
        return own
    return own | Q(**{f"{investigation}__in": Investigation.objects.filter(investigations_covered(actor)).values("pk")})


def investigation_scope(actor: Actor, investigation: Investigation) -> ResultScope:
    """How much of ``investigation``'s results ``actor`` sees (``investigation_scopes``)."""
    return investigation_scopes(actor, [investigation.pk])[investigation.pk]


def investigation_scopes(actor: Actor, investigation_ids: Iterable[int]) -> dict[int, ResultScope]:
    """How much of each investigation's results ``actor`` sees, by id: in full when its grants
    cover it (one query for them all, for a scoped regulator only); else as ``result_scope`` says."""
    ids = sorted(set(investigation_ids))
    covered: set[int] = set()
    if actor.scoped_regulator and ids:
        covered = set(
            Investigation.objects.filter(investigations_covered(actor), pk__in=ids).values_list("pk", flat=True)
        )
    scope = result_scope(actor)
    return {pk: FULL if pk in covered else scope for pk in ids}


def units_readable(actor: Actor) -> Q:
    """The units ``actor`` sees in full, as a condition on ``Unit``: its own and those it received
    (as ``genealogy.units_of``), and for a regulator those sold into its jurisdictions (all of them
    with an ``all`` grant). Subqueries only: building it reads nothing of the party's shipments."""
    if actor.sees_all:
        return Q()
    if actor.organisation_id is None:
        return Q(pk__in=[])
    shipments = genealogy.to_organisation(actor.organisation_id)
    if actor.jurisdictions:
        shipments |= genealogy.into_countries(actor.jurisdictions)
    return Q(owner_id=actor.organisation_id) | genealogy.shipped_units(shipments)


# --- which events the EPCIS query interface answers whom ------------------------------------------------


def event_reader(actor: Actor, organisation: Organisation) -> queries.Reader | None:
    """Who reads which EPCIS events (``events.queries.readable_events``), asked once per request:
    None for one who sees every event whole (a regulator with an ``all`` grant); else a reader of
    the events its organisation captured, and of the part of others' events that names what it may
    see: what it owns or received, and for a regulator what its grants cover
    (``granted_identifiers``).
    """
    if actor.sees_all:
        return None
    reader = queries.reader_of(organisation)
    if actor.scoped_regulator and (granted := granted_identifiers(actor)) is not None:
        return dataclasses.replace(reader, its_own=reader.its_own | granted)
    return reader


def granted_identifiers(actor: Actor) -> Q | None:
    """The lots, units and containers a scoped regulator's grants cover, as a condition on EPCIS
    identifier index rows (``EpcisEventEpc``, correlated on ``epc``); None when they cover none.

    A jurisdiction grant: the units sold into it, the lots upstream of them, and the containers
    shipped into it (what its shipping events name). An investigation grant: the investigation's
    subject, and what its latest finished run reached (lots, units, and the containers those units
    were packed in; ``_granted_reach``). Set-based: units stay subqueries; a fixed number of queries
    per grant, at most one forward trace, of every granted investigation's subject with no finished
    run together, none per event.
    """
    named = OuterRef("epc")
    snapshot = genealogy.ledger_snapshot()
    units: list[Q] = []
    lots: set[int] = set()
    containers: set[int] = set()
    if actor.jurisdictions:
        sold = genealogy.units_sold_into(actor.jurisdictions)
        units.append(Q(pk__in=sold.values("pk")))
        lots |= scopes.lots_upstream_of(sold, snapshot=snapshot)
        containers |= scopes.containers_shipped_into(actor.jurisdictions)
    if (reach := _granted_reach(actor, snapshot)) is not None:
        lots |= reach.lots
        units.append(Q(pk__in=reach.units.values("pk")))
        containers |= scopes.containers_holding(reach.units)
    covered = [
        Q(Exists(Unit.objects.filter(functools.reduce(operator.or_, units), identity=named))) if units else None,
        Q(Exists(Lot.objects.filter(pk__any=frozenset(lots), identity=named))) if lots else None,
        Q(Exists(Container.objects.filter(pk__any=frozenset(containers), identity=named))) if containers else None,
    ]
    present = [condition for condition in covered if condition is not None]
    return functools.reduce(operator.or_, present) if present else None


@dataclass(frozen=True)
class GrantedReach:
    """What a regulator's investigation grants reach: each granted investigation's subject and what
    its latest finished run reached, or, for one with no finished run, what its forward trace
    reaches now (``lots``: ids; ``units``: a query, never loaded)."""

    lots: frozenset[int]
    units: QuerySet[Unit]


def _granted_reach(actor: Actor, snapshot: genealogy.Snapshot | None = None) -> GrantedReach | None:
    """``GrantedReach`` of ``actor``'s investigation grants, None when it holds none (or their
    subjects name nothing); what is traced is traced at ``snapshot`` (read when needed: the ledger's
    head).

    A finished run already knows what it reached: read from what it stored (``runs_reach``), the
    lookups of a regulator granted a million-unit investigation trace nothing (the trace took
    ~35 ms a request). Only the investigations with no finished run are traced, from their
    subjects, at once: what several subjects reach together is what each reaches."""
    if not actor.investigation_ids:
        return None
    runs = latest_finished_runs(investigation_ids=actor.investigation_ids)
    stored = runs_reach(runs)
    seed_lots: set[int] = set()
    seed_units: set[int] = set()
    untraced = _granted_findings(actor).exclude(investigation__pk__in=[run.investigation_id for run in runs])
    for finding in untraced.order_by("pk"):
        lot_ids, unit_ids = finding_seeds(finding)
        seed_lots |= set(lot_ids)
        seed_units |= set(unit_ids)
    named = any(run.seed_lot_ids or run.seed_unit_ids for run in runs)
    if not (named or seed_lots or seed_units):
        return None
    if not (seed_lots or seed_units):
        return GrantedReach(lots=stored.lots, units=Unit.objects.filter(stored.units))
    forward = genealogy.forward_trace(
        snapshot=snapshot or genealogy.ledger_snapshot(),
        seed_lot_ids=sorted(seed_lots),
        seed_unit_ids=sorted(seed_units),
    )
    traced = Q(pk__in=genealogy.forward_unit_ids(forward)) | Q(pk__any=frozenset(forward.units.keys() | seed_units))
    return GrantedReach(
        lots=frozenset(stored.lots | seed_lots | forward.lots.keys()), units=Unit.objects.filter(stored.units | traced)
    )


# --- findings: who reads them, and how much ---------------------------------------------------------


def findings_readable(actor: Actor) -> Q:
    """The findings ``actor`` may read, as a condition on ``Finding``: its own and those of the
    investigations its grants cover (``readable_through_investigation``), and those others recorded
    about its lots (``findings_told``, which never tells a regulator's inquiry: read-only, as
    ``finding_read_in_full`` says); a regulator with an ``all`` grant and the operator, every
    finding."""
    readable = readable_through_investigation(actor, owner="owner_id", investigation="investigation")
    if actor.sees_all or actor.organisation_id is None or actor.regulator:
        return readable
    return readable | findings_told(actor.organisation_id)


def finding_read_in_full(actor: Actor, owner_id: int) -> bool:
    """Whether ``actor`` reads a finding whole: the recorder, a regulator (it reads a finding only
    through a grant that covers it), the operator.

    A party told of a finding about its lots reads what it must act on: the subject, the defect
    (category, severity, description), the window, the investigation's status, and its own share of
    the result (``result_scope``). What the recorder gathered stays the recorder's: who recorded it
    and who raised it, its attachments, the inspections it cites, and its investigation (the impact
    preview, the status history with its notes, the runs and exports).
    """
    return actor.sees_all or actor.regulator or actor.owns(owner_id)


def findings_concerning(actor: Actor) -> Q:
    """The findings others recorded about ``actor``'s lots (``findings_told``), as a condition on
    ``Finding``: what a supplier's portal lists, each with its share as its run stored it. Nothing
    for a regulator (it is told of no finding: it reads those its grants cover) or the operator."""
    if actor.organisation_id is None or actor.regulator:
        return Q(pk__in=[])
    return findings_told(actor.organisation_id)


def findings_told(organisation_id: int, *, within: Q | None = None) -> Q:
    """The findings (``within`` these) that concern ``organisation_id``'s lots, as a condition on
    ``Finding``: the one definition of whom a finding concerns, asked by its listing
    (``findings_concerning``, ``findings_readable``) and by its 8D response (``investigation_concerns``),
    so a supplier that may respond to a finding is listed it, and one that is listed it may respond.

    Its lot, unit, site or itself is the subject, or a run reached units through one of its lots
    (``findings_about``: subqueries); or one of its lots is upstream of the subject (the material
    lot a finding on a cell lot was made from: where a contamination may have come from;
    ``findings_upstream_of``, a fixed number of queries). Never its own, never a regulator's inquiry."""
    upstream = findings_upstream_of(organisation_id, within=within)
    return findings_about(organisation_id) | Q(pk__in=sorted(upstream))


# --- an organisation's memberships ---------------------------------------------------------------------


def members_counted(actor: Actor, organisation_id: int) -> bool:
    """Whether ``actor`` reads how many members ``organisation_id`` has in each role: its own
    members, the operator and a regulator who sees all. Who they are is no one's to list; and how
    many QA engineers and admins a party has tells its size and how it runs its quality work, which
    no other party needs to trace a defect (the directory's facts are its sites and certificates)."""
    return actor.sees_all or actor.owns(organisation_id)


# --- suppliers' 8D responses to investigations -------------------------------------------------------


class ResponseAccess(enum.Enum):
    """What one reader may do with the suppliers' responses to one investigation."""

    NONE = "none"  # answered as for an unknown investigation
    OWN = "own"  # a supplier the investigation concerns: its own response, to read and revise
    ALL = "all"  # the investigation's owner, a regulator whose grants cover it, the operator: every one, to read

    def shown(self, actor: Actor) -> Q:
        """The responses shown, as a condition on ``SupplierResponse``."""
        if self is ResponseAccess.ALL:
            return Q()
        if self is ResponseAccess.OWN and actor.organisation_id is not None:
            return Q(owner_id=actor.organisation_id)
        return Q(pk__in=[])


def response_access(actor: Actor, investigation: Investigation) -> ResponseAccess:
    """Who reads and writes the suppliers' 8D responses to ``investigation``.

    Its owner reads every response, as does a regulator whose grants cover the investigation
    (``investigations_covered``: one query) and the operator; none of them responds. A party the
    investigation concerns (``investigation_concerns``) reads and revises its own response and sees
    no other's. Anyone else is answered as for an investigation that does not exist.
    """
    if actor.sees_all or actor.owns(investigation.owner_id):
        return ResponseAccess.ALL
    if actor.organisation_id is None:
        return ResponseAccess.NONE
    if actor.regulator:
        covered = Investigation.objects.filter(investigations_covered(actor), pk=investigation.pk).exists()
        return ResponseAccess.ALL if covered else ResponseAccess.NONE
    if investigation_concerns(actor.organisation_id, investigation):
        return ResponseAccess.OWN
    return ResponseAccess.NONE


def investigation_concerns(organisation_id: int, investigation: Investigation) -> bool:
    """Whether ``investigation`` concerns ``organisation_id``'s lots: its finding is one it is told
    of (``findings_told``, asked of this finding alone). A regulator's inquiry concerns no party."""
    finding = investigation.finding
    if finding.inquiry or finding.owner_id == organisation_id:
        return False
    within = Q(pk=finding.pk)
    return Finding.objects.filter(findings_told(organisation_id, within=within), within).exists()


# --- lots' inspections and certificates of analysis ---------------------------------------------------


def lot_inspections_readable(actor: Actor, lot: Lot) -> bool:
    """Whether ``actor`` reads the inspections a lot's owner recorded of it, with their values and
    documents: the owner, and a regulator with an ``all`` grant or the operator. Others read what
    the lot's upstream read model shows them (``genealogy.upstream_read``) and nothing here."""
    return actor.sees_all or actor.owns(lot.owner_id)


def lot_writable(actor: Actor, lot: Lot) -> bool:
    """Whether ``actor`` records inspection results and certificates of analysis on ``lot``: its
    owner's QA engineers and admins (``Actor.may_write``); no regulator, no one else."""
    return actor.may_write and actor.owns(lot.owner_id)


# --- the limits of materials' and cell models' lots ----------------------------------------------------


def limits_readable(actor: Actor) -> Q:
    """The materials and cell models whose limits ``actor`` reads on the supplier portal, as a
    condition on ``Material`` or ``CellModel``: its organisation's own, whatever its role (the owner
    writes the limits its lots are held to). Another's are answered as unknown: which properties a
    supplier holds its lots to, and how tightly, is its own."""
    if actor.organisation_id is None:
        return Q(pk__in=[])
    return Q(owner_id=actor.organisation_id)


def limits_writable(actor: Actor, owner_id: int) -> bool:
    """Whether ``actor`` sets the limits of a material or cell model ``owner_id`` owns: the owner's
    QA engineers and admins (``Actor.may_write``), as they record its lots' inspections; no regulator."""
    return actor.may_write and actor.owns(owner_id)


# --- the lots and units a finding's form offers by their code ---------------------------------------


def subjects_offered(actor: Actor) -> Q:
    """The lots and units ``actor`` is offered as it types a finding's subject, as a condition on
    ``Lot`` or ``Unit``: its organisation's own, which it may always trace and which the form finds
    by their bare code (``ledger.selectors.subject_find`` reads a bare code among the caller's own).
    Another's are never offered, whatever the caller may trace of them: an offer for a prefix would
    tell which codes another organisation uses; those are named by their URN or Digital Link."""
    if actor.organisation_id is None:
        return Q(pk__in=[])
    return Q(owner_id=actor.organisation_id)


# --- the lots and units found by their bare code ------------------------------------------------------


def codes_readable(actor: Actor) -> tuple[Q, Q]:
    """The units and the lots ``actor`` finds by their bare serial or lot code, as conditions on
    ``Unit`` and on ``Lot``. A party: its own (``ledger.selectors.subject_find`` reads a party's bare
    code among its own: another's code would tell what that one makes; what it received it names by
    URN or Digital Link). A regulator: in every organisation, those its grants let it open: all with
    an ``all`` grant; with a jurisdiction grant the units sold into it (``upstream_traceable``) and
    the lots they were made from (whose trace reaches it, ``grants_cover_subject``); with an
    investigation grant the units its trace reaches and its subject's lot. Set-based: a fixed
    number of queries whatever the ledger holds, none per code found."""
    if actor.sees_all:
        return Q(), Q()
    if actor.organisation_id is None:
        return Q(pk__in=[]), Q(pk__in=[])
    own = Q(owner_id=actor.organisation_id)
    if not actor.regulator:
        return own, own
    units, lots = [own], [own]
    snapshot = genealogy.ledger_snapshot()
    if actor.jurisdictions:
        sold = genealogy.units_sold_into(actor.jurisdictions)
        units.append(Q(pk__in=sold.values("pk")))
        lots.append(Q(pk__any=scopes.lots_upstream_of(sold, snapshot=snapshot)))
    if (reach := _granted_reach(actor, snapshot)) is not None:
        units.append(Q(pk__in=reach.units.values("pk")))
    if actor.investigation_ids:  # a lot is covered as an investigation's own subject (``_same_subject``)
        lots.append(Q(pk__in=_granted_findings(actor).filter(subject_lot__isnull=False).values("subject_lot_id")))
    return functools.reduce(operator.or_, units), functools.reduce(operator.or_, lots)


# --- what a job's figures show whom ----------------------------------------------------------------


def job_progress(job: Job, *, full: bool) -> tuple[int, int | None, str]:
    """(done, total, phase) of ``job`` as a reader is shown them: one who sees results ``full``
    (``ResultScope.full``), or only its part of them.

    A trace run's figures and an export's for no one party (a regulator's) count the whole result,
    every organisation's units: one who sees only its part of results reads those in percent, with
    no count in the phase. A party's export counts what is written for it (``export_progress``);
    captures and imports count the documents of the organisation that sent them.
    """
    if job.kind == JobKind.EXPORT and job.params.get("party") is not None:
        return export_progress(job)
    if full or job.kind not in (JobKind.TRACE_RUN, JobKind.EXPORT):
        return job.done, job.total, job.phase
    finished, started = _PHASES_UNCOUNTED[JobKind(job.kind)]
    return job.percent, 100, finished if job.status == JobStatus.SUCCEEDED else started if job.phase else ""


# A whole-trace job's phase without its figures, (once finished, before).
_PHASES_UNCOUNTED = {JobKind.TRACE_RUN: ("traced", "tracing"), JobKind.EXPORT: ("exported", "exporting")}
