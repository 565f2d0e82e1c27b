"""Attachment files: streaming receipt, type checks on the bytes, safe names, storage and expiry.

Every multipart request streams through `AttachmentUploadHandler` (settings.FILE_UPLOAD_HANDLERS): each
file goes chunk by chunk to a temporary file on disk while its SHA-256 and size are computed and its
first bytes kept for sniffing, so memory does not grow with the file. Past VE_ATTACHMENT_MAX_BYTES the
rest of the file is drained and discarded, so the request is still answered (with a 413) rather than
reset.

The upload service then calls `check_upload` (size cap, type allowlist decided on the bytes, a safe
display name) and `store`, which writes the file to `storages["attachments"]` under a key with no
client-controlled part. Downloads read through `open_stored`. Uploads never referenced by a ticket are
removed by `expire_unreferenced` (a periodic Celery task).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import tempfile
import unicodedata
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.utils import timezone

from core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from tickets.models import Attachment

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "attachments"
# Enough for every signature below and for a meaningful look at text; small enough to keep per file.
HEAD_BYTES = 8192
FILENAME_MAX_CHARS = 200
FILENAME_FALLBACK = "upload"
EXPIRY_BATCH_SIZE = 100

ACCEPTED_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/json",
    "text/plain",
)
ACCEPTED_DESCRIPTION = "PNG, JPEG, GIF or WebP images, PDF documents, JSON, and plain text or logs"

# Magic numbers of the binary formats we accept, checked at offset 0.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
# The WHATWG MIME-sniffing patterns a browser treats as HTML (mimesniff §7.1), each followed by a
# tag-terminating byte; plus SVG. A file starting with one of them is refused even though it is text,
# so no markup we hold can ever be rendered, whatever headers a future proxy might drop.
_MARKUP_START = re.compile(
    r"<(?:!doctype\s+(?:html|svg)|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p|svg)"
    r"(?:[\s>/]|$)|<!--",
    re.IGNORECASE,
)
_XML_MARKUP = re.compile(r"<(?:svg|html|!doctype\s+(?:html|svg))(?:[\s>/]|$)", re.IGNORECASE)
# Extensions that make a browser or a desktop render markup once the file is saved.
_MARKUP_EXTENSIONS = frozenset({".htm", ".html", ".shtml", ".xht", ".xhtml", ".svg", ".svgz", ".mht"})
_TEXT_EXTENSIONS = frozenset({".txt", ".log", ".text", ".out", ".err"})
# Control characters that real text and logs contain (tab, newlines, form feed, backspace, ANSI escape).
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\b\x1b")
_TEXT_WHITESPACE = "\ufeff \t\n\r\f"

# Removed from file names: path separators and what Windows, shells and Content-Disposition choke on.
_UNSAFE_FILENAME_CHARS = frozenset('"\\/:*?<>|\x00')


# ---------------------------------------------------------------------------------------------------------------
# Receiving: the upload handler and the file object it produces.


def _discard_temporary_file(file: IO[bytes], path: str) -> None:
    file.close()
    # Already gone once FileSystemStorage has moved it into place.
    Path(path).unlink(missing_ok=True)


class ReceivedUpload(UploadedFile):
    """An uploaded file streamed to a temporary file, with its SHA-256, size and first bytes.

    `name` is the client's file name (Django has only dropped any path); `size` counts every byte
    received, also past the cap; when `too_large` is set, nothing is kept on disk and `sha256` is empty.
    The temporary file is deleted when the object is closed (Django closes request files at the end of
    the request) or garbage-collected.
    """

    def __init__(
        self,
        name: str | None,
        content_type: str | None = None,
        charset: str | None = None,
        content_type_extra: dict[str, Any] | None = None,
        *,
        max_bytes: int | None = None,
    ) -> None:
        # No client-supplied suffix: the name on disk is ours alone. We delete the file ourselves
        # (tempfile's own deletion complains when FileSystemStorage has moved it into place).
        file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the upload object
            prefix="ve-upload-", suffix=".part", dir=settings.FILE_UPLOAD_TEMP_DIR, delete=False
        )
        super().__init__(file, name, content_type, 0, charset, content_type_extra)
        self._discard = weakref.finalize(self, _discard_temporary_file, file.file, file.name)
        self.max_bytes = settings.VE_ATTACHMENT_MAX_BYTES if max_bytes is None else max_bytes
        self.too_large = False
        self.head = b""
        self.sha256 = ""
        self._digest: Any = hashlib.sha256()

    @classmethod
    def from_stream(
        cls,
        stream: IO[bytes],
        name: str,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
        chunk_size: int = 64 * 1024,
    ) -> ReceivedUpload:
        """Receive a binary stream the way an HTTP upload is received (for tasks and tests)."""
        upload = cls(name, content_type, max_bytes=max_bytes)
        try:
            while chunk := stream.read(chunk_size):
                upload.write_chunk(chunk)
        except BaseException:
            upload.close()
            raise
        upload.finish()
        return upload

    def write_chunk(self, data: bytes) -> None:
        """Append one chunk: hash it and write it through to disk, or count and drop it past the cap."""
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.size += len(data)
        if self.too_large:
            return
        if self.size > self.max_bytes:
            self.too_large = True
            self._digest = None
            # Nothing of this file will be stored: give its disk space back now, not at request end.
            self.file.seek(0)
            self.file.truncate()
            return
        self.file.write(data)
        self._digest.update(data)

    def finish(self) -> None:
        """The last chunk arrived: settle the digest and rewind for whoever reads the file next."""
        self.file.flush()
        self.file.seek(0)
        self.sha256 = "" if self.too_large else self._digest.hexdigest()

    def temporary_file_path(self) -> str:
        return self.file.name

    def close(self) -> None:
        """Close and delete the temporary file (also done when the object is garbage-collected)."""
        self._discard()


class AttachmentUploadHandler(FileUploadHandler):
    """Streams every uploaded file to disk through a `ReceivedUpload` (hash, size, head, cap).

    It is the only upload handler, so it handles every multipart request, including those parsed
    while authenticating; non-file form fields never reach upload handlers.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.max_bytes: int = settings.VE_ATTACHMENT_MAX_BYTES
        self.upload: ReceivedUpload | None = None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.upload = ReceivedUpload(
            self.file_name,
            self.content_type,
            self.charset,
            self.content_type_extra,
            max_bytes=self.max_bytes,
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:  # noqa: ARG002 - Django's API
        assert self.upload is not None
        self.upload.write_chunk(raw_data)
        # Returning None tells Django no other handler needs the chunk.

    def file_complete(self, file_size: int) -> ReceivedUpload | None:  # noqa: ARG002 - Django's API
        upload, self.upload = self.upload, None
        if upload is None:
            return None
        upload.finish()
        return upload

    def upload_interrupted(self) -> None:
        if self.upload is not None:
            self.upload.close()
            self.upload = None


# ---------------------------------------------------------------------------------------------------------------
# Checking: what the bytes are, and what name to show.


def _unsupported(what: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"Unsupported file type ({what}). Accepted: {ACCEPTED_DESCRIPTION}.",
        fields={"file": [f"{what[:1].upper()}{what[1:]} is not accepted. Accepted: {ACCEPTED_DESCRIPTION}."]},
        extra={"accepted": list(ACCEPTED_TYPES)},
    )


def _empty_file() -> ValidationFailed:
    return ValidationFailed("The file is empty.", code="empty_file", fields={"file": ["Empty file."]})


def _decode_utf8(head: bytes, *, complete: bool) -> str | None:
    """The head as text, or None if it is not UTF-8.

    When the head is only the start of the file, a multi-byte character cut at its end is not an
    error: the incremental decoder keeps the partial sequence back instead of failing on it.
    """
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return None


def _is_text(text: str) -> bool:
    if "\x00" in text:
        return False
    controls = sum(1 for char in text if (char < " " or char == "\x7f") and char not in _TEXT_CONTROLS)
    # A stray bell or NAK in a log is fine; binary data that happens to be valid UTF-8 is not.
    return controls * 100 <= len(text)


def _extension(filename: str) -> str:
    base = re.split(r"[\\/]", filename or "")[-1]
    _, dot, ext = base.rpartition(".")
    return f".{ext.lower()}" if dot and ext else ""


def sniff_content_type(head: bytes, filename: str, *, size: int | None = None) -> str:
    """The content type of a file, decided by its first bytes (`head`), or refuse it.

    Neither the client's Content-Type nor the extension ever grants a type: the extension only refuses
    markup names and prefers `text/plain` over JSON for a `.txt`/`.log` file. `size` (when known) tells
    whether `head` is the whole file; without it, a head shorter than HEAD_BYTES is taken as complete.

    Raises ValidationFailed for an empty file and UnsupportedMediaType for anything not on the list.
    """
    complete = len(head) >= size if size is not None else len(head) < HEAD_BYTES
    if not head:
        raise _empty_file()
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"

    text = _decode_utf8(head, complete=complete)
    if text is None or not _is_text(text):
        raise _unsupported("binary data")
    stripped = text.lstrip(_TEXT_WHITESPACE)
    if _MARKUP_START.match(stripped):
        raise _unsupported("HTML or SVG markup")
    if stripped[:5].lower() == "<?xml" and _XML_MARKUP.search(stripped):
        raise _unsupported("HTML or SVG markup")
    extension = _extension(filename)
    if extension in _MARKUP_EXTENSIONS:
        raise _unsupported(f"a {extension} file")
    if stripped[:1] in ("{", "[") and extension not in _TEXT_EXTENSIONS:
        if not complete:
            return "application/json"
        try:
            json.loads(stripped)
        except ValueError:
            return "text/plain"
        return "application/json"
    return "text/plain"


def safe_filename(name: str) -> str:
    """A display name safe in Content-Disposition and on any file system, from a client's file name.

    Keeps the basename only, NFC-normalised, without control or format characters (bidi overrides
    included) nor the characters file systems and headers choke on, with whitespace collapsed, no
    leading dots, at most FILENAME_MAX_CHARS characters (the extension kept), else `upload`.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    kept = "".join(
        char
        for char in base
        if char not in _UNSAFE_FILENAME_CHARS
        and (char.isspace() or not unicodedata.category(char).startswith("C"))
    )
    kept = " ".join(kept.split())
    # Leading dots hide files (and `..` climbs); trailing dots and spaces are dropped by Windows.
    kept = kept.lstrip(". ").rstrip(". ")
    if len(kept) > FILENAME_MAX_CHARS:
        stem, dot, ext = kept.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            kept = stem[: FILENAME_MAX_CHARS - len(ext) - 1].rstrip(". ") + "." + ext
        else:
            kept = kept[:FILENAME_MAX_CHARS].rstrip(". ")
    return kept or FILENAME_FALLBACK


@dataclass(frozen=True)
class CheckedUpload:
    """What the upload service records about an accepted file."""

    filename: str
    content_type: str
    size: int
    sha256: str


def _describe(upload: File) -> tuple[int, str, bytes, bool]:
    """Size, SHA-256, head and too-large flag of a file that did not come through our handler."""
    max_bytes = settings.VE_ATTACHMENT_MAX_BYTES
    digest = hashlib.sha256()
    head = b""
    size = 0
    upload.seek(0)
    for chunk in upload.chunks():
        size += len(chunk)
        if size > max_bytes:
            upload.seek(0)
            return size, "", head, True
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        digest.update(chunk)
    upload.seek(0)
    return size, digest.hexdigest(), head, False


def check_upload(upload: File) -> CheckedUpload:
    """Accept an uploaded file or refuse it: 413 past the cap, 400 if empty, 415 if not on the list.

    Works on a `ReceivedUpload` without reading it again; any other Django `File` (a `ContentFile` of
    fetched logs, say) is read once to hash it.
    """
    if isinstance(upload, ReceivedUpload):
        size, sha256, head, too_large = upload.size, upload.sha256, upload.head, upload.too_large
    else:
        size, sha256, head, too_large = _describe(upload)
    if too_large:
        limit_mb = settings.VE_ATTACHMENT_MAX_BYTES / (1024 * 1024)
        raise PayloadTooLarge(
            f"The file is larger than the {limit_mb:g} MB limit.",
            fields={"file": [f"At most {limit_mb:g} MB ({settings.VE_ATTACHMENT_MAX_BYTES} bytes)."]},
            extra={"max_bytes": settings.VE_ATTACHMENT_MAX_BYTES},
        )
    if size == 0:
        raise _empty_file()
    client_name = upload.name or ""
    content_type = sniff_content_type(head, client_name, size=size)
    return CheckedUpload(
        filename=safe_filename(client_name), content_type=content_type, size=size, sha256=sha256
    )


# ---------------------------------------------------------------------------------------------------------------
# Storing, reading back, deleting.


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
# Expiry of uploads no ticket ever referenced.


def _delete_stored_quietly(storage_keys: list[str]) -> None:
    for storage_key in storage_keys:
        try:
            delete_stored(storage_key)
        except Exception:
            # The rows are gone already; an orphaned file costs disk, never correctness, so one storage
            # hiccup must not stop the sweep.
            logger.exception("Could not delete expired attachment file %s", storage_key)


def expire_unreferenced(*, now: datetime | None = None) -> int:
    """Delete uploads no ticket references that are older than the TTL, with their files; return the count.

    Safe to run concurrently (and alongside services attaching uploads): each batch locks its rows
    with SKIP LOCKED, so an upload being attached right now is skipped rather than waited for, and rows
    another sweeper holds are left to it. Files are deleted only after the rows' deletion commits.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=settings.VE_ATTACHMENT_UNREFERENCED_TTL_HOURS)
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                Attachment.objects.select_for_update(skip_locked=True)
                .filter(ticket__isnull=True, uploaded_at__lt=cutoff)
                .order_by("uploaded_at")
                .values_list("pk", "storage_key")[:EXPIRY_BATCH_SIZE]
            )
            if not batch:
                return deleted
            Attachment.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            storage_keys = [storage_key for _, storage_key in batch]
            transaction.on_commit(lambda keys=storage_keys: _delete_stored_quietly(keys))
        deleted += len(batch)


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
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError
    from storages.backends.s3 import S3Storage
    from storages.utils import clean_name

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
    # `tickets.attachment_files.AttachmentS3Storage` (the STORAGES backend path) resolves lazily.
    if name == "AttachmentS3Storage":
        return _attachment_s3_storage_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
