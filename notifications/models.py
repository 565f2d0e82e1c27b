"""Reaching people off-screen: provider webhook endpoints with their delivery outbox and log, and email
notifications (per-recipient preferences, pending digests).

No side effects here: every write goes through `notifications.services`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.indexes import index_where_set

URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200


class WebhookEndpoint(models.Model):
    """A URL of a provider's that receives the ticket events it chose, signed (Standard Webhooks)."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(
        "providers.ProviderAccount", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=URL_MAX_LENGTH)
    description = models.CharField(max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    event_types = ArrayField(models.CharField(max_length=32))
    # `whsec_…`, encrypted at rest (core.secrets); shown once, on creation and on rotation.
    secret_ciphertext = models.BinaryField()
    # After a rotation deliveries are signed with both secrets until this one expires, so a receiver can
    # switch without dropping a delivery.
    previous_secret_ciphertext = models.BinaryField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    # Set once the provider's members were told about an automatic disable.
    disabled_notice_sent_at = models.DateTimeField(null=True, blank=True)
    # The current run of failed attempts (reset by a success): what the automatic disable looks at.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["provider", "state"], name="webhook_endpoint_provider_idx")]
        # Support's one write permission here (the support group holds it): register, change, rotate,
        # enable, disable and delete any provider's endpoints, and redeliver, in the console.
        permissions = [("manage_webhooks", "Can manage providers' webhook endpoints in the support console")]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event to one endpoint: the outbox row (queued in the event's transaction) and its log entry.

    `public_id` is the `webhook-id` header: the same on every attempt and redelivery, so receivers can
    drop duplicates. `body` is frozen at the first attempt, so every attempt sends the same bytes.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Failed, retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    OPEN_STATES = (State.PENDING, State.RETRYING)

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Not indexed alone: `unique_webhook_delivery_per_event` starts with it.
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.ForeignKey("tickets.TicketEvent", on_delete=models.CASCADE, related_name="+")
    # Copied from the event in the statement that queues the delivery (`webhook_deliveries_enqueue`), whose
    # own foreign key already ties the row to the ticket: no constraint of its own (a check per row at every
    # commit; the SLA sweep queues thousands) and no index of its own (`webhook_delivery_open_idx` holds it).
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    seq = models.PositiveIntegerField()
    event_type = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since it was queued or last redelivered: its place on the back-off schedule.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    body = models.BinaryField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="unique_webhook_delivery_per_event")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(state__in=["pending", "retrying"]),
                name="webhook_delivery_due_idx",
            ),
            # The claim's "is an earlier event of this ticket still open for this endpoint?" probe.
            models.Index(
                fields=["endpoint", "ticket", "seq"],
                condition=models.Q(state__in=["pending", "retrying"]),
                name="webhook_delivery_open_idx",
            ),
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, what came back, how long it took."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success (2xx)"
        HTTP_ERROR = "http_error", "HTTP error"
        TIMEOUT = "timeout", "Timed out"
        CONNECTION_ERROR = "connection_error", "Connection error"
        REFUSED = "refused", "Refused address"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number} {self.outcome}"


class EmailPreference(models.Model):
    """What one recipient wants by email: a master switch (what unsubscribing turns off) and topics.

    A customer's preference belongs to their identity (a wallet-only customer has no portal user), a
    provider member's or support agent's to their user. No row means the defaults (everything on).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="email_preference",
    )
    customer = models.OneToOneField(
        "providers.CustomerIdentity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="email_preference",
    )
    email_enabled = models.BooleanField(default=True)
    replies = models.BooleanField(default=True)
    status_changes = models.BooleanField(default=True)
    new_tickets = models.BooleanField(default=True)
    escalations = models.BooleanField(default=True)
    sla_breaches = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, customer__isnull=True)
                | models.Q(user__isnull=True, customer__isnull=False),
                name="email_preference_one_recipient",
            )
        ]

    def __str__(self) -> str:
        return f"email preference of {self.user_id or self.customer_id}"


class PendingEmail(models.Model):
    """One email to one recipient about one ticket: the events `first_seq`..`last_seq` routed to them.

    While `pending`, later events on the ticket join it (the digest); once its window closes (`due_at`) a
    task sends it. `recipient_key` (`user:<id>` or `customer:<id>`) keys the one pending row per recipient
    and ticket.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Collecting events"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Failed, retrying"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped (nothing to tell, or opted out)"
        FAILED = "failed", "Failed (gave up)"

    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        PROVIDER = "provider", "Provider member"
        SUPPORT = "support", "Support"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Taken from the event that opened it (`email_notifications_enqueue`), whose own foreign key already ties
    # the row to the ticket: no constraint of its own (a check per row at every commit) and no index of its
    # own (`pending_email_thread_idx` starts with it).
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    recipient_key = models.CharField(max_length=40)
    role = models.CharField(max_length=16, choices=Role.choices)
    # Exactly one of the two is set: each is indexed where set (`pending_email_user_idx`,
    # `pending_email_customer_idx`), for the cascade when a user or identity goes.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    customer = models.ForeignKey(
        "providers.CustomerIdentity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    first_seq = models.PositiveIntegerField()
    last_seq = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    to_address = models.CharField(max_length=254, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Each claim writes a new token: a worker whose lease ran out mid-batch finds another token on the row
    # and does not send it a second time.
    claim_token = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "recipient_key"],
                condition=models.Q(state="pending"),
                name="one_pending_email_per_recipient_ticket",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "sending", "retrying"]),
                name="pending_email_due_idx",
            ),
            # Whether a recipient was already written to about a ticket (the thread's first message or a
            # reply): sent rows only, so that queueing (thousands of rows in an SLA sweep) does not write it.
            models.Index(
                fields=["ticket", "recipient_key"],
                condition=models.Q(state="sent"),
                name="pending_email_sent_thread_idx",
            ),
            index_where_set("user", name="pending_email_user_idx"),
            index_where_set("customer", name="pending_email_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_key} on {self.ticket_id} ({self.state})"


class InboundMessage(models.Model):
    """One email delivered to a reply address (`reply+<token>@…`), stored raw before the LMTP server answers
    250, then processed by a worker into a comment — or kept with the reason it was not, for support.

    `dedupe_key` (SHA-256 of the Message-ID, or of the bytes when there is none, and the recipient) makes a
    second delivery of the same message — an MTA retrying after a lost answer — the same row.
    """

    class State(models.TextChoices):
        RECEIVED = "received", "Received, waiting for a worker"
        POSTED = "posted", "Posted to the ticket"
        DROPPED = "dropped", "Dropped (automatic mail)"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Could not be processed"

    class Reason(models.TextChoices):
        NONE = "", "—"
        BOUNCE = "bounce", "Bounce or delivery report"
        AUTO_REPLY = "auto_reply", "Auto-reply (out of office)"
        BULK = "bulk", "Bulk or list mail"
        OWN_MAIL = "own_mail", "One of our own notifications"
        TOKEN_INVALID = "token_invalid", "Not a reply address of ours"
        TOKEN_EXPIRED = "token_expired", "Reply address expired"
        NO_TICKET = "no_ticket", "Ticket gone"
        NO_ACCESS = "no_access", "Sender lost access to the ticket"
        SPOOFED_FROM = "spoofed_from", "From is not the notified person"
        DKIM_FAIL = "dkim_fail", "DKIM signature fails"
        DKIM_REQUIRED = "dkim_required", "No aligned DKIM pass (required)"
        DKIM_TEMPERROR = "dkim_temperror", "DKIM key look-up kept failing"
        RATE_LIMITED = "rate_limited", "Too many replies from this sender"
        EMPTY = "empty", "Nothing new in it"
        REFUSED = "refused", "The ticket refused it"
        MALFORMED = "malformed", "Unreadable message"
        ERROR = "error", "Processing error"

    class Dkim(models.TextChoices):
        UNCHECKED = "", "Not checked"
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        ABSENT = "absent", "No signature"

    id = models.BigAutoField(primary_key=True)
    dedupe_key = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=500, blank=True)
    recipient = models.CharField(max_length=320)
    envelope_from = models.CharField(max_length=320, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    # A short code (`spoofed_from`, `auto_reply`, …) and, in `detail`, what support reads about it.
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True)
    dkim = models.CharField("DKIM", max_length=8, choices=Dkim.choices, blank=True, default=Dkim.UNCHECKED)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.ForeignKey(
        "tickets.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    # When a worker last claimed it (counting an attempt); no other worker claims it for VE_INBOUND_CLAIM_SECONDS.
    claimed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The sweep's "received, and no worker took it" probe.
            models.Index(
                fields=["received_at"], condition=models.Q(state="received"), name="inbound_waiting_idx"
            ),
        ]

    def __str__(self) -> str:
        sender = self.from_address or self.envelope_from or "an unknown sender"
        return f"Email from {sender}: {self.subject or '(no subject)'}"
