"""Shared records: single-use signature nonces."""

from __future__ import annotations

from django.db import models


class SignatureNonce(models.Model):
    """A wallet-signature nonce already accepted. Kept in PostgreSQL, not Redis, so a Redis restart
    cannot reopen the replay window; rows expire once their timestamp is outside the accepted window."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of scope:address:nonce")
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key
