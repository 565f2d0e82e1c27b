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

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Aggregate, Case, Count, DurationField, F, Q, QuerySet, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from chain.selectors import CHAIN_STATE_FIELD, with_chain_state
from core.errors import NotFound
from core.formats import parse_uuid
from core.parties import Party, scope_of
from providers.models import Deployment, ProviderAccount
from providers.selectors import SUPPORT_GROUP, deployments_visible_to
from tickets.models import Assignment, Attachment, Comment, DeploymentLink, SlaPolicy, Ticket, TicketEvent
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
    "updated_at",
    "resolved_at",
    "closed_at",
    "metadata",
    "sla_first_response_due",
    "sla_resolution_due",
    "first_response_at",
    "customer_address",
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


def _rows(tickets: QuerySet[Ticket], party: Party) -> QuerySet:
    """Ticket rows with their chain state folded in (no second round trip)."""
    return with_chain_state(tickets, sees_internal=party.sees_internal).values(
        *TICKET_ROW_FIELDS, CHAIN_STATE_FIELD, **TICKET_ROW_RELATED
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


# ---------------------------------------------------------------------------------------------------------
# What the portal's pages need besides the API's reads.


def ticket_id_for_reference(party: Party, reference: str) -> uuid.UUID:
    """The id of a visible ticket named the way people name it: `SUP-000123`, `123`, or its UUID."""
    parsed = parse_uuid(reference)
    if parsed is not None:
        return ticket_get(party, parsed).pk
    digits = reference.upper().removeprefix(settings.VE_TICKET_NUMBER_PREFIX).lstrip("0")
    if not digits.isdigit() or len(digits) > 18:
        raise NotFound("Ticket not found.")
    ticket_id = tickets_visible_to(party).filter(number=int(digits)).values_list("pk", flat=True).first()
    if ticket_id is None:
        raise NotFound("Ticket not found.")
    return ticket_id


def linkable_deployments(party: Party, detail: TicketDetail) -> list[Deployment]:
    """Deployments the party could link to this ticket: the ticket's customer's others, visible to it."""
    linked = {link.deployment_id for link in detail.links}
    candidates = deployments_visible_to(party).filter(owner_address=detail.row["customer_address"])
    return [
        deployment
        for deployment in candidates.exclude(lease_id=detail.row["deployment_lease_id"]).order_by(
            "-created_at"
        )[:100]
        if deployment.pk not in linked
    ]


def sla_targets() -> dict[str, tuple[int, int]]:
    """priority → (first response minutes, resolution minutes), as the policies say (the create form)."""
    return {
        priority: (first, resolution)
        for priority, first, resolution in SlaPolicy.objects.values_list(
            "priority", "first_response_minutes", "resolution_minutes"
        )
    }


def uploads_of(party: Party, attachment_ids: Iterable[object]) -> list[Attachment]:
    """The party's own uploads not yet attached to a ticket, among these ids (a form shown again)."""
    return list(
        Attachment.objects.filter(pk__in=_uuids(attachment_ids), ticket__isnull=True, uploader_key=party.key)
    )


# ---------------------------------------------------------------------------------------------------------
# What the support console reads besides the API's reads.


def support_agents() -> list[tuple[int, str]]:
    """(user id, username) of the active support agents, for assigning a ticket to one of them."""
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(is_staff=True, groups__name=SUPPORT_GROUP))
    )
    return list(users.distinct().order_by("username").values_list("pk", "username"))


def ticket_events_all(party: Party, ticket_id: object) -> list[TicketEvent]:
    """Every event of a ticket the party may see, oldest first (the console's single timeline)."""
    return list(_visible_events(party, Ticket(pk=parse_ticket_id(ticket_id))))


@dataclass(frozen=True)
class QueueFilters:
    breached: bool = False
    due_within_hour: bool = False
    unassigned: bool = False
    mine: bool = False
    provider_id: int | None = None
    priority: str | None = None
    agent_id: int | None = None  # who "mine" means

    @classmethod
    def from_query(cls, query: Mapping[str, Any], *, agent_id: int | None) -> QueueFilters:
        provider = str(query.get("provider") or "")
        priority = str(query.get("priority") or "")
        return cls(
            breached=query.get("breached") == "1",
            due_within_hour=query.get("due") == "1h",
            unassigned=query.get("unassigned") == "1",
            mine=query.get("mine") == "1",
            provider_id=int(provider) if provider.isdigit() and len(provider) < 12 else None,
            priority=priority if priority in Ticket.Priority.values else None,
            agent_id=agent_id,
        )


QUEUE_LIMIT = 200
AT_RISK_WITHIN = datetime.timedelta(hours=1)
URGENCY_LABELS = ("breached", "at_risk", "ok")


def escalation_queue(
    party: Party, filters: QueueFilters, *, now: datetime.datetime | None = None
) -> list[Ticket]:
    """The tickets assigned to VirtEngine support that are not closed: breached first, then at risk, then by
    due time — with their provider and assignee (one query)."""
    now = now or timezone.now()
    due = Case(
        When(first_response_at__isnull=True, then=F("sla_first_response_due")),
        default=F("sla_resolution_due"),
    )
    tickets = (
        tickets_visible_to(party)
        .filter(assignee_kind=Ticket.AssigneeKind.SUPPORT)
        .exclude(status=Ticket.Status.CLOSED)
        .select_related("provider", "assigned_to", "deployment")
        .annotate(next_due=due)
        .annotate(
            urgency=Case(
                When(next_due__lt=now, then=Value(0)),
                When(next_due__lt=now + AT_RISK_WITHIN, then=Value(1)),
                default=Value(2),
            )
        )
    )
    if filters.breached:
        tickets = tickets.filter(next_due__lt=now)
    if filters.due_within_hour:
        tickets = tickets.filter(next_due__gte=now, next_due__lt=now + AT_RISK_WITHIN)
    if filters.unassigned:
        tickets = tickets.filter(assigned_to__isnull=True)
    if filters.mine:
        tickets = tickets.filter(assigned_to_id=filters.agent_id)
    if filters.provider_id is not None:
        tickets = tickets.filter(provider_id=filters.provider_id)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    rows = list(tickets.order_by("urgency", F("next_due").asc(nulls_last=True), "created_at")[:QUEUE_LIMIT])
    for row in rows:
        row.urgency_label = URGENCY_LABELS[row.urgency]
    return rows


def provider_choices() -> list[tuple[int, str]]:
    return list(ProviderAccount.objects.order_by("name").values_list("pk", "name"))


class Median(Aggregate):
    """PostgreSQL's median of an interval (percentile_cont 0.5)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass(frozen=True)
class ProviderAttainment:
    provider: str
    first_response_met_7d: float | None
    first_response_met_30d: float | None
    resolution_met_7d: float | None
    resolution_met_30d: float | None
    median_first_response_7d: datetime.timedelta | None
    median_first_response_30d: datetime.timedelta | None


@dataclass(frozen=True)
class Dashboard:
    open_by_status_and_priority: dict[str, dict[str, int]]
    breached_now: int
    due_within_hour: int
    providers: list[ProviderAttainment]
    escalations_per_day: list[tuple[datetime.date, int]]


def _share(met: int, decided: int) -> float | None:
    return round(100 * met / decided, 1) if decided else None


def console_dashboard(*, now: datetime.datetime | None = None) -> Dashboard:
    """SLA attainment per provider and the support workload, in four queries whatever the data's size."""
    now = now or timezone.now()
    open_tickets = Ticket.objects.exclude(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    by_status: dict[str, dict[str, int]] = {status: {} for status in Ticket.Status.values}
    for status, priority, count in (
        open_tickets.values_list("status", "priority").annotate(count=Count("id")).order_by()
    ):
        by_status[status][priority] = count
    due = Case(
        When(first_response_at__isnull=True, then=F("sla_first_response_due")),
        default=F("sla_resolution_due"),
    )
    counts = open_tickets.annotate(next_due=due).aggregate(
        breached=Count("id", filter=Q(next_due__lt=now)),
        soon=Count("id", filter=Q(next_due__gte=now, next_due__lt=now + AT_RISK_WITHIN)),
    )
    windows = {"7d": now - datetime.timedelta(days=7), "30d": now - datetime.timedelta(days=30)}
    aggregates: dict[str, Any] = {}
    for name, since in windows.items():
        answered = Q(tickets__created_at__gte=since, tickets__first_response_at__isnull=False)
        resolved = Q(tickets__created_at__gte=since, tickets__resolved_at__isnull=False)
        aggregates |= {
            f"fr_decided_{name}": Count("tickets", filter=answered),
            f"fr_met_{name}": Count(
                "tickets",
                filter=answered & Q(tickets__first_response_at__lte=F("tickets__sla_first_response_due")),
            ),
            f"res_decided_{name}": Count("tickets", filter=resolved),
            f"res_met_{name}": Count(
                "tickets", filter=resolved & Q(tickets__resolved_at__lte=F("tickets__sla_resolution_due"))
            ),
            f"median_{name}": Median(
                F("tickets__first_response_at") - F("tickets__created_at"), filter=answered
            ),
        }
    providers = [
        ProviderAttainment(
            provider=row["name"],
            first_response_met_7d=_share(row["fr_met_7d"], row["fr_decided_7d"]),
            first_response_met_30d=_share(row["fr_met_30d"], row["fr_decided_30d"]),
            resolution_met_7d=_share(row["res_met_7d"], row["res_decided_7d"]),
            resolution_met_30d=_share(row["res_met_30d"], row["res_decided_30d"]),
            median_first_response_7d=row["median_7d"],
            median_first_response_30d=row["median_30d"],
        )
        for row in ProviderAccount.objects.order_by("name").values("name").annotate(**aggregates)
    ]
    escalations = (
        Assignment.objects.filter(is_escalation=True, created_at__gte=windows["30d"])
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return Dashboard(
        open_by_status_and_priority=by_status,
        breached_now=counts["breached"],
        due_within_hour=counts["soon"],
        providers=providers,
        escalations_per_day=list(escalations),
    )
