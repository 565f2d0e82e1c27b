"""Storing attachments: `storages["attachments"]` (local disk, or S3 through django-storages), under keys with
no client-controlled part; streamed in and out, encrypted at rest.

Every body is encrypted on its way in with a data key of its own and decrypted on its way out
(`tickets.files.crypto`: AES-256-GCM in the STREAM construction over 64 KiB chunks), so disk and S3 hold
ciphertext only and memory stays constant whatever the size. The data key, wrapped by the newest KEK
(`tickets.files.keys`), is kept on the attachment's row (`key_id`, `wrapped_key`); a row with no key id
is a body stored before encryption (`manage.py rotate_attachment_keys --encrypt-plaintext` encrypts those).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone

from tickets.files import crypto, keys

STORAGE_ALIAS = "attachments"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Where a body went and the key that opens it (the data key wrapped by KEK `key_id`)."""

    storage_key: str
    key_id: str
    wrapped_key: bytes


class _OutgoingFile(File):
    """What `store` hands the storage backend: the upload's bytes, encrypted as they are read, with the
    sniffed content type.

    S3 takes the object's ContentType from `content.content_type`; the upload object itself carries the
    client's claim, which must never reach the stored object. No `temporary_file_path`: FileSystemStorage
    would move the plaintext temporary file into place instead of reading (encrypting) it.
    """

    def __init__(self, upload: File, *, name: str, content_type: str, data_key: bytes) -> None:
        super().__init__(crypto.EncryptingReader(upload, data_key), name=name)
        self.content_type = content_type
        self.size = crypto.ciphertext_size(upload.size or 0)


def attachments_storage() -> Storage:
    """The configured attachment storage (settings.STORAGES["attachments"])."""
    return storages[STORAGE_ALIAS]


def new_storage_key(*, now: datetime | None = None) -> str:
    """`attachments/YYYY/MM/<uuid4 hex>`: nothing in the key comes from the client."""
    at = now or timezone.now()
    return f"attachments/{at:%Y/%m}/{uuid.uuid4().hex}"


def store(upload: File, *, content_type: str) -> StoredFile:
    """Encrypt an accepted upload into the attachment storage, streaming it; return where it went and its
    wrapped data key (to keep on the attachment's row).

    On local disk it is written chunk by chunk; on S3 it is sent as a multipart upload with the sniffed
    ContentType and `Content-Disposition: attachment`.
    """
    key = new_storage_key()
    upload.seek(0)
    data_key = crypto.new_data_key()
    saved = attachments_storage().save(
        key, _OutgoingFile(upload, name=key, content_type=content_type, data_key=data_key)
    )
    kek_id, kek = keys.current_kek()
    wrapped = crypto.wrap_key(data_key, kek=kek, kek_id=kek_id, storage_key=saved)
    return StoredFile(storage_key=saved, key_id=kek_id, wrapped_key=wrapped)


def data_key_of(*, storage_key: str, key_id: str, wrapped_key: bytes) -> bytes:
    """Unwrap a stored body's data key with the KEK it names."""
    return crypto.unwrap_key(wrapped_key, kek=keys.kek(key_id), kek_id=key_id, storage_key=storage_key)


def rewrap(*, storage_key: str, key_id: str, wrapped_key: bytes) -> tuple[str, bytes]:
    """The data key wrapped again by the newest KEK (KEK rotation: the body is not touched)."""
    data_key = data_key_of(storage_key=storage_key, key_id=key_id, wrapped_key=wrapped_key)
    kek_id, kek = keys.current_kek()
    return kek_id, crypto.wrap_key(data_key, kek=kek, kek_id=kek_id, storage_key=storage_key)


class _PlaintextDownload(File):
    """A decrypted body, streamed: the decrypting reader over the stored object."""

    def __init__(self, reader: crypto.DecryptingReader, *, name: str) -> None:
        super().__init__(reader, name=name)

    def seekable(self) -> bool:
        return False


def open_stored(stored: StoredFile | str) -> File:
    """Open a stored attachment for streaming its plaintext back (binary, read in chunks; close it after).

    `stored` is what `store` returned, or an attachment's storage key (its key is then read from its row).
    Raises FileNotFoundError for an attachment whose content was erased (its data key is destroyed) and
    crypto.DecryptionError (while reading) for a body that does not authenticate.
    """
    if isinstance(stored, str):
        stored = _stored_file_of(stored)
    body = attachments_storage().open(stored.storage_key, "rb")
    if not stored.key_id:
        return body  # stored before encryption at rest
    data_key = data_key_of(
        storage_key=stored.storage_key, key_id=stored.key_id, wrapped_key=stored.wrapped_key
    )
    return _PlaintextDownload(crypto.DecryptingReader(body, data_key), name=stored.storage_key)


def _stored_file_of(storage_key: str) -> StoredFile:
    from tickets.models import Attachment  # noqa: PLC0415 - the models import nothing of files

    row = (
        Attachment.objects.filter(storage_key=storage_key)
        .values("key_id", "wrapped_key", "erased_at")
        .first()
    )
    if row is None or row["erased_at"] is not None or (row["key_id"] and row["wrapped_key"] is None):
        raise FileNotFoundError(storage_key)
    return StoredFile(
        storage_key=storage_key, key_id=row["key_id"], wrapped_key=bytes(row["wrapped_key"] or b"")
    )


def open_raw(storage_key: str) -> File:
    """The stored bytes as they are (ciphertext): for tests and re-encryption, never for a download."""
    return attachments_storage().open(storage_key, "rb")


def delete_stored(storage_key: str) -> None:
    """Delete a stored attachment; a file that is already gone is not an error."""
    attachments_storage().delete(storage_key)


# ---------------------------------------------------------------------------------------------------------------
# S3: built on first use, so processes on local storage never pay for importing boto3.


class _S3Download(File):
    """A stored object streamed straight from S3's response body (S3File would download it all first)."""

    def __init__(self, body: Any, *, name: str, size: int, content_type: str) -> None:
        super().__init__(body, name=name)
        self.size = size
        self.content_type = content_type

    def seekable(self) -> bool:
        return False


@cache
def _attachment_s3_storage_class() -> type[Storage]:
    # Here, not at the top: processes on local storage never pay for importing boto3 (~0.3 s, 40 MB).
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415
    from storages.backends.s3 import S3Storage  # noqa: PLC0415
    from storages.utils import clean_name  # noqa: PLC0415

    class AttachmentS3Storage(S3Storage):
        """S3Storage for attachments: downloads always, bounded upload memory, streamed reads."""

        def get_default_settings(self) -> dict[str, Any]:
            defaults = super().get_default_settings()
            if defaults["transfer_config"] is None:
                # s3transfer reads each multipart part into memory: by default ten queued plus ten in
                # flight, 8 MB each. With two and two, bench/upload_memory.py measured a 200 MB upload
                # growing the server by 52 MB (73 MB with four and four), whatever the file's size.
                transfer_config = TransferConfig(
                    multipart_threshold=8 * 1024 * 1024,
                    multipart_chunksize=8 * 1024 * 1024,
                    max_concurrency=2,
                )
                # s3transfer's own knob, not a boto3 constructor argument.
                transfer_config.max_in_memory_upload_chunks = 2
                defaults["transfer_config"] = transfer_config
            return defaults

        def get_object_parameters(self, name: str) -> dict[str, Any]:
            params = super().get_object_parameters(name)
            # Even fetched directly (a presigned URL), an attachment downloads instead of rendering.
            params.setdefault("ContentDisposition", "attachment")
            return params

        def _open(self, name: str, mode: str = "rb") -> File:
            if mode != "rb":
                return super()._open(name, mode)
            key = self._normalize_name(clean_name(name))
            params = {
                parameter: value
                for parameter, value in self.get_object_parameters(name).items()
                if parameter.startswith("SSECustomer")
            }
            try:
                response = self.bucket.Object(key).get(**params)
            except ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    raise FileNotFoundError(f"File does not exist: {name}") from error
                raise
            return _S3Download(
                response["Body"],
                name=name,
                size=response["ContentLength"],
                content_type=response.get("ContentType", ""),
            )

    AttachmentS3Storage.__module__ = __name__
    AttachmentS3Storage.__qualname__ = "AttachmentS3Storage"
    return AttachmentS3Storage


def __getattr__(name: str) -> Any:
    # `tickets.files.storage.AttachmentS3Storage` (the STORAGES backend path) resolves lazily.
    if name == "AttachmentS3Storage":
        return _attachment_s3_storage_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
