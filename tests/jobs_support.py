"""Run a job to its end in this process, as a worker would: the one way tests do it (no tests here).

The tests of the chunk protocol itself (tests/test_jobs.py, and the chunk-by-chunk export in
tests/test_api_exports.py) call ``job_step`` directly, message by message, on purpose.
"""

from __future__ import annotations

from traceability.core.jobs import job_step
from traceability.core.models import Job


def run_job(job: Job) -> Job:
    """Run ``job``'s chain of chunks, each follow-up message as soon as its chunk commits; returns the
    job as the last chunk left it."""
    pending = [0]
    while pending:
        job_step(job_id=job.pk, expected_done=pending.pop(), enqueue=lambda job_id, done: pending.append(done))
    job.refresh_from_db()
    return job
