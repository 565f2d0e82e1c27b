"""Retention: the content of tickets closed for longer than `VE_RETENTION_DAYS_AFTER_CLOSE` days is erased by
the same mechanism as a person's erasure (`privacy.erasure`): tombstones, destroyed shred and file keys, a
`content_erased` event on each ticket.

Run by beat (`privacy.tasks.retention_erase_task`) in batches: each batch locks its tickets with SKIP LOCKED
(a ticket being written to right now is left for the next run, never waited for) in a short transaction of
its own, so writes go on meanwhile. 0 (the default) keeps content for ever.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.parties import SYSTEM
from privacy.erasure import BATCH_SIZE, tickets_erase
from tickets.models import ContentErasure, Ticket


def retention_cutoff(now: datetime.datetime | None = None) -> datetime.datetime | None:
    days = int(settings.VE_RETENTION_DAYS_AFTER_CLOSE or 0)
    if days <= 0:
        return None
    return (now or timezone.now()) - datetime.timedelta(days=days)


def retention_erase(
    *, now: datetime.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = 0
) -> int:
    """Erase the content of every ticket closed before the cutoff and not erased yet; how many tickets."""
    cutoff = retention_cutoff(now)
    if cutoff is None:
        return 0
    erasure: ContentErasure | None = None
    erased = batches = 0
    while not max_batches or batches < max_batches:
        with transaction.atomic():
            ids = list(
                Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Ticket.Status.CLOSED, closed_at__lt=cutoff, content_erased_at__isnull=True)
                .order_by("closed_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            if erasure is None:
                erasure = ContentErasure.objects.create(
                    basis=ContentErasure.Basis.RETENTION,
                    reason=f"Closed for more than {settings.VE_RETENTION_DAYS_AFTER_CLOSE} days",
                    performed_by_label="Retention policy",
                    performed_by_kind=SYSTEM.kind.value,
                )
            erased += tickets_erase(actor=SYSTEM, ticket_ids=ids, erasure=erasure)
        batches += 1
    if erasure is not None:
        erasure.completed_at = timezone.now()
        erasure.save(update_fields=["completed_at"])
    return erased
