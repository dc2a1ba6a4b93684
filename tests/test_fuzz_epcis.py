"""Property tests of the EPCIS capture interface: events generated from GS1's EPCIS 2.0 JSON schema
(hypothesis-jsonschema) and POSTed as a QA engineer never get a server error.

A document to ``/epcis/capture`` is accepted (its job then ends, captured or with its problems, never
with an exception) or refused at once leaving no capture and no job; an event to ``/epcis/events`` is
captured or refused leaving the ledger as it was. ``LEDGER_FUZZ_EXAMPLES`` bounds the examples a test
(default 30); the figures are written at the end of the run.

The schema's root chooses a definition with ``if``/``then``, which hypothesis-jsonschema cannot generate
from: the strategy draws from the five event definitions (ObjectEvent, AggregationEvent,
TransactionEvent, TransformationEvent, AssociationEvent) with the document's envelope written here.
"""

from __future__ import annotations

import json
import os
import time
import types
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils

from tests.conftest import CORPUS, report
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member
from tests.test_epcis_capture import CONTEXT, ledger_written
from traceability.core.models import Job, JobStatus
from traceability.events.models import EpcisCapture

EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "30"))
EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]

_figures: Counter[str] = Counter()
_seconds: Counter[str] = Counter()


class _Many:
    """hypothesis-jsonschema 0.23.1 draws an object's properties with ``many(...).more()``, which
    Hypothesis 6.170 replaced by a context manager iterated in a loop: the old calls over the new."""

    def __init__(self, data: Any, **sizes: Any) -> None:
        self._many = conjecture_utils.many(data, **sizes)
        self._many.__enter__()
        self._elements = iter(self._many)

    def more(self) -> bool:
        try:
            next(self._elements)
        except StopIteration:
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


def _events() -> st.SearchStrategy[dict[str, Any]]:
    """Events of the five kinds, as GS1's JSON schema allows them (anything where the corpus is absent:
    the ``corpus`` fixture then skips or fails the test)."""
    if not CORPUS.is_dir():
        return st.just({})
    import hypothesis_jsonschema._from_schema as generator
    from hypothesis_jsonschema import from_schema

    generator.cu = types.SimpleNamespace(**{**vars(conjecture_utils), "many": _Many})  # type: ignore[attr-defined]
    definitions = json.loads((CORPUS / "EPCIS-JSON-Schema.json").read_text())["definitions"]
    return st.one_of(
        [from_schema({"$ref": f"#/definitions/{kind}", "definitions": definitions}) for kind in EVENT_TYPES]
    )


EVENTS = st.deferred(_events)  # built on first use: reading the schema takes a quarter of a minute
# No shrinking: a failure is reported as generated. Shrinking a document drawn from GS1's schema took
# minutes, and on PostgreSQL a server error leaves the test's transaction unusable for the next tries.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name, count in sorted(_figures.items()):
        report(request, f"EPCIS property test {name}: {count} examples, {_seconds[name]:.1f} s")


def _post(client: Any, url: str, body: dict[str, Any]) -> Any:
    return client.generic("POST", url, json.dumps(body).encode(), content_type="application/ld+json")


def _kept() -> tuple[int, ...]:
    return (*ledger_written(), EpcisCapture.objects.count(), Job.objects.count())


@FUZZ
@given(events=st.lists(EVENTS, min_size=1, max_size=3))
def test_a_generated_document_is_captured_or_refused_never_a_server_error(corpus, figures, events):
    # given
    started = time.monotonic()
    client = client_for(member(OrganisationFactory()))
    before = _kept()
    document = {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }
    # when
    response = _post(client, "/epcis/capture", document)
    # then
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 202:
        capture = EpcisCapture.objects.get(pk=int(response.headers["Location"].rsplit("/", 1)[1]))
        job = run_job(capture.job)  # an exception in the job is raised here, and fails the test
        assert job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
        assert job.error == "" or not job.error.split(":", 1)[0].endswith("Error"), job.error
    else:
        assert response.status_code in (400, 413, 415), response.content[:500]
        assert response.json()["type"].startswith("epcisException:"), response.json()
        assert _kept() == before
    _figures["POST /epcis/capture"] += 1
    _seconds["POST /epcis/capture"] += time.monotonic() - started


@FUZZ
@given(event=EVENTS)
def test_a_generated_event_is_captured_or_refused_never_a_server_error(corpus, figures, event):
    # given
    started = time.monotonic()
    client = client_for(member(OrganisationFactory()))
    before = ledger_written()
    # when
    response = _post(client, "/epcis/events", {"@context": CONTEXT, **event})
    # then
    assert response.status_code < 500, response.content[:500]
    if response.status_code != 201:
        assert response.status_code in (400, 409, 413, 415), response.content[:500]
        assert response.json()["type"].startswith("epcisException:"), response.json()
        assert ledger_written() == before
    _figures["POST /epcis/events"] += 1
    _seconds["POST /epcis/events"] += time.monotonic() - started
