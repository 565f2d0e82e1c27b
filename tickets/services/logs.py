"""Deployment logs: asking for them (on demand, and automatically when a technical ticket opens or a ticket
is escalated; at most once a minute per ticket), and fetching them from the provider to attach as an
internal file with a `logs_fetched` event."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from core.errors import NotFound
from core.parties import SYSTEM, Party
from core.tasks import task_send
from providers.provider_api import ProviderRefused, fetch_deployment_logs
from tickets.files import storage
from tickets.models import Attachment, Ticket
from tickets.selectors import parse_ticket_id, ticket_is_visible_to
from tickets.services import recording
from tickets.services.attachments import attachment_facts

LOGS_REQUEST_COOLDOWN_SECONDS = 60
LOGS_SWEEP_BATCH = 500

LOGS_FETCH_TASK = "tickets.tasks.deployment_logs_fetch_task"
LOGS_QUEUE_TASK = "tickets.tasks.deployment_logs_queue_task"


def deployment_logs_request(*, actor: Party, ticket_id: object) -> datetime.datetime | None:
    """Ask for the deployment's recent logs to be fetched from the provider now (at most once a minute).

    The fetched logs arrive later as an internal attachment with a `logs_fetched` event. Returns None when
    a fetch was queued, or, when one was queued less than a minute ago (it brings the same logs), the time
    from which asking again queues another.
    """
    ticket = Ticket.objects.filter(pk=parse_ticket_id(ticket_id)).first()
    if ticket is None or not ticket_is_visible_to(actor, ticket):
        raise NotFound("Ticket not found.")
    recording.require_not_closed(ticket)
    if logs_fetch_queue(ticket.pk):
        return None
    return logs_request_again_at(ticket.pk)


def _cooldown_key(ticket_id: uuid.UUID | str) -> str:
    return f"logs-request:{ticket_id}"


def logs_request_again_at(ticket_id: uuid.UUID | str) -> datetime.datetime:
    """When the cooldown of the ticket's last log request ends (now if it has, or is unknown)."""
    now = timezone.now()
    try:
        asked = cache.get(_cooldown_key(ticket_id))
    except Exception:  # noqa: BLE001 - without Redis there is no cooldown
        return now
    if not isinstance(asked, float):
        return now + datetime.timedelta(seconds=LOGS_REQUEST_COOLDOWN_SECONDS)  # asked, time unrecorded
    again = datetime.datetime.fromtimestamp(asked, tz=datetime.UTC)
    return max(now, again + datetime.timedelta(seconds=LOGS_REQUEST_COOLDOWN_SECONDS))


def logs_fetch_queue(ticket_id: uuid.UUID | str) -> bool:
    """Queue a fetch of the ticket's logs after the current transaction commits, unless one was queued in
    the last minute (that one will bring the same logs); True if queued. The request is also written on
    the ticket, in the caller's transaction, so that the sweep can queue it again if the task is lost."""
    Ticket.objects.filter(pk=ticket_id, logs_requested_at__isnull=True).update(
        logs_requested_at=timezone.now()
    )
    try:
        fresh = cache.add(
            _cooldown_key(ticket_id), timezone.now().timestamp(), timeout=LOGS_REQUEST_COOLDOWN_SECONDS
        )
    except Exception:  # noqa: BLE001 - without Redis there is no cooldown; fetching again is harmless
        fresh = True
    if fresh:
        # robust: the broker being down must not turn a committed write into an error.
        transaction.on_commit(lambda: task_send(LOGS_FETCH_TASK, args=[str(ticket_id)]), robust=True)
    return fresh


def logs_fetch_queue_requested(ticket_ids: Sequence[uuid.UUID | str]) -> None:
    """Queue, after commit, a fetch of each ticket's logs whose `logs_requested_at` the caller wrote in its
    transaction (the SLA sweep, in the statement that escalates them): one task, which queues each fetch
    with `logs_fetch_queue` on a worker, so that the transaction never waits on the broker per ticket."""
    if ticket_ids:
        ids = [str(ticket_id) for ticket_id in ticket_ids]
        transaction.on_commit(lambda: task_send(LOGS_QUEUE_TASK, args=[ids]), robust=True)


def deployment_logs_fetch(*, ticket_id: object) -> Attachment | None:
    """Fetch the deployment's logs from the provider (outside any transaction: it is network I/O), then
    attach them to the ticket as an internal file with a `logs_fetched` event. None if the ticket closed."""
    ticket = (
        Ticket.objects.select_related("deployment__provider").filter(pk=parse_ticket_id(ticket_id)).first()
    )
    if ticket is None or ticket.status == Ticket.Status.CLOSED:
        Ticket.objects.filter(pk=parse_ticket_id(ticket_id)).update(logs_requested_at=None)
        return None
    try:
        text, truncated = fetch_deployment_logs(ticket.deployment)
    except ProviderRefused as refusal:
        text, truncated = f"[logs unavailable: {refusal}]\n", False
    content = text.encode()
    now = timezone.now()
    stored = storage.store(ContentFile(content), content_type="text/plain")  # encrypted at rest
    with transaction.atomic():
        locked = recording.lock_ticket(SYSTEM, ticket.pk)
        attachment = Attachment.objects.create(
            ticket=locked,
            uploader_kind=SYSTEM.kind.value,
            uploader_key=SYSTEM.key,
            filename=f"{locked.display_number}-logs-{now:%Y%m%dT%H%M%SZ}.log",
            content_type="text/plain",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            storage_key=stored.storage_key,
            key_id=stored.key_id,
            wrapped_key=stored.wrapped_key,
            is_internal=True,
            uploaded_at=now,
        )
        recording.record_event(
            locked,
            kind=recording.Kind.LOGS_FETCHED,
            actor=SYSTEM,
            data={**attachment_facts(attachment), "truncated": truncated},
            is_internal=True,
            at=now,
        )
        locked.logs_requested_at = None
        recording.save_ticket(locked, "logs_requested_at", at=now)
    return attachment


def logs_requests_sweep(*, now: datetime.datetime | None = None) -> int:
    """Queue again the log fetches asked for more than VE_LOGS_REQUEST_RESCUE_SECONDS ago that attached
    nothing (their task was lost, or used up its retries); give up on those older than
    VE_LOGS_REQUEST_GIVE_UP_SECONDS. Run by beat; returns how many were queued."""
    now = now or timezone.now()
    waiting = Ticket.objects.filter(logs_requested_at__isnull=False)
    waiting.filter(
        logs_requested_at__lt=now - datetime.timedelta(seconds=settings.VE_LOGS_REQUEST_GIVE_UP_SECONDS)
    ).update(logs_requested_at=None)
    waiting.filter(status=Ticket.Status.CLOSED).update(logs_requested_at=None)
    due = list(
        waiting.filter(
            logs_requested_at__lte=now - datetime.timedelta(seconds=settings.VE_LOGS_REQUEST_RESCUE_SECONDS)
        )
        .order_by("logs_requested_at")
        .values_list("pk", flat=True)[:LOGS_SWEEP_BATCH]
    )
    return sum(logs_fetch_queue(ticket_id) for ticket_id in due)
