"""The outbox drain: per-ticket order, idempotency, back-off on a failing backend and full catch-up."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from chain import messages
from chain.backends import get_backend
from chain.backends.base import Receipt, Submission
from chain.ledger_verification import FindingKind, verify_ledger
from chain.models import OutboxEntry
from chain.services import _claim, outbox_drain, outbox_drain_batch, outbox_retry_delay
from tests.chain.helpers import FlakyBackend, make_due
from tickets import services
from tickets.models import TicketEvent

State = OutboxEntry.State


def ledger_keys(path) -> list[str]:
    keys = []
    for line in path.read_text().splitlines():
        keys += [tx["idempotency_key"] for tx in json.loads(line)["txs"]]
    return keys


def assert_ledger_in_ticket_order(path) -> None:
    last_seq: dict[str, int] = {}
    for key in ledger_keys(path):
        _, ticket_id, seq = key.split(":")
        assert int(seq) == last_seq.get(ticket_id, 0) + 1, f"{key} out of order"
        last_seq[ticket_id] = int(seq)


def busy_tickets(world, *, tickets: int = 3, comments: int = 4) -> list:
    opened = [world.open_ticket(subject=f"Ticket {n}") for n in range(tickets)]
    for round_ in range(comments):
        for ticket in opened:  # interleaved: ids alternate between tickets
            services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"comment {round_}")
    return opened


@pytest.mark.django_db
def test_drain_anchors_everything_in_ticket_order(keyed_world):
    tickets = busy_tickets(keyed_world)
    total = TicketEvent.objects.count()
    result = outbox_drain(batch_size=4)  # several batches, each cutting across tickets
    assert result.anchored == total
    assert result.batches >= 4
    assert not OutboxEntry.objects.exclude(state=State.ANCHORED).exists()
    assert_ledger_in_ticket_order(keyed_world.keys.ledger_path)
    assert len(ledger_keys(keyed_world.keys.ledger_path)) == total
    assert verify_ledger(keyed_world.keys.ledger_path) == []
    for row in OutboxEntry.objects.filter(ticket__in=tickets):
        assert row.backend == "local"
        assert len(row.tx_hash) == 64
        assert row.height >= 1
        assert row.anchored_at is not None
        assert row.attempts == 0
    assert outbox_drain().claimed == 0  # nothing left


@pytest.mark.django_db
def test_resubmitted_events_are_not_recorded_twice(keyed_world):
    busy_tickets(keyed_world, tickets=2, comments=2)
    outbox_drain()
    path = keyed_world.keys.ledger_path
    before = path.read_bytes()
    receipts = dict(OutboxEntry.objects.values_list("idempotency_key", "tx_hash"))
    # A crash after the ledger append but before the receipts were committed: the rows look unanchored.
    OutboxEntry.objects.update(state=State.PENDING, tx_hash="", height=None, anchored_at=None)
    make_due()  # the crashed worker's lease runs out
    result = outbox_drain()
    assert result.anchored == len(receipts)
    assert path.read_bytes() == before  # no new block, no second copy
    assert dict(OutboxEntry.objects.values_list("idempotency_key", "tx_hash")) == receipts


@pytest.mark.django_db
def test_backend_resubmission_returns_the_anchored_receipt(keyed_world):
    ticket = keyed_world.open_ticket()
    event = TicketEvent.objects.get(ticket=ticket, seq=1)
    sealed = messages.seal_messages(messages.events_for_anchoring([event.pk]))[0]
    backend = get_backend()
    first = backend.submit(
        [Submission(sealed.idempotency_key, str(ticket.pk), sealed.message)], record_state=lambda *a: True
    )
    # Sealed again (a fresh envelope): still the same event, so the ledger answers with the first tx.
    resealed = messages.seal_messages(messages.events_for_anchoring([event.pk]))[0]
    second = backend.submit(
        [Submission(resealed.idempotency_key, str(ticket.pk), resealed.message)], record_state=lambda *a: True
    )
    assert isinstance(first[0], Receipt)
    assert isinstance(second[0], Receipt)
    assert first[0].new
    assert not second[0].new
    assert second[0].tx_hash == first[0].tx_hash
    assert len(ledger_keys(keyed_world.keys.ledger_path)) == 1


@pytest.mark.django_db
def test_outage_backs_off_then_catches_up_without_loss_or_reordering(keyed_world):
    backend = FlakyBackend(get_backend())
    backend.down = True
    tickets = busy_tickets(keyed_world, tickets=2, comments=2)
    started = timezone.now()

    first = outbox_drain(backend=backend)
    assert first.anchored == 0
    assert first.claimed == TicketEvent.objects.count()
    # Each ticket's first event failed and backs off; the rest wait behind it, untried.
    assert first.failed == 2
    heads = list(OutboxEntry.objects.filter(seq=1))
    assert {row.state for row in heads} == {State.FAILED}
    assert {row.attempts for row in heads} == {1}
    assert {row.last_error for row in heads} == {"connection refused"}
    for row in heads:  # 2 s base, up to 20 % jitter
        delay = (row.next_attempt_at - started).total_seconds()
        assert 1.5 <= delay <= 2.5
        for follower in OutboxEntry.objects.filter(ticket_id=row.ticket_id, seq__gt=1):
            assert follower.state == State.PENDING
            assert follower.attempts == 0
            assert follower.next_attempt_at == row.next_attempt_at

    # Not due yet: the next sweep claims nothing, and calls no backend.
    calls = backend.calls
    assert outbox_drain(backend=backend).claimed == 0
    assert backend.calls == calls

    # A new event meanwhile waits behind its ticket's failing events.
    services.comment_add(actor=keyed_world.alice, ticket_id=tickets[0].pk, body="during the outage")
    assert outbox_drain(backend=backend).claimed == 0

    make_due()
    second_started = timezone.now()
    outbox_drain(backend=backend)
    retried = OutboxEntry.objects.filter(attempts=2)
    assert retried.count() == 2  # the two heads, again
    for row in retried:  # exponential: 4 s now
        assert 3.0 <= (row.next_attempt_at - second_started).total_seconds() <= 4.5

    backend.down = False
    make_due()
    recovered = outbox_drain(backend=backend)
    assert recovered.anchored == TicketEvent.objects.count()
    assert not OutboxEntry.objects.exclude(state=State.ANCHORED).exists()
    assert set(OutboxEntry.objects.values_list("last_error", flat=True)) == {""}
    assert_ledger_in_ticket_order(keyed_world.keys.ledger_path)
    assert sorted(ledger_keys(keyed_world.keys.ledger_path)) == sorted(
        OutboxEntry.objects.values_list("idempotency_key", flat=True)
    )


@pytest.mark.django_db
def test_a_failing_ticket_holds_back_only_its_own_events(keyed_world):
    backend = FlakyBackend(get_backend())
    stuck, fine = busy_tickets(keyed_world, tickets=2, comments=3)
    backend.reject = {str(stuck.pk)}
    result = outbox_drain(backend=backend)
    assert result.anchored == TicketEvent.objects.filter(ticket=fine).count()
    assert result.failed == 1  # the stuck ticket's first event
    assert result.held_back == TicketEvent.objects.filter(ticket=stuck).count() - 1
    head = OutboxEntry.objects.get(ticket=stuck, seq=1)
    assert head.state == State.FAILED
    assert head.attempts == 1
    waiting = OutboxEntry.objects.filter(ticket=stuck, seq__gt=1)
    assert {row.attempts for row in waiting} == {0}  # never tried: they wait for their predecessor
    assert {row.state for row in waiting} == {State.PENDING}
    assert all(row.next_attempt_at >= head.next_attempt_at for row in waiting)

    backend.reject = set()
    make_due()
    outbox_drain(backend=backend)
    assert not OutboxEntry.objects.exclude(state=State.ANCHORED).exists()
    assert_ledger_in_ticket_order(keyed_world.keys.ledger_path)


@pytest.mark.django_db
def test_an_event_that_cannot_be_mapped_fails_and_holds_back_its_ticket(keyed_world):
    ticket = keyed_world.open_ticket()
    services.ticket_transition(actor=keyed_world.provider_a_member, ticket_id=ticket.pk, status="in_progress")
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="after")
    TicketEvent.objects.filter(ticket=ticket, seq=2).update(data={"from": "open", "to": "bogus"})
    result = outbox_drain()
    assert result.anchored == 1
    bad = OutboxEntry.objects.get(ticket=ticket, seq=2)
    assert bad.state == State.FAILED
    assert "bogus" in bad.last_error
    assert OutboxEntry.objects.get(ticket=ticket, seq=3).state == State.PENDING


def test_retry_delay_is_exponential_and_capped(settings):
    settings.VE_CHAIN_RETRY_BASE_SECONDS = 2.0
    settings.VE_CHAIN_RETRY_MAX_SECONDS = 60.0
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (20, 60)):
        delay = outbox_retry_delay(attempts)
        assert ceiling * 0.8 <= delay <= ceiling


@pytest.mark.django_db
def test_claim_leases_rows_so_a_crashed_worker_is_retried_later(keyed_world, settings):
    settings.VE_CHAIN_CLAIM_LEASE_SECONDS = 120
    keyed_world.open_ticket()
    claimed = _claim(10)
    assert len(claimed) == 1
    # The worker "dies" here: another drain does not take the leased row...
    assert _claim(10) == []
    # ...until the lease runs out.
    make_due()
    assert len(_claim(10)) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_anchor_each_event_once_in_order(keyed_world):
    tickets = busy_tickets(keyed_world, tickets=6, comments=6)
    total = TicketEvent.objects.count()
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def drain() -> None:
        try:
            barrier.wait()
            for _ in range(50):
                if (
                    outbox_drain_batch(batch_size=3).claimed == 0
                    and not OutboxEntry.objects.exclude(state=State.ANCHORED)
                    .filter(next_attempt_at__lte=timezone.now())
                    .exists()
                ):
                    break
        except Exception as exc:  # noqa: BLE001 - surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    outbox_drain()  # whatever a thread left when it stopped
    path = keyed_world.keys.ledger_path
    keys = ledger_keys(path)
    assert len(keys) == len(set(keys)) == total
    assert_ledger_in_ticket_order(path)
    assert not [f for f in verify_ledger(path) if f.kind == FindingKind.DUPLICATE_KEY]
    assert OutboxEntry.objects.filter(state=State.ANCHORED).count() == total
    assert len(tickets) == 6


@pytest.mark.django_db
def test_api_shows_pending_failed_and_anchored(keyed_world, apis):
    backend = FlakyBackend(get_backend())
    ticket = keyed_world.open_ticket()

    def chain_state() -> dict:
        response = apis.alice.get(f"/api/v1/tickets/{ticket.pk}")
        assert response.status_code == 200
        return response.json()["chain"]

    assert chain_state() == {"state": "pending", "tx_hash": None, "height": None}
    backend.down = True
    outbox_drain(backend=backend)
    assert chain_state()["state"] == "failed"
    backend.down = False
    make_due()
    outbox_drain(backend=backend)
    row = OutboxEntry.objects.get(ticket=ticket)
    assert chain_state() == {"state": "anchored", "tx_hash": row.tx_hash, "height": row.height}
