"""Retention: the content of tickets closed longer than VE_RETENTION_DAYS_AFTER_CLOSE days is erased by the beat
task — every party's content on them, by the same mechanism as an erasure — and nothing else is."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from chain.services import outbox_drain
from privacy import tasks
from tests.conftest import World
from tickets import services
from tickets.models import Comment, ContentErasure, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def closed_ticket(world: World, subject: str, *, days_ago: float) -> Ticket:
    ticket = world.open_ticket(subject=subject, description=f"{subject} description")
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"{subject}: customer words")
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.pk, body=f"{subject}: provider words"
    )
    services.ticket_transition(actor=world.alice, ticket_id=ticket.pk, status="closed")
    Ticket.objects.filter(pk=ticket.pk).update(closed_at=timezone.now() - datetime.timedelta(days=days_ago))
    return ticket


def texts(ticket: Ticket) -> set[str]:
    ticket.refresh_from_db()
    return {
        ticket.subject,
        ticket.description,
        *Comment.objects.filter(ticket=ticket).values_list("body", flat=True),
    }


def test_retention_erases_tickets_closed_long_enough_and_nothing_else(keyed_world: World, settings) -> None:
    settings.VE_RETENTION_DAYS_AFTER_CLOSE = 30
    old = closed_ticket(keyed_world, "Old", days_ago=31)
    older = closed_ticket(keyed_world, "Older", days_ago=400)
    recent = closed_ticket(keyed_world, "Recent", days_ago=29)
    still_open = keyed_world.open_ticket(subject="Open")
    services.comment_add(actor=keyed_world.alice, ticket_id=still_open.pk, body="Open: customer words")
    Ticket.objects.filter(pk=still_open.pk).update(created_at=timezone.now() - datetime.timedelta(days=500))
    outbox_drain()
    kept = {ticket.pk: texts(ticket) for ticket in (recent, still_open)}

    assert tasks.retention_erase_task.apply().get() == 2

    for ticket in (old, older):
        assert texts(ticket) == {"[content erased]"}, ticket.subject
        assert ticket.content_erased_at is not None
        erased = TicketEvent.objects.filter(ticket=ticket, erasure__isnull=False)
        assert set(erased.values_list("kind", flat=True)) == {
            "ticket_created",
            "new_comment",
            "status_change",
        }
        assert TicketEvent.objects.filter(
            ticket=ticket, kind="content_erased", data__basis="retention"
        ).exists()
    for ticket in (recent, still_open):
        assert texts(ticket) == kept[ticket.pk]
        assert not TicketEvent.objects.filter(ticket=ticket, erasure__isnull=False).exists()
    assert ContentErasure.objects.get().basis == "retention"

    assert tasks.retention_erase_task.apply().get() == 0  # nothing left to do: erased tickets are not redone
    outbox_drain()
    out = io.StringIO()
    call_command("verify_chain", stdout=out)
    assert "retention period over" in out.getvalue()
    assert "OK" in out.getvalue()


def test_retention_is_off_by_default(world: World, settings) -> None:
    settings.VE_RETENTION_DAYS_AFTER_CLOSE = 0
    ticket = closed_ticket(world, "Ancient", days_ago=3650)
    assert tasks.retention_erase_task.apply().get() == 0
    assert "Ancient" in texts(ticket)
