"""Assignment writes: escalation to the VirtEngine support queue and reassignment by support, each with its
place in the assignment history (from, to, by whom, why, when)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, Forbidden, ValidationFailed
from core.parties import Party
from core.text import clean_text
from providers.models import ProviderMembership
from providers.selectors import user_is_support
from tickets.models import REASON_MAX_LENGTH, Assignment, Ticket, TicketEvent
from tickets.services import logs, recording


def assignment_change(
    ticket: Ticket,
    *,
    actor: Party,
    to_kind: str,
    to_user_id: int | None,
    reason: str,
    is_escalation: bool,
    at: datetime.datetime,
    names: Mapping[int, str],
    customer_message: str = "",
) -> tuple[Assignment, recording.NewEvent]:
    """What reassigning a locked ticket writes, not yet written: its assignment history row and its event
    (`names`: usernames of the users involved). The ticket's assignee is changed in memory.

    Who reads the reason: a customer's own reason is public; a provider's or support's is internal (provider
    and support only), and `customer_message`, if any, is what the customer is told instead."""
    assignment = Assignment(
        ticket_id=ticket.pk,
        from_kind=ticket.assignee_kind,
        from_user_id=ticket.assigned_to_id,
        to_kind=to_kind,
        to_user_id=to_user_id,
        **actor.snapshot("by", ("kind", "label")),
        reason=reason,
        is_escalation=is_escalation,
        created_at=at,
    )
    data = assignment_data(
        from_kind=ticket.assignee_kind,
        from_user_id=ticket.assigned_to_id,
        from_name=_name_of(names, ticket.assigned_to_id),
        to_kind=to_kind,
        to_user_id=to_user_id,
        to_name=_name_of(names, to_user_id),
        reason=reason,
        escalation=is_escalation,
        reason_internal=reason_is_internal(actor),
        customer_message=customer_message or None,
    )
    ticket.assignee_kind = to_kind
    ticket.assigned_to_id = to_user_id
    if is_escalation:
        ticket.escalated_at = at
    event = recording.NewEvent(ticket, recording.Kind.ASSIGNMENT_CHANGE, actor, data, at=at)
    return assignment, event


def reason_is_internal(actor: Party) -> bool:
    """A reason written by a provider or support is for provider and support only (issue 29)."""
    return actor.is_provider or actor.is_support


def _name_of(names: Mapping[int, str], user_id: int | None) -> str | None:
    return None if user_id is None else names.get(user_id)


def assignment_data(
    *,
    from_kind: Any,
    from_user_id: Any,
    from_name: Any,
    to_kind: Any,
    to_user_id: Any,
    to_name: Any,
    reason: Any,
    escalation: Any,
    reason_internal: Any = False,
    customer_message: Any = None,
) -> dict[str, Any]:
    """An `assignment_change` event's data. The one declaration of its shape: the SLA sweep builds the
    same object in SQL from it (values may be `core.bulk.Sql` expressions there). `reason_internal`: the
    reason is for provider and support only (the presenter gives customers `customer_message` instead);
    events written before it existed lack the key, and their reasons stay as they were published."""
    return {
        "from": {"kind": from_kind, "user_id": from_user_id, "name": from_name},
        "to": {"kind": to_kind, "user_id": to_user_id, "name": to_name},
        "reason": reason,
        "escalation": escalation,
        "reason_internal": reason_internal,
        "customer_message": customer_message,
    }


def _change_assignment(ticket: Ticket, **change: Any) -> TicketEvent:
    """Reassign a locked ticket now (`change`: the arguments of `assignment_change` but the names)."""
    names = _usernames({ticket.assigned_to_id, change["to_user_id"]})
    assignment, event = assignment_change(ticket, names=names, **change)
    assignment.save(force_insert=True)
    (recorded,) = recording.record_events([event])
    return recorded


def is_escalated(ticket: Ticket) -> bool:
    """Already in the support queue after an escalation (escalating again would change nothing)."""
    return ticket.escalated_at is not None and ticket.assignee_kind == Ticket.AssigneeKind.SUPPORT


# What an escalation changes on the ticket.
ESCALATION_FIELDS = ("assignee_kind", "assigned_to", "escalated_at")


def _usernames(user_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = [user_id for user_id in user_ids if user_id is not None]
    if not wanted:
        return {}
    return dict(get_user_model().objects.filter(pk__in=wanted).values_list("pk", "username"))


def _clean_customer_message(actor: Party, customer_message: str) -> str:
    customer_message = clean_text(
        "customer_message", customer_message, max_length=REASON_MAX_LENGTH, required=False
    )
    if customer_message and not reason_is_internal(actor):
        raise ValidationFailed(
            "A customer's reason is already public.",
            fields={"customer_message": ["Only a provider or support writes a separate message."]},
        )
    return customer_message


@transaction.atomic
def ticket_escalate(*, actor: Party, ticket_id: object, reason: str, customer_message: str = "") -> Ticket:
    """Hand a ticket to the VirtEngine support queue (by customer, provider, support or an SLA breach).

    A provider's or support's `reason` is internal; `customer_message` (optional) is what the customer
    reads about it. A customer's reason is public (they wrote it; their provider reads it too)."""
    reason = clean_text("reason", reason, max_length=REASON_MAX_LENGTH)
    customer_message = _clean_customer_message(actor, customer_message)
    ticket = recording.lock_ticket(actor, ticket_id)
    recording.require_not_closed(ticket)
    if is_escalated(ticket):
        raise Conflict("The ticket is already escalated to support.", code="already_escalated")
    now = timezone.now()
    _change_assignment(
        ticket,
        actor=actor,
        to_kind=Ticket.AssigneeKind.SUPPORT,
        to_user_id=None,
        reason=reason,
        is_escalation=True,
        at=now,
        customer_message=customer_message,
    )
    recording.save_ticket(ticket, *ESCALATION_FIELDS, at=now)
    logs.logs_fetch_queue(ticket.pk)  # the deployment's logs, for support (after commit)
    return ticket


@transaction.atomic
def ticket_assign(
    *,
    actor: Party,
    ticket_id: object,
    assignee_kind: str,
    assignee_user_id: int | None = None,
    reason: str = "",
    customer_message: str = "",
) -> Ticket:
    """Support reassigns a ticket: to the provider (its queue or one member) or to support (queue or agent).
    The reason is internal; `customer_message` (optional) is what the customer reads."""
    assignee_kind = recording.clean_choice("assignee_kind", assignee_kind, Ticket.AssigneeKind.values)
    reason = clean_text("reason", reason, max_length=REASON_MAX_LENGTH, required=False)
    customer_message = _clean_customer_message(actor, customer_message)
    ticket = recording.lock_ticket(actor, ticket_id)
    if not actor.is_support:
        raise Forbidden("Only VirtEngine support assigns tickets.")
    recording.require_not_closed(ticket)
    if assignee_user_id is not None:
        _require_assignable(ticket, assignee_kind=assignee_kind, user_id=assignee_user_id)
    if ticket.assignee_kind == assignee_kind and ticket.assigned_to_id == assignee_user_id:
        return ticket
    now = timezone.now()
    _change_assignment(
        ticket,
        actor=actor,
        to_kind=assignee_kind,
        to_user_id=assignee_user_id,
        reason=reason,
        is_escalation=False,
        at=now,
        customer_message=customer_message,
    )
    recording.save_ticket(ticket, "assignee_kind", "assigned_to", at=now)
    return ticket


def _require_assignable(ticket: Ticket, *, assignee_kind: str, user_id: int) -> None:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if assignee_kind == Ticket.AssigneeKind.PROVIDER:
        allowed = ProviderMembership.objects.filter(user_id=user_id, provider_id=ticket.provider_id).exists()
        problem = "is not a member of the ticket's provider"
    else:
        allowed = user is not None and user_is_support(user)
        problem = "is not a support agent"
    if user is None or not allowed:
        raise ValidationFailed(
            "Cannot assign to that user.", fields={"assignee_id": [f"User {user_id} {problem}."]}
        )
