"""What callers write from the graph: inquiries and findings, moves, runs and exports.

Each mutation asks what REST's view for the same write asks, in the same order, and calls the same
service: the caller's credential (``RegulatorsReadOnly``: QA engineers and admins write, regulators
their own inquiries, never with a read-scoped token), then the record (an investigation the caller
may not read is unknown, as REST's 404; one a regulator reads through its grants but does not own
is ``read_only``, as REST's ``require_own``), then the service, whose ``DomainError`` comes back
with its stable code. Every refusal is a typed payload error (Saleor's habit) and changes nothing.

``startInquiry`` (the fixed contract) is a regulator's ``recordFinding`` on a lot or unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import graphene
from graphql import GraphQLResolveInfo
from graphql_relay import from_global_id

from suppliers.models import Organisation as OrganisationModel
from suppliers.models import Site as SiteModel
from traceability.access.permissions import Caller
from traceability.access.policy import inspections_citable, investigation_scope, subject_check
from traceability.core.errors import DomainError
from traceability.core.limits import control_character
from traceability.gql.context import context_of, pk_of
from traceability.gql.investigations import FindingCategory, Investigation, Severity, TraceRun, investigations_of
from traceability.investigations.exports import export_start
from traceability.investigations.models import ExportFormat as ExportFormatName
from traceability.investigations.models import FindingCategory as CategoryName
from traceability.investigations.models import Investigation as InvestigationModel
from traceability.investigations.models import InvestigationStatus
from traceability.investigations.models import Severity as SeverityName
from traceability.investigations.models import TraceRun as TraceRunModel
from traceability.investigations.services import (
    finding_record,
    finding_subject_lots,
    investigation_transition,
    trace_run_start,
)
from traceability.ledger.selectors import SubjectError, subject_find
from traceability.tasks import job_submit

# As REST's text fields (``traceability.api.serializers.TEXT_MAX_LENGTH``): a description is a paragraph.
TEXT_MAX_LENGTH = 20_000
# A finding cites at most this many inspections (REST takes a JSON list; this bounds the lookup).
INSPECTIONS_MAX = 1_000

ExportFormat = graphene.Enum.from_enum(ExportFormatName, description="What an export writes.")


class InvestigationMove(graphene.Enum):
    """Where people move an investigation (tracing and traced are set by its runs)."""

    UNDER_REVIEW = InvestigationStatus.UNDER_REVIEW.value
    CLOSED = InvestigationStatus.CLOSED.value


class MutationError(graphene.ObjectType):
    """Why a mutation was refused: a stable code (the domain's, as REST gives it), a message for
    people, and the argument at fault when one is."""

    code = graphene.String(required=True)
    message = graphene.String(required=True)
    field = graphene.String()


class Refused(Exception):
    """A mutation's refusal, raised where it is found and written once as its payload's errors."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, "field": field}


def _payload(write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``write``'s fields with no errors, or only the errors it was refused with (a domain refusal
    with its code): nothing was written then."""
    try:
        return {**write(), "errors": []}
    except Refused as refused:
        return {"errors": [refused.error]}
    except DomainError as refused:
        return {"errors": [{"code": refused.code, "message": refused.message, "field": refused.field}]}


def _value(member: Any) -> Any:
    """graphene hands an enum argument over as its member: the domain takes its value."""
    return getattr(member, "value", member)


def _may_write(caller: Caller, *, inquiry_writes: bool) -> None:
    """REST's ``RegulatorsReadOnly`` for a write: QA engineers and admins; a regulator's QA engineers
    and admins where the write is on its own inquiry (``inquiry_writes``); never a read-scoped token."""
    if caller.may_write or (inquiry_writes and caller.may_inquire):
        return
    if caller.regulator:
        message = "regulators have read-only access to the ledger"
        if inquiry_writes:
            message = "a regulator's inquiries are written by its QA engineers and admins, with a token of write scope"
    elif caller.read_only_token:
        message = "this API token's scope is read: writes need a token with write scope"
    else:
        message = "your role in your organisation is viewer, which reads only: ask its admin for the QA engineer role"
    raise Refused("read_only", message)


def _text(name: str, value: str, *, blank: bool = False) -> str:
    """A text argument as REST's text fields take it: no control character (a description may hold
    line breaks and tabs), not blank unless ``blank``, at most ``TEXT_MAX_LENGTH`` characters."""
    if found := control_character(value, text=name in ("description", "note")):
        raise Refused("control_character", f"{name} contains the control character U+{ord(found):04X}", name)
    if not blank and not value.strip():
        raise Refused("blank", f"{name} may not be blank", name)
    if len(value) > TEXT_MAX_LENGTH:
        raise Refused("max_length", f"{name} is {len(value):,} characters: at most {TEXT_MAX_LENGTH:,}", name)
    return value


def _subject(caller: Caller, subject: str) -> tuple[Any, Any]:
    """The lot or unit ``subject`` names that the caller may raise a finding on, with the trace its
    check made (the preview counts from it, as REST's does); anything else is answered as an unknown
    subject is (whether it exists is not the caller's to learn)."""
    _text("subject", subject)
    try:
        found = subject_find(subject, owner=caller.organisation)
    except SubjectError as refused:
        raise Refused(refused.code, refused.message, "subject") from None
    check = subject_check(caller.actor, found)
    if not check.allowed:
        raise Refused("unknown_subject", f"no lot or unit is known as {subject.strip()!r}", "subject")
    return found, check.forward


def _named(
    caller: Caller,
    *,
    subject: str | None,
    supplier: str | None,
    site: str | None,
    window_from: dt.datetime | None,
    window_to: dt.datetime | None,
) -> tuple[Any, Any]:
    """The one subject a finding names (a lot or unit, all lots of a supplier, or of a site,
    those of a production window for the last two), checked as REST's ``FindingInput`` and
    findings view check it, with the trace the check made of the subject (None when it made none)."""
    named = {"subject": subject, "supplier": supplier, "site": site}
    given = [name for name, value in named.items() if value is not None]
    if len(given) != 1:
        got = f"; got {', '.join(given)}" if given else ""
        message = f"name exactly one subject: subject (a lot or unit), supplier or site{got}"
        raise Refused("subject_required", message, "subject")
    windowed = [name for name, value in (("windowFrom", window_from), ("windowTo", window_to)) if value is not None]
    if subject is not None:
        if windowed:
            raise Refused(
                "window_not_applicable",
                "a production window narrows a supplier or site subject; a lot or unit is one subject already",
                windowed[0],
            )
        return _subject(caller, subject)
    if window_from is not None and window_to is not None and window_to < window_from:
        raise Refused("invalid_window", "the window ends before it starts", "windowTo")
    party = _supplier(supplier) if supplier is not None else _site(site or "")
    lot_ids = finding_subject_lots(party, window_from=window_from, window_to=window_to)
    check = subject_check(caller.actor, party, lot_ids=lot_ids)
    if not check.allowed:
        # A supplier or site is in the directory; its lots, and whether it has any in the window,
        # are the ledger's: one answer whether it has none or only lots the caller may not trace.
        kind, value = given[0], named[given[0]]
        within = "to be within your grants" if caller.regulator else "to you"
        raise Refused("unknown_subject", f"no lot of {kind} {value!r} is known {within}", kind)
    if lot_ids == []:  # only one who may see every lot gets here and learns that a supplier or site has none
        raise Refused("empty_subject", f"{party} has no lots in the window given", given[0])
    return party, check.forward


def _supplier(slug: str) -> OrganisationModel:
    _text("supplier", slug)
    found = OrganisationModel.objects.filter(slug=slug).first()
    if found is None:
        raise Refused("does_not_exist", f"no organisation is known as {slug!r}", "supplier")
    return found


def _site(global_id: str) -> SiteModel:
    """The site a Relay id (``Site.id``) names."""
    _text("site", global_id)
    kind, pk = from_global_id(global_id)
    found = SiteModel.objects.filter(pk=pk_of(pk)).first() if kind == "Site" and pk_of(pk) is not None else None
    if found is None:
        raise Refused("does_not_exist", f"no site is known as {global_id!r} (pass a Site's id)", "site")
    return found


def _inspections(caller: Caller, ids: list[int] | None) -> list[int]:
    """The inspection ids a finding cites, each one the caller may cite (``inspections_citable``, as
    REST's ``FindingInput.validate_inspections`` asks)."""
    wanted = sorted(set(ids or ()))
    if len(wanted) > INSPECTIONS_MAX:
        raise Refused("too_many", f"a finding cites at most {INSPECTIONS_MAX:,} inspections", "inspections")
    possible = [pk for pk in wanted if 0 < pk <= 2_147_483_647]  # the column's range: past it names none
    known = inspections_citable(caller.actor, possible)
    if missing := [pk for pk in wanted if pk not in known]:
        raise Refused("unknown_inspection", f"no inspection has id {', '.join(map(str, missing))}", "inspections")
    return wanted


def _recorded(caller: Caller, finding: Any) -> dict[str, Any]:
    investigation = finding.investigation
    run = investigation.runs.order_by("-created_at", "-pk").first()
    return {
        "finding_id": finding.pk,
        "investigation_id": investigation.pk,
        "run_id": run.pk if run is not None else None,
        "investigation": _read_back(caller, investigation.pk),
    }


def _read_back(caller: Caller, pk: int) -> InvestigationModel:
    """The investigation as it is after the caller's write (its own), read as the query reads it."""
    return investigations_of(caller.actor).get(pk=pk)  # type: ignore[no-any-return]


def _investigation(caller: Caller, number: int, *, owner_only: bool) -> InvestigationModel:
    """The investigation ``number`` names if the caller reads it (else unknown, as REST's 404) and,
    for a write on its record (``owner_only``), owns it (else ``read_only``, as REST's ``require_own``)."""
    found = investigations_of(caller.actor).filter(pk=number).first() if 0 < number <= 2_147_483_647 else None
    if found is None:
        raise Refused("not_found", f"no investigation is known as #{number}", "investigation")
    if owner_only and not caller.owns(found.owner_id):
        raise Refused(
            "read_only", "regulators read the investigations their grants cover; they write only their own inquiries"
        )
    return found


# --- recording findings and inquiries -----------------------------------------------------------------


class FindingRecordedPayload(graphene.ObjectType):
    """The finding recorded, its investigation opened and its trace run started, or why not
    (``errors``; nothing was recorded then)."""

    finding_id = graphene.ID(description="The finding, as REST's /api/v1/findings/{id}/ names it.")
    investigation_id = graphene.ID(description="Its investigation: /api/v1/investigations/{id}/.")
    run_id = graphene.ID(description="The trace run it started: /api/v1/runs/{id}/.")
    investigation = graphene.Field(Investigation)
    errors = graphene.List(graphene.NonNull(MutationError), required=True)


class StartInquiryPayload(FindingRecordedPayload):
    """The inquiry recorded, or why not (``errors``; nothing was recorded then)."""


def _record(
    info: GraphQLResolveInfo,
    *,
    subject: str | None,
    description: str,
    category: Any,
    severity: Any,
    inspections: list[int] | None,
    inquiry: bool,
    supplier: str | None = None,
    site: str | None = None,
    window_from: dt.datetime | None = None,
    window_to: dt.datetime | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    caller = context.caller
    _may_write(caller, inquiry_writes=True)
    if not caller.actor.opens_findings:
        raise Refused(
            "no_findings",
            "your organisation is told of findings on what it received; those who make lots and units record them",
        )
    _text("description", description)
    found, traced = _named(
        caller, subject=subject, supplier=supplier, site=site, window_from=window_from, window_to=window_to
    )
    finding = finding_record(
        owner=caller.organisation,  # type: ignore[arg-type]  # a caller who writes acts for one
        subject=found,
        category=_value(category) or CategoryName.OTHER,
        severity=_value(severity) or SeverityName.HIGH,
        description=description,
        raised_by=context.request.user,  # type: ignore[arg-type]
        window_from=window_from,
        window_to=window_to,
        inspection_ids=_inspections(caller, inspections),
        inquiry=inquiry,
        traced=traced,  # the check's trace of the subject: not traced again for the preview
        submit=job_submit,
    )
    return _recorded(caller, finding)


class StartInquiry(graphene.Mutation):
    """Record an inquiry on a lot or unit your grants cover: it opens an investigation and traces it.
    For a regulator's QA engineers and admins (not with a read-scoped token)."""

    class Arguments:
        subject = graphene.String(required=True, description="EPC URN or GS1 Digital Link of a lot or unit.")
        description = graphene.String(required=True)
        category = FindingCategory(description="Other unless given.")
        severity = Severity(description="High unless given.")

    Output = StartInquiryPayload

    @staticmethod
    def mutate(
        root: None, info: GraphQLResolveInfo, subject: str, description: str, category: Any = None, severity: Any = None
    ) -> dict[str, Any]:
        caller = context_of(info).caller

        def write() -> dict[str, Any]:
            if not caller.may_inquire:
                if caller.regulator:
                    raise Refused(
                        "read_only",
                        "recording an inquiry takes a QA engineer's or admin's role and a token with write scope",
                    )
                raise Refused(
                    "not_a_regulator",
                    "inquiries are a regulator's: your organisation records findings with recordFinding",
                )
            return _record(
                info,
                subject=subject,
                description=description,
                category=category,
                severity=severity,
                inspections=None,
                inquiry=True,
            )

        return _payload(write)


class RecordFinding(graphene.Mutation):
    """Record a finding (a regulator's is its inquiry) on one subject: a lot or unit you make or
    received, or all lots of a supplier or of a site (those made in a production window, when one is
    given) of which you may trace at least one. It opens an investigation with an impact preview and
    starts its trace run, as ``POST /api/v1/findings/`` does. For QA engineers and admins, with a
    token of write scope."""

    class Arguments:
        subject = graphene.String(description="A lot or unit: EPC URN, GS1 Digital Link, or your lot code or serial.")
        supplier = graphene.String(description="Or all lots of a supplier: its slug.")
        site = graphene.ID(description="Or all lots made at a site: its id (Site.id).")
        window_from = graphene.DateTime(description="A supplier's or site's lots produced from.")
        window_to = graphene.DateTime(description="A supplier's or site's lots produced until.")
        category = FindingCategory(required=True)
        severity = Severity(required=True)
        description = graphene.String(required=True)
        inspections = graphene.List(graphene.NonNull(graphene.Int), description="Ids of the inspections it cites.")

    Output = FindingRecordedPayload

    @staticmethod
    def mutate(
        root: None,
        info: GraphQLResolveInfo,
        category: Any,
        severity: Any,
        description: str,
        subject: str | None = None,
        supplier: str | None = None,
        site: str | None = None,
        window_from: dt.datetime | None = None,
        window_to: dt.datetime | None = None,
        inspections: list[int] | None = None,
    ) -> dict[str, Any]:
        caller = context_of(info).caller
        return _payload(
            lambda: _record(
                info,
                subject=subject,
                supplier=supplier,
                site=site,
                window_from=window_from,
                window_to=window_to,
                description=description,
                category=category,
                severity=severity,
                inspections=inspections,
                inquiry=caller.regulator,
            )
        )


# --- writes on an investigation -----------------------------------------------------------------------


class MoveInvestigationPayload(graphene.ObjectType):
    investigation = graphene.Field(Investigation)
    errors = graphene.List(graphene.NonNull(MutationError), required=True)


class MoveInvestigation(graphene.Mutation):
    """Move your investigation under review, or close it, with a note (REST's
    ``POST /api/v1/investigations/{id}/transitions/``); ``invalid_transition`` when its status does
    not allow the move."""

    class Arguments:
        investigation = graphene.Int(required=True, description="Its number (REST's id).")
        to = InvestigationMove(required=True)
        note = graphene.String(description="Why, for the investigation's history.")

    Output = MoveInvestigationPayload

    @staticmethod
    def mutate(root: None, info: GraphQLResolveInfo, investigation: int, to: Any, note: str | None = None) -> Any:
        context = context_of(info)

        def write() -> dict[str, Any]:
            _may_write(context.caller, inquiry_writes=True)
            found = _investigation(context.caller, investigation, owner_only=True)
            investigation_transition(
                investigation=found,
                to=_value(to),
                by=context.request.user,  # type: ignore[arg-type]
                note=_text("note", note or "", blank=True),
            )
            return {"investigation": _read_back(context.caller, found.pk)}

        return _payload(write)


class StartTracePayload(graphene.ObjectType):
    run = graphene.Field(TraceRun, description="The run started; its job traces in the background.")
    errors = graphene.List(graphene.NonNull(MutationError), required=True)


class StartTrace(graphene.Mutation):
    """Trace your investigation's subject again, at the ledger's current position (REST's
    ``POST /api/v1/investigations/{id}/runs/``): ``trace_in_progress`` while a run of the same
    subject is tracing, ``invalid_transition`` once it is closed."""

    class Arguments:
        investigation = graphene.Int(required=True, description="Its number (REST's id).")

    Output = StartTracePayload

    @staticmethod
    def mutate(root: None, info: GraphQLResolveInfo, investigation: int) -> Any:
        context = context_of(info)

        def write() -> dict[str, Any]:
            _may_write(context.caller, inquiry_writes=True)
            found = _investigation(context.caller, investigation, owner_only=True)
            run = trace_run_start(investigation=found, by=context.request.user, submit=job_submit)  # type: ignore[arg-type]
            return {"run": TraceRunModel.objects.select_related("job", "investigation").get(pk=run.pk)}

        return _payload(write)


class StartExportPayload(graphene.ObjectType):
    job_id = graphene.ID(description="The export's job: follow it at /api/v1/jobs/{id}/ until its download appears.")
    errors = graphene.List(graphene.NonNull(MutationError), required=True)


class StartExport(graphene.Mutation):
    """Export the latest finished run of an investigation you read, in the background, of what you
    see of it (REST's ``POST /api/v1/investigations/{id}/exports/``): ``no_finished_run`` before any
    run has finished. A regulator exports any investigation its grants cover, as its own job."""

    class Arguments:
        investigation = graphene.Int(required=True, description="Its number (REST's id).")
        format = ExportFormat(required=True)

    Output = StartExportPayload

    @staticmethod
    def mutate(root: None, info: GraphQLResolveInfo, investigation: int, format: Any) -> Any:
        context = context_of(info)
        caller = context.caller

        def write() -> dict[str, Any]:
            _may_write(caller, inquiry_writes=True)
            found = _investigation(caller, investigation, owner_only=False)
            scope = investigation_scope(caller.actor, found)
            job = export_start(
                investigation=found,
                format=_value(format),
                by=context.request.user,  # type: ignore[arg-type]
                party_id=None if scope.full else scope.organisation_id,
                requested_for=caller.organisation,
                submit=job_submit,
            )
            return {"job_id": job.pk}

        return _payload(write)


class InvestigationMutation(graphene.ObjectType):
    start_inquiry = StartInquiry.Field()
    record_finding = RecordFinding.Field()
    move_investigation = MoveInvestigation.Field()
    start_trace = StartTrace.Field()
    start_export = StartExport.Field()
