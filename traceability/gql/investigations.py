"""Investigations: what a regulator reads of them from the graph.

What they write (an inquiry, a finding, a move, a run, an export) is in
``traceability.gql.investigation_writes``.

``investigation`` reads one (the caller's own, or one its grants cover: ``investigations_readable``)
with its finding and latest finished run, whose affected units, consignees and breakdown are the
read models REST's run pages render, as the access policy's ``investigation_scope`` lets the
caller see them: a regulator's dashboard in one query.
"""

from __future__ import annotations

from typing import Any

import graphene
from graphene import relay
from graphene.types import generic
from graphql import GraphQLResolveInfo

from cells.models import Inspection as InspectionRow
from suppliers.models import Organisation as OrganisationModel
from traceability import genealogy
from traceability.access.policy import (
    ResultScope,
    finding_read_in_full,
    investigation_scopes,
    investigations_readable,
    readable_through_investigation,
)
from traceability.gql.context import Context, InputError, context_of, pk_of, selected
from traceability.gql.loaders import loader
from traceability.gql.lots import AFFECTED, AffectedUnitConnection, Exposure, Inspection, affected_page
from traceability.gql.paging import after_of, page_size
from traceability.gql.parties import Organisation, organisations_expected, party
from traceability.investigations.models import Finding as FindingModel
from traceability.investigations.models import FindingAttachment as AttachmentModel
from traceability.investigations.models import FindingCategory as CategoryName
from traceability.investigations.models import Investigation as InvestigationModel
from traceability.investigations.models import InvestigationTransition as TransitionModel
from traceability.investigations.models import Severity as SeverityName
from traceability.investigations.models import TraceRun as TraceRunModel
from traceability.investigations.selectors import (
    AffectedConsignee,
    Counted,
    RunDiffShown,
    RunNotFinished,
    findings_latest_runs,
    finished_run_breakdown,
    finished_run_consignees,
    finished_run_part,
    finished_run_result,
    run_require_finished,
    runs_diff_shown,
)

FindingCategory = graphene.Enum.from_enum(CategoryName, description="What kind of defect is suspected.")
Severity = graphene.Enum.from_enum(SeverityName, description="How severe the suspected defect is.")


# --- reading an investigation: the regulator's dashboard ----------------------------------------------


class Attachment(graphene.ObjectType):
    """A file of evidence on a finding, kept as uploaded; fetched from its ``download`` address."""

    name = graphene.String(required=True)
    content_type = graphene.String(required=True)
    size = graphene.Float(required=True, description="Bytes.")
    sha256 = graphene.String(required=True)
    uploaded_at = graphene.DateTime(required=True)
    download = graphene.String(required=True, description="Its address in the REST API (GET with your token).")

    @staticmethod
    def resolve_download(root: AttachmentModel, info: GraphQLResolveInfo) -> str:
        return context_of(info).request.build_absolute_uri(f"/api/v1/findings/{root.finding_id}/attachments/{root.pk}/")


class Transition(graphene.ObjectType):
    """One change of an investigation's status: from what, to what, when, and why."""

    from_status = graphene.String(description="Null for the move that opened it.")
    to_status = graphene.String(required=True)
    at = graphene.DateTime(required=True)
    note = graphene.String(required=True)

    @staticmethod
    def resolve_from_status(root: TransitionModel, info: GraphQLResolveInfo) -> str | None:
        return root.from_status or None


class Finding(graphene.ObjectType):
    """What an investigation is about. Readable with its investigation: by its owner and by a
    regulator whose grants cover it, who read it whole (``finding_read_in_full``)."""

    number = graphene.Int(required=True, description="Its id, as REST's /api/v1/findings/{id}/ names it.")
    category = graphene.NonNull(FindingCategory)
    severity = graphene.NonNull(Severity)
    description = graphene.String(required=True)
    inquiry = graphene.Boolean(required=True, description="A regulator's inquiry, not a party's finding.")
    subject = graphene.String(
        required=True, description="The lot or unit's EPC URN, or the supplier's slug or the site's name."
    )
    raised_at = graphene.DateTime(required=True)
    attachments = graphene.List(
        graphene.NonNull(lambda: Attachment), required=True, description="Its evidence files, oldest first."
    )
    inspections = graphene.List(
        graphene.NonNull(Inspection), required=True, description="The inspection results it cites, oldest first."
    )

    @staticmethod
    def resolve_attachments(root: FindingModel, info: GraphQLResolveInfo) -> list[Any]:
        if not finding_read_in_full(context_of(info).actor, root.owner_id):
            return []  # the recorder's evidence, not shown to a party told of the finding
        return loader(context_of(info), _attachments_of).load(root.pk) or []

    @staticmethod
    def resolve_inspections(root: FindingModel, info: GraphQLResolveInfo) -> list[Any]:
        if not finding_read_in_full(context_of(info).actor, root.owner_id):
            return []
        return loader(context_of(info), _inspections_cited).load(root.pk) or []

    @staticmethod
    def resolve_number(root: FindingModel, info: GraphQLResolveInfo) -> int:
        return root.pk

    @staticmethod
    def resolve_subject(root: FindingModel, info: GraphQLResolveInfo) -> str:
        context = context_of(info)
        if root.subject_lot is not None:
            return context.epc(root.subject_lot.identity)
        if root.subject_unit is not None:
            return context.epc(root.subject_unit.identity)
        if root.subject_organisation is not None:
            return root.subject_organisation.slug
        return root.subject_site.name if root.subject_site is not None else ""


class GroupCount(graphene.ObjectType):
    """Affected units of one group (a product model, a work order, a site, a production month)."""

    key = graphene.String(description="The model number, work order number, site id or YYYY-MM; null: none.")
    name = graphene.String()
    units = graphene.Int(required=True)
    definite = graphene.Int(required=True)
    potential = graphene.Int(required=True)


class Consignee(graphene.ObjectType):
    """An organisation that received affected units, loose or packed at any depth."""

    organisation = graphene.NonNull(Organisation)
    units = graphene.Int(required=True)
    first_shipped_at = graphene.DateTime(required=True)
    last_shipped_at = graphene.DateTime(required=True)
    ship_to_countries = graphene.List(
        graphene.NonNull(graphene.String),
        required=True,
        description=(
            "ISO 3166-1 alpha-2 codes of the countries of the sites its shipments of affected units were"
            " addressed to, alphabetically; empty when none named a site (or the run was stored before they were kept)."
        ),
    )


class Breakdown(graphene.ObjectType):
    """The affected units counted by group, largest first (those the caller sees)."""

    product_models = graphene.List(graphene.NonNull(GroupCount), required=True)
    work_orders = graphene.List(graphene.NonNull(GroupCount), required=True)
    sites = graphene.List(graphene.NonNull(GroupCount), required=True)
    production_months = graphene.List(graphene.NonNull(GroupCount), required=True)
    consignees = graphene.List(graphene.NonNull(Consignee), required=True)


def _consignee(consignee: AffectedConsignee) -> dict[str, Any]:
    return {
        "organisation": consignee.party,
        "units": consignee.units,
        "first_shipped_at": consignee.first_shipped_at,
        "last_shipped_at": consignee.last_shipped_at,
        "ship_to_countries": sorted(consignee.ship_to_countries),
    }


def _group(counted: Counted, key: Any, name: str | None = None) -> dict[str, Any]:
    return {
        "key": None if key is None else str(key),
        "name": name,
        "units": counted.units,
        "definite": counted.definite,
        "potential": counted.potential,
    }


def run_scope(context: Context, run: TraceRunModel) -> ResultScope:
    """What the caller sees of a run's results: the access policy's ``investigation_scope``, once
    per investigation and request (REST's ``result_scope_of``), a list's in one batch."""
    return loader(context, _scopes).load(run.investigation_id)  # type: ignore[no-any-return]


def run_result(context: Context, run: TraceRunModel) -> genealogy.Forward:
    """A finished run's stored result, read once per request (its units, consignees and breakdown
    are each made from it)."""
    key = ("run-result", run.pk)
    if key not in context.memo:
        context.memo[key] = finished_run_result(run=run)
    return context.memo[key]  # type: ignore[no-any-return]


def run_consignees(context: Context, run: TraceRunModel) -> list[AffectedConsignee]:
    """Who received a finished run's units, as the caller sees them: read once per request (the
    run's consignees and its breakdown's are the same list)."""
    scope = run_scope(context, run)
    key = ("run-consignees", run.pk)
    if key not in context.memo:
        context.memo[key] = finished_run_consignees(
            run=run,
            party_id=None if scope.full else scope.organisation_id,
            result=lambda: run_result(context, run),
        )
    return context.memo[key]  # type: ignore[no-any-return]


def _finished(run: TraceRunModel) -> TraceRunModel:
    try:
        return run_require_finished(run=run)
    except RunNotFinished as refused:
        raise InputError(refused.message, code=refused.code) from None


class TraceRun(graphene.ObjectType):
    """One forward trace of an investigation's subject, at one ledger position. Its counts and
    units are what the caller may see of them (everything, for a regulator in scope)."""

    class Meta:
        interfaces = (relay.Node,)

    number = graphene.Int(required=True, description="Its id, as REST's /api/v1/runs/{id}/ names it.")
    position = graphene.Int(required=True, description="The ledger position traced at.")
    status = graphene.String(required=True, description="Its job's: queued, running, succeeded, failed.")
    percent = graphene.Int(required=True)
    definite_count = graphene.Int(description="Null until the run has finished.")
    potential_count = graphene.Int()
    consignee_count = graphene.Int()
    affected_units = graphene.Field(
        graphene.NonNull(AffectedUnitConnection),
        exposure=Exposure(),
        first=graphene.Int(),
        after=graphene.String(),
        description="The affected units from the run's stored result, a page at a time in unit order.",
    )
    consignees = graphene.List(graphene.NonNull(Consignee), required=True, description="Most units first.")
    breakdown = graphene.NonNull(Breakdown)
    created_at = graphene.DateTime(required=True)
    previous = graphene.Int(description="The number of the run before it, whose result ``diff`` compares.")
    diff = generic.GenericScalar(
        description=(
            "Units added, gone and changed since the previous run, as REST's run shows it to you: null for a"
            " first run and when none of the units that changed is yours to see; its counts null unless you see"
            " the result whole."
        )
    )

    @staticmethod
    def resolve_previous(root: TraceRunModel, info: GraphQLResolveInfo) -> int | None:
        return root.previous_id

    @staticmethod
    def resolve_diff(root: TraceRunModel, info: GraphQLResolveInfo) -> Any:
        context = context_of(info)
        diffs = loader(context, _diffs)
        if root.pk not in diffs.cache:
            context.memo[("run", root.pk)] = root  # the runs the batch shows, as they were read
        shown = diffs.load(root.pk)
        return shown.as_stored() if shown is not None else None

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, TraceRunModel)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> TraceRunModel | None:
        pk = pk_of(id)
        actor = context_of(info).actor
        readable = readable_through_investigation(actor, owner="investigation__owner_id", investigation="investigation")
        runs = TraceRunModel.objects.select_related("job", "investigation").filter(readable)
        return runs.filter(pk=pk).first() if pk is not None else None

    @staticmethod
    def resolve_number(root: TraceRunModel, info: GraphQLResolveInfo) -> int:
        return root.pk

    @staticmethod
    def resolve_status(root: TraceRunModel, info: GraphQLResolveInfo) -> str:
        return root.job.status

    @staticmethod
    def resolve_percent(root: TraceRunModel, info: GraphQLResolveInfo) -> int:
        return root.job.percent

    @staticmethod
    def _counts(root: TraceRunModel, info: GraphQLResolveInfo) -> dict[str, Any] | None:
        """The run's counts as the caller sees them (REST's ``scoped_counts``): its owner's stored
        share unless the caller sees the result in full; None until the run has finished."""
        if root.definite_units is None:
            return None
        if run_scope(context_of(info), root).full or not root.party_view:
            return {
                "definite_units": root.definite_units,
                "potential_units": root.potential_units,
                "consignees": root.consignees,
                "others": [],
            }
        return dict(root.party_view)

    @staticmethod
    def resolve_definite_count(root: TraceRunModel, info: GraphQLResolveInfo) -> int | None:
        counts = TraceRun._counts(root, info)
        return counts["definite_units"] if counts else None

    @staticmethod
    def resolve_potential_count(root: TraceRunModel, info: GraphQLResolveInfo) -> int | None:
        counts = TraceRun._counts(root, info)
        return counts["potential_units"] if counts else None

    @staticmethod
    def resolve_consignee_count(root: TraceRunModel, info: GraphQLResolveInfo) -> int | None:
        counts = TraceRun._counts(root, info)
        return counts["consignees"] if counts else None

    @staticmethod
    def resolve_affected_units(
        root: TraceRunModel,
        info: GraphQLResolveInfo,
        exposure: Any = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Any:
        context = context_of(info)
        size, start = page_size(first), after_of(AFFECTED, after)
        run = _finished(root)
        scope = run_scope(context, run)
        party = None if scope.full else scope.organisation_id
        forward = run_result(context, run) if party is None else finished_run_part(run=run, party_id=party)
        counts = TraceRun._counts(run, info) or {"definite_units": 0, "potential_units": 0, "others": []}
        slugs = [o["organisation"] for o in counts["others"]]
        ids = dict(OrganisationModel.objects.filter(slug__in=slugs).values_list("slug", "pk")) if slugs else {}
        return affected_page(
            context,
            forward=forward,
            scope=scope,
            counts=(counts["definite_units"], counts["potential_units"]),
            others=[(ids[o["organisation"]], o["definite_units"], o["potential_units"]) for o in counts["others"]],
            exposure=getattr(exposure, "value", exposure),
            first=size if selected(info, {"edges", "pageInfo"}) else 0,
            after=start,
        )

    @staticmethod
    def resolve_consignees(root: TraceRunModel, info: GraphQLResolveInfo) -> list[dict[str, Any]]:
        found = run_consignees(context_of(info), _finished(root))
        organisations_expected(context_of(info), (c.party.id for c in found))
        return [_consignee(c) for c in found]

    @staticmethod
    def resolve_breakdown(root: TraceRunModel, info: GraphQLResolveInfo) -> dict[str, Any]:
        context, run = context_of(info), _finished(root)
        scope = run_scope(context, run)
        found = finished_run_breakdown(
            run=run,
            shown=None if scope.full else scope.units_shown(),
            party_id=None if scope.full else scope.organisation_id,
            result=lambda: run_result(context, run),
            consignees=run_consignees(context, run),
        )
        organisations_expected(context_of(info), (c.party.id for c in found.consignees))
        return {
            "product_models": [_group(c, c.model_number, c.name) for c in found.product_models],
            "work_orders": [_group(c, c.number) for c in found.work_orders],
            "sites": [_group(c, c.site_id, c.name) for c in found.sites],
            "production_months": [_group(c, c.month) for c in found.production_months],
            "consignees": [_consignee(c) for c in found.consignees],
        }


def _scopes(context: Context, ids: list[int]) -> dict[int, ResultScope]:
    return investigation_scopes(context.actor, ids)


def _latest_runs(context: Context, finding_ids: list[int]) -> dict[int, TraceRunModel]:
    """Each finding's latest finished run, by finding id."""
    runs = list(findings_latest_runs(finding_ids=finding_ids).select_related("job", "investigation"))
    _diffs_expected(context, runs)
    return {run.investigation.finding_id: run for run in runs}


def _runs_of(context: Context, ids: list[int]) -> dict[int, list[TraceRunModel]]:
    """Each investigation's runs, newest first, by investigation id."""
    found: dict[int, list[TraceRunModel]] = {}
    runs = TraceRunModel.objects.filter(investigation_id__in=ids).select_related("job", "investigation")
    ordered = list(runs.order_by("-created_at", "-pk"))
    _diffs_expected(context, ordered)
    for run in ordered:
        found.setdefault(run.investigation_id, []).append(run)
    return found


def _diffs_expected(context: Context, runs: list[TraceRunModel]) -> None:
    """Runs about to be shown: their diffs are read together (and their investigations' scopes)."""
    for run in runs:
        context.memo[("run", run.pk)] = run
    loader(context, _diffs).expect(run.pk for run in runs)
    loader(context, _scopes).expect(run.investigation_id for run in runs)


def _diffs(context: Context, run_ids: list[int]) -> dict[int, RunDiffShown | None]:
    """Each run's diff as the caller sees it (the domain's ``runs_diff_shown``, the investigation
    page's read): one query for the runs the caller sees alike, whatever their number."""
    runs = [context.memo[("run", pk)] for pk in run_ids]
    scopes = loader(context, _scopes)
    alike: dict[tuple[bool, int | None], tuple[ResultScope, list[TraceRunModel]]] = {}
    for run in runs:
        scope = scopes.load(run.investigation_id) or ResultScope(full=False)
        alike.setdefault((scope.full, scope.organisation_id), (scope, []))[1].append(run)
    found: dict[int, RunDiffShown | None] = {}
    for scope, seen in alike.values():
        found.update(runs_diff_shown(runs=seen, shown=scope.units_shown(), full=scope.full))
    return found


def _transitions_of(context: Context, ids: list[int]) -> dict[int, list[TransitionModel]]:
    found: dict[int, list[TransitionModel]] = {}
    for row in TransitionModel.objects.filter(investigation_id__in=ids).order_by("at", "pk"):
        found.setdefault(row.investigation_id, []).append(row)
    return found


def _attachments_of(context: Context, finding_ids: list[int]) -> dict[int, list[AttachmentModel]]:
    found: dict[int, list[AttachmentModel]] = {}
    for row in AttachmentModel.objects.filter(finding_id__in=finding_ids).order_by("uploaded_at", "pk"):
        found.setdefault(row.finding_id, []).append(row)
    return found


def _inspections_cited(context: Context, finding_ids: list[int]) -> dict[int, list[InspectionRow]]:
    found: dict[int, list[InspectionRow]] = {}
    cited = FindingModel.inspections.through.objects.filter(finding_id__in=finding_ids).select_related("inspection")
    for row in cited.order_by("inspection__inspected_at", "inspection__pk"):
        found.setdefault(row.finding_id, []).append(row.inspection)
    organisations_expected(context, (i.owner_id for held in found.values() for i in held))
    return found


def investigations_expected(context: Context, investigations: list[InvestigationModel]) -> None:
    """A list about to render these investigations: what each shows is read in one batch per relation."""
    ids = [investigation.pk for investigation in investigations]
    findings = [investigation.finding_id for investigation in investigations]
    for batch in (_scopes, _runs_of, _transitions_of):
        loader(context, batch).expect(ids)
    for batch in (_latest_runs, _attachments_of, _inspections_cited):
        loader(context, batch).expect(findings)
    organisations_expected(context, (investigation.owner_id for investigation in investigations))
    findings_read = [investigation.finding for investigation in investigations]
    subjects = [finding.subject_lot or finding.subject_unit for finding in findings_read]
    context.prefix_length.prepare([subject.identity for subject in subjects if subject is not None])


def investigations_of(actor: Any) -> Any:
    """The investigations ``actor`` reads (its own, and those its grants cover), with what an
    investigation's fields show read with them."""
    return InvestigationModel.objects.select_related(
        "owner",
        "finding__subject_lot",
        "finding__subject_unit",
        "finding__subject_organisation",
        "finding__subject_site",
    ).filter(investigations_readable(actor))


class Investigation(graphene.ObjectType):
    """An investigation of a finding: its status and its trace runs. Yours, or one your grants cover."""

    class Meta:
        interfaces = (relay.Node,)

    number = graphene.Int(required=True, description="Its id, as REST's /api/v1/investigations/{id}/ names it.")
    status = graphene.String(required=True)
    opened_at = graphene.DateTime(required=True)
    owner = graphene.NonNull(Organisation)
    finding = graphene.NonNull(Finding)
    latest_run = graphene.Field(TraceRun, description="Its latest run whose trace has finished.")
    runs = graphene.List(graphene.NonNull(TraceRun), required=True, description="Every run, newest first.")
    transitions = graphene.List(
        graphene.NonNull(Transition), required=True, description="Every change of its status, oldest first."
    )

    @staticmethod
    def resolve_runs(root: InvestigationModel, info: GraphQLResolveInfo) -> list[TraceRunModel]:
        return loader(context_of(info), _runs_of).load(root.pk) or []

    @staticmethod
    def resolve_transitions(root: InvestigationModel, info: GraphQLResolveInfo) -> list[TransitionModel]:
        return loader(context_of(info), _transitions_of).load(root.pk) or []

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, InvestigationModel)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> InvestigationModel | None:
        pk = pk_of(id)
        return investigations_of(context_of(info).actor).filter(pk=pk).first() if pk is not None else None

    @staticmethod
    def resolve_number(root: InvestigationModel, info: GraphQLResolveInfo) -> int:
        return root.pk

    @staticmethod
    def resolve_owner(root: InvestigationModel, info: GraphQLResolveInfo) -> Any:
        return party(context_of(info), root.owner_id)

    @staticmethod
    def resolve_latest_run(root: InvestigationModel, info: GraphQLResolveInfo) -> TraceRunModel | None:
        return loader(context_of(info), _latest_runs).load(root.finding_id)


class InvestigationQuery(graphene.ObjectType):
    investigation = graphene.Field(
        Investigation,
        number=graphene.Int(required=True),
        description="An investigation by its id (REST's); null when it is not yours to read.",
    )

    @staticmethod
    def resolve_investigation(root: None, info: GraphQLResolveInfo, number: int) -> InvestigationModel | None:
        if number <= 0:
            return None
        return Investigation.get_node(info, str(number))
