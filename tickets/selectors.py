"""Every read a party makes of tickets, threads, attachments and history.

The single source of "who may see what": REST views, WebSocket consumers, portal pages, attachment
downloads and the admin all read through these functions.
- a customer sees tickets on deployments they own and tickets they opened, never internal notes, internal
  attachments or the events about them;
- a provider sees tickets on deployments leased to it (also after escalation), internal notes included;
- support (and the system) sees everything.
A ticket the caller may not see does not exist for them (NotFound → 404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from core.errors import NotFound
from core.parties import Party, PartyKind
from tickets.models import Attachment, Comment, Ticket, TicketEvent


def _ticket_scope(party: Party) -> Q | None:
    """Filter for the tickets `party` may see; None means no restriction, Q(pk__in=[]) nothing."""
    if party.kind in (PartyKind.SUPPORT, PartyKind.SYSTEM):
        return None
    if party.kind is PartyKind.PROVIDER and party.provider_id is not None:
        return Q(provider_id=party.provider_id)
    if party.kind is PartyKind.CUSTOMER and party.address:
        return Q(customer_address=party.address) | Q(created_by_address=party.address)
    return Q(pk__in=[])


def tickets_visible_to(party: Party) -> QuerySet[Ticket]:
    scope = _ticket_scope(party)
    tickets = Ticket.objects.all()
    return tickets if scope is None else tickets.filter(scope)


def ticket_is_visible_to(party: Party, ticket: Ticket) -> bool:
    """The same rule as `tickets_visible_to`, on a loaded row (for services holding a locked ticket)."""
    if party.kind in (PartyKind.SUPPORT, PartyKind.SYSTEM):
        return True
    if party.kind is PartyKind.PROVIDER:
        return party.provider_id is not None and ticket.provider_id == party.provider_id
    if party.kind is PartyKind.CUSTOMER and party.address:
        return party.address in (ticket.customer_address, ticket.created_by_address)
    return False


def parse_ticket_id(ticket_id: object) -> uuid.UUID:
    """A ticket id from a URL or payload; anything that is not a UUID is simply not found."""
    if isinstance(ticket_id, uuid.UUID):
        return ticket_id
    try:
        return uuid.UUID(str(ticket_id))
    except ValueError as error:
        raise NotFound("Ticket not found.") from error


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
    try:
        attachment_uuid = uuid.UUID(str(attachment_id))
    except ValueError as error:
        raise NotFound("Attachment not found.") from error
    attachment = Attachment.objects.select_related("ticket").filter(pk=attachment_uuid).first()
    if attachment is None:
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


@dataclass(frozen=True)
class VisibleEvent:
    """A ticket event as one party sees it: `seq` is in that party's own numbering."""

    event: TicketEvent
    seq: int

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def data(self) -> dict[str, Any]:
        return self.event.data


def visible_seq(party: Party, event: TicketEvent) -> int | None:
    """The event's number for `party`: `public_seq` for customers (None if internal), else `seq`.

    Customers get their own gap-free numbering, so the gaps left by internal notes never show.
    """
    if party.sees_internal:
        return event.seq
    return None if event.is_internal else event.public_seq


def events_visible_to(
    party: Party, ticket: Ticket, *, since: int = 0, limit: int | None = None
) -> list[VisibleEvent]:
    """Events after `since` (in the party's own numbering), oldest first."""
    events = TicketEvent.objects.filter(ticket=ticket)
    if party.sees_internal:
        events = events.filter(seq__gt=since).order_by("seq")
    else:
        events = events.filter(is_internal=False, public_seq__gt=since).order_by("public_seq")
    if limit is not None:
        events = events[:limit]
    return [VisibleEvent(event=event, seq=visible_seq(party, event) or 0) for event in events]


def last_visible_seq(party: Party, ticket: Ticket) -> int:
    return ticket.last_seq if party.sees_internal else ticket.last_public_seq
