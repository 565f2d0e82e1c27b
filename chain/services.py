"""Writes of the chain app: queueing ticket events for anchoring and draining the queue to the backend.

`outbox_enqueue_many` is called by every ticket service, inside its transaction: the outbox rows commit with
the events or not at all. `outbox_drain` (run by `chain.tasks.outbox_drain_task`, triggered after commit and
swept by beat) moves rows to the ledger:

1. **Claim** (a short transaction): lock due, unanchored rows with `FOR UPDATE SKIP LOCKED`, in id order,
   leaving out any row whose ticket has an earlier unanchored event that is not due (backing off, or claimed
   by another worker) — a ticket's events are anchored in seq order, never past a failure. Claimed rows get
   a lease (`next_attempt_at` = now + VE_CHAIN_CLAIM_LEASE_SECONDS) and a claim token: if the worker dies,
   another one retries them after the lease. A worker whose lease ran out while it was still working (a
   long batch) finds another token on the row and leaves it alone: it sends nothing for it and records
   nothing on it, so two workers never anchor one event in two txs.
2. **Seal and submit** (no transaction held): build each event's x/support message, encrypt its envelope
   (at drain time, so a key registered late still counts), submit the batch to the backend.
3. **Record** (a short transaction): receipts on the anchored rows; attempts, the error and an exponential
   back-off on the failed ones (state `failed` while retrying); events held back behind a failure wait for it.

Idempotency: each event has a stable key; a backend anchors a key once and answers a resubmission with the
receipt of the anchored tx, so a crash between submitting and recording costs a retry, never a duplicate.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, QuerySet
from django.utils import timezone
from redis.exceptions import LockError
from redis.lock import Lock

from chain import messages
from chain.backends import get_backend
from chain.backends.base import (
    ChainBackend,
    Failure,
    Receipt,
    RecordState,
    Result,
    Submission,
    hold_back_successors,
)
from chain.mapping import MappingError
from chain.models import IDEMPOTENCY_KEY_SQL, OutboxEntry
from core import outbox
from core.cache import redis_client
from core.tasks import task_send_debounced

if TYPE_CHECKING:
    from tickets.models import TicketEvent

logger = logging.getLogger(__name__)

ANCHORED = OutboxEntry.State.ANCHORED
DRAIN_REQUESTED_KEY = "chain:outbox-drain-requested"
SENDER_LEASE_KEY = "chain:outbox-sender"
OUTBOX_DRAIN_TASK = "chain.tasks.outbox_drain_task"
_ERROR_MAX_LENGTH = 2000


def outbox_insert_sql(source: str) -> tuple[str, dict[str, Any]]:
    """The statement that queues an outbox row for each event row of `source` (a table or a CTE with the
    event table's columns, aliased `e`), with its named parameters: for callers that insert their events in
    SQL and queue them in the same statement (the SLA sweep)."""
    quote = connection.ops.quote_name
    from_event = {
        "event_id": "e.id",
        "ticket_id": "e.ticket_id",
        "seq": "e.seq",
        "is_internal": "e.is_internal",
        "idempotency_key": IDEMPOTENCY_KEY_SQL.format(ticket_id="e.ticket_id", seq="e.seq"),
        "created_at": "e.created_at",
        "next_attempt_at": "e.created_at",
    }
    defaults = {
        f"outbox_{field.attname}": field
        for field in OutboxEntry._meta.concrete_fields
        if not field.primary_key and field.attname not in from_event
    }
    columns: list[str] = [*from_event, *(str(field.column) for field in defaults.values())]
    values = [*from_event.values(), *(f"%({name})s" for name in defaults)]
    sql = (
        f"INSERT INTO {quote(OutboxEntry._meta.db_table)} ({', '.join(map(quote, columns))}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM {source} AS e"
    )
    params = {
        name: field.get_db_prep_save(field.get_default(), connection) for name, field in defaults.items()
    }
    return sql, params


def outbox_enqueue_many(*, events: Sequence[TicketEvent]) -> int:
    """Queue recorded events for anchoring: one outbox row each, built by PostgreSQL from the event rows in
    one statement. Must run in the transaction that records them; returns the rows queued."""
    if not events:
        return 0
    insert, params = outbox_insert_sql(connection.ops.quote_name(events[0]._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} WHERE e.id = ANY(%(event_ids)s) ORDER BY e.id",
            {**params, "event_ids": [e.pk for e in events]},
        )
        return int(cursor.rowcount)


def outbox_enqueue_recorded(events: Sequence[tuple[TicketEvent, object]]) -> int:
    """`outbox_enqueue_many` as a ticket event writer (`tickets.hooks.EventWriter`): events with their
    tickets."""
    return outbox_enqueue_many(events=[event for event, _ticket in events])


# -- trigger ---------------------------------------------------------------------------------------


def outbox_request_drain() -> bool:
    """Queue a drain task unless one is already queued (debounced through a Redis flag); True if queued.

    The flag is set when a task is queued and cleared when a task starts, so a burst of events queues one
    task, and an event committed while a drain runs queues the next one. A lost trigger (broker down) only
    delays: the beat sweep drains every VE_CHAIN_SWEEP_SECONDS.
    """
    return task_send_debounced(
        OUTBOX_DRAIN_TASK, flag=DRAIN_REQUESTED_KEY, timeout=settings.VE_CHAIN_TRIGGER_DEBOUNCE_SECONDS
    )


def outbox_drain_trigger(event: TicketEvent | Sequence[TicketEvent]) -> None:  # noqa: ARG001 - a hook's signature
    """After-commit hook (registered in `ChainConfig.ready`, for one event and for a batch): every committed
    event asks for a drain."""
    try:
        outbox_request_drain()
    except Exception as exc:  # noqa: BLE001 - Redis or the broker down: the write has committed regardless
        logger.warning("chain: could not queue an outbox drain (%s); the beat sweep will pick it up", exc)


# -- drain -----------------------------------------------------------------------------------------


@dataclass
class DrainResult:
    """What one drain did: rows claimed, anchored, failed (attempted) and held back behind a failure."""

    claimed: int = 0
    anchored: int = 0
    failed: int = 0
    held_back: int = 0
    batches: int = 0
    finished: bool = False  # stopped because nothing was due (not on a failure or the batch limit)

    def add(self, other: DrainResult) -> None:
        self.claimed += other.claimed
        self.anchored += other.anchored
        self.failed += other.failed
        self.held_back += other.held_back
        self.batches += other.batches


def outbox_retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: base × 2^(attempts−1), capped, minus up to 20 % jitter (so
    that a fleet of rows that failed together does not retry in lockstep)."""
    return outbox.exponential_backoff(
        attempts,
        base=float(settings.VE_CHAIN_RETRY_BASE_SECONDS),
        cap=float(settings.VE_CHAIN_RETRY_MAX_SECONDS),
        jitter=0.2,
    )


def _claim(batch_size: int) -> list[OutboxEntry]:
    """Lock and lease the next batch of rows that may be anchored now, in id (= per-ticket seq) order."""
    return outbox.claim(
        _due(), batch_size=batch_size, lease_seconds=settings.VE_CHAIN_CLAIM_LEASE_SECONDS, keep=_in_seq_order
    )


def _due() -> QuerySet[OutboxEntry]:
    """Unanchored rows that may be sent now: due, and no earlier event of their ticket waiting."""
    now = timezone.now()
    waiting_predecessor = OutboxEntry.objects.filter(
        ticket_id=OuterRef("ticket_id"), seq__lt=OuterRef("seq"), next_attempt_at__gt=now
    ).exclude(state=ANCHORED)
    return (
        OutboxEntry.objects.exclude(state=ANCHORED)
        .filter(next_attempt_at__lte=now)
        .exclude(Exists(waiting_predecessor))
        .order_by("id")
    )


def _in_seq_order(rows: list[OutboxEntry]) -> list[OutboxEntry]:
    """Per ticket, only the run that starts at its first unanchored seq: a predecessor skipped because
    another transaction holds its lock must not be overtaken."""
    first_unanchored = dict(
        OutboxEntry.objects.filter(ticket_id__in={row.ticket_id for row in rows})
        .exclude(state=ANCHORED)
        .values("ticket_id")
        .annotate(first=Min("seq"))
        .values_list("ticket_id", "first")
    )
    return outbox.in_order_runs(rows, stream=lambda row: row.ticket_id, first_open=first_unanchored)


def _lease_end() -> datetime.datetime:
    return outbox.lease_end(settings.VE_CHAIN_CLAIM_LEASE_SECONDS)


def _note_taker(token: uuid.UUID, rows: Sequence[OutboxEntry]) -> RecordState:
    """The `record_state` of one claim: commit a backend's write-ahead note on the row at once (autocommit:
    no transaction is open here) and renew the row's lease, only while this claim still holds the row.
    False tells the backend that another worker took the row over (our lease ran out): it must not send."""
    row_of = {row.idempotency_key: row.pk for row in rows}

    def record_state(idempotency_key: str, state: Mapping[str, Any]) -> bool:
        row_id = row_of.get(idempotency_key)
        if row_id is None:
            return False
        updated = (
            OutboxEntry.objects.filter(pk=row_id, claim_token=token)
            .exclude(state=ANCHORED)
            .update(submission=dict(state), next_attempt_at=_lease_end())
        )
        return updated == 1

    return record_state


def _submit(rows: Sequence[OutboxEntry], token: uuid.UUID, backend: ChainBackend) -> dict[str, Result]:
    """Seal the rows' events and submit them; a result per idempotency key."""
    events = {event.pk: event for event in messages.events_for_anchoring(row.event_id for row in rows)}
    ordered_events = [events[row.event_id] for row in rows if row.event_id in events]
    sealed: dict[int, messages.SealedMessage] = {}
    errors: dict[int, MappingError] = {}
    for event, outcome in zip(ordered_events, messages.seal_messages(ordered_events), strict=True):
        if isinstance(outcome, MappingError):
            errors[event.pk] = outcome
        else:
            sealed[event.pk] = outcome
    results: dict[str, Result] = {}
    submissions = []
    for row in rows:
        item = sealed.get(row.event_id)
        if item is None:
            error = errors.get(row.event_id)
            reason = f"cannot map the event: {error}" if error else "the event row is missing"
            results[row.idempotency_key] = Failure(row.idempotency_key, reason)
            submissions.append(Submission(row.idempotency_key, str(row.ticket_id), {}, row.submission))
            continue
        submissions.append(Submission(row.idempotency_key, str(row.ticket_id), item.message, row.submission))
    # A ticket whose event could not be sealed sends nothing after it (its earlier events still go).
    to_backend, blocked_groups = [], set()
    for submission in submissions:
        if submission.idempotency_key in results:
            blocked_groups.add(submission.group)
        elif submission.group not in blocked_groups:
            to_backend.append(submission)
    if to_backend:
        for result in backend.submit(to_backend, record_state=_note_taker(token, rows)):
            results[result.idempotency_key] = result
    return {r.idempotency_key: r for r in hold_back_successors(submissions, results)}


# One statement for a whole batch of receipts (bulk_update's CASE per row costs more than the ledger
# append). `state <> 'anchored'`: a row another worker anchored after our lease ran out keeps its receipt.
_RECORD_RECEIPTS_SQL = """
UPDATE chain_outboxentry AS o
SET state = 'anchored', backend = r.backend, tx_hash = r.tx_hash, height = r.height,
    anchored_at = r.anchored_at, last_error = '', submission = '{}'::jsonb
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[])
     AS r(id, backend, tx_hash, height, anchored_at)
WHERE o.id = r.id AND o.state <> 'anchored'
"""


def _record_receipts(receipts: Sequence[tuple[int, Receipt]]) -> int:
    if not receipts:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_RECEIPTS_SQL,
            [
                [pk for pk, _ in receipts],
                [r.backend for _, r in receipts],
                [r.tx_hash for _, r in receipts],
                [r.height for _, r in receipts],
                [r.anchored_at for _, r in receipts],
            ],
        )
        return int(cursor.rowcount)


def _record(
    rows: Sequence[OutboxEntry], token: uuid.UUID, results: Mapping[str, Result], result: DrainResult
) -> None:
    now = timezone.now()
    receipts = [
        (row.pk, outcome) for row in rows if isinstance(outcome := results.get(row.idempotency_key), Receipt)
    ]
    unanchored = [row for row in rows if isinstance(results.get(row.idempotency_key), Failure)]
    retry_at: dict[Any, datetime.datetime] = {}
    with transaction.atomic():
        result.anchored += _record_receipts(receipts)
        current = {
            row.pk: row
            for row in OutboxEntry.objects.filter(pk__in=[row.pk for row in unanchored], claim_token=token)
            .exclude(state=ANCHORED)
            .select_for_update()
        }
        failed = []
        for row in unanchored:
            fresh = current.get(row.pk)
            if fresh is None:
                continue  # deleted, anchored or claimed by another worker since our lease ran out
            outcome = results[row.idempotency_key]
            assert isinstance(outcome, Failure)
            fresh.last_error = outcome.error[:_ERROR_MAX_LENGTH]
            if outcome.attempted:
                fresh.attempts += 1
                fresh.state = OutboxEntry.State.FAILED
                fresh.next_attempt_at = now + datetime.timedelta(seconds=outbox_retry_delay(fresh.attempts))
                retry_at[row.ticket_id] = fresh.next_attempt_at
                result.failed += 1
            else:
                # Held back behind an earlier event of its ticket: it goes when that one goes.
                fresh.next_attempt_at = retry_at.get(row.ticket_id, now)
                result.held_back += 1
            failed.append(fresh)
        OutboxEntry.objects.bulk_update(failed, ["state", "attempts", "last_error", "next_attempt_at"])
    if result.failed:
        first = next(r for r in results.values() if isinstance(r, Failure) and r.attempted)
        logger.warning(
            "chain: %d event(s) not anchored, retrying with back-off: %s", result.failed, first.error
        )


def outbox_drain_batch(*, batch_size: int | None = None, backend: ChainBackend | None = None) -> DrainResult:
    """Claim, anchor and record one batch of outbox rows."""
    rows = _claim(batch_size or settings.VE_CHAIN_DRAIN_BATCH_SIZE)
    result = DrainResult(claimed=len(rows), batches=1 if rows else 0)
    if not rows:
        return result
    token = rows[0].claim_token  # one claim, one token
    assert token is not None
    results = _submit(rows, token, backend or get_backend())
    _record(rows, token, results, result)
    return result


def outbox_drain(
    *, batch_size: int | None = None, max_batches: int | None = None, backend: ChainBackend | None = None
) -> DrainResult:
    """Drain the outbox until nothing is due (or `max_batches`, after which another drain is queued).

    Stops early when a batch anchors nothing (the backend is failing): the rows back off and the sweep
    comes back for them. A single-sender backend (a chain account) is drained by one drain at a time.
    """
    cache.delete(DRAIN_REQUESTED_KEY)  # events committed from now on queue another drain
    backend = backend or get_backend()
    if not backend.single_sender:
        return _drain_batches(batch_size, max_batches, backend, keep_sending=lambda: True)
    # Two drains sending at once took each other's account sequence numbers: CheckTx refused one, its rows
    # backed off, and a backlog took minutes instead of seconds (the chain-node fault test and the soak).
    lease = _sender_lease()
    if not lease.acquire(blocking=False):
        return DrainResult()  # the drain sending now sees these rows, or queues the next drain (below)

    def still_ours() -> bool:
        try:
            lease.reacquire()
        except LockError:  # it ran out during a long batch (another drain may hold it now): stop sending
            return False
        return True

    try:
        total = _drain_batches(batch_size, max_batches, backend, keep_sending=still_ours)
    finally:
        with contextlib.suppress(LockError):  # the lease ran out (a long batch): nothing left to release
            lease.release()
    if total.finished and _due().exists():
        # Rows committed after our last claim whose drain found the lease taken and left them to us.
        outbox_request_drain()
    return total


def _sender_lease() -> Lock:
    """The lease of the one drain that may send, for as long as a row claim lasts; renewed every batch."""
    key = cache.make_and_validate_key(SENDER_LEASE_KEY)  # prefixed: one lease per installation on a Redis
    lease: Lock = redis_client(key, write=True).lock(
        key, timeout=settings.VE_CHAIN_CLAIM_LEASE_SECONDS, thread_local=False
    )
    return lease


def _drain_batches(
    batch_size: int | None,
    max_batches: int | None,
    backend: ChainBackend,
    *,
    keep_sending: Callable[[], bool],
) -> DrainResult:
    total = DrainResult()
    limit = max_batches or settings.VE_CHAIN_DRAIN_MAX_BATCHES
    for _ in range(limit):
        if not keep_sending():
            return total
        batch = outbox_drain_batch(batch_size=batch_size, backend=backend)
        total.add(batch)
        if batch.claimed == 0:
            total.finished = True
            return total
        if batch.anchored == 0:
            return total
    # Bounded work per task: hand the rest to a fresh task rather than hold a worker indefinitely.
    outbox_request_drain()
    return total


def outbox_retry_now(*, entry_ids: Sequence[int]) -> int:
    """Make failing (or waiting) rows due now and queue a drain: an operator's "retry now"; rows made due."""
    count = (
        OutboxEntry.objects.filter(pk__in=list(entry_ids))
        .exclude(state=ANCHORED)
        .update(next_attempt_at=timezone.now())
    )
    if count:
        transaction.on_commit(outbox_request_drain)
    return count


__all__ = [
    "DRAIN_REQUESTED_KEY",
    "DrainResult",
    "outbox_drain",
    "outbox_drain_batch",
    "outbox_drain_trigger",
    "outbox_enqueue_many",
    "outbox_request_drain",
    "outbox_retry_delay",
    "outbox_retry_now",
]
