"""Database rows → sealed x/support messages: the mapping table over real events, and the envelopes."""

from __future__ import annotations

import base64
import json

import pytest

from chain import envelopes, keys, messages, shredding
from chain.envelopes import EnvelopeError
from providers.models import CustomerIdentity
from tests.chain.helpers import full_history
from tickets import services
from tickets.models import TicketEvent

CREATE = "/virtengine.support.v1.MsgCreateSupportRequest"
UPDATE = "/virtengine.support.v1.MsgUpdateSupportRequest"
RESPONSE = "/virtengine.support.v1.MsgAddSupportResponse"
ARCHIVE = "/virtengine.support.v1.MsgArchiveSupportRequest"

# seq → (event kind, message type, public fields expected besides sender/payload/public_metadata)
EXPECTED = {
    1: ("ticket_created", CREATE, {"category": "technical", "priority": "high"}),
    2: ("new_comment", RESPONSE, {}),
    3: ("new_comment", RESPONSE, {}),
    4: ("status_change", UPDATE, {"status": "in_progress"}),
    5: ("priority_change", UPDATE, {"priority": "urgent"}),
    6: ("assignment_change", UPDATE, {"assigned_agent": "support"}),
    7: ("assignment_change", UPDATE, {"assigned_agent": "provider"}),
    8: ("attachment_added", UPDATE, {}),
    9: ("deployment_linked", UPDATE, {}),
    10: ("deployment_unlinked", UPDATE, {}),
    11: ("logs_fetched", UPDATE, {}),
    12: ("status_change", UPDATE, {"status": "resolved"}),
    13: ("status_change", ARCHIVE, {"reason": "closed_by_customer"}),
}
PRIVATE = (
    "Secret subject",
    "Secret description",
    "Secret customer reply",
    "Secret internal note",
    "Secret escalation reason",
    "secret-trace.txt",
    "secret log line",
)


def sealed_by_seq(ticket) -> dict[int, messages.SealedMessage]:
    events = messages.events_for_anchoring(
        TicketEvent.objects.filter(ticket=ticket).values_list("pk", flat=True)
    )
    return {item.seq: item for item in messages.seal_messages(events)}


def shred_key_of(sealed: messages.SealedMessage) -> bytes | None:
    return shredding.stored_shred_keys([sealed.event_id])[sealed.event_id]


def open_as(sealed: messages.SealedMessage, private_key: bytes) -> dict:
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    return json.loads(envelopes.open_envelope(envelope, private_key, shred_key=shred_key_of(sealed)))


@pytest.mark.django_db
def test_every_event_kind_maps_to_its_message(keyed_world):
    ticket = full_history(keyed_world)
    sealed = sealed_by_seq(ticket)
    assert set(sealed) == set(EXPECTED)
    for seq, (kind, message_type, fields) in EXPECTED.items():
        message = sealed[seq].message
        assert message["@type"] == message_type, seq
        assert message["public_metadata"]["event_kind"] == kind
        assert message["public_metadata"]["seq"] == str(seq)
        assert message["public_metadata"]["ticket_id"] == str(ticket.pk)
        for name, value in fields.items():
            assert message[name] == value, (seq, name)
        if message_type == CREATE:
            assert message["related_entity"] == {
                "type": "deployment",
                "id": keyed_world.alice_deployment.lease_id,
            }
            assert message["public_metadata"]["ticket_number"] == ticket.display_number
        else:
            assert message["ticket_id"] == str(ticket.pk)
        assert sealed[seq].idempotency_key == f"ticket:{ticket.pk}:{seq}"


@pytest.mark.django_db
def test_escalation_is_public_and_private_text_is_not(keyed_world):
    ticket = full_history(keyed_world)
    sealed = sealed_by_seq(ticket)
    assert sealed[6].message["public_metadata"]["escalation"] == "true"
    for item in sealed.values():
        public = json.dumps({k: v for k, v in item.message.items() if k != "payload"})
        for secret in PRIVATE:
            assert secret not in public
        # The envelope itself is ciphertext: no private string in its bytes either.
        envelope = base64.b64decode(item.message["payload"]["envelope"]).decode()
        for secret in PRIVATE:
            assert secret not in envelope


@pytest.mark.django_db
def test_private_documents_carry_the_content(keyed_world):
    ticket = full_history(keyed_world)
    sealed = sealed_by_seq(ticket)
    support = keyed_world.keys.support[0]
    created = open_as(sealed[1], support)
    assert created["content"]["subject"] == "Secret subject"
    assert created["content"]["description"] == "Secret description"
    assert open_as(sealed[2], support)["content"]["text"] == "Secret customer reply"
    assert open_as(sealed[3], support)["content"]["text"] == "Secret internal note"
    escalation = open_as(sealed[6], support)
    # The envelope is sealed to the customer too: the assignees as a customer may read them, no user ids.
    assert escalation["content"] == {
        "from": {"kind": "provider", "name": None},
        "to": {"kind": "support", "name": None},
        "reason": "Secret escalation reason",
    }
    attachment = open_as(sealed[8], support)["content"]
    assert attachment["filename"] == "secret-trace.txt"
    assert attachment["sha256"] == ticket.attachments.get(filename="secret-trace.txt").sha256
    logs = open_as(sealed[11], support)["content"]
    assert logs["sha256"] == ticket.attachments.get(is_internal=True).sha256
    assert open_as(sealed[12], support)["content"] == {"from": "in_progress", "to": "resolved"}
    assert open_as(sealed[9], support)["content"] == {
        "deployment_id": keyed_world.alice_second_deployment.lease_id
    }


@pytest.mark.django_db
def test_envelope_round_trip_for_each_recipient(keyed_world):
    ticket = keyed_world.open_ticket()
    services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="Public reply")
    sealed = sealed_by_seq(ticket)[2]
    keys = keyed_world.keys
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    assert envelopes.recipients_of(envelope) == ["customer", "provider", "support"]
    for private_key in (keys.customer[0], keys.provider[0], keys.support[0]):
        assert open_as(sealed, private_key)["content"]["text"] == "Public reply"
    outsider = envelopes.private_key_from_b64(envelopes.generate_keypair()[0])
    with pytest.raises(EnvelopeError):
        envelopes.open_envelope(envelope, outsider, shred_key=shred_key_of(sealed))


@pytest.mark.django_db
def test_customer_key_cannot_open_an_internal_note(keyed_world):
    ticket = keyed_world.open_ticket()
    services.comment_add(
        actor=keyed_world.provider_a_member, ticket_id=ticket.pk, body="Internal only", is_internal=True
    )
    sealed = sealed_by_seq(ticket)[2]
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    assert envelopes.recipients_of(envelope) == ["provider", "support"]
    with pytest.raises(EnvelopeError):
        envelopes.open_envelope(envelope, keyed_world.keys.customer[0], shred_key=shred_key_of(sealed))
    assert open_as(sealed, keyed_world.keys.provider[0])["content"]["text"] == "Internal only"
    assert open_as(sealed, keyed_world.keys.support[0])["content"]["text"] == "Internal only"
    assert "customer_key" not in sealed.message["public_metadata"]


@pytest.mark.django_db
def test_party_without_key_is_left_out_and_the_metadata_says_so(keyed_world):
    CustomerIdentity.objects.filter(address=keyed_world.alice.address).update(envelope_public_key="")
    ticket = keyed_world.open_ticket()
    sealed = sealed_by_seq(ticket)[1]
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    assert envelopes.recipients_of(envelope) == ["provider", "support"]
    assert sealed.message["public_metadata"]["customer_key"] == "absent"
    assert "provider_key" not in sealed.message["public_metadata"]
    assert open_as(sealed, keyed_world.keys.support[0])["content"]["subject"] == "Pod crash-looping"


@pytest.mark.django_db
def test_support_is_always_a_recipient(world, chain_settings):
    # Nobody registered a key: support still reads everything.
    ticket = world.open_ticket()
    sealed = sealed_by_seq(ticket)[1]
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    assert envelopes.recipients_of(envelope) == ["support"]
    assert sealed.message["public_metadata"]["customer_key"] == "absent"
    assert sealed.message["public_metadata"]["provider_key"] == "absent"


@pytest.mark.django_db
def test_relayer_sends_every_message(keyed_world):
    ticket = full_history(keyed_world)
    relayer = keys.relayer_address()
    assert relayer.startswith("ve1")
    assert {item.message["sender"] for item in sealed_by_seq(ticket).values()} == {relayer}
