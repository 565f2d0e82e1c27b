"""Celery tasks of the chain app: thin entry points into `chain.services`."""

from __future__ import annotations

from celery import shared_task

from chain.services import OUTBOX_DRAIN_TASK, outbox_drain


@shared_task(name=OUTBOX_DRAIN_TASK, ignore_result=True)
def outbox_drain_task() -> int:
    """Anchor what the outbox holds (queued after commit by ticket events, and swept by beat); rows anchored."""
    return outbox_drain().anchored
