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

from django.db import connection
from django.db.models import Case, F, JSONField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL

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
    "updated_at",
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


@dataclass(frozen=True)
class ChainState:
    state: str  # pending | anchored | failed
    tx_hash: str | None
    height: int | None


CHAIN_STATE_OF_ROW_SQL = """(
    SELECT jsonb_build_object(
               'failed', coalesce(bool_or(o.state = 'failed'), false),
               'unanchored', coalesce(bool_or(o.state <> 'anchored'), true),
               'tx_hash', (array_agg(o.tx_hash ORDER BY o.seq DESC) FILTER (WHERE o.state = 'anchored'))[1],
               'height', (array_agg(o.height ORDER BY o.seq DESC) FILTER (WHERE o.state = 'anchored'))[1])
      FROM chain_outboxentry o
     WHERE o.ticket_id = tickets_ticket.id {visibility}
)"""


def _rows(tickets: QuerySet[Ticket], party: Party) -> QuerySet:
    """Ticket rows with their chain state folded in (one correlated aggregate: no second round trip)."""
    visibility = "" if party.sees_internal else "AND NOT o.is_internal"
    chain = RawSQL(CHAIN_STATE_OF_ROW_SQL.format(visibility=visibility), [], output_field=JSONField())  # noqa: S611 - constant SQL
    return tickets.values(*TICKET_ROW_FIELDS, **TICKET_ROW_RELATED, chain=chain)


def chain_state_of_row(row: dict[str, Any]) -> ChainState:
    """pending | anchored | failed from a row's `chain` (a ticket with no recorded events is pending)."""
    chain = row.get("chain") or {}
    failed, unanchored = chain.get("failed"), chain.get("unanchored", True)
    state = "failed" if failed else "pending" if unanchored else "anchored"
    return ChainState(state=state, tx_hash=chain.get("tx_hash") or None, height=chain.get("height"))


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


CHAIN_STATE_SQL = """
    SELECT ticket_id,
           bool_or(state = 'failed'),
           bool_or(state <> 'anchored'),
           (array_agg(tx_hash ORDER BY seq DESC) FILTER (WHERE state = 'anchored'))[1],
           (array_agg(height ORDER BY seq DESC) FILTER (WHERE state = 'anchored'))[1]
      FROM chain_outboxentry
     WHERE ticket_id = ANY(%s) {visibility}
  GROUP BY ticket_id
"""


def chain_states(party: Party, ticket_ids: list[Any]) -> dict[Any, ChainState]:
    """Each ticket's anchoring state in one query: failed if an event's anchoring is failing, pending while
    any is unanchored, else anchored; with the latest anchored transaction. A customer's view counts only
    the events they may see. (Plain SQL: on the list's hot path the ORM's compilation of this aggregate
    cost more than running it.)"""
    if not ticket_ids:
        return {}
    sql = CHAIN_STATE_SQL.format(visibility="" if party.sees_internal else "AND NOT is_internal")
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ticket_ids)])
        rows = cursor.fetchall()
    return {
        ticket_id: ChainState(
            state="failed" if failed else "pending" if unanchored else "anchored",
            tx_hash=tx_hash or None,
            height=height,
        )
        for ticket_id, failed, unanchored, tx_hash, height in rows
    }


@dataclass(frozen=True)
class TicketDetail:
    row: dict[str, Any]
    chain: ChainState | None
    comments: list[Comment]
    attachments: list[Attachment]
    attachments_by_comment: dict[uuid.UUID, list[Attachment]]
    links: list[Any]
    last_seq: int


def ticket_detail(party: Party, ticket_id: object) -> TicketDetail:
    """A ticket with its thread, attachments and links as `party` may see them (a fixed number of queries)."""
    from tickets.models import DeploymentLink

    row = _rows(tickets_visible_to(party).filter(pk=parse_ticket_id(ticket_id)), party).first()
    if row is None:
        raise NotFound("Ticket not found.")
    ticket = Ticket(pk=row["id"])
    comments = list(comments_visible_to(party, ticket))
    attachments = list(attachments_visible_to(party, ticket))
    by_comment: dict[uuid.UUID, list[Attachment]] = {}
    for attachment in attachments:
        if attachment.comment_id is not None:
            by_comment.setdefault(attachment.comment_id, []).append(attachment)
    links = list(DeploymentLink.objects.filter(ticket=ticket).select_related("deployment"))
    return TicketDetail(
        row=row,
        chain=chain_state_of_row(row),
        comments=comments,
        attachments=attachments,
        attachments_by_comment=by_comment,
        links=links,
        last_seq=row["last_seq"] if party.sees_internal else row["last_public_seq"],
    )
