"""verify_chain on a live installation: events go on being written and anchored, by other processes, while it
reads the ledger and the database. It must report nothing that is not wrong, and still everything that is.

The writes are put at the two moments that matter (`ReadHook`): just before the ledger is read and just after.
They are committed on connections of their own, as another worker's would be, so these tests are
transactional. Each runs on the local ledger and on the CometBFT test node.
"""

from __future__ import annotations

import pytest

from chain import verification
from chain.backends import get_backend
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
