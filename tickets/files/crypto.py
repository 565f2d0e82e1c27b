"""Attachments encrypted at rest: a streaming AEAD construction over fixed-size chunks, and key wrapping.

Every stored file has its own random 256-bit data key. The file body is AES-256-GCM over 64 KiB chunks in
the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár: "Online authenticated-encryption and its
nonce-reuse misuse-resistance", 2015), the one `age` and Tink's streaming AEAD use: each chunk's nonce
binds its index and whether it is the last one, so chunks cannot be reordered, dropped, duplicated or the
file truncated without decryption failing. Only `cryptography`'s AES-GCM is used; nothing here is a
primitive of our own.

Stored body (what disk and S3 hold)::

    header   = b"VEA1" | chunk_size (4 bytes, big-endian) | nonce_prefix (7 random bytes)      15 bytes
    chunk i  = AES-256-GCM(data_key, nonce_i, plaintext_i, aad=header)     len(plaintext_i) + 16 bytes
    nonce_i  = nonce_prefix | i (4 bytes, big-endian) | final (1 byte: 1 on the last chunk, else 0)

Every chunk but the last holds exactly `chunk_size` plaintext bytes; the last holds fewer (possibly none:
a file whose size is a multiple of the chunk size ends with an empty final chunk). A reader therefore
knows a chunk is the last one when it is shorter than a full chunk, and a file cut at a chunk boundary
fails: its apparent last chunk was sealed with final = 0.

The data key is wrapped (AES-256-GCM, random 96-bit nonce) by a key-encryption key (KEK) named by an id;
the wrap's associated data binds the KEK id and the file's storage key, so a wrapped key moved to another
row does not open. Rotating KEKs rewraps data keys and never touches a file body. Destroying the wrapped
key (erasure) makes the body unreadable for good: crypto-shredding.

Pure module: no Django, no database.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"VEA1"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + 4 + NONCE_PREFIX_SIZE
WRAP_NONCE_SIZE = 12
MAX_CHUNKS = 2**32  # the chunk index is four bytes


class DecryptionError(Exception):
    """The stored body or the wrapped key is not what was written: wrong key, corrupted or tampered."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """How many bytes a body of `plaintext_size` bytes takes once encrypted."""
    chunks = plaintext_size // chunk_size + 1  # the final chunk is always shorter than a full one
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def _nonce(prefix: bytes, index: int, *, final: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise ValueError("file too large for the chunk counter")
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _read_full(read: Callable[[int], bytes], size: int) -> bytes:
    """Read exactly `size` bytes unless the source ends first (sources may return short reads)."""
    parts = []
    wanted = size
    while wanted > 0:
        part = read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


class _ChunkedReader(io.RawIOBase):
    """A read-only, non-seekable stream whose bytes are produced chunk by chunk by `_next_chunk`."""

    def __init__(self) -> None:
        super().__init__()
        # The current chunk and how far it was read: a small read copies what it returns, not the rest.
        self._buffer = b""
        self._position = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer[self._position :]]
            self._buffer, self._position = b"", 0
            while (chunk := self._next_chunk()) is not None:
                parts.append(chunk)
            return b"".join(parts)
        parts = []
        wanted = size
        while wanted > 0:
            if self._position >= len(self._buffer):
                chunk = self._next_chunk()
                if chunk is None:
                    break
                self._buffer, self._position = chunk, 0
                continue
            part = self._buffer[self._position : self._position + wanted]
            self._position += len(part)
            wanted -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class EncryptingReader(_ChunkedReader):
    """Reads a plaintext source and yields the encrypted body, one chunk at a time (constant memory)."""

    def __init__(self, source: io.IOBase | object, data_key: bytes, *, chunk_size: int = CHUNK_SIZE) -> None:
        super().__init__()
        self._read = source.read  # type: ignore[attr-defined]
        self._aead = AESGCM(data_key)
        self._chunk_size = chunk_size
        prefix = os.urandom(NONCE_PREFIX_SIZE)
        self._header = MAGIC + struct.pack(">I", chunk_size) + prefix
        self._prefix = prefix
        self._index = 0
        self._header_sent = False

    def _next_chunk(self) -> bytes | None:
        if not self._header_sent:
            self._header_sent = True
            return self._header
        if self._done:
            return None
        plaintext = _read_full(self._read, self._chunk_size)
        final = len(plaintext) < self._chunk_size
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, final=final), plaintext, self._header)
        self._index += 1
        self._done = final
        return sealed


class DecryptingReader(_ChunkedReader):
    """Reads an encrypted body and yields its plaintext; raises DecryptionError at the first chunk that
    fails authentication (nothing unauthenticated is ever returned), or if the body is truncated."""

    def __init__(self, source: io.IOBase | object, data_key: bytes) -> None:
        super().__init__()
        self._source = source
        self._read = source.read  # type: ignore[attr-defined]
        self._aead = AESGCM(data_key)
        header = _read_full(self._read, HEADER_SIZE)
        if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
            raise DecryptionError("not an encrypted attachment body")
        (self._chunk_size,) = struct.unpack(">I", header[4:8])
        if not 0 < self._chunk_size <= 16 * 1024 * 1024:
            raise DecryptionError("bad chunk size")
        self._header = header
        self._prefix = header[8:]
        self._index = 0

    def _next_chunk(self) -> bytes | None:
        if self._done:
            return None
        full = self._chunk_size + TAG_SIZE
        sealed = _read_full(self._read, full)
        final = len(sealed) < full
        try:
            plaintext = self._aead.decrypt(
                _nonce(self._prefix, self._index, final=final), sealed, self._header
            )
        except InvalidTag as error:
            raise DecryptionError(f"chunk {self._index} failed authentication") from error
        self._index += 1
        self._done = final
        return plaintext

    def close(self) -> None:
        try:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        finally:
            super().close()


def _wrap_aad(kek_id: str, storage_key: str) -> bytes:
    return b"ve-attachment-key/v1\x00" + kek_id.encode() + b"\x00" + storage_key.encode()


def wrap_key(data_key: bytes, *, kek: bytes, kek_id: str, storage_key: str) -> bytes:
    """The data key encrypted under a KEK: nonce (12 bytes) | AES-256-GCM ciphertext and tag."""
    nonce = os.urandom(WRAP_NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, _wrap_aad(kek_id, storage_key))


def unwrap_key(wrapped: bytes, *, kek: bytes, kek_id: str, storage_key: str) -> bytes:
    wrapped = bytes(wrapped)
    try:
        return AESGCM(kek).decrypt(
            wrapped[:WRAP_NONCE_SIZE], wrapped[WRAP_NONCE_SIZE:], _wrap_aad(kek_id, storage_key)
        )
    except InvalidTag as error:
        raise DecryptionError("the wrapped data key does not open with this KEK") from error
