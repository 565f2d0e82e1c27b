"""Housekeeping for request signing."""

from __future__ import annotations

from celery import shared_task

from accounts.services import signature_nonces_expire


@shared_task
def signature_nonces_expire_task() -> int:
    """Forget nonces whose requests are outside the accepted time window anyway."""
    return signature_nonces_expire()
