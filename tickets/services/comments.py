"""Comment writes: replies and internal notes, with their attachments and the automatic moves they cause."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden
from core.parties import Party, PartyKind
from core.text import clean_text
from tickets import states
from tickets.models import TEXT_MAX_LENGTH, Attachment, Comment, Ticket, TicketEvent
from tickets.services import clock, recording
from tickets.services.attachments import attach_uploads


@dataclass(frozen=True)
class CommentResult:
    comment: Comment
    attachments: list[Attachment]
    status_event: TicketEvent | None


def new_comment(
    ticket: Ticket, *, actor: Party, body: str, is_internal: bool, at: datetime.datetime
) -> Comment:
    """An unsaved comment by `actor` on a locked ticket (its body already cleaned)."""
    return Comment(
        ticket=ticket,
        **actor.snapshot("author"),
        body=body,
        is_internal=is_internal,
        created_at=at,
    )


def comment_event(comment: Comment, *, actor: Party) -> recording.NewEvent:
    """The `new_comment` event of a saved comment, for `recording.record_events`."""
    return recording.NewEvent(
        comment.ticket,
        recording.Kind.NEW_COMMENT,
        actor,
        {
            "comment_id": str(comment.id),
            "is_internal": comment.is_internal,
            "author_kind": comment.author_kind,
        },
        is_internal=comment.is_internal,
        at=comment.created_at,
    )


@transaction.atomic
def comment_add(
    *,
    actor: Party,
    ticket_id: object,
    body: str,
    is_internal: bool = False,
    attachment_ids: Sequence[object] = (),
) -> CommentResult:
    """Add a reply (or, for provider and support, an internal note) to a ticket's thread.

    A customer's reply to a ticket waiting on them or resolved moves it back to in_progress; the first
    public reply by provider or support is the ticket's first response.
    """
    body = clean_text("content", body, max_length=TEXT_MAX_LENGTH)
    ticket = recording.lock_ticket(actor, ticket_id)
    if is_internal and not actor.sees_internal:
        raise Forbidden(
            "Customers cannot write internal notes.", fields={"is_internal": ["Not allowed for customers."]}
        )
    recording.require_not_closed(ticket)
    now = timezone.now()
    comment = new_comment(ticket, actor=actor, body=body, is_internal=is_internal, at=now)
    comment.save(force_insert=True)
    recording.record_events([comment_event(comment, actor=actor)])
    attachments = attach_uploads(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=comment, is_internal=is_internal, at=now
    )
    fields = ["last_activity_at"]
    ticket.last_activity_at = now
    status_event = None
    reopened_status = states.AFTER_CUSTOMER_REPLY.get(states.Status(ticket.status))
    if actor.is_customer and reopened_status is not None:
        status_event = recording.apply_status(
            ticket,
            actor=actor,
            role=states.Role.SYSTEM,
            target=reopened_status,
            reason="customer_reply",
            at=now,
        )
        fields += recording.STATUS_FIELDS
    if (
        actor.kind in (PartyKind.PROVIDER, PartyKind.SUPPORT)
        and not is_internal
        and ticket.first_response_at is None
    ):
        ticket.first_response_at = now
        clock.clock_first_response(ticket, at=now)
        fields += ["first_response_at", *clock.CLOCK_FIELDS]
    recording.save_ticket(ticket, *fields, at=now)
    return CommentResult(comment=comment, attachments=attachments, status_event=status_event)
