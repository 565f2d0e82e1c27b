"""Ticket event → x/support message: the whole table, the vocabulary, and no plaintext in public fields."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest

from chain import envelopes, mapping
from chain.mapping import (
    CATEGORY_TO_CHAIN,
    MESSAGE_TABLE,
    PRIORITY_TO_CHAIN,
    EventFacts,
    MappingError,
    TicketFacts,
    message_for,
    recipients_for,
)
from core.formats import canonical_json_bytes

CREATE = "/virtengine.support.v1.MsgCreateSupportRequest"
# Assignees as the event presenter describes them.
PROVIDER_QUEUE = {"kind": "provider", "name": None}
SUPPORT_QUEUE = {"kind": "support", "name": None}
UPDATE = "/virtengine.support.v1.MsgUpdateSupportRequest"
RESPONSE = "/virtengine.support.v1.MsgAddSupportResponse"
ARCHIVE = "/virtengine.support.v1.MsgArchiveSupportRequest"

CUSTOMER = "ve1customer0000000000000000000000000000000"
PROVIDER = "ve1provider0000000000000000000000000000000"
LEASE = f"{CUSTOMER}/1234/1/1"
TICKET_ID = "6f1c1d7e-8f2a-4a51-9f55-0d0c5a3f2b10"

# Private strings: none may appear outside the encrypted payload.
SUBJECT = "Secret subject: pod crash-looping"
DESCRIPTION = "Secret description: OOMKilled after 5 minutes"
COMMENT = "Secret comment: the DB password is hunter2"
NOTE = "Secret internal note: customer is on a legacy plan"
FILENAME = "secret-dump-file.tar.gz"
ATTACHMENT_SHA = "9" * 64
REASON = "Secret reason: customer asked to close"
LINKED_LEASE = f"{CUSTOMER}/9999/1/1"
PRIVATE_STRINGS = (SUBJECT, DESCRIPTION, COMMENT, NOTE, FILENAME, ATTACHMENT_SHA, REASON, LINKED_LEASE)

TICKET = TicketFacts(
    number="SUP-000123",
    lease_id=LEASE,
    customer_address=CUSTOMER,
    provider_address=PROVIDER,
    category="general",
    priority="critical",
    status="open",
    subject=SUBJECT,
    description=DESCRIPTION,
)


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    pairs = {}
    for label in ("customer", "provider", "support"):
        private_b64, public_b64 = envelopes.generate_keypair()
        pairs[label] = (
            envelopes.private_key_from_b64(private_b64),
            envelopes.public_key_from_b64(public_b64),
        )
    return pairs


@pytest.fixture(scope="module")
def encrypt(keys):
    def encrypt(plaintext: bytes, labels: list[str]) -> bytes:
        return envelopes.seal(plaintext, {label: keys[label][1] for label in labels})

    return encrypt


def event(
    kind: str, *, seq: int = 2, data: dict | None = None, content: dict | None = None, **changes
) -> EventFacts:
    facts = EventFacts(
        ticket_id=TICKET_ID,
        seq=seq,
        kind=kind,
        is_internal=False,
        actor_address=CUSTOMER,
        actor_kind="customer",
        ticket=TICKET,
        created_at="2026-11-28T07:00:00Z",
        data=data or {},
        content=content or {},
    )
    return replace(facts, **changes)


# (id, event, expected @type, expected public fields besides sender/payload/public_metadata)
TABLE = [
    ("created", event("ticket_created", seq=1), CREATE,
     {"category": "other", "priority": "urgent", "related_entity": {"type": "deployment", "id": LEASE}}),
    ("comment", event("new_comment", content={"text": COMMENT}), RESPONSE, {"ticket_id": TICKET_ID}),
    ("internal-note",
     event("new_comment", is_internal=True, actor_kind="provider", actor_address=PROVIDER, content={"text": NOTE}),
     RESPONSE, {"ticket_id": TICKET_ID}),
    ("status-open", event("status_change", data={"from": "resolved", "to": "open"}), UPDATE,
     {"ticket_id": TICKET_ID, "status": "open"}),
    ("status-in-progress", event("status_change", data={"to": "in_progress"}), UPDATE,
     {"ticket_id": TICKET_ID, "status": "in_progress"}),
    ("status-waiting", event("status_change", data={"to": "waiting_customer"}), UPDATE,
     {"ticket_id": TICKET_ID, "status": "waiting_customer"}),
    ("status-resolved", event("status_change", data={"to": "resolved"}), UPDATE,
     {"ticket_id": TICKET_ID, "status": "resolved"}),
    ("status-closed", event("status_change", data={"from": "resolved", "to": "closed", "reason": REASON}), ARCHIVE,
     {"ticket_id": TICKET_ID, "reason": "closed_by_customer"}),
    ("status-auto-closed",
     event("status_change", data={"to": "closed"}, actor_kind="system", actor_address=PROVIDER), ARCHIVE,
     {"ticket_id": TICKET_ID, "reason": "closed_automatically"}),
    ("priority-low", event("priority_change", data={"from": "high", "to": "low"}), UPDATE,
     {"ticket_id": TICKET_ID, "priority": "low"}),
    ("priority-medium", event("priority_change", data={"to": "medium"}), UPDATE,
     {"ticket_id": TICKET_ID, "priority": "normal"}),
    ("priority-high", event("priority_change", data={"to": "high"}), UPDATE,
     {"ticket_id": TICKET_ID, "priority": "high"}),
    ("priority-critical", event("priority_change", data={"to": "critical"}), UPDATE,
     {"ticket_id": TICKET_ID, "priority": "urgent"}),
    ("assignment", event("assignment_change", data={"from": PROVIDER_QUEUE, "to": SUPPORT_QUEUE, "reason": REASON}),
     UPDATE, {"ticket_id": TICKET_ID, "assigned_agent": "support"}),
    # An agent's name is private (inside the envelope): on chain only the queue shows.
    ("assignment-to-agent",
     event("assignment_change", data={"to": {"kind": "support", "name": "agent-jane"}}), UPDATE,
     {"ticket_id": TICKET_ID, "assigned_agent": "support"}),
    ("escalation", event("assignment_change", data={"to": SUPPORT_QUEUE, "escalation": True, "reason": REASON}),
     UPDATE, {"ticket_id": TICKET_ID, "assigned_agent": "support"}),
    ("attachment", event("attachment_added", data={"attachment_id": "a1"},
                         content={"filename": FILENAME, "sha256": ATTACHMENT_SHA}), UPDATE, {"ticket_id": TICKET_ID}),
    ("logs", event("logs_fetched", actor_kind="system", actor_address=PROVIDER,
                   content={"filename": FILENAME, "sha256": ATTACHMENT_SHA}), UPDATE, {"ticket_id": TICKET_ID}),
    ("linked", event("deployment_linked", data={"lease_id": LINKED_LEASE}), UPDATE, {"ticket_id": TICKET_ID}),
    ("unlinked", event("deployment_unlinked", data={"lease_id": LINKED_LEASE}), UPDATE, {"ticket_id": TICKET_ID}),
    ("sla-warning", event("sla_warning", actor_kind="system", actor_address=PROVIDER), UPDATE,
     {"ticket_id": TICKET_ID}),
    ("edited", event("ticket_edited", actor_kind="support", actor_address=PROVIDER,
                     data={"changes": {"subject": {"from": "Old", "to": "New"}}}), UPDATE, {"ticket_id": TICKET_ID}),
    ("sla-breached", event("sla_breached", actor_kind="system", actor_address=PROVIDER), UPDATE,
     {"ticket_id": TICKET_ID}),
    # The score and comment are private: on chain only the kind shows.
    ("satisfaction", event("satisfaction_rated", data={"rating": 4, "comment": "Thanks"},
                           content={"rating": 4, "comment": "Thanks"}), UPDATE, {"ticket_id": TICKET_ID}),
    # An erasure (privacy): when and why, in the envelope; on chain only the kind shows.
    ("erased", event("content_erased", actor_kind="support", actor_address=PROVIDER,
                     data={"basis": "request", "erased_at": "2026-12-06T13:00:00Z"}), UPDATE, {"ticket_id": TICKET_ID}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "message_type", "fields"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_event_maps_to_message(encrypt, facts, message_type, fields):
    message = message_for(facts, encrypt=encrypt)

    assert message["@type"] == message_type
    assert message["sender"] == facts.actor_address
    assert {
        k: v for k, v in message.items() if k not in {"@type", "sender", "payload", "public_metadata"}
    } == fields
    metadata = message["public_metadata"]
    assert metadata["ticket_id"] == TICKET_ID
    assert metadata["seq"] == str(facts.seq)
    assert metadata["event_kind"] == facts.kind
    assert metadata["actor_kind"] == facts.actor_kind
    assert all(isinstance(value, str) for value in metadata.values())
    # JSON-ready and stable under the ledger's canonical form.
    assert json.loads(canonical_json_bytes(message)) == message


def test_every_event_kind_is_in_the_table():
    kinds = {"ticket_created", "new_comment", "status_change", "priority_change", "assignment_change"}
    kinds |= {"attachment_added", "deployment_linked", "deployment_unlinked", "sla_warning", "sla_breached"}
    kinds |= {"logs_fetched", "ticket_edited", "satisfaction_rated", "content_erased"}
    assert set(MESSAGE_TABLE) == kinds
    assert {t[1].kind for t in TABLE} == kinds


def test_vocabulary_tables():
    assert PRIORITY_TO_CHAIN == {"low": "low", "medium": "normal", "high": "high", "critical": "urgent"}
    assert CATEGORY_TO_CHAIN == {
        "technical": "technical",
        "billing": "billing",
        "general": "other",
        "security": "security",
    }
    assert mapping.STATUS_TO_CHAIN == {
        "open": "open",
        "in_progress": "in_progress",
        "waiting_customer": "waiting_customer",
        "resolved": "resolved",
        "closed": "closed",
    }


@pytest.mark.parametrize(("portal", "chain"), sorted(CATEGORY_TO_CHAIN.items()))
def test_create_translates_category(encrypt, portal, chain):
    facts = event("ticket_created", seq=1, ticket=replace(TICKET, category=portal))
    assert message_for(facts, encrypt=encrypt)["category"] == chain


@pytest.mark.parametrize(("portal", "chain"), sorted(PRIORITY_TO_CHAIN.items()))
def test_create_translates_priority(encrypt, portal, chain):
    facts = event("ticket_created", seq=1, ticket=replace(TICKET, priority=portal))
    assert message_for(facts, encrypt=encrypt)["priority"] == chain


def test_create_carries_ticket_number_and_escalation_is_flagged(encrypt):
    created = message_for(event("ticket_created", seq=1), encrypt=encrypt)
    assert created["public_metadata"] == {
        "ticket_id": TICKET_ID,
        "seq": "1",
        "event_kind": "ticket_created",
        "actor_kind": "customer",
        "ticket_number": "SUP-000123",
    }
    escalation = message_for(
        event("assignment_change", data={"to": SUPPORT_QUEUE, "escalation": True}), encrypt=encrypt
    )
    assert escalation["public_metadata"]["escalation"] == "true"
    plain = message_for(event("assignment_change", data={"to": SUPPORT_QUEUE}), encrypt=encrypt)
    assert "escalation" not in plain["public_metadata"]


@pytest.mark.parametrize(
    ("facts", "message_type", "fields"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_no_private_text_outside_the_envelope(encrypt, keys, facts, message_type, fields):
    message = message_for(facts, encrypt=encrypt)
    payload = message["payload"]
    public = {k: v for k, v in message.items() if k != "payload"}
    public["payload"] = {k: v for k, v in payload.items() if k != "envelope"}
    public_json = json.dumps(public, ensure_ascii=False)
    envelope = base64.b64decode(payload["envelope"])
    for secret in PRIVATE_STRINGS:
        assert secret not in public_json
        assert secret.encode() not in envelope
    # ...and the support key finds the private facts inside.
    document = json.loads(envelopes.open_envelope(envelope, keys["support"][0]))
    assert document["ticket_id"] == TICKET_ID
    assert document["seq"] == facts.seq
    assert document["event_kind"] == facts.kind
    assert document["data"] == dict(facts.data)
    for key, value in facts.content.items():
        assert document["content"][key] == value


def test_created_envelope_holds_subject_and_description(encrypt, keys):
    message = message_for(event("ticket_created", seq=1), encrypt=encrypt)
    envelope = base64.b64decode(message["payload"]["envelope"])
    document = json.loads(envelopes.open_envelope(envelope, keys["customer"][0]))
    assert document["content"] == {"subject": SUBJECT, "description": DESCRIPTION}


def test_payload_hash_and_size_describe_the_envelope(encrypt):
    payload = message_for(event("new_comment", content={"text": COMMENT}), encrypt=encrypt)["payload"]
    envelope = base64.b64decode(payload["envelope"])
    assert payload["sha256"] == hashlib.sha256(envelope).hexdigest() == envelopes.envelope_digest(envelope)
    assert payload["size"] == len(envelope)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (event("new_comment"), ["customer", "provider", "support"]),
        (event("new_comment", is_internal=True), ["provider", "support"]),
        (event("attachment_added", is_internal=True), ["provider", "support"]),
        (event("logs_fetched"), ["provider", "support"]),
        (event("sla_warning"), ["provider", "support"]),
        (event("sla_breached"), ["customer", "provider", "support"]),
        (event("status_change", data={"to": "resolved"}), ["customer", "provider", "support"]),
    ],
)
def test_recipients_for(facts, expected):
    assert recipients_for(facts) == expected


@pytest.mark.parametrize(("label", "can_open"), [("customer", False), ("provider", True), ("support", True)])
def test_customer_cannot_open_an_internal_note(encrypt, keys, label, can_open):
    note = event(
        "new_comment", is_internal=True, actor_kind="provider", actor_address=PROVIDER, content={"text": NOTE}
    )
    message = message_for(note, encrypt=encrypt)
    envelope = base64.b64decode(message["payload"]["envelope"])
    assert envelopes.recipients_of(envelope) == ["provider", "support"]
    if can_open:
        assert NOTE in envelopes.open_envelope(envelope, keys[label][0]).decode()
    else:
        with pytest.raises(envelopes.EnvelopeError):
            envelopes.open_envelope(envelope, keys[label][0])


def test_encrypt_callback_receives_plaintext_and_labels():
    calls = []

    def fake_encrypt(plaintext: bytes, labels: list[str]) -> bytes:
        calls.append((plaintext, labels))
        return b"ENVELOPE"

    facts = event("new_comment", content={"text": COMMENT})
    message = message_for(facts, encrypt=fake_encrypt)
    assert message["payload"] == {
        "envelope": base64.b64encode(b"ENVELOPE").decode(),
        "sha256": hashlib.sha256(b"ENVELOPE").hexdigest(),
        "size": 8,
    }
    assert calls == [
        (envelopes.payload_for(content=mapping.private_document(facts)), ["customer", "provider", "support"])
    ]


def test_relayer_address_is_the_sender(encrypt):
    facts = event("sla_breached", actor_kind="system", actor_address="")
    assert message_for(facts, encrypt=encrypt, relayer_address="ve1relayer")["sender"] == "ve1relayer"
    assert (
        message_for(event("new_comment"), encrypt=encrypt, relayer_address="ve1relayer")["sender"]
        == "ve1relayer"
    )


@pytest.mark.parametrize(
    ("facts", "match"),
    [
        (event("reaction_added"), "event kind"),
        (event("status_change", data={"to": "archived"}), "status"),
        (event("status_change"), "data\\['to'\\]"),
        (event("priority_change", data={"to": "whenever"}), "priority"),
        (event("assignment_change", data={"to": {"kind": "nobody", "name": None}}), "assignee"),
        (event("ticket_created", seq=1, ticket=replace(TICKET, category="sales")), "category"),
        (event("ticket_created", seq=1, ticket=replace(TICKET, priority="urgent")), "priority"),
        (event("status_change", data={"to": "closed"}, actor_kind="robot"), "actor kind"),
        (event("sla_breached", actor_kind="system", actor_address=""), "sender"),
        (event("new_comment", seq=0), "seq"),
    ],
)
def test_unmappable_events_are_refused(encrypt, facts, match):
    with pytest.raises(MappingError, match=match):
        message_for(facts, encrypt=encrypt)
