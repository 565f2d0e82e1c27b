"""The SLA clock on a ticket row: what opening a ticket, its first response, a status change and a priority
change do to its stored SLA columns (tickets/sla.py does the counting).

- Both targets start when the ticket opens, on its priority's policy clock.
- First response is decided by the first public reply of the provider or support — or by resolving or
  closing the ticket without one (nothing is left to respond to).
- The resolution clock pauses while the ticket waits on the customer and while it is resolved; it resumes
  when the ticket leaves those states (a customer's reply, a reopening), and its due and warning times move
  by the working time it was paused. Resolving or closing decides it; reopening a ticket that had met it
  resumes it undecided (one that had missed it stays missed).
- A priority change recomputes the undecided targets from the original start on the new policy.

The caller holds the ticket's row lock and saves `CLOCK_FIELDS`. Nothing here writes events: the sweep
(`tickets.services.sla`) writes warnings and breaches.
"""

from __future__ import annotations

import datetime

from tickets import sla
from tickets.models import SlaPolicy, Ticket

CLOCK_FIELDS = (
    "sla_policy",
    "sla_first_response_due",
    "sla_first_response_warn_at",
    "sla_first_response_met",
    "sla_resolution_due",
    "sla_resolution_warn_at",
    "sla_resolution_met",
    "sla_paused_seconds",
    "sla_paused_since",
    "sla_next_due",
)
Status = Ticket.Status
# The resolution clock does not run in these statuses (closed: it never runs again).
RESOLUTION_PAUSED = frozenset({Status.WAITING_CUSTOMER, Status.RESOLVED, Status.CLOSED})
# Reaching these decides whatever target is still undecided.
DECIDING = frozenset({Status.RESOLVED, Status.CLOSED})


def policy_clock(policy: SlaPolicy | None) -> sla.Clock:
    """The clock a policy counts on: its business calendar, or 24×7."""
    calendar = policy.calendar if policy is not None and policy.calendar_id else None
    if calendar is None:
        return sla.ALWAYS_OPEN
    return sla.clock_of(
        time_zone=calendar.time_zone,
        opening_hours=calendar.opening_hours,
        holiday_country=calendar.holiday_country,
        holiday_subdivision=calendar.holiday_subdivision,
        closed_dates=calendar.closed_dates,
    )


def policy_for(priority: str) -> SlaPolicy | None:
    return SlaPolicy.objects.select_related("calendar").filter(priority=priority).first()


def _ticket_policy(ticket: Ticket) -> SlaPolicy | None:
    if ticket.sla_policy_id is None:
        return None
    return SlaPolicy.objects.select_related("calendar").filter(pk=ticket.sla_policy_id).first()


def _resolution_state(ticket: Ticket) -> sla.ClockState:
    return sla.ClockState(ticket.created_at, ticket.sla_paused_seconds, ticket.sla_paused_since)


def _set_next_due(ticket: Ticket) -> None:
    running = []
    if ticket.sla_first_response_met is None and ticket.sla_first_response_due is not None:
        running.append(ticket.sla_first_response_due)
    if (
        ticket.sla_resolution_met is None
        and ticket.sla_paused_since is None
        and ticket.sla_resolution_due is not None
    ):
        running.append(ticket.sla_resolution_due)
    ticket.sla_next_due = min(running, default=None)


def _set_targets(ticket: Ticket, policy: SlaPolicy | None) -> None:
    """Due and warning times of the undecided targets, from the original start on `policy`'s clock."""
    ticket.sla_policy = policy
    if policy is None:
        for target in ("first_response", "resolution"):
            if getattr(ticket, f"sla_{target}_met") is None:
                setattr(ticket, f"sla_{target}_due", None)
                setattr(ticket, f"sla_{target}_warn_at", None)
        _set_next_due(ticket)
        return
    clock = policy_clock(policy)
    targets = {
        "first_response": (sla.ClockState(ticket.created_at), policy.first_response_minutes),
        "resolution": (_resolution_state(ticket), policy.resolution_minutes),
    }
    for target, (state, minutes) in targets.items():
        if getattr(ticket, f"sla_{target}_met") is not None:
            continue  # decided: stays as it was decided
        setattr(ticket, f"sla_{target}_due", sla.due_at(clock, state, minutes * 60))
        setattr(
            ticket,
            f"sla_{target}_warn_at",
            sla.due_at(clock, state, minutes * 60, fraction=sla.WARNING_FRACTION),
        )
    _set_next_due(ticket)


def clock_start(ticket: Ticket) -> None:
    """A new ticket: both targets start at `created_at` on its priority's policy."""
    _set_targets(ticket, policy_for(ticket.priority))


def clock_retarget(ticket: Ticket) -> None:
    """The ticket's priority changed: undecided targets are due on the new priority's policy, counted from
    the original start (with the time the resolution clock has been paused)."""
    _set_targets(ticket, policy_for(ticket.priority))


def _decide(ticket: Ticket, target: str, *, stopped_at: datetime.datetime) -> None:
    due = getattr(ticket, f"sla_{target}_due")
    if due is None or getattr(ticket, f"sla_{target}_met") is not None:
        return
    met = sla.is_met(due=due, stopped_at=stopped_at, breached_at=getattr(ticket, f"sla_{target}_breached_at"))
    setattr(ticket, f"sla_{target}_met", met)


def clock_first_response(ticket: Ticket, *, at: datetime.datetime) -> None:
    """The first public reply by the provider or support decides the first-response target."""
    _decide(ticket, "first_response", stopped_at=at)
    _set_next_due(ticket)


def clock_status_change(ticket: Ticket, *, source: str, target: str, at: datetime.datetime) -> None:
    """The ticket moves from `source` to `target` at `at` (before its status is set)."""
    was_paused, pauses = source in RESOLUTION_PAUSED, target in RESOLUTION_PAUSED
    if target in DECIDING:
        _decide(ticket, "first_response", stopped_at=at)
        # The resolution clock stopped when it paused, if it was paused already (waiting → resolved).
        _decide(ticket, "resolution", stopped_at=ticket.sla_paused_since or at)
    state = _resolution_state(ticket)
    if pauses and not was_paused:
        state = sla.pause(state, at)
    elif was_paused and not pauses:
        clock = policy_clock(_ticket_policy(ticket))
        resumed = sla.resume(clock, state, at)
        moved = resumed.paused_seconds - state.paused_seconds
        state = resumed
        if source == Status.RESOLVED and ticket.sla_resolution_met:
            ticket.sla_resolution_met = None  # reopened: the clock runs on from where it stopped
        if moved > 0 and ticket.sla_resolution_met is None and ticket.sla_resolution_due is not None:
            # Counted on from the old due time, the paused working time moves it (and the warning) later.
            ticket.sla_resolution_due = sla.add_working_seconds(clock, ticket.sla_resolution_due, moved)
            if ticket.sla_resolution_warn_at is not None:
                ticket.sla_resolution_warn_at = sla.add_working_seconds(
                    clock, ticket.sla_resolution_warn_at, moved
                )
    ticket.sla_paused_seconds, ticket.sla_paused_since = state.paused_seconds, state.paused_since
    _set_next_due(ticket)
