"""The cometbft backend against a loopback node that decodes and checks every tx it receives."""

from __future__ import annotations

import base64
import json

import coincurve
import pytest
from django.core.cache import cache

from chain import cosmos_tx, envelopes, keys, messages, shredding
from chain.backends import get_backend
from chain.backends.base import Failure, Receipt, Submission
from chain.models import OutboxEntry
from chain.services import SENDER_LEASE_KEY, outbox_drain, outbox_drain_batch
from core.cache import redis_client
from tests.chain.cometbft_node import read_fields
from tests.chain.helpers import elsewhere, make_due, verify
from tickets import services
from tickets.models import Comment, TicketEvent

State = OutboxEntry.State


def decoded_message(received) -> dict:
    return cosmos_tx.support_message_from_any(received.messages)


@pytest.mark.django_db
def test_drain_anchors_signed_txs_the_node_accepts(keyed_world, node):
    ticket = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="Secret reply")
    services.ticket_transition(actor=keyed_world.alice, ticket_id=ticket.pk, status="closed")
    result = outbox_drain()
    assert result.anchored == 3
    received = node.received()
    assert [tx.memo for tx in received] == [f"ticket:{ticket.pk}:{seq}" for seq in (1, 2, 3)]
    assert [tx.sequence for tx in received] == [3, 4, 5]
    assert node.sequence == 6
    rows = {row.seq: row for row in OutboxEntry.objects.filter(ticket=ticket)}
    for tx in received:
        row = rows[int(tx.memo.rsplit(":", 1)[1])]
        assert row.state == State.ANCHORED
        assert row.backend == "cometbft"
        assert row.tx_hash == tx.tx_hash
        assert row.height == int(node.committed[tx.tx_hash]["height"])
        assert row.anchored_at.year == 2026  # the block's time
        assert row.submission == {}

    # What the chain holds: the x/support messages with their envelopes, which support can open.
    created, reply, closed = (decoded_message(tx) for tx in received)
    assert created["@type"] == "/virtengine.support.v1.MsgCreateSupportRequest"
    assert created["related_entity"] == {"type": "deployment", "id": keyed_world.alice_deployment.lease_id}
    assert created["public_metadata"]["ticket_number"] == ticket.display_number
    assert created["sender"] == keys.relayer_address()
    assert reply["@type"] == "/virtengine.support.v1.MsgAddSupportResponse"
    envelope = base64.b64decode(reply["payload"]["envelope"])
    assert reply["payload"]["sha256"] == envelopes.envelope_digest(envelope)
    reply_event = TicketEvent.objects.get(ticket=ticket, seq=2)
    shred_key = shredding.stored_shred_keys([reply_event.pk])[reply_event.pk]
    document = json.loads(envelopes.open_envelope(envelope, keyed_world.keys.support[0], shred_key=shred_key))
    assert document["content"]["text"] == "Secret reply"
    customer_view = envelopes.open_envelope(envelope, keyed_world.keys.customer[0], shred_key=shred_key)
    assert json.loads(customer_view)["seq"] == 2
    # Closing archives: an update to `closed` carrying the payload, then the archive, in one tx.
    assert [t for t, _ in received[2].messages] == [
        "/virtengine.support.v1.MsgUpdateSupportRequest",
        "/virtengine.support.v1.MsgArchiveSupportRequest",
    ]
    assert closed["reason"] == "closed_by_customer"
    assert read_fields(received[2].messages[0][1])[5] == [b"closed"]  # status, field 5
    for tx in received:
        assert b"Secret reply" not in tx.tx_bytes


@pytest.mark.django_db
def test_message_encoding_round_trips(keyed_world, node):
    ticket = keyed_world.open_ticket()
    services.ticket_escalate(actor=keyed_world.alice, ticket_id=ticket.pk, reason="slow")
    events = messages.events_for_anchoring(
        TicketEvent.objects.filter(ticket=ticket).values_list("pk", flat=True)
    )
    for item in messages.seal_messages(events):
        decoded = cosmos_tx.support_message_from_any(cosmos_tx.support_messages_to_any(item.message))
        assert decoded == item.message


@pytest.mark.django_db
def test_one_event_per_ticket_per_block(keyed_world, node):
    first = keyed_world.open_ticket()
    second = keyed_world.open_ticket()
    for ticket in (first, second):
        services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="more")
    outbox_drain()
    heights = {(row.ticket_id, row.seq): row.height for row in OutboxEntry.objects.all()}
    # Two waves: each ticket's seq 1 in the first block, seq 2 in the next; tickets share blocks.
    assert heights[(first.pk, 1)] == heights[(second.pk, 1)]
    assert heights[(first.pk, 2)] == heights[(second.pk, 2)] == heights[(first.pk, 1)] + 1


@pytest.mark.django_db
def test_node_down_backs_off_then_catches_up(keyed_world, node):
    ticket = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="during the outage")
    node.down = True
    result = outbox_drain()
    assert result.anchored == 0
    head = OutboxEntry.objects.get(ticket=ticket, seq=1)
    assert head.state == State.FAILED
    assert "HTTP 503" in head.last_error
    node.down = False
    make_due()
    assert outbox_drain().anchored == 2
    assert [tx.memo.rsplit(":", 1)[1] for tx in node.received()] == ["1", "2"]


@pytest.mark.django_db
def test_crash_after_broadcast_does_not_send_a_second_tx(keyed_world, node, settings):
    ticket = keyed_world.open_ticket()
    # The tx goes out but is not committed before the worker gives up (or dies): nothing is recorded
    # except the write-ahead note.
    node.hold_blocks = True
    settings.VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS = 0.05
    outbox_drain()
    row = OutboxEntry.objects.get(ticket=ticket)
    assert row.state == State.FAILED
    assert "not committed" in row.last_error
    assert row.submission["tx_hash"] == node.broadcasts[0]
    # Later the node commits it; the retry finds it and sends nothing new.
    node.hold_blocks = False
    make_due()
    outbox_drain()
    row.refresh_from_db()
    assert row.state == State.ANCHORED
    assert row.tx_hash == node.broadcasts[0]
    assert len(node.received()) == 1


class _LeaseRunsOut:
    """A backend whose worker is so slow that its lease runs out before it sends: meanwhile another worker
    claims the same rows and anchors them (`meanwhile`), then this one goes on with what it claimed."""

    name = "cometbft"

    def __init__(self, inner, meanwhile) -> None:
        self.inner, self.meanwhile = inner, meanwhile

    def submit(self, submissions, *, record_state):
        self.meanwhile()
        return self.inner.submit(submissions, record_state=record_state)


@pytest.mark.django_db
def test_a_worker_whose_lease_ran_out_sends_nothing_for_the_rows_another_took(keyed_world, node):
    first = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=first.pk, body="one")
    keyed_world.open_ticket(actor=keyed_world.bob)

    def another_worker_takes_over() -> None:
        make_due()  # the slow worker's lease has run out
        assert outbox_drain_batch().anchored == 3  # the other worker

    slow = _LeaseRunsOut(get_backend(), another_worker_takes_over)
    assert outbox_drain_batch(backend=slow).anchored == 0
    memos = [tx.memo for tx in node.received()]
    assert len(memos) == len(set(memos)), "an event was anchored in two txs"
    # What the slow worker held and lost is untouched: no failure, no back-off recorded over the new holder.
    assert not OutboxEntry.objects.exclude(state=State.ANCHORED).exists()
    assert outbox_drain().anchored == 0
    memos = [tx.memo for tx in node.received()]
    assert sorted(memos) == sorted(
        {f"ticket:{t}:{s}" for t, s in TicketEvent.objects.values_list("ticket_id", "seq")}
    )
    assert verify()[0] == 0


class _SecondWorkerMeanwhile:
    """The relayer's backend, during whose first send another worker's drain runs (on a connection of its
    own, as another process would): that drain's result and how many txs it broadcast go to `meanwhile`."""

    name = "cometbft"
    single_sender = True

    def __init__(self, inner, node) -> None:
        self.inner, self.node = inner, node
        self.meanwhile: list = []

    def submit(self, submissions, *, record_state):
        if not self.meanwhile:
            sent_before = len(self.node.broadcasts)
            result = elsewhere(outbox_drain)
            self.meanwhile.append((result, len(self.node.broadcasts) - sent_before))
        return self.inner.submit(submissions, record_state=record_state)


@pytest.mark.django_db(transaction=True)
def test_one_drain_sends_at_a_time(keyed_world, node):
    """The relayer account numbers its txs from one sequence: a second drain sending meanwhile took the same
    numbers, CheckTx refused its txs and their rows backed off (a backlog took minutes to anchor)."""
    first = keyed_world.open_ticket()
    second = keyed_world.open_ticket(actor=keyed_world.bob)
    backend = _SecondWorkerMeanwhile(get_backend(), node)
    result = outbox_drain(batch_size=1, backend=backend)
    [(other_drain, other_sent)] = backend.meanwhile
    assert other_drain.claimed == 0, "a second drain claimed rows while the first was sending"
    assert other_sent == 0
    # The first drain went on to the second ticket, and every event went out once, never refused.
    assert result.anchored == 2
    assert [tx.memo for tx in node.received()] == [f"ticket:{first.pk}:1", f"ticket:{second.pk}:1"]
    assert len(node.broadcasts) == 2
    assert set(OutboxEntry.objects.values_list("state", "attempts")) == {(State.ANCHORED, 0)}


class _LeaseLostWhileSending:
    """The relayer's backend, during whose first send the drain's lease on the account runs out."""

    name = "cometbft"
    single_sender = True

    def __init__(self, inner) -> None:
        self.inner = inner

    def submit(self, submissions, *, record_state):
        redis_client(write=True).delete(cache.make_and_validate_key(SENDER_LEASE_KEY))
        return self.inner.submit(submissions, record_state=record_state)


@pytest.mark.django_db
def test_a_drain_whose_lease_ran_out_stops_after_its_batch(keyed_world, node):
    first = keyed_world.open_ticket()
    second = keyed_world.open_ticket(actor=keyed_world.bob)
    result = outbox_drain(batch_size=1, backend=_LeaseLostWhileSending(get_backend()))
    assert (result.claimed, result.anchored) == (1, 1)
    assert [tx.memo for tx in node.received()] == [f"ticket:{first.pk}:1"]
    assert OutboxEntry.objects.get(ticket=second).state == State.PENDING  # left for the drain holding it now
    assert outbox_drain().anchored == 1


@pytest.mark.django_db
def test_a_tx_left_in_the_mempool_does_not_block_the_next(keyed_world, node, settings):
    """A drain gave up waiting for its tx, which still waits in the node's mempool: the next tx must take
    the sequence after it, which the node names when it refuses one signed from committed state."""
    waiting = keyed_world.open_ticket()
    node.hold_blocks = True
    settings.VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS = 0.05
    outbox_drain()
    assert OutboxEntry.objects.get(ticket=waiting).state == State.FAILED  # backing off, its tx in the mempool
    node.hold_blocks = False
    fresh = keyed_world.open_ticket(actor=keyed_world.bob)
    assert outbox_drain().anchored == 1
    row = OutboxEntry.objects.get(ticket=fresh)
    assert (row.state, row.attempts) == (State.ANCHORED, 0)
    assert [tx.sequence for tx in node.received()] == [3, 4]


@pytest.mark.django_db
def test_stale_sequence_is_refreshed(keyed_world, node):
    keyed_world.open_ticket()
    get_backend()  # cached with no account yet; meanwhile another sender uses the account
    node.sequence = 10
    assert outbox_drain().anchored == 1
    assert node.received()[0].sequence == 10


@pytest.mark.django_db
def test_failed_tx_holds_back_its_ticket(keyed_world, node):
    stuck = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=stuck.pk, body="waits")
    fine = keyed_world.open_ticket()
    node.deliver_fail = {f"ticket:{stuck.pk}:1"}
    result = outbox_drain()
    assert result.anchored == 1  # the other ticket
    assert OutboxEntry.objects.get(ticket=fine).state == State.ANCHORED
    head = OutboxEntry.objects.get(ticket=stuck, seq=1)
    assert head.state == State.FAILED
    assert "failed in block" in head.last_error
    assert OutboxEntry.objects.get(ticket=stuck, seq=2).attempts == 0  # never sent
    assert len(node.received()) == 2  # the failed tx is in a block (it used its sequence), seq 2 is not
    node.deliver_fail = set()
    make_due()
    assert outbox_drain().anchored == 2
    memos = [tx.memo for tx in node.received() if tx.memo.startswith(f"ticket:{stuck.pk}")]
    assert memos == [f"ticket:{stuck.pk}:1", f"ticket:{stuck.pk}:1", f"ticket:{stuck.pk}:2"]


@pytest.mark.django_db
def test_checktx_rejection_is_a_failure(keyed_world, node):
    ticket = keyed_world.open_ticket()
    node.reject_codes = {f"ticket:{ticket.pk}:1": 13}
    backend = get_backend()
    event = TicketEvent.objects.get(ticket=ticket)
    item = messages.seal_messages(messages.events_for_anchoring([event.pk]))[0]
    [result] = backend.submit(
        [Submission(item.idempotency_key, str(ticket.pk), item.message)], record_state=lambda *a: True
    )
    assert isinstance(result, Failure)
    assert "code 13" in result.error
    node.reject_codes = {}
    [result] = backend.submit(
        [Submission(item.idempotency_key, str(ticket.pk), item.message)], record_state=lambda *a: True
    )
    assert isinstance(result, Receipt)


def test_signature_is_low_s_sign_mode_direct():
    private_key = coincurve.PrivateKey()
    signed = cosmos_tx.sign_tx(
        messages=[("/virtengine.support.v1.MsgArchiveSupportRequest", b"\x0a\x03ve1")],
        memo="ticket:x:1",
        private_key=private_key.secret,
        chain_id="virtengine-1",
        account_number=5,
        sequence=9,
        fee=cosmos_tx.Fee(amount="2500", denom="uve", gas_limit=200_000),
    )
    decoded = cosmos_tx.decode_tx(signed.tx_bytes)
    assert decoded.sign_mode == cosmos_tx.SIGN_MODE_DIRECT
    assert decoded.sequence == 9
    assert decoded.memo == "ticket:x:1"
    assert decoded.fee_amount == [("uve", "2500")]
    assert decoded.gas_limit == 200_000
    assert decoded.public_key == private_key.public_key.format(compressed=True)
    assert cosmos_tx.verify_tx_signature(decoded, chain_id="virtengine-1", account_number=5)
    assert not cosmos_tx.verify_tx_signature(decoded, chain_id="other-chain", account_number=5)
    s = int.from_bytes(decoded.signatures[0][32:], "big")
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert s <= order // 2
    assert signed.tx_hash == cosmos_tx.tx_hash_of(signed.tx_bytes)


@pytest.mark.django_db
def test_verify_chain_reads_the_node(keyed_world, node):
    ticket = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="On chain")
    services.ticket_transition(actor=keyed_world.alice, ticket_id=ticket.pk, status="closed")
    outbox_drain()
    status, output = verify()
    assert status == 0, output
    assert "3 anchored, 0 pending" in output
    Comment.objects.filter(ticket=ticket).update(body="Edited")
    TicketEvent.objects.filter(ticket=ticket, seq=3).delete()
    status, output = verify()
    assert status == 1
    assert f"{ticket.display_number} ({ticket.pk}) seq 2 [content_mismatch]: comment text" in output
    assert f"{ticket.display_number} ({ticket.pk}) seq 3 [deleted_event]" in output
