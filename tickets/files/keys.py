"""The key-encryption keys (KEKs) that wrap attachments' data keys, read from settings.

`VE_ATTACHMENT_KEKS`: a list of `id:base64-of-32-bytes` entries (in the environment, comma-separated),
oldest first. The last one wraps every new data key; the others still unwrap the keys they wrapped until
`manage.py rotate_attachment_keys` has rewrapped them under the newest (file bodies are never touched). Empty
(a development installation): one KEK derived from SECRET_KEY, id `derived`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tickets.files.crypto import KEY_SIZE

DERIVED_KEK_ID = "derived"
KEK_ID_MAX_LENGTH = 32


def derived_kek(secret_key: str) -> bytes:
    return hashlib.sha256(b"virtengine-support/attachment-kek\x00" + secret_key.encode()).digest()


@functools.cache
def _parse(entries: tuple[str, ...], secret_key: str) -> dict[str, bytes]:
    if not entries:
        return {DERIVED_KEK_ID: derived_kek(secret_key)}
    keks: dict[str, bytes] = {}
    for entry in entries:
        kek_id, sep, encoded = entry.strip().partition(":")
        if not sep or not kek_id or len(kek_id) > KEK_ID_MAX_LENGTH:
            raise ImproperlyConfigured(
                "VE_ATTACHMENT_KEKS entries are `id:base64key` (id of 1-32 characters)"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ImproperlyConfigured(f"VE_ATTACHMENT_KEKS: key {kek_id!r} is not base64") from error
        if len(key) != KEY_SIZE:
            raise ImproperlyConfigured(f"VE_ATTACHMENT_KEKS: key {kek_id!r} must be {KEY_SIZE} bytes")
        if kek_id in keks:
            raise ImproperlyConfigured(f"VE_ATTACHMENT_KEKS: id {kek_id!r} appears twice")
        keks[kek_id] = key
    return keks


def all_keks() -> dict[str, bytes]:
    """Every configured KEK by id, oldest first."""
    return _parse(tuple(settings.VE_ATTACHMENT_KEKS), settings.SECRET_KEY)


def current_kek() -> tuple[str, bytes]:
    """The KEK new data keys are wrapped with: the newest (last) configured."""
    kek_id, kek = list(all_keks().items())[-1]
    return kek_id, kek


def kek(kek_id: str) -> bytes:
    try:
        return all_keks()[kek_id]
    except KeyError:
        raise ImproperlyConfigured(
            f"attachment KEK {kek_id!r} is not configured (VE_ATTACHMENT_KEKS): a key still in use was removed"
        ) from None
