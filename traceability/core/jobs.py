"""Background jobs: bounded chunks, progress on the job's row, exactly-once under redelivery.

A job runs as a chain of Celery messages, each carrying the ``done`` count it expects to find.
One message runs one chunk in one transaction that also advances the job's progress, and it
enqueues the next message *inside* that transaction. So whatever point a worker is killed at:

* before the chunk commits: the chunk rolls back, a follow-up already sent finds ``done`` not
  advanced and is dropped, and the original message (acknowledged late) is redelivered and redoes
  the chunk;
* after the commit, before the acknowledgement: the redelivered original finds ``done`` advanced
  and is dropped; the follow-up carries on.

Handlers are registered per job kind and must do their chunk inside the transaction they are
given, using the job's ``done`` as the cursor.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from traceability.core.models import Job, JobKind, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """What a handler reports for the chunk it just did."""

    done: int
    total: int
    phase: str = ""
    result: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.done >= self.total


Handler = Callable[..., Chunk]  # (job) -> Chunk; a handler may also take progress= (see job_step)
Submit = Callable[[Job], None]  # starts a job: traceability.tasks.job_submit, or a test's stand-in
_HANDLERS: dict[JobKind, Handler] = {}


def job_handler(kind: JobKind) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[kind] = handler
        return handler

    return register


class UnknownJobKind(ValueError):
    pass


def job_create(*, kind: JobKind, params: dict[str, Any], total: int | None = None, **fields: Any) -> Job:
    if kind not in _HANDLERS:
        raise UnknownJobKind(f"no handler for job kind {kind!r} (known: {', '.join(sorted(_HANDLERS))})")
    return Job.objects.create(kind=kind, params=params, total=total, **fields)


def _percent(done: int, total: int | None) -> int:
    if not total:
        return 0
    return min(100, done * 100 // total)


def job_step(
    *,
    job_id: Any,
    expected_done: int,
    enqueue: Callable[[Any, int], None],
    progress: Callable[[str, int, int], None] | None = None,
) -> Job | None:
    """Run one chunk of the job if the message is current; returns the job, or None if dropped.

    ``enqueue(job_id, expected_done)`` sends the follow-up message; it is called inside the
    chunk's transaction (see the module docstring for why). ``progress(phase, done, total)`` is
    handed to handlers that report within a chunk (a command's progress bar).
    """
    try:
        with transaction.atomic(durable=True):
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or job.done != expected_done:
                log.info(
                    "job %s: dropping stale message (expected done=%s, found %s, %s)",
                    job_id,
                    expected_done,
                    job.done,
                    job.status,
                )
                return None
            now = timezone.now()
            job.attempts += 1
            job.started_at = job.started_at or now
            job.status = JobStatus.RUNNING
            chunk = _HANDLERS[JobKind(job.kind)](job, **({"progress": progress} if progress else {}))
            job.done, job.total, job.phase = chunk.done, chunk.total, chunk.phase or job.phase
            job.percent = _percent(chunk.done, chunk.total)
            if chunk.result:
                job.result = {**job.result, **chunk.result}
            if chunk.finished:
                job.status, job.finished_at, job.percent = JobStatus.SUCCEEDED, timezone.now(), 100
            else:
                enqueue(job.pk, chunk.done)
            job.save()
            return job
    except Exception as exc:
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise


def job_fail(*, job_id: Any, error: str, at: dt.datetime | None = None) -> None:
    Job.objects.filter(pk=job_id).exclude(status=JobStatus.SUCCEEDED).update(
        status=JobStatus.FAILED, error=error[:2000], finished_at=at or timezone.now()
    )


def jobs_stalled(*, quiet_for: dt.timedelta, now: dt.datetime | None = None) -> list[tuple[Any, int]]:
    """Unfinished jobs whose row has not moved for ``quiet_for``: (id, the cursor to resume at).

    A broker without acknowledgements (kombu's filesystem transport) loses the message of a worker
    killed mid-chunk, and Redis only hands an unacknowledged one back after its visibility
    timeout; resending the current cursor is always safe, because a message that is not current
    is dropped (see the module docstring).
    """
    cutoff = (now or timezone.now()) - quiet_for
    return list(
        Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("pk", "done")
    )
