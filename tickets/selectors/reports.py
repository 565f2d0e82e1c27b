"""What the console's dashboard charts: the backlog over time, SLA attainment per provider per week, and
escalations per day (each a series a chart draws and a table lists)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate, TruncWeek

from core.parties import Party
from tickets.models import Assignment
from tickets.selectors.visibility import tickets_visible_to

REPORT_DAYS = 30
REPORT_WEEKS = 8


@dataclass(frozen=True)
class DayCount:
    day: datetime.date
    count: int


def backlog_per_day(party: Party, *, now: datetime.datetime, days: int = REPORT_DAYS) -> list[DayCount]:
    """Tickets open (not yet resolved or closed) at the end of each of the last `days` days, today last:
    what was opened up to that day less what was done by then (two grouped counts, however many tickets)."""
    today = now.date()
    start = today - datetime.timedelta(days=days - 1)
    start_at = datetime.datetime.combine(start, datetime.time.min, tzinfo=now.tzinfo)
    tickets = tickets_visible_to(party)
    done_at = Coalesce("resolved_at", "closed_at")
    opened_before = tickets.filter(created_at__lt=start_at).count()
    done_before = tickets.annotate(done_at=done_at).filter(done_at__lt=start_at).count()
    opened = _per_day(tickets.filter(created_at__gte=start_at).annotate(day=TruncDate("created_at")))
    done = _per_day(
        tickets.annotate(done_at=done_at).filter(done_at__gte=start_at).annotate(day=TruncDate("done_at"))
    )
    series, backlog = [], opened_before - done_before
    for offset in range(days):
        day = start + datetime.timedelta(days=offset)
        backlog += opened.get(day, 0) - done.get(day, 0)
        series.append(DayCount(day=day, count=max(backlog, 0)))
    return series


def _per_day(rows: object) -> dict[datetime.date, int]:
    grouped = rows.values("day").annotate(count=Count("pk"))  # type: ignore[attr-defined]
    return {row["day"]: row["count"] for row in grouped}


def escalations_per_day(party: Party, *, now: datetime.datetime, days: int = REPORT_DAYS) -> list[DayCount]:
    """Escalations to support on each of the last `days` days, today last (days without any included)."""
    start = now.date() - datetime.timedelta(days=days - 1)
    start_at = datetime.datetime.combine(start, datetime.time.min, tzinfo=now.tzinfo)
    counts = _per_day(
        Assignment.objects.filter(
            is_escalation=True, created_at__gte=start_at, ticket__in=tickets_visible_to(party)
        ).annotate(day=TruncDate("created_at"))
    )
    return [
        DayCount(
            day=start + datetime.timedelta(days=n), count=counts.get(start + datetime.timedelta(days=n), 0)
        )
        for n in range(days)
    ]


@dataclass(frozen=True)
class WeeklyAttainment:
    provider: str
    weeks: list[tuple[datetime.date, int | None, int]]  # (week's Monday, % of targets met, targets decided)


def attainment_per_provider_per_week(
    party: Party, *, now: datetime.datetime, weeks: int = REPORT_WEEKS
) -> list[WeeklyAttainment]:
    """Per provider and week (by when tickets were opened), the share of SLA targets decided that were met,
    first response and resolution counted together; the last `weeks` weeks, this one last."""
    this_monday = now.date() - datetime.timedelta(days=now.weekday())
    first_monday = this_monday - datetime.timedelta(weeks=weeks - 1)
    start_at = datetime.datetime.combine(first_monday, datetime.time.min, tzinfo=now.tzinfo)
    rows = (
        tickets_visible_to(party)
        .filter(created_at__gte=start_at)
        .annotate(week=TruncWeek("created_at"))
        .values("provider__name", "week")
        .annotate(
            decided=Count("pk", filter=Q(sla_first_response_met__isnull=False))
            + Count("pk", filter=Q(sla_resolution_met__isnull=False)),
            met=Count("pk", filter=Q(sla_first_response_met=True))
            + Count("pk", filter=Q(sla_resolution_met=True)),
        )
    )
    table: dict[str, dict[datetime.date, tuple[int, int]]] = {}
    for row in rows:
        week = row["week"].date() if isinstance(row["week"], datetime.datetime) else row["week"]
        table.setdefault(row["provider__name"], {})[week] = (row["met"], row["decided"])
    mondays = [first_monday + datetime.timedelta(weeks=n) for n in range(weeks)]
    result = []
    for provider in sorted(table):
        cells = []
        for monday in mondays:
            met, decided = table[provider].get(monday, (0, 0))
            cells.append((monday, round(100 * met / decided) if decided else None, decided))
        result.append(WeeklyAttainment(provider=provider, weeks=cells))
    return result
