"""Housekeeping for shared records."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task
def signature_nonces_expire_task() -> int:
    """Forget nonces whose requests are outside the accepted time window anyway."""
    from accounts.models import SignatureNonce

    deleted, _ = SignatureNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
