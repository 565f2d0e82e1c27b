"""Secrets the server holds: encryption at rest for those it must read back (provider HMAC secrets), and
key files created once.

A SecretBox (XSalsa20-Poly1305) keyed by VE_CREDENTIAL_KEY (64 hex chars), or by a key derived from
SECRET_KEY when that setting is empty: a database dump alone does not reveal the secrets.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import nacl.secret
from django.conf import settings

# The development default of SECRET_KEY (config.settings.base). Well known: `make run` gives each
# installation its own (server.devservices.use_installation_secret_key); production refuses it.
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789abcdef"  # noqa: S105


def credential_key_from(secret_key: str) -> bytes:
    """The key the provider HMAC secrets are sealed with when VE_CREDENTIAL_KEY is empty."""
    return hashlib.sha256(b"virtengine-support/credentials\x00" + secret_key.encode()).digest()


def _box() -> nacl.secret.SecretBox:
    configured = settings.VE_CREDENTIAL_KEY
    key = bytes.fromhex(configured) if configured else credential_key_from(settings.SECRET_KEY)
    return nacl.secret.SecretBox(key)


def encrypt_secret(secret: str) -> bytes:
    return bytes(_box().encrypt(secret.encode()))


def decrypt_secret(ciphertext: bytes) -> str:
    return _box().decrypt(bytes(ciphertext)).decode()


def create_secret_file_once(path: Path, content: bytes) -> None:
    """Write a key file (mode 0600) unless it exists; race-free across processes and threads.

    The content goes to a private temporary file that is then hard-linked into place: a hard link never
    replaces an existing file, so concurrent creators agree on one key (the first one wins), and no reader
    ever sees a half-written key.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first; use theirs
    finally:
        tmp.unlink()
    # A new directory entry is durable only once its directory is fsync'ed.
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
