"""Attachment files: type sniffing, safe names, the streaming upload handler, local storage, expiry."""

from __future__ import annotations

import gc
import hashlib
import io
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from tests.conftest import World
from tickets.files.crypto import ciphertext_size
from tickets.files.sniffing import (
    ACCEPTED_TYPES,
    CheckedUpload,
    check_upload,
    safe_filename,
    sniff_content_type,
)
from tickets.files.storage import delete_stored, new_storage_key, open_stored, store
from tickets.files.upload import HEAD_BYTES, AttachmentUploadHandler, ReceivedUpload
from tickets.models import Attachment
from tickets.services.attachments import EXPIRY_BATCH_SIZE
from tickets.services.attachments import attachments_expire_unreferenced as expire_unreferenced
from tickets.tasks import attachments_expire_unreferenced_task

CHUNK = 64 * 1024

# ---------------------------------------------------------------------------------------------------------------
# sniff_content_type

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
LARGE_JSON_HEAD = (b'{"events": [' + b'{"level": "info", "msg": "ok"}, ' * 1000)[:HEAD_BYTES]
# "é" is two bytes in UTF-8; a head ending right after its first byte is cut mid-character.
CUT_MULTIBYTE = (b"caf\xc3\xa9 " * 2000)[: HEAD_BYTES - 1] + b"\xc3"


@pytest.mark.parametrize(
    ("head", "filename", "size", "expected"),
    [
        (PNG, "shot.png", None, "image/png"),
        (PNG, "shot.txt", None, "image/png"),  # the bytes decide, not the extension
        (JPEG, "photo.jpg", None, "image/jpeg"),
        (b"GIF87a\x01\x00\x01\x00", "a.gif", None, "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "a.gif", None, "image/gif"),
        (WEBP, "a.webp", None, "image/webp"),
        (PDF, "invoice.pdf", None, "application/pdf"),
        (b'{"pod": "web-1", "restarts": 7}', "state.json", None, "application/json"),
        (b"\xef\xbb\xbf \n [1, 2, 3]\n", "list.json", None, "application/json"),
        (b'{"pod": "web-1", "restarts": 7}', "state.log", None, "text/plain"),  # .log prefers text
        (b'{"pod": "web-1" "restarts": 7', "broken.json", None, "text/plain"),  # small and does not parse
        (LARGE_JSON_HEAD, "big.json", 5_000_000, "application/json"),  # large: judged on its head
        (b"2026-11-28T07:00:00Z ERROR OOMKilled\n", "pod.log", None, "text/plain"),
        (b"\x1b[31mERROR\x1b[0m crash loop\r\n", "pod.log", None, "text/plain"),  # ANSI colours
        ("Größe: 2 GiB — 日本語\n".encode(), "notes", None, "text/plain"),
        (CUT_MULTIBYTE, "cafe.txt", 50_000, "text/plain"),  # cut char at the end of a partial head
        (b"<stdin>:1: warning: unused variable\n", "build.txt", None, "text/plain"),
        (b'<?xml version="1.0"?>\n<project><name>x</name></project>\n', "pom.xml", None, "text/plain"),
        (b"a < b && c > d\n", "cmp.txt", None, "text/plain"),
        (b" ", "space.txt", None, "text/plain"),
    ],
)
def test_sniff_accepts(head: bytes, filename: str, size: int | None, expected: str) -> None:
    assert sniff_content_type(head, filename, size=size) == expected


@pytest.mark.parametrize(
    ("head", "filename"),
    [
        (b"<!DOCTYPE html><html><body>hi</body></html>", "page.txt"),
        (b"  \n\t<html>", "page.txt"),
        (b"\xef\xbb\xbf<HTML lang=en>", "page.txt"),
        (b"<head><title>x</title></head>", "x.log"),
        (b"<body onload=alert(1)>", "x.log"),
        (b"<script>alert(document.cookie)</script>", "x.json"),
        (b"<ScRiPt src=//evil.test/x.js></script>", "x"),
        (b"<!-- comment --><p>hi", "x"),
        (b"<iframe src=https://evil.test>", "x"),
        (b"<html", "x"),  # the whole file, no terminating byte
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.png"),
        (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "a"),
        (b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x"><svg/>', "a"),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>', "a"),
        (b"hello, plain words", "page.html"),  # markup names are refused even for plain text
        (b"hello, plain words", "logo.SVG"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "logs.zip"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "agent"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "setup.exe"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "logs.gz"),
        (b"\xff\xfeh\x00e\x00l\x00l\x00o\x00", "utf16.txt"),  # UTF-16: NUL bytes
        (b"text with a NUL\x00 inside", "x.txt"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x0e\x0f\x10" * 20, "x.bin"),  # valid UTF-8, yet binary
        (b"\xc3\x28 invalid utf-8", "x.txt"),
        (b"caf\xc3", "x.txt"),  # the whole file: a cut character is invalid, not pending
    ],
)
def test_sniff_refuses(head: bytes, filename: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        sniff_content_type(head, filename)
    error = refused.value
    assert error.status_code == 415
    assert "file" in error.fields
    assert "PNG" in error.message
    assert "PDF" in error.message
    assert error.extra["accepted"] == list(ACCEPTED_TYPES)


def test_sniff_refusal_names_what_was_refused() -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        sniff_content_type(b"<svg/>", "logo.png")
    assert refused.value.fields["file"][0].startswith("HTML or SVG markup is not accepted. Accepted: PNG")
    assert refused.value.as_dict()["code"] == "unsupported_media_type"


def test_sniff_refuses_empty_file() -> None:
    with pytest.raises(ValidationFailed) as refused:
        sniff_content_type(b"", "empty.txt", size=0)
    assert refused.value.status_code == 400
    assert refused.value.fields == {"file": ["Empty file."]}


# ---------------------------------------------------------------------------------------------------------------
# safe_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\y.png", "y.png"),
        ("/var/log/../syslog.1", "syslog.1"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "upload"),
        ("", "upload"),
        ("....", "upload"),
        (".bashrc", "bashrc"),
        ("...hidden.txt", "hidden.txt"),
        ("a\x00b\x07c\x1b[31m.txt", "abc[31m.txt"),
        ("inv\u202eexe.txt", "invexe.txt"),  # right-to-left override (spoofs the extension)
        ('my "quoted" file?.txt', "my quoted file.txt"),
        ("a:b*c?d<e>f|g.log", "abcdefg.log"),
        ("  lots \t of\n\nspace   .txt", "lots of space .txt"),
        ("trailing dots...", "trailing dots"),
        ("cafe\u0301.txt", "café.txt"),  # NFC: e + combining acute becomes é
        ("日本語のログ.log", "日本語のログ.log"),
        ("\x00\x01\x02", "upload"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_truncates_long_names_keeping_the_extension() -> None:
    name = "x" * 500 + ".tar.log"
    cleaned = safe_filename(name)
    assert len(cleaned) == 200
    assert cleaned.endswith(".log")
    assert cleaned.startswith("xxxx")


def test_safe_filename_truncates_long_names_without_extension() -> None:
    assert safe_filename("y" * 300) == "y" * 200
    # A "extension" that is really just a long tail is not kept whole.
    assert len(safe_filename("a." + "b" * 300)) == 200


# ---------------------------------------------------------------------------------------------------------------
# The upload handler


def new_handler(*, file_name: str = "pod.log") -> AttachmentUploadHandler:
    handler = AttachmentUploadHandler(request=None)
    handler.new_file("file", file_name, "application/octet-stream", None)
    return handler


def log_bytes(size: int) -> bytes:
    line = b"2026-11-28T07:00:00Z INFO request handled in 12 ms\n"
    return (line * (size // len(line) + 1))[:size]


def test_handler_streams_chunks_to_disk_and_hashes_them() -> None:
    data = log_bytes(20 * CHUNK + 123)
    handler = new_handler()
    upload = handler.upload
    assert upload is not None
    path = upload.temporary_file_path()
    for start in range(0, len(data), CHUNK):
        assert handler.receive_data_chunk(data[start : start + CHUNK], start) is None
        # The bytes are on disk already, not accumulated in the process (at most a write buffer).
        fed = min(start + CHUNK, len(data))
        assert Path(path).stat().st_size >= fed - io.DEFAULT_BUFFER_SIZE
    completed = handler.file_complete(len(data))

    assert completed is upload
    assert isinstance(completed, ReceivedUpload)
    assert completed.name == "pod.log"
    assert completed.size == len(data)
    assert completed.sha256 == hashlib.sha256(data).hexdigest()
    assert completed.head == data[:HEAD_BYTES]
    assert completed.too_large is False
    assert Path(path).read_bytes() == data
    assert completed.read() == data  # rewound for the next reader
    completed.close()
    assert not Path(path).exists()


def test_handler_caps_the_size_and_drains_the_rest_without_storing_it(settings) -> None:
    settings.VE_ATTACHMENT_MAX_BYTES = 100_000
    data = log_bytes(10 * CHUNK)
    handler = new_handler()
    upload = handler.upload
    assert upload is not None
    path = upload.temporary_file_path()
    for start in range(0, len(data), CHUNK):
        handler.receive_data_chunk(data[start : start + CHUNK], start)
        assert Path(path).stat().st_size <= 100_000
    completed = handler.file_complete(len(data))

    assert completed is not None
    assert completed.too_large is True
    assert completed.size == len(data)  # every byte was counted, none kept past the cap
    assert Path(path).stat().st_size == 0
    assert completed.sha256 == ""
    assert completed.head == data[:HEAD_BYTES]
    with pytest.raises(PayloadTooLarge) as refused:
        check_upload(completed)
    assert refused.value.status_code == 413
    assert "file" in refused.value.fields
    completed.close()


def test_handler_accepts_a_file_of_exactly_the_cap(settings) -> None:
    settings.VE_ATTACHMENT_MAX_BYTES = 3 * CHUNK
    data = log_bytes(3 * CHUNK)
    handler = new_handler()
    for start in range(0, len(data), CHUNK):
        handler.receive_data_chunk(data[start : start + CHUNK], start)
    completed = handler.file_complete(len(data))
    assert completed is not None
    assert completed.too_large is False
    assert check_upload(completed).sha256 == hashlib.sha256(data).hexdigest()
    completed.close()


def test_handler_interrupted_upload_leaves_no_temporary_file() -> None:
    handler = new_handler()
    upload = handler.upload
    assert upload is not None
    handler.receive_data_chunk(b"partial", 0)
    path = upload.temporary_file_path()
    handler.upload_interrupted()
    assert not Path(path).exists()


def test_garbage_collected_upload_removes_its_temporary_file() -> None:
    upload = ReceivedUpload.from_stream(io.BytesIO(b"hello\n"), "a.txt")
    path = upload.temporary_file_path()
    assert Path(path).exists()
    del upload
    gc.collect()
    assert not Path(path).exists()


def test_multipart_request_goes_through_the_handler(settings) -> None:
    settings.VE_ATTACHMENT_MAX_BYTES = 1_000_000
    data = log_bytes(300_000)
    request = RequestFactory().post(
        "/api/v1/attachments",
        {"file": SimpleUploadedFile("../../etc/pod.log", data, content_type="text/html"), "note": "hi"},
    )

    upload = request.FILES["file"]
    assert isinstance(upload, ReceivedUpload)
    assert request.POST["note"] == "hi"  # form fields are untouched
    checked = check_upload(upload)
    assert checked.filename == "pod.log"
    assert checked.content_type == "text/plain"  # the client's text/html claim is ignored
    assert checked.size == len(data)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()
    path = upload.temporary_file_path()
    request.close()  # what Django does at the end of a request
    assert not Path(path).exists()


def test_multipart_request_over_the_cap_is_refused_with_413(settings) -> None:
    settings.VE_ATTACHMENT_MAX_BYTES = 50_000
    request = RequestFactory().post(
        "/api/v1/attachments", {"file": SimpleUploadedFile("big.log", log_bytes(200_000))}
    )
    upload = request.FILES["file"]
    assert upload.too_large is True
    with pytest.raises(PayloadTooLarge):
        check_upload(upload)
    request.close()


def test_check_upload_refuses_html_and_empty_files() -> None:
    html = ReceivedUpload.from_stream(io.BytesIO(b"<!doctype html><script>x()</script>"), "a.png")
    with pytest.raises(UnsupportedMediaType):
        check_upload(html)
    empty = ReceivedUpload.from_stream(io.BytesIO(b""), "empty.txt")
    with pytest.raises(ValidationFailed):
        check_upload(empty)
    html.close()
    empty.close()


def test_check_upload_accepts_any_django_file(settings) -> None:
    data = log_bytes(50_000)
    checked = check_upload(ContentFile(data, name="deployment.log"))
    assert checked == CheckedUpload(
        filename="deployment.log",
        content_type="text/plain",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    settings.VE_ATTACHMENT_MAX_BYTES = 10_000
    with pytest.raises(PayloadTooLarge):
        check_upload(ContentFile(data, name="deployment.log"))


# ---------------------------------------------------------------------------------------------------------------
# Local storage


@pytest.fixture
def local_storage(settings, tmp_path: Path) -> Path:
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    return tmp_path


KEY_PATTERN = re.compile(r"attachments/\d{4}/\d{2}/[0-9a-f]{32}")


def test_store_open_delete_round_trip_on_local_disk(local_storage: Path) -> None:
    data = log_bytes(3 * 1024 * 1024 + 17)
    upload = ReceivedUpload.from_stream(io.BytesIO(data), "../../evil name.log")
    checked = check_upload(upload)

    handle = store(upload, content_type=checked.content_type)
    key = handle.storage_key

    assert KEY_PATTERN.fullmatch(key)
    assert "evil" not in key
    stored = local_storage / key
    on_disk = stored.read_bytes()
    assert len(on_disk) == ciphertext_size(len(data))
    assert data[:4096] not in on_disk  # encrypted at rest
    assert b"readiness probe" not in on_disk
    with open_stored(handle) as stream:
        assert hashlib.sha256(b"".join(iter(lambda: stream.read(CHUNK), b""))).hexdigest() == checked.sha256
    upload.close()
    assert stored.exists()

    delete_stored(key)
    assert not stored.exists()
    delete_stored(key)  # already gone: not an error
    with pytest.raises(FileNotFoundError):
        open_stored(handle)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_upload_dropped_unclosed_after_store_cleans_up_quietly(local_storage: Path) -> None:
    # Raw WSGI callers may never close request files: the temporary file (read and encrypted into the
    # storage, never moved) goes with the upload object, quietly.
    upload = ReceivedUpload.from_stream(io.BytesIO(b"kernel: oom\n"), "node.log")
    temporary = Path(upload.temporary_file_path())
    stored = store(upload, content_type="text/plain")
    del upload
    gc.collect()
    assert not temporary.exists()
    assert b"kernel" not in (local_storage / stored.storage_key).read_bytes()
    with open_stored(stored) as stream:
        assert stream.read() == b"kernel: oom\n"


def test_store_streams_a_plain_django_file(local_storage: Path) -> None:
    data = b'{"lines": ["a", "b"]}'
    stored = store(ContentFile(data, name="x.json"), content_type="application/json")
    assert b"lines" not in (local_storage / stored.storage_key).read_bytes()
    with open_stored(stored) as stream:
        assert stream.read() == data
    again = store(ContentFile(data), content_type="application/json")
    assert again.storage_key != stored.storage_key  # a fresh key every time
    assert again.wrapped_key != stored.wrapped_key  # and a data key of its own


# ---------------------------------------------------------------------------------------------------------------
# Expiry


def make_attachment(*, age: timedelta, ticket=None, storage_key: str | None = None) -> Attachment:
    attachment = Attachment.objects.create(
        ticket=ticket,
        uploader_kind="customer",
        uploader_key="customer:ve1test",
        filename="a.log",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        storage_key=storage_key or new_storage_key(),
    )
    Attachment.objects.filter(pk=attachment.pk).update(uploaded_at=timezone.now() - age)
    return attachment


def stored_file(content: bytes = b"x\n") -> str:
    return store(ContentFile(content), content_type="text/plain").storage_key


@pytest.mark.django_db
def test_expire_unreferenced_deletes_old_orphans_and_their_files(
    world: World, local_storage: Path, settings, django_capture_on_commit_callbacks
) -> None:
    settings.VE_ATTACHMENT_UNREFERENCED_TTL_HOURS = 24
    ticket = world.open_ticket()
    old_orphans = [make_attachment(age=timedelta(hours=25), storage_key=stored_file()) for _ in range(3)]
    fresh_orphan = make_attachment(age=timedelta(hours=23), storage_key=stored_file())
    old_referenced = make_attachment(age=timedelta(days=30), ticket=ticket, storage_key=stored_file())

    with django_capture_on_commit_callbacks(execute=True):
        assert expire_unreferenced() == 3

    assert set(Attachment.objects.values_list("pk", flat=True)) == {fresh_orphan.pk, old_referenced.pk}
    for orphan in old_orphans:
        assert not (local_storage / orphan.storage_key).exists()
    assert (local_storage / fresh_orphan.storage_key).exists()
    assert (local_storage / old_referenced.storage_key).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_unreferenced() == 0


@pytest.mark.django_db
def test_expire_unreferenced_works_in_batches_and_takes_now(
    local_storage: Path, settings, django_capture_on_commit_callbacks
) -> None:
    settings.VE_ATTACHMENT_UNREFERENCED_TTL_HOURS = 1
    for _ in range(EXPIRY_BATCH_SIZE + 5):
        make_attachment(age=timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_unreferenced() == 0  # not yet past the TTL
        assert expire_unreferenced(now=timezone.now() + timedelta(hours=1)) == 105
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_expiry_task_calls_expire_unreferenced(settings, django_capture_on_commit_callbacks) -> None:
    make_attachment(age=timedelta(hours=settings.VE_ATTACHMENT_UNREFERENCED_TTL_HOURS + 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert attachments_expire_unreferenced_task() == 1
    schedule = settings.CELERY_BEAT_SCHEDULE["attachments-expire-unreferenced"]
    assert schedule["task"] == attachments_expire_unreferenced_task.name


@pytest.mark.django_db(transaction=True)
def test_expire_unreferenced_skips_rows_locked_by_another_transaction(local_storage: Path) -> None:
    locked = make_attachment(age=timedelta(days=2))
    free = make_attachment(age=timedelta(days=2))
    row_locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        # An upload being attached right now holds its row lock (as services._attach does).
        try:
            with transaction.atomic():
                Attachment.objects.select_for_update().get(pk=locked.pk)
                row_locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert row_locked.wait(timeout=10)
        assert expire_unreferenced() == 1  # returns at once rather than waiting for the lock
        assert list(Attachment.objects.values_list("pk", flat=True)) == [locked.pk]
    finally:
        release.set()
        holder.join()
    assert not Attachment.objects.filter(pk=free.pk).exists()
    assert expire_unreferenced() == 1
