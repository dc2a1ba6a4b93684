"""docker-compose.yml, Dockerfile and .dockerignore, checked against the project without Docker.

The files are parsed, never run: every command they give is split the way compose and the shell
would split it, and each program the project provides is checked against the code (management
commands against ``get_commands()``, ``celery -A`` against the Celery app and its queues,
``gunicorn module:attr`` against the module). No database is used.

Django is set up here when pytest-django has not done it already (``DJANGO_SETTINGS_MODULE`` from
the project's pytest configuration or the environment, ``traceability.settings`` otherwise).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SETTINGS_FILE = ROOT / "traceability" / "settings.py"

SERVICES = {"postgres", "redis", "web", "worker", "beat"}
APP_SERVICES = ("web", "worker", "beat")
BACKING_SERVICES = ("postgres", "redis")
POSTGRES_DATA = "/var/lib/postgresql/data"

# What the variables compose reads from the shell or .env are set to while parsing.
COMPOSE_ENV = {"SECRET_KEY": "test-secret-key", "POSTGRES_PASSWORD": "test-password"}

# Programs each service's image really has, for its command and health check. python:3.11-slim
# (+ requirements.txt) has no curl or wget, which is why the web health check is a Python one-liner.
APP_IMAGE_PROGRAMS = {"sh", "python", "python3", "celery", "gunicorn"}
IMAGE_PROGRAMS = {
    "postgres": {"sh", "postgres", "pg_isready", "psql"},
    "redis": {"sh", "redis-server", "redis-cli", "grep"},
    **{name: APP_IMAGE_PROGRAMS for name in APP_SERVICES},
}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# --- compose interpolation ----------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``, on values."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op and op.endswith("?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(env: dict[str, str] = COMPOSE_ENV, *, compose_file: Path = COMPOSE_FILE) -> dict:
    return interpolate(yaml.safe_load(compose_file.read_text()), env)


# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    where: str  # e.g. "web command", "worker healthcheck", "Dockerfile RUN"
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"

    @property
    def id(self) -> str:
        """A short test id: a ``python -c`` one-liner is not spelled out."""
        shown = self.argv[:2] if len(self.argv) > 2 and self.argv[1] == "-c" else self.argv
        return f"{self.where}: {' '.join(shown)}"


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell line, split at ``&&``, ``||``, ``;`` and pipes."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in SHELL_OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def simple_commands(argv: list[str]) -> list[list[str]]:
    """``argv`` as the commands that really run: ``sh -c`` unwrapped, ``VAR=x`` and ``exec`` dropped."""
    while argv and (ENV_ASSIGNMENT.match(argv[0]) or argv[0] == "exec"):
        argv = argv[1:]
    if not argv:
        return []
    if Path(argv[0]).name in {"sh", "bash"} and len(argv) >= 3 and argv[1] == "-c":
        return [cmd for part in shell_commands(argv[2]) for cmd in simple_commands(part)]
    return [argv]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_argv(arguments: str) -> list[list[str]]:
    if arguments.startswith("["):
        return simple_commands(json.loads(arguments))
    return [cmd for part in shell_commands(arguments) for cmd in simple_commands(part)]


def dockerfile_cmd() -> list[str]:
    cmds = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    commands = dockerfile_argv(cmds[-1])
    assert len(commands) == 1, f"the Dockerfile CMD should be a single command: {cmds[-1]}"
    return commands[0]


def service_invocations(name: str, service: dict) -> list[Invocation]:
    found: list[Invocation] = []
    command = service.get("command")
    if command is None and name in APP_SERVICES:
        commands = [dockerfile_cmd()]  # the image's CMD applies
    elif command is None:
        commands = []
    elif isinstance(command, str):
        commands = simple_commands(shlex.split(command))  # compose splits, it does not run a shell
    else:
        commands = simple_commands(list(command))
    found += [Invocation(f"{name} command", tuple(argv)) for argv in commands]

    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if test and test[0] == "CMD-SHELL":
        checks = [cmd for part in shell_commands(" ".join(test[1:])) for cmd in simple_commands(part)]
    elif test and test[0] == "CMD":
        checks = simple_commands(list(test[1:]))
    else:
        checks = []
    found += [Invocation(f"{name} healthcheck", tuple(argv)) for argv in checks]
    return found


def all_invocations(*, compose_file: Path = COMPOSE_FILE) -> list[Invocation]:
    compose = load_compose(compose_file=compose_file)
    found = [
        invocation for name, service in compose["services"].items() for invocation in service_invocations(name, service)
    ]
    for keyword, arguments in dockerfile_instructions():
        if keyword in {"RUN", "CMD", "ENTRYPOINT"}:
            found += [Invocation(f"Dockerfile {keyword}", tuple(argv)) for argv in dockerfile_argv(arguments)]
    return found


def is_python(invocation: Invocation) -> bool:
    return re.fullmatch(r"python(3(\.\d+)?)?", invocation.program) is not None


def missing_python_modules(invocations) -> list[str]:
    """Every ``python -m NAME`` whose module cannot be found, as ``where: command``."""
    return [
        str(invocation)
        for invocation in invocations
        if is_python(invocation)
        and len(invocation.argv) >= 3
        and invocation.argv[1] == "-m"
        and importlib.util.find_spec(invocation.argv[2]) is None
    ]


def management_commands(invocations) -> list[tuple[Invocation, str, list[str]]]:
    """(invocation, command name, its arguments) for every ``python manage.py NAME ...``."""
    found = []
    for invocation in invocations:
        argv = invocation.argv
        if is_python(invocation) and len(argv) >= 2 and Path(argv[1]).name == "manage.py":
            assert len(argv) >= 3, f"{invocation}: manage.py without a command"
            found.append((invocation, argv[2], list(argv[3:])))
    return found


CELERY_GROUP_OPTIONS_WITH_VALUE = {
    "-A",
    "--app",
    "-b",
    "--broker",
    "--result-backend",
    "--loader",
    "--config",
    "--workdir",
}


def celery_parts(argv: tuple[str, ...]) -> tuple[str | None, str | None, list[str]]:
    """(app, subcommand, queues) of a ``celery`` command line."""
    app = subcommand = None
    queues: list[str] = []
    tokens = list(argv[1:])
    index = 0
    while index < len(tokens):
        token = tokens[index]
        value = tokens[index + 1] if index + 1 < len(tokens) else None
        if token in {"-A", "--app"}:
            app, index = value, index + 2
            continue
        if token.startswith("--app="):
            app = token.split("=", 1)[1]
        elif token in {"-Q", "--queues"}:
            queues += [queue for queue in (value or "").split(",") if queue]
            index += 2
            continue
        elif token.startswith("--queues="):
            queues += [queue for queue in token.split("=", 1)[1].split(",") if queue]
        elif subcommand is None and not token.startswith("-"):
            subcommand = token
        elif subcommand is None and token in CELERY_GROUP_OPTIONS_WITH_VALUE:
            index += 2
            continue
        index += 1
    return app, subcommand, queues


INVOCATIONS = all_invocations()
MANAGEMENT = management_commands(INVOCATIONS)
CELERY = [invocation for invocation in INVOCATIONS if invocation.program == "celery"]
GUNICORN = [invocation for invocation in INVOCATIONS if invocation.program == "gunicorn"]
PYTHON_C = [inv for inv in INVOCATIONS if is_python(inv) and len(inv.argv) >= 3 and inv.argv[1] == "-c"]


@pytest.fixture(scope="module")
def django_ready():
    """Django set up: by pytest-django if it was configured, here otherwise. No database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traceability.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def settings_string_literals() -> set[str]:
    tree = ast.parse(SETTINGS_FILE.read_text())
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


# --- compose: shape -----------------------------------------------------------------------------


def test_services_are_exactly_the_five():
    assert set(load_compose()["services"]) == SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name):
    healthcheck = load_compose()["services"][name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
    test = healthcheck.get("test")
    assert test and test != ["NONE"], f"{name} healthcheck has no test"
    assert [inv for inv in INVOCATIONS if inv.where == f"{name} healthcheck"], f"{name}: unparsable test {test}"


def _named_volume_sources(service: dict) -> dict[str, str]:
    """target -> named volume of a service (short ``src:dst[:mode]`` and long syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                mounts[target] = source
        elif volume.get("type", "volume") == "volume" and volume.get("source"):
            mounts[volume["target"]] = volume["source"]
    return mounts


def test_database_data_is_on_a_declared_named_volume():
    compose = load_compose()
    mounts = _named_volume_sources(compose["services"]["postgres"])
    assert POSTGRES_DATA in mounts, f"postgres keeps {POSTGRES_DATA} in the container: {mounts}"
    assert mounts[POSTGRES_DATA] in (compose.get("volumes") or {}), "the database volume is not declared"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_media_is_on_a_declared_named_volume(name):
    compose = load_compose()
    service = compose["services"][name]
    media_root = service["environment"]["MEDIA_ROOT"]
    mounts = _named_volume_sources(service)
    assert media_root in mounts, f"{name}: MEDIA_ROOT {media_root} is not on a named volume: {mounts}"
    assert mounts[media_root] in (compose.get("volumes") or {}), "the media volume is not declared"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_database_and_broker(name):
    depends_on = load_compose()["services"][name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must be the long form, with conditions"
    for backing in BACKING_SERVICES:
        assert depends_on.get(backing, {}).get("condition") == "service_healthy", f"{name} -> {backing}"


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_start_after_web_has_migrated(name):
    depends_on = load_compose()["services"][name]["depends_on"]
    assert depends_on.get("web", {}).get("condition") == "service_healthy"


def test_web_checks_migrates_then_serves():
    steps = [inv.argv for inv in INVOCATIONS if inv.where == "web command"]
    names = [argv[2] if len(argv) > 2 and argv[1] == "manage.py" else Path(argv[0]).name for argv in steps]
    assert names == ["preflight", "migrate", "gunicorn"], steps
    assert "--noinput" in steps[1] or "--no-input" in steps[1]
    command = load_compose()["services"]["web"]["command"]
    assert "exec gunicorn" in command, "gunicorn must replace the shell (PID 1 gets the stop signal)"


def test_app_services_share_the_environment_anchor():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    anchor = raw.get("x-ledger-env")
    assert isinstance(anchor, dict) and anchor, "no x-ledger-env mapping"
    for name in APP_SERVICES:
        environment = raw["services"][name].get("environment")
        assert isinstance(environment, dict), f"{name}: environment must be a mapping"
        assert {k: v for k, v in environment.items() if k in anchor} == anchor, f"{name} does not use x-ledger-env"


def test_secret_key_has_no_default():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert re.fullmatch(r"\$\{SECRET_KEY:?\?[^}]*\}", str(raw["x-ledger-env"]["SECRET_KEY"]))
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        load_compose({key: value for key, value in COMPOSE_ENV.items() if key != "SECRET_KEY"})
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        load_compose({**COMPOSE_ENV, "SECRET_KEY": ""})


def _app_environment_keys() -> list[str]:
    services = load_compose()["services"]
    return sorted({key for name in APP_SERVICES for key in (services[name].get("environment") or {})})


@pytest.mark.parametrize("key", _app_environment_keys())
def test_environment_variables_are_read_by_settings(key):
    assert key in settings_string_literals(), f"{key} is set in docker-compose.yml but settings.py never reads it"


def test_urls_point_at_the_compose_services():
    compose = load_compose()
    environment = compose["services"]["web"]["environment"]
    postgres = compose["services"]["postgres"]["environment"]
    database = urlsplit(environment["DATABASE_URL"])
    assert database.scheme in {"postgres", "postgresql"}
    assert database.hostname == "postgres"
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"] == COMPOSE_ENV["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    broker = urlsplit(environment["CELERY_BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis"


def test_web_healthcheck_host_is_allowed():
    allowed = load_compose()["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    assert "127.0.0.1" in allowed
    assert any(
        "http://127.0.0.1:8000/health/" in " ".join(inv.argv) for inv in PYTHON_C if inv.where == "web healthcheck"
    )


# --- compose and Dockerfile: every command names something that exists -------------------------


def test_the_commands_were_found():
    """Guards the parsing: if it found nothing, the checks below would pass vacuously."""
    assert {name for _, name, _ in MANAGEMENT} >= {"preflight", "migrate", "collectstatic"}
    assert {celery_parts(inv.argv)[1] for inv in CELERY} >= {"worker", "beat", "inspect"}
    assert {inv.where for inv in GUNICORN} >= {"web command", "Dockerfile CMD"}


@pytest.mark.parametrize(
    "invocation",
    [inv for inv in INVOCATIONS if not inv.where.startswith("Dockerfile")],
    ids=lambda invocation: invocation.id,
)
def test_services_run_only_programs_their_image_has(invocation):
    service = invocation.where.split()[0]
    assert invocation.program in IMAGE_PROGRAMS[service], (
        f"{invocation}: the {service} image has no {invocation.program}"
    )


@pytest.mark.parametrize(
    ("invocation", "name", "arguments"), MANAGEMENT, ids=[f"{inv.where}: {name}" for inv, name, _ in MANAGEMENT]
)
def test_management_command_exists(django_ready, invocation, name, arguments):
    from django.core.management import CommandError, get_commands, load_command_class

    commands = get_commands()
    assert name in commands, f"{invocation}: no management command {name!r}"
    command = load_command_class(commands[name], name)
    try:
        command.create_parser("manage.py", name).parse_args(arguments)
    except (CommandError, SystemExit) as exc:
        pytest.fail(f"{invocation}: {exc}")


@pytest.mark.parametrize("invocation", CELERY, ids=lambda invocation: invocation.id)
def test_celery_app_and_queues_exist(django_ready, invocation):
    from celery import Celery
    from celery.app.utils import find_app
    from celery.bin.celery import celery as celery_cli

    app_name, subcommand, queues = celery_parts(invocation.argv)
    assert app_name, f"{invocation}: no -A"
    importlib.import_module(app_name.split(":")[0])
    app = find_app(app_name)  # what `celery -A` does
    assert isinstance(app, Celery), f"{invocation}: {app_name} is not a Celery app"
    assert subcommand in celery_cli.commands, f"{invocation}: celery has no {subcommand!r} command"
    known = {queue.name for queue in app.conf.task_queues or ()}
    assert set(queues) <= known, f"{invocation}: queues {sorted(set(queues) - known)} not in {sorted(known)}"


def test_worker_consumes_every_queue(django_ready):
    from celery.app.utils import find_app

    (worker,) = [inv for inv in CELERY if inv.where == "worker command"]
    app_name, _, queues = celery_parts(worker.argv)
    assert set(queues) == {queue.name for queue in find_app(app_name).conf.task_queues}


@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")  # WhiteNoise: static not collected here
@pytest.mark.parametrize("invocation", GUNICORN, ids=lambda invocation: invocation.id)
def test_gunicorn_application_exists(django_ready, invocation):
    from gunicorn.config import Config

    try:
        arguments = Config().parser().parse_args(list(invocation.argv[1:]))
    except SystemExit:  # argparse has printed the reason
        pytest.fail(f"{invocation}: gunicorn rejects these options")
    assert len(arguments.args) == 1, f"{invocation}: expected one module:attribute"
    module_name, _, attribute = arguments.args[0].partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute or "application", None)), f"{invocation}: no WSGI callable"


def test_python_modules_exist():
    assert missing_python_modules(INVOCATIONS) == []


def test_a_python_module_that_does_not_exist_is_caught(tmp_path):
    """The files run no ``python -m`` today, so the check above holds without looking at anything:
    this one shows it finds such a command in a compose file and tells a real module from a missing one."""
    # given a copy of docker-compose.yml whose worker runs a module that does not exist and whose beat
    # runs one that does
    compose = COMPOSE_FILE.read_text()
    worker = "command: celery -A traceability worker"
    beat = "command: celery -A traceability beat"
    assert worker in compose and beat in compose
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        compose.replace(worker, "command: python -m no_such_module worker").replace(
            beat, "command: python -m celery -A traceability beat"
        )
    )

    # when
    missing = missing_python_modules(all_invocations(compose_file=broken))

    # then
    assert missing == ["worker command: python -m no_such_module worker -Q light,heavy --concurrency 2 -l info"]


@pytest.mark.parametrize("invocation", PYTHON_C, ids=lambda invocation: invocation.id)
def test_python_one_liners_compile(invocation):
    compile(invocation.argv[2], str(invocation), "exec")


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def test_dockerfile_base_image_and_user():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"


def test_dockerfile_requirements_exist_and_are_copied():
    copied = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY":
            sources = [part for part in shlex.split(arguments) if not part.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                copied.add(source)
    requirements = [
        argv[argv.index("-r") + 1]
        for inv in INVOCATIONS
        if inv.where == "Dockerfile RUN" and inv.program in {"pip", "pip3"}
        for argv in [list(inv.argv)]
        if "-r" in argv
    ]
    assert requirements, "the Dockerfile does not pip install -r a requirements file"
    for name in requirements:
        assert (ROOT / name).is_file(), f"{name} does not exist"
        assert name in copied or "." in copied, f"{name} is not copied into the image"


def test_dockerfile_collects_static_and_serves_with_gunicorn():
    assert any(inv.where == "Dockerfile RUN" and name == "collectstatic" for inv, name, _ in MANAGEMENT)
    assert Path(dockerfile_cmd()[0]).name == "gunicorn"


def test_dockerfile_bakes_no_secret_key():
    for keyword, arguments in dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            assert "SECRET_KEY" not in arguments, f"{keyword} {arguments}: the image would carry a secret"


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    # var/ holds the embedded database and a generated secret_key.
    assert {".git", ".venv", "var", ".env"} <= ignored
    for needed in ("requirements.txt", "manage.py", "traceability", "*.py", "*"):
        assert needed not in ignored, f".dockerignore drops {needed}, which the image needs"
