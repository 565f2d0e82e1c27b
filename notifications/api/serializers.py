"""Input and output serializers of the webhook and email-preference API.

Inputs are strict like the ticket API's (unknown fields refused, no type coercion): they reuse its field
types. Outputs render by hand from the model rows and declare their fields for the OpenAPI schema.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from core.api import FlagField, OneLineField, StrictSerializer, TextField
from core.formats import iso_timestamp
from notifications.models import (
    DESCRIPTION_MAX_LENGTH,
    URL_MAX_LENGTH,
    EmailPreference,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.services.preferences import PREFERENCE_FIELDS
from notifications.services.webhooks import EVENT_TYPES

# -- inputs ----------------------------------------------------------------------------------------


class EventTypesField(serializers.ListField):
    child = serializers.ChoiceField(choices=EVENT_TYPES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=len(EVENT_TYPES), **kwargs)


class StrictDateTimeField(serializers.DateTimeField):
    """An ISO-8601 string only (DRF would also take a datetime object from Python callers)."""

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str):
            self.fail("invalid", format="ISO-8601")
        return super().to_internal_value(value)


URL_RULE = "an http(s) URL whose host resolves to public addresses only (checked when given)"


class WebhookEndpointCreateInput(StrictSerializer):
    server_rules = {"url": URL_RULE}

    url = TextField(max_length=URL_MAX_LENGTH, help_text="http(s) URL on a public address.")
    event_types = EventTypesField(help_text="The event types this endpoint receives.")
    description = OneLineField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class WebhookEndpointUpdateInput(StrictSerializer):
    url = TextField(max_length=URL_MAX_LENGTH, required=False)
    event_types = EventTypesField(required=False)
    description = OneLineField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True)
    enabled = FlagField(required=False, help_text="true re-enables a disabled endpoint; false pauses it.")

    needs_one_of = ("url", "event_types", "description", "enabled")
    server_rules = {"url": URL_RULE}


class RedeliverRangeInput(StrictSerializer):
    server_rules = {"until": "must be after `since`"}

    since = StrictDateTimeField(help_text="Deliveries queued at or after this time…")
    until = StrictDateTimeField(help_text="…and before this one: after `since`, or a 400 naming `until`.")
    failed_only = FlagField(default=True, help_text="Only those that gave up (default), or all of them.")


class DeliveryLogQuery(serializers.Serializer):
    state = serializers.ChoiceField(choices=WebhookDelivery.State.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text='Opaque: the value in the `Link: <…>; rel="next"` header\'s URL, passed back unchanged. '
        "An invalid one is a 400 naming `cursor`.",
    )


class EmailPreferenceInput(StrictSerializer):
    email_enabled = FlagField(required=False)
    replies = FlagField(required=False)
    status_changes = FlagField(required=False)
    new_tickets = FlagField(required=False)
    escalations = FlagField(required=False)
    sla_breaches = FlagField(required=False)


# -- outputs ---------------------------------------------------------------------------------------


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    state = serializers.ChoiceField(choices=WebhookEndpoint.State.choices)
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    failing_since = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "id": str(endpoint.id),
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": list(endpoint.event_types),
            "state": endpoint.state,
            "disabled_at": iso_timestamp(endpoint.disabled_at),
            "disabled_reason": endpoint.disabled_reason,
            "consecutive_failures": endpoint.consecutive_failures,
            "failing_since": iso_timestamp(endpoint.failing_since),
            "last_success_at": iso_timestamp(endpoint.last_success_at),
            "created_at": iso_timestamp(endpoint.created_at),
            "updated_at": iso_timestamp(endpoint.updated_at),
        }


class WebhookEndpointSecretOutput(WebhookEndpointOutput):
    secret = serializers.CharField(help_text="`whsec_…`: shown this once; verify deliveries with it.")

    def to_representation(self, created: Any) -> dict[str, Any]:
        return {**super().to_representation(created.endpoint), "secret": created.secret}


class WebhookDeliveryOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="The `webhook-id` header: the same on every attempt.")
    event_type = serializers.CharField()
    ticket_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    state = serializers.ChoiceField(choices=WebhookDelivery.State.choices)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_latency_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="While pending or retrying.")
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, delivery: WebhookDelivery) -> dict[str, Any]:
        is_open = delivery.state in WebhookDelivery.OPEN_STATES
        return {
            "id": str(delivery.public_id),
            "event_type": delivery.event_type,
            "ticket_id": str(delivery.ticket_id),
            "seq": delivery.seq,
            "state": delivery.state,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_latency_ms": delivery.last_latency_ms,
            "last_error": delivery.last_error,
            "last_attempt_at": iso_timestamp(delivery.last_attempt_at),
            "next_attempt_at": iso_timestamp(delivery.next_attempt_at) if is_open else None,
            "delivered_at": iso_timestamp(delivery.delivered_at),
            "created_at": iso_timestamp(delivery.created_at),
        }


class WebhookAttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=WebhookAttempt.Outcome.choices)
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField()

    def to_representation(self, attempt: WebhookAttempt) -> dict[str, Any]:
        return {
            "number": attempt.number,
            "started_at": iso_timestamp(attempt.started_at),
            "outcome": attempt.outcome,
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
        }


class WebhookDeliveryDetailOutput(WebhookDeliveryOutput):
    payload = serializers.DictField(
        allow_null=True, help_text="The body sent (null before the first attempt)."
    )
    attempt_log = WebhookAttemptOutput(many=True)

    def to_representation(self, detail: Any) -> dict[str, Any]:
        delivery, attempts = detail
        body = bytes(delivery.body) if delivery.body is not None else None
        return {
            **super().to_representation(delivery),
            "payload": json.loads(body) if body else None,
            "attempt_log": [WebhookAttemptOutput(attempt).data for attempt in attempts],
        }


class RedeliveredOutput(serializers.Serializer):
    redelivered = serializers.IntegerField()


class EmailPreferenceOutput(serializers.Serializer):
    email_enabled = serializers.BooleanField(
        help_text="Off: no ticket email at all (what unsubscribing does)."
    )
    replies = serializers.BooleanField()
    status_changes = serializers.BooleanField()
    new_tickets = serializers.BooleanField()
    escalations = serializers.BooleanField()
    sla_breaches = serializers.BooleanField()

    def to_representation(self, preference: EmailPreference) -> dict[str, Any]:
        return {name: getattr(preference, name) for name in PREFERENCE_FIELDS}
