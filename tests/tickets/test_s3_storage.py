"""Attachments on S3 (django-storages), against a local S3-compatible server (moto_server)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage

from tests.system.processes import stop_process
from tickets.files import storage as attachment_storage
from tickets.files.crypto import ciphertext_size
from tickets.files.sniffing import check_upload
from tickets.files.storage import delete_stored, open_stored, store
from tickets.files.upload import ReceivedUpload

BUCKET = "ves-attachments-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto_server subprocess on a free port, with the test bucket created."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    moto_server = Path(sys.executable).with_name("moto_server")
    command = [str(moto_server)] if moto_server.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start (see {log.name})")
            time.sleep(0.05)
        client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process(process)
        log.close()


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


@pytest.fixture
def s3_storage(settings, s3_endpoint: str) -> str:
    """Point storages["attachments"] at the S3 backend, configured as production's settings do."""
    # Changing STORAGES makes Django drop its cached storage instances (django.test.signals).
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "tickets.files.storage.AttachmentS3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
            },
        },
    }
    return s3_endpoint


def log_bytes(size: int) -> bytes:
    line = b"2026-11-28T07:00:00Z WARN readiness probe failed: connection refused\n"
    return (line * (size // len(line) + 1))[:size]


def test_configured_backend_is_the_attachment_s3_storage(s3_storage: str) -> None:
    storage = attachment_storage.attachments_storage()
    assert isinstance(storage, S3Storage)
    assert type(storage) is attachment_storage.AttachmentS3Storage
    assert storage.transfer_config.max_request_concurrency == 2
    assert storage.transfer_config.max_in_memory_upload_chunks == 2


def test_store_open_delete_round_trip_streams_a_multi_megabyte_file(s3_storage: str) -> None:
    data = log_bytes(20 * 1024 * 1024 + 5)  # above the 8 MB multipart threshold: three parts
    upload = ReceivedUpload.from_stream(io.BytesIO(data), "pod logs.txt", content_type="text/html")
    checked = check_upload(upload)

    stored = store(upload, content_type=checked.content_type)
    key = stored.storage_key
    upload.close()

    head = client(s3_storage).head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "text/plain"  # sniffed, not the client's claim
    assert head["ContentDisposition"] == "attachment"
    assert head["ContentLength"] == ciphertext_size(len(data))  # encrypted at rest
    assert head["ETag"].strip('"').endswith("-3")  # sent as a 3-part multipart upload
    body = client(s3_storage).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert b"readiness probe" not in body  # S3 holds ciphertext only
    assert data[:4096] not in body

    with open_stored(stored) as stream:
        assert stream.seekable() is False  # streamed from the response, not downloaded first
        digest = hashlib.sha256()
        largest_read = 0
        while chunk := stream.read(64 * 1024):
            largest_read = max(largest_read, len(chunk))
            digest.update(chunk)
    assert digest.hexdigest() == checked.sha256 == hashlib.sha256(data).hexdigest()
    assert largest_read <= 64 * 1024

    delete_stored(key)
    with pytest.raises(ClientError) as missing:
        client(s3_storage).head_object(Bucket=BUCKET, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(FileNotFoundError):
        open_stored(stored)
    delete_stored(key)  # already gone: not an error


def test_small_file_is_a_single_put_with_the_same_headers(s3_storage: str) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    upload = ReceivedUpload.from_stream(io.BytesIO(png), "screenshot.png")
    stored = store(upload, content_type=check_upload(upload).content_type)
    upload.close()

    head = client(s3_storage).head_object(Bucket=BUCKET, Key=stored.storage_key)
    assert head["ContentType"] == "image/png"
    assert head["ContentDisposition"] == "attachment"
    assert "-" not in head["ETag"]
    assert (
        bytes(range(256))
        not in client(s3_storage).get_object(Bucket=BUCKET, Key=stored.storage_key)["Body"].read()
    )
    with open_stored(stored) as stream:
        assert stream.read() == png
    delete_stored(stored.storage_key)
