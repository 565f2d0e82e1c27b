"""Concurrent writers on one ticket, on separate database connections, get gap-free unique seqs."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chain.models import OutboxEntry
from tests.conftest import World
from tickets import services
from tickets.models import Comment, TicketEvent

WRITERS = 8
COMMENTS_EACH = 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_comment_add_yields_gap_free_unique_seqs(world: World) -> None:
    ticket = world.open_ticket()
    actors = [world.alice, world.provider_a_member, world.agent]
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            start.wait()
            for n in range(COMMENTS_EACH):
                actor = actors[(index + n) % len(actors)]
                services.comment_add(
                    actor=actor,
                    ticket_id=ticket.id,
                    body=f"writer {index} comment {n}",
                    is_internal=actor is world.provider_a_member and n % 2 == 0,
                )
        except BaseException as error:  # noqa: BLE001 - reported to the main thread below
            errors.append(error)
        finally:
            connection.close()  # each thread used its own connection

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = 1 + WRITERS * COMMENTS_EACH  # the ticket_created event plus every comment
    assert Comment.objects.filter(ticket=ticket).count() == WRITERS * COMMENTS_EACH
    events = list(TicketEvent.objects.filter(ticket=ticket).order_by("seq"))
    seqs = [event.seq for event in events]
    assert seqs == list(range(1, total + 1))
    public = sorted(event.public_seq for event in events if not event.is_internal)
    assert public == list(range(1, len(public) + 1))
    assert all(event.public_seq is None for event in events if event.is_internal)
    assert OutboxEntry.objects.filter(ticket=ticket).count() == total
    ticket.refresh_from_db()
    assert ticket.last_seq == total
    assert ticket.last_public_seq == len(public)
