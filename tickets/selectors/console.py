"""What the support console reads besides the API's reads: agents, the escalation queue, the dashboard."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Aggregate, Case, Count, DurationField, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from core.formats import parse_plain_number
from core.parties import Party, party_in_slots, scope_slots
from core.statements import StatementCache
from providers.models import ProviderAccount
from providers.selectors import SUPPORT_GROUP
from tickets.models import (
    SUPPORT_QUEUE,
    Ticket,
    format_ticket_number,
)
from tickets.selectors.sla import sla_at_risk, sla_breached, sla_report
from tickets.selectors.visibility import tickets_visible_to

# ---------------------------------------------------------------------------------------------------------
# What the support console reads besides the API's reads.


def support_agents_query() -> QuerySet[Any, Any]:
    """The active support agents (and superusers), by username: `support_agents`' rows."""
    user_model = get_user_model()
    # A subquery, not a join: a join repeats a user per group and needs DISTINCT over every row.
    members = user_model.groups.through.objects.filter(group__name=SUPPORT_GROUP).values("user_id")
    users = user_model.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(is_staff=True, pk__in=members)
    )
    return users.order_by("username")


# The agents' query, compiled once (core.statements).
_AGENTS = StatementCache(size=1)


def support_agents() -> list[tuple[int, str]]:
    """(user id, username) of the active support agents, for assigning a ticket to one of them."""
    rows = _AGENTS.rows("agents", lambda _slots: support_agents_query().values("pk", "username"), {})
    return [(row["pk"], row["username"]) for row in rows]


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
            provider_id=parse_plain_number(provider, max_digits=11),
            priority=priority if priority in Ticket.Priority.values else None,
            agent_id=agent_id,
        )


QUEUE_LIMIT = 200
DUE_SOON = datetime.timedelta(hours=1)
URGENCY_LABELS = ("breached", "at_risk", "ok")


@dataclass(frozen=True, slots=True)
class QueueTicket:
    """One row of the escalation queue: only what the queue shows (the page lists up to 200)."""

    id: uuid.UUID
    number: int
    subject: str
    status: str
    priority: str
    urgency: str  # one of URGENCY_LABELS
    sla_target: str | None  # "first_response", "resolution" or None (no target running)
    sla_target_due: datetime.datetime | None  # None while the resolution clock is paused
    created_at: datetime.datetime
    last_activity_at: datetime.datetime | None
    provider_name: str
    customer_address: str
    assignee_username: str | None

    @property
    def display_number(self) -> str:
        return format_ticket_number(self.number)


_QUEUE_COLUMNS = (
    "id",
    "number",
    "subject",
    "status",
    "priority",
    "urgency",
    "sla_first_response_met",
    "sla_first_response_due",
    "sla_resolution_met",
    "sla_resolution_due",
    "sla_paused_since",
    "created_at",
    "last_activity_at",
    "provider__name",
    "customer_address",
    "assigned_to__username",
)


# The queue's query, compiled once per kind of party and set of filters and prepared on the server
# (core.statements): the console's landing page, 200 rows; `now` and the filters' values are parameters.
_QUEUE = StatementCache(size=64)


def escalation_queue(
    party: Party, filters: QueueFilters, *, now: datetime.datetime | None = None
) -> list[QueueTicket]:
    """The tickets assigned to VirtEngine support that are not closed: breached first, then at risk (past
    80 % of a target), then by the next due time — with their provider's name and assignee (one query of
    the columns shown: the queue is the console's landing page, 200 rows)."""
    now = now or timezone.now()
    party_shape, values = scope_slots(party)
    values["now"] = now
    if filters.due_within_hour:
        values["soon"] = now + DUE_SOON
    if filters.mine and filters.agent_id is not None:
        values["agent"] = filters.agent_id
    if filters.provider_id is not None:
        values["provider"] = filters.provider_id
    if filters.priority:
        values["priority"] = filters.priority
    shape = (
        party_shape,
        filters.breached,
        filters.due_within_hour,
        filters.unassigned,
        filters.mine,
        *values,
    )

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        at = slots["now"]
        tickets = (
            tickets_visible_to(party_in_slots(party, slots))
            .filter(SUPPORT_QUEUE)  # the partial index's own condition, so PostgreSQL reads only that index
            .annotate(
                # Cast: a prepared statement's parameters are typed by the server, which reads a bare one as text.
                urgency=Case(
                    When(sla_breached(at), then=Cast(Value(0), IntegerField())),
                    When(sla_at_risk(at), then=Cast(Value(1), IntegerField())),
                    default=Cast(Value(2), IntegerField()),
                )
            )
        )
        if filters.breached:
            tickets = tickets.filter(sla_breached(at))
        if filters.due_within_hour:
            tickets = tickets.filter(sla_next_due__gte=at, sla_next_due__lt=slots["soon"])
        if filters.unassigned:
            tickets = tickets.filter(assigned_to__isnull=True)
        if filters.mine:
            tickets = tickets.filter(assigned_to_id=slots.get("agent"))
        if "provider" in slots:
            tickets = tickets.filter(provider_id=slots["provider"])
        if "priority" in slots:
            tickets = tickets.filter(priority=slots["priority"])
        ordered = tickets.order_by("urgency", F("sla_next_due").asc(nulls_last=True), "created_at")
        # The annotation last: a kept statement names its columns fields first, then annotations.
        columns = [column for column in _QUEUE_COLUMNS if column != "urgency"]
        page: QuerySet[Any, Any] = ordered.values(*columns, "urgency")[:QUEUE_LIMIT]
        return page

    rows = []
    for row in _QUEUE.rows(shape, build, values):
        target, due = current_sla_target(row)
        rows.append(
            QueueTicket(
                id=row["id"],
                number=row["number"],
                subject=row["subject"],
                status=row["status"],
                priority=row["priority"],
                urgency=URGENCY_LABELS[row["urgency"]],
                sla_target=target,
                sla_target_due=due,
                created_at=row["created_at"],
                last_activity_at=row["last_activity_at"],
                provider_name=row["provider__name"] or "",
                customer_address=row["customer_address"],
                assignee_username=row["assigned_to__username"],
            )
        )
    return rows


def current_sla_target(ticket: Mapping[str, Any]) -> tuple[str | None, datetime.datetime | None]:
    """The target that matters now and its due time, as the portal's SLA badge picks it: the first
    response until it is decided, then the resolution; (target, None) while the resolution clock is paused
    (its due time moves), (None, None) without a running target."""
    if ticket["sla_first_response_met"] is None and ticket["sla_first_response_due"] is not None:
        return "first_response", ticket["sla_first_response_due"]
    if ticket["sla_resolution_met"] is not None or ticket["sla_resolution_due"] is None:
        return None, None
    return "resolution", None if ticket["sla_paused_since"] is not None else ticket["sla_resolution_due"]


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
        median: Mapping[str, Any] = medians.get(row.provider_address, {})
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
    return Dashboard(
        open_by_status_and_priority=by_status,
        breached_now=counts["breached"],
        due_within_hour=counts["soon"],
        providers=providers,
    )
