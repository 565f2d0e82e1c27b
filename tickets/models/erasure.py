"""Erasures: a record of each time a person's content (or an expired ticket's) was erased.

The rows erased keep their ids, sequence numbers, times, kinds and hashes and point here (`erasure`), so
that the history stays verifiable and `verify_chain` can tell an erasure from tampering. The record names
no one: it holds a digest of the person's identifier, the request's reference, the reason and who did it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ContentErasure(models.Model):
    class Basis(models.TextChoices):
        REQUEST = "request", "At the person's request"
        RETENTION = "retention", "Retention period over"

    basis = models.CharField(max_length=16, choices=Basis.choices, default=Basis.REQUEST)
    # The request's own reference (a ticket number, a letter's date): which request this answers.
    reference = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    # SHA-256 of the person's identifier (`customer:<address>`, `user:<id>`): lets support answer "was this
    # person erased?" without the record itself naming them. Empty for retention.
    subject_digest = models.CharField(max_length=64, blank=True, db_index=True)
    performed_by_label = models.CharField(max_length=150)
    performed_by_kind = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    tickets_count = models.PositiveIntegerField(default=0)
    events_count = models.PositiveIntegerField(default=0)
    attachments_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} ({self.basis}, {self.created_at:%Y-%m-%d})"


# What an erased row holds instead of its content (names, text, file names): the same words everywhere.
ERASED_TEXT = "[content erased]"
ERASED_NAME = "Erased person"
ERASED_FILENAME = "erased"
ERASED_EMAIL = ""
TOMBSTONE_VALUES = frozenset({None, "", ERASED_TEXT, ERASED_NAME, ERASED_FILENAME})
