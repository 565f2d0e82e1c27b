"""Celery tasks of the privacy app: thin entry points that call a service."""

from __future__ import annotations

from celery import shared_task

from privacy.retention import retention_erase

RETENTION_TASK = "privacy.tasks.retention_erase_task"


@shared_task(name=RETENTION_TASK)
def retention_erase_task() -> int:
    """Erase the content of tickets closed longer than the retention period (beat, daily)."""
    return retention_erase()
