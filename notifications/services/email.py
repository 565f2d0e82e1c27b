"""Email notifications: queued per recipient and ticket in the event's transaction, sent by Celery.

`email_notifications_enqueue` (called by `tickets.services.recording.record_events`) routes the event
(`notifications.routing`) to its recipients and adds it to each recipient's pending email for the ticket
— one row per recipient and ticket while it collects (the digest): several events within
VE_EMAIL_DIGEST_WINDOW_SECONDS of the first become one email. `emails_flush_due` (the task
`email_flush_task`, scheduled after commit for when the window closes and swept by beat) claims due rows
with `FOR UPDATE SKIP LOCKED`, renders each for its recipient (`compose`, in
`notifications.services.email_compose`: every event through the event presenter with the recipient's
audience, so a customer's email never holds an internal note) and sends it through Django's email backend.
A failure retries with back-off; preferences are checked again at send time.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.mail import get_connection
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.utils import timezone

from core import outbox
from core.bulk import array_literal, distinct_with_positions
from core.tasks import task_send
from notifications import routing
from notifications.models import PendingEmail
from notifications.selectors import (
    customer_recipients,
    opted_in,
    provider_members_recipients,
    support_recipients,
)

# `_send` looks `compose` up in this module, where a test can stand in for it.
from notifications.services.email_compose import compose
from tickets.models import Ticket, TicketEvent

logger = logging.getLogger(__name__)

Role = PendingEmail.Role
State = PendingEmail.State
_ERROR_MAX_LENGTH = 2000
EMAIL_FLUSH_TASK = "notifications.tasks.email_flush_task"


# -- enqueue (in the event's transaction) ----------------------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    key: str
    role: str
    user_id: int | None = None
    customer_id: int | None = None


# What decides whom an event's routes reach: the routes, the ticket's provider, its customer addresses (when a
# route is a customer's) and the actor (never told about their own doing).
_RecipientsKey = tuple[tuple[routing.Route, ...], int, tuple[str, str] | None, int | None]


class _RecipientsFinder:
    """Who the routes of a batch of events reach: one query per (role, topic) the batch needs, however
    many events and tickets."""

    def __init__(self, routed: Sequence[tuple[TicketEvent, Ticket, list[routing.Route]]]) -> None:
        addresses: dict[str, set[str]] = {}
        providers: dict[str, set[int]] = {}
        support: set[str] = set()
        for _event, ticket, routes in routed:
            for route in routes:
                if route.role == Role.CUSTOMER:
                    addresses.setdefault(route.topic, set()).update(self._addresses(ticket))
                elif route.role == Role.PROVIDER:
                    providers.setdefault(route.topic, set()).add(ticket.provider_id)
                else:
                    support.add(route.topic)
        self.customers: dict[str, dict[str, list[int]]] = {}
        for topic, wanted in addresses.items():
            by_address = self.customers.setdefault(topic, {})
            identities = (
                customer_recipients(wanted)
                .filter(opted_in(topic))
                .order_by("pk")
                .values_list("pk", "address")
            )
            for pk, address in identities:
                by_address.setdefault(address, []).append(pk)
        self.members: dict[str, dict[int, list[int]]] = {}
        for topic, provider_ids in providers.items():
            by_provider = self.members.setdefault(topic, {})
            members = (
                provider_members_recipients(provider_ids)
                .filter(opted_in(topic))
                .order_by("pk")
                .values_list("pk", "provider_membership__provider_id")
                .distinct()
            )
            for pk, provider_id in members:
                by_provider.setdefault(provider_id, []).append(pk)
        self.agents: dict[str, list[int]] = {
            topic: list(
                support_recipients().filter(opted_in(topic)).order_by("pk").values_list("pk", flat=True)
            )
            for topic in support
        }
        self._memo: dict[_RecipientsKey, list[_Recipient]] = {}

    @staticmethod
    def _addresses(ticket: Ticket) -> set[str]:
        return {a for a in (ticket.customer_address, ticket.created_by_address) if a}

    def of(self, event: TicketEvent, ticket: Ticket, routes: list[routing.Route]) -> list[_Recipient]:
        """Who an event's routes reach on its ticket: computed once per distinct (routes, provider,
        customer addresses where a route is a customer's, actor) of the batch — a sweep's thousands of
        breaches reach the same agents."""
        to_customer = any(route.role == Role.CUSTOMER for route in routes)
        key: _RecipientsKey = (
            tuple(routes),
            ticket.provider_id,
            (ticket.customer_address, ticket.created_by_address) if to_customer else None,
            event.actor_id,
        )
        recipients = self._memo.get(key)
        if recipients is None:
            recipients = self._memo[key] = self._of(event, ticket, routes)
        return recipients

    def _of(self, event: TicketEvent, ticket: Ticket, routes: list[routing.Route]) -> list[_Recipient]:
        found: dict[str, _Recipient] = {}
        for route in routes:
            if route.role == Role.CUSTOMER:
                by_address = self.customers.get(route.topic, {})
                for pk in sorted({pk for a in self._addresses(ticket) for pk in by_address.get(a, ())}):
                    found.setdefault(
                        f"customer:{pk}", _Recipient(f"customer:{pk}", route.role, customer_id=pk)
                    )
                continue
            if route.role == Role.PROVIDER:
                users = self.members.get(route.topic, {}).get(ticket.provider_id, [])
            else:
                users = self.agents.get(route.topic, [])
            for pk in users:
                if pk == event.actor_id:
                    continue  # nobody is told about what they did themselves
                # One email per person and ticket: a support agent who is also routed as something else
                # gets the first role's.
                found.setdefault(f"user:{pk}", _Recipient(f"user:{pk}", route.role, user_id=pk))
        return list(found.values())


# One row per recipient and ticket (its first event's ticket, number and time, its last number); the id,
# the recipient key and the window's end are made by PostgreSQL. A recipient's pending digest for the ticket
# takes the events instead. Returns the digests this opened, by ticket and first number. No table but the
# pending emails' is read, so the plan does not depend on how many events and tickets there are.
_UPSERT_SQL = """
WITH upserted AS (
    INSERT INTO notifications_pendingemail
        (id, ticket_id, recipient_key, role, user_id, customer_id, first_seq, last_seq, due_at, state,
         attempts, next_attempt_at, last_error, to_address, message_id, created_at)
    SELECT gen_random_uuid(), q.ticket_id,
           CASE WHEN q.user_id IS NOT NULL THEN 'user:' || q.user_id ELSE 'customer:' || q.customer_id END,
           (%(roles)s::text[])[q.role], q.user_id, q.customer_id, q.first_seq, q.last_seq,
           (%(times)s::timestamptz[])[q.at] + %(window)s, 'pending', 0,
           (%(times)s::timestamptz[])[q.at] + %(window)s, '', '', '', (%(times)s::timestamptz[])[q.at]
    FROM unnest(%(ticket_ids)s::uuid[], %(role_of)s::int[], %(user_ids)s::bigint[], %(customer_ids)s::bigint[],
                %(first_seqs)s::int[], %(last_seqs)s::int[], %(at_of)s::int[])
         AS q(ticket_id, role, user_id, customer_id, first_seq, last_seq, at)
    ON CONFLICT (ticket_id, recipient_key) WHERE state = 'pending'
    DO UPDATE SET last_seq = GREATEST(notifications_pendingemail.last_seq, EXCLUDED.last_seq)
    RETURNING ticket_id, first_seq, (xmax = 0) AS inserted
)
SELECT DISTINCT ticket_id, first_seq FROM upserted WHERE inserted
"""


@dataclass
class _Pending:
    """One recipient's share of a batch for one ticket (a row of the upsert)."""

    recipient: _Recipient
    first: TicketEvent
    last_seq: int


def email_notifications_enqueue(
    events: Sequence[tuple[TicketEvent, Ticket]],
) -> list[datetime.datetime | None]:
    """Add each event to the pending email of each recipient it is routed to — a few queries and one
    upsert for the whole batch. Returns, per event, when the digest it newly opened closes (the event hook
    `notifications_trigger` schedules the flush for then), or None."""
    routed = [(event, ticket, routing.routes_for(event)) for event, ticket in events]
    routed = [item for item in routed if item[2]]
    if not routed:
        return [None] * len(events)
    finder = _RecipientsFinder(routed)
    rows: dict[tuple[object, str], _Pending] = {}
    for event, ticket, routes in routed:
        for recipient in finder.of(event, ticket, routes):
            pending = rows.get((ticket.pk, recipient.key))
            if pending is None:
                rows[(ticket.pk, recipient.key)] = _Pending(recipient, event, event.seq)
            else:  # the batch holds one row per recipient and ticket: the upsert may touch a row only once
                pending.last_seq = max(pending.last_seq, event.seq)
    if not rows:
        return [None] * len(events)
    window = datetime.timedelta(seconds=settings.VE_EMAIL_DIGEST_WINDOW_SECONDS)
    pending_rows = list(rows.values())
    roles, role_of = distinct_with_positions([str(p.recipient.role) for p in pending_rows])
    times, at_of = distinct_with_positions([p.first.created_at for p in pending_rows])
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_SQL,
            {
                "ticket_ids": array_literal([p.first.ticket_id for p in pending_rows]),
                "role_of": array_literal(role_of),
                "user_ids": array_literal([p.recipient.user_id for p in pending_rows]),
                "customer_ids": array_literal([p.recipient.customer_id for p in pending_rows]),
                "first_seqs": array_literal([p.first.seq for p in pending_rows]),
                "last_seqs": array_literal([p.last_seq for p in pending_rows]),
                "at_of": array_literal(at_of),
                "roles": roles,
                "times": times,
                # psycopg sends a timedelta as an interval; django-stubs' parameter types leave it out.
                "window": window,  # type: ignore[dict-item]
            },
        )
        opened = set(cursor.fetchall())
    return [
        event.created_at + window if (event.ticket_id, event.seq) in opened else None
        for event, _ticket in events
    ]


def email_request_flush(*, at: datetime.datetime) -> None:
    """Schedule a flush for when a digest window closes (one task per 5-second slot; beat sweeps too)."""
    slot = int(at.timestamp()) // 5
    try:
        if cache.add(
            f"notifications:email-flush:{slot}", 1, timeout=settings.VE_EMAIL_DIGEST_WINDOW_SECONDS + 60
        ):
            task_send(EMAIL_FLUSH_TASK, eta=at + datetime.timedelta(seconds=0.5), retry=False)
    except Exception as exc:  # noqa: BLE001 - the write has committed; the beat sweep sends the email
        logger.warning("email: could not schedule a flush (%s); the beat sweep will send it", exc)


# -- flush (Celery) --------------------------------------------------------------------------------


@dataclass
class FlushResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def email_retry_delay(attempts: int) -> float:
    return outbox.exponential_backoff(
        attempts,
        base=float(settings.VE_EMAIL_RETRY_BASE_SECONDS),
        cap=float(settings.VE_EMAIL_RETRY_MAX_SECONDS),
    )


def _claim(now: datetime.datetime, batch_size: int) -> list[PendingEmail]:
    due = PendingEmail.objects.filter(
        state__in=[State.PENDING, State.SENDING, State.RETRYING], next_attempt_at__lte=now
    ).order_by("next_attempt_at")
    return outbox.claim(
        due,
        batch_size=batch_size,
        lease_seconds=settings.VE_EMAIL_CLAIM_LEASE_SECONDS,
        also={"state": State.SENDING},
    )


def _lease_end() -> datetime.datetime:
    return outbox.lease_end(settings.VE_EMAIL_CLAIM_LEASE_SECONDS)


def _still_ours(row: PendingEmail) -> QuerySet[PendingEmail]:
    """The row, as long as this worker's claim holds it (another worker claims it once the lease ran out)."""
    return PendingEmail.objects.filter(pk=row.pk, claim_token=row.claim_token, state=State.SENDING)


def _send(rows: Sequence[PendingEmail], result: FlushResult, *, moment: datetime.datetime) -> None:
    mail_connection = get_connection()
    try:
        for row in rows:
            now = timezone.now()
            retry_from = max(now, moment)  # a flush "as of" a later moment must not claim its retries again
            # Renew the lease just before sending; a row lost to another worker is theirs to send.
            if not _still_ours(row).update(next_attempt_at=_lease_end()):
                continue
            try:
                composed = compose(row)
                if composed is not None:
                    message, message_id = composed
                    message.connection = mail_connection
                    message.send()
            except Exception as exc:  # noqa: BLE001 - one row's failure never stops the others
                _record_failure(row, exc, result, retry_from=retry_from)
                continue
            if composed is None:
                _still_ours(row).update(state=State.SKIPPED, next_attempt_at=now)
                result.skipped += 1
                continue
            _still_ours(row).update(
                state=State.SENT,
                attempts=row.attempts + 1,
                sent_at=now,
                next_attempt_at=now,
                to_address=message.to[0],
                message_id=message_id,
                last_error="",
            )
            result.sent += 1
    finally:
        mail_connection.close()


def email_failure_is_permanent(exc: BaseException) -> bool:
    """Whether trying again would fail the same way: a 5xx from the mail server, or an email that cannot
    be built (a header Django refuses, a template error). Connection trouble, a 4xx and a database
    outage pass."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return not isinstance(exc, (OSError, DatabaseError))


def _record_failure(
    row: PendingEmail, exc: BaseException, result: FlushResult, *, retry_from: datetime.datetime
) -> None:
    """A permanent failure is final at once (state failed, the error kept for support to read in the
    console); a passing one is retried with back-off until VE_EMAIL_MAX_ATTEMPTS."""
    attempts = row.attempts + 1
    permanent = email_failure_is_permanent(exc)
    gave_up = permanent or attempts >= settings.VE_EMAIL_MAX_ATTEMPTS
    error = f"{'Permanent: ' if permanent else ''}{type(exc).__name__}: {exc}"
    _still_ours(row).update(
        state=State.FAILED if gave_up else State.RETRYING,
        attempts=attempts,
        last_error=error[:_ERROR_MAX_LENGTH],
        next_attempt_at=retry_from + datetime.timedelta(seconds=email_retry_delay(attempts)),
    )
    result.failed += 1
    logger.warning(
        "email: sending %s failed (attempt %d, %s): %s",
        row.pk,
        attempts,
        "giving up" if gave_up else "will retry",
        exc,
    )


def emails_flush_due(*, now: datetime.datetime | None = None, batch_size: int = 100) -> FlushResult:
    """Send every pending email whose digest window has closed (and retry the failed ones that are due)."""
    result = FlushResult()
    moment = now or timezone.now()
    while rows := _claim(moment, batch_size):
        _send(rows, result, moment=moment)
    return result
