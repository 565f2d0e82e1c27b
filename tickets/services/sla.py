"""SLA writes: the design's default policies, and the sweep.

The sweep (`tickets.tasks.sla_sweep_task`, every VE_SLA_SWEEP_SECONDS on beat): each ticket that
crossed a threshold of a target gets that threshold's one event — `sla_warning` at 80 % (internal: provider
and support), `sla_breached` at 100 % (public) — and a breach hands the ticket to the VirtEngine support
queue when its policy says so (assignment history `by: system`, reason "SLA breach: first response" or
"SLA breach: resolution"), with its deployment's logs fetched for support.

Set-based. Each threshold has a partial index holding only the tickets still waiting for it
(`tickets.models.SLA_WAITING`); a batch claims up to VE_SLA_SWEEP_BATCH_SIZE rows that crossed it with
`SELECT … FOR UPDATE SKIP LOCKED`, sets its marker, and in the same transaction writes the events, their
outbox rows, the assignment history and the escalations with one statement per table
(`recording.record_events`, `recording.save_tickets`). Work and memory grow with the rows that crossed a
threshold in a batch, never with the table.

Exactly once per threshold and ticket: the marker and the event commit together, so a sweep killed
half-way rolls both back and the next sweep does the work; a sweep running at the same time skips the
rows the first one holds, and once those commit their marker excludes them (PostgreSQL re-checks the
condition of a row it locks after another transaction changed it). A service holding a ticket's lock
(a reply deciding the target) is skipped too, and the next sweep sees what it decided.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core.bulk import bulk_insert
from core.formats import iso_timestamp
from core.parties import SYSTEM
from tickets import states
from tickets.models import SLA_WAITING, Assignment, SlaPolicy, Ticket, TicketEvent
from tickets.services import assignments, logs, recording

Kind = TicketEvent.Kind
# The design's targets per priority, 24×7: (first response, resolution) in minutes.
DEFAULT_TARGETS = {
    Ticket.Priority.CRITICAL: (60, 4 * 60),
    Ticket.Priority.HIGH: (4 * 60, 24 * 60),
    Ticket.Priority.MEDIUM: (8 * 60, 48 * 60),
    Ticket.Priority.LOW: (24 * 60, 72 * 60),
}
TARGET_NAMES = {"first_response": "first response", "resolution": "resolution"}


@dataclass(frozen=True)
class Threshold:
    """One threshold of one target: the event it writes, when a ticket crosses it, its claim marker."""

    target: str  # first_response | resolution
    kind: str  # sla_warning | sla_breached
    waiting: str  # key of SLA_WAITING: the tickets still waiting for it
    marker: str  # set once, in the transaction that writes the event

    @property
    def crossed_at(self) -> str:
        return SLA_WAITING[self.waiting][0]

    @property
    def is_breach(self) -> bool:
        return self.kind == Kind.SLA_BREACHED

    def data(self, due: datetime.datetime) -> dict[str, Any]:
        if self.is_breach:
            return {"target": self.target, "due_at": iso_timestamp(due)}
        return {"target": self.target, "due_at": iso_timestamp(due), "elapsed_percent": 80}


# In this order: a ticket that crossed both thresholds of a target at once is warned, then breached.
THRESHOLDS = (
    Threshold("first_response", Kind.SLA_WARNING, "fr_warn", "sla_first_response_warned_at"),
    Threshold("first_response", Kind.SLA_BREACHED, "fr_breach", "sla_first_response_breached_at"),
    Threshold("resolution", Kind.SLA_WARNING, "res_warn", "sla_resolution_warned_at"),
    Threshold("resolution", Kind.SLA_BREACHED, "res_breach", "sla_resolution_breached_at"),
)
# What the sweep reads and writes of a claimed ticket — the notifications of its events included (who is
# told: the provider's members, the customer): a field left out here would be a query per ticket.
_CLAIMED_FIELDS = (
    "id",
    "provider_id",
    "customer_address",
    "created_by_address",
    "last_seq",
    "last_public_seq",
    "public_updated_at",
    "status",
    "assignee_kind",
    "assigned_to_id",
    "escalated_at",
)


def sla_policies_ensure() -> list[SlaPolicy]:
    """Create the default policy of every priority that has none (existing policies are left as edited)."""
    return [
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first_response, "resolution_minutes": resolution},
        )[0]
        for priority, (first_response, resolution) in DEFAULT_TARGETS.items()
    ]


def breach_reason(target: str) -> str:
    return f"SLA breach: {TARGET_NAMES[target]}"


@dataclass
class SweepResult:
    """What one sweep did: events written per kind, escalations, batches (claim transactions)."""

    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    batches: int = 0
    per_threshold: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return self.warnings + self.breaches + self.escalations


def claim_queryset(threshold: Threshold, *, now: datetime.datetime, limit: int) -> QuerySet[Ticket]:
    """Up to `limit` tickets that crossed the threshold by `now`, locked (skipping locked ones), with what
    the batch writes about them: a range scan of the threshold's partial index."""
    column, waiting = SLA_WAITING[threshold.waiting]
    return (
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(waiting, **{f"{column}__lte": now})
        .order_by(column)
        .only(*_CLAIMED_FIELDS)
        .annotate(
            due=F(f"sla_{threshold.target}_due"),
            escalates=F("sla_policy__escalate_on_breach"),
            assigned_to_name=F("assigned_to__username"),
        )[:limit]
    )


def _sweep_batch(threshold: Threshold, *, now: datetime.datetime, limit: int, result: SweepResult) -> int:
    with transaction.atomic():
        tickets = list(claim_queryset(threshold, now=now, limit=limit))
        new_events: list[recording.NewEvent] = []
        history: list[Assignment] = []
        for ticket in tickets:
            setattr(ticket, threshold.marker, now)
            new_events.append(
                recording.NewEvent(
                    ticket,
                    threshold.kind,
                    SYSTEM,
                    threshold.data(ticket.due),
                    is_internal=not threshold.is_breach,
                    at=now,
                )
            )
            if (
                threshold.is_breach
                and ticket.escalates
                and ticket.status in states.OPEN_STATES
                and not assignments.is_escalated(ticket)
            ):
                assignment, escalation = assignments.assignment_change(
                    ticket,
                    actor=SYSTEM,
                    to_kind=Ticket.AssigneeKind.SUPPORT,
                    to_user_id=None,
                    reason=breach_reason(threshold.target),
                    is_escalation=True,
                    at=now,
                    names={ticket.assigned_to_id: ticket.assigned_to_name} if ticket.assigned_to_id else {},
                )
                history.append(assignment)
                new_events.append(escalation)
        escalated = [assignment.ticket_id for assignment in history]
        bulk_insert(Assignment, history)
        recording.record_events(new_events)
        # One write per ticket: its marker (the claim), counters and escalation, with its events.
        recording.save_tickets(
            tickets, threshold.marker, *(assignments.ESCALATION_FIELDS if escalated else ()), at=now
        )
        logs.logs_fetch_queue_many(escalated)
    count = len(tickets)
    result.per_threshold[threshold.waiting] = result.per_threshold.get(threshold.waiting, 0) + count
    if threshold.is_breach:
        result.breaches += count
    else:
        result.warnings += count
    result.escalations += len(escalated)
    result.batches += 1
    return count


def sla_sweep(*, now: datetime.datetime | None = None, batch_size: int | None = None) -> SweepResult:
    """Write the warnings and breaches due by `now` (default: now), escalating breaches; see the module."""
    now = now or timezone.now()
    limit = batch_size or settings.VE_SLA_SWEEP_BATCH_SIZE
    result = SweepResult()
    for threshold in THRESHOLDS:
        # A short batch means every unlocked row that crossed the threshold has been claimed.
        while _sweep_batch(threshold, now=now, limit=limit, result=result) == limit:
            pass
    return result
