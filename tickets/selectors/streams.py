"""What the real-time layer reads: tickets touched since a moment, the parties of tickets, sequence
positions, events by id and what they refer to."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from core.formats import parse_uuid
from core.parties import Party
from tickets.models import (
    Attachment,
    Comment,
    Ticket,
    TicketEvent,
)
from tickets.presenter import Related
from tickets.selectors.visibility import parse_ticket_id

# The stream sockets' check for tickets they never heard of reads at most this many recent tickets.
TOUCHED_TICKETS_MAX = 5_000


def tickets_touched_since(moment: datetime.datetime) -> dict[str, Ticket]:
    """ticket id → the ticket (with what `ticket_is_visible_to` reads), for tickets changed since `moment`."""
    rows = (
        Ticket.objects.filter(updated_at__gte=moment)
        .order_by("-updated_at", "-id")
        .only("id", "provider_id", "customer_address", "created_by_address", "public_updated_at")[
            :TOUCHED_TICKETS_MAX
        ]
    )
    return {str(ticket.id): ticket for ticket in rows}


def tickets_for_visibility(ticket_ids: Iterable[str]) -> dict[str, Ticket]:
    """ticket id → the ticket with just what `ticket_is_visible_to` reads (sockets re-check access)."""
    rows = Ticket.objects.filter(pk__in=uuids_of(ticket_ids)).only(
        "id", "provider_id", "customer_address", "created_by_address"
    )
    return {str(ticket.id): ticket for ticket in rows}


@dataclass(frozen=True)
class TicketParties:
    """Who a ticket's events go to: its provider and the customer addresses that see it."""

    provider_id: int
    customer_addresses: frozenset[str]


def ticket_parties(ticket_id: object) -> TicketParties:
    return tickets_parties([ticket_id])[str(parse_ticket_id(ticket_id))]


_PARTY_FIELDS = ("id", "provider_id", "customer_address", "created_by_address")
_PARTY_ATTNAMES = frozenset(_PARTY_FIELDS)


def tickets_parties(
    ticket_ids: Iterable[object], *, loaded: Iterable[Ticket] = ()
) -> dict[str, TicketParties]:
    """`ticket_parties` for many tickets in one query, by ticket id (as a string). `loaded`: tickets the
    caller already holds with those fields (a sweep's batch), which are not fetched again."""
    known = {
        str(ticket.pk): (ticket.pk, ticket.provider_id, ticket.customer_address, ticket.created_by_address)
        for ticket in loaded
        if ticket.__dict__.keys() >= _PARTY_ATTNAMES  # loaded, not deferred (reading those would query)
    }
    wanted = [ticket_id for ticket_id in uuids_of(ticket_ids) if str(ticket_id) not in known]
    rows = [*known.values()]
    if wanted:
        rows += Ticket.objects.filter(pk__in=wanted).values_list(*_PARTY_FIELDS)
    return {
        str(ticket_id): TicketParties(
            provider_id=provider_id, customer_addresses=frozenset({customer, creator} - {""})
        )
        for ticket_id, provider_id, customer, creator in rows
    }


def last_seqs(ticket_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """ticket id → (last seq, last public seq): where each ticket's history ends, for sockets to compare
    with what they have sent (no party involved: the caller compares in its socket's own numbering)."""
    rows = Ticket.objects.filter(pk__in=uuids_of(ticket_ids)).values_list("id", "last_seq", "last_public_seq")
    return {str(ticket_id): (seq, public_seq) for ticket_id, seq, public_seq in rows}


def last_visible_seq(party: Party, ticket: Ticket) -> int:
    return ticket.last_seq if party.sees_internal else ticket.last_public_seq


def events_by_ids(event_ids: Iterable[int]) -> list[TicketEvent]:
    """Committed events by id, in order per ticket (no party: for the system's own fan-out, whose presenter
    then shapes each event for its audiences)."""
    return list(TicketEvent.objects.filter(pk__in=list(event_ids)).order_by("ticket_id", "seq"))


def event_related(events: Iterable[TicketEvent]) -> Related:
    """The comments and attachments that events refer to (with each comment's attachments), in two
    queries whatever the number of events."""
    events = list(events)
    comment_ids = {e.data.get("comment_id") for e in events if e.kind == TicketEvent.Kind.NEW_COMMENT}
    attachment_ids = {
        e.data.get("attachment_id")
        for e in events
        if e.kind in (TicketEvent.Kind.ATTACHMENT_ADDED, TicketEvent.Kind.LOGS_FETCHED)
    }
    comments = list(Comment.objects.filter(pk__in=uuids_of(comment_ids)))
    attachments = Attachment.objects.filter(pk__in=uuids_of(attachment_ids)) | Attachment.objects.filter(
        comment_id__in=[comment.id for comment in comments]
    )
    return Related.of(comments, attachments)


def uuids_of(values: Iterable[object]) -> list[uuid.UUID]:
    return [parsed for parsed in map(parse_uuid, values) if parsed is not None]
