"""Draining the webhook outbox: at least once, in order per ticket and endpoint, with back-off.

`webhook_deliver_due` (run by `notifications.tasks.webhook_deliver_task`, queued after commit and swept by
beat) repeats, until nothing is due:

1. **Claim** (a short transaction): lock due deliveries of active endpoints with `FOR UPDATE SKIP LOCKED`,
   leaving out any whose (endpoint, ticket) has an earlier open delivery that is not due (backing off, or
   claimed by another worker) — a ticket's events reach an endpoint in seq order, never past a failure.
   Claimed rows get a lease (`next_attempt_at` = now + VE_WEBHOOK_CLAIM_LEASE_SECONDS): if the worker dies,
   another retries them after it. That is the "at least once": a crash after a receiver answered but
   before the answer was recorded sends that delivery again, with the same `webhook-id`.
2. **Send** (no transaction held): each (endpoint, ticket) run goes in order on one thread, runs in
   parallel on VE_WEBHOOK_CONCURRENCY threads; a failure stops its run (the successors are held back).
   Bodies are the event as the provider may read it (`tickets.presenter.present_event`, staff audience),
   built at the first attempt and kept, so every attempt sends the same bytes.
3. **Record** (a short transaction): states, the attempt log, the back-off (VE_WEBHOOK_RETRY_SCHEDULE,
   about a day in all, after which the delivery gives up), and each endpoint's run of failures — an
   endpoint failing without a success for VE_WEBHOOK_DISABLE_AFTER_SECONDS (and at least
   VE_WEBHOOK_DISABLE_MIN_FAILURES attempts) is disabled and its provider told.
"""

from __future__ import annotations

import datetime
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, Min, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import outbox
from core.formats import canonical_json_bytes
from core.tasks import task_send
from notifications import signing, transport
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.services.webhooks import (
    DELIVERY_REQUESTED_KEY,
    secrets_in_force,
    webhook_request_delivery,
)
from tickets.models import TicketEvent
from tickets.presenter import Audience, present_event
from tickets.selectors import event_related

logger = logging.getLogger(__name__)

OPEN = WebhookDelivery.OPEN_STATES
State = WebhookDelivery.State
_ERROR_MAX_LENGTH = 2000
WEBHOOK_DISABLED_NOTICES_TASK = "notifications.tasks.webhook_disabled_notices_task"


@dataclass
class DeliveryResult:
    """What one drain did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0  # attempted and failed (retrying, or given up)
    given_up: int = 0
    held_back: int = 0
    batches: int = 0
    disabled: list[str] = field(default_factory=list)

    def add(self, other: DeliveryResult) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.failed += other.failed
        self.given_up += other.given_up
        self.held_back += other.held_back
        self.batches += other.batches
        self.disabled.extend(other.disabled)


def retry_delay(round_attempts: int) -> float | None:
    """Seconds to wait after the `round_attempts`-th failed attempt, or None when the schedule is spent.

    The Standard Webhooks schedule by default (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: ~27 h), less up to
    10 % jitter so that deliveries that failed together do not retry in lockstep."""
    schedule = settings.VE_WEBHOOK_RETRY_SCHEDULE
    if round_attempts > len(schedule):
        return None
    return float(schedule[round_attempts - 1]) * (1 - 0.1 * random.random())  # noqa: S311 - jitter


# -- claim -----------------------------------------------------------------------------------------


def _claim(batch_size: int) -> list[WebhookDelivery]:
    now = timezone.now()
    waiting_predecessor = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        ticket_id=OuterRef("ticket_id"),
        seq__lt=OuterRef("seq"),
        state__in=OPEN,
        next_attempt_at__gt=now,
    )
    due = (
        WebhookDelivery.objects.filter(
            state__in=OPEN, next_attempt_at__lte=now, endpoint__state=WebhookEndpoint.State.ACTIVE
        )
        .exclude(Exists(waiting_predecessor))
        .order_by("next_attempt_at", "id")
    )
    return outbox.claim(
        due,
        batch_size=batch_size,
        lease_seconds=settings.VE_WEBHOOK_CLAIM_LEASE_SECONDS,
        keep=_in_seq_order,
        token_field=None,  # a delivery records its attempt only while it is still open: no token needed
    )


def _in_seq_order(rows: list[WebhookDelivery]) -> list[WebhookDelivery]:
    """Per (endpoint, ticket), only the run that starts at its first open seq: a predecessor skipped
    because another transaction holds its lock must not be overtaken."""
    first_open: dict[Hashable, int] = {
        (row["endpoint_id"], row["ticket_id"]): row["first"]
        for row in WebhookDelivery.objects.filter(
            state__in=OPEN,
            endpoint_id__in={row.endpoint_id for row in rows},
            ticket_id__in={row.ticket_id for row in rows},
        )
        .values("endpoint_id", "ticket_id")
        .annotate(first=Min("seq"))
    }
    return outbox.in_order_runs(
        sorted(rows, key=lambda r: (r.endpoint_id, r.ticket_id, r.seq)),
        stream=lambda row: (row.endpoint_id, row.ticket_id),
        first_open=first_open,
    )


# -- send ------------------------------------------------------------------------------------------


@dataclass
class _Sent:
    delivery: WebhookDelivery
    started_at: datetime.datetime
    result: transport.AttemptResult


def _bodies(rows: Sequence[WebhookDelivery], endpoints: dict[uuid.UUID, WebhookEndpoint]) -> dict[int, bytes]:
    """The body of each delivery: kept from its first attempt, or presented now (and then kept)."""
    bodies = {row.pk: bytes(row.body) for row in rows if row.body is not None}
    missing = [row for row in rows if row.body is None]
    if not missing:
        return bodies
    events = {
        event.pk: event
        for event in TicketEvent.objects.filter(pk__in={row.event_id for row in missing}).select_related(
            "ticket"
        )
    }
    related = event_related(events.values())
    presented: dict[int, bytes | None] = {}
    for event in events.values():
        payload = present_event(event, Audience.STAFF, related)
        presented[event.pk] = canonical_json_bytes(payload) if payload is not None else None
    for row in missing:
        row_event = events.get(row.event_id)
        # Never another provider's ticket, whatever queued it.
        if row_event is not None and row_event.ticket.provider_id == endpoints[row.endpoint_id].provider_id:
            body = presented.get(row.event_id)
            if body is not None:
                bodies[row.pk] = body
    return bodies


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use (after a worker forks)
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.VE_WEBHOOK_CONCURRENCY, thread_name_prefix="webhook-send"
            )
        return _pool


def _send_run(
    run: Sequence[WebhookDelivery],
    endpoint: WebhookEndpoint,
    signing_secrets: list[str],
    bodies: dict[int, bytes],
) -> list[_Sent]:
    """Send one (endpoint, ticket) run in seq order, stopping at the first failure."""
    sent = []
    for delivery in run:
        started_at = timezone.now()
        body = bodies.get(delivery.pk)
        if body is None:
            result = transport.AttemptResult(
                WebhookAttempt.Outcome.REFUSED, None, 0, "the event is not this provider's to receive"
            )
        else:
            headers = signing.signed_headers(signing_secrets, str(delivery.public_id), int(time.time()), body)
            result = transport.post(endpoint.url, body=body, headers=headers)
        sent.append(_Sent(delivery, started_at, result))
        if not result.ok:
            break
    return sent


# -- record ----------------------------------------------------------------------------------------


def _record(
    rows: Sequence[WebhookDelivery],
    sent: Sequence[_Sent],
    bodies: dict[int, bytes],
    result: DeliveryResult,
) -> None:
    now = timezone.now()
    attempted = {item.delivery.pk: item for item in sent}
    kept_bodies = {row.pk for row in rows if row.body is not None}
    updates, attempts = [], []
    for row in rows:
        if row.body is None and row.pk in bodies:
            row.body = bodies[row.pk]
        item = attempted.get(row.pk)
        if item is None:
            # Held back behind a failure of its run: due again as soon as that one is resolved.
            row.next_attempt_at = now
            result.held_back += 1
            updates.append(row)
            continue
        outcome = item.result
        row.attempts += 1
        row.round_attempts += 1
        row.last_attempt_at = item.started_at
        row.last_status_code = outcome.status_code
        row.last_latency_ms = outcome.latency_ms
        row.last_error = outcome.error[:_ERROR_MAX_LENGTH]
        if outcome.ok:
            row.state = State.DELIVERED
            row.delivered_at = now
            row.next_attempt_at = now
            result.delivered += 1
        else:
            result.failed += 1
            # No body means nothing this provider may receive: retrying would only hold its ticket back.
            delay = retry_delay(row.round_attempts) if row.pk in bodies else None
            if delay is None:
                row.state = State.FAILED
                row.next_attempt_at = now
                result.given_up += 1
            else:
                row.state = State.RETRYING
                row.next_attempt_at = now + datetime.timedelta(seconds=delay)
        updates.append(row)
        attempts.append(
            WebhookAttempt(
                delivery_id=row.pk,
                number=row.attempts,
                started_at=item.started_at,
                outcome=outcome.outcome,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error[:_ERROR_MAX_LENGTH],
            )
        )
    with transaction.atomic():
        # Lock what is still there: an endpoint deleted meanwhile took its deliveries with it, and its
        # attempts have nothing left to belong to.
        alive = set(
            WebhookDelivery.objects.select_for_update()
            .filter(pk__in=[row.pk for row in updates])
            .values_list("pk", flat=True)
        )
        _update_rows(
            [row for row in updates if row.pk in alive],
            new_bodies={pk: body for pk, body in bodies.items() if pk not in kept_bodies},
        )
        WebhookAttempt.objects.bulk_create(attempt for attempt in attempts if attempt.delivery_id in alive)
        _record_endpoint_health(sent, now=now, result=result)


# One statement for a whole batch (bulk_update's CASE per row and column costs more than the sending).
_UPDATE_SQL = """
UPDATE notifications_webhookdelivery AS d
SET state = r.state, attempts = r.attempts, round_attempts = r.round_attempts,
    next_attempt_at = r.next_attempt_at, body = COALESCE(r.body, d.body), last_attempt_at = r.last_attempt_at,
    last_status_code = r.last_status_code, last_latency_ms = r.last_latency_ms, last_error = r.last_error,
    delivered_at = r.delivered_at
FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::timestamptz[], %s::bytea[], %s::timestamptz[],
            %s::int[], %s::int[], %s::text[], %s::timestamptz[])
     AS r(id, state, attempts, round_attempts, next_attempt_at, body, last_attempt_at, last_status_code,
          last_latency_ms, last_error, delivered_at)
WHERE d.id = r.id
"""


def _update_rows(rows: Sequence[WebhookDelivery], *, new_bodies: dict[int, bytes]) -> None:
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _UPDATE_SQL,
            [
                [row.pk for row in rows],
                [row.state for row in rows],
                [row.attempts for row in rows],
                [row.round_attempts for row in rows],
                [row.next_attempt_at for row in rows],
                [new_bodies.get(row.pk) for row in rows],
                [row.last_attempt_at for row in rows],
                [row.last_status_code for row in rows],
                [row.last_latency_ms for row in rows],
                [row.last_error for row in rows],
                [row.delivered_at for row in rows],
            ],
        )


def _record_endpoint_health(sent: Sequence[_Sent], *, now: datetime.datetime, result: DeliveryResult) -> None:
    """Per endpoint: a success ends its run of failures; failures lengthen it; a long run disables it."""
    by_endpoint: dict[uuid.UUID, list[_Sent]] = defaultdict(list)
    for item in sent:
        by_endpoint[item.delivery.endpoint_id].append(item)
    # The common case, every attempt of an endpoint succeeded: one statement for all of them.
    healthy = [pk for pk, items in by_endpoint.items() if all(item.result.ok for item in items)]
    if healthy:
        WebhookEndpoint.objects.filter(pk__in=healthy).update(
            consecutive_failures=0, failing_since=None, last_success_at=now
        )
    for endpoint_id, items in by_endpoint.items():
        if endpoint_id in healthy:
            continue
        items.sort(key=lambda item: item.started_at)
        successes = [i for i, item in enumerate(items) if item.result.ok]
        endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
        if successes:
            after = items[successes[-1] + 1 :]
            endpoints.update(
                consecutive_failures=len(after),
                failing_since=after[0].started_at if after else None,
                last_success_at=items[successes[-1]].started_at,
            )
        else:
            endpoints.update(
                consecutive_failures=F("consecutive_failures") + len(items),
                failing_since=Coalesce(F("failing_since"), Value(items[0].started_at)),
            )
        threshold = now - datetime.timedelta(seconds=settings.VE_WEBHOOK_DISABLE_AFTER_SECONDS)
        disabled = endpoints.filter(
            state=WebhookEndpoint.State.ACTIVE,
            consecutive_failures__gte=settings.VE_WEBHOOK_DISABLE_MIN_FAILURES,
            failing_since__lte=threshold,
        ).update(
            state=WebhookEndpoint.State.DISABLED,
            disabled_at=now,
            disabled_reason=(
                "Disabled automatically: every delivery attempt failed for at least "
                f"{settings.VE_WEBHOOK_DISABLE_AFTER_SECONDS / 3600:g} h "
                f"(last: {items[-1].result.error[:200] or items[-1].result.outcome})."
            ),
            disabled_notice_sent_at=None,
            updated_at=now,
        )
        if disabled:
            result.disabled.append(str(endpoint_id))
            logger.warning("webhooks: endpoint %s disabled after a run of failures", endpoint_id)
            transaction.on_commit(_request_disabled_notice)


def _request_disabled_notice() -> None:
    try:
        task_send(WEBHOOK_DISABLED_NOTICES_TASK, retry=False)
    except Exception as exc:  # noqa: BLE001 - the email sweep sends the notice later
        logger.warning("webhooks: could not queue the disabled notice (%s)", exc)


# -- drain -----------------------------------------------------------------------------------------


def webhook_deliver_batch(*, batch_size: int | None = None) -> DeliveryResult:
    """Claim, send and record one batch of due deliveries."""
    rows = _claim(batch_size or settings.VE_WEBHOOK_BATCH_SIZE)
    result = DeliveryResult(claimed=len(rows), batches=1 if rows else 0)
    if not rows:
        return result
    endpoints = {
        endpoint.pk: endpoint
        for endpoint in WebhookEndpoint.objects.filter(pk__in={row.endpoint_id for row in rows})
    }
    now = timezone.now()
    signing_secrets = {pk: secrets_in_force(endpoint, now=now) for pk, endpoint in endpoints.items()}
    bodies = _bodies(rows, endpoints)
    runs: dict[tuple[uuid.UUID, uuid.UUID], list[WebhookDelivery]] = defaultdict(list)
    for row in rows:  # already in (endpoint, ticket, seq) order
        runs[(row.endpoint_id, row.ticket_id)].append(row)
    futures = [
        _executor().submit(_send_run, run, endpoints[endpoint_id], signing_secrets[endpoint_id], bodies)
        for (endpoint_id, _), run in runs.items()
    ]
    sent = [item for future in futures for item in future.result()]
    _record(rows, sent, bodies, result)
    return result


def webhook_deliver_due(*, batch_size: int | None = None, max_batches: int | None = None) -> DeliveryResult:
    """Deliver until nothing is due (or `max_batches`, after which another task is queued)."""
    cache.delete(DELIVERY_REQUESTED_KEY)  # deliveries committed from now on queue another task
    total = DeliveryResult()
    for _ in range(max_batches or settings.VE_WEBHOOK_MAX_BATCHES):
        batch = webhook_deliver_batch(batch_size=batch_size)
        total.add(batch)
        if batch.claimed == 0:
            return total
    # Bounded work per task: hand the rest to a fresh task rather than hold a worker indefinitely.
    webhook_request_delivery()
    return total
