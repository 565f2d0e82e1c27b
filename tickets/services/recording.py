"""What every ticket service does the same way: lock the ticket, check the input, append the event.

`record_events` is the single place events are written (`record_event` for one): it numbers each event
(gap-free per ticket, and separately for what customers see), has the registered writers write their rows
in the same transaction (the chain outbox, webhook deliveries and emails: `tickets.hooks`), and schedules
the after-commit hooks (real-time broadcast, outbox drain, delivery tasks) — for one event of one ticket
or for a batch across many tickets.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from core import json_input
from core.bulk import bulk_insert, bulk_update
from core.errors import Conflict, NotFound, ValidationFailed
from core.formats import canonical_json_bytes
from core.parties import Party, PartyKind
from tickets import humanise, states
from tickets.hooks import schedule_event_hooks, write_recorded_events
from tickets.models import (
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    Ticket,
    TicketEvent,
)
from tickets.selectors import parse_ticket_id, ticket_is_visible_to
from tickets.services import clock

ROLE_OF_PARTY = {
    PartyKind.CUSTOMER: states.Role.CUSTOMER,
    PartyKind.PROVIDER: states.Role.PROVIDER,
    PartyKind.SUPPORT: states.Role.SUPPORT,
    PartyKind.SYSTEM: states.Role.SYSTEM,
}
Kind = TicketEvent.Kind


def lock_ticket(actor: Party, ticket_id: object) -> Ticket:
    """Lock the ticket row for this transaction; NotFound if missing or invisible to the actor."""
    ticket = Ticket.objects.select_for_update(of=("self",)).filter(pk=parse_ticket_id(ticket_id)).first()
    if ticket is None or not ticket_is_visible_to(actor, ticket):
        raise NotFound("Ticket not found.")
    return ticket


def require_not_closed(ticket: Ticket) -> None:
    if ticket.status == Ticket.Status.CLOSED:
        raise Conflict("The ticket is closed.", code="ticket_closed")


@dataclass(frozen=True)
class NewEvent:
    """An event to append to a locked ticket."""

    ticket: Ticket
    kind: str
    actor: Party
    data: dict[str, Any] = field(default_factory=dict)
    is_internal: bool = False
    at: datetime.datetime | None = None


def _numbered(new: NewEvent) -> TicketEvent:
    ticket = new.ticket
    at = new.at or timezone.now()
    ticket.last_seq += 1
    public_seq = None
    if not new.is_internal:
        ticket.last_public_seq += 1
        public_seq = ticket.last_public_seq
        ticket.public_updated_at = at  # what customers see changed; an internal event leaves it
    return TicketEvent(
        ticket_id=ticket.pk,
        seq=ticket.last_seq,
        public_seq=public_seq,
        kind=new.kind,
        is_internal=new.is_internal,
        **new.actor.snapshot("actor", ("id", "kind", "label")),
        data=new.data,
        created_at=at,
    )


def record_events(new_events: Sequence[NewEvent]) -> list[TicketEvent]:
    """Append events to locked tickets (in order: a ticket's events are numbered as listed), have the
    writers write their rows, hook them after commit — one insert for the events, however many, and one
    statement per writer.

    The counters live on the locked ticket rows, so concurrent writers queue behind the lock and the
    sequence stays gap-free and unique; a rollback takes the increments with it. The caller saves the
    tickets (`save_ticket`, `save_tickets`), counters included.
    """
    events = bulk_insert(TicketEvent, [_numbered(new) for new in new_events])
    record_written_events([(event, new.ticket) for new, event in zip(new_events, events, strict=True)])
    return events


def record_written_events(
    events: Sequence[tuple[TicketEvent, Ticket]], *, written_in_sql: Collection[str] = ()
) -> None:
    """What follows the insert of events (each with its ticket): the writers' rows in the same transaction
    (but those whose SQL form the caller's statement ran: `written_in_sql`), and the after-commit hooks.
    `record_events` calls it; so does the SLA sweep, which numbers and inserts its events in SQL by the
    same rules (`tickets.services.sla`)."""
    write_recorded_events(events, written_in_sql=written_in_sql)
    for event, ticket in events:
        # The hooks run after commit, when the locked ticket in hand is what was committed: the realtime
        # publisher takes its parties from it instead of reading the row again.
        if not TicketEvent.ticket.is_cached(event):
            event.ticket = ticket
    schedule_event_hooks(*(event for event, _ticket in events))


def record_event(
    ticket: Ticket,
    *,
    kind: str,
    actor: Party,
    data: dict[str, Any],
    is_internal: bool = False,
    at: datetime.datetime | None = None,
) -> TicketEvent:
    """Append the next event of a locked ticket (see `record_events`)."""
    (event,) = record_events([NewEvent(ticket, kind, actor, data, is_internal, at)])
    return event


# Saved with every locked ticket after its events.
_EVENT_FIELDS = ("updated_at", "public_updated_at", "last_seq", "last_public_seq")


def save_ticket(ticket: Ticket, *fields: str, at: datetime.datetime) -> None:
    """Save a locked ticket after its events: `updated_at` moves; `public_updated_at` only moved if one of
    them is public (`record_events`)."""
    ticket.updated_at = at
    ticket.save(update_fields=[*fields, *_EVENT_FIELDS])


def save_tickets(tickets: Sequence[Ticket], *fields: str, at: datetime.datetime) -> None:
    """`save_ticket` for many locked tickets, in one statement."""
    for ticket in tickets:
        ticket.updated_at = at
    bulk_update(Ticket, tickets, [*fields, *_EVENT_FIELDS])


def clean_metadata(value: object) -> dict[str, Any]:
    """A ticket's metadata: a JSON object of bounded size, depth and key count, storable in jsonb."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(
            "metadata must be an object.", fields={"metadata": ["Expected a JSON object."]}
        )
    try:
        json_input.check(value, max_depth=METADATA_MAX_DEPTH, max_keys=METADATA_MAX_KEYS, path="metadata")
    except json_input.JsonRefused as refused:
        raise ValidationFailed(
            f"metadata is refused: {refused}", fields={refused.path or "metadata": [refused.message]}
        ) from refused
    if len(canonical_json_bytes(value)) > METADATA_MAX_BYTES:
        raise ValidationFailed(
            "metadata is too large.",
            fields={"metadata": [f"At most {METADATA_MAX_BYTES} bytes of JSON."]},
        )
    return value


def clean_choice(field: str, value: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if value not in allowed:
        raise ValidationFailed(
            f"{field} is not one of the allowed values.",
            fields={field: [f'"{value}" is not a valid choice; expected one of {", ".join(allowed)}.']},
        )
    return value


# What a status change writes on the ticket (`apply_status`): its callers save these.
STATUS_FIELDS = (
    "status",
    "resolved_at",
    "closed_at",
    "last_activity_at",
    "status_changed_at",
    *clock.CLOCK_FIELDS,
)


def apply_status(
    ticket: Ticket, *, actor: Party, role: states.Role, target: str, reason: str, at: datetime.datetime
) -> TicketEvent:
    """Move a locked ticket through the state machine (raising Conflict with the allowed targets); the SLA
    clock follows (it pauses, resumes, decides)."""
    source = ticket.status
    try:
        states.check_transition(source, target, role)
    except states.IllegalTransition as illegal:
        raise Conflict(
            f"A ticket that is {humanise.status_phrase(source)} cannot be moved to "
            f"{humanise.status_phrase(target)} by {humanise.party_phrase(role.value)}.",
            code="illegal_transition",
            fields={
                "status": [
                    f"Allowed: {', '.join(humanise.status_phrase(s) for s in illegal.allowed) or 'none'}."
                ]
            },
            extra={"current": source, "allowed": [s.value for s in illegal.allowed]},
        ) from illegal
    clock.clock_status_change(ticket, source=source, target=target, at=at)
    ticket.status = target
    ticket.status_changed_at = at
    if target == Ticket.Status.RESOLVED:
        ticket.resolved_at = at
    elif target == Ticket.Status.CLOSED:
        ticket.closed_at = at
    elif source == Ticket.Status.RESOLVED:
        ticket.resolved_at = None
    ticket.last_activity_at = at
    return record_event(
        ticket,
        kind=Kind.STATUS_CHANGE,
        actor=actor,
        data={"from": source, "to": target, "reason": reason},
        at=at,
    )
