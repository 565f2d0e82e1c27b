"""verify_chain on a live installation: events go on being written and anchored, by other processes, while it
reads the ledger and the database. It must report nothing that is not wrong, and still everything that is.

The writes are put at the two moments that matter (`ReadHook`): just before the ledger is read and just after.
They are committed on connections of their own, as another worker's would be, so these tests are
transactional. Each runs on the local ledger and on the CometBFT test node.
"""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings

from chain import messages, verification
from chain.backends import cometbft, get_backend
from chain.backends.base import Receipt, Submission
from chain.models import OutboxEntry
from chain.services import outbox_drain
from tests.chain.helpers import ReadHook, elsewhere, verify
from tickets import services
from tickets.models import Comment, Ticket, TicketEvent

State = OutboxEntry.State


@pytest.fixture(params=["local", "cometbft"])
def backend(request, keyed_world):
    """The configured backend: the local ledger, or the cometbft backend on the test node."""
    if request.param == "cometbft":
        request.getfixturevalue("node")
    return get_backend()


@pytest.fixture
def hook(backend, monkeypatch):
    """verify_chain's backend, with the work other processes do meanwhile (set `before` / `after`)."""
    hooked = ReadHook(backend)
    monkeypatch.setattr(verification, "get_backend", lambda: hooked)
    return hooked


def drain_elsewhere(log: list[int]) -> None:
    """Another worker drains the outbox now; what it anchored goes into `log`."""
    log.append(elsewhere(outbox_drain).anchored)


def label(ticket: Ticket) -> str:
    return f"{ticket.display_number} ({ticket.pk})"


@pytest.mark.django_db(transaction=True)
def test_an_event_anchored_after_the_ledger_is_read_is_not_reported_missing(keyed_world, hook):
    """The soak's false alarm (#25): a receipt recorded between the ledger read and the database read."""
    ticket = keyed_world.open_ticket()
    outbox_drain()
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="anchored during the check")
    anchored: list[int] = []
    hook.after = lambda: drain_elsewhere(anchored)
    status, output = verify()
    assert anchored == [1], "the reply was not anchored while verify_chain ran"
    assert OutboxEntry.objects.get(ticket=ticket, seq=2).state == State.ANCHORED
    assert status == 0, output
    # The database as it was before the ledger was read: the reply was still pending then.
    assert "2 event(s): 1 anchored, 1 pending" in output
    hook.after = None
    status, output = verify()
    assert status == 0, output
    assert "2 event(s): 2 anchored, 0 pending" in output


@pytest.mark.django_db(transaction=True)
def test_events_written_and_anchored_before_the_ledger_is_read_are_verified(keyed_world, hook):
    """Newer than the database's view but in the ledger: looked up afresh and verified, not called deleted."""
    ticket = keyed_world.open_ticket()
    outbox_drain()
    written: list[Ticket] = []

    def another_process_writes() -> None:
        services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="late reply")
        written.append(keyed_world.open_ticket(subject="Opened during the check"))
        outbox_drain()

    hook.before = lambda: elsewhere(another_process_writes)
    status, output = verify()
    assert len(written) == 1
    assert status == 0, output
    assert "2 ticket(s), 3 event(s): 3 anchored, 0 pending, 2 written while verifying" in output


@pytest.mark.django_db(transaction=True)
def test_tampering_is_still_caught_while_events_are_anchored(keyed_world, hook):
    edited = keyed_world.open_ticket(subject="Edited later")
    services.comment_add(actor=keyed_world.alice, ticket_id=edited.pk, body="What was said")
    pruned = keyed_world.open_ticket(subject="Loses an event")
    services.comment_add(actor=keyed_world.alice, ticket_id=pruned.pk, body="To be deleted")
    forged = keyed_world.open_ticket(subject="Receipt without a tx")
    busy = keyed_world.open_ticket(subject="Busy")
    OutboxEntry.objects.filter(ticket=forged).update(state=State.PENDING, next_attempt_at="2999-01-01T00:00Z")
    outbox_drain()
    # Behind the services' back: a comment rewritten, an anchored event deleted, and a receipt for a tx that
    # was never sent.
    Comment.objects.filter(ticket=edited).update(body="What was not said")
    TicketEvent.objects.filter(ticket=pruned, seq=2).delete()
    OutboxEntry.objects.filter(ticket=forged).update(state=State.ANCHORED, tx_hash="AB" * 32, height=999_999)
    late: list[Ticket] = []

    def written_meanwhile_then_rewritten() -> None:
        services.comment_add(actor=keyed_world.alice, ticket_id=busy.pk, body="Late and honest")
        late.append(keyed_world.open_ticket(subject="Late"))
        services.comment_add(actor=keyed_world.alice, ticket_id=late[0].pk, body="Late, then rewritten")
        outbox_drain()
        Comment.objects.filter(ticket=late[0]).update(body="Rewritten after anchoring")
        services.comment_add(actor=keyed_world.alice, ticket_id=busy.pk, body="Anchored after the read")

    anchored_after: list[int] = []
    hook.before = lambda: elsewhere(written_meanwhile_then_rewritten)
    hook.after = lambda: drain_elsewhere(anchored_after)
    status, output = verify()
    assert anchored_after == [1]
    assert status == 1
    findings = sorted(line for line in output.splitlines() if " [" in line)
    assert len(findings) == 4, output
    assert f"{label(edited)} seq 2 [content_mismatch]: comment text" in output
    assert f"{label(pruned)} seq 2 [deleted_event]: anchored at height" in output
    assert f"{label(late[0])} seq 2 [content_mismatch]: comment text" in output
    missing = f"{label(forged)} seq 1 [missing_from_ledger]: the event is recorded as anchored (tx "
    assert missing + f"{'AB' * 32}, height 999999) but its tx is not in the ledger" in output


# -- what the consistency rests on --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_receipt_once_handed_out_is_in_every_later_read(keyed_world, backend):
    """The backends' side of the bargain (CometBFT's semantics: once `tx` answers with a height, that block
    is committed and every later query sees it; the local ledger: a block is acknowledged once on disk):
    each receipt is in every read that begins after it was handed out, while other submissions go on
    cutting blocks on another thread."""
    ticket = keyed_world.open_ticket()
    [item] = messages.seal_messages(
        messages.events_for_anchoring(TicketEvent.objects.filter(ticket=ticket).values_list("pk", flat=True))
    )
    handed_out: list[Receipt] = []
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        submission = Submission(f"contract:{n}", f"group-{n}", item.message)
        [result] = backend.submit([submission], record_state=lambda *_: True)
        assert isinstance(result, Receipt), result
        handed_out.append(result)

    def submit_one_by_one() -> None:
        try:
            for n in range(1, 30):
                submit(n)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    submit(0)  # the ledger exists from here on

    submitter = threading.Thread(target=submit_one_by_one)
    submitter.start()
    reads = 0
    while submitter.is_alive() or reads < 2:
        before = list(handed_out)
        contents = backend.read_anchored()
        reads += 1
        assert contents.problems == []
        for receipt in before:
            anchored = contents.txs.get(receipt.idempotency_key)
            assert anchored is not None, f"read {reads}: {receipt} is not in the ledger"
            assert (anchored.tx_hash, anchored.height) == (receipt.tx_hash, receipt.height)
            assert contents.top_height >= receipt.height
    submitter.join()
    assert not errors, errors
    assert len(handed_out) == 30


@pytest.mark.django_db
def test_the_chain_is_read_whole_while_blocks_are_cut_between_pages(keyed_world, node, monkeypatch):
    """`tx_search` pages (by offset, oldest first) while the node cuts blocks between two pages: every tx
    committed before the read began, each once; the blocks cut meanwhile only add at the end."""
    monkeypatch.setattr(cometbft, "SEARCH_PAGE_SIZE", 2)
    ticket = keyed_world.open_ticket()
    for n in range(4):
        services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body=f"reply {n}")
    outbox_drain()
    committed = {tx.memo for tx in node.received()}
    assert len(committed) == 5
    # Two more txs wait in the mempool, cut into a block between the read's first and second pages.
    other = keyed_world.open_ticket(actor=keyed_world.bob)
    services.comment_add(actor=keyed_world.bob, ticket_id=other.pk, body="waiting")
    node.hold_blocks = True
    keyed_world.open_ticket()
    with override_settings(VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS=0):
        outbox_drain()
    assert len(node.mempool) == 2
    backend = get_backend()
    pages = []
    call = backend.rpc.call

    def call_then_cut(method, params):
        result = call(method, params)
        if method == "tx_search":
            pages.append(len(result["txs"]))
            node.hold_blocks = False  # the next page's request cuts the block
        return result

    monkeypatch.setattr(backend.rpc, "call", call_then_cut)
    contents = backend.read_anchored()
    assert pages == [2, 2, 2, 1]
    assert contents.problems == []
    assert committed <= set(contents.txs)
    assert contents.tx_count == len(contents.txs) == 7
    assert sorted(tx.position for tx in contents.txs.values()) == list(range(1, 8))
