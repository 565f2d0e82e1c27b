"""Celery tasks of the tickets app: thin entry points that call a service."""

from __future__ import annotations

from celery import shared_task

from core.errors import OUTAGES
from providers.provider_api import ProviderUnavailable
from tickets import realtime, services
from tickets.realtime import REALTIME_PUBLISH_TASK
from tickets.services.logs import LOGS_FETCH_TASK, LOGS_QUEUE_TASK
from tickets.services.search_index import search_pending_merge


@shared_task(name="tickets.tasks.attachments_expire_unreferenced_task")
def attachments_expire_unreferenced_task() -> int:
    """Delete uploads no ticket referenced within the TTL (run hourly by beat); return how many."""
    return services.attachments_expire_unreferenced()


@shared_task(
    name=LOGS_FETCH_TASK,
    # PostgreSQL or Redis gone for a moment is retried too: else only the rescue sweep, 15 min later, asks again.
    autoretry_for=(ProviderUnavailable, *OUTAGES),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def deployment_logs_fetch_task(ticket_id: str) -> None:
    """Fetch the ticket's deployment logs from its provider and attach them (internal)."""
    services.deployment_logs_fetch(ticket_id=ticket_id)


@shared_task(name=LOGS_QUEUE_TASK)
def deployment_logs_queue_task(ticket_ids: list[str]) -> None:
    """Queue a log fetch for each of a batch of tickets (the SLA sweep's escalations), with the cooldown."""
    for ticket_id in ticket_ids:
        services.logs_fetch_queue(ticket_id)


@shared_task(name="tickets.tasks.logs_requests_sweep_task")
def logs_requests_sweep_task() -> int:
    """Queue again the log fetches whose task was lost (beat); fetches queued."""
    return services.logs_requests_sweep()


@shared_task(name="tickets.tasks.sla_sweep_task")
def sla_sweep_task() -> int:
    """Write the SLA warnings and breaches that fell due, escalating breaches (beat, every 30 s); events
    written."""
    return services.sla_sweep().events


@shared_task(name="tickets.tasks.tickets_idle_sweep_task")
def tickets_idle_sweep_task() -> int:
    """Resolve tickets idle waiting on the customer and close idle resolved ones (beat); tickets moved."""
    result = services.tickets_idle_sweep()
    return result.resolved + result.closed


@shared_task(name="tickets.tasks.search_pending_merge_task")
def search_pending_merge_task() -> int:
    """Merge the search index's pending entries (beat, every 30 s), so that no request pays for it; pages."""
    return search_pending_merge()


@shared_task(name=REALTIME_PUBLISH_TASK)
def realtime_publish_task(event_ids: list[int]) -> int:
    """Broadcast a large batch of committed events (the SLA sweep's) to the sockets; events published."""
    return realtime.publish_stored_events(event_ids)
