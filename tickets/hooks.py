"""Where other apps plug into the recording of ticket events, so that `tickets` knows none of them.

**Writers** run inside the transaction that records events, right after the events are inserted: the
rows they write commit with the events or not at all. The chain outbox (`chain`) and webhook deliveries
and emails (`notifications`) are writers; they register in their `AppConfig.ready`. Each has a batch form
(`write`: the events one transaction recorded, each with its ticket; one statement however many) and may
have a set-based SQL form (`write_sql`: a statement that writes its rows from the events a caller inserts
in SQL), which the SLA sweep puts into its own statement instead of copying what the writer does.

**Ticket columns** are the read side: a column another app computes for every ticket row a selector
reads, in the rows' own query (the chain app's anchoring state, `chain`: every surface shows it).

**Hooks** run once the transaction has committed (never for a rolled-back write), each isolated so that
a failing hook (Redis down, broker down) never turns a committed write into an error: real-time broadcast
(`tickets.realtime`), the chain outbox drain trigger, the notification tasks. A hook may also give a
batch form (`many`), called once for the events one transaction recorded together (the SLA sweep writes
thousands at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction

from core.statements import forget_statements

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from tickets.models import Ticket, TicketEvent

logger = logging.getLogger(__name__)

RecordedEvents = Sequence[tuple["TicketEvent", "Ticket"]]


@dataclass(frozen=True)
class EventWriter:
    """Rows another app writes for recorded events, in the transaction that records them.

    `write(events)` gets the events just inserted, each with its (locked) ticket. `write_sql(source)`, if
    given, returns one statement, with its named parameters, that writes the same rows for every event row
    of `source` (a table or CTE with the event table's columns, aliased `e` in the statement)."""

    name: str
    write: Callable[[RecordedEvents], object]
    write_sql: Callable[[str], tuple[str, dict[str, Any]]] | None = None


_writers: dict[str, EventWriter] = {}


# The column the chain app adds to ticket rows: `{"state": pending|anchored|failed, "tx_hash", "height"}`.
CHAIN_COLUMN = "chain"


@dataclass(frozen=True)
class TicketColumn:
    """A column of ticket rows computed by another app: `annotate(queryset, sees_internal=…)` adds it, as
    `name`, to a ticket query (a `.values()` one or model instances); `sees_internal` is whether the
    reader may know of internal events."""

    name: str
    annotate: Callable[..., QuerySet]


_columns: dict[str, TicketColumn] = {}


def register_ticket_column(column: TicketColumn) -> TicketColumn:
    _columns[column.name] = column
    forget_statements()  # the kept ticket queries (core.statements) were compiled without it
    return column


def with_ticket_columns(queryset: QuerySet, *, sees_internal: bool) -> QuerySet:
    """`queryset` with every registered ticket column."""
    for column in _columns.values():
        queryset = column.annotate(queryset, sees_internal=sees_internal)
    return queryset


def ticket_column_names() -> list[str]:
    return list(_columns)


def register_event_writer(writer: EventWriter) -> EventWriter:
    """Have `writer` write its rows for every event recorded from now on (once per name)."""
    _writers[writer.name] = writer
    return writer


def unregister_event_writer(name: str) -> EventWriter | None:
    return _writers.pop(name, None)


def event_writers() -> list[EventWriter]:
    """The registered writers, in the order they registered (the apps' order)."""
    return list(_writers.values())


def write_recorded_events(events: RecordedEvents, *, written_in_sql: Collection[str] = ()) -> None:
    """Have every writer write its rows for `events`, except those whose SQL form the caller's own
    statement already ran (`written_in_sql`, by name). Inside the recording transaction."""
    if not events:
        return
    for writer in _writers.values():
        if writer.name not in written_in_sql:
            writer.write(events)


EventHook = Callable[["TicketEvent"], None]
BatchHook = Callable[[Sequence["TicketEvent"]], None]
_hooks: list[tuple[EventHook, BatchHook | None]] = []


def register_event_hook(hook: EventHook, *, many: BatchHook | None = None) -> EventHook:
    """Run `hook(event)` after the commit of every transaction that records a ticket event (or `many(events)`
    once for several events recorded together)."""
    if all(registered != hook for registered, _ in _hooks):
        _hooks.append((hook, many))
    return hook


def unregister_event_hook(hook: EventHook) -> None:
    _hooks[:] = [(registered, many) for registered, many in _hooks if registered != hook]


def schedule_event_hooks(*events: TicketEvent) -> None:
    if events:
        transaction.on_commit(partial(run_event_hooks, *events))


def run_event_hooks(*events: TicketEvent) -> None:
    for hook, many in _hooks:
        if many is not None and len(events) > 1:
            _isolated(many, events, f"{len(events)} events")
        else:
            for event in events:
                _isolated(hook, event, event)


def _isolated(hook: Callable[[object], None], argument: object, what: object) -> None:
    try:
        hook(argument)
    except Exception:
        # The write has committed and is safe in the database; a hook's failure only delays
        # delivery (clients replay with ?since=, the outbox sweeper retries).
        logger.exception("ticket event hook %s failed for %s", getattr(hook, "__name__", hook), what)
