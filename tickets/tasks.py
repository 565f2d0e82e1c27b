"""Celery tasks of the tickets app: thin entry points that call the module doing the work."""

from __future__ import annotations

from celery import shared_task

from tickets.attachment_files import expire_unreferenced


@shared_task(name="tickets.tasks.attachments_expire_unreferenced_task")
def attachments_expire_unreferenced_task() -> int:
    """Delete uploads no ticket referenced within the TTL (run hourly by beat); return how many."""
    return expire_unreferenced()
