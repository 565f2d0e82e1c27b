"""The SLA clock through the ticket services, the real sweep against PostgreSQL (exactly one warning and one
breach per threshold, also with two sweeps racing or one dying half-way), its escalation and assignment
history, and the idle timers.

Time: services read `django.utils.timezone.now`, which the `clock` fixture freezes (and moves on by hand);
the sweeps take the instant they sweep at."""

from __future__ import annotations

import datetime
import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chain.models import OutboxEntry
from tests.conftest import FrozenClock, World
from tickets import services, sla, tasks
from tickets.models import Assignment, BusinessCalendar, Comment, SlaPolicy, Ticket, TicketEvent
from tickets.services import recording
from tickets.services import sla as sla_services
from tickets.services.idle import tickets_idle_sweep
from tickets.services.sla import sla_sweep

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
MONDAY_8AM = datetime.datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


@pytest.fixture
def clock(frozen_clock: FrozenClock) -> FrozenClock:
    frozen_clock.now = MONDAY_8AM
    return frozen_clock


def open_critical(world: World, **fields: object) -> Ticket:
    """A critical ticket (targets 1 h / 4 h, 24×7); `general`, so no logs fetch is queued."""
    return world.open_ticket(priority="critical", category="general", **fields)


def kinds(ticket: Ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("seq").values_list("kind", flat=True))


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def move(world: World, ticket: Ticket, status: str) -> None:
    recording_actor = world.provider_a_member
    services.ticket_transition(actor=recording_actor, ticket_id=ticket.id, status=status)


class TestClockThroughServices:
    def test_new_ticket_is_due_on_its_priority_policy(self, world: World, clock: FrozenClock) -> None:
        ticket = fresh(open_critical(world))
        assert ticket.sla_policy.priority == "critical"
        assert ticket.sla_first_response_due == MONDAY_8AM + HOUR
        assert ticket.sla_first_response_warn_at == MONDAY_8AM + 48 * MINUTE
        assert ticket.sla_resolution_due == MONDAY_8AM + 4 * HOUR
        assert ticket.sla_resolution_warn_at == MONDAY_8AM + 192 * MINUTE
        assert ticket.sla_next_due == ticket.sla_first_response_due
        assert (ticket.sla_first_response_met, ticket.sla_resolution_met) == (None, None)

    def test_business_hours_policy_counts_working_minutes(self, world: World, clock: FrozenClock) -> None:
        office = BusinessCalendar.objects.create(
            name="Berlin office",
            time_zone="Europe/Berlin",
            holiday_country="DE",
            closed_dates=[datetime.date(2026, 12, 24)],
        )
        SlaPolicy.objects.filter(priority="critical").update(calendar=office)
        clock.now = datetime.datetime(2026, 12, 23, 15, 30, tzinfo=UTC)  # Wednesday 16:30 in Berlin
        ticket = fresh(open_critical(world))
        # One working hour: 16:30-17:00 on the 23rd, then closed (24th by hand, 25th Christmas, weekend).
        assert ticket.sla_first_response_due == datetime.datetime(2026, 12, 28, 8, 30, tzinfo=UTC)
        # Four working hours: the half hour, then Monday 9:00-12:30 Berlin.
        assert ticket.sla_resolution_due == datetime.datetime(2026, 12, 28, 11, 30, tzinfo=UTC)

    def test_first_public_reply_by_staff_decides_first_response(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        clock.advance(10 * MINUTE)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Any news?")
        services.comment_add(
            actor=world.provider_a_member, ticket_id=ticket.id, body="psst", is_internal=True
        )
        assert fresh(ticket).sla_first_response_met is None  # neither is a first response
        clock.advance(20 * MINUTE)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="On it.")
        ticket = fresh(ticket)
        assert (ticket.first_response_at, ticket.sla_first_response_met) == (MONDAY_8AM + 30 * MINUTE, True)
        assert ticket.sla_next_due == ticket.sla_resolution_due

    def test_a_late_first_response_is_missed(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        clock.advance(61 * MINUTE)
        services.comment_add(actor=world.agent, ticket_id=ticket.id, body="Sorry for the wait.")
        assert fresh(ticket).sla_first_response_met is False

    def test_waiting_on_the_customer_pauses_resolution(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        clock.advance(HOUR)
        move(world, ticket, "waiting_customer")
        paused = fresh(ticket)
        assert paused.sla_paused_since == MONDAY_8AM + HOUR
        assert paused.sla_next_due == paused.sla_first_response_due  # the resolution clock is not running
        clock.advance(3 * HOUR)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Here are the logs.")  # resumes
        resumed = fresh(ticket)
        assert resumed.status == "in_progress"
        assert (resumed.sla_paused_since, resumed.sla_paused_seconds) == (None, 3 * 3600)
        assert resumed.sla_resolution_due == MONDAY_8AM + 7 * HOUR  # moved by the 3 h paused
        assert resumed.sla_resolution_warn_at == MONDAY_8AM + 192 * MINUTE + 3 * HOUR

    def test_resolving_decides_and_reopening_resumes(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        clock.advance(2 * HOUR)
        move(world, ticket, "resolved")
        resolved = fresh(ticket)
        # Resolved without a reply: both targets decided, met in time.
        assert (resolved.sla_first_response_met, resolved.sla_resolution_met) == (False, True)
        assert resolved.sla_next_due is None
        clock.advance(DAY)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="It is back.")  # reopens
        reopened = fresh(ticket)
        assert reopened.status == "in_progress"
        assert reopened.sla_resolution_met is None
        # 2 of the 4 hours were used before it was resolved; the day resolved does not count.
        assert reopened.sla_resolution_due == MONDAY_8AM + DAY + 4 * HOUR
        assert reopened.sla_first_response_met is False  # decided once, for good

    def test_priority_change_recomputes_from_the_original_start(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = world.open_ticket(priority="low", category="general")
        clock.advance(HOUR)
        move(world, ticket, "waiting_customer")
        clock.advance(HOUR)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Done.")  # 1 h paused
        clock.advance(HOUR)
        services.ticket_priority_set(actor=world.alice, ticket_id=ticket.id, priority="critical")
        ticket = fresh(ticket)
        assert ticket.sla_policy.priority == "critical"
        assert ticket.sla_first_response_due == MONDAY_8AM + HOUR
        assert ticket.sla_resolution_due == MONDAY_8AM + 5 * HOUR  # 4 h target + 1 h paused, from the start

    def test_closing_from_waiting_counts_until_the_pause(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        clock.advance(3 * HOUR)
        move(world, ticket, "waiting_customer")
        clock.advance(5 * HOUR)  # long past the due time, but the clock stood still
        services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="closed")
        assert fresh(ticket).sla_resolution_met is True


class TestSweep:
    def test_warning_at_80_percent_breach_at_100_and_escalation(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        assert sla_sweep(now=MONDAY_8AM + 47 * MINUTE).events == 0
        warned = sla_sweep(now=MONDAY_8AM + 48 * MINUTE)
        assert (warned.warnings, warned.breaches, warned.escalations) == (1, 0, 0)
        assert sla_sweep(now=MONDAY_8AM + 59 * MINUTE).events == 0  # warned once
        breached = sla_sweep(now=MONDAY_8AM + HOUR)
        assert (breached.warnings, breached.breaches, breached.escalations) == (0, 1, 1)
        assert sla_sweep(now=MONDAY_8AM + 2 * HOUR).events == 0

        events = list(TicketEvent.objects.filter(ticket=ticket).order_by("seq"))
        assert [e.kind for e in events] == [
            "ticket_created",
            "sla_warning",
            "sla_breached",
            "assignment_change",
        ]
        warning, breach, escalation = events[1:]
        assert (warning.is_internal, warning.public_seq, warning.actor_kind) == (True, None, "system")
        assert warning.data == {
            "target": "first_response",
            "due_at": "2026-11-30T09:00:00.000000Z",
            "elapsed_percent": 80,
        }
        assert (breach.is_internal, breach.public_seq) == (False, 2)
        assert breach.data == {"target": "first_response", "due_at": "2026-11-30T09:00:00.000000Z"}
        assert escalation.data["to"] == {"kind": "support", "user_id": None, "name": None}
        assert escalation.data["reason"] == "SLA breach: first response"
        assert escalation.data["escalation"] is True
        # Each event is queued for the chain with its seq.
        assert list(
            OutboxEntry.objects.filter(ticket=ticket).order_by("seq").values_list("seq", flat=True)
        ) == [
            1,
            2,
            3,
            4,
        ]
        # The assignment history records the system, and why.
        (history,) = Assignment.objects.filter(ticket=ticket)
        assert (history.from_kind, history.to_kind, history.by_kind, history.by_label) == (
            "provider",
            "support",
            "system",
            "system",
        )
        assert (history.reason, history.is_escalation, history.created_at) == (
            "SLA breach: first response",
            True,
            MONDAY_8AM + HOUR,
        )
        ticket = fresh(ticket)
        assert (ticket.assignee_kind, ticket.escalated_at) == ("support", MONDAY_8AM + HOUR)
        assert (ticket.last_seq, ticket.last_public_seq) == (4, 3)
        assert ticket.sla_first_response_warned_at == MONDAY_8AM + 48 * MINUTE
        assert ticket.sla_first_response_breached_at == MONDAY_8AM + HOUR

    def test_resolution_breach_after_an_escalation_does_not_escalate_again(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        result = sla_sweep(now=MONDAY_8AM + 5 * HOUR)  # every threshold at once
        assert (result.warnings, result.breaches, result.escalations) == (2, 2, 1)
        assert kinds(ticket) == [
            "ticket_created",
            "sla_warning",
            "sla_breached",
            "assignment_change",
            "sla_warning",
            "sla_breached",
        ]
        assert [e.data["target"] for e in TicketEvent.objects.filter(ticket=ticket, kind="sla_breached")] == [
            "first_response",
            "resolution",
        ]

    def test_handed_back_to_the_provider_a_later_breach_escalates_again(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        sla_sweep(now=MONDAY_8AM + HOUR)
        clock.advance(90 * MINUTE)
        services.ticket_assign(
            actor=world.agent, ticket_id=ticket.id, assignee_kind="provider", reason="Yours"
        )
        sla_sweep(now=MONDAY_8AM + 4 * HOUR)
        reasons = list(
            Assignment.objects.filter(ticket=ticket).order_by("created_at").values_list("reason", flat=True)
        )
        assert reasons == ["SLA breach: first response", "Yours", "SLA breach: resolution"]

    def test_policy_may_not_escalate(self, world: World, clock: FrozenClock) -> None:
        SlaPolicy.objects.filter(priority="critical").update(escalate_on_breach=False)
        ticket = open_critical(world)
        assert sla_sweep(now=MONDAY_8AM + HOUR).escalations == 0
        assert fresh(ticket).assignee_kind == "provider"
        assert "sla_breached" in kinds(ticket)

    def test_met_targets_are_never_warned(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        clock.advance(10 * MINUTE)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Looking.")
        clock.advance(10 * MINUTE)
        move(world, ticket, "resolved")
        assert sla_sweep(now=MONDAY_8AM + DAY).events == 0
        assert kinds(ticket)[-1] == "status_change"

    def test_a_paused_resolution_clock_is_not_swept(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Which image?")
        move(world, ticket, "waiting_customer")
        assert sla_sweep(now=MONDAY_8AM + 5 * HOUR).events == 0
        clock.advance(5 * HOUR)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="nginx:1.27")
        assert sla_sweep(now=clock.now + 3 * HOUR).events == 0  # 3 of the 4 hours: not even 80 %
        assert sla_sweep(now=clock.now + 4 * HOUR).breaches == 1

    def test_a_late_resolution_still_gets_its_breach_but_no_escalation(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Looking.")
        clock.advance(5 * HOUR)
        move(world, ticket, "resolved")  # before any sweep saw it
        assert fresh(ticket).sla_resolution_met is False
        result = sla_sweep(now=clock.now)
        assert (result.warnings, result.breaches, result.escalations) == (0, 1, 0)
        assert fresh(ticket).assignee_kind == "provider"

    def test_a_sweep_writes_per_batch_not_per_ticket(self, world: World, clock: FrozenClock) -> None:
        """Set-based: the statements of a sweep do not grow with the tickets that crossed a threshold."""
        counts = []
        for many in (3, 12):
            for _ in range(many):
                open_critical(world)
            with CaptureQueriesContext(connection) as queries:
                result = sla_sweep(now=clock.now + 5 * HOUR, batch_size=50)
            assert result.breaches == 2 * many
            counts.append(len(queries))
            clock.advance(DAY)
        assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)
class TestConcurrentSweeps:
    def test_two_sweeps_racing_write_each_event_exactly_once(self, world: World) -> None:
        tickets = [open_critical(world) for _ in range(30)]
        later = max(fresh(t).sla_resolution_due for t in tickets) + MINUTE
        start = threading.Barrier(2)
        results: list[sla_services.SweepResult] = []
        errors: list[BaseException] = []

        def sweeper() -> None:
            try:
                start.wait()
                results.append(sla_sweep(now=later, batch_size=4))
            except BaseException as error:  # noqa: BLE001 - reported to the main thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=sweeper) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sum(r.warnings for r in results) == sum(r.breaches for r in results) == 60
        assert sum(r.escalations for r in results) == 30
        for ticket in tickets:
            events = list(TicketEvent.objects.filter(ticket=ticket).order_by("seq"))
            counted = Counter((e.kind, e.data.get("target")) for e in events)
            assert counted == {
                ("ticket_created", None): 1,
                ("sla_warning", "first_response"): 1,
                ("sla_breached", "first_response"): 1,
                ("assignment_change", None): 1,
                ("sla_warning", "resolution"): 1,
                ("sla_breached", "resolution"): 1,
            }
            assert [e.seq for e in events] == list(range(1, 7))
            assert OutboxEntry.objects.filter(ticket=ticket).count() == 6
            assert Assignment.objects.filter(ticket=ticket, by_kind="system").count() == 1

    def test_a_sweep_killed_half_way_leaves_nothing_half_done(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tickets = [open_critical(world) for _ in range(10)]
        later = max(fresh(t).sla_first_response_warn_at for t in tickets) + MINUTE
        batches = 0
        record_written_events = recording.record_written_events

        def dies_in_the_second_batch(*args: object, **kwargs: object) -> None:
            nonlocal batches
            batches += 1
            if batches == 2:
                # After the batch's statement updated the tickets and inserted the events, before commit.
                raise SystemExit("worker killed")
            record_written_events(*args, **kwargs)

        monkeypatch.setattr(recording, "record_written_events", dies_in_the_second_batch)
        with pytest.raises(SystemExit):
            sla_sweep(now=later, batch_size=4)
        # The first batch committed; the second left no marker and no event behind.
        assert TicketEvent.objects.filter(kind="sla_warning").count() == 4
        assert Ticket.objects.filter(sla_first_response_warned_at__isnull=False).count() == 4
        monkeypatch.undo()
        assert sla_sweep(now=later, batch_size=4).warnings == 6
        for ticket in tickets:
            assert kinds(ticket) == ["ticket_created", "sla_warning"]
            assert fresh(ticket).last_seq == 2

    def test_a_ticket_locked_by_a_writer_is_left_to_the_next_sweep(self, world: World) -> None:
        locked, other = open_critical(world), open_critical(world)
        later = fresh(locked).sla_first_response_warn_at + HOUR
        holding, release = threading.Event(), threading.Event()

        def writer() -> None:
            try:
                with transaction.atomic():
                    Ticket.objects.select_for_update().get(pk=locked.pk)
                    holding.set()
                    release.wait(20)
            finally:
                connection.close()

        thread = threading.Thread(target=writer)
        thread.start()
        assert holding.wait(10)
        try:
            first = sla_sweep(now=later)
        finally:
            release.set()
            thread.join()
        assert (first.warnings, first.breaches) == (1, 1)  # the other ticket only; nothing waited
        assert kinds(other)[1:] == ["sla_warning", "sla_breached", "assignment_change"]
        assert kinds(locked) == ["ticket_created"]
        second = sla_sweep(now=later)
        assert (second.warnings, second.breaches) == (1, 1)
        assert kinds(locked)[1:] == ["sla_warning", "sla_breached", "assignment_change"]


def idle_sweep_at(clock: FrozenClock, moment: datetime.datetime):
    clock.now = moment
    return tickets_idle_sweep()


class TestIdleTimers:
    def waiting(self, world: World) -> Ticket:
        ticket = open_critical(world)
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Which image?")
        move(world, ticket, "waiting_customer")
        return ticket

    def test_seven_days_without_a_customer_reply_resolve_with_a_public_note(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = self.waiting(world)
        assert idle_sweep_at(clock, MONDAY_8AM + 7 * DAY - MINUTE).resolved == 0
        assert idle_sweep_at(clock, MONDAY_8AM + 7 * DAY).resolved == 1
        ticket = fresh(ticket)
        assert ticket.status == "resolved"
        note = Comment.objects.filter(ticket=ticket).order_by("created_at").last()
        assert (note.author_kind, note.is_internal) == ("system", False)
        assert "no reply from the customer for 7 days" in note.body
        change = TicketEvent.objects.filter(ticket=ticket, kind="status_change").last()
        assert (change.actor_kind, change.is_internal) == ("system", False)
        assert change.data == {
            "from": "waiting_customer",
            "to": "resolved",
            "reason": "No reply from the customer for 7 days.",
        }
        assert idle_sweep_at(clock, MONDAY_8AM + 8 * DAY).resolved == 0  # once

    def test_three_days_resolved_close(self, world: World, clock: FrozenClock) -> None:
        ticket = open_critical(world)
        move(world, ticket, "resolved")
        assert idle_sweep_at(clock, MONDAY_8AM + 3 * DAY - MINUTE).closed == 0
        assert idle_sweep_at(clock, MONDAY_8AM + 3 * DAY).closed == 1
        ticket = fresh(ticket)
        assert (ticket.status, ticket.closed_at) == ("closed", MONDAY_8AM + 3 * DAY)
        change = TicketEvent.objects.filter(ticket=ticket, kind="status_change").last()
        assert change.data["reason"] == "Resolved for 3 days."

    def test_idle_resolve_then_close(self, world: World, clock: FrozenClock) -> None:
        ticket = self.waiting(world)
        clock.advance(7 * DAY)
        tickets_idle_sweep()
        clock.advance(3 * DAY)
        assert tickets_idle_sweep().closed == 1
        assert fresh(ticket).status == "closed"

    def test_a_customer_reply_cancels_the_idle_resolve(self, world: World, clock: FrozenClock) -> None:
        ticket = self.waiting(world)
        clock.advance(6 * DAY)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Sorry, here it is.")
        assert idle_sweep_at(clock, MONDAY_8AM + 8 * DAY).resolved == 0
        assert fresh(ticket).status == "in_progress"
        # Waiting again: the timer counts from the new wait.
        move(world, ticket, "waiting_customer")
        waiting_since = clock.now
        assert idle_sweep_at(clock, waiting_since + 7 * DAY - MINUTE).resolved == 0
        assert idle_sweep_at(clock, waiting_since + 7 * DAY).resolved == 1

    def test_a_customer_reply_reopens_a_resolved_ticket_before_it_closes(
        self, world: World, clock: FrozenClock
    ) -> None:
        ticket = open_critical(world)
        move(world, ticket, "resolved")
        clock.advance(2 * DAY)
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Not fixed.")
        assert idle_sweep_at(clock, MONDAY_8AM + 4 * DAY).closed == 0
        assert fresh(ticket).status == "in_progress"

    def test_the_periods_are_settings(self, world: World, clock: FrozenClock, settings) -> None:
        settings.VE_IDLE_WAITING_CUSTOMER_DAYS = 1
        ticket = self.waiting(world)
        assert idle_sweep_at(clock, MONDAY_8AM + DAY).resolved == 1
        assert "for 1 day." in Comment.objects.filter(ticket=ticket, author_kind="system").get().body

    def test_the_beat_task_runs_the_sweep(self, world: World, clock: FrozenClock) -> None:
        ticket = self.waiting(world)
        clock.advance(7 * DAY)
        assert tasks.tickets_idle_sweep_task() == 1
        assert fresh(ticket).status == "resolved"


def test_clock_helpers_are_the_pure_module(world: World) -> None:
    """The services count on the same clock the pure tests cover."""
    policy = SlaPolicy.objects.get(priority="critical")
    assert sla_services.DEFAULT_TARGETS["critical"] == (
        policy.first_response_minutes,
        policy.resolution_minutes,
    )
    assert isinstance(sla.ALWAYS_OPEN, sla.AlwaysOpen)
