"""The chain outbox: one row per ticket event, written in the event's own transaction, drained to a
ledger in per-ticket order. The receipt (backend, tx hash, height, time) is kept on the row."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


def idempotency_key_for(*, ticket_id: object, seq: int) -> str:
    """The stable key a ledger uses to recognise a resubmitted event: `ticket:<id>:<seq>`."""
    return f"ticket:{ticket_id}:{seq}"


# The same key computed by PostgreSQL from the columns `ticket_id` and `seq` (the outbox is filled in SQL).
IDEMPOTENCY_KEY_SQL = "'ticket:' || {ticket_id}::text || ':' || {seq}::text"


class OutboxEntry(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ANCHORED = "anchored", "Anchored"
        FAILED = "failed", "Failed (retrying)"

    event = models.OneToOneField("tickets.TicketEvent", on_delete=models.CASCADE, related_name="outbox")
    # Copied from the event, whose own foreign key already ties the row to the ticket: no constraint of its
    # own (a check per row at every commit) and no index of its own (`unique_outbox_ticket_seq` starts with it).
    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.CASCADE,
        related_name="outbox_entries",
        db_index=False,
        db_constraint=False,
    )
    seq = models.PositiveIntegerField()
    # Copied from the event: a customer's view of the chain state counts only the events they may see.
    is_internal = models.BooleanField(default=False)
    # `ticket:<id>:<seq>`: unique because (ticket, seq) is (`unique_outbox_ticket_seq`), so it needs no
    # index of its own; the drain finds a claimed row by its id.
    idempotency_key = models.CharField(max_length=100)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    anchored_at = models.DateTimeField(null=True, blank=True)
    backend = models.CharField(max_length=32, blank=True)
    tx_hash = models.CharField(max_length=128, blank=True)
    height = models.PositiveBigIntegerField(null=True, blank=True)
    # What the backend recorded before sending (e.g. a CometBFT tx's hash, sequence and bytes), so that the
    # next attempt after a crash recognises its own tx instead of anchoring the event twice.
    submission = models.JSONField(default=dict, blank=True)
    # Who holds the row now: each claim writes a new token. A worker whose lease ran out (its batch took
    # longer than the lease) finds another token on its rows and leaves them to their new holder.
    claim_token = models.UUIDField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=~models.Q(state="anchored"),
                name="outbox_unanchored_idx",
            ),
        ]
        constraints = [
            # One row per event of a ticket; also what the drain's "is an earlier event of this ticket still
            # unanchored?" probe reads (a ticket's rows are few).
            models.UniqueConstraint(fields=["ticket", "seq"], name="unique_outbox_ticket_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.state})"


class EnvelopeKey(models.Model):
    """The shred key of one event's envelope (`chain.envelopes`, version 2): held here and nowhere else.

    Created when the event is first sealed (reused by every retry, so a resubmission's envelope opens with
    the same key as the anchored one). Erasure destroys it — `key` becomes NULL, `destroyed_at` is set — and
    the anchored ciphertext can no longer be opened by anyone. A row destroyed before the event was sealed
    makes the drain seal with a throwaway key.
    """

    event = models.OneToOneField(
        "tickets.TicketEvent", on_delete=models.CASCADE, primary_key=True, related_name="envelope_key"
    )
    key = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "envelope shred key"

    def __str__(self) -> str:
        return f"shred key of event {self.event_id}{' (destroyed)' if self.destroyed_at else ''}"
