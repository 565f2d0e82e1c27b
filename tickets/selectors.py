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

from core.errors import Forbidden, NotFound
from core.formats import parse_uuid
from core.parties import Party, scope_of
from providers.models import Deployment, ProviderAccount
from providers.selectors import SUPPORT_GROUP, deployments_visible_to, provider_by_address
from tickets import hooks, sla
from tickets.models import (
    CREATED_ON_ANOTHERS_LEASE,
    Assignment,
    Attachment,
    Comment,
    DeploymentLink,
    SlaPolicy,
    Ticket,
    TicketEvent,
)
from tickets.presenter import Related


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
    party: Party,
    ticket: Ticket,
    *,
    since: int = 0,
    limit: int | None = None,
    created_from: datetime.datetime | None = None,
) -> list[TicketEvent]:
    """Events after `since` (in the party's own numbering), oldest first; only those created at or after
    `created_from` when given."""
    events = _visible_events(party, ticket, since=since)
    if created_from is not None:
        events = events.filter(created_at__gte=created_from)
    return list(events if limit is None else events[:limit])


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
    wanted = [ticket_id for ticket_id in _uuids(ticket_ids) if str(ticket_id) not in known]
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


def _rows(tickets: QuerySet[Ticket], party: Party) -> QuerySet:
    """Ticket rows with the other apps' columns folded in (the chain state: no second round trip)."""
    return hooks.with_ticket_columns(tickets, sees_internal=party.sees_internal).values(
        *TICKET_ROW_FIELDS,
        *hooks.ticket_column_names(),
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


def sla_breached(now: datetime.datetime) -> Q:
    """Tickets that missed a target (met False, a breach recorded, or overdue before the sweep saw it)."""
    return (
        Q(sla_first_response_met=False)
        | Q(sla_resolution_met=False)
        | Q(sla_first_response_breached_at__isnull=False)
        | Q(sla_resolution_breached_at__isnull=False)
        | Q(sla_first_response_met__isnull=True, sla_first_response_due__lte=now)
        | Q(sla_resolution_met__isnull=True, sla_paused_since__isnull=True, sla_resolution_due__lte=now)
        | Q(sla_resolution_met__isnull=True, sla_paused_since__gte=F("sla_resolution_due"))
    )


def sla_at_risk(now: datetime.datetime) -> Q:
    """Tickets with a running target past its warning time (80 %) and none missed yet."""
    warned = Q(
        sla_first_response_met__isnull=True,
        sla_first_response_warn_at__lte=now,
        sla_first_response_due__gt=now,
    ) | Q(
        sla_resolution_met__isnull=True,
        sla_paused_since__isnull=True,
        sla_resolution_warn_at__lte=now,
        sla_resolution_due__gt=now,
    )
    return warned & ~sla_breached(now)


SLA_FILTERS = {"breached": sla_breached, "at_risk": sla_at_risk}


@dataclass(frozen=True)
class SlaBreachTotals:
    """Breaches recorded so far, per target (they only grow), and the open tickets that missed a target."""

    first_response: int
    resolution: int
    open_breached: int


def sla_breach_totals(now: datetime.datetime | None = None) -> SlaBreachTotals:
    """Across every ticket (operations' metrics, not a party's view), in one query."""
    now = now or timezone.now()
    is_open = ~Q(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    totals = Ticket.objects.aggregate(
        first_response=Count("id", filter=Q(sla_first_response_breached_at__isnull=False)),
        resolution=Count("id", filter=Q(sla_resolution_breached_at__isnull=False)),
        open_breached=Count("id", filter=is_open & sla_breached(now)),
    )
    return SlaBreachTotals(totals["first_response"], totals["resolution"], totals["open_breached"])


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
    now: datetime.datetime | None = None,
) -> QuerySet:
    """Rows of the tickets a party may see, filtered (the SLA filter as of `now`); with `priority_rank`
    when ordering by priority."""
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
    if filters.sla:
        tickets = tickets.filter(SLA_FILTERS[filters.sla](now or timezone.now()))
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


SLA_REPORT_DEFAULT_DAYS = 30


@dataclass(frozen=True)
class TargetAttainment:
    """How one target fared over a set of tickets: met, missed, still running, and met / decided."""

    met: int
    breached: int
    pending: int

    @property
    def attainment(self) -> float | None:
        decided = self.met + self.breached
        return round(self.met / decided, 4) if decided else None


@dataclass(frozen=True)
class ProviderAttainment:
    provider_address: str
    provider_name: str
    tickets: int
    first_response: TargetAttainment
    resolution: TargetAttainment


def _target_counts(target: str) -> dict[str, Count]:
    met, breached_at, due = f"sla_{target}_met", f"sla_{target}_breached_at", f"sla_{target}_due"
    return {
        f"{target}_met": Count("id", filter=Q(**{met: True})),
        f"{target}_breached": Count(
            "id", filter=Q(**{met: False}) | Q(**{f"{met}__isnull": True, f"{breached_at}__isnull": False})
        ),
        f"{target}_pending": Count(
            "id",
            filter=Q(**{f"{met}__isnull": True, f"{breached_at}__isnull": True, f"{due}__isnull": False}),
        ),
    }


@dataclass(frozen=True)
class SlaReport:
    since: datetime.datetime
    until: datetime.datetime
    providers: list[ProviderAttainment]

    @property
    def totals(self) -> ProviderAttainment:
        """Every provider of the report together."""

        def total(target: str) -> TargetAttainment:
            rows = [getattr(provider, target) for provider in self.providers]
            return TargetAttainment(
                met=sum(row.met for row in rows),
                breached=sum(row.breached for row in rows),
                pending=sum(row.pending for row in rows),
            )

        return ProviderAttainment(
            provider_address="",
            provider_name="",
            tickets=sum(provider.tickets for provider in self.providers),
            first_response=total("first_response"),
            resolution=total("resolution"),
        )


def sla_report(
    party: Party, *, since: datetime.datetime | None = None, provider_address: str | None = None
) -> SlaReport:
    """SLA attainment per provider over the tickets opened since `since` (default: 30 days ago), in one
    query: support sees every provider, a provider its own (another provider's is NotFound); customers get
    none (Forbidden)."""
    until = timezone.now()
    since = since or until - datetime.timedelta(days=SLA_REPORT_DEFAULT_DAYS)
    if party.is_customer or scope_of(party).nothing:
        raise Forbidden("SLA reports are for providers and VirtEngine support.")
    tickets = tickets_visible_to(party).filter(created_at__gte=since)
    if provider_address:
        provider = provider_by_address(provider_address)
        if provider is None or not (scope_of(party).everything or provider.pk == party.provider_id):
            raise NotFound("Provider not found.", fields={"provider": ["No such provider, or not yours."]})
        tickets = tickets.filter(provider=provider)
    rows = (
        tickets.values("provider__address", "provider__name")
        .annotate(tickets=Count("id"), **_target_counts("first_response"), **_target_counts("resolution"))
        .order_by("provider__name", "provider__address")
    )
    providers = [
        ProviderAttainment(
            provider_address=row["provider__address"],
            provider_name=row["provider__name"],
            tickets=row["tickets"],
            **{
                target: TargetAttainment(
                    met=row[f"{target}_met"],
                    breached=row[f"{target}_breached"],
                    pending=row[f"{target}_pending"],
                )
                for target in ("first_response", "resolution")
            },
        )
        for row in rows
    ]
    return SlaReport(since=since, until=until, providers=providers)


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
DUE_SOON = datetime.timedelta(hours=1)
URGENCY_LABELS = ("breached", "at_risk", "ok")


def escalation_queue(
    party: Party, filters: QueueFilters, *, now: datetime.datetime | None = None
) -> list[Ticket]:
    """The tickets assigned to VirtEngine support that are not closed: breached first, then at risk (past
    80 % of a target), then by the next due time — with their provider and assignee (one query)."""
    now = now or timezone.now()
    tickets = (
        tickets_visible_to(party)
        .filter(assignee_kind=Ticket.AssigneeKind.SUPPORT)
        .exclude(status=Ticket.Status.CLOSED)
        .select_related("provider", "assigned_to", "deployment")
        .annotate(
            urgency=Case(
                When(sla_breached(now), then=Value(0)),
                When(sla_at_risk(now), then=Value(1)),
                default=Value(2),
            )
        )
    )
    if filters.breached:
        tickets = tickets.filter(sla_breached(now))
    if filters.due_within_hour:
        tickets = tickets.filter(sla_next_due__gte=now, sla_next_due__lt=now + DUE_SOON)
    if filters.unassigned:
        tickets = tickets.filter(assigned_to__isnull=True)
    if filters.mine:
        tickets = tickets.filter(assigned_to_id=filters.agent_id)
    if filters.provider_id is not None:
        tickets = tickets.filter(provider_id=filters.provider_id)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    ordered = tickets.order_by("urgency", F("sla_next_due").asc(nulls_last=True), "created_at")
    rows = list(ordered[:QUEUE_LIMIT])
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
class ProviderWorkload:
    """One provider on the dashboard: targets met (per cent of those decided) and the median time to a
    first response, over the tickets opened in the last 7 and 30 days."""

    name: str
    first_response_7d: float | None
    first_response_30d: float | None
    resolution_7d: float | None
    resolution_30d: float | None
    median_first_response_7d: datetime.timedelta | None
    median_first_response_30d: datetime.timedelta | None


@dataclass(frozen=True)
class Dashboard:
    open_by_status_and_priority: dict[str, dict[str, int]]
    breached_now: int
    due_within_hour: int
    providers: list[ProviderWorkload]
    escalations_per_day: list[tuple[datetime.date, int]]


def _percent(attainment: float | None) -> float | None:
    return None if attainment is None else round(100 * attainment, 1)


def console_dashboard(party: Party, *, now: datetime.datetime | None = None) -> Dashboard:
    """SLA attainment per provider and support's workload, in six queries whatever the data's size (the
    attainment is the SLA report's, over the last 7 and 30 days)."""
    now = now or timezone.now()
    open_tickets = tickets_visible_to(party).exclude(
        status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED]
    )
    by_status: dict[str, dict[str, int]] = {
        status: {}
        for status in Ticket.Status.values
        if status not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
    }
    for status, priority, count in (
        open_tickets.values_list("status", "priority").annotate(count=Count("id")).order_by()
    ):
        by_status[status][priority] = count
    counts = open_tickets.aggregate(
        breached=Count("id", filter=sla_breached(now)),
        soon=Count(
            "id", filter=Q(sla_next_due__gte=now, sla_next_due__lt=now + DUE_SOON) & ~sla_breached(now)
        ),
    )
    week = {
        row.provider_address: row
        for row in sla_report(party, since=now - datetime.timedelta(days=7)).providers
    }
    month = sla_report(party, since=now - datetime.timedelta(days=30)).providers
    answered = Q(first_response_at__isnull=False)
    response_time = F("first_response_at") - F("created_at")
    medians = {
        row["provider__address"]: row
        for row in tickets_visible_to(party)
        .filter(created_at__gte=now - datetime.timedelta(days=30))
        .values("provider__address")
        .annotate(
            week=Median(response_time, filter=answered & Q(created_at__gte=now - datetime.timedelta(days=7))),
            month=Median(response_time, filter=answered),
        )
        .order_by()
    }
    providers = []
    for row in month:
        recent = week.get(row.provider_address)
        median = medians.get(row.provider_address, {})
        providers.append(
            ProviderWorkload(
                name=row.provider_name,
                first_response_7d=_percent(recent.first_response.attainment) if recent else None,
                first_response_30d=_percent(row.first_response.attainment),
                resolution_7d=_percent(recent.resolution.attainment) if recent else None,
                resolution_30d=_percent(row.resolution.attainment),
                median_first_response_7d=median.get("week"),
                median_first_response_30d=median.get("month"),
            )
        )
    escalations = (
        Assignment.objects.filter(is_escalation=True, created_at__gte=now - datetime.timedelta(days=30))
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
