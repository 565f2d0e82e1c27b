"""Claiming the rows of an outbox: the chain's, the webhook deliveries', the pending emails'.

A worker claims in one short transaction: it locks up to a batch of due rows with `SELECT … FOR UPDATE
SKIP LOCKED` (so workers never wait on each other), keeps those it may take, and leases them: their
`next_attempt_at` moves to the end of the lease, and where the outbox has a claim token, a fresh one marks
them as this claim's. A worker that dies leaves its rows to another once the lease runs out; one whose lease
ran out while it was still working finds another token on the row and leaves it alone.

Outboxes that deliver in order per stream (a ticket's events to the chain; to one webhook endpoint) keep,
per stream, only the run of rows that starts at the stream's first open row (`in_order_runs`): a row whose
predecessor another worker holds, or which is backing off, must not overtake it. A failure backs off
exponentially (`exponential_backoff`).
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

M = TypeVar("M", bound=Model)
K = TypeVar("K", bound=Hashable)


def lease_end(seconds: float) -> datetime.datetime:
    """When a lease taken now runs out."""
    return timezone.now() + datetime.timedelta(seconds=seconds)


def exponential_backoff(attempts: int, *, base: float, cap: float, jitter: float = 0.0) -> float:
    """Seconds before attempt `attempts + 1`: base × 2^(attempts−1), capped, less up to `jitter` of it
    (a fraction) so that rows that failed together do not retry in lockstep."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return float(delay * (1 - jitter * random.random()))  # noqa: S311 - jitter, not cryptography


def in_order_runs(rows: Iterable[M], *, stream: Callable[[M], K], first_open: Mapping[K, int]) -> list[M]:
    """Of `rows` (each stream's in `seq` order), those that continue their stream's run from its first open
    `seq` without a gap."""
    expected = dict(first_open)
    kept = []
    for row in rows:
        key = stream(row)
        seq: int = getattr(row, "seq")  # noqa: B009 - every ordered outbox numbers its rows `seq`
        if seq == expected.get(key):
            kept.append(row)
            expected[key] = seq + 1
    return kept


def claim(
    due: QuerySet[M],
    *,
    batch_size: int,
    lease_seconds: float,
    keep: Callable[[list[M]], list[M]] | None = None,
    token_field: str | None = "claim_token",  # noqa: S107 - a column name
    also: Mapping[str, Any] | None = None,
) -> list[M]:
    """Lock up to `batch_size` rows of `due` (ordered, skipping rows others hold), keep those `keep`
    allows, and lease them: `next_attempt_at` to the lease's end, a fresh token in `token_field` (unless
    None: an outbox without one), and the values of `also` (a state, say). In one transaction."""
    with transaction.atomic():
        locked = list(due.select_for_update(skip_locked=True, of=("self",))[:batch_size])
        claimed = keep(locked) if keep is not None and locked else locked
        if not claimed:
            return []
        changes: dict[str, Any] = {"next_attempt_at": lease_end(lease_seconds), **(also or {})}
        if token_field is not None:
            changes[token_field] = uuid.uuid4()
        type(claimed[0])._default_manager.filter(pk__in=[row.pk for row in claimed]).update(**changes)
        for row in claimed:
            for name, value in changes.items():
                setattr(row, name, value)
    return claimed
