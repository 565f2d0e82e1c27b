"""Checking uploads: what the bytes are (never what the client claims), and what name to show.

`check_upload` applies the size cap, makes a safe display name, decides the type on the bytes against an
allowlist (images, PDF, JSON, text and logs; never HTML or SVG), and gives the name an extension that
agrees with that type. The name is normalised *before* its extension is judged: `evil.html.` and
`evil.html ` are stored as `evil.html`, and `evil.ｈｔｍｌ` reads as `.html` to a file system that folds
width, so all of them are markup names.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File

from core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from tickets.files.upload import HEAD_BYTES, ReceivedUpload

FILENAME_MAX_CHARS = 200
FILENAME_FALLBACK = "upload"

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
# The extensions a stored file may keep for its sniffed type; any other gets the type's own appended, so
# a text file named `run.bat` is saved as `run.bat.txt` and never runs when opened.
_EXTENSIONS_OF_TYPE: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "application/json": (".json",),
    "text/plain": (
        ".txt",
        *sorted(_TEXT_EXTENSIONS - {".txt"}),
        ".csv",
        ".tsv",
        ".md",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
    ),
}
# Control characters that real text and logs contain (tab, newlines, form feed, backspace, ANSI escape).
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\b\x1b")
_TEXT_WHITESPACE = "\ufeff \t\n\r\f"

# Removed from file names: path separators and what Windows, shells and Content-Disposition choke on.
_UNSAFE_FILENAME_CHARS = frozenset('"\\/:*?<>|\x00')


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
    """The extension as a file system that folds case and width would read it (`.ＨＴＭＬ` is `.html`)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = unicodedata.normalize("NFKC", base).casefold().rstrip(". ")
    _, dot, ext = base.rpartition(".")
    return f".{ext}" if dot and ext else ""


def filename_for_type(filename: str, content_type: str) -> str:
    """`filename` with an extension that agrees with the sniffed type (appended when it does not)."""
    allowed = _EXTENSIONS_OF_TYPE[content_type]
    if _extension(filename) in allowed:
        return filename
    stem = filename[: FILENAME_MAX_CHARS - len(allowed[0])].rstrip(". ")
    return f"{stem}{allowed[0]}"


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
    # Judged on the name as it will be stored: trailing dots and spaces, control and format characters
    # are gone before the extension check, so none of them can hide a markup extension.
    filename = safe_filename(upload.name or "")
    content_type = sniff_content_type(head, filename, size=size)
    return CheckedUpload(
        filename=filename_for_type(filename, content_type),
        content_type=content_type,
        size=size,
        sha256=sha256,
    )
