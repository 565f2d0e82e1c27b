"""Ticket writes: opening a ticket, moving its status, changing its priority."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden, ValidationFailed
from core.parties import Party
from providers.selectors import deployment_get_for
from tickets.models import REASON_MAX_LENGTH, SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH, SlaPolicy, Ticket
from tickets.services import recording
from tickets.services.attachments import attach_uploads


def sla_due_times(*, priority: str, start: datetime.datetime) -> tuple[datetime.datetime | None, ...]:
    """First-response and resolution due times for a priority, from its policy (24×7 clock)."""
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is None:
        return None, None
    return (
        start + datetime.timedelta(minutes=policy.first_response_minutes),
        start + datetime.timedelta(minutes=policy.resolution_minutes),
    )


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
    subject = recording.clean_text("subject", subject, max_length=SUBJECT_MAX_LENGTH)
    description = recording.clean_text("description", description, max_length=TEXT_MAX_LENGTH)
    category = recording.clean_choice("category", category, Ticket.Category.values)
    priority = recording.clean_choice("priority", priority, Ticket.Priority.values)
    metadata = recording.clean_metadata(metadata)
    deployment = deployment_get_for(actor, deployment_id)
    now = timezone.now()
    first_response_due, resolution_due = sla_due_times(priority=priority, start=now)
    ticket = Ticket.objects.create(
        deployment=deployment,
        provider_id=deployment.provider_id,
        customer_address=deployment.owner_address,
        subject=subject,
        description=description,
        category=category,
        priority=priority,
        created_by_id=actor.user_id,
        created_by_kind=actor.kind.value,
        created_by_address=actor.address if actor.is_customer else "",
        created_by_label=actor.label,
        created_at=now,
        updated_at=now,
        public_updated_at=now,
        last_activity_at=now,
        sla_first_response_due=first_response_due,
        sla_resolution_due=resolution_due,
        metadata=metadata,
    )
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
        },
        at=now,
    )
    attach_uploads(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=None, is_internal=False, at=now
    )
    recording.save_ticket(ticket, at=now)
    return ticket


@transaction.atomic
def ticket_transition(*, actor: Party, ticket_id: object, status: str, reason: str = "") -> Ticket:
    """Change a ticket's status through the state machine. Moving to the current status changes nothing."""
    status = recording.clean_choice("status", status, Ticket.Status.values)
    reason = recording.clean_text("reason", reason, max_length=REASON_MAX_LENGTH, required=False)
    ticket = recording.lock_ticket(actor, ticket_id)
    if ticket.status == status:
        return ticket
    now = timezone.now()
    recording.apply_status(
        ticket, actor=actor, role=recording.ROLE_OF_PARTY[actor.kind], target=status, reason=reason, at=now
    )
    recording.save_ticket(ticket, "status", "resolved_at", "closed_at", "last_activity_at", at=now)
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
    ticket.sla_first_response_due, ticket.sla_resolution_due = sla_due_times(
        priority=priority, start=ticket.created_at
    )
    recording.record_event(
        ticket,
        kind=recording.Kind.PRIORITY_CHANGE,
        actor=actor,
        data={"from": previous, "to": priority},
        at=now,
    )
    recording.save_ticket(ticket, "priority", "sla_first_response_due", "sla_resolution_due", at=now)
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
