"""Writing many rows in one statement, with the rows sent as one JSON document that PostgreSQL unpacks
(`jsonb_to_recordset`): the SLA sweep writes thousands of events, outbox rows and ticket counters per
batch, and adapting each value in Python (Django's bulk_create and bulk_update, psycopg's arrays) cost more
than the database spends storing them. One path for one row and for thousands.
"""

from __future__ import annotations

import datetime
import gc
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form here")


def _record_type(fields: Sequence[Field]) -> str:
    return ", ".join(f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields)


# Fields whose Python values json.dumps writes as PostgreSQL reads them (UUIDs and aware datetimes through
# `_json_value`): their `get_prep_value` (a to_python and checks per value) is skipped, the rest keep it.
_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "JSONField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
        "UUIDField",
    }
)


def _prepared(field: Field) -> Callable[[Any], Any]:
    internal = field.get_internal_type()
    if internal in _AS_IS:
        return _as_is
    if internal == "DateTimeField":
        # An aware datetime goes as it is; a naive one through Django (which warns and makes it aware).
        return lambda value: (
            value if value is None or value.tzinfo is not None else field.get_prep_value(value)
        )
    return field.get_prep_value


def _as_is(value: Any) -> Any:
    return value


def _rows(objects: Sequence[Model], fields: Sequence[Field]) -> str:
    columns = [(field.column, field.attname, _prepared(field)) for field in fields]
    return json.dumps(
        [{column: prepare(getattr(obj, attname)) for column, attname, prepare in columns} for obj in objects],
        default=_json_value,
        separators=(",", ":"),
    )


def bulk_insert(model: type[M], objects: Sequence[M]) -> list[M]:
    """Insert unsaved instances (auto-incremented primary keys) in one statement; sets their primary keys
    (RETURNING gives them in insertion order, as Django's own bulk_create relies on)."""
    if not objects:
        return []
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "  # noqa: S608 - the model's names
            f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({_record_type(fields)}) "
            f"RETURNING {connection.ops.quote_name(meta.pk.column)}",
            [_rows(objects, fields)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            setattr(obj, meta.pk.attname, pk)
            obj._state.adding = False
            obj._state.db = connection.alias
    return list(objects)


def bulk_update(model: type[M], objects: Sequence[M], fields: Sequence[str]) -> None:
    """Write `fields` of saved instances in one statement; a value the same for every instance is sent once."""
    if not objects:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    varying: list[Field] = []
    uniform: dict[Field, Any] = {}
    for field in (meta.get_field(name) for name in dict.fromkeys(fields)):
        values = [getattr(obj, field.attname) for obj in objects]
        if all(value == values[0] for value in values):
            uniform[field] = field.get_db_prep_save(values[0], connection)
        else:
            varying.append(field)
    assignments = [f"{quote(f.column)} = %s" for f in uniform]
    assignments += [f"{quote(f.column)} = r.{quote(f.column)}" for f in varying]
    key = [meta.pk, *varying]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS t SET {', '.join(assignments)} "  # noqa: S608 - the model's names
            f"FROM jsonb_to_recordset(%s::jsonb) AS r({_record_type(key)}) "
            f"WHERE t.{quote(meta.pk.column)} = r.{quote(meta.pk.column)}",
            [*uniform.values(), _rows(objects, key)],
        )


def instances_from_rows(model: type[M], attnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[M]:
    """Saved instances of `model` from rows of values (in `attnames` order, as the database returned them),
    without `Model.__init__` and its signals: the SLA sweep hands tens of thousands of rows it wrote in SQL
    to the code that reads model instances, and building them through `from_db` cost more than writing
    them. Fields left out are deferred, as with `QuerySet.only`: reading one loads it."""
    alias = connection.alias
    instances = []
    for row in rows:
        obj = model.__new__(model)
        obj.__dict__.update(zip(attnames, row, strict=True))
        state = obj._state = ModelState()
        state.adding = False
        state.db = alias
        instances.append(obj)
    return instances


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = True


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for the block (nested and threaded uses included).

    A bulk writer builds tens of thousands of short-lived, acyclic objects (rows, instances) that reference
    counting frees; meanwhile the collector's full passes walk every long-lived object of the process
    (Django's, the app's) again and again — a third of the SLA sweep's Python time. Memory stays bounded by
    the block's own batches."""
    global _gc_pauses, _gc_was_enabled  # noqa: PLW0603 - one process-wide switch, counted
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()
