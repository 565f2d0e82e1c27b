"""Writes of the chain app. `outbox_enqueue` is called by every ticket service, inside its transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.models import OutboxEntry

if TYPE_CHECKING:
    from tickets.models import TicketEvent


def idempotency_key_for(*, ticket_id: object, seq: int) -> str:
    """The stable key a ledger uses to recognise a resubmitted event."""
    return f"ticket:{ticket_id}:{seq}"


def outbox_enqueue(*, event: TicketEvent) -> OutboxEntry:
    """Queue `event` for anchoring. Must run in the transaction that records the event."""
    return OutboxEntry.objects.create(
        event=event,
        ticket_id=event.ticket_id,
        seq=event.seq,
        is_internal=event.is_internal,
        idempotency_key=idempotency_key_for(ticket_id=event.ticket_id, seq=event.seq),
        created_at=event.created_at,
        next_attempt_at=event.created_at,
    )
