"""Celery tasks of the notifications app: thin entry points into `notifications.services`."""

from __future__ import annotations

from celery import shared_task

from notifications import services
from notifications.inbound.processing import inbound_drain_requested, inbound_process, inbound_sweep
from notifications.inbound.store import INBOUND_DRAIN_TASK, INBOUND_PROCESS_TASK
from notifications.services.delivery import WEBHOOK_DISABLED_NOTICES_TASK
from notifications.services.email import EMAIL_FLUSH_TASK
from notifications.services.webhooks import WEBHOOK_DELIVER_TASK


@shared_task(name=WEBHOOK_DELIVER_TASK, ignore_result=True)
def webhook_deliver_task() -> int:
    """Deliver due webhooks (queued after commit by events, swept by beat); deliveries that succeeded."""
    return services.webhook_deliver_due().delivered


@shared_task(name=EMAIL_FLUSH_TASK, ignore_result=True)
def email_flush_task() -> int:
    """Send the pending emails whose digest window has closed, and due retries; emails sent."""
    return services.emails_flush_due().sent


@shared_task(name=WEBHOOK_DISABLED_NOTICES_TASK, ignore_result=True)
def webhook_disabled_notices_task() -> int:
    """Tell providers about endpoints disabled after a run of failures; notices sent."""
    return services.webhook_disabled_notices_send()


@shared_task(name="notifications.tasks.email_sweep_task", ignore_result=True)
def email_sweep_task() -> int:
    """Beat's safety net: flush what a lost trigger left, and retry undelivered disabled notices."""
    services.webhook_disabled_notices_send()
    return services.emails_flush_due().sent


@shared_task(name="notifications.tasks.notifications_log_purge_task", ignore_result=True)
def notifications_log_purge_task() -> int:
    """Daily: drop delivery and email logs past their retention; rows deleted."""
    deliveries, emails = services.notifications_log_purge()
    return deliveries + emails


@shared_task(name=INBOUND_DRAIN_TASK, ignore_result=True)
def inbound_drain_task() -> int:
    """Post (or drop, or reject) every reply by email the LMTP server stored and no worker holds; how many."""
    return inbound_drain_requested()


@shared_task(name=INBOUND_PROCESS_TASK, ignore_result=True)
def inbound_process_task(message_pk: int) -> str | None:
    """One stored reply (tasks queued by an LMTP server from before drains); its new state."""
    return inbound_process(message_pk)


@shared_task(name="notifications.tasks.inbound_sweep_task", ignore_result=True)
def inbound_sweep_task() -> int:
    """Beat's safety net: process stored replies whose task was lost; how many."""
    return inbound_sweep()
