"""Attachments: uploaded files, stored encrypted at rest (`tickets.files.storage`)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from tickets.models import PartyKindField


class Attachment(models.Model):
    """An uploaded file. Until a ticket references it (`ticket` is null) it belongs to its uploader and
    expires; `is_internal` files (fetched deployment logs, files on internal notes) are provider+support only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    comment = models.ForeignKey(
        "tickets.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploader_kind = PartyKindField()
    uploader_key = models.CharField(max_length=120, help_text="Party.key of the uploader.")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=300, unique=True)
    # The body's data key, wrapped by KEK `key_id` (tickets.files.crypto); no key id: stored before
    # encryption at rest. Erasure destroys the wrapped key (crypto-shredding) and sets `erased_at`.
    key_id = models.CharField(max_length=32, blank=True, default="")
    wrapped_key = models.BinaryField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    is_internal = models.BooleanField(default=False)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at"]
        indexes = [
            models.Index(fields=["ticket", "uploaded_at"]),
            models.Index(
                fields=["uploaded_at"],
                condition=models.Q(ticket__isnull=True),
                name="attachment_unreferenced_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.filename
