"""The SLA through the REST API: each ticket's `sla` object, the `sla=breached|at_risk` filter, ordering by
due time (with cursor pages), the attainment report, and the query counts of the list.

Tickets are opened at chosen past instants on a frozen clock that is then set back to the real now (so that
request signatures and sessions, which follow the system clock, stay valid)."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Apis, FrozenClock, World
from tickets import services
from tickets.models import BusinessCalendar, SlaPolicy, Ticket

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"
REPORT = "/api/v1/sla/report"
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def opened(world: World, clock: FrozenClock, ago: datetime.timedelta, **fields: object) -> Ticket:
    """A critical ticket (1 h / 4 h) opened `ago` before now; the clock is back at now afterwards."""
    now = clock.now
    clock.now = now - ago
    try:
        values = {"priority": "critical", "category": "general", **fields}
        return world.open_ticket(**values)
    finally:
        clock.now = now


def sla_of(api, ticket: Ticket) -> dict:
    response = api.get(f"{TICKETS}/{ticket.id}")
    assert response.status_code == 200
    return response.json()["sla"]


class TestSlaObject:
    def test_a_new_ticket_counts_down_both_targets(
        self, world: World, apis: Apis, frozen_clock: FrozenClock
    ) -> None:
        ticket = opened(world, frozen_clock, 15 * MINUTE)
        got = sla_of(apis.alice, ticket)
        assert got["first_response"] == {
            "due_at": got["first_response_due"],
            "met": None,
            "breached": False,
            "paused": False,
            "seconds_remaining": 45 * 60,
        }
        assert got["resolution"]["seconds_remaining"] == 225 * 60
        assert got["resolution"]["due_at"] == got["resolution_due"]
        assert got["first_response_at"] is None

    def test_answered_paused_and_overdue(self, world: World, apis: Apis, frozen_clock: FrozenClock) -> None:
        ticket = opened(world, frozen_clock, 5 * HOUR)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Which image?")
        got = sla_of(apis.provider_a, ticket)
        # Answered 5 h in: first response decided (missed); resolution overdue by an hour, before any sweep.
        assert got["first_response"] == {
            "due_at": got["first_response_due"],
            "met": False,
            "breached": True,
            "paused": False,
            "seconds_remaining": None,
        }
        assert got["resolution"]["breached"] is True
        assert got["resolution"]["seconds_remaining"] == -3600
        services.ticket_transition(
            actor=world.provider_a_member, ticket_id=ticket.id, status="waiting_customer"
        )
        frozen_clock.advance(2 * HOUR)
        paused = sla_of(apis.alice, ticket)["resolution"]
        assert paused == {
            "due_at": None,
            "met": None,
            "breached": True,
            "paused": True,
            "seconds_remaining": -3600,
        }

    def test_seconds_remaining_are_working_seconds_on_a_business_calendar(
        self, world: World, apis: Apis, frozen_clock: FrozenClock
    ) -> None:
        office = BusinessCalendar.objects.create(
            name="Round the clock on weekdays",
            time_zone="UTC",
            opening_hours={day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        )
        SlaPolicy.objects.filter(priority="low").update(calendar=office)
        frozen_clock.now = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)  # a Friday, noon
        ticket = world.open_ticket(priority="low", category="general")  # 24 working hours: Monday noon
        frozen_clock.now = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)  # Saturday
        got = sla_of(apis.alice, ticket)["first_response"]
        assert got["due_at"] == "2026-11-30T12:00:00.000000Z"
        assert got["seconds_remaining"] == 12 * 3600  # Friday's 12 h are gone; the weekend does not count


class TestFiltersAndOrdering:
    @pytest.fixture
    def three(self, world: World, frozen_clock: FrozenClock) -> dict[str, Ticket]:
        return {
            "breached": opened(world, frozen_clock, 2 * HOUR),  # first response 1 h overdue
            "at_risk": opened(world, frozen_clock, 50 * MINUTE),  # past 48 min (80 %), not 60
            "fresh": opened(world, frozen_clock, 5 * MINUTE),
            "low": opened(world, frozen_clock, 5 * MINUTE, priority="low"),
        }

    def ids(self, response) -> list[str]:
        assert response.status_code == 200, response.content
        return [ticket["id"] for ticket in response.json()]

    def test_breached_and_at_risk(self, apis: Apis, three: dict[str, Ticket]) -> None:
        assert self.ids(apis.alice.get(TICKETS, sla="breached")) == [str(three["breached"].id)]
        assert self.ids(apis.agent.get(TICKETS, sla="at_risk")) == [str(three["at_risk"].id)]
        # Once the sweep has recorded the breach, it stays breached (answered or not).
        services.sla_sweep()
        assert self.ids(apis.provider_a.get(TICKETS, sla="breached")) == [str(three["breached"].id)]

    def test_a_met_target_is_neither(self, world: World, apis: Apis, three: dict[str, Ticket]) -> None:
        services.comment_add(actor=world.provider_a_member, ticket_id=three["at_risk"].id, body="On it.")
        assert self.ids(apis.alice.get(TICKETS, sla="at_risk")) == []

    def test_ordering_by_due_time(self, world: World, apis: Apis, three: dict[str, Ticket]) -> None:
        services.ticket_transition(actor=world.agent, ticket_id=three["fresh"].id, status="closed")  # none
        expected = [three[name].id for name in ("breached", "at_risk", "low", "fresh")]
        assert self.ids(apis.alice.get(TICKETS, ordering="sla_due")) == [str(i) for i in expected]
        # Descending: latest due first, tickets without a running target still last.
        backwards = [three[name].id for name in ("low", "at_risk", "breached", "fresh")]
        assert self.ids(apis.alice.get(TICKETS, ordering="-sla_due")) == [str(i) for i in backwards]

    @pytest.mark.parametrize("ordering", ["sla_due", "-sla_due"])
    def test_cursor_pages_cover_everything_once_nulls_included(
        self, world: World, apis: Apis, frozen_clock: FrozenClock, ordering: str
    ) -> None:
        tickets = [
            opened(world, frozen_clock, n * MINUTE, priority=p)
            for n, p in enumerate(["high"] * 4 + ["low"] * 3)
        ]
        for ticket in tickets[:3]:
            services.ticket_transition(actor=world.agent, ticket_id=ticket.id, status="closed")
        seen: list[str] = []
        response = apis.alice.get(TICKETS, limit=2, ordering=ordering)
        while True:
            seen += self.ids(response)
            link = response.get("Link")
            if not link:
                break
            cursor = link[1 : link.index(">")].split("cursor=")[1]
            response = apis.alice.get(TICKETS, limit=2, ordering=ordering, cursor=cursor)
        assert sorted(seen) == sorted(str(t.id) for t in tickets)
        assert len(seen) == len(set(seen))
        assert set(seen[-3:]) == {str(t.id) for t in tickets[:3]}  # no running target: last

    def test_bad_sla_parameters_name_the_field(self, apis: Apis) -> None:
        for params, field in [({"sla": "late"}, "sla"), ({"ordering": "sla"}, "ordering")]:
            response = apis.alice.get(TICKETS, **params)
            assert response.status_code == 400
            assert set(response.json()) >= {"error", "code", "fields"}
            assert field in response.json()["fields"]

    def test_list_query_count_stays_constant(
        self, world: World, apis: Apis, frozen_clock: FrozenClock
    ) -> None:
        for n in range(8):
            opened(world, frozen_clock, n * 20 * MINUTE)
        apis.provider_a.get(TICKETS)  # the credential's first use records last_used_at; measure after it
        counts = []
        for limit in (1, 8):
            with CaptureQueriesContext(connection) as queries:
                response = apis.provider_a.get(TICKETS, limit=limit, ordering="sla_due", sla="breached")
            assert response.status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1] <= 6


class TestReport:
    @pytest.fixture
    def outcomes(self, world: World, frozen_clock: FrozenClock) -> None:
        """Provider A: one first response met, one missed, one running; provider B: one resolved in time."""
        met = opened(world, frozen_clock, 10 * MINUTE)
        services.comment_add(actor=world.provider_a_member, ticket_id=met.id, body="Here.")
        opened(world, frozen_clock, 2 * HOUR)
        services.sla_sweep()  # records the breach
        opened(world, frozen_clock, MINUTE)
        bobs = opened(world, frozen_clock, 30 * MINUTE, actor=world.bob)
        services.ticket_transition(actor=world.provider_b_member, ticket_id=bobs.id, status="resolved")
        opened(world, frozen_clock, 40 * DAY)  # before the default period

    def test_support_sees_every_provider(self, world: World, apis: Apis, outcomes: None) -> None:
        report = apis.agent.get(REPORT)
        assert report.status_code == 200, report.content
        body = report.json()
        by_name = {row["provider_name"]: row for row in body["providers"]}
        assert set(by_name) == {"Provider A", "Provider B"}
        assert by_name["Provider A"]["provider"] == world.provider_a.address
        assert by_name["Provider A"]["tickets"] == 3
        assert by_name["Provider A"]["first_response"] == {
            "met": 1,
            "breached": 1,
            "pending": 1,
            "attainment": 0.5,
        }
        assert by_name["Provider A"]["resolution"]["pending"] == 3
        assert by_name["Provider B"]["resolution"] == {
            "met": 1,
            "breached": 0,
            "pending": 0,
            "attainment": 1.0,
        }
        assert body["totals"]["tickets"] == 4
        assert body["totals"]["first_response"]["met"] == 2
        one = apis.agent.get(REPORT, provider=world.provider_b.address).json()
        assert [row["provider_name"] for row in one["providers"]] == ["Provider B"]

    def test_providers_see_their_own_only(self, world: World, apis: Apis, outcomes: None) -> None:
        for api in (apis.provider_a, apis.provider_a_member):
            rows = api.get(REPORT).json()["providers"]
            assert [row["provider_name"] for row in rows] == ["Provider A"]
        refused = apis.provider_a.get(REPORT, provider=world.provider_b.address)
        assert refused.status_code == 404
        assert refused.json()["fields"] == {"provider": ["No such provider, or not yours."]}

    def test_since_widens_the_period(
        self, world: World, apis: Apis, outcomes: None, frozen_clock: FrozenClock
    ) -> None:
        since = (frozen_clock.now - 60 * DAY).isoformat()
        assert apis.agent.get(REPORT, since=since).json()["totals"]["tickets"] == 5

    def test_customers_get_no_report_and_bad_input_names_the_field(self, apis: Apis) -> None:
        assert apis.alice.get(REPORT).status_code == 403
        assert set(apis.alice.get(REPORT).json()) == {"error", "code"}
        for params in ({"since": "yesterday"}, {"since": "2999-01-01T00:00:00Z"}):
            response = apis.agent.get(REPORT, **params)
            assert response.status_code == 400
            assert "since" in response.json()["fields"]
        assert apis.agent.get(REPORT, provider="ve1nobody").status_code == 404
        assert apis.anonymous.get(REPORT).status_code == 401

    def test_documented_in_the_schema(self, apis: Apis) -> None:
        document = apis.anonymous.get("/api/v1/schema/", format="json").json()
        report = document["paths"]["/api/v1/sla/report"]["get"]
        assert {p["name"] for p in report["parameters"]} == {"provider", "since"}
        assert {"200", "400", "403", "404"} <= set(report["responses"])
        listing = {p["name"] for p in document["paths"]["/api/v1/tickets"]["get"]["parameters"]}
        assert "sla" in listing
        target = document["components"]["schemas"]["SlaTargetOutput"]["properties"]
        assert set(target) == {"due_at", "met", "breached", "paused", "seconds_remaining"}
