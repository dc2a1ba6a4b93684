"""A worker keeps its database connection from task to task, and drops it as Django would."""

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from traceability.celery import app

pytestmark = pytest.mark.django_db(transaction=True)  # connections are closed here: no test transaction


def _task(eager: bool = False) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_a_task_runs_on_the_connection_the_last_one_used(monkeypatch):
    # given a worker's connection kept for a minute (CONN_MAX_AGE, as PostgreSQL's is), opened by a task
    fixup = DjangoWorkerFixup(app)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    connection.ensure_connection()
    opened = connection.connection
    # when the worker runs the next task (Celery's fix-up and our signal handlers, around it)
    for hook, signal in ((fixup.on_task_prerun, task_prerun), (fixup.on_task_postrun, task_postrun)):
        hook(sender=_task())
        signal.send(sender=None, task=_task(), task_id="t", args=(), kwargs={})
    # then it is the same connection: no new one (a new PostgreSQL connection costs ~6 ms a task)
    assert connection.connection is opened


def test_a_broken_connection_is_dropped_before_the_next_task():
    # given a connection whose last statement failed outside a transaction (as after a restart)
    connection.ensure_connection()
    connection.errors_occurred = True
    connection.is_usable = lambda: False
    # when a task starts
    task_prerun.send(sender=None, task=_task(), task_id="t", args=(), kwargs={})
    # then it is closed, and the task's first query opens a new one
    del connection.is_usable
    assert connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_an_eager_task_leaves_its_callers_connection_alone():
    connection.ensure_connection()
    opened = connection.connection
    connection.errors_occurred = True
    connection.is_usable = lambda: False
    task_prerun.send(sender=None, task=_task(eager=True), task_id="t", args=(), kwargs={})
    del connection.is_usable
    connection.errors_occurred = False
    assert connection.connection is opened
