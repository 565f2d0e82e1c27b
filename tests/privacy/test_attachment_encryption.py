"""Attachments encrypted at rest: the storage holds ciphertext only, downloads stream the plaintext back,
tampering and truncation are refused, and KEK rotation rewraps keys without touching file bodies."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from tests.conftest import Apis, World
from tickets import services
from tickets.files import crypto
from tickets.files.storage import open_stored, store
from tickets.models import Attachment

SECRET_LINE = b"db01.internal.example password=hunter2 customer alice@example.com\n"


def kek_entry(kek_id: str) -> str:
    return f"{kek_id}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def disk(settings, tmp_path: Path) -> Path:
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    return tmp_path


def download(api, attachment_id: str) -> bytes:
    response = api.get(f"/api/v1/attachments/{attachment_id}")
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def test_an_upload_lies_on_disk_encrypted_and_downloads_as_it_was(
    world: World, apis: Apis, disk: Path
) -> None:
    content = SECRET_LINE * 5000  # ~340 kB: several 64 KiB chunks
    upload = apis.alice.upload("trace.log", content)
    assert upload.status_code == 201, upload.content
    attachment = Attachment.objects.get(pk=upload.json()["id"])
    on_disk = (disk / attachment.storage_key).read_bytes()

    assert b"hunter2" not in on_disk
    assert b"alice@example.com" not in on_disk
    assert on_disk.startswith(crypto.MAGIC)
    assert len(on_disk) == crypto.ciphertext_size(len(content))
    assert attachment.key_id
    assert attachment.wrapped_key
    assert download(apis.alice, upload.json()["id"]) == content
    assert hashlib.sha256(content).hexdigest() == upload.json()["sha256"]


def test_fetched_deployment_logs_are_encrypted_too(world: World, disk: Path) -> None:
    ticket = world.open_ticket(category="general")
    with mock.patch(
        "tickets.services.logs.fetch_deployment_logs", return_value=(SECRET_LINE.decode(), False)
    ):
        attachment = services.deployment_logs_fetch(ticket_id=ticket.pk)
    assert attachment is not None
    assert b"hunter2" not in (disk / attachment.storage_key).read_bytes()
    with open_stored(attachment.storage_key) as stream:
        assert stream.read() == SECRET_LINE


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda body: body[:100] + bytes([body[100] ^ 1]) + body[101:], id="flipped-bit"),
        pytest.param(
            lambda body: body[: crypto.HEADER_SIZE + crypto.CHUNK_SIZE + crypto.TAG_SIZE], id="cut-at-chunk"
        ),
        pytest.param(lambda body: body[:-1], id="cut-short"),
        pytest.param(
            lambda body: (
                body[: crypto.HEADER_SIZE] + body[crypto.HEADER_SIZE + crypto.CHUNK_SIZE + crypto.TAG_SIZE :]
            ),
            id="chunk-dropped",
        ),
    ],
)
def test_a_damaged_body_is_refused_not_returned(disk: Path, damage) -> None:
    content = os.urandom(3 * crypto.CHUNK_SIZE + 10)
    stored = store(ContentFile(content), content_type="application/octet-stream")
    path = disk / stored.storage_key
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(crypto.DecryptionError), open_stored(stored) as stream:
        stream.read()


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK_SIZE - 1, crypto.CHUNK_SIZE, 2 * crypto.CHUNK_SIZE + 1])
def test_stream_round_trip_at_chunk_boundaries(size: int) -> None:
    key = crypto.new_data_key()
    plaintext = os.urandom(size)
    sealed = crypto.EncryptingReader(io.BytesIO(plaintext), key).read()
    assert len(sealed) == crypto.ciphertext_size(size)
    reader = crypto.DecryptingReader(io.BytesIO(sealed), key)
    assert b"".join(iter(lambda: reader.read(1000), b"")) == plaintext
    with pytest.raises(crypto.DecryptionError):
        crypto.DecryptingReader(io.BytesIO(sealed), crypto.new_data_key()).read()


def test_kek_rotation_rewraps_keys_and_leaves_bodies_alone(
    world: World, apis: Apis, disk: Path, settings
) -> None:
    old, new = kek_entry("2026a"), kek_entry("2026b")
    settings.VE_ATTACHMENT_KEKS = [old]
    ids = [apis.alice.upload(f"f{n}.log", SECRET_LINE * (n + 1)).json()["id"] for n in range(3)]
    rows = {row.pk: row for row in Attachment.objects.filter(pk__in=ids)}
    bodies = {pk: (disk / row.storage_key).read_bytes() for pk, row in rows.items()}
    mtimes = {pk: (disk / row.storage_key).stat().st_mtime_ns for pk, row in rows.items()}
    assert {row.key_id for row in rows.values()} == {"2026a"}

    settings.VE_ATTACHMENT_KEKS = [old, new]
    out = io.StringIO()
    call_command("rotate_attachment_keys", stdout=out)
    assert "Rewrapped 3" in out.getvalue()

    settings.VE_ATTACHMENT_KEKS = [new]  # the old KEK is gone: every file must still open
    for pk, row in rows.items():
        row.refresh_from_db()
        assert row.key_id == "2026b"
        assert bytes(row.wrapped_key) != b""
        path = disk / row.storage_key
        assert path.read_bytes() == bodies[pk]
        assert path.stat().st_mtime_ns == mtimes[pk]
    assert [download(apis.alice, pk) for pk in ids] == [SECRET_LINE * (n + 1) for n in range(3)]
    call_command("rotate_attachment_keys", stdout=(again := io.StringIO()))
    assert "Rewrapped 0" in again.getvalue()


def test_a_wrapped_key_does_not_open_another_attachment(disk: Path) -> None:
    first = store(ContentFile(b"one"), content_type="text/plain")
    second = store(ContentFile(b"two"), content_type="text/plain")
    swapped = type(first)(storage_key=first.storage_key, key_id=second.key_id, wrapped_key=second.wrapped_key)
    with pytest.raises(crypto.DecryptionError):
        open_stored(swapped)


def test_files_stored_before_encryption_are_served_then_encrypted_by_the_command(
    world: World, apis: Apis, disk: Path
) -> None:
    ticket = world.open_ticket()
    legacy_key = "attachments/2025/01/legacyplaintext"
    (disk / "attachments/2025/01").mkdir(parents=True)
    (disk / legacy_key).write_bytes(SECRET_LINE)
    legacy = Attachment.objects.create(
        ticket=ticket,
        uploader_kind="customer",
        uploader_key=world.alice.key,
        filename="old.log",
        content_type="text/plain",
        size=len(SECRET_LINE),
        sha256=hashlib.sha256(SECRET_LINE).hexdigest(),
        storage_key=legacy_key,
    )
    assert download(apis.alice, str(legacy.pk)) == SECRET_LINE  # no key: served as it lies

    call_command("rotate_attachment_keys", "--encrypt-plaintext", stdout=(out := io.StringIO()))
    assert "Encrypted 1" in out.getvalue()
    legacy.refresh_from_db()
    assert legacy.key_id
    assert b"hunter2" not in (disk / legacy.storage_key).read_bytes()
    assert download(apis.alice, str(legacy.pk)) == SECRET_LINE
