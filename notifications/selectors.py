"""Reads of the notifications app, scoped by party: webhook endpoints and their delivery log, email
recipients of a ticket, preferences."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from core.errors import Forbidden, NotFound
from core.formats import parse_uuid
from core.parties import Party
from notifications.models import (
    EmailPreference,
    InboundMessage,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from providers.models import CustomerIdentity
from providers.selectors import SUPPORT_GROUP


def webhook_endpoints_of(party: Party) -> QuerySet[WebhookEndpoint]:
    """A provider's own endpoints; every endpoint for support; none for anyone else."""
    endpoints = WebhookEndpoint.objects.select_related("provider")
    if party.is_support:
        return endpoints
    if party.is_provider and party.provider_id is not None:
        return endpoints.filter(provider_id=party.provider_id)
    return endpoints.none()


def require_webhook_manager(party: Party) -> None:
    """The webhook API is for providers: others get a 403 (support works in the admin)."""
    if not (party.is_provider and party.provider_id is not None):
        raise Forbidden("Webhook endpoints are managed by providers (support: in the admin).")


def webhook_endpoint_list(party: Party) -> list[WebhookEndpoint]:
    require_webhook_manager(party)
    return list(webhook_endpoints_of(party).order_by("created_at"))


def webhook_endpoint_get(party: Party, endpoint_id: object) -> WebhookEndpoint:
    require_webhook_manager(party)
    parsed = parse_uuid(endpoint_id)
    endpoint = webhook_endpoints_of(party).filter(pk=parsed).first() if parsed else None
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def webhook_delivery_log(
    endpoint: WebhookEndpoint,
    *,
    state: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """An endpoint's deliveries, newest first (keyset pages by internal id)."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).defer("body")
    if state:
        deliveries = deliveries.filter(state=state)
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created_at__lt=until)
    if before_id is not None:
        deliveries = deliveries.filter(pk__lt=before_id)
    return list(deliveries.order_by("-id")[:limit])


def webhook_delivery_get(
    endpoint: WebhookEndpoint, delivery_id: object
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    parsed = parse_uuid(delivery_id)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, public_id=parsed).first() if parsed else None
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery, list(delivery.attempt_log.order_by("number"))


# -- email recipients ------------------------------------------------------------------------------


def _with_email(users: QuerySet[User]) -> QuerySet[User]:
    return users.filter(is_active=True).exclude(email="")


def provider_member_recipients(provider_id: int) -> QuerySet[User]:
    """Members of a provider who have an email address."""
    return _with_email(get_user_model().objects.filter(provider_membership__provider_id=provider_id))


def provider_members_recipients(provider_ids: Iterable[int]) -> QuerySet[User]:
    """Members of any of these providers who have an email address."""
    return _with_email(
        get_user_model().objects.filter(provider_membership__provider_id__in=set(provider_ids))
    )


def support_recipients() -> QuerySet[User]:
    """VirtEngine support agents with an email address."""
    return _with_email(get_user_model().objects.filter(is_staff=True, groups__name=SUPPORT_GROUP)).distinct()


def customer_recipients(addresses: Iterable[str]) -> QuerySet[CustomerIdentity]:
    """Customer identities among `addresses` with an email address (their own, or their portal user's)."""
    return CustomerIdentity.objects.filter(address__in=[a for a in addresses if a]).filter(
        Q(email__gt="") | Q(user__is_active=True, user__email__gt="")
    )


def customer_email(identity: CustomerIdentity) -> str:
    """Where a customer's email goes: the identity's own address, else their (active) portal user's."""
    if identity.email:
        return identity.email
    user = identity.user
    return user.email if user is not None and user.is_active else ""


def opted_in(topic: str) -> Q:
    """Recipients (users or identities) whose preference lets email of `topic` through (no row: yes)."""
    return Q(email_preference__isnull=True) | Q(
        email_preference__email_enabled=True, **{f"email_preference__{topic}": True}
    )


def preference_of(*, user_id: int | None = None, customer_id: int | None = None) -> EmailPreference:
    """The stored preference, or the defaults (unsaved)."""
    lookup = {"user_id": user_id} if user_id is not None else {"customer_id": customer_id}
    return EmailPreference.objects.filter(**lookup).first() or EmailPreference(**lookup)


# -- replies by email --------------------------------------------------------------------------------


def inbound_messages_for_console() -> QuerySet[InboundMessage]:
    """Every stored reply by email, newest first, for support (the raw bytes left out of lists)."""
    return InboundMessage.objects.select_related("ticket").defer("raw").order_by("-received_at", "-id")


def inbound_message_headers(message: InboundMessage, *, max_chars: int = 8000) -> str:
    """The header block of a stored message as text (undecodable bytes replaced), bounded."""
    raw = bytes(InboundMessage.objects.filter(pk=message.pk).values_list("raw", flat=True).first() or b"")
    head = raw[: max_chars * 2].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.decode("utf-8", errors="replace")[:max_chars]


def reply_recipient(person: str) -> tuple[str, str] | None:
    """A person by username or email address, as a reply address names them (`user:<id>` for provider members
    and support, `customer:<id>` for customers) with their email address; None if unknown."""
    user = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username=person) | Q(email__iexact=person))
        .first()
    )
    if user is not None:
        identity = CustomerIdentity.objects.filter(user=user).first()
        if identity is not None and not user.is_staff and not hasattr(user, "provider_membership"):
            return f"customer:{identity.pk}", customer_email(identity)
        return f"user:{user.pk}", user.email
    identity = CustomerIdentity.objects.filter(email__iexact=person).first()
    return (f"customer:{identity.pk}", identity.email) if identity is not None else None
