"""The Celery application: tasks are discovered in every installed app's ``tasks`` module.

Tasks are small APIs: they take ids, fetch, and call a service. Progress and outcome live on a
database row (``traceability.Job``), so no result backend is used. Work is routed to two queues:
``heavy`` for traces, imports and exports, ``light`` for everything short.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traceability.settings")

app = Celery("traceability")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_ignore_result=True,
    # A task is acknowledged only once it has finished, so a worker killed mid-task hands the
    # message back to the broker and another worker runs it again: tasks must be idempotent.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="light",
    # Each queue with its own exchange and key: a shared default key would copy every message
    # into both queues.
    task_queues=tuple(Queue(name, Exchange(name), routing_key=name) for name in ("light", "heavy")),
    task_default_exchange="light",
    task_default_routing_key="light",
    task_routes={"traceability.tasks.job_run": {"queue": "heavy"}},
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    broker_connection_retry_on_startup=True,
    # Celery's Django fix-up closes the database connection before and after every task unless
    # told to reuse it: a new PostgreSQL connection per task cost ~6 ms, more than a small trace.
    # Connections are kept instead and checked as Django checks them per request (below).
    CELERY_DB_REUSE_MAX=10_000,
    beat_schedule={
        "resume-stalled-jobs": {"task": "traceability.tasks.jobs_resume", "schedule": 60.0},
        "expire-certificates": {
            "task": "suppliers.tasks.certificates_expire",
            "schedule": 3600.0,
        },
    },
)
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _connections_as_per_request(task: Task | None = None, **kwargs: Any) -> None:
    """Before and after each task, what Django does around each request: close a connection that
    is broken or older than ``CONN_MAX_AGE``, and health-check the next use of the others."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run inside the caller's process and transaction: its connection is the caller's
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
@worker_ready.connect
def _heap_settle(**kwargs: Any) -> None:
    """Once loaded, the worker's heap is frozen (``heap_settle``): in each child of a prefork pool
    after the fork, and in the worker itself, which runs the tasks with a solo or threads pool."""
    from traceability.core.runtime import heap_settle

    heap_settle()
