"""The Celery application: tasks are discovered in every installed app's ``tasks`` module.

Tasks are small APIs: they take ids, fetch, and call a service. Progress and outcome live on a
database row (``traceability.Job``), so no result backend is used. Work is routed to two queues:
``heavy`` for traces, imports and exports, ``light`` for everything short.
"""

from __future__ import annotations

import os

from celery import Celery
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
    beat_schedule={
        "resume-stalled-jobs": {"task": "traceability.tasks.jobs_resume", "schedule": 60.0},
        "expire-certificates": {
            "task": "suppliers.tasks.certificates_expire",
            "schedule": 3600.0,
        },
    },
)
app.autodiscover_tasks()
