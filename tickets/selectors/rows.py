"""Ticket rows as every surface lists and shows them: the filtered list, and one ticket's detail.

Rows are plain `.values()` dictionaries (building model instances for a page cost more than the rest of
the request), with the columns other apps register folded into the same query (`tickets.hooks`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone

from core.errors import NotFound
from core.parties import Party, party_in_slots, scope_slots
from core.prepared import prepared_statements
from core.statements import StatementCache
from tickets import hooks, sla
from tickets.models import (
    Attachment,
    Comment,
    DeploymentLink,
    Ticket,
    TicketEvent,
)
from tickets.presenter import Related
from tickets.selectors.search import RANK, TicketSearchQuery, parse_search, ticket_search
from tickets.selectors.sla import SLA_FILTERS
from tickets.selectors.visibility import (
    attachments_visible_to,
    comments_visible_to,
    parse_ticket_id,
    tickets_visible_to,
    visible_events_query,
)

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
    "first_response_at",
    "customer_address",
    "sla_first_response_due",
    "sla_first_response_met",
    "sla_first_response_breached_at",
    "sla_resolution_due",
    "sla_resolution_met",
    "sla_resolution_breached_at",
    "sla_paused_since",
    "sla_next_due",
    "last_seq",
    "last_public_seq",
)
TICKET_ROW_RELATED = {
    "deployment_lease_id": F("deployment__lease_id"),
    "deployment_name": F("deployment__name"),
    "provider_address": F("provider__address"),
    "provider_name": F("provider__name"),
    "assigned_to_username": F("assigned_to__username"),
    # The policy's calendar, for counting what is left of a target in its working time.
    "sla_time_zone": F("sla_policy__calendar__time_zone"),
    "sla_opening_hours": F("sla_policy__calendar__opening_hours"),
    "sla_holiday_country": F("sla_policy__calendar__holiday_country"),
    "sla_holiday_subdivision": F("sla_policy__calendar__holiday_subdivision"),
    "sla_closed_dates": F("sla_policy__calendar__closed_dates"),
}


# A row's `updated_at` as the party may know it: the last change it can see. For customers that is
# `public_updated_at`, which internal notes never move; rows and keyset pages use this key.
VISIBLE_UPDATED_AT = "visible_updated_at"


def updated_at_column(party: Party) -> str:
    return "updated_at" if party.sees_internal else "public_updated_at"


def _rows(tickets: QuerySet[Ticket], party: Party, *annotations: str) -> QuerySet[Any, Any]:
    """Ticket rows with the other apps' columns folded in (the chain state: no second round trip), and
    the named annotations of `tickets`."""
    return hooks.with_ticket_columns(tickets, sees_internal=party.sees_internal).values(
        *TICKET_ROW_FIELDS,
        *hooks.ticket_column_names(),
        *annotations,
        **TICKET_ROW_RELATED,
        **{VISIBLE_UPDATED_AT: F(updated_at_column(party))},
    )


def ticket_sla(row: dict[str, Any], *, now: datetime.datetime) -> dict[str, sla.TargetStatus]:
    """Where each SLA target of a ticket row stands at `now`, counted on its policy's clock."""
    clock = sla.clock_of(
        time_zone=row["sla_time_zone"],
        opening_hours=row["sla_opening_hours"],
        holiday_country=row["sla_holiday_country"],
        holiday_subdivision=row["sla_holiday_subdivision"],
        closed_dates=row["sla_closed_dates"],
    )
    return {
        "first_response": sla.target_status(
            clock,
            due=row["sla_first_response_due"],
            met=row["sla_first_response_met"],
            breached_at=row["sla_first_response_breached_at"],
            paused_since=None,  # the first-response clock never pauses
            now=now,
        ),
        "resolution": sla.target_status(
            clock,
            due=row["sla_resolution_due"],
            met=row["sla_resolution_met"],
            breached_at=row["sla_resolution_breached_at"],
            paused_since=row["sla_paused_since"],
            now=now,
        ),
    }


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None
    priority: str | None = None
    category: str | None = None
    deployment_id: str | None = None
    q: str | None = None
    sla: str | None = None  # breached | at_risk


def ticket_list(
    party: Party,
    filters: TicketFilters,
    *,
    rank_by_priority: bool = False,
    best_match_first: bool = False,
    now: datetime.datetime | None = None,
    search: TicketSearchQuery | None = None,
) -> QuerySet[Any, Any]:
    """Rows of the tickets a party may see, filtered (the SLA filter as of `now`); with `priority_rank`
    when ordering by priority. `search`: `filters.q` already parsed (the text is then not read)."""
    tickets = tickets_visible_to(party)
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.category:
        tickets = tickets.filter(category=filters.category)
    if filters.deployment_id:
        tickets = tickets.filter(deployment__lease_id=filters.deployment_id)
    if filters.sla:
        tickets = tickets.filter(SLA_FILTERS[filters.sla](now or timezone.now()))
    if search is None:
        search = parse_search(filters.q)  # last: best match first ranks among what the other filters keep
    if search is not None:
        tickets = ticket_search(tickets, party, search, best_first=best_match_first)
    rows = _rows(tickets, party, *([RANK] if search is not None else []))
    if rank_by_priority:
        rows = rows.annotate(
            priority_rank=Case(
                *(When(priority=name, then=Value(rank)) for name, rank in PRIORITY_RANK.items())
            )
        )
    return rows


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


# The detail's row query, compiled once per kind of party (core.statements).
_DETAIL_ROWS = StatementCache(size=32)


def _detail_row(party: Party, pk: object) -> dict[str, Any] | None:
    shape, values = scope_slots(party)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        rows = _rows(tickets_visible_to(party_in_slots(party, slots)).filter(pk=slots["pk"]), party)
        return (rows if rows.ordered else rows.order_by("pk"))[:1]  # as `.first()` reads it

    found = _DETAIL_ROWS.rows(shape, build, {**values, "pk": pk})
    return found[0] if found else None


def ticket_detail(party: Party, ticket_id: object, *, timeline: bool = False) -> TicketDetail:
    """A ticket with its thread, attachments, links and history as `party` may see them (a fixed number
    of queries, whatever the thread's length), read as prepared statements (the same texts for every
    ticket). With `timeline`, `history` holds every event, its comments and files included: the console's
    single timeline, in the same read."""
    pk = parse_ticket_id(ticket_id)
    with prepared_statements():
        row = _detail_row(party, pk)
        if row is None:
            raise NotFound("Ticket not found.")
        ticket = Ticket(pk=row["id"])
        history = visible_events_query(party, ticket)
        if not timeline:
            history = history.exclude(kind__in=HISTORY_EXCLUDED_KINDS)
        return TicketDetail(
            row=row,
            comments=list(comments_visible_to(party, ticket)),
            attachments=list(attachments_visible_to(party, ticket)),
            links=list(DeploymentLink.objects.filter(ticket=ticket).select_related("deployment")),
            history=list(history),
            last_seq=row["last_seq"] if party.sees_internal else row["last_public_seq"],
        )
