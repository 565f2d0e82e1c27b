"""Who may see which ticket, and the reads scoped by it: tickets, threads, attachments, events.

The single source of "who may see what": REST views, WebSocket consumers, portal pages, attachment
downloads and the admin all read through these functions.
- a customer sees tickets on deployments they own and tickets they opened, never internal notes, internal
  attachments or the events about them;
- a provider sees tickets on deployments leased to it (also after escalation), internal notes included;
- support (and the system) sees everything.
A ticket the caller may not see does not exist for them (NotFound → 404).
"""

from __future__ import annotations

import datetime
import uuid

from django.db.models import Q, QuerySet

from core.errors import NotFound
from core.formats import parse_uuid
from core.parties import Party, scope_of
from providers.selectors import deployments_visible_to
from tickets.models import (
    CREATED_ON_ANOTHERS_LEASE,
    Attachment,
    Comment,
    Ticket,
    TicketEvent,
)


def _ticket_scope(party: Party) -> Q | None:
    """Filter for the tickets `party` may see; None means no restriction, Q(pk__in=[]) nothing."""
    scope = scope_of(party)
    if scope.everything:
        return None
    if scope.provider_id is not None:
        return Q(provider_id=scope.provider_id)
    if scope.customer_address:
        # The second arm restates the partial index's condition, so PostgreSQL can use the index for it.
        return Q(customer_address=scope.customer_address) | (
            Q(created_by_address=scope.customer_address) & CREATED_ON_ANOTHERS_LEASE
        )
    return Q(pk__in=[])


def tickets_visible_to(party: Party) -> QuerySet[Ticket]:
    scope = _ticket_scope(party)
    tickets = Ticket.objects.all()
    return tickets if scope is None else tickets.filter(scope)


def ticket_is_visible_to(party: Party, ticket: Ticket) -> bool:
    """The same rule as `tickets_visible_to`, on a loaded row (for services holding a locked ticket)."""
    scope = scope_of(party)
    if scope.everything:
        return True
    if scope.provider_id is not None:
        return ticket.provider_id == scope.provider_id
    if scope.customer_address:
        return scope.customer_address in (ticket.customer_address, ticket.created_by_address)
    return False


def party_may_write_a_ticket(party: Party) -> bool:
    """Whether the party can write to at least one ticket: one it sees that is still open to writes, or
    one it may open (on a deployment it sees). Uploads need it: a key that owns nothing stores nothing."""
    scope = scope_of(party)
    if scope.everything:
        return True
    if scope.nothing:
        return False
    writable = tickets_visible_to(party).exclude(status=Ticket.Status.CLOSED)
    return writable.exists() or deployments_visible_to(party).exists()


def parse_ticket_id(ticket_id: object) -> uuid.UUID:
    """A ticket id from a URL or payload; anything that is not a UUID is simply not found."""
    parsed = parse_uuid(ticket_id)
    if parsed is None:
        raise NotFound("Ticket not found.")
    return parsed


def ticket_get(party: Party, ticket_id: object) -> Ticket:
    ticket = (
        tickets_visible_to(party)
        .select_related("deployment", "provider", "assigned_to", "created_by")
        .filter(pk=parse_ticket_id(ticket_id))
        .first()
    )
    if ticket is None:
        raise NotFound("Ticket not found.")
    return ticket


def comments_visible_to(party: Party, ticket: Ticket) -> QuerySet[Comment]:
    comments = Comment.objects.filter(ticket=ticket)
    return comments if party.sees_internal else comments.filter(is_internal=False)


def attachments_visible_to(party: Party, ticket: Ticket) -> QuerySet[Attachment]:
    attachments = Attachment.objects.filter(ticket=ticket)
    return attachments if party.sees_internal else attachments.filter(is_internal=False)


def attachment_get_for_download(party: Party, attachment_id: object) -> Attachment:
    """An attachment the party may download: on a ticket it sees (and not internal for a customer),
    or its own upload not yet attached to any ticket."""
    attachment_uuid = parse_uuid(attachment_id)
    if attachment_uuid is None:
        raise NotFound("Attachment not found.")
    attachment = Attachment.objects.select_related("ticket").filter(pk=attachment_uuid).first()
    if attachment is None or attachment.erased_at is not None:  # an erased file's key is destroyed
        raise NotFound("Attachment not found.")
    if attachment.ticket is None:
        if attachment.uploader_key != party.key:
            raise NotFound("Attachment not found.")
        return attachment
    if not ticket_is_visible_to(party, attachment.ticket) or (
        attachment.is_internal and not party.sees_internal
    ):
        raise NotFound("Attachment not found.")
    return attachment


def visible_events_query(party: Party, ticket: Ticket, *, since: int = 0) -> QuerySet[TicketEvent]:
    """A ticket's events the party may see after `since` (in its own numbering), oldest first."""
    events = TicketEvent.objects.filter(ticket=ticket)
    if party.sees_internal:
        return events.filter(seq__gt=since).order_by("seq")
    return events.filter(is_internal=False, public_seq__gt=since).order_by("public_seq")


def events_visible_to(
    party: Party,
    ticket: Ticket,
    *,
    since: int = 0,
    limit: int | None = None,
    created_from: datetime.datetime | None = None,
) -> list[TicketEvent]:
    """Events after `since` (in the party's own numbering), oldest first; only those created at or after
    `created_from` when given."""
    events = visible_events_query(party, ticket, since=since)
    if created_from is not None:
        events = events.filter(created_at__gte=created_from)
    return list(events if limit is None else events[:limit])
