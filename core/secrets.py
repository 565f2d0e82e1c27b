"""Encryption at rest for secrets the server must be able to read back (provider HMAC secrets).

A SecretBox (XSalsa20-Poly1305) keyed by VE_CREDENTIAL_KEY (64 hex chars), or by a key derived from
SECRET_KEY when that setting is empty: a database dump alone does not reveal the secrets.
"""

from __future__ import annotations

import hashlib

import nacl.secret
from django.conf import settings


def _box() -> nacl.secret.SecretBox:
    configured = settings.VE_CREDENTIAL_KEY
    if configured:
        key = bytes.fromhex(configured)
    else:
        key = hashlib.sha256(b"virtengine-support/credentials\x00" + settings.SECRET_KEY.encode()).digest()
    return nacl.secret.SecretBox(key)


def encrypt_secret(secret: str) -> bytes:
    return bytes(_box().encrypt(secret.encode()))


def decrypt_secret(ciphertext: bytes) -> str:
    return _box().decrypt(bytes(ciphertext)).decode()
