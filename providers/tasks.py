"""Background work that talks to providers."""

from __future__ import annotations

from celery import shared_task

from providers.provider_api import ProviderUnavailable


@shared_task(
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def deployment_logs_fetch_task(ticket_id: str) -> None:
    """Fetch the ticket's deployment logs from its provider and attach them (internal)."""
    from tickets.services import deployment_logs_fetch

    deployment_logs_fetch(ticket_id=ticket_id)
