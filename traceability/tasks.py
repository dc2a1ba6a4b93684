"""Celery tasks: each takes ids, and calls the domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.db import transaction

from traceability.core.jobs import job_step, jobs_stalled
from traceability.core.models import Job


@shared_task(name="traceability.tasks.job_run", acks_late=True)
def job_run(job_id: str, expected_done: int = 0) -> None:
    """Run one chunk of a job; the chunk enqueues the next one (see ``traceability.core.jobs``)."""
    job_step(job_id=job_id, expected_done=expected_done, enqueue=_enqueue_next)


@shared_task(name="traceability.tasks.jobs_resume", acks_late=True)
def jobs_resume(quiet_minutes: float = 5.0) -> int:
    """Periodic (Celery beat): resend the current chunk of jobs that stopped moving. Idempotent."""
    stalled = jobs_stalled(quiet_for=dt.timedelta(minutes=quiet_minutes))
    for job_id, done in stalled:
        _enqueue_next(job_id, done)
    return len(stalled)


def _enqueue_next(job_id: Any, expected_done: int) -> None:
    job_run.apply_async(args=[str(job_id), expected_done])


def job_submit(job: Job) -> None:
    """Start a job once the transaction that created it commits."""
    transaction.on_commit(lambda: job_run.apply_async(args=[str(job.pk), job.done]))
