"""SLA writes: the design's default policies, and the sweep.

The sweep (`tickets.tasks.sla_sweep_task`, every VE_SLA_SWEEP_SECONDS on beat): each ticket that
crossed a threshold of a target gets that threshold's one event — `sla_warning` at 80 % (internal: provider
and support), `sla_breached` at 100 % (public) — and a breach hands the ticket to the VirtEngine support
queue when its policy says so (assignment history `by: system`, reason "SLA breach: first response" or
"SLA breach: resolution"), with its deployment's logs fetched for support.

Set-based. Each threshold has a partial index holding only the tickets still waiting for it
(`tickets.models.SLA_WAITING`); a batch is one statement (`_BATCH_SQL`) that claims up to
VE_SLA_SWEEP_BATCH_SIZE rows that crossed it with `SELECT … FOR UPDATE SKIP LOCKED`, sets their marker,
event counters and escalation, inserts the events and the assignment history, and runs the SQL form of
every event writer that has one (the chain outbox: `tickets.hooks`); Python then has the other writers
write theirs (`recording.record_written_events`: webhooks, emails) and schedules the after-commit hooks.
The two targets run in lanes on connections of their own. Work and memory grow with the rows that
crossed a threshold in a batch, never with the table.

Exactly once per threshold and ticket: the marker and the event commit together, so a sweep killed
half-way rolls both back and the next sweep does the work; a sweep running at the same time skips the
rows the first one holds, and once those commit their marker excludes them (PostgreSQL re-checks the
condition of a row it locks after another transaction changed it). A service holding a ticket's lock
(a reply deciding the target) is skipped too, and the next sweep sees what it decided.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core.bulk import Sql, cyclic_gc_paused, instances_from_rows, jsonb_sql
from core.parties import SYSTEM
from tickets import hooks, states
from tickets.models import SLA_WAITING, SlaPolicy, Ticket, TicketEvent
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


# In this order: a ticket that crossed both thresholds of a target at once is warned, then breached.
THRESHOLDS = (
    Threshold("first_response", Kind.SLA_WARNING, "fr_warn", "sla_first_response_warned_at"),
    Threshold("first_response", Kind.SLA_BREACHED, "fr_breach", "sla_first_response_breached_at"),
    Threshold("resolution", Kind.SLA_WARNING, "res_warn", "sla_resolution_warned_at"),
    Threshold("resolution", Kind.SLA_BREACHED, "res_breach", "sla_resolution_breached_at"),
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


WARNING_PERCENT = 80


def threshold_event_data(threshold: Threshold, *, due_at: Any) -> dict[str, Any]:
    """The data of the event a threshold writes (`due_at`: the target's due time, ISO 8601). The one
    declaration of its shape: the sweep's statement builds it in SQL from this."""
    data = {"target": threshold.target, "due_at": due_at}
    if not threshold.is_breach:
        data["elapsed_percent"] = WARNING_PERCENT
    return data


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

    @classmethod
    def merged(cls, results: Sequence[SweepResult]) -> SweepResult:
        merged = cls()
        for result in results:
            merged.warnings += result.warnings
            merged.breaches += result.breaches
            merged.escalations += result.escalations
            merged.batches += result.batches
            for waiting, count in result.per_threshold.items():
                merged.per_threshold[waiting] = merged.per_threshold.get(waiting, 0) + count
        return merged


# What the batch's statement reads of a claimed ticket (the claim's columns).
_CLAIM_COLUMNS = (
    "id",
    "last_seq",
    "last_public_seq",
    "public_updated_at",
    "status",
    "assignee_kind",
    "assigned_to_id",
    "escalated_at",
    "due",
    "escalates",
    "assigned_to_name",
)


def claim_queryset(
    threshold: Threshold, *, now: datetime.datetime, limit: int
) -> QuerySet[Ticket, dict[str, Any]]:
    """Up to `limit` tickets that crossed the threshold by `now`, locked (skipping locked ones), as the
    columns the batch's statement reads: a range scan of the threshold's partial index."""
    column, waiting = SLA_WAITING[threshold.waiting]
    claim: QuerySet[Ticket, dict[str, Any]] = (
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(waiting, **{f"{column}__lte": now})
        .order_by(column)
        .annotate(
            due=F(f"sla_{threshold.target}_due"),
            escalates=F("sla_policy__escalate_on_breach"),
            assigned_to_name=F("assigned_to__username"),
        )
        .values(*_CLAIM_COLUMNS)[:limit]
    )
    return claim


# What notifications and the after-commit hooks read of a ticket (who is told); in the model's field order,
# as `core.bulk.instances_from_rows` leaves the others deferred.
_TICKET_AFTER = tuple(
    field.attname
    for field in Ticket._meta.concrete_fields
    if field.attname in {"id", "provider_id", "customer_address", "created_by_address"}
)
_EVENT_COLUMNS = tuple(field.attname for field in TicketEvent._meta.concrete_fields)
# What the statement returns of each event: all but its time, which is the sweep's `now`.
_EVENT_RETURNED = tuple(column for column in _EVENT_COLUMNS if column != "created_at")
_ISO_UTC = (
    "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"  # as core.formats.iso_timestamp
)

# One statement per batch: claim (the threshold's partial index, locked, skipping locked rows), then in
# the same snapshot update the tickets (marker, event counters, times, escalation, log request), insert
# the threshold's events and the escalations' assignment events and history. It returns the events with
# their tickets as they now are. Numbering follows `recording._numbered`: `seq` counts every event,
# `public_seq` the public ones, `public_updated_at` moves with a public one. An escalation is decided as
# `assignments.is_escalated` would, and its history row is the one `assignments.assignment_change` makes.
# The events' data are built from the Python declarations (`threshold_event_data`,
# `assignments.assignment_data`); tests/tickets/test_sla_contract.py holds the statement to the rows the
# services write for the same ticket.
_BATCH_SQL = """
WITH claimed AS MATERIALIZED ({claim}),
c AS (
    SELECT claimed.*,
        (%(is_breach)s AND claimed.escalates AND claimed.status = ANY(%(open_states)s)
         AND NOT (claimed.escalated_at IS NOT NULL AND claimed.assignee_kind = %(support)s)) AS escalate
    FROM claimed
),
updated AS (
    UPDATE tickets_ticket AS t SET
        {marker} = %(now)s,
        last_seq = c.last_seq + 1 + c.escalate::int,
        last_public_seq = c.last_public_seq + %(public)s::int + c.escalate::int,
        updated_at = %(now)s,
        public_updated_at = CASE WHEN %(public)s OR c.escalate THEN %(now)s ELSE c.public_updated_at END,
        assignee_kind = CASE WHEN c.escalate THEN %(support)s ELSE c.assignee_kind END,
        assigned_to_id = CASE WHEN c.escalate THEN NULL ELSE c.assigned_to_id END,
        escalated_at = CASE WHEN c.escalate THEN %(now)s ELSE c.escalated_at END,
        logs_requested_at = CASE WHEN c.escalate THEN coalesce(t.logs_requested_at, %(now)s)
                                 ELSE t.logs_requested_at END
    FROM c WHERE t.id = c.id
    RETURNING {ticket_after}
),
new_events AS (
    SELECT c.id AS ticket_id, c.last_seq + 1 AS seq,
        CASE WHEN %(public)s THEN c.last_public_seq + 1 END AS public_seq,
        %(kind)s AS kind, NOT %(public)s AS is_internal,
        {threshold_data} AS data
    FROM c
    UNION ALL
    SELECT c.id, c.last_seq + 2, c.last_public_seq + %(public)s::int + 1, %(assignment_kind)s, false,
        {assignment_data}
    FROM c WHERE c.escalate
),
events AS (
    INSERT INTO tickets_ticketevent
        (ticket_id, seq, public_seq, kind, is_internal, actor_id, actor_kind, actor_label, data, created_at)
    SELECT ticket_id, seq, public_seq, kind, is_internal, NULL, %(actor_kind)s, %(actor_label)s, data, %(now)s
    FROM new_events ORDER BY ticket_id, seq
    RETURNING {event_columns}
),
{writers}history AS (
    INSERT INTO tickets_assignment
        (ticket_id, from_kind, from_user_id, to_kind, to_user_id, by_kind, by_label, reason, is_escalation,
         created_at)
    SELECT c.id, c.assignee_kind, c.assigned_to_id, %(support)s, NULL, %(actor_kind)s, %(actor_label)s,
        %(reason)s, true, %(now)s
    FROM c WHERE c.escalate
)
SELECT {event_columns_of_e}, {ticket_after_of_u}
FROM events AS e JOIN updated AS u ON u.id = e.ticket_id
ORDER BY e.id
"""


def _column_of(field_name: str) -> str:
    field = Ticket._meta.get_field(field_name)
    assert isinstance(field, models.Field), field_name
    assert field.column is not None, field_name
    return field.column


def _writers_in_sql(writers: Sequence[hooks.EventWriter]) -> tuple[str, dict[str, Any]]:
    """The CTEs that run the writers' SQL forms over the statement's `events`, and their parameters."""
    ctes: list[str] = []
    params: dict[str, Any] = {}
    for number, writer in enumerate(writers):
        assert writer.write_sql is not None
        sql, own = writer.write_sql("events")
        if params.keys() & own.keys():
            raise ValueError(
                f"Event writer {writer.name} reuses a parameter name: {params.keys() & own.keys()}"
            )
        ctes.append(f"writer_{number} AS ({sql}),\n")
        params.update(own)
    return "".join(ctes), params


def _sql_writers() -> list[hooks.EventWriter]:
    return [writer for writer in hooks.event_writers() if writer.write_sql is not None]


def _batch_statement(
    threshold: Threshold, *, now: datetime.datetime, limit: int, writers: Sequence[hooks.EventWriter]
) -> tuple[str, dict[str, Any]]:
    claim_sql, claim_params = claim_queryset(threshold, now=now, limit=limit).query.sql_with_params()
    # The claim's own placeholders are positional; the statement's are named.
    named = {f"claim_{n}": value for n, value in enumerate(claim_params)}
    claim_sql = claim_sql % tuple(f"%({name})s" for name in named)
    writers_sql, writers_params = _writers_in_sql(writers)
    payload_params: dict[str, Any] = {}
    threshold_data = jsonb_sql(
        threshold_event_data(threshold, due_at=Sql(_ISO_UTC.format("c.due"))), payload_params, prefix="data"
    )
    escalation_data = jsonb_sql(
        assignments.assignment_data(
            from_kind=Sql("c.assignee_kind"),
            from_user_id=Sql("c.assigned_to_id"),
            from_name=Sql("c.assigned_to_name"),
            to_kind=Ticket.AssigneeKind.SUPPORT.value,
            to_user_id=None,
            to_name=None,
            reason=breach_reason(threshold.target),
            escalation=True,
        ),
        payload_params,
        prefix="data",
    )
    quote = connection.ops.quote_name
    sql = _BATCH_SQL.format(
        claim=claim_sql,
        writers=writers_sql,
        threshold_data=threshold_data,
        assignment_data=escalation_data,
        marker=quote(_column_of(threshold.marker)),
        ticket_after=", ".join(f"t.{quote(column)}" for column in _TICKET_AFTER),
        event_columns=", ".join(map(quote, _EVENT_COLUMNS)),
        event_columns_of_e=", ".join(f"e.{quote(column)}" for column in _EVENT_RETURNED),
        ticket_after_of_u=", ".join(f"u.{quote(column)}" for column in _TICKET_AFTER),
    )
    params = {
        **named,
        **writers_params,
        **payload_params,
        "now": now,
        "is_breach": threshold.is_breach,
        "public": threshold.is_breach,  # a breach is public; a warning is for provider and support
        "kind": threshold.kind,
        "open_states": sorted(states.OPEN_STATES),
        "support": Ticket.AssigneeKind.SUPPORT.value,
        "assignment_kind": Kind.ASSIGNMENT_CHANGE.value,
        "reason": breach_reason(threshold.target),
        "actor_kind": SYSTEM.kind.value,
        "actor_label": SYSTEM.label,
    }
    return sql, params


def _sweep_batch(threshold: Threshold, *, now: datetime.datetime, limit: int, result: SweepResult) -> int:
    """One claim transaction of up to `limit` tickets; how many it claimed."""
    writers = _sql_writers()
    with transaction.atomic():  # before compiling the claim: Django refuses FOR UPDATE outside one
        sql, params = _batch_statement(threshold, now=now, limit=limit, writers=writers)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return 0
        width = len(_EVENT_RETURNED)
        ticket_rows = list({row[width]: row[width:] for row in rows}.values())  # one per ticket
        tickets = {ticket.pk: ticket for ticket in instances_from_rows(Ticket, _TICKET_AFTER, ticket_rows)}
        events = instances_from_rows(TicketEvent, _EVENT_RETURNED, [row[:width] for row in rows])
        pairs: list[tuple[TicketEvent, Ticket]] = []
        for event in events:
            event.data = json.loads(event.data)
            event.created_at = now
            event.ticket = tickets[event.ticket_id]
            pairs.append((event, event.ticket))
        escalated = [event.ticket_id for event in events if event.kind == Kind.ASSIGNMENT_CHANGE]
        recording.record_written_events(pairs, written_in_sql={writer.name for writer in writers})
        logs.logs_fetch_queue_requested(escalated)
    count = len(tickets)
    result.per_threshold[threshold.waiting] = result.per_threshold.get(threshold.waiting, 0) + count
    if threshold.is_breach:
        result.breaches += count
    else:
        result.warnings += count
    result.escalations += len(escalated)
    result.batches += 1
    return count


# The targets' thresholds in lanes of their own, each in order (a ticket that crossed both thresholds of a
# target is warned, then breached); lanes can run on connections of their own, at once.
LANES = (THRESHOLDS[:2], THRESHOLDS[2:])


def _sweep_lane(lane: Sequence[Threshold], *, now: datetime.datetime, limit: int) -> SweepResult:
    result = SweepResult()
    for threshold in lane:
        # A short batch means every unlocked row that crossed the threshold has been claimed.
        while _sweep_batch(threshold, now=now, limit=limit, result=result) == limit:
            pass
    return result


def _sweep_lane_on_own_connection(
    lane: Sequence[Threshold], *, now: datetime.datetime, limit: int
) -> SweepResult:
    try:
        return _sweep_lane(lane, now=now, limit=limit)
    finally:
        connection.close()  # the thread's own connection; the thread ends with the sweep


def sla_sweep(*, now: datetime.datetime | None = None, batch_size: int | None = None) -> SweepResult:
    """Write the warnings and breaches due by `now` (default: now), escalating breaches; see the module.

    The two targets' lanes run at once, each on a connection of its own (VE_SLA_SWEEP_PARALLEL), so that
    PostgreSQL writes one lane's batch while this process prepares the other's. A ticket that crossed a
    threshold of each target in the same sweep may be held by one lane when the other comes to it: the
    other skips it, as it skips a ticket any writer holds, and a last pass over every threshold on this
    thread's connection, once both lanes are done, takes it. Called inside a
    transaction, the sweep runs its lanes one after the other on the transaction's connection (other
    connections could not see what it has not committed)."""
    now = now or timezone.now()
    limit = batch_size or settings.VE_SLA_SWEEP_BATCH_SIZE
    with cyclic_gc_paused():
        if connection.in_atomic_block or not settings.VE_SLA_SWEEP_PARALLEL:
            results = [_sweep_lane(lane, now=now, limit=limit) for lane in LANES]
        else:
            with ThreadPoolExecutor(max_workers=len(LANES), thread_name_prefix="sla-sweep") as pool:
                results = list(
                    pool.map(lambda lane: _sweep_lane_on_own_connection(lane, now=now, limit=limit), LANES)
                )
            # What one lane skipped while the other held the ticket (one claim per threshold when none).
            results.append(_sweep_lane(THRESHOLDS, now=now, limit=limit))
    return SweepResult.merged(results)
