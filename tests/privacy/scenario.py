"""A ticket history with a person's content and other parties' content on it, anchored: what erasure tests use."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from chain import envelopes, shredding
from chain.backends import get_backend
from chain.services import outbox_drain
from tests.conftest import Apis, World
from tickets import services
from tickets.models import Ticket, TicketEvent

SUBJECT = "Leaky db01.alice-corp.internal"
DESCRIPTION = "Alice's private description: password=hunter2"
ALICE_TEXT = "Alice writes her phone number +41 79 555 12 34"
ALICE_FILE = b"kernel: alice-corp secret stack trace\n" * 50
ALICE_FILENAME = "alice-corp-trace.log"
ALICE_REASON = "Alice escalates: my CFO is angry"
PROVIDER_TEXT = "Provider: we restarted the pod on node-7"
PROVIDER_NOTE = "Provider internal: customer misconfigured the probe"
BOB_SUBJECT = "Bob's own ticket stays"
SECRETS = (SUBJECT, DESCRIPTION, ALICE_TEXT, ALICE_FILENAME, "hunter2", "alice-corp", ALICE_REASON)


@dataclass
class Story:
    ticket: Ticket
    bob_ticket: Ticket
    attachment_id: str
    alice_comment_id: str
    provider_comment_id: str


def build(world: World, apis: Apis) -> Story:
    """Alice's ticket (subject, description, her reply with a file, her escalation reason), the provider's
    public answer and internal note on it, and Bob's ticket; everything anchored on the local ledger."""
    ticket = world.open_ticket(subject=SUBJECT, description=DESCRIPTION)
    upload = apis.alice.upload(ALICE_FILENAME, ALICE_FILE)
    assert upload.status_code == 201, upload.content
    alice_comment = services.comment_add(
        actor=world.alice, ticket_id=ticket.pk, body=ALICE_TEXT, attachment_ids=[upload.json()["id"]]
    )
    provider_comment = services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.pk, body=PROVIDER_TEXT
    )
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.pk, body=PROVIDER_NOTE, is_internal=True
    )
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason=ALICE_REASON)
    bob_ticket = world.open_ticket(actor=world.bob, subject=BOB_SUBJECT)
    assert outbox_drain().anchored >= 6
    return Story(
        ticket=ticket,
        bob_ticket=bob_ticket,
        attachment_id=upload.json()["id"],
        alice_comment_id=str(alice_comment.comment.pk),
        provider_comment_id=str(provider_comment.comment.pk),
    )


def opened_envelopes(ticket: Ticket, support_private_key: bytes) -> dict[int, dict | None]:
    """Each anchored event of the ticket by seq: its private document as support opens it now (with the
    shred key the database still holds), or None when it cannot be opened."""
    events = {event.seq: event.pk for event in TicketEvent.objects.filter(ticket=ticket)}
    keys = shredding.stored_shred_keys(events.values())
    opened: dict[int, dict | None] = {}
    for key, anchored in get_backend().read_anchored().txs.items():
        if not key.startswith(f"ticket:{ticket.pk}:"):
            continue
        seq = int(key.rsplit(":", 1)[1])
        envelope = base64.b64decode(anchored.tx["msg"]["payload"]["envelope"])
        try:
            opened[seq] = json.loads(
                envelopes.open_envelope(envelope, support_private_key, shred_key=keys.get(events[seq]))
            )
        except envelopes.EnvelopeError:
            opened[seq] = None
    return opened
