"""Suppliers' 8D responses to the investigations that concern their lots: writes and reads.

A response is revised, never edited: each write appends a whole revision (every step as it reads
after the change, which steps changed, who and when), so the investigation's owner and the
regulators who read it can tell what the supplier said at any time. Who may respond and read is
the access policy's (``access.policy.response_access``); these functions take its answer as given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from suppliers.models import Organisation
from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record
from traceability.core.errors import DomainError
from traceability.investigations.models import (
    EIGHT_D_REQUIRED,
    EIGHT_D_STEPS,
    Investigation,
    ResponseStatus,
    SupplierResponse,
    SupplierResponseRevision,
)

# The fields a revision carries besides its status: the 8D steps and D6's date.
STEP_FIELDS = (*EIGHT_D_STEPS, "implemented_on")


class ResponseRefused(DomainError, ValueError):
    code = "response_refused"


class NothingChanged(ResponseRefused):
    """A revision that would read as the latest does: not appended (the history says what changed)."""

    code = "nothing_changed"


class IncompleteResponse(ResponseRefused):
    """A response submitted with a step from containment to prevention unanswered."""

    code = "incomplete_response"


def response_revise(
    *,
    investigation: Investigation,
    responder: Organisation,
    changes: Mapping[str, Any],
    by: AbstractBaseUser | None = None,
) -> SupplierResponseRevision:
    """Append a revision of ``responder``'s response to ``investigation`` (the first opens it): the
    latest revision's steps with ``changes`` (step name → text, ``implemented_on`` → a date,
    ``status``) applied. The caller has asked the access policy that ``responder`` may respond.

    Refused, appending nothing: ``NothingChanged`` when the changes leave every step as it was;
    ``IncompleteResponse`` when the result is ``submitted`` with a step from D3 to D7 blank.
    Concurrent revisions are serialised on the response's row (locked), so numbers never repeat.
    """
    unknown = set(changes) - {*STEP_FIELDS, "status"}
    assert not unknown, f"not a step of a response: {sorted(unknown)}"  # the interface parsed the input
    for attempt in range(2):
        try:
            return _revise(investigation, responder, changes, by)
        except IntegrityError:  # another request opened the response a moment before: revise that one
            if attempt:
                raise
    raise AssertionError("unreachable")


def _revise(
    investigation: Investigation, responder: Organisation, changes: Mapping[str, Any], by: AbstractBaseUser | None
) -> SupplierResponseRevision:
    now = timezone.now()
    with transaction.atomic(durable=True):
        response = (
            SupplierResponse.objects.select_for_update().filter(investigation=investigation, owner=responder).first()
        )
        latest: dict[str, Any] = {field: "" for field in EIGHT_D_STEPS} | {
            "implemented_on": None,
            "status": ResponseStatus.DRAFT,
        }
        if response is None:
            response = SupplierResponse.objects.create(investigation=investigation, owner=responder, opened_at=now)
        else:
            latest = dict(
                SupplierResponseRevision.objects.filter(response=response, number=response.revision)
                .values(*STEP_FIELDS, "status")
                .get()
            )
        revised = latest | {field: _cleaned(value) for field, value in changes.items()}
        changed = [field for field in (*STEP_FIELDS, "status") if revised[field] != latest[field]]
        if not changed:
            raise NothingChanged(f"revision {response.revision} of your response already reads so: nothing to append")
        blank = [field for field in EIGHT_D_REQUIRED if not revised[field]]
        if revised["status"] == ResponseStatus.SUBMITTED and blank:
            raise IncompleteResponse(
                f"a submitted response answers every step from containment to prevention:"
                f" {EIGHT_D_STEPS[blank[0]]} is blank",
                field=blank[0],
            )
        response.revision += 1
        response.save(update_fields=["revision"])
        revision = SupplierResponseRevision.objects.create(
            response=response, number=response.revision, changed=changed, by=recorded_user(by), at=now, **revised
        )
        audit_record(
            action=AuditAction.RESPONSE_REVISE,
            user=by,
            organisation=responder,
            identifiers=[f"investigation:{investigation.pk}", f"response:{response.pk}"],
            detail={"revision": revision.number, "status": revision.status, "changed": changed},
        )
    return revision


def _cleaned(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def investigation_responses(*, investigation: Investigation, shown: Q) -> QuerySet[SupplierResponse]:
    """The responses to ``investigation`` a reader sees (``shown``, the access policy's condition on
    ``SupplierResponse``), oldest first, each with its responder and every revision with its author,
    oldest first: two queries, whatever their number."""
    return (
        SupplierResponse.objects.filter(shown, investigation=investigation)
        .select_related("owner", "investigation")
        .prefetch_related(
            Prefetch("revisions", SupplierResponseRevision.objects.select_related("by").order_by("number"))
        )
        .order_by("opened_at", "id")
    )


def response_latest(response: SupplierResponse) -> SupplierResponseRevision:
    """The latest of a response's prefetched revisions (``investigation_responses``)."""
    return list(response.revisions.all())[-1]


def responses_standing(*, finding_ids: Iterable[int], responder_id: int) -> dict[int, dict[str, Any]]:
    """Where ``responder_id``'s response to each finding's investigation stands: {finding id:
    {"revision", "status", "opened_at"}}, for those it has written one to. One query for a page."""
    ids = sorted(set(finding_ids))
    if not ids:
        return {}
    rows = SupplierResponseRevision.objects.filter(
        response__owner_id=responder_id,
        response__investigation__finding_id__in=ids,
        number=F("response__revision"),
    ).values_list("response__investigation__finding_id", "number", "status", "response__opened_at")
    return {
        finding: {"revision": number, "status": status, "opened_at": opened_at}
        for finding, number, status, opened_at in rows
    }
