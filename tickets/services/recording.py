"""What every ticket service does the same way: lock the ticket, check the input, append the event.

`record_event` is the single place an event is written: it numbers the event (gap-free per ticket, and
separately for what customers see), queues its chain outbox row in the same transaction, and schedules the
after-commit hooks (real-time broadcast, outbox drain).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from chain.services import outbox_enqueue
from core import json_input
from core.errors import Conflict, NotFound, ValidationFailed
from core.formats import canonical_json_bytes
from core.parties import Party, PartyKind
from tickets import states
from tickets.hooks import schedule_event_hooks
from tickets.models import (
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    Ticket,
    TicketEvent,
)
from tickets.selectors import parse_ticket_id, ticket_is_visible_to

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


def record_event(
    ticket: Ticket,
    *,
    kind: str,
    actor: Party,
    data: dict[str, Any],
    is_internal: bool = False,
    at: datetime.datetime | None = None,
) -> TicketEvent:
    """Append the next event of a locked ticket, queue it for the chain, hook it after commit.

    The counters live on the locked ticket row, so concurrent writers queue behind the lock and the
    sequence stays gap-free and unique; a rollback takes the increments with it.
    """
    ticket.last_seq += 1
    public_seq = None
    at = at or timezone.now()
    if not is_internal:
        ticket.last_public_seq += 1
        public_seq = ticket.last_public_seq
        ticket.public_updated_at = at
    event = TicketEvent.objects.create(
        ticket=ticket,
        seq=ticket.last_seq,
        public_seq=public_seq,
        kind=kind,
        is_internal=is_internal,
        actor_id=actor.user_id,
        actor_kind=actor.kind.value,
        actor_label=actor.label,
        data=data,
        created_at=at,
    )
    outbox_enqueue(event=event)
    schedule_event_hooks(event)
    return event


def save_ticket(ticket: Ticket, *fields: str, at: datetime.datetime) -> None:
    """Save a locked ticket after its events: `updated_at` moves; `public_updated_at` only moved if one of
    them is public (`record_event`)."""
    ticket.updated_at = at
    ticket.save(update_fields=[*fields, "updated_at", "public_updated_at", "last_seq", "last_public_seq"])


def clean_text(field: str, value: str | None, *, max_length: int, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"{field} is required.", fields={field: ["This field may not be blank."]})
    if len(text) > max_length:
        raise ValidationFailed(
            f"{field} is too long.",
            fields={field: [f"Ensure this field has no more than {max_length} characters."]},
        )
    return text


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


def apply_status(
    ticket: Ticket, *, actor: Party, role: states.Role, target: str, reason: str, at: datetime.datetime
) -> TicketEvent:
    """Move a locked ticket through the state machine (raising Conflict with the allowed targets)."""
    source = ticket.status
    try:
        states.check_transition(source, target, role)
    except states.IllegalTransition as illegal:
        raise Conflict(
            f"A ticket that is {source} cannot be moved to {target} by {role.value}.",
            code="illegal_transition",
            fields={"status": [f"Allowed: {', '.join(s.value for s in illegal.allowed) or 'none'}."]},
            extra={"current": source, "allowed": [s.value for s in illegal.allowed]},
        ) from illegal
    ticket.status = target
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
