"""Bulk inserts for the hot tables, through ``COPY`` on PostgreSQL.

Django's ``bulk_create`` builds one multi-row ``INSERT`` per batch; at 10,000 rows its SQL
compilation and parameter binding cost more than the database's work (measured on an EPCIS
import: 0.3–0.5 s per 10,000 units, build records or packings). ``COPY`` streams the same rows. The
ids are taken from the table's sequence first, in one query, so the caller gets them back as
``bulk_create`` gives them. Elsewhere (SQLite) it is ``bulk_create``.

Two doors: ``bulk_insert`` takes model instances, ``insert_rows`` plain tuples. A model instance
costs 10–35 µs to build (its descriptors and defaults), more than its ``COPY``; on the EPCIS
import's million-row paths the tuples are what pays.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

import orjson
from django.db import connection, models
from django.utils import timezone

M = TypeVar("M", bound=models.Model)
BATCH_SIZE = 5_000


def bulk_insert(model: type[M], objects: Sequence[M]) -> list[M]:
    """Insert ``objects`` (new, unsaved) and return them with their primary keys set."""
    objects = list(objects)
    if connection.vendor != "postgresql" or not objects:
        return model._default_manager.bulk_create(objects, batch_size=BATCH_SIZE)
    fields = _non_auto_fields(model)
    values = [_value_of(f) for f in fields]
    ids = _copy(model, fields, ([value(obj) for value in values] for obj in objects), len(objects))
    pk = model._meta.pk.attname
    for obj, id_ in zip(objects, ids or (None,) * len(objects), strict=True):
        if id_ is not None:
            setattr(obj, pk, id_)
        obj._state.adding, obj._state.db = False, connection.alias
    return objects


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[int]:
    """Insert rows given as plain values of ``fields`` (attribute names, ``owner_id`` for a foreign
    key) and return their new primary keys, in order ([] for a table whose key is not generated).
    Every other field takes its default, computed once for the whole batch (``auto_now``: now)."""
    rows = list(rows)
    if not rows:
        return []
    meta = model._meta
    given = [_concrete_field(model, name) for name in fields]
    rest = [f for f in _non_auto_fields(model) if f not in given]
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(fields, row, strict=True))) for row in rows]
        created = model._default_manager.bulk_create(objects, batch_size=BATCH_SIZE)
        return [obj.pk for obj in created] if _is_auto(meta.pk) else []
    constants = [_default(f) for f in rest]
    dumps = {i: _json_dumps(f) for i, f in enumerate(given) if isinstance(f, models.JSONField)}
    if dumps:
        rows = [[dumps[i](v) if i in dumps else v for i, v in enumerate(row)] for row in rows]
    return _copy(model, [*given, *rest], ([*row, *constants] for row in rows), len(rows))


def _copy(model: type[models.Model], fields: list[models.Field], rows: Iterable[Sequence], count: int) -> list[int]:
    """COPY ``count`` rows of ``fields`` values, each behind a primary key taken from the sequence."""
    meta = model._meta
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if _is_auto(meta.pk):
            sequence = _sequence(meta.db_table, meta.pk.column)
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
            ids = [pk for (pk,) in cursor.fetchall()]
            columns = ", ".join(quote(_column(f)) for f in [meta.pk, *fields])
            rows = ((pk, *row) for pk, row in zip(ids, rows, strict=True))
        else:  # the key is in the rows (a composite key, say): the caller knows it
            ids = []
            columns = ", ".join(quote(_column(f)) for f in fields)
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return ids


@functools.cache
def _sequence(table: str, column: str) -> str:
    """The table's id sequence, looked up once per process: ``nextval(pg_get_serial_sequence(…))``
    repeats the catalog lookup for every row, 9× the cost of the ``nextval`` itself."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        return cursor.fetchone()[0]


def _is_auto(field: models.Field) -> bool:
    return field.primary_key and isinstance(field, models.AutoField | models.BigAutoField)


def _concrete_field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):  # a reverse relation: another table's column
        raise TypeError(f"{model._meta.label}.{name} is not a column of its table")
    return field


def _column(field: models.Field) -> str:
    # Only fields without a column of their own (a ForeignObject) have None, and none is concrete.
    if field.column is None:
        raise TypeError(f"{field} has no column")
    return field.column


def _non_auto_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not _is_auto(f)]


def _default(field: models.Field) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    value = field.get_default()
    return _json_dumps(field)(value) if isinstance(field, models.JSONField) else value


def _json_dumps(field: models.JSONField) -> Callable[[Any], str | None]:
    """JSON text for a JSON field's value: orjson (7× the standard library) unless the field names
    its own encoder."""
    if field.encoder is not None:
        return lambda v: None if v is None else json.dumps(v, cls=field.encoder)
    return lambda v: None if v is None else _orjson_dumps(v)


def _orjson_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson declines (integers beyond 64 bits, say) the standard library writes
        return json.dumps(value)


def _value_of(field: models.Field) -> Callable[[models.Model], Any]:
    """How to read a field's database value: psycopg adapts plain attributes itself, so only JSON and
    auto_now fields go through Django (``get_db_prep_save`` on every field doubled the cost)."""
    if isinstance(field, models.JSONField):
        dumps = _json_dumps(field)
        return lambda obj: dumps(getattr(obj, field.attname))
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, True)
    return attrgetter(field.attname)
