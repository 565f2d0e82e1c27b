"""Receiving uploads: every multipart file streams chunk by chunk to a temporary file on disk while its SHA-256
and size are computed and its first bytes kept for sniffing, so memory does not grow with the file.

`AttachmentUploadHandler` is the only upload handler (settings.FILE_UPLOAD_HANDLERS). Past
VE_ATTACHMENT_MAX_BYTES the rest of a file is drained and discarded, so the request is still answered
(with a 413) rather than reset.
"""

from __future__ import annotations

import hashlib
import tempfile
import weakref
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser, get_encoding

# Enough for every signature `tickets.files.sniffing` looks for and for a meaningful look at text.
HEAD_BYTES = 8192


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


class _KeepUnnamedFilesParser(DjangoMultiPartParser):
    """Django's multipart parser, except that a file part whose name is only a path (`.`, `..`, `a/`) is
    kept, named `upload` (as `sniffing.safe_filename` names what it cannot use), instead of being dropped
    without a word: the client did send a file, and is answered about the file."""

    def sanitize_file_name(self, file_name: str) -> str | None:
        sanitized = super().sanitize_file_name(file_name)
        if sanitized is None and file_name.strip():
            return UNNAMED_UPLOAD
        return sanitized


UNNAMED_UPLOAD = "upload"


class AttachmentMultiPartParser(MultiPartParser):
    """DRF's multipart parser over `_KeepUnnamedFilesParser` (the attachment upload endpoint's)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> DataAndFiles:
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = _KeepUnnamedFilesParser(
                meta, stream, request.upload_handlers, get_encoding(parser_context)
            )
            data, files = parser.parse()
        except MultiPartParserError as error:
            raise ParseError(f"Multipart form parse error - {error}") from error
        return DataAndFiles(data, files)
