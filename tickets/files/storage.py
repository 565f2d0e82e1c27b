"""Storing attachments: `storages["attachments"]` (local disk, or S3 through django-storages), under keys with
no client-controlled part; streamed in and out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone

STORAGE_ALIAS = "attachments"


class _OutgoingFile(File):
    """What `store` hands the storage backend: the upload's bytes with the sniffed content type.

    S3 takes the object's ContentType from `content.content_type`; the upload object itself carries the
    client's claim, which must never reach the stored object.
    """

    def __init__(self, upload: File, *, name: str, content_type: str) -> None:
        super().__init__(upload.file, name=name)
        self.content_type = content_type
        self.size = upload.size
        if hasattr(upload, "temporary_file_path"):
            # FileSystemStorage moves a file that has a temporary path into place instead of copying it.
            self.temporary_file_path = upload.temporary_file_path


def attachments_storage() -> Storage:
    """The configured attachment storage (settings.STORAGES["attachments"])."""
    return storages[STORAGE_ALIAS]


def new_storage_key(*, now: datetime | None = None) -> str:
    """`attachments/YYYY/MM/<uuid4 hex>`: nothing in the key comes from the client."""
    at = now or timezone.now()
    return f"attachments/{at:%Y/%m}/{uuid.uuid4().hex}"


def store(upload: File, *, content_type: str) -> str:
    """Save an accepted upload to the attachment storage, streaming it; return the storage key.

    On local disk the temporary file is moved into place; on S3 it is sent as a multipart upload
    with the sniffed ContentType and `Content-Disposition: attachment`.
    """
    key = new_storage_key()
    upload.seek(0)
    return attachments_storage().save(key, _OutgoingFile(upload, name=key, content_type=content_type))


def open_stored(storage_key: str) -> File:
    """Open a stored attachment for streaming it back (binary, read in chunks; close it after)."""
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
