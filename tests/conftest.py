"""Shared fixtures: a real Celery worker on the configured broker, data built once for a module, and the
services check for CI."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from traceability.celery import app as celery_app

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "epcis"


def pytest_sessionstart(session: pytest.Session) -> None:
    """With LEDGER_REQUIRE_SERVICES=1 (CI's second pass), fail unless PostgreSQL and Redis answer."""
    if os.environ.get("LEDGER_REQUIRE_SERVICES") != "1":
        return
    from django.db import connection

    problems = []
    if connection.vendor != "postgresql":
        problems.append(f"DATABASE_URL must point at PostgreSQL, the database is {connection.vendor}")
    else:
        import psycopg  # pytest-django blocks the ORM here; ask the server directly

        db = connection.settings_dict
        try:
            psycopg.connect(
                host=db["HOST"],
                port=db["PORT"] or 5432,
                user=db["USER"],
                password=db["PASSWORD"],
                dbname=db["NAME"],
                connect_timeout=5,
            ).close()
        except psycopg.Error as exc:
            problems.append(f"PostgreSQL unreachable: {exc}")
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        problems.append(f"CELERY_BROKER_URL must point at Redis, it is {settings.CELERY_BROKER_URL!r}")
    else:
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            problems.append(f"Redis unreachable: {exc}")
    if problems:
        pytest.exit("services required but not usable: " + "; ".join(problems), returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher() -> Iterator[None]:
    """Django's PBKDF2 costs ~0.4 s a password, by design; pytest-django's ``admin_user`` sets one for every
    test that asks for ``admin_client``, and that was four fifths of tests/test_admin.py's time. The tests
    only need passwords to work, not to be hard to guess (Django's "Speeding up the tests")."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _plain_http() -> Iterator[None]:
    """The tests speak plain HTTP, as ``make run`` serves it (``LEDGER_PLAIN_HTTP=1``): no redirect to
    HTTPS, cookies without Secure. tests/test_security.py checks the HTTPS defaults in a process
    started with production's environment."""
    from django.test import override_settings

    with override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False, SECURE_HSTS_SECONDS=0
    ):
        yield


@pytest.fixture(autouse=True)
def _no_failed_sign_ins_carried_over() -> None:
    """Failed sign-ins are counted per address in the cache (``core.signin``), and every test calls from
    127.0.0.1: one test's bad tokens must not lock the next one out."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _no_trace_carried_over() -> None:
    """A worker keeps its last few traces by run id, position and seeds (``_run_trace``): sound in a
    ledger whose ids are never reused, but a rolled-back test hands the same ids to the next test's
    world, which must not be answered from the last one's trace."""
    from traceability.investigations.services import _run_trace

    _run_trace.cache_clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a PostgreSQL feature are left out of a run on another database, said in one line,
    rather than each skipping itself: CI's PostgreSQL pass runs them (LEDGER_REQUIRE_SERVICES=1
    fails that pass if the database is not PostgreSQL)."""
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    left_out = [item for item in items if item.get_closest_marker("postgresql")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]


@pytest.fixture(scope="session", autouse=True)
def _isolated_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Keep test messages away from any worker of ``make run`` sharing the same broker.

    Set up before the first test, not by the first test that starts a worker: a message sent
    earlier (a finding recorded with no worker) would open the app's connection pool with the
    unisolated options, and a live server's thread would keep sending through it, to queues no
    test worker reads.

    Yields the environment a worker process needs to join the same isolated broker.
    """
    # Every app's tasks imported first, as `celery worker` does: ``close()`` below drops the app from
    # celery's active apps, and a shared task (suppliers.tasks) imported after the app was finalized
    # registers only with the active ones. Imported now, each registers when the app finalizes;
    # imported by the first test that needed it, a full run once found certificates_expire unknown.
    celery_app.loader.import_default_modules()
    original = dict(celery_app.conf.broker_transport_options or {})
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = tmp_path_factory.mktemp("broker")
        for name in ("queue", "processed", "control"):
            (folder / name).mkdir()
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
        worker_env = {"CELERY_BROKER_DIR": str(folder)}
    else:
        prefix = f"ledger-test-{uuid.uuid4().hex[:8]}:"
        options = {**original, "global_keyprefix": prefix}
        worker_env = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_BROKER_KEYPREFIX": prefix}
    celery_app.conf.broker_transport_options = options
    celery_app.close()  # drop pooled connections made with the old options
    yield worker_env
    celery_app.conf.broker_transport_options = original
    celery_app.close()  # drop pooled connections made with the old options


@contextlib.contextmanager
def _worker_threads() -> Iterator[object]:
    """A real worker (threads in this process) consuming both queues through the real broker."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connection

    celery_app.loader.import_default_modules()  # register every app's tasks, as `celery worker` does
    # A worker keeps its connection between tasks (traceability/celery.py); these worker threads end
    # with the test, so theirs are closed after each task, or the test database could not be dropped.
    kept_for = connection.settings_dict.get("CONN_MAX_AGE", 0)
    connection.settings_dict["CONN_MAX_AGE"] = 0
    try:
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            queues=["light", "heavy"],
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = kept_for


@pytest.fixture()
def celery_worker(_isolated_broker: dict[str, str], transactional_db: None) -> Iterator[object]:
    """A real worker (threads in this process) consuming both queues through the real broker.

    Tests using it see only committed data, hence ``transactional_db``.
    """
    with _worker_threads() as worker:
        yield worker


@pytest.fixture()
def celery_worker_later(_isolated_broker: dict[str, str], transactional_db: None) -> Iterator[Callable[[], object]]:
    """Start the same real worker when the test says so, e.g. once a page has shown a run still queued:
    what the ledger sent before waits in the broker, as it does for a worker that is down, so a test can
    see a page poll a run from below 100% to its end however fast the machine traces. Called twice, it
    answers the worker already started. Stopped when the test ends.
    """
    with contextlib.ExitStack() as stack:
        started: list[object] = []

        def start() -> object:
            if not started:
                started.append(stack.enter_context(_worker_threads()))
            return started[0]

        yield start


@pytest.fixture(scope="module")
def module_db(django_db_setup: None, django_db_blocker) -> Iterator[None]:
    """One transaction around a module's tests, rolled back after its last one: Django's ``setUpTestData``,
    by module. A module-scoped fixture that requests it writes its data (inside
    ``django_db_blocker.unblock()``) once; each test still runs in a savepoint of its own (pytest-django's
    ``db``), so what a test writes is gone before the next. Every later test of the module sees the data.
    Not for a module with transactional tests: those commit, and flush the database when they end.

    Django's own class-level atomics are used because they are marked as a test case's: a service's
    ``atomic(durable=True)`` is allowed inside them, as it is inside a test's.
    """
    from django.test import TestCase

    with django_db_blocker.unblock():
        atomics = TestCase._enter_atomics()
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            TestCase._rollback_atomics(atomics)


@pytest.fixture()
def wait_until() -> Callable[..., None]:
    def wait(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

    return wait


@pytest.fixture()
def corpus() -> Path:
    if not CORPUS.is_dir():
        if os.environ.get("LEDGER_REQUIRE_CORPUS") == "1":
            pytest.fail(f"GS1 EPCIS corpus required (LEDGER_REQUIRE_CORPUS=1) but not found at {CORPUS}")
        pytest.skip(f"GS1 EPCIS corpus not found at {CORPUS} (CI always has it)")
    return CORPUS


@pytest.fixture()
def worker_process(_isolated_broker: dict[str, str], transactional_db: None, tmp_path: Path):
    """Start real ``celery worker`` processes on the test database and the isolated broker.

    The solo pool runs tasks in the worker's own process, so killing it kills the task mid-chunk.
    """
    import signal
    import subprocess
    import sys

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgresql://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DATABASE_URL"}}
    env.update(_isolated_broker, DATABASE_URL=database_url, LEDGER_VAR_DIR=str(tmp_path))
    started: list[subprocess.Popen] = []

    def start(**extra_env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "traceability",
                "worker",
                "--pool",
                "solo",
                "-Q",
                "light,heavy",
                "-l",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=Path(__file__).resolve().parents[1],
            env={**env, **extra_env},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Write ``line`` to the terminal past pytest's capture, e.g. a fuzzing run's figures for the CI log."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(line)
