"""After-commit hooks for ticket events.

Services call `schedule_event_hooks(*events)` inside their transaction; the hooks run only once the
transaction has committed (never for a rolled-back write), each isolated so that a failing hook (Redis
down, broker down) never turns a committed write into an error. Apps plug in at start-up:
real-time broadcast (`tickets.realtime`) and the chain outbox drain trigger (`chain`). A hook may also
give a batch form (`many`), called once for the events one transaction recorded together (the SLA sweep
writes thousands at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from tickets.models import TicketEvent

logger = logging.getLogger(__name__)

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
