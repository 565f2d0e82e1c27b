"""From database rows to sealed x/support messages: the adapter between the ORM and `chain.mapping`.

`event_facts` turns `TicketEvent` rows (with their ticket, comment, attachment) into `mapping.EventFacts`;
`seal_messages` encrypts each event's private document to its recipients and returns the message to anchor.
Verification runs the same adapter over the database as it is now and compares with what was anchored, so
the two must agree on every byte of the private document: everything read here is immutable once written
(comment bodies, attachment hashes, event data, the ticket's subject and description).

Content (the private text, inside the envelope):
  ticket_created      subject, description (added by `mapping.private_document`)
  new_comment         comment id and text
  attachment_added,
  logs_fetched        attachment id, filename, sha256
  status_change,
  priority_change     from, to
  assignment_change   from, to (assignee kinds), reason
  deployment_linked,
  deployment_unlinked the other deployment's lease ID
  satisfaction_rated  rating, comment

Recipients: the customer (the `CustomerIdentity` of the ticket's `customer_address`), the provider
(`ProviderAccount.envelope_public_key`) and support (`chain.keys.support_keypair`); internal events go to
provider and support only (`mapping.recipients_for`). A customer or provider without a registered key is
left out of the envelope (it cannot be sealed to a key that does not exist) and the public metadata says
so — `customer_key: absent` / `provider_key: absent` — so that support knows to re-share the content once
a key is registered. Support is always a recipient, so no envelope is ever unreadable to everyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain import envelopes, keys, mapping, shredding
from chain.mapping import EventFacts, TicketFacts
from chain.models import idempotency_key_for
from core.formats import iso_timestamp
from providers.models import CustomerIdentity
from tickets.models import Comment, Ticket, TicketEvent, format_ticket_number
from tickets.presenter import Audience, Related, present_event
from tickets.selectors import event_related

Kind = TicketEvent.Kind
ATTACHMENT_KINDS = frozenset({Kind.ATTACHMENT_ADDED, Kind.LOGS_FETCHED})
LINK_KINDS = frozenset({Kind.DEPLOYMENT_LINKED, Kind.DEPLOYMENT_UNLINKED})
CHANGE_KINDS = frozenset({Kind.STATUS_CHANGE, Kind.PRIORITY_CHANGE})
# Kinds whose private content is some of their presented keys, as they are.
CONTENT_KEYS: dict[str, tuple[str, ...]] = {
    Kind.TICKET_EDITED: ("changes",),
    Kind.SATISFACTION_RATED: ("rating", "comment"),
}
ABSENT = "absent"
# What the adapter reads (the drain loads hundreds of events per batch: no wide ticket columns it ignores).
EVENT_FIELDS = (
    "id",
    "ticket_id",
    "seq",
    "kind",
    "is_internal",
    "actor_kind",
    "data",
    "created_at",
    "ticket__id",
    "ticket__number",
    "ticket__customer_address",
    "ticket__category",
    "ticket__priority",
    "ticket__status",
    "ticket__subject",
    "ticket__description",
    "ticket__deployment__id",
    "ticket__deployment__lease_id",
    "ticket__provider__id",
    "ticket__provider__address",
    "ticket__provider__envelope_public_key",
    # What the event presenter reads.
    "actor_label",
    "public_seq",
)


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """An event's x/support message, ready for a backend, with the idempotency key it is anchored under."""

    event_id: int
    ticket_id: str
    seq: int
    idempotency_key: str
    message: dict[str, Any]


def events_for_anchoring(event_ids: Iterable[int]) -> list[TicketEvent]:
    """The events with everything the adapter reads about their ticket, in one query."""
    return list(
        TicketEvent.objects.filter(pk__in=list(event_ids))
        .select_related("ticket__deployment", "ticket__provider")
        .only(*EVENT_FIELDS)
        .order_by("ticket_id", "seq")
    )


def _ticket_facts(ticket: Ticket, event: TicketEvent) -> TicketFacts:
    # The creation message carries the category and priority the ticket was opened with (the event's
    # data), not whatever they are when the drain runs.
    created = event.data if event.kind == Kind.TICKET_CREATED else {}
    return TicketFacts(
        number=format_ticket_number(ticket.number),
        lease_id=ticket.deployment.lease_id,
        customer_address=ticket.customer_address,
        provider_address=ticket.provider.address,
        category=created.get("category", ticket.category),
        priority=created.get("priority", ticket.priority),
        status=created.get("status", ticket.status),
        # As opened (a later edit is its own event); tickets opened before creation events carried them
        # fall back to the current text.
        subject=created.get("subject", ticket.subject),
        description=created.get("description", ticket.description),
    )


def _content(event: TicketEvent, data: Mapping[str, Any]) -> dict[str, Any]:
    """The private facts of the event's presented `data` that verification names in its findings."""
    if event.kind == Kind.NEW_COMMENT:
        return {"comment_id": data.get("id"), "text": data.get("content")}
    if event.kind in ATTACHMENT_KINDS:
        return {
            "attachment_id": data.get("id"),
            "filename": data.get("filename"),
            "sha256": data.get("sha256"),
        }
    if event.kind in CHANGE_KINDS or event.kind == Kind.ASSIGNMENT_CHANGE:
        content = {"from": data.get("from"), "to": data.get("to")}
        if event.kind == Kind.ASSIGNMENT_CHANGE:
            content["reason"] = data.get("reason", "")
        return content
    if event.kind in LINK_KINDS:
        return {"deployment_id": data.get("deployment_id")}
    return {key: data.get(key) for key in CONTENT_KEYS.get(event.kind, ())}


def _actor_address(event: TicketEvent, ticket: Ticket, comment: Comment | None) -> str:
    # Only customers and providers have chain addresses; derived from what never changes on the ticket.
    if event.actor_kind == "customer":
        return (comment.author_address if comment else "") or ticket.customer_address
    if event.actor_kind == "provider":
        return ticket.provider.address
    return ""


def _presented(event: TicketEvent, related: Related) -> tuple[dict[str, Any], bool]:
    """The event as the least privileged party who can open its envelope reads it, and whether that party
    is provider and support only (an internal event): the presenter decides for the chain as everywhere."""
    public = present_event(event, Audience.PUBLIC, related)
    if public is not None:
        return public, False
    staff = present_event(event, Audience.STAFF, related)
    if staff is None:
        raise mapping.MappingError(f"event kind {event.kind!r} has no description")
    return staff, True


def event_facts(events: Sequence[TicketEvent]) -> dict[int, EventFacts]:
    """`EventFacts` for each event (keyed by event id); comments and attachments in two queries."""
    related = event_related(events)
    facts = {}
    for event in events:
        ticket = event.ticket
        presented, internal = _presented(event, related)
        data = presented["data"]
        comment = related.comments.get(str(data.get("id"))) if event.kind == Kind.NEW_COMMENT else None
        facts[event.pk] = EventFacts(
            ticket_id=str(ticket.pk),
            seq=event.seq,
            kind=event.kind,
            is_internal=internal,
            actor_address=_actor_address(event, ticket, comment),
            actor_kind=event.actor_kind,
            ticket=_ticket_facts(ticket, event),
            created_at=iso_timestamp(event.created_at),
            data=data,
            content=_content(event, data),
        )
    return facts


def recipient_keys(tickets: Iterable[Ticket]) -> dict[Any, dict[str, bytes | None]]:
    """Per ticket id: each party's X25519 public key, None where the party has none registered."""
    tickets = list({ticket.pk: ticket for ticket in tickets}.values())
    customer_keys = dict(
        CustomerIdentity.objects.filter(
            address__in={ticket.customer_address for ticket in tickets}
        ).values_list("address", "envelope_public_key")
    )
    support_key = keys.support_keypair().public_key
    return {
        ticket.pk: {
            "customer": keys.public_key_or_none(customer_keys.get(ticket.customer_address, "")),
            "provider": keys.public_key_or_none(ticket.provider.envelope_public_key),
            "support": support_key,
        }
        for ticket in tickets
    }


def seal_message(
    facts: EventFacts,
    party_keys: Mapping[str, bytes | None],
    *,
    relayer_address: str,
    shred_key: bytes | None = None,
) -> dict[str, Any]:
    """The x/support message for one event, its envelope sealed to every intended party that has a key
    (and, given a `shred_key`, shreddable: `chain.envelopes` version 2)."""
    absent: list[str] = []

    def encrypt(plaintext: bytes, labels: list[str]) -> bytes:
        recipients = {}
        for label in labels:
            public_key = party_keys.get(label)
            if public_key is None:
                absent.append(label)
            else:
                recipients[label] = public_key
        return envelopes.seal(plaintext, recipients, shred_key=shred_key)

    message = mapping.message_for(facts, encrypt=encrypt, relayer_address=relayer_address)
    for label in absent:
        message["public_metadata"][f"{label}_key"] = ABSENT
    return message


def seal_messages(events: Sequence[TicketEvent]) -> list[SealedMessage | mapping.MappingError]:
    """Each event's sealed message (or the MappingError that stops it), in the order given."""
    facts = event_facts(events)
    party_keys = recipient_keys(event.ticket for event in events)
    relayer = keys.relayer_address()
    shred_keys = shredding.shred_keys_for_sealing(event.pk for event in events)
    sealed: list[SealedMessage | mapping.MappingError] = []
    for event in events:
        try:
            message = seal_message(
                facts[event.pk],
                party_keys[event.ticket_id],
                relayer_address=relayer,
                shred_key=shred_keys[event.pk],
            )
        except mapping.MappingError as error:
            sealed.append(error)
            continue
        sealed.append(
            SealedMessage(
                event_id=event.pk,
                ticket_id=str(event.ticket_id),
                seq=event.seq,
                idempotency_key=idempotency_key_for(ticket_id=event.ticket_id, seq=event.seq),
                message=message,
            )
        )
    return sealed
