"""Writes of the notifications app; callers import them from here.

`notifications_enqueue` is what `tickets.services.recording.record_events` calls for every batch of
events, inside their transaction: it queues the webhook deliveries (an outbox) and adds the event to the pending
emails of the people it concerns. Sending happens after commit, in Celery.
"""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from notifications.services.delivery import DeliveryResult, webhook_deliver_batch, webhook_deliver_due
from notifications.services.email import (
    FlushResult,
    email_notifications_enqueue,
    email_request_flush,
    emails_flush_due,
)
from notifications.services.preferences import email_preference_update, email_unsubscribe, unsubscribe_check
from notifications.services.webhooks import (
    EndpointWithSecret,
    notifications_log_purge,
    webhook_deliveries_enqueue,
    webhook_deliveries_redeliver,
    webhook_delivery_redeliver,
    webhook_disabled_notices_send,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_request_delivery,
)
from tickets.models import Ticket, TicketEvent

# The attribute a `Queued` rides on, on its event object, from `notifications_enqueue` to the hook.
_QUEUED = "notifications_queued"


@dataclass(frozen=True)
class Queued:
    """What `notifications_enqueue` queued for one event, for its after-commit hook."""

    webhooks: int
    email_due_at: datetime.datetime | None


def notifications_enqueue(events: Sequence[tuple[TicketEvent, Ticket]]) -> list[Queued]:
    """Queue everything events (each with its ticket) tell people off-screen: webhooks and email. In the
    events' transaction, in a number of queries that does not grow with the batch.

    What was queued rides on each event object to `notifications_trigger`, the event hook that runs after
    the commit (registered in `NotificationsConfig.ready`)."""
    queued = [
        Queued(webhooks=webhooks, email_due_at=email_due_at)
        for webhooks, email_due_at in zip(
            webhook_deliveries_enqueue(events), email_notifications_enqueue(events), strict=True
        )
    ]
    for (event, _ticket), event_queued in zip(events, queued, strict=True):
        setattr(event, _QUEUED, event_queued)
    return queued


def notifications_trigger(event: TicketEvent) -> None:
    """After-commit event hook: ask for a delivery task, and a flush for when a new digest closes."""
    notifications_trigger_many([event])


def notifications_trigger_many(events: Sequence[TicketEvent]) -> None:
    """`notifications_trigger` for events committed together: one delivery request, one flush per distinct
    digest close (a sweep's thousands of events ask once, not once each)."""
    queued = [q for q in (getattr(event, _QUEUED, None) for event in events) if q is not None]
    if any(q.webhooks for q in queued):
        webhook_request_delivery()
    for due_at in sorted({q.email_due_at for q in queued if q.email_due_at is not None}):
        email_request_flush(at=due_at)


__all__ = [
    "DeliveryResult",
    "EndpointWithSecret",
    "FlushResult",
    "Queued",
    "email_notifications_enqueue",
    "email_preference_update",
    "email_unsubscribe",
    "emails_flush_due",
    "notifications_enqueue",
    "notifications_log_purge",
    "notifications_trigger",
    "notifications_trigger_many",
    "unsubscribe_check",
    "webhook_deliver_batch",
    "webhook_deliver_due",
    "webhook_deliveries_enqueue",
    "webhook_deliveries_redeliver",
    "webhook_delivery_redeliver",
    "webhook_disabled_notices_send",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_update",
]
