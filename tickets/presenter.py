"""One description per event: what a party may read of a stored ticket event, on every surface.

REST (`/tickets/{id}/events` and the detail's `history`), WebSocket frames (replay and live), portal pages,
emails, webhooks and the chain adapter all call `present_event`, so one event reads the same everywhere.

Each event kind declares its payload (`SHAPES`): the keys every audience gets and the keys only provider and
support get. The payload is cut to the declared keys of the reader's audience, and every value is built
from named facts (never by passing the stored `data` through), so a fact that is not declared for a party
cannot reach it — a customer never gets staff user ids, internal fields or internal events.

Pure: no queries. Rows that events refer to (comments, attachments) come in a `Related`, fetched for a
batch of events by `tickets.selectors.event_related`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.urls import reverse

from core.formats import iso_timestamp
from core.parties import Party
from tickets.models import Attachment, Comment, TicketEvent

Kind = TicketEvent.Kind


class Audience(StrEnum):
    PUBLIC = "public"  # the customer: public events only, numbered by `public_seq`
    STAFF = "staff"  # provider and support: every event, numbered by `seq`


def audience_of(party: Party) -> Audience:
    return Audience.STAFF if party.sees_internal else Audience.PUBLIC


@dataclass(frozen=True)
class Related:
    """The comments and attachments a batch of events refers to."""

    comments: Mapping[str, Comment] = field(default_factory=dict)
    attachments: Mapping[str, Attachment] = field(default_factory=dict)
    attachments_by_comment: Mapping[uuid.UUID, Sequence[Attachment]] = field(default_factory=dict)

    @classmethod
    def of(cls, comments: Iterable[Comment], attachments: Iterable[Attachment]) -> Related:
        by_comment: dict[uuid.UUID, list[Attachment]] = {}
        attachment_rows = list(attachments)
        for attachment in attachment_rows:
            if attachment.comment_id is not None:
                by_comment.setdefault(attachment.comment_id, []).append(attachment)
        return cls(
            comments={str(comment.id): comment for comment in comments},
            attachments={str(attachment.id): attachment for attachment in attachment_rows},
            attachments_by_comment=by_comment,
        )


# --------------------------------------------------------------------------------------------------------
# Rows the API also shows on their own (a comment in a thread, an attachment in a list).

ATTACHMENT_FIELDS = (
    "id",
    "filename",
    "content_type",
    "size",
    "url",
    "uploaded_at",
    "sha256",
    "ticket_id",
    "comment_id",
    "is_internal",
)
COMMENT_FIELDS = (
    "id",
    "ticket_id",
    "author",
    "author_type",
    "content",
    "message",
    "created_at",
    "attachments",
    "is_internal",
)


def present_attachment(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        # An erased file has no body any more (its key is destroyed): its description stays, with no link.
        "url": None if attachment.erased_at else reverse("api-attachment-detail", args=[attachment.id]),
        "uploaded_at": iso_timestamp(attachment.uploaded_at),
        "sha256": attachment.sha256,
        "ticket_id": str(attachment.ticket_id) if attachment.ticket_id else None,
        "comment_id": str(attachment.comment_id) if attachment.comment_id else None,
        "is_internal": attachment.is_internal,
    }


def present_comment(
    comment: Comment, attachments: Iterable[Attachment], audience: Audience = Audience.STAFF
) -> dict[str, Any]:
    """A comment with the attachments posted with it that the audience may see."""
    return {
        "id": str(comment.id),
        "ticket_id": str(comment.ticket_id),
        "author": comment.author_label,
        "author_type": comment.author_kind,
        "content": comment.body,
        "message": comment.body,
        "created_at": iso_timestamp(comment.created_at),
        "attachments": [
            present_attachment(a) for a in attachments if audience is Audience.STAFF or not a.is_internal
        ],
        "is_internal": comment.is_internal,
    }


# --------------------------------------------------------------------------------------------------------
# Event payloads.


@dataclass(frozen=True)
class EventShape:
    """The payload of one event kind: keys for every audience, keys for provider and support only."""

    fields: tuple[str, ...]
    staff_fields: tuple[str, ...] = ()
    always_internal: bool = False  # never shown to customers, whatever the event row says

    def keys_for(self, audience: Audience) -> tuple[str, ...]:
        return self.fields + self.staff_fields if audience is Audience.STAFF else self.fields


# An assignee as each audience sees it: which queue, and who by name; user ids only for staff.
ASSIGNEE_FIELDS = ("kind", "name")
ASSIGNEE_STAFF_FIELDS = ("user_id",)
SLA_TARGETS = ("first_response", "resolution")
EDITABLE_FIELDS = ("subject", "description", "category")

SHAPES: dict[str, EventShape] = {
    Kind.TICKET_CREATED: EventShape(
        ("number", "deployment_id", "category", "priority", "status", "subject", "description")
    ),
    Kind.NEW_COMMENT: EventShape(COMMENT_FIELDS),
    Kind.STATUS_CHANGE: EventShape(("from", "to", "reason")),
    Kind.PRIORITY_CHANGE: EventShape(("from", "to")),
    # `reason`: for a customer only a public one (their own, the SLA's); a provider's or support's reason is
    # internal and the customer reads `customer_message` instead, if one was written (issue 29).
    Kind.ASSIGNMENT_CHANGE: EventShape(
        ("from", "to", "reason", "escalation", "customer_message"), staff_fields=("reason_internal",)
    ),
    Kind.ATTACHMENT_ADDED: EventShape(ATTACHMENT_FIELDS),
    Kind.LOGS_FETCHED: EventShape((*ATTACHMENT_FIELDS, "truncated"), always_internal=True),
    Kind.DEPLOYMENT_LINKED: EventShape(("deployment_id",)),
    Kind.DEPLOYMENT_UNLINKED: EventShape(("deployment_id",)),
    # Written by the SLA sweep: a warning (80 % of a target) is for provider and support; a breach is public.
    Kind.SLA_WARNING: EventShape(("target", "due_at", "elapsed_percent"), always_internal=True),
    Kind.SLA_BREACHED: EventShape(("target", "due_at")),
    # The fields changed, each with its old and new value.
    Kind.TICKET_EDITED: EventShape(("changes",)),
    # The customer's rating of a resolved ticket (1 to 5) and their comment: public, like the rating itself.
    Kind.SATISFACTION_RATED: EventShape(("rating", "comment")),
    # Content erased (privacy erasure or retention): when and why for everyone; the request's reference
    # and which events were erased (by `seq`, which customers do not use) for provider and support.
    Kind.CONTENT_ERASED: EventShape(("erased_at", "basis"), staff_fields=("reference", "events")),
}

# The envelope of a presented event: the same keys on every surface.
EVENT_FIELDS = ("seq", "type", "ticket_id", "actor", "actor_type", "data", "timestamp")


def _assignee(stored: Any, audience: Audience) -> dict[str, Any]:
    stored = stored if isinstance(stored, Mapping) else {"kind": stored}
    assignee = {"kind": stored.get("kind"), "name": stored.get("name"), "user_id": stored.get("user_id")}
    keys = ASSIGNEE_FIELDS + ASSIGNEE_STAFF_FIELDS if audience is Audience.STAFF else ASSIGNEE_FIELDS
    return {key: assignee[key] for key in keys}


def _attachment_facts(event: TicketEvent, related: Related) -> dict[str, Any]:
    attachment = related.attachments.get(str(event.data.get("attachment_id")))
    if attachment is not None:
        return present_attachment(attachment)
    # The row is gone (an upload expired before it was attached cannot happen; a purge could): the facts
    # recorded on the event still describe it.
    data = event.data
    return {
        "id": data.get("attachment_id"),
        "filename": data.get("filename"),
        "content_type": data.get("content_type"),
        "size": data.get("size"),
        "url": None,
        "uploaded_at": None,
        "sha256": data.get("sha256"),
        "ticket_id": str(event.ticket_id),
        "comment_id": data.get("comment_id"),
        "is_internal": event.is_internal,
    }


def _comment_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    comment = related.comments.get(str(event.data.get("comment_id")))
    if comment is None:
        return {"id": event.data.get("comment_id"), "ticket_id": str(event.ticket_id)}
    return present_comment(comment, related.attachments_by_comment.get(comment.id, ()), audience)


def _attachment_event_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del audience
    return _attachment_facts(event, related)


def _logs_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del audience
    return {**_attachment_facts(event, related), "truncated": bool(event.data.get("truncated"))}


def _assignment_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del related
    data = event.data or {}
    # Events from before the rule lack the key: their reasons were published, and stay as anchored.
    internal = bool(data.get("reason_internal"))
    return {
        "from": _assignee(data.get("from"), audience),
        "to": _assignee(data.get("to"), audience),
        "reason": "" if internal and audience is Audience.PUBLIC else data.get("reason", ""),
        "escalation": bool(data.get("escalation")),
        "customer_message": data.get("customer_message"),
        "reason_internal": internal,
    }


def _status_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del audience, related
    return {
        "from": event.data.get("from"),
        "to": event.data.get("to"),
        "reason": event.data.get("reason", ""),
    }


def _edit_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del audience, related
    changes = event.data.get("changes") or {}
    return {
        "changes": {
            field: {"from": change.get("from"), "to": change.get("to")}
            for field, change in changes.items()
            if field in EDITABLE_FIELDS and isinstance(change, Mapping)
        }
    }


def _declared_facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    del related
    data = event.data or {}
    return {key: data.get(key) for key in SHAPES[event.kind].keys_for(audience)}


# Kinds whose payload is built from rows or reshaped; every other kind's is its declared keys' values.
_BUILDERS: dict[str, Callable[[TicketEvent, Audience, Related], dict[str, Any]]] = {
    Kind.NEW_COMMENT: _comment_facts,
    Kind.ATTACHMENT_ADDED: _attachment_event_facts,
    Kind.LOGS_FETCHED: _logs_facts,
    Kind.ASSIGNMENT_CHANGE: _assignment_facts,
    Kind.STATUS_CHANGE: _status_facts,
    Kind.TICKET_EDITED: _edit_facts,
}


def _facts(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any]:
    """Everything a payload may hold for this kind; `present_event` keeps the declared keys only."""
    return _BUILDERS.get(event.kind, _declared_facts)(event, audience, related)


def present_event(event: TicketEvent, audience: Audience, related: Related) -> dict[str, Any] | None:
    """The event as `audience` may read it, or None when it may not see it at all."""
    shape = SHAPES.get(event.kind)
    if shape is None:
        return None  # a kind this presenter does not describe is shown to no one
    if audience is Audience.PUBLIC and (event.is_internal or shape.always_internal):
        return None
    facts = _facts(event, audience, related)
    return {
        "seq": event.seq if audience is Audience.STAFF else event.public_seq,
        "type": event.kind,
        "ticket_id": str(event.ticket_id),
        "actor": event.actor_label,
        "actor_type": event.actor_kind,
        "data": {key: facts.get(key) for key in shape.keys_for(audience)},
        "timestamp": iso_timestamp(event.created_at),
    }


def present_events(
    events: Iterable[TicketEvent], audience: Audience, related: Related
) -> list[dict[str, Any]]:
    """The events the audience may see, presented, in the order given."""
    presented = (present_event(event, audience, related) for event in events)
    return [item for item in presented if item is not None]
