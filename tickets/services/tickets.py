"""Ticket writes: opening a ticket, moving its status, changing its priority."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden, ValidationFailed
from core.parties import Party
from core.text import clean_text
from providers.selectors import deployment_get_for
from tickets.models import REASON_MAX_LENGTH, SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH, Ticket
from tickets.services import clock, logs, recording
from tickets.services.attachments import attach_uploads


@transaction.atomic
def ticket_create(
    *,
    actor: Party,
    deployment_id: str,
    subject: str,
    description: str,
    category: str = Ticket.Category.GENERAL,
    priority: str = Ticket.Priority.MEDIUM,
    attachment_ids: Sequence[object] = (),
    metadata: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket about a deployment the actor may see (a customer's own, a provider's lease, any for support)."""
    if actor.is_system:
        raise Forbidden("The system does not open tickets.")
    subject = clean_text("subject", subject, max_length=SUBJECT_MAX_LENGTH, single_line=True)
    description = clean_text("description", description, max_length=TEXT_MAX_LENGTH)
    category = recording.clean_choice("category", category, Ticket.Category.values)
    priority = recording.clean_choice("priority", priority, Ticket.Priority.values)
    metadata = recording.clean_metadata(metadata)
    deployment = deployment_get_for(actor, deployment_id)
    now = timezone.now()
    ticket = Ticket(
        deployment=deployment,
        provider_id=deployment.provider_id,
        customer_address=deployment.owner_address,
        subject=subject,
        description=description,
        category=category,
        priority=priority,
        **actor.snapshot("created_by"),
        created_at=now,
        updated_at=now,
        public_updated_at=now,
        last_activity_at=now,
        status_changed_at=now,
        metadata=metadata,
    )
    clock.clock_start(ticket)
    ticket.save(force_insert=True)
    recording.record_event(
        ticket,
        kind=recording.Kind.TICKET_CREATED,
        actor=actor,
        data={
            "number": ticket.display_number,
            "deployment_id": deployment.lease_id,
            "category": category,
            "priority": priority,
            "status": ticket.status,
            # As opened: a later edit is an event of its own, so the history (and the chain) keeps both.
            "subject": subject,
            "description": description,
        },
        at=now,
    )
    attach_uploads(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=None, is_internal=False, at=now
    )
    recording.save_ticket(ticket, at=now)
    if category == Ticket.Category.TECHNICAL:
        logs.logs_fetch_queue(ticket.pk)  # context for whoever picks it up (after commit)
    return ticket


@transaction.atomic
def ticket_transition(*, actor: Party, ticket_id: object, status: str, reason: str = "") -> Ticket:
    """Change a ticket's status through the state machine. Moving to the current status changes nothing."""
    status = recording.clean_choice("status", status, Ticket.Status.values)
    reason = clean_text("reason", reason, max_length=REASON_MAX_LENGTH, required=False)
    ticket = recording.lock_ticket(actor, ticket_id)
    if ticket.status == status:
        return ticket
    now = timezone.now()
    recording.apply_status(
        ticket, actor=actor, role=recording.ROLE_OF_PARTY[actor.kind], target=status, reason=reason, at=now
    )
    recording.save_ticket(ticket, *recording.STATUS_FIELDS, at=now)
    return ticket


@transaction.atomic
def ticket_priority_set(*, actor: Party, ticket_id: object, priority: str) -> Ticket:
    """Change a ticket's priority (any party that sees it, while it is not closed); SLA due times follow."""
    priority = recording.clean_choice("priority", priority, Ticket.Priority.values)
    ticket = recording.lock_ticket(actor, ticket_id)
    if ticket.priority == priority:
        return ticket
    recording.require_not_closed(ticket)
    now = timezone.now()
    previous = ticket.priority
    ticket.priority = priority
    clock.clock_retarget(ticket)
    recording.record_event(
        ticket,
        kind=recording.Kind.PRIORITY_CHANGE,
        actor=actor,
        data={"from": previous, "to": priority},
        at=now,
    )
    recording.save_ticket(ticket, "priority", *clock.CLOCK_FIELDS, at=now)
    return ticket


@transaction.atomic
def ticket_update(
    *, actor: Party, ticket_id: object, status: str | None = None, priority: str | None = None
) -> Ticket:
    """The PATCH of a ticket: priority then status, all or nothing."""
    if status is None and priority is None:
        raise ValidationFailed(
            "Nothing to change.", fields={"non_field_errors": ["Give status and/or priority."]}
        )
    ticket = None
    if priority is not None:
        ticket = ticket_priority_set(actor=actor, ticket_id=ticket_id, priority=priority)
    if status is not None:
        ticket = ticket_transition(actor=actor, ticket_id=ticket_id, status=status)
    assert ticket is not None
    return ticket


EDITABLE_FIELDS = ("subject", "description", "category")


@transaction.atomic
def ticket_edit(
    *,
    actor: Party,
    ticket_id: object,
    subject: str | None = None,
    description: str | None = None,
    category: str | None = None,
) -> Ticket:
    """Correct a ticket's subject, description or category (VirtEngine support only): one `ticket_edited`
    event with the old and new values, anchored like every other. Unchanged values change nothing."""
    ticket = recording.lock_ticket(actor, ticket_id)
    if not actor.is_support:
        raise Forbidden("Only VirtEngine support edits tickets.")
    recording.require_not_closed(ticket)
    wanted = {
        "subject": None
        if subject is None
        else clean_text("subject", subject, max_length=SUBJECT_MAX_LENGTH, single_line=True),
        "description": None
        if description is None
        else clean_text("description", description, max_length=TEXT_MAX_LENGTH),
        "category": None
        if category is None
        else recording.clean_choice("category", category, Ticket.Category.values),
    }
    changes = {
        field: {"from": getattr(ticket, field), "to": value}
        for field, value in wanted.items()
        if value is not None and value != getattr(ticket, field)
    }
    if not changes:
        return ticket
    now = timezone.now()
    for field, change in changes.items():
        setattr(ticket, field, change["to"])
    recording.record_event(
        ticket, kind=recording.Kind.TICKET_EDITED, actor=actor, data={"changes": changes}, at=now
    )
    recording.save_ticket(ticket, *changes, at=now)
    return ticket
