"""Server-side prepared statements for the hot reads (the ticket list and a ticket's detail).

Django sends every query with its parameters merged into the text (psycopg's client-side binding), so
PostgreSQL parses and plans each one anew: for the list's page (seven joins, 40 columns) planning took
longer than running it. Inside `prepared_statements()`, the ORM's queries on that connection are sent
with server-side binding and prepared on first use (psycopg keeps up to 100 per connection, by text), so
the next identical statement — the same page for another provider, say — skips parsing and planning.

Only the blocks that ask for it: server-side binding types parameters on the server (`$1` rather than a
literal), which the ORM's and our raw SQL elsewhere were never checked against. The queries still go
through Django's cursor wrappers, so they are logged, counted (`django_assert_num_queries`) and wrapped
(`connection.execute_wrapper`) like every other.

Off when the database's OPTIONS have `prepare_threshold: None` (`DATABASE_PREPARED_STATEMENTS=false`),
which an installation must set behind a pooler that cannot carry prepared statements from one client to
the next: PgBouncer in transaction or statement mode before 1.21, or with `max_prepared_statements = 0`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg import ClientCursor
from psycopg.types.datetime import TimestamptzLoader


def prepared_statements_enabled(using: str = "default") -> bool:
    connection = connections[using]
    return (
        connection.vendor == "postgresql"
        and connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None
    )


class _StatementText:
    """The text Django logs for a statement (`connection.queries`, CaptureQueriesContext): psycopg keeps none
    for the execution of a prepared statement, so it is the statement with its parameters merged, as
    Django's client-side cursors show it, composed only if read."""

    def __init__(self, connection: Any, query: Any, params: Any) -> None:
        self._connection, self._query, self._params = connection, query, params

    @property
    def query(self) -> bytes:
        return bytes(ClientCursor(self._connection).mogrify(self._query, self._params).encode())


class PreparingCursor(ServerBindingCursor):
    """Server-side binding, and every statement prepared (psycopg's `prepare=True`).

    Its `timestamptz` columns are read by psycopg's own loader, which psycopg swaps for its C version:
    Django's loader (a Python subclass, to force the connection's time zone onto every value) took a tenth
    of the list page's time, 106 values a page. Only on a session in UTC, where both give the same values.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[misc]
        if getattr(self, "connection").info.parameter_status("TimeZone") == "UTC":  # noqa: B009
            getattr(self, "adapters").register_loader("timestamptz", TimestamptzLoader)  # noqa: B009

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
        # Django's backend module defines the psycopg cursors only when psycopg 3 is there: no types for mypy.
        try:
            return super().execute(query, params, prepare=True if prepare is None else prepare, **kwargs)  # type: ignore[misc]
        finally:
            if getattr(self, "_query", None) is None:
                self._query = _StatementText(getattr(self, "connection"), query, params)  # noqa: B009


@contextmanager
def prepared_statements(using: str = "default", *, enabled: bool = True) -> Iterator[None]:
    """Within the block, the ORM's queries on `using` (in this thread) are prepared statements; `enabled`
    False (or prepared statements off for the database) leaves them as they are."""
    if not (enabled and prepared_statements_enabled(using)):
        yield
        return
    connection = connections[using]
    # What the block's first cursor would do (health check, connect), done first so that the block's
    # cursors all come from the connection set up here.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.cursor_factory
    raw.cursor_factory = PreparingCursor
    try:
        yield
    finally:
        raw.cursor_factory = previous
