"""``core.db.CompiledOnce``: a query of the ORM compiled once per process, each call's value bound
where its marker was, answering as the ORM answers on PostgreSQL (prepared) and SQLite alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from tests.trace_world import build_world
from traceability.core.db import CompiledOnce

pytestmark = pytest.mark.django_db


def identities(w, *numbers: int) -> list[str]:
    return [Unit.objects.get(pk=w.u[n]).identity for n in numbers]


def test_each_call_binds_its_own_value_and_reads_values_as_the_orm_does():
    # given a query of units by identity, compiled at its first call
    w = build_world()
    by_identity = CompiledOnce(
        lambda identity: Unit.objects.filter(identity=identity).order_by().values_list(*CompiledOnce.columns(Unit))
    )
    # when asked for two units and an identity nobody has
    first, second, nobody = (by_identity.rows(v) for v in (*identities(w, 1, 2), "sgtin:x:y"))
    # then each answer is its own unit's, with the ORM's types (SQLite's datetimes are text underneath)
    expected = list(
        Unit.objects.filter(pk__in=[w.u[1], w.u[2]]).order_by("pk").values_list(*CompiledOnce.columns(Unit))
    )
    assert [tuple(first[0]), tuple(second[0])] == expected
    assert nobody == []
    assert isinstance(first[0][CompiledOnce.columns(Unit).index("produced_at")], dt.datetime)


def test_an_instance_is_the_model_the_orm_would_build_and_the_statement_is_compiled_once():
    # given
    w = build_world()
    by_identity = CompiledOnce(
        lambda identity: Unit.objects.filter(identity=identity).order_by().values_list(*CompiledOnce.columns(Unit))
    )
    third, fourth = identities(w, 3, 4)
    with CaptureQueriesContext(connection) as first_call:
        by_identity.rows(third)
    # when
    with CaptureQueriesContext(connection) as queries:
        unit = CompiledOnce.instance(Unit, by_identity.rows(fourth)[0])
    # then one statement, the first call's with the other value, and a unit equal in every field to the ORM's
    assert len(queries.captured_queries) == len(first_call.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].replace(fourth, third) == first_call.captured_queries[0]["sql"]
    assert unit == Unit.objects.get(pk=w.u[4])
    assert {f.attname: getattr(unit, f.attname) for f in Unit._meta.concrete_fields} == Unit.objects.filter(
        pk=w.u[4]
    ).values(*CompiledOnce.columns(Unit)).get()
    assert not unit._state.adding


def test_a_query_that_does_not_use_its_value_exactly_once_is_refused():
    # given queries that ignore their value, or use it twice
    ignoring = CompiledOnce(lambda value: Unit.objects.filter(serial="1").values_list("pk"))
    twice = CompiledOnce(lambda value: Unit.objects.filter(serial=value, identity=value).values_list("pk"))
    # when / then
    for query in (ignoring, twice):
        with pytest.raises(ValueError, match="exactly once"):
            query.rows("1")
