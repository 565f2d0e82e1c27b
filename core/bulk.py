"""Writing many rows in one statement, cheaply in Python: rows sent as one JSON document that PostgreSQL
unpacks (`jsonb_to_recordset`), arrays of numbers and UUIDs sent as literals it parses
(`array_literal`), repeated values sent once (`distinct_with_positions`), instances built from returned
rows without `Model.__init__`, and the cyclic collector held off while a batch is built
(`cyclic_gc_paused`). The SLA sweep writes thousands of events, outbox rows, deliveries and digests per
batch, and adapting each value in Python (Django's bulk_create and bulk_update, psycopg's lists) cost
more than the database spends storing them. One path for one row and for thousands.
"""

from __future__ import annotations

import datetime
import gc
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


_ARRAY_ITEM = r"(?:-?[0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|NULL)"
_ARRAY_OF_NUMBERS_AND_UUIDS = re.compile(rf"\{{(?:{_ARRAY_ITEM}(?:,{_ARRAY_ITEM})*)?\}}")


def array_literal(values: Sequence[int | uuid.UUID | None]) -> str:
    """A PostgreSQL array literal (`{1,NULL,3}`) of integers or UUIDs, for a statement to cast
    (`%(ids)s::bigint[]`): PostgreSQL parses the text in C, where psycopg adapts a list element by element
    in Python — twice the CPU for the thousands of values of an SLA sweep's batch. A literal that is not
    only numbers, UUIDs and NULLs (a string slipped in) is refused with ValueError, never passed on."""
    literal = "{" + ",".join(["NULL" if value is None else str(value) for value in values]) + "}"
    if any(isinstance(value, str | bytes) for value in values) or not _ARRAY_OF_NUMBERS_AND_UUIDS.fullmatch(
        literal
    ):
        raise ValueError("an array literal holds integers, UUIDs and NULLs only")
    return literal


def distinct_with_positions(values: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """The distinct values, and for each item the 1-based position of its value among them: a column that
    repeats across a batch (the events' time: one for a whole batch, as a rule) is sent once and picked
    in SQL as `(%(distinct)s::type[])[q.position]` — adapting each timestamp or UUID again costs more in
    Python than the statement's work on it."""
    positions: dict[Any, int] = {}
    of_each = [positions.setdefault(value, len(positions) + 1) for value in values]
    return list(positions), of_each


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


@dataclass(frozen=True)
class Sql:
    """A SQL expression standing for a value in a JSON template (`jsonb_sql`): a column of the statement."""

    expression: str


def jsonb_sql(template: Any, params: dict[str, Any], *, prefix: str) -> str:
    """The `jsonb_build_object` expression that builds `template` in SQL, so that a statement writing in
    bulk builds exactly the payload a Python function declares: dicts become objects, `Sql` values their
    expression, None a JSON null, other values named parameters (added to `params` as `<prefix>_<n>`)."""
    if isinstance(template, Sql):
        return template.expression
    if template is None:
        return "NULL"
    if isinstance(template, dict):
        if not all(re.fullmatch(r"[a-z_]+", key) for key in template):
            raise ValueError(f"JSON template keys must be plain names: {sorted(template)}")
        members = ", ".join(
            f"'{key}', {jsonb_sql(value, params, prefix=prefix)}" for key, value in template.items()
        )
        return f"jsonb_build_object({members})"
    name = f"{prefix}_{len(params)}"
    params[name] = template
    return f"%({name})s"
