"""Attachment keys at rest: rotating the key-encryption key (rewrapping data keys, never the bodies) and
encrypting bodies stored before encryption at rest."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from tickets.files import keys, storage
from tickets.models import Attachment


def attachment_keys_rotate(*, batch_size: int = 500) -> int:
    """Rewrap every live data key not wrapped by the newest KEK; return how many were rewrapped.

    Batches of short transactions, rows locked with SKIP LOCKED (an upload or an erasure in progress is
    left for the next run): safe on a live installation, and restartable.
    """
    current_id, _ = keys.current_kek()
    rewrapped = 0
    while True:
        with transaction.atomic():
            batch = list(
                Attachment.objects.select_for_update(skip_locked=True)
                .filter(erased_at__isnull=True, wrapped_key__isnull=False)
                .exclude(key_id__in=["", current_id])
                .only("pk", "storage_key", "key_id", "wrapped_key")[:batch_size]
            )
            if not batch:
                return rewrapped
            for attachment in batch:
                attachment.key_id, attachment.wrapped_key = storage.rewrap(
                    storage_key=attachment.storage_key,
                    key_id=attachment.key_id,
                    wrapped_key=bytes(attachment.wrapped_key or b""),
                )
            Attachment.objects.bulk_update(batch, ["key_id", "wrapped_key"])
        rewrapped += len(batch)


def attachments_encrypt_plaintext() -> int:
    """Encrypt each body stored before encryption at rest (a new storage object, then the old one goes)."""
    encrypted = 0
    for pk in Attachment.objects.filter(key_id="", erased_at__isnull=True).values_list("pk", flat=True):
        with transaction.atomic():
            attachment = Attachment.objects.select_for_update().filter(pk=pk, key_id="").first()
            if attachment is None:
                continue
            old_key = attachment.storage_key
            with storage.open_raw(old_key) as plaintext:
                plaintext.size = attachment.size
                stored = storage.store(plaintext, content_type=attachment.content_type)
            attachment.storage_key = stored.storage_key
            attachment.key_id = stored.key_id
            attachment.wrapped_key = stored.wrapped_key
            attachment.save(update_fields=["storage_key", "key_id", "wrapped_key"])
            transaction.on_commit(partial(storage.delete_stored, old_key))
        encrypted += 1
    return encrypted
