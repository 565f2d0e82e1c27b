"""Idle timers (`tickets.tasks.tickets_idle_sweep_task`, on beat): the states table's automatic moves.

- `waiting_customer` for VE_IDLE_WAITING_CUSTOMER_DAYS (7) without a reply from the customer → `resolved`
  by the system, with a public note saying why;
- `resolved` for VE_IDLE_RESOLVED_DAYS (3) → `closed`.

A customer's reply before then moves the ticket back to `in_progress` (`comment_add`), which is what
cancels the timer: the timers count from `status_changed_at`. Each ticket moves in its own transaction,
claimed with SKIP LOCKED and re-checked under its lock, so two sweeps (or a sweep and a customer's reply)
never move it twice; the moves are the ordinary services, acting as the system.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.parties import SYSTEM
from tickets import states
from tickets.models import Ticket
from tickets.services.comments import comment_add
from tickets.services.tickets import ticket_transition

# The status machine's own statuses (tickets.states), which the idle transitions are keyed by.
Status = states.Status
IDLE_DAYS_SETTINGS: dict[str, str] = {
    Status.WAITING_CUSTOMER: "VE_IDLE_WAITING_CUSTOMER_DAYS",
    Status.RESOLVED: "VE_IDLE_RESOLVED_DAYS",
}


@dataclass
class IdleResult:
    resolved: int = 0
    closed: int = 0


def _idle_days(status: str) -> float:
    return float(getattr(settings, IDLE_DAYS_SETTINGS[status]))


def _days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


def _move_one(status: str, target: str, *, cutoff: datetime.datetime, days: float) -> bool:
    """Move the longest-idle unlocked ticket in `status` past `cutoff`; False when none is left."""
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=status, status_changed_at__lte=cutoff)
            .order_by("status_changed_at")
            .only("id")
            .first()
        )
        if ticket is None:
            return False
        if target == Status.RESOLVED:
            comment_add(
                actor=SYSTEM,
                ticket_id=ticket.pk,
                body=f"Resolved automatically: no reply from the customer for {_days(days)}. "
                "Reply to this ticket to reopen it.",
            )
            reason = f"No reply from the customer for {_days(days)}."
        else:
            reason = f"Resolved for {_days(days)}."
        ticket_transition(actor=SYSTEM, ticket_id=ticket.pk, status=target, reason=reason)
    return True


def tickets_idle_sweep() -> IdleResult:
    """Resolve tickets idle waiting on the customer and close tickets idle resolved. (No `now` to pass: the
    moves are the ordinary services, which stamp them with the current time.)"""
    now = timezone.now()
    result = IdleResult()
    for status, (target, _default_days) in states.IDLE_TRANSITIONS.items():
        days = _idle_days(status)
        cutoff = now - datetime.timedelta(days=days)
        moved = 0
        while _move_one(status, target, cutoff=cutoff, days=days):
            moved += 1
        if target == Status.RESOLVED:
            result.resolved += moved
        else:
            result.closed += moved
    return result
