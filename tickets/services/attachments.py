"""Attachment writes: storing an upload, attaching uploads to a ticket (with a comment or alone), and
expiring uploads no ticket ever referenced."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden, ValidationFailed
from core.formats import parse_uuid
from core.parties import Party
from tickets import selectors
from tickets.files import sniffing, storage
from tickets.models import MAX_ATTACHMENTS_PER_WRITE, Attachment, Comment, Ticket
from tickets.services import recording

logger = logging.getLogger(__name__)

EXPIRY_BATCH_SIZE = 100


def attachment_facts(attachment: Attachment) -> dict[str, Any]:
    """What an attachment event records about its file."""
    return {
        "attachment_id": str(attachment.id),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "comment_id": str(attachment.comment_id) if attachment.comment_id else None,
    }


def attach_uploads(
    ticket: Ticket,
    *,
    actor: Party,
    attachment_ids: Sequence[object],
    comment: Comment | None,
    is_internal: bool,
    at: datetime.datetime,
) -> list[Attachment]:
    """Attach the actor's own unreferenced uploads to a locked ticket, one event each."""
    if not attachment_ids:
        return []
    if len(attachment_ids) > MAX_ATTACHMENTS_PER_WRITE:
        raise ValidationFailed(
            "Too many attachments.",
            fields={"attachment_ids": [f"At most {MAX_ATTACHMENTS_PER_WRITE} attachments at a time."]},
        )
    wanted = list(dict.fromkeys(str(attachment_id) for attachment_id in attachment_ids))
    attachments = {
        str(attachment.id): attachment
        for attachment in Attachment.objects.select_for_update().filter(
            pk__in=[valid for valid in map(parse_uuid, wanted) if valid],
            ticket__isnull=True,
            uploader_key=actor.key,
        )
    }
    missing = [attachment_id for attachment_id in wanted if _canonical(attachment_id) not in attachments]
    if missing:
        raise ValidationFailed(
            "Unknown attachment.",
            fields={
                "attachment_ids": [
                    f"{attachment_id} is not an unattached upload of yours." for attachment_id in missing
                ]
            },
        )
    attached = []
    for attachment_id in (str(parse_uuid(attachment_id)) for attachment_id in wanted):
        attachment = attachments[attachment_id]
        attachment.ticket = ticket
        attachment.comment = comment
        attachment.is_internal = attachment.is_internal or is_internal
        attachment.save(update_fields=["ticket", "comment", "is_internal"])
        recording.record_event(
            ticket,
            kind=recording.Kind.ATTACHMENT_ADDED,
            actor=actor,
            data=attachment_facts(attachment),
            is_internal=attachment.is_internal,
            at=at,
        )
        attached.append(attachment)
    return attached


@transaction.atomic
def attachment_attach(
    *, actor: Party, ticket_id: object, attachment_ids: Sequence[object], is_internal: bool = False
) -> list[Attachment]:
    """Attach uploads to a ticket outside a comment (internal ones: provider and support only)."""
    ticket = recording.lock_ticket(actor, ticket_id)
    if is_internal and not actor.sees_internal:
        raise Forbidden(
            "Customers cannot add internal attachments.", fields={"is_internal": ["Not allowed."]}
        )
    recording.require_not_closed(ticket)
    now = timezone.now()
    attachments = attach_uploads(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=None, is_internal=is_internal, at=now
    )
    if attachments:
        ticket.last_activity_at = now
        recording.save_ticket(ticket, "last_activity_at", at=now)
    return attachments


def _canonical(attachment_id: str) -> str | None:
    parsed = parse_uuid(attachment_id)
    return str(parsed) if parsed is not None else None


def attachment_upload(*, actor: Party, upload: Any) -> Attachment:
    """Store an upload (already streamed to a temporary file by the upload handler) as an attachment
    that belongs to its uploader until a ticket or comment references it (or it expires)."""
    if actor.is_system:
        raise Forbidden("The system does not upload files through the API.")
    if not selectors.party_may_write_a_ticket(actor):
        raise Forbidden("Only a party that can write to a ticket may upload files.")
    checked = sniffing.check_upload(upload)
    stored = storage.store(upload, content_type=checked.content_type)  # encrypted at rest
    try:
        return Attachment.objects.create(
            uploaded_by_id=actor.user_id,
            uploader_kind=actor.kind.value,
            uploader_key=actor.key,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            storage_key=stored.storage_key,
            key_id=stored.key_id,
            wrapped_key=stored.wrapped_key,
        )
    except Exception:
        storage.delete_stored(stored.storage_key)  # never leave an orphaned file behind
        raise


def _delete_stored_quietly(storage_keys: list[str]) -> None:
    for storage_key in storage_keys:
        try:
            storage.delete_stored(storage_key)
        except Exception:
            # The rows are gone already; an orphaned file costs disk, never correctness, so one storage
            # hiccup must not stop the sweep.
            logger.exception("Could not delete expired attachment file %s", storage_key)


def attachments_expire_unreferenced(*, now: datetime.datetime | None = None) -> int:
    """Delete uploads no ticket references that are older than the TTL, with their files; return the count.

    Safe to run concurrently (and alongside services attaching uploads): each batch locks its rows
    with SKIP LOCKED, so an upload being attached right now is skipped rather than waited for, and rows
    another sweeper holds are left to it. Files are deleted only after the rows' deletion commits.
    """
    cutoff = (now or timezone.now()) - datetime.timedelta(hours=settings.VE_ATTACHMENT_UNREFERENCED_TTL_HOURS)
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                Attachment.objects.select_for_update(skip_locked=True)
                .filter(ticket__isnull=True, uploaded_at__lt=cutoff)
                .order_by("uploaded_at")
                .values_list("pk", "storage_key")[:EXPIRY_BATCH_SIZE]
            )
            if not batch:
                return deleted
            Attachment.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            storage_keys = [storage_key for _, storage_key in batch]
            transaction.on_commit(partial(_delete_stored_quietly, storage_keys))
        deleted += len(batch)
