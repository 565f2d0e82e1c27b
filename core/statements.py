"""Compiled `.values()` queries kept by shape, so that a hot read builds and compiles its query once.

Building a queryset of 40 columns and six joins and compiling it to SQL cost more than PostgreSQL took to
run it. A `StatementCache` keeps, per *shape* (whatever decides the query's structure: the party's kind,
which filters are set, the ordering, the page size), the SQL, its parameters and the row converters; the
request's own values (an id, an address, a cursor position) are *slots*, put into the parameters.

How a statement is learnt, without trusting anyone's word on which parameters the slots become: the
caller's `build(values)` makes the queryset; it is built and compiled twice, with two different sets of
stand-in values, and kept only if both give the same SQL text and the same parameters everywhere except
where the stand-ins are. Otherwise (a value changes the SQL, is transformed on its way into a parameter,
or makes the query empty) the shape is marked uncacheable and every request builds its query as before.

Rows come back as `.values()` gives them (Django's converters applied, names in its order), read through
Django's cursor (logged and counted like any query) as a prepared statement (core/prepared.py).
"""

from __future__ import annotations

import datetime
import re
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import JSONField, QuerySet

from core.prepared import prepared_statements

Build = Callable[[Mapping[str, Any]], QuerySet[Any, Any]]


@dataclass(frozen=True)
class _Statement:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str, type | None], ...]  # (parameter index, slot name, the value's wrapper)
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]  # (column, converter functions, expression)


_UNCACHEABLE = object()


def _stand_in(value: Any, index: int, variant: int) -> Any:
    """A value of `value`'s type that no real request sends (never sent to the database either)."""
    if isinstance(value, bool):
        raise TypeError("a flag is part of the shape, not a slot")
    if isinstance(value, int):
        return -1_900_000_000 - 2 * index - variant
    if isinstance(value, str):
        return f"\x1fslot{index}.{variant}\x1f"
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=(0xF1A7 << 112) + 2 * index + variant)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return datetime.datetime(1901, 1, 1, 0, index, variant, tzinfo=datetime.UTC)
    raise TypeError(f"no stand-in for a slot of type {type(value).__name__}")


def _kind(value: Any) -> type:
    """A value's type, an integer's wrapper (psycopg's Int2, Int4, Int8: int subclasses) as int."""
    return int if isinstance(value, int) and not isinstance(value, bool) else type(value)


def _compiled(queryset: QuerySet[Any, Any], using: str) -> tuple[Any, str, tuple[Any, ...]]:
    compiler = queryset.query.get_compiler(using)
    sql, params = compiler.as_sql()
    return compiler, sql, tuple(params)


def _learn(build: Build, values: Mapping[str, Any], using: str) -> _Statement | None:
    names_of_slots = sorted(values)
    try:
        stand_ins = [
            {name: _stand_in(values[name], index, variant) for index, name in enumerate(names_of_slots)}
            for variant in (0, 1)
        ]
        queryset = build(stand_ins[0])
        compiler, sql, params = _compiled(queryset, using)
        _, other_sql, other_params = _compiled(build(stand_ins[1]), using)
    except (TypeError, EmptyResultSet, FullResultSet):
        return None
    if sql != other_sql or len(params) != len(other_params):
        return None
    by_stand_in = {(_kind(value), value): name for name, value in stand_ins[0].items()}
    slots = []
    for index, (first, second) in enumerate(zip(params, other_params, strict=True)):
        name = by_stand_in.get((_kind(first), first)) if isinstance(first, Hashable) else None
        if name is not None and second == stand_ins[1][name] and type(second) is type(first):
            # Django sends an integer field's value in psycopg's wrapper of its size (Int4, Int8): kept.
            wrap = type(first) if type(first) is not type(stand_ins[0][name]) else None
            slots.append((index, name, wrap))
        elif first != second or type(first) is not type(second):
            return None
    query = queryset.query
    # The names as Django's `.values()` reads them (`ValuesIterable`): in the order `.values()` gave them
    # where the query keeps it (`selected`), else in its order of kinds.
    names = (
        tuple(query.selected)
        if query.selected
        else (*query.extra_select, *query.values_select, *query.annotation_select)
    )
    columns = compiler.select[: compiler.col_count]
    expressions = [column[0] for column in columns]
    if len(names) != len(expressions) or query.low_mark or query.combinator:
        return None
    # The SQL's columns must be in the names' order (a named column where another name is expected would give
    # every row's values under the wrong keys): checked, not trusted.
    if any(alias is not None and alias != name for (_, _, alias), name in zip(columns, names, strict=True)):
        return None
    converters = compiler.get_converters(expressions)
    return _Statement(
        sql=sql,
        params=params,
        slots=tuple(slots),
        names=names,
        converters=tuple(
            (column, tuple(_faster(function) for function in functions), expression)
            for column, (functions, expression) in converters.items()
        ),
    )


def _has_float(value: Any) -> bool:
    # Loops rather than any() over generators: this runs for every JSON value of every row, 150 a page.
    kind = type(value)
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return kind is float
    for item in value:
        item_kind = type(item)
        if item_kind is float or ((item_kind is dict or item_kind is list) and _has_float(item)):
            return True
    return False


# Where a document may hold a float: a number with a fraction or an exponent (in JSON, a digit then `.`, `e`
# or `E`) or an integer of 19 digits or more (beyond orjson's 64-bit integers, which it reads as floats).
# Text may match too (a version, a time): then the values are looked at.
_MAYBE_FLOAT = re.compile(r"\d[.eE]|\d{19}")


def _json_from_db(json_from_db_value: Callable[..., Any]) -> Callable[..., Any]:
    """`JSONField.from_db_value` (no custom decoder) with orjson: json.loads took a twentieth of the list
    page's time (100 small documents a page). The same values: orjson reads an integer beyond 64 bits as a
    float, so a document with any float in it is read again by json."""

    def from_db_value(value: Any, expression: Any, connection: Any) -> Any:
        if type(value) is str:
            try:
                loaded = orjson.loads(value)
            except orjson.JSONDecodeError:
                return json_from_db_value(value, expression, connection)
            if _MAYBE_FLOAT.search(value) is None or not _has_float(loaded):
                return loaded
        return json_from_db_value(value, expression, connection)

    return from_db_value


def _faster(function: Callable[..., Any]) -> Callable[..., Any]:
    field = getattr(function, "__self__", None)
    if getattr(function, "__func__", None) is JSONField.from_db_value and field.decoder is None:  # type: ignore[union-attr]
        return _json_from_db(function)
    return function


_caches: weakref.WeakSet[StatementCache] = weakref.WeakSet()


def forget_statements() -> None:
    """Empty every cache: what builds the queries changed (an app registered a column of ticket rows)."""
    for cache in list(_caches):
        cache.clear()


class StatementCache:
    """Statements of one hot read, by shape (at most `size`, least recently used first out)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._statements: OrderedDict[Hashable, _Statement | object] = OrderedDict()
        self._lock = threading.Lock()
        _caches.add(self)

    def clear(self) -> None:
        with self._lock:
            self._statements.clear()

    def _get(self, shape: Hashable) -> _Statement | object | None:
        with self._lock:
            statement = self._statements.get(shape)
            if statement is not None:
                self._statements.move_to_end(shape)
            return statement

    def _put(self, shape: Hashable, statement: _Statement | object) -> None:
        with self._lock:
            self._statements[shape] = statement
            while len(self._statements) > self._size:
                self._statements.popitem(last=False)

    def rows(
        self, shape: Hashable, build: Build, values: Mapping[str, Any], *, using: str = "default"
    ) -> list[dict[str, Any]]:
        """The rows of `build(values)` (a `.values()` queryset), as `list(build(values))` gives them."""
        statement = self._get(shape)
        if statement is None:
            statement = _learn(build, values, using) or _UNCACHEABLE
            self._put(shape, statement)
        if not isinstance(statement, _Statement):
            with prepared_statements(using):
                return list(build(values))
        params = list(statement.params)
        for index, name, wrap in statement.slots:
            params[index] = values[name] if wrap is None else wrap(values[name])
        connection = connections[using]
        with prepared_statements(using), connection.cursor() as cursor:
            cursor.execute(statement.sql, params)
            fetched = cursor.fetchall()
        names = statement.names
        if statement.converters:
            converted = []
            for fetched_row in fetched:
                row = list(fetched_row)
                for column, functions, expression in statement.converters:
                    value = row[column]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[column] = value
                converted.append(dict(zip(names, row, strict=True)))
            return converted
        return [dict(zip(names, row, strict=True)) for row in fetched]
