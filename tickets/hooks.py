"""After-commit hooks for ticket events.

Services call `schedule_event_hooks(event)` inside their transaction; the hooks run only once the
transaction has committed (never for a rolled-back write), each isolated so that a failing hook (Redis
down, broker down) never turns a committed write into an error. Apps plug in at start-up:
real-time broadcast (`tickets.realtime`) and the chain outbox drain trigger (`chain`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from tickets.models import TicketEvent

logger = logging.getLogger(__name__)

EventHook = Callable[["TicketEvent"], None]
_hooks: list[EventHook] = []


def register_event_hook(hook: EventHook) -> EventHook:
    """Run `hook(event)` after the commit of every transaction that records a ticket event."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def unregister_event_hook(hook: EventHook) -> None:
    if hook in _hooks:
        _hooks.remove(hook)


def schedule_event_hooks(event: TicketEvent) -> None:
    transaction.on_commit(partial(run_event_hooks, event))


def run_event_hooks(event: TicketEvent) -> None:
    for hook in _hooks:
        try:
            hook(event)
        except Exception:
            # The write has committed and is safe in the database; a hook's failure only delays
            # delivery (clients replay with ?since=, the outbox sweeper retries).
            logger.exception("ticket event hook %s failed for %s", getattr(hook, "__name__", hook), event)
