"""The console's dashboard reports: the backlog at the end of each day, escalations per day and SLA
attainment per provider per week, as charts with the same figures in tables."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.conftest import World
from tickets import services
from tickets.models import Ticket
from tickets.selectors import reports

pytestmark = pytest.mark.django_db


def test_backlog_counts_what_was_open_at_the_end_of_each_day(world: World) -> None:
    now = timezone.now()
    days_ago = lambda n: now - datetime.timedelta(days=n)  # noqa: E731
    old, middle, fresh = (world.open_ticket(subject=s) for s in ("old", "middle", "fresh"))
    Ticket.objects.filter(pk=old.pk).update(created_at=days_ago(40))
    Ticket.objects.filter(pk=middle.pk).update(
        created_at=days_ago(10), resolved_at=days_ago(5), status="resolved"
    )
    Ticket.objects.filter(pk=fresh.pk).update(created_at=days_ago(2))
    series = {point.day: point.count for point in reports.backlog_per_day(world.agent, now=now)}
    assert len(series) == reports.REPORT_DAYS
    assert series[days_ago(29).date()] == 1  # only the old one
    assert series[days_ago(7).date()] == 2  # the old one and the middle one
    assert series[days_ago(4).date()] == 1  # the middle one was resolved the day before
    assert series[now.date()] == 2  # and the fresh one came
    # A provider's backlog is its own tickets only.
    assert {p.count for p in reports.backlog_per_day(world.provider_b_member, now=now)} == {0}


def test_escalations_and_attainment(world: World) -> None:
    ticket = world.open_ticket()
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason="No answer")
    now = timezone.now()
    escalations = reports.escalations_per_day(world.agent, now=now)
    assert escalations[-1].day == now.date()
    assert escalations[-1].count == 1
    assert sum(point.count for point in escalations) == 1
    Ticket.objects.filter(pk=ticket.pk).update(sla_first_response_met=True, sla_resolution_met=False)
    (row,) = reports.attainment_per_provider_per_week(world.agent, now=now)
    assert row.provider == world.provider_a.name
    assert row.weeks[-1][1:] == (50, 2)  # one of two targets met this week
    assert all(percent is None for _, percent, _ in row.weeks[:-1])


def test_the_dashboard_draws_them(world: World) -> None:
    world.open_ticket()
    client = Client()
    client.force_login(get_user_model().objects.get(pk=world.agent.user_id))
    html = client.get("/admin/dashboard/").content.decode()
    assert html.count('<figure class="console-chart">') == 2
    assert "Backlog, last 30 days" in html
    assert "SLA attainment per provider per week" in html
    assert "Satisfaction" in html
