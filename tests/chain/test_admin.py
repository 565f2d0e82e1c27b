"""The support console shows each ticket's chain state and each event's anchoring."""

from __future__ import annotations

from unittest import mock

import pytest

from chain import tasks
from chain.backends import get_backend
from chain.models import OutboxEntry
from chain.services import outbox_drain
from tests.chain.helpers import FlakyBackend
from tickets import services
from tickets.templatetags.portal import short_hash


@pytest.mark.django_db
def test_ticket_list_and_page_show_the_chain_state(keyed_world, admin_client, django_assert_max_num_queries):
    anchored = keyed_world.open_ticket(subject="Anchored one")
    outbox_drain()
    pending = keyed_world.open_ticket(subject="Pending one")
    backend = FlakyBackend(get_backend())
    backend.down = True
    failing = keyed_world.open_ticket(subject="Failing one")
    services.comment_add(actor=keyed_world.alice, ticket_id=pending.pk, body="x")
    OutboxEntry.objects.filter(ticket=pending).update(next_attempt_at="2100-01-01T00:00:00Z")
    outbox_drain(backend=backend)

    with django_assert_max_num_queries(12):  # the state is a column of the list query
        response = admin_client.get("/admin/tickets/ticket/")
    assert response.status_code == 200
    rows = {
        ticket.subject: response.content.decode().split(ticket.subject, 1)[1].split("</tr>", 1)[0]
        for ticket in (anchored, pending, failing)
    }
    assert "chain-state--anchored" in rows["Anchored one"]
    assert "chain-state--pending" in rows["Pending one"]
    assert "chain-state--failed" in rows["Failing one"]

    # The ticket's console page shows each event's receipt, and why an event is not anchored yet.
    row = OutboxEntry.objects.get(ticket=anchored)
    page = admin_client.get(f"/admin/tickets/ticket/{anchored.pk}/change/").content.decode()
    assert f'anchored: tx <span class="mono">{short_hash(row.tx_hash)}</span> at height {row.height}' in page
    failing_page = admin_client.get(f"/admin/tickets/ticket/{failing.pk}/change/").content.decode()
    assert 'title="connection refused"' in failing_page
    assert "Failed, 1 attempt" in failing_page


@pytest.mark.django_db
def test_retry_now_action(keyed_world, admin_client, django_capture_on_commit_callbacks):
    backend = FlakyBackend(get_backend())
    backend.down = True
    ticket = keyed_world.open_ticket()
    outbox_drain(backend=backend)
    row = OutboxEntry.objects.get(ticket=ticket)
    with (
        mock.patch.object(tasks.outbox_drain_task, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(
            "/admin/chain/outboxentry/", {"action": "retry_now", "_selected_action": [row.pk]}
        )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.next_attempt_at <= row.created_at.__class__.now(row.next_attempt_at.tzinfo)
    assert queued.called
    assert outbox_drain().anchored == 1
