"""The SLA sweep's statement against the services it mirrors (issue 26): the sweep writes in one SQL
statement, for thousands of tickets, what the services write one ticket at a time. Two tickets alike in
everything but their id cross the same threshold at the same moment; one is breached and escalated through
the services, the other by the sweep. Every row either path writes is then compared field by field: the
events, the assignment history, the ticket itself, the chain outbox, the webhook deliveries and the
pending emails. A field that changes in one path only (an escalation payload's key, a counter, a time)
fails here."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Model

from chain.models import OutboxEntry
from core.formats import iso_timestamp
from core.parties import SYSTEM
from notifications.models import PendingEmail, WebhookDelivery
from notifications.services import webhook_endpoint_create
from notifications.services.webhooks import EVENT_TYPES
from tests.conftest import FrozenClock, World
from tickets import services
from tickets.models import Assignment, Ticket, TicketEvent
from tickets.services import recording, sla

pytestmark = pytest.mark.django_db

RESOLUTION_BREACH = next(t for t in sla.THRESHOLDS if t.waiting == "res_breach")

# What differs between two tickets by construction: their identities, and what is derived from them.
IDENTITY = {"id", "ticket", "ticket_id", "event", "event_id", "public_id", "idempotency_key", "number"}
TICKET_IDENTITY = IDENTITY | {"subject", "created_by_address"}


def fields_of(row: Model, *, leave_out: set[str] = IDENTITY) -> dict[str, Any]:
    return {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if field.attname not in leave_out and field.name not in leave_out
    }


def written_for(ticket: Ticket, after_seq: int) -> dict[str, Any]:
    """Every row written for the ticket's events after `after_seq`, and the ticket as it now is."""
    events = TicketEvent.objects.filter(ticket=ticket, seq__gt=after_seq).order_by("seq")
    event_ids = [event.pk for event in events]
    return {
        "events": [fields_of(event) for event in events],
        "assignments": [fields_of(a) for a in Assignment.objects.filter(ticket=ticket).order_by("id")],
        "ticket": fields_of(Ticket.objects.get(pk=ticket.pk), leave_out=TICKET_IDENTITY),
        "outbox": [
            fields_of(row)
            for row in OutboxEntry.objects.filter(ticket_id=ticket.pk, seq__gt=after_seq).order_by("seq")
        ],
        "deliveries": [
            fields_of(row)
            for row in WebhookDelivery.objects.filter(event_id__in=event_ids).order_by(
                "event_id", "endpoint_id"
            )
        ],
        "emails": [
            fields_of(row)
            for row in PendingEmail.objects.filter(ticket_id=ticket.pk).order_by("recipient_key", "first_seq")
        ],
    }


@pytest.fixture
def twins(world: World, frozen_clock: FrozenClock) -> tuple[Ticket, Ticket, datetime.datetime]:
    """Two high-priority tickets on one lease, opened at one moment, first response given and resolution
    warned (so that the resolution breach is the one threshold left), and the moment it is due."""
    webhook_endpoint_create(
        actor=world.agent,
        provider=world.provider_a,
        url="https://hooks.example.com/in",
        event_types=list(EVENT_TYPES),
    )
    first = world.open_ticket(subject="Twin one", category="billing")
    second = world.open_ticket(subject="Twin two", category="billing")
    opened = frozen_clock.now
    Ticket.objects.filter(pk__in=[first.pk, second.pk]).update(
        sla_first_response_met=True, sla_resolution_warned_at=opened
    )
    first.refresh_from_db()
    assert first.logs_requested_at is None  # not a technical ticket: the escalation is what asks for logs
    return first, second, first.sla_resolution_due + datetime.timedelta(minutes=1)


def breach_through_the_services(ticket_id: object, now: datetime.datetime) -> None:
    """What the sweep does for one ticket, one service call at a time."""
    with transaction.atomic():
        ticket = recording.lock_ticket(SYSTEM, ticket_id)
        recording.record_event(
            ticket,
            kind=RESOLUTION_BREACH.kind,
            actor=SYSTEM,
            data=sla.threshold_event_data(RESOLUTION_BREACH, due_at=iso_timestamp(ticket.sla_resolution_due)),
            is_internal=not RESOLUTION_BREACH.is_breach,
            at=now,
        )
        setattr(ticket, RESOLUTION_BREACH.marker, now)
        recording.save_ticket(ticket, RESOLUTION_BREACH.marker, at=now)
        services.ticket_escalate(actor=SYSTEM, ticket_id=ticket_id, reason=sla.breach_reason("resolution"))


def test_a_breach_and_its_escalation_write_the_same_rows_either_way(
    twins: tuple[Ticket, Ticket, datetime.datetime], frozen_clock: FrozenClock
) -> None:
    by_services, by_sweep, now = twins
    assert by_services.last_seq == by_sweep.last_seq
    after = by_services.last_seq
    frozen_clock.now = now

    breach_through_the_services(by_services.pk, now)
    result = sla.sla_sweep(now=now)
    assert (result.breaches, result.escalations, result.warnings) == (1, 1, 0)

    services_rows, sweep_rows = written_for(by_services, after), written_for(by_sweep, after)
    kinds = [event["kind"] for event in sweep_rows["events"]]
    assert kinds == [TicketEvent.Kind.SLA_BREACHED, TicketEvent.Kind.ASSIGNMENT_CHANGE]
    assert len(sweep_rows["outbox"]) == 2
    assert len(sweep_rows["deliveries"]) == 2  # the provider's endpoint hears both
    assert sweep_rows["assignments"], "the escalation is in the history"
    for table in services_rows:
        assert sweep_rows[table] == services_rows[table], table


def test_the_comparison_sees_a_payload_that_differs(
    twins: tuple[Ticket, Ticket, datetime.datetime], frozen_clock: FrozenClock, monkeypatch
) -> None:
    """The check itself: with the escalation's payload declared differently for the statement alone (a
    field renamed), the two paths no longer agree."""
    by_services, by_sweep, now = twins
    after = by_services.last_seq
    frozen_clock.now = now
    breach_through_the_services(by_services.pk, now)
    declared = sla.assignments.assignment_data

    def drifted(**values: Any) -> dict[str, Any]:
        data = declared(**values)
        data["handed_to"] = data.pop("to")
        return data

    monkeypatch.setattr(sla.assignments, "assignment_data", drifted)
    sla.sla_sweep(now=now)
    services_events = written_for(by_services, after)["events"]
    sweep_events = written_for(by_sweep, after)["events"]
    assert services_events[0] == sweep_events[0]  # the breach itself still agrees
    assert services_events[1]["data"] != sweep_events[1]["data"]
