"""Investigations: what a regulator starts from the graph.

``startInquiry`` records a regulator's inquiry (its own kind of finding, ``Finding.inquiry``) on a
lot or unit its grants cover, which opens an investigation and starts its trace run, as REST's
``POST /api/v1/findings/`` does for a regulator. Refusals come back as typed payload errors with the
domain's stable codes (Saleor's habit), and change nothing.
"""

from __future__ import annotations

from typing import Any

import graphene
from graphql import GraphQLResolveInfo

from traceability.access.policy import subject_traceable
from traceability.core.errors import DomainError
from traceability.core.limits import control_character
from traceability.gql.context import context_of
from traceability.investigations.models import FindingCategory as CategoryName
from traceability.investigations.models import Severity as SeverityName
from traceability.investigations.services import finding_record
from traceability.ledger.selectors import SubjectError, subject_find
from traceability.tasks import job_submit

# As REST's text fields (``traceability.api.serializers.TEXT_MAX_LENGTH``): a description is a paragraph.
TEXT_MAX_LENGTH = 20_000

FindingCategory = graphene.Enum.from_enum(CategoryName, description="What kind of defect is suspected.")
Severity = graphene.Enum.from_enum(SeverityName, description="How severe the suspected defect is.")


class MutationError(graphene.ObjectType):
    """Why a mutation was refused: a stable code (the domain's, as REST gives it), a message for
    people, and the argument at fault when one is."""

    code = graphene.String(required=True)
    message = graphene.String(required=True)
    field = graphene.String()


class StartInquiryPayload(graphene.ObjectType):
    """The inquiry recorded, or why not (``errors``; nothing was recorded then)."""

    finding_id = graphene.ID(description="The inquiry's finding, as REST's /api/v1/findings/{id}/ names it.")
    investigation_id = graphene.ID(description="Its investigation: /api/v1/investigations/{id}/.")
    run_id = graphene.ID(description="The trace run it started: /api/v1/runs/{id}/.")
    errors = graphene.List(graphene.NonNull(MutationError), required=True)


def _refused(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "field": field}]}


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
        root: None,
        info: GraphQLResolveInfo,
        subject: str,
        description: str,
        category: Any = None,
        severity: Any = None,
    ) -> dict[str, Any]:
        context = context_of(info)
        caller = context.caller
        if not caller.may_inquire:
            if caller.regulator:
                return _refused(
                    "read_only",
                    "recording an inquiry takes a QA engineer's or admin's role and a token with write scope",
                )
            return _refused(
                "not_a_regulator",
                "inquiries are a regulator's: your organisation records findings through POST /api/v1/findings/",
            )
        for name, value in (("subject", subject), ("description", description)):
            if found := control_character(value, text=name == "description"):
                return _refused("control_character", f"{name} contains the control character U+{ord(found):04X}", name)
        if not description.strip():
            return _refused("blank", "description may not be blank", "description")
        if len(description) > TEXT_MAX_LENGTH:
            return _refused(
                "max_length",
                f"description is {len(description):,} characters: at most {TEXT_MAX_LENGTH:,}",
                "description",
            )
        try:
            found = subject_find(subject, owner=caller.organisation)
        except SubjectError as refused:
            return _refused(refused.code, refused.message, "subject")
        if not subject_traceable(caller.actor, found):
            # As an unknown subject is answered: whether it exists is not the caller's to learn.
            return _refused("unknown_subject", f"no lot or unit is known as {subject.strip()!r}", "subject")
        try:
            finding = finding_record(
                owner=caller.organisation,  # type: ignore[arg-type]  # a regulator acts for its organisation
                subject=found,
                category=getattr(category, "value", category) or CategoryName.OTHER,
                severity=getattr(severity, "value", severity) or SeverityName.HIGH,
                description=description,
                raised_by=context.request.user,  # type: ignore[arg-type]
                inquiry=True,
                submit=job_submit,
            )
        except DomainError as refused:
            return _refused(refused.code, refused.message, refused.field)
        investigation = finding.investigation
        run = investigation.runs.order_by("-created_at", "-pk").first()
        return {
            "finding_id": finding.pk,
            "investigation_id": investigation.pk,
            "run_id": run.pk if run is not None else None,
            "errors": [],
        }


class InvestigationMutation(graphene.ObjectType):
    start_inquiry = StartInquiry.Field()
