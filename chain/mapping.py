"""From a ticket event to the VirtEngine `x/support` message that anchors it on the chain.

Pure: the caller turns a `TicketEvent` row into `EventFacts` and passes an `encrypt` callback
(plaintext, recipient labels → envelope bytes, normally `chain.envelopes.seal` over the parties' keys),
so the whole table is testable without a database or keys on disk.

What is public and what is not. Public fields carry the portal→chain vocabulary (category, priority,
status), the sender address, the deployment's lease ID (already public on chain), the assignee kind and
`public_metadata` (a string→string map: ticket id, event seq, event kind, actor kind; the ticket number on
creation; `escalation` on an escalation). Everything else — subject, description, comment text, reasons,
filenames, attachment hashes, the event's `data` — is inside the encrypted `payload`, whose envelope is
sealed to customer, provider and support, or to provider and support only for internal events.

Event `data` keys read here (the event's contract with `tickets.services`):
  status_change / priority_change: `to` (portal value); assignment_change: `to` (the assignee as the event
  presenter describes it: `{"kind": "provider" | "support", "name", …}`) and `escalation` (bool).

Beyond the upstream protos: `public_metadata` is also set on MsgAddSupportResponse and
MsgArchiveSupportRequest, and MsgArchiveSupportRequest carries a `payload`, so that every event is
anchored with its seq and its private data; a strict protobuf backend must drop or map those fields.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.envelopes import payload_for

_PREFIX = "/virtengine.support.v1."
MSG_CREATE_SUPPORT_REQUEST = _PREFIX + "MsgCreateSupportRequest"
MSG_UPDATE_SUPPORT_REQUEST = _PREFIX + "MsgUpdateSupportRequest"
MSG_ADD_SUPPORT_RESPONSE = _PREFIX + "MsgAddSupportResponse"
MSG_ARCHIVE_SUPPORT_REQUEST = _PREFIX + "MsgArchiveSupportRequest"

# Portal vocabulary → x/support vocabulary. One table each; a value missing here is a MappingError,
# never a silent pass-through.
PRIORITY_TO_CHAIN: dict[str, str] = {"low": "low", "medium": "normal", "high": "high", "critical": "urgent"}
CATEGORY_TO_CHAIN: dict[str, str] = {
    "technical": "technical",
    "billing": "billing",
    "general": "other",
    "security": "security",
}
STATUS_TO_CHAIN: dict[str, str] = {
    "open": "open",
    "in_progress": "in_progress",
    "waiting_customer": "waiting_customer",
    "resolved": "resolved",
    "closed": "closed",
}
# A move to one of these statuses archives the request on chain instead of updating its status.
ARCHIVING_STATUSES = frozenset({"closed"})
# The archive reason is a fixed code by who closed the ticket: a free-text reason is private.
ARCHIVE_REASONS: dict[str, str] = {
    "customer": "closed_by_customer",
    "provider": "closed_by_provider",
    "support": "closed_by_support",
    "system": "closed_automatically",
}
ASSIGNEE_KINDS = frozenset({"provider", "support"})

# Event kind → message type. status_change is MsgUpdateSupportRequest except to an archiving status
# (see `message_type_for`).
MESSAGE_TABLE: dict[str, str] = {
    "ticket_created": MSG_CREATE_SUPPORT_REQUEST,
    "new_comment": MSG_ADD_SUPPORT_RESPONSE,
    "status_change": MSG_UPDATE_SUPPORT_REQUEST,
    "priority_change": MSG_UPDATE_SUPPORT_REQUEST,
    "assignment_change": MSG_UPDATE_SUPPORT_REQUEST,
    "attachment_added": MSG_UPDATE_SUPPORT_REQUEST,
    "logs_fetched": MSG_UPDATE_SUPPORT_REQUEST,
    "deployment_linked": MSG_UPDATE_SUPPORT_REQUEST,
    "deployment_unlinked": MSG_UPDATE_SUPPORT_REQUEST,
    "sla_warning": MSG_UPDATE_SUPPORT_REQUEST,
    "sla_breached": MSG_UPDATE_SUPPORT_REQUEST,
    "ticket_edited": MSG_UPDATE_SUPPORT_REQUEST,
    # The customer's rating: its score and comment travel in the envelope only. A ticket may be rated once
    # closed (archived on chain) too; the local and CometBFT backends anchor it like any update.
    "satisfaction_rated": MSG_UPDATE_SUPPORT_REQUEST,
    # A person's content (or an expired ticket's) was erased: when, why; the erased events' envelopes can no
    # longer be opened (their shred keys are destroyed).
    "content_erased": MSG_UPDATE_SUPPORT_REQUEST,
}

ALL_RECIPIENTS = ("customer", "provider", "support")
INTERNAL_RECIPIENTS = ("provider", "support")
# Fetched deployment logs and SLA warnings are provider+support material whatever the event row says.
ALWAYS_INTERNAL_KINDS = frozenset({"logs_fetched", "sla_warning"})

PRIVATE_DOCUMENT_VERSION = 1

Encrypt = Callable[[bytes, list[str]], bytes]
"""(plaintext, recipient labels) → envelope bytes."""

__all__ = [
    "CATEGORY_TO_CHAIN",
    "MESSAGE_TABLE",
    "PRIORITY_TO_CHAIN",
    "STATUS_TO_CHAIN",
    "Encrypt",
    "EventFacts",
    "MappingError",
    "TicketFacts",
    "message_for",
    "message_type_for",
    "payload_of",
    "private_document",
    "recipients_for",
]


class MappingError(ValueError):
    """The event cannot be expressed as an x/support message (unknown kind, value or missing data)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketFacts:
    """The ticket as the event sees it. `subject` and `description` are private."""

    number: str  # "SUP-000123"
    lease_id: str  # the deployment: owner/dseq/gseq/oseq
    customer_address: str
    provider_address: str
    category: str
    priority: str
    status: str
    subject: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """One ticket event, detached from the ORM. `content` is the private text for the envelope
    (comment text, subject/description, attachment names and hashes, reasons)."""

    ticket_id: str
    seq: int
    kind: str
    is_internal: bool
    actor_address: str
    actor_kind: str  # customer | provider | support | system
    ticket: TicketFacts
    created_at: str  # ISO-8601 UTC
    data: Mapping[str, Any] = field(default_factory=dict)
    content: Mapping[str, Any] = field(default_factory=dict)


def recipients_for(event: EventFacts) -> list[str]:
    """Who can open the event's envelope: internal events exclude the customer."""
    if event.is_internal or event.kind in ALWAYS_INTERNAL_KINDS:
        return list(INTERNAL_RECIPIENTS)
    return list(ALL_RECIPIENTS)


def _lookup(table: Mapping[str, str], value: object, what: str) -> str:
    if not isinstance(value, str) or value not in table:
        raise MappingError(f"unknown {what} {value!r}")
    return table[value]


def _data_to(event: EventFacts) -> object:
    if "to" not in event.data:
        raise MappingError(f"{event.kind} event {event.ticket_id}#{event.seq} has no data['to']")
    return event.data["to"]


def message_type_for(event: EventFacts) -> str:
    """The x/support message type for an event (MESSAGE_TABLE, with the archive exception)."""
    message_type = _lookup(MESSAGE_TABLE, event.kind, "event kind")
    if event.kind == "status_change" and _data_to(event) in ARCHIVING_STATUSES:
        return MSG_ARCHIVE_SUPPORT_REQUEST
    return message_type


def private_document(event: EventFacts) -> dict[str, Any]:
    """What the envelope holds: the event's full facts, so that the database can be checked against it."""
    content = dict(event.content)
    if event.kind == "ticket_created":
        content = {"subject": event.ticket.subject, "description": event.ticket.description, **content}
    return {
        "v": PRIVATE_DOCUMENT_VERSION,
        "ticket_id": event.ticket_id,
        "seq": event.seq,
        "event_kind": event.kind,
        "created_at": event.created_at,
        "actor": {"kind": event.actor_kind, "address": event.actor_address},
        "data": dict(event.data),
        "content": content,
    }


def payload_of(envelope: bytes) -> dict[str, Any]:
    """The message's `payload`: the envelope (base64) with its SHA-256 and size, as the chain stores it."""
    return {
        "envelope": base64.b64encode(envelope).decode("ascii"),
        "sha256": hashlib.sha256(envelope).hexdigest(),
        "size": len(envelope),
    }


def _public_metadata(event: EventFacts) -> dict[str, str]:
    # map<string, string> on chain: every value is a string.
    return {
        "ticket_id": event.ticket_id,
        "seq": str(event.seq),
        "event_kind": event.kind,
        "actor_kind": event.actor_kind,
    }


def message_for(event: EventFacts, *, encrypt: Encrypt, relayer_address: str = "") -> dict[str, Any]:
    """The x/support message (a JSON-ready dict with `@type`) that anchors `event`.

    `sender` is `relayer_address` when given (a chain node only accepts messages signed by the sender, so
    a real backend relays everything from the service's own account), else the actor's address.
    """
    if not isinstance(event.seq, int) or isinstance(event.seq, bool) or event.seq < 1:
        raise MappingError(f"event seq must be a positive integer, got {event.seq!r}")
    message_type = message_type_for(event)
    sender = relayer_address or event.actor_address
    if not sender:
        raise MappingError(f"event {event.ticket_id}#{event.seq} has no sender (system actor and no relayer)")
    metadata = _public_metadata(event)
    fields: dict[str, Any] = {}
    if message_type == MSG_CREATE_SUPPORT_REQUEST:
        fields = {
            "category": _lookup(CATEGORY_TO_CHAIN, event.ticket.category, "category"),
            "priority": _lookup(PRIORITY_TO_CHAIN, event.ticket.priority, "priority"),
            "related_entity": {"type": "deployment", "id": event.ticket.lease_id},
        }
        metadata["ticket_number"] = event.ticket.number
    else:
        fields["ticket_id"] = event.ticket_id
    if message_type == MSG_ARCHIVE_SUPPORT_REQUEST:
        fields["reason"] = _lookup(ARCHIVE_REASONS, event.actor_kind, "actor kind")
    elif event.kind == "status_change":
        fields["status"] = _lookup(STATUS_TO_CHAIN, _data_to(event), "status")
    elif event.kind == "priority_change":
        fields["priority"] = _lookup(PRIORITY_TO_CHAIN, _data_to(event), "priority")
    elif event.kind == "assignment_change":
        assignee = _data_to(event)
        assignee_kind = assignee.get("kind") if isinstance(assignee, Mapping) else None
        if assignee_kind not in ASSIGNEE_KINDS:
            raise MappingError(f"unknown assignee {assignee!r}")
        # The queue only: agents have no chain address, and their names are not public.
        fields["assigned_agent"] = assignee_kind
        if event.data.get("escalation"):
            metadata["escalation"] = "true"
    envelope = encrypt(payload_for(content=private_document(event)), recipients_for(event))
    return {
        "@type": message_type,
        "sender": sender,
        **fields,
        "payload": payload_of(envelope),
        "public_metadata": metadata,
    }
