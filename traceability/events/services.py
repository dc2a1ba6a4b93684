"""Capture jobs: a document is kept as it arrived, and a Celery job applies it (``capture``).

``POST /epcis/capture`` and ``import_epcis`` share this path; the HTTP one answers 202 at once
and the job runs on a worker, the CLI one runs the same handler in its own process.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from suppliers.models import Organisation
from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record
from traceability.core.jobs import Chunk, Submit, job_create, job_handler, job_step
from traceability.core.models import Job, JobKind
from traceability.core.storage import Readable, spooled, stream_chunks
from traceability.events.capture import (
    Progress,
    document_apply,
    document_check,
    document_events,
    document_read,
    event_document,
    json_read,
)
from traceability.events.limits import CHECKED_FIRST_MAX
from traceability.events.models import CaptureErrorBehaviour, EpcisCapture
from traceability.events.problems import DocumentRejected, Problem
from traceability.events.validation import document_problems


def capture_submit(
    *,
    owner: Organisation,
    document: Readable,
    error_behaviour: str = CaptureErrorBehaviour.ROLLBACK,
    created_by: AbstractBaseUser | None = None,
    submit: Submit,
    audit_action: str = AuditAction.EPCIS_CAPTURE,
    check_first: bool = False,
    validated: bool = False,
) -> EpcisCapture:
    """Keep the document in the storage (streamed, never held in memory whole) and queue its job.

    ``audit_action`` names the capture in the audit trail: a CSV import arrives as the EPCIS
    document it stands for, and is audited as ``csv.import``. ``check_first``: a document of up to
    ``limits.CHECKED_FIRST_MAX`` bytes is read and checked (``document_check``) before anything is
    kept, and refused with ``DocumentRejected``; a larger one is checked by its job. ``validated``:
    the caller has found no problem in the document (``document_problems``), so its job does not
    validate it again."""
    user = recorded_user(created_by)
    capture = EpcisCapture(owner=owner, created_by=user, error_behaviour=error_behaviour)
    # Stored before the transaction, so no transaction stays open while a large document uploads.
    name = uuid.uuid4().hex
    with spooled(stream_chunks(document), name=name) as received:
        if check_first:
            head = received.read(CHECKED_FIRST_MAX + 1)
            if len(head) <= CHECKED_FIRST_MAX:
                document_check(head)
            received.seek(0)
        capture.document.save(name, received, save=False)
    with transaction.atomic(durable=True):
        capture.save()
        params: dict[str, Any] = {"capture_id": capture.pk, **({"validated": True} if validated else {})}
        job = job_create(kind=JobKind.EPCIS_CAPTURE, params=params, total=1, owner=owner, created_by=user)
        capture.job = job
        capture.save(update_fields=["job"])
        submit(job)
        audit_record(
            action=audit_action,
            user=user,
            organisation=owner,
            identifiers=[f"capture:{capture.pk}", f"job:{job.pk}"],
            detail={"error_behaviour": error_behaviour},
        )
    return capture


def capture_now(
    *,
    owner: Organisation,
    document: Readable,
    error_behaviour: str = CaptureErrorBehaviour.ROLLBACK,
    created_by: AbstractBaseUser | None = None,
    progress: Progress | None = None,
    audit_action: str = AuditAction.EPCIS_CAPTURE,
    validated: bool = False,
) -> EpcisCapture:
    """Capture a document in this process, synchronously (a command, ``POST /epcis/events``): the
    same job as a queued capture, run here once the capture is committed (``validated``: as
    ``capture_submit``)."""
    capture = capture_submit(
        owner=owner,
        document=document,
        error_behaviour=error_behaviour,
        created_by=created_by,
        submit=lambda job: None,
        audit_action=audit_action,
        validated=validated,
    )
    job_step(job_id=capture.job_id, expected_done=0, enqueue=lambda *_: None, progress=progress)
    capture.refresh_from_db()
    return capture


def event_read(data: bytes) -> dict[str, Any]:
    """One event sent alone (``POST /epcis/events``), read and validated whole before anything is
    kept: raises DocumentRejected with its problems, placed as in its one-event document. Its
    capture is then ``validated``: the job does not validate it again."""
    event = json_read(data)
    if not isinstance(event, dict):
        raise DocumentRejected([Problem("", f"the body must be one EPCIS event, a JSON object, not {_kind(event)}")])
    if problems := document_problems(event_document(event)):
        raise DocumentRejected(problems)
    return event


def _kind(value: Any) -> str:
    return "an array" if isinstance(value, list) else "null" if value is None else f"a {type(value).__name__}"


@job_handler(JobKind.EPCIS_CAPTURE)
def capture_chunk(job: Job, progress: Progress | None = None) -> Chunk:
    """Apply the capture's document in one transaction (the job's): all of it, or with ``proceed``
    all of its valid events. A rejected document leaves only its problems on the capture."""
    capture = EpcisCapture.objects.select_for_update().get(pk=job.params["capture_id"])
    with capture.document.open("rb") as kept:
        data = kept.read()
    try:
        with transaction.atomic():  # a savepoint: a rejection rolls back every ledger write
            document = document_read(data)
            capture.events = len(document_events(document))
            validated = bool(job.params.get("validated"))
            applied = document_apply(document, capture=capture, progress=progress, validated=validated)
    except DocumentRejected as rejected:
        capture.problems = [p.as_dict() for p in rejected.problems]
        capture.save(update_fields=["events", "problems"])
        return Chunk(done=1, total=1, phase="rejected", result=_result(capture, success=False))
    capture.captured, capture.repeated, capture.declared = applied.captured, applied.repeated, applied.declared
    capture.problems = [p.as_dict() for p in applied.problems]
    capture.entry_id = applied.position
    capture.save(update_fields=["events", "captured", "repeated", "declared", "problems", "entry", "context"])
    return Chunk(done=1, total=1, phase="applied", result=_result(capture, success=not applied.problems))


def _result(capture: EpcisCapture, *, success: bool) -> dict[str, Any]:
    return {
        "success": success,
        "events": capture.events,
        "captured": capture.captured,
        "repeated": capture.repeated,
        "declared": capture.declared,
        "problems": len(capture.problems),
    }


def problems_of(capture: EpcisCapture) -> list[Problem]:
    return [Problem(**problem) for problem in capture.problems]
