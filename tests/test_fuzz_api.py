"""Fuzzing the REST API from its OpenAPI schema (schemathesis): every operation, as a QA engineer with a
token, on a world with data; no answer may be a server error, and each must match what the schema
declares for its status.

Each operation is one test of ``LEDGER_FUZZ_EXAMPLES`` generated requests (default 30, small for CI);
half the time a path's identifier is replaced by one that exists (the world's finding, run, job, unit), so
requests reach past "not found". The run's figures (requests per operation, time) are written at the end.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from packs.models import Unit
from suppliers.services import api_token_create
from tests.conftest import report
from tests.test_api_support import client_for, member, openapi_schema, traced, urn
from tests.trace_world import build_world
from traceability.investigations.evidence import finding_attach
from traceability.investigations.models import Finding, TraceRun

EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "30"))

# The answer is no server error and matches what the schema declares for its status. Not checked yet:
# status codes the schema leaves out (a detail's 404), and whether schema-valid requests are accepted.
CHECKS = [not_a_server_error, response_schema_conformance]

schema = schemathesis.openapi.from_dict(openapi_schema())
schema.app = get_wsgi_application()

pytestmark = pytest.mark.django_db

_requests: Counter[str] = Counter()
_seconds: Counter[str] = Counter()


@pytest.fixture(scope="module")
def world(
    module_db: None, django_db_blocker: Any, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """The trace world, a traced finding on M1 with an attachment, and a QA engineer's token of the brand;
    files stored in a folder of the module's own."""
    media = override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"))
    media.enable()
    request.addfinalizer(media.disable)
    with django_db_blocker.unblock():
        w = build_world()
        qa = member(w.brand)
        body = traced(client_for(qa), w)
        finding = Finding.objects.get(pk=body["id"])
        run = TraceRun.objects.get(pk=body["run"])
        attachment, _ = finding_attach(
            finding=finding, file=SimpleUploadedFile("r.pdf", b"%PDF-1.7\n%%EOF\n"), name="r.pdf", by=qa
        )
        _, key = api_token_create(membership=qa.memberships.get())
        unit = urn(Unit.objects.get(pk=w.u[1]).identity)
    w.headers = {"Authorization": f"Token {key}"}
    w.known = {
        "id": {
            "findings": finding.pk,
            "investigations": run.investigation_id,
            "runs": run.pk,
            "jobs": str(run.job_id),
        },
        "ident": unit,
        "attachment": attachment.pk,
    }
    # A WSGI request closes the database connection when it ends, which would end the transaction the
    # module's data lives in; Django's test client turns that off for its requests (and back on after
    # them, hence here, after the ones above).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    request.addfinalizer(lambda: signals.request_started.connect(close_old_connections))
    request.addfinalizer(lambda: signals.request_finished.connect(close_old_connections))
    yield w
    report(
        request,
        f"schemathesis: {sum(_requests.values())} requests over {len(_requests)} operations "
        f"({EXAMPLES} examples each at most), {sum(_seconds.values()):.1f} s answering them",
    )


def _known(w: SimpleNamespace, path: str, name: str, generated: Any) -> Any:
    """An identifier of ``path`` that exists in the world, or the generated one (e.g. a CSV kind)."""
    if name == "id":
        return w.known["id"][path.split("/")[3]]
    return w.known.get(name, generated)


@schema.parametrize()
@schema.given(real=st.booleans())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case: Any, real: bool, world: SimpleNamespace) -> None:
    # given a request generated from the schema, its identifiers half the time ones that exist
    if real and case.path_parameters:
        case.path_parameters = {
            name: _known(world, case.operation.path, name, value) for name, value in case.path_parameters.items()
        }
    # when
    started = time.monotonic()
    case.headers = {**(case.headers or {}), **world.headers}
    response = case.call()
    _seconds[case.operation.label] += time.monotonic() - started
    _requests[case.operation.label] += 1
    # then
    case.validate_response(response, checks=CHECKS)
