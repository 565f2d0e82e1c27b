"""Writes about provider webhook endpoints: register, change, delete, rotate the secret; queue deliveries
in an event's transaction; redeliver; tell a provider that an endpoint was disabled.

Providers manage their own endpoints (the REST API); support manages any provider's (the admin). Every
function takes the acting party and scopes by it, as the ticket services do.
"""

from __future__ import annotations

import datetime
import logging
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from core.bulk import array_literal, distinct_with_positions
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.parties import Party
from core.secrets import decrypt_secret, encrypt_secret
from core.tasks import task_send_debounced
from core.text import clean_text
from notifications import signing
from notifications.models import (
    DESCRIPTION_MAX_LENGTH,
    URL_MAX_LENGTH,
    PendingEmail,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.selectors import provider_member_recipients, webhook_endpoints_of
from notifications.transport import AddressRefused, check_host
from providers.models import ProviderAccount
from tickets.models import Ticket, TicketEvent
from tickets.presenter import SHAPES

logger = logging.getLogger(__name__)

DELIVERY_REQUESTED_KEY = "notifications:webhook-delivery-requested"
EVENT_TYPES = tuple(sorted(SHAPES))
WEBHOOK_DELIVER_TASK = "notifications.tasks.webhook_deliver_task"


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint and its signing secret, which is shown this once."""

    endpoint: WebhookEndpoint
    secret: str


# -- validation ------------------------------------------------------------------------------------


# What RFC 3986 lets a URL's path, query and fragment hold: its unreserved and reserved characters, and
# percent-escapes. A space, a quote or an angle bracket must be escaped by whoever wrote the URL.
_URI_REST = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_URL_VALIDATOR = URLValidator(schemes=["http", "https"])


def _syntax_problem(url: str) -> str | None:
    """Why `url` is no well-formed webhook URL (None when it is one): Django's URL validator, the port in
    1..65535, RFC 3986's characters after the host, no credentials."""
    if len(url) > URL_MAX_LENGTH:
        return f"Ensure this field has no more than {URL_MAX_LENGTH} characters."
    try:
        _URL_VALIDATOR(url)
        parts = urlsplit(url)
        port = parts.port
    except (DjangoValidationError, ValueError):
        return "Expected an http:// or https:// URL with a valid host (characters such as spaces percent-encoded)."
    if port is not None and not 1 <= port <= 65535:
        return "The port must be a number between 1 and 65535."
    if parts.username or parts.password:
        return "Credentials in the URL are not accepted; authenticate deliveries by their signature."
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    if not _URI_REST.fullmatch(rest):
        return "The path, query and fragment may hold only URL characters; percent-encode the others."
    return None


def _url_problem(url: str) -> str | None:
    problem = _syntax_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    try:
        check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except AddressRefused as refused:
        return f"Refused: {refused}; webhooks are delivered to public addresses only."
    return None


def clean_url(url: str) -> str:
    url = (url or "").strip()
    problem = _url_problem(url)
    if problem:
        raise ValidationFailed("url is not a deliverable webhook URL.", fields={"url": [problem]})
    return url


def clean_event_types(event_types: object) -> list[str]:
    if not isinstance(event_types, (list, tuple)) or not event_types:
        raise ValidationFailed(
            "event_types must list at least one event type.",
            fields={"event_types": [f"Choose from: {', '.join(EVENT_TYPES)}."]},
        )
    unknown = sorted({str(kind) for kind in event_types} - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            "event_types names unknown event types.",
            fields={
                "event_types": [f"Unknown: {', '.join(unknown)}. Choose from: {', '.join(EVENT_TYPES)}."]
            },
        )
    return sorted(set(event_types))


def clean_description(description: str) -> str:
    return clean_text(
        "description", description, max_length=DESCRIPTION_MAX_LENGTH, required=False, single_line=True
    )


def _require_manager(actor: Party) -> None:
    if not (actor.is_support or (actor.is_provider and actor.provider_id is not None)):
        raise Forbidden("Only providers (and VirtEngine support) manage webhook endpoints.")


def _lock_endpoint(actor: Party, endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    _require_manager(actor)
    endpoint = webhook_endpoints_of(actor).select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


# -- endpoints -------------------------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Party,
    url: str,
    event_types: list[str],
    description: str = "",
    provider: ProviderAccount | None = None,
) -> EndpointWithSecret:
    """Register an endpoint for the actor's provider (support names the provider). The secret is returned
    here once and stored only encrypted."""
    _require_manager(actor)
    if actor.is_provider:
        assert actor.provider_id is not None  # _require_manager refuses a provider party without one
        provider_id = actor.provider_id
    elif provider is not None:
        provider_id = provider.pk
    else:
        raise ValidationFailed("provider is required.", fields={"provider": ["Choose the provider."]})
    secret = signing.new_secret()
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        provider_id=provider_id,
        url=clean_url(url),
        event_types=clean_event_types(event_types),
        description=clean_description(description),
        secret_ciphertext=encrypt_secret(secret),
        created_by_label=actor.label,
        created_at=now,
        updated_at=now,
    )
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def webhook_endpoint_update(
    *,
    actor: Party,
    endpoint_id: uuid.UUID | str,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint; `enabled=True` re-enables a disabled one (its held deliveries resume)."""
    endpoint = _lock_endpoint(actor, endpoint_id)
    now = timezone.now()
    if url is not None:
        endpoint.url = clean_url(url)
    if event_types is not None:
        endpoint.event_types = clean_event_types(event_types)
    if description is not None:
        endpoint.description = clean_description(description)
    if enabled is True and endpoint.state == WebhookEndpoint.State.DISABLED:
        endpoint.state = WebhookEndpoint.State.ACTIVE
        endpoint.disabled_at = None
        endpoint.disabled_reason = ""
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        # What was held back while it was off goes now, in order.
        WebhookDelivery.objects.filter(endpoint=endpoint, state__in=WebhookDelivery.OPEN_STATES).update(
            next_attempt_at=now
        )
        transaction.on_commit(webhook_request_delivery)
    elif enabled is False and endpoint.state == WebhookEndpoint.State.ACTIVE:
        endpoint.state = WebhookEndpoint.State.DISABLED
        endpoint.disabled_at = now
        endpoint.disabled_reason = f"Disabled by {actor.label}."
        endpoint.disabled_notice_sent_at = now  # they did it themselves: nobody needs telling
    endpoint.updated_at = now
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Party, endpoint_id: uuid.UUID | str) -> None:
    """Delete an endpoint with its delivery log."""
    _lock_endpoint(actor, endpoint_id).delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor: Party, endpoint_id: uuid.UUID | str) -> EndpointWithSecret:
    """A new secret, returned once. The old one keeps signing (beside the new) for
    VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS, so the receiver can switch without losing a delivery."""
    endpoint = _lock_endpoint(actor, endpoint_id)
    now = timezone.now()
    secret = signing.new_secret()
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = now + datetime.timedelta(
        seconds=settings.VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS
    )
    endpoint.secret_ciphertext = encrypt_secret(secret)
    endpoint.updated_at = now
    endpoint.save()
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


def secrets_in_force(endpoint: WebhookEndpoint, *, now: datetime.datetime) -> list[str]:
    """The secrets deliveries are signed with now: the current one, and the previous one in its grace."""
    current = [decrypt_secret(bytes(endpoint.secret_ciphertext))]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext and expires is not None and expires > now:
        current.append(decrypt_secret(bytes(endpoint.previous_secret_ciphertext)))
    return current


# -- the outbox ------------------------------------------------------------------------------------


# The deliveries of a batch of events, in one statement: each event (its id, ticket, number, kind, time and
# its ticket's provider, as the caller holds them) goes to every active endpoint of that provider that chose
# its kind; the delivery's `webhook-id` comes from PostgreSQL. No table but the endpoints' is read, so the
# plan does not depend on how many events and tickets there are.
_ENQUEUE_SQL = """
INSERT INTO notifications_webhookdelivery
    (public_id, endpoint_id, event_id, ticket_id, seq, event_type, state, attempts, round_attempts,
     next_attempt_at, last_error, created_at)
SELECT gen_random_uuid(), w.id, q.event_id, q.ticket_id, q.seq, (%(kinds)s::text[])[q.kind], %(pending)s, 0, 0,
       (%(times)s::timestamptz[])[q.at], '', (%(times)s::timestamptz[])[q.at]
FROM unnest(%(event_ids)s::bigint[], %(ticket_ids)s::uuid[], %(seqs)s::int[], %(kind_of)s::int[],
            %(provider_ids)s::bigint[], %(at_of)s::int[])
     AS q(event_id, ticket_id, seq, kind, provider_id, at)
JOIN notifications_webhookendpoint AS w
  ON w.provider_id = q.provider_id AND w.state = %(active)s AND (%(kinds)s::text[])[q.kind] = ANY(w.event_types)
ORDER BY q.event_id, w.id
RETURNING event_id
"""


def webhook_deliveries_enqueue(events: Sequence[tuple[TicketEvent, Ticket]]) -> list[int]:
    """Queue each event for every active endpoint of its ticket's provider that chose its kind — one
    statement however many events (the SLA sweep records thousands at once; a reply, one). Runs in the
    events' transaction: the deliveries commit with them or not at all. Returns the deliveries queued per
    event (the event hook `notifications_trigger` asks for a delivery task once the transaction commits)."""
    if not events:
        return []
    kinds, kind_of = distinct_with_positions([event.kind for event, _ in events])
    times, at_of = distinct_with_positions([event.created_at for event, _ in events])
    with connection.cursor() as cursor:
        cursor.execute(
            _ENQUEUE_SQL,
            {
                "event_ids": array_literal([event.pk for event, _ in events]),
                "ticket_ids": array_literal([event.ticket_id for event, _ in events]),
                "seqs": array_literal([event.seq for event, _ in events]),
                "kind_of": array_literal(kind_of),
                "provider_ids": array_literal([ticket.provider_id for _, ticket in events]),
                "at_of": array_literal(at_of),
                "kinds": kinds,
                "times": times,
                "pending": WebhookDelivery.State.PENDING.value,
                "active": WebhookEndpoint.State.ACTIVE.value,
            },
        )
        per_event = Counter(event_id for (event_id,) in cursor.fetchall())
    return [per_event[event.pk] for event, _ in events]


def webhook_request_delivery() -> None:
    """Queue a delivery task unless one is queued already (debounced through a Redis flag, cleared when a
    task starts). A lost trigger only delays: beat runs the task every VE_WEBHOOK_SWEEP_SECONDS."""
    try:
        task_send_debounced(
            WEBHOOK_DELIVER_TASK,
            flag=DELIVERY_REQUESTED_KEY,
            timeout=settings.VE_WEBHOOK_TRIGGER_DEBOUNCE_SECONDS,
        )
    except Exception as exc:  # noqa: BLE001 - Redis or the broker down: the deliveries are safe in the outbox
        logger.warning("webhooks: could not queue a delivery task (%s); the beat sweep will pick it up", exc)


# -- redelivery ------------------------------------------------------------------------------------


def _redeliver(deliveries: QuerySet[WebhookDelivery], *, now: datetime.datetime) -> int:
    count = deliveries.update(state=WebhookDelivery.State.PENDING, round_attempts=0, next_attempt_at=now)
    if count:
        transaction.on_commit(webhook_request_delivery)
    return count


def _require_active(endpoint: WebhookEndpoint) -> None:
    if endpoint.state != WebhookEndpoint.State.ACTIVE:
        raise Conflict("The endpoint is disabled; enable it first.", code="endpoint_disabled")


@transaction.atomic
def webhook_delivery_redeliver(
    *, actor: Party, endpoint_id: uuid.UUID | str, delivery_id: uuid.UUID | str
) -> WebhookDelivery:
    """Send one delivery again (same id, same body), whatever its state, through the normal queue."""
    endpoint = _lock_endpoint(actor, endpoint_id)
    _require_active(endpoint)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, public_id=delivery_id).first()
    if delivery is None:
        raise NotFound("Delivery not found.")
    _redeliver(WebhookDelivery.objects.filter(pk=delivery.pk), now=timezone.now())
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def webhook_deliveries_redeliver(
    *,
    actor: Party,
    endpoint_id: uuid.UUID | str,
    since: datetime.datetime,
    until: datetime.datetime,
    failed_only: bool = True,
) -> int:
    """Send again the deliveries queued in [since, until) — those that gave up, or all of them."""
    if until <= since:
        raise ValidationFailed("until must be after since.", fields={"until": ["Must be after since."]})
    endpoint = _lock_endpoint(actor, endpoint_id)
    _require_active(endpoint)
    deliveries = WebhookDelivery.objects.filter(
        endpoint=endpoint, created_at__gte=since, created_at__lt=until
    )
    if failed_only:
        deliveries = deliveries.filter(state=WebhookDelivery.State.FAILED)
    return _redeliver(deliveries, now=timezone.now())


# -- telling the provider --------------------------------------------------------------------------


def webhook_disabled_notices_send() -> int:
    """Email the members of each provider whose endpoint was disabled automatically; notices sent.

    Run by a task after the disabling commits, and by the email sweep (a failed send is tried again)."""
    endpoints = list(
        WebhookEndpoint.objects.filter(
            state=WebhookEndpoint.State.DISABLED, disabled_notice_sent_at__isnull=True
        ).select_related("provider")
    )
    sent = 0
    for endpoint in endpoints:
        context = {"endpoint": endpoint, "provider": endpoint.provider}
        text = render_to_string("email/webhook_disabled.txt", context)
        html = render_to_string("email/webhook_disabled.html", context)
        messages = []
        for member in provider_member_recipients(endpoint.provider_id):  # one email each: no shared To:
            message = EmailMultiAlternatives(
                subject=f"Webhook endpoint disabled: {endpoint.url}",
                body=text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[member.email],
                headers={"Auto-Submitted": "auto-generated"},
            )
            message.attach_alternative(html, "text/html")
            messages.append(message)
        try:
            if messages:
                get_connection().send_messages(messages)
        except Exception as exc:  # noqa: BLE001 - SMTP down: the sweep tries again
            logger.warning(
                "webhooks: could not tell %s that %s was disabled (%s)", endpoint.provider, endpoint, exc
            )
            continue
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_notice_sent_at=timezone.now())
        sent += 1
    return sent


def notifications_log_purge(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Delete finished webhook deliveries (with their attempts) and emails older than
    VE_NOTIFICATIONS_LOG_RETENTION_DAYS: (deliveries, emails) deleted. Run daily by beat."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.VE_NOTIFICATIONS_LOG_RETENTION_DAYS)
    deliveries, _ = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, state__in=[WebhookDelivery.State.DELIVERED, WebhookDelivery.State.FAILED]
    ).delete()
    emails, _ = PendingEmail.objects.filter(
        created_at__lt=cutoff,
        state__in=[PendingEmail.State.SENT, PendingEmail.State.SKIPPED, PendingEmail.State.FAILED],
    ).delete()
    return deliveries, emails
