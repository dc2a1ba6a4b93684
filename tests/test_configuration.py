"""Configuration from the environment: safe defaults, and one clear line when it is wrong."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
    }
    clean.update({"LEDGER_VAR_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_embedded_defaults_need_nothing_configured(tmp_path):
    # when
    result = manage("preflight", env={}, tmp_path=tmp_path)
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database ok (sqlite {tmp_path / 'ledger.sqlite3'}); broker ok (filesystem://)"
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_debug_is_off_unless_asked_for(tmp_path):
    script = "from django.conf import settings; print(settings.DEBUG)"
    off = manage("shell", "--no-imports", "-c", script, env={}, tmp_path=tmp_path)
    on = manage("shell", "--no-imports", "-c", script, env={"DEBUG": "true"}, tmp_path=tmp_path)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True")


def test_the_storage_of_kept_files_is_any_django_storage_backend_from_the_environment(tmp_path):
    # given
    script = "from django.core.files.storage import default_storage as s; print(s.base_url, type(s._wrapped).__name__)"
    env = {
        "LEDGER_STORAGE_BACKEND": "django.core.files.storage.InMemoryStorage",
        "LEDGER_STORAGE_OPTIONS": '{"base_url": "https://files.example.com/"}',
    }
    # when
    default = manage("shell", "--no-imports", "-c", script, env={}, tmp_path=tmp_path)
    configured = manage("shell", "--no-imports", "-c", script, env=env, tmp_path=tmp_path)
    # then
    assert default.stdout.strip() == "/media/ FileSystemStorage", default.stderr
    assert configured.stdout.strip() == "https://files.example.com/ InMemoryStorage", configured.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/ledger"},
            "CommandError: database unreachable (postgresql 127.0.0.1:1/ledger): ",
        ),
        (
            {"DATABASE_URL": "mysqlx://root@127.0.0.1/ledger"},
            "configuration error: DATABASE_URL scheme 'mysqlx' is not supported: use postgresql://user@host:5432/name",
        ),
        (
            {"CELERY_BROKER_URL": "redis://:secret@127.0.0.1:1/0"},
            "CommandError: Celery broker unreachable (redis://:***@127.0.0.1:1/0): ",
        ),
        (
            {"CELERY_BROKER_URL": "kafka://127.0.0.1:9092"},
            "configuration error: CELERY_BROKER_URL scheme 'kafka' is not supported: use redis://host:6379/0",
        ),
        ({"DEBUG": "maybe"}, "configuration error: DEBUG='maybe' is not a boolean"),
        (
            {"LEDGER_STORAGE_OPTIONS": '{"secret_key": "s3cr3t"'},
            "configuration error: LEDGER_STORAGE_OPTIONS is not JSON: Expecting ',' delimiter",
        ),
        (
            {"LEDGER_STORAGE_OPTIONS": '["secret_key", "s3cr3t"]'},
            "configuration error: LEDGER_STORAGE_OPTIONS must be a JSON object of the backend's options, not a list",
        ),
    ],
    ids=[
        "database-unreachable",
        "database-scheme",
        "broker-unreachable",
        "broker-scheme",
        "debug-not-boolean",
        "storage-options-not-json",
        "storage-options-not-an-object",
    ],
)
def test_bad_configuration_gets_one_clear_line(tmp_path, env, expected):
    # when
    result = manage("preflight", env=env, tmp_path=tmp_path)
    # then
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
    assert "secret" not in lines[0]
