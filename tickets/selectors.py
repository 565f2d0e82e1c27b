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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, Q, QuerySet, Value, When

from chain.selectors import CHAIN_STATE_FIELD, with_chain_state
from core.errors import NotFound
from core.formats import parse_uuid
from core.parties import Party, scope_of
from providers.selectors import deployments_visible_to
from tickets.models import Attachment, Comment, DeploymentLink, Ticket, TicketEvent
from tickets.presenter import Related


def _ticket_scope(party: Party) -> Q | None:
    """Filter for the tickets `party` may see; None means no restriction, Q(pk__in=[]) nothing."""
    scope = scope_of(party)
    if scope.everything:
        return None
    if scope.provider_id is not None:
        return Q(provider_id=scope.provider_id)
    if scope.customer_address:
        return Q(customer_address=scope.customer_address) | Q(created_by_address=scope.customer_address)
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


def _visible_events(party: Party, ticket: Ticket, *, since: int = 0) -> QuerySet[TicketEvent]:
    """A ticket's events the party may see after `since` (in its own numbering), oldest first."""
    events = TicketEvent.objects.filter(ticket=ticket)
    if party.sees_internal:
        return events.filter(seq__gt=since).order_by("seq")
    return events.filter(is_internal=False, public_seq__gt=since).order_by("public_seq")


def events_visible_to(
    party: Party, ticket: Ticket, *, since: int = 0, limit: int | None = None
) -> list[TicketEvent]:
    """Events after `since` (in the party's own numbering), oldest first."""
    events = _visible_events(party, ticket, since=since)
    return list(events if limit is None else events[:limit])


def tickets_for_visibility(ticket_ids: Iterable[str]) -> dict[str, Ticket]:
    """ticket id → the ticket with just what `ticket_is_visible_to` reads (sockets re-check access)."""
    rows = Ticket.objects.filter(pk__in=_uuids(ticket_ids)).only(
        "id", "provider_id", "customer_address", "created_by_address"
    )
    return {str(ticket.id): ticket for ticket in rows}


@dataclass(frozen=True)
class TicketParties:
    """Who a ticket's events go to: its provider and the customer addresses that see it."""

    provider_id: int
    customer_addresses: frozenset[str]


def ticket_parties(ticket_id: object) -> TicketParties:
    provider_id, customer, creator = (
        Ticket.objects.filter(pk=parse_ticket_id(ticket_id))
        .values_list("provider_id", "customer_address", "created_by_address")
        .get()
    )
    return TicketParties(provider_id=provider_id, customer_addresses=frozenset({customer, creator} - {""}))


def last_seqs(ticket_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """ticket id → (last seq, last public seq): where each ticket's history ends, for sockets to compare
    with what they have sent (no party involved: the caller compares in its socket's own numbering)."""
    rows = Ticket.objects.filter(pk__in=_uuids(ticket_ids)).values_list("id", "last_seq", "last_public_seq")
    return {str(ticket_id): (seq, public_seq) for ticket_id, seq, public_seq in rows}


def last_visible_seq(party: Party, ticket: Ticket) -> int:
    return ticket.last_seq if party.sees_internal else ticket.last_public_seq


PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}

# What the API renders for a ticket, fetched as plain rows: building ~200 model instances per page of 50
# cost more than everything else in a list request.
TICKET_ROW_FIELDS = (
    "id",
    "number",
    "subject",
    "description",
    "category",
    "priority",
    "status",
    "created_by_label",
    "created_by_kind",
    "assignee_kind",
    "escalated_at",
    "created_at",
    "resolved_at",
    "closed_at",
    "metadata",
    "sla_first_response_due",
    "sla_resolution_due",
    "first_response_at",
    "last_seq",
    "last_public_seq",
)
TICKET_ROW_RELATED = {
    "deployment_lease_id": F("deployment__lease_id"),
    "deployment_name": F("deployment__name"),
    "provider_address": F("provider__address"),
    "provider_name": F("provider__name"),
    "assigned_to_username": F("assigned_to__username"),
}


# A row's `updated_at` as the party may know it: the last change it can see. For customers that is
# `public_updated_at`, which internal notes never move; rows and keyset pages use this key.
VISIBLE_UPDATED_AT = "visible_updated_at"


def updated_at_column(party: Party) -> str:
    return "updated_at" if party.sees_internal else "public_updated_at"


def _rows(tickets: QuerySet[Ticket], party: Party) -> QuerySet:
    """Ticket rows with their chain state folded in (no second round trip)."""
    return with_chain_state(tickets, sees_internal=party.sees_internal).values(
        *TICKET_ROW_FIELDS,
        CHAIN_STATE_FIELD,
        **TICKET_ROW_RELATED,
        **{VISIBLE_UPDATED_AT: F(updated_at_column(party))},
    )


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None
    priority: str | None = None
    category: str | None = None
    deployment_id: str | None = None
    q: str | None = None


def ticket_list(party: Party, filters: TicketFilters, *, rank_by_priority: bool = False) -> QuerySet:
    """Rows of the tickets a party may see, filtered; with `priority_rank` when ordering by priority."""
    tickets = tickets_visible_to(party)
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.category:
        tickets = tickets.filter(category=filters.category)
    if filters.deployment_id:
        tickets = tickets.filter(deployment__lease_id=filters.deployment_id)
    if filters.q:
        tickets = tickets.filter(_search(filters.q))
    rows = _rows(tickets, party)
    if rank_by_priority:
        rows = rows.annotate(
            priority_rank=Case(
                *(When(priority=name, then=Value(rank)) for name, rank in PRIORITY_RANK.items())
            )
        )
    return rows


def _search(text: str) -> Q:
    """Subject or description contains the text; `SUP-000123` or `123` also matches the number."""
    condition = Q(subject__icontains=text) | Q(description__icontains=text)
    digits = text.upper().removeprefix("SUP-").lstrip("0")
    if digits.isdigit() and len(digits) <= 18:
        condition |= Q(number=int(digits))
    return condition


# The detail's `history`: every event but those its `comments` and `attachments` already show.
HISTORY_EXCLUDED_KINDS = (TicketEvent.Kind.NEW_COMMENT, TicketEvent.Kind.ATTACHMENT_ADDED)


@dataclass(frozen=True)
class TicketDetail:
    row: dict[str, Any]
    comments: list[Comment]
    attachments: list[Attachment]
    links: list[DeploymentLink]
    history: list[TicketEvent]
    last_seq: int

    @property
    def related(self) -> Related:
        """What the history's events refer to: the comments and attachments the party may see."""
        return Related.of(self.comments, self.attachments)


def ticket_detail(party: Party, ticket_id: object) -> TicketDetail:
    """A ticket with its thread, attachments, links and history as `party` may see them (a fixed number
    of queries, whatever the thread's length)."""
    row = _rows(tickets_visible_to(party).filter(pk=parse_ticket_id(ticket_id)), party).first()
    if row is None:
        raise NotFound("Ticket not found.")
    ticket = Ticket(pk=row["id"])
    history = _visible_events(party, ticket).exclude(kind__in=HISTORY_EXCLUDED_KINDS)
    return TicketDetail(
        row=row,
        comments=list(comments_visible_to(party, ticket)),
        attachments=list(attachments_visible_to(party, ticket)),
        links=list(DeploymentLink.objects.filter(ticket=ticket).select_related("deployment")),
        history=list(history),
        last_seq=row["last_seq"] if party.sees_internal else row["last_public_seq"],
    )


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
    comments = list(Comment.objects.filter(pk__in=_uuids(comment_ids)))
    attachments = Attachment.objects.filter(pk__in=_uuids(attachment_ids)) | Attachment.objects.filter(
        comment_id__in=[comment.id for comment in comments]
    )
    return Related.of(comments, attachments)


def _uuids(values: Iterable[object]) -> list[uuid.UUID]:
    return [parsed for parsed in map(parse_uuid, values) if parsed is not None]
