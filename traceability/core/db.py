"""Database helpers, the one place that knows PostgreSQL from SQLite.

``field__any=ids``: a long list of values sent as one parameter, not one parameter per value.

The trace filters on thousands of lot, segment, unit and container ids at once. As ``__in``,
Django writes ``IN (%s, %s, …)`` with a parameter per id, and building, sending and planning
that statement cost 40–120 ms per query at 7,000 ids in the 10M-unit bench world while the
query itself ran in under a millisecond. ``__any`` sends the list as one value: a PostgreSQL
array (``= ANY(%s)``), or on SQLite a JSON array read by ``json_each`` (which also lifts
SQLite's limit on the number of parameters). This module is the one place that knows the
difference; ``any_sql`` is the same for hand-written SQL.

Pass a set (or any iterable but a list or tuple): Django resolves a list or tuple value element by
element before any lookup sees it, which at 30,000 ids cost more than the query itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Field, ForeignObject, Lookup, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler


def any_sql(column: str, values: Iterable[int | str], connection: BaseDatabaseWrapper) -> tuple[str, list]:
    """``column`` is one of ``values`` (ids, or strings such as identities): the SQL and its single
    parameter, for this database."""
    values = list(values)
    if not values:
        return "1 = 0", []  # one of nothing: never (and the array's element type cannot be told)
    if isinstance(values[0], str):
        # Strings travel as one JSON array: no quoting rules of PostgreSQL's array literals to get right.
        if connection.vendor == "postgresql":
            return f"{column} = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))", [json.dumps(values)]
        return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(values)]
    ids = ",".join(str(int(value)) for value in values)
    if connection.vendor == "postgresql":
        # One text literal cast to an array: Django's psycopg cursor binds on the client, where
        # dumping a Python list of 30,000 ints took 50 ms per query, and joining them 3 ms.
        return f"{column} = ANY(%s::bigint[])", [f"{{{ids}}}"]
    return f"{column} IN (SELECT value FROM json_each(%s))", [f"[{ids}]"]


def in_cte_sql(column: str, cte: str, cte_column: str, connection: BaseDatabaseWrapper) -> str:
    """``column`` is one of the rows of common table expression ``cte``, planned as a short list.

    PostgreSQL guesses a recursive CTE's size from nothing (tens of thousands of rows) and then
    merge-joins the whole table; ``= ANY(ARRAY(subquery))`` is a parameter to it, so it probes the
    index once per row actually found. SQLite's planner probes the index for ``IN`` as it is.
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(ARRAY(SELECT {cte_column} FROM {cte}))"
    return f"{column} IN (SELECT {cte_column} FROM {cte})"


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return self.rhs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[str | int, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql, params = any_sql(lhs, self.rhs, connection)
        return sql, (*lhs_params, *params)


# Related fields keep their own lookups (they do not inherit Field's), so both are registered.
Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)


@contextmanager
def cursor_planned_without(*plans: str) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL plans without ``plans`` (``"seqscan"``, ``"hashjoin"``).

    ``SET LOCAL`` lasts to the end of the transaction, not of a savepoint: inside a caller's
    transaction the settings are put back on leaving, so the caller's later statements are planned
    as usual; outside one, a transaction is opened for them. Elsewhere (SQLite) a plain cursor.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            yield cursor
            return
        inside = connection.in_atomic_block
        with transaction.atomic(savepoint=False):
            cursor.execute("; ".join(f"SET LOCAL enable_{plan} = off" for plan in plans))
            yield cursor
            if inside:
                cursor.execute("; ".join(f"SET LOCAL enable_{plan} TO DEFAULT" for plan in plans))


class _PreparingCursor(psycopg.Cursor):
    """psycopg's cursor binding on the server, each statement prepared at its first execution."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugCursor(CursorDebugWrapper):
    """Logs a prepared statement as written, parameters apart: it is never composed on the client."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL parses and plans once per connection, not per execution.

    For a large statement run on every request of a page: planning one of two dozen common table
    expressions cost 3 ms, executing it 5. The statement is prepared at its first execution on a
    connection (psycopg's server-side binding), and planned once for any parameters where the
    connection's ``plan_cache_mode`` is ``force_generic_plan`` (the settings ask it, with a
    ``prepare_threshold``: Django prepares nothing unless one is set, and binds everything else on
    the client, so this cursor's statements are the only ones prepared). Write the statement with
    parameters PostgreSQL can type (casts where it cannot tell), and with plans that stay good
    whatever they are (index probes, not estimates). Queries are logged and wrapped as any other's.
    Elsewhere (SQLite, or no ``prepare_threshold``) a plain cursor.
    """
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = _PreparingCursor(connection.connection)
    wrapped = _PreparedDebugCursor(raw, connection) if connection.queries_logged else CursorWrapper(raw, connection)
    with wrapped as cursor:
        yield cursor


M = TypeVar("M", bound=Model)


class CompiledOnce:
    """A ``values_list`` query of the ORM compiled to SQL once per process, run through
    ``prepared_cursor``: for a statement every request makes, whose only varying parameter is one
    string (an API token's hash, the identity a request names).

    Building and compiling the token's sign-in query (three joins, three EXISTS of the access
    policy) took 1.6 ms of Python on every request in the bench world, and planning it 0.4 ms more
    on the server; the prepared statement runs in 0.2 ms. ``build(value)`` makes the queryset for
    a parameter; it is called once, with a marker in place of the value, whose position among the
    compiled parameters is where each call's value goes. Nothing else in the statement may change
    between calls: a time in it must be the database's (``Now()``), not one from Python. The values
    come back as the ORM returns them (its converters applied: SQLite's datetimes are text).
    """

    _MARKER = "\x00compiled-once-parameter"

    def __init__(self, build: Callable[[str], QuerySet[Any]]) -> None:
        self._build = build
        self._compiled: tuple[str, list[Any], int, list[tuple[int, list[Any], Any]]] | None = None
        self._lock = threading.Lock()

    def _compile(self) -> tuple[str, list[Any], int, list[tuple[int, list[Any], Any]]]:
        if self._compiled is not None:
            return self._compiled
        with self._lock:
            if self._compiled is None:
                compiler = self._build(self._MARKER).query.get_compiler(connection=connection)
                sql, params = compiler.as_sql()
                params = list(params)
                if params.count(self._MARKER) != 1:
                    raise ValueError("the query must use its parameter exactly once")
                converters = compiler.get_converters([column for column, _, _ in compiler.select])
                self._compiled = (
                    sql,
                    params,
                    params.index(self._MARKER),
                    [(pos, convs, expression) for pos, (convs, expression) in converters.items()],
                )
            return self._compiled

    @staticmethod
    def columns(model: type[Model], prefix: str = "") -> list[str]:
        """The lookups of ``model``'s concrete fields (through ``prefix``, a relation's path), in
        the order ``instance`` takes their values."""
        return [prefix + field.attname for field in model._meta.concrete_fields]

    @staticmethod
    def instance(model: type[M], values: Sequence[Any]) -> M:
        """A ``model`` instance as the ORM builds one from the values of ``columns(model)``."""
        return model.from_db(connection.alias, CompiledOnce.columns(model), values)

    def rows(self, value: str) -> list[list[Any]]:
        """The query's rows for ``value``."""
        sql, params, at, converters = self._compile()
        params = [*params[:at], value, *params[at + 1 :]]
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            rows = [list(row) for row in cursor.fetchall()]
        for row in rows:
            for pos, convs, expression in converters:
                for converter in convs:
                    row[pos] = converter(row[pos], expression, connection)
        return rows
