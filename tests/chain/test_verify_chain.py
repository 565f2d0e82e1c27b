"""`manage.py verify_chain`: an intact ledger and database pass; each kind of tampering is reported."""

from __future__ import annotations

import base64
import json

import nacl.signing
import pytest

from chain.models import OutboxEntry
from chain.services import outbox_drain
from core.formats import canonical_json_bytes as canonical_json
from tests.chain.helpers import add_attachment, full_history, verify
from tickets import services
from tickets.models import Attachment, Comment, Ticket, TicketEvent


@pytest.fixture
def anchored(keyed_world):
    """Two tickets with a full history, anchored one event per block (so blocks can be moved)."""
    ticket = full_history(keyed_world)
    other = keyed_world.open_ticket(subject="Other")
    services.comment_add(actor=keyed_world.alice, ticket_id=other.pk, body="Other reply")
    outbox_drain(batch_size=1)
    assert not OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).exists()
    return keyed_world, ticket, other


def ledger_lines(world) -> list[bytes]:
    return world.keys.ledger_path.read_bytes().splitlines(keepends=True)


def write_lines(world, lines: list[bytes]) -> None:
    world.keys.ledger_path.write_bytes(b"".join(lines))


def block_of(world, ticket, seq: int) -> int:
    """The 0-based line of the block holding a ticket's event."""
    key = f"ticket:{ticket.pk}:{seq}"
    for number, line in enumerate(ledger_lines(world)):
        if any(tx["idempotency_key"] == key for tx in json.loads(line)["txs"]):
            return number
    raise AssertionError(key)


@pytest.mark.django_db
def test_intact_chain_passes(anchored):
    _world, ticket, _other = anchored
    status, output = verify()
    assert status == 0
    assert "verify_chain OK" in output
    assert f"{TicketEvent.objects.count()} anchored, 0 pending" in output
    status, output = verify("--ticket", str(ticket.pk))
    assert status == 0
    assert "1 ticket(s), 13 event(s): 13 anchored" in output


@pytest.mark.django_db
def test_pending_events_are_counted_not_reported(anchored):
    world, _ticket, other = anchored
    services.comment_add(actor=world.provider_a_member, ticket_id=other.pk, body="not yet anchored")
    status, output = verify()
    assert status == 0
    assert "1 pending" in output


@pytest.mark.django_db
def test_edited_block_is_reported(anchored):
    world, ticket, _other = anchored
    lines = ledger_lines(world)
    number = block_of(world, ticket, 4)  # status_change → in_progress
    block = json.loads(lines[number])
    block["txs"][0]["msg"]["status"] = "resolved"
    lines[number] = canonical_json(block) + b"\n"
    write_lines(world, lines)
    status, output = verify()
    assert status == 1
    assert f"ledger [merkle_root]: block {number + 1}" in output
    assert f"{ticket.display_number} ({ticket.pk}) seq 4 [public_mismatch]: " in output
    assert "FAILED" in output


@pytest.mark.django_db
def test_dropped_block_is_reported(anchored):
    world, ticket, _other = anchored
    lines = ledger_lines(world)
    number = block_of(world, ticket, 2)
    del lines[number]
    write_lines(world, lines)
    status, output = verify()
    assert status == 1
    assert "[height]" in output
    assert "[prev_hash]" in output
    assert f"{ticket.display_number} ({ticket.pk}) seq 2 [missing_from_ledger]" in output


@pytest.mark.django_db
def test_reordered_blocks_are_reported(anchored):
    world, ticket, _other = anchored
    lines = ledger_lines(world)
    first, second = block_of(world, ticket, 2), block_of(world, ticket, 3)
    lines[first], lines[second] = lines[second], lines[first]
    write_lines(world, lines)
    status, output = verify()
    assert status == 1
    assert "[prev_hash]" in output
    assert f"{ticket.display_number} ({ticket.pk}) seq 3 [order]: seq 3 is anchored before seq 2" in output


@pytest.mark.django_db
def test_block_signed_by_another_key_is_reported(anchored, settings, tmp_path):
    _world, _ticket, _other = anchored
    settings.VE_CHAIN_NODE_KEY_PATH = tmp_path / "impostor.key"
    settings.VE_CHAIN_NODE_KEY_PATH.write_text("")  # exists: becomes the trusted key below

    settings.VE_CHAIN_NODE_KEY_PATH.write_bytes(base64.b64encode(nacl.signing.SigningKey.generate().encode()))
    status, output = verify()
    assert status == 1
    assert "[signer]" in output


@pytest.mark.django_db
def test_edited_comment_is_reported(anchored):
    _world, ticket, _other = anchored
    Comment.objects.filter(ticket=ticket, body="Secret customer reply").update(body="Rewritten history")
    status, output = verify()
    assert status == 1
    line = f"{ticket.display_number} ({ticket.pk}) seq 2 [content_mismatch]: comment text"
    assert line in output
    assert "Rewritten history" not in output  # findings never print private text
    assert "Secret customer reply" not in output


@pytest.mark.django_db
def test_edited_status_is_reported(anchored):
    _world, _ticket, other = anchored
    Ticket.objects.filter(pk=other.pk).update(status="resolved")
    status, output = verify()
    assert status == 1
    assert f"{other.display_number} ({other.pk}) [status]: the ticket is 'resolved'" in output
    # The event's own data edited to match is caught too.
    TicketEvent.objects.filter(ticket=other, seq=1).update(
        data={**TicketEvent.objects.get(ticket=other, seq=1).data, "status": "resolved"}
    )
    status, output = verify("--ticket", str(other.pk))
    assert status == 1
    assert f"{other.display_number} ({other.pk}) seq 1 [content_mismatch]" in output


@pytest.mark.django_db
def test_edited_priority_is_reported(anchored):
    _world, ticket, _other = anchored
    Ticket.objects.filter(pk=ticket.pk).update(priority="low")
    status, output = verify("--ticket", str(ticket.pk))
    assert status == 1
    assert "[priority]: the ticket is 'low' but its last priority change says 'critical'" in output


@pytest.mark.django_db
def test_edited_attachment_hash_is_reported(anchored):
    _world, ticket, _other = anchored
    Attachment.objects.filter(ticket=ticket, filename="secret-trace.txt").update(sha256="0" * 64)
    status, output = verify()
    assert status == 1
    assert f"{ticket.display_number} ({ticket.pk}) seq 8 [content_mismatch]: attachment SHA-256" in output


@pytest.mark.django_db
def test_deleted_event_is_reported(anchored):
    _world, ticket, _other = anchored
    TicketEvent.objects.filter(ticket=ticket, seq=3).delete()
    status, output = verify()
    assert status == 1
    assert f"{ticket.display_number} ({ticket.pk}) seq 3 [deleted_event]: anchored at height" in output


@pytest.mark.django_db
def test_deleted_ticket_is_reported_by_its_anchored_number(anchored):
    _world, _ticket, other = anchored
    number = other.display_number
    Ticket.objects.filter(pk=other.pk).delete()
    status, output = verify()
    assert status == 1
    assert f"{number} ({other.pk}) seq 1 [deleted_event]" in output
    assert f"{number} ({other.pk}) seq 2 [deleted_event]" in output


@pytest.mark.django_db
def test_unqueued_event_is_reported(keyed_world):
    ticket = keyed_world.open_ticket()
    add_attachment(keyed_world, keyed_world.alice, ticket_id=ticket.pk)
    OutboxEntry.objects.filter(ticket=ticket, seq=2).delete()
    outbox_drain()
    status, output = verify()
    assert status == 1
    assert f"{ticket.display_number} ({ticket.pk}) seq 2 [not_queued]" in output


@pytest.mark.django_db
def test_bad_ticket_argument(keyed_world):
    status, output = verify("--ticket", "not-a-uuid")
    assert status == 2
    assert "--ticket must be a ticket id" in output


@pytest.mark.django_db
def test_nothing_anchored_yet_is_fine_but_a_lost_ledger_is_not(keyed_world):
    ticket = keyed_world.open_ticket()
    status, output = verify()
    assert status == 0
    assert "1 pending" in output
    outbox_drain()
    keyed_world.keys.ledger_path.unlink()
    status, output = verify()
    assert status == 1
    assert "ledger [missing]" in output
    assert f"{ticket.display_number} ({ticket.pk}) seq 1 [missing_from_ledger]" in output


@pytest.mark.django_db
def test_an_edit_through_the_service_keeps_the_history_verifiable(anchored):
    world, _ticket, other = anchored
    services.ticket_edit(actor=world.agent, ticket_id=other.pk, subject="Corrected", category="billing")
    outbox_drain()
    status, output = verify()
    assert status == 0, output
    # Editing the row behind the services' back is still caught: the last edit says otherwise.
    Ticket.objects.filter(pk=other.pk).update(description="Quietly rewritten")
    status, output = verify()
    assert status == 1
    assert "description" in output
