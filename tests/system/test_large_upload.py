"""A large attachment through the real web server and the real app: it arrives intact, and the server does
not hold it in memory (uvicorn applies back-pressure; Django spools the body to a temporary file)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from tests.conftest import World
from tests.system.processes import AppServer

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

MB = 1024 * 1024
BLOCKS = 96


@pytest.fixture
def app_server() -> Iterator[AppServer]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "VE_ATTACHMENT_MAX_BYTES": str(200 * MB),
    }
    server = AppServer(env=env)
    yield server
    server.stop()


def session_cookie(user_id: int | None) -> str:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client.cookies["sessionid"].value


def test_large_upload_arrives_intact_without_growing_the_server(world: World, app_server: AppServer) -> None:
    block = b"2026-12-02T04:00:00Z worker-1 INFO request served in 12 ms\n" * (MB // 60)
    preamble = (
        b"--boundary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.log"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
    )
    epilogue = b"\r\n--boundary--\r\n"
    expected = hashlib.sha256(block * BLOCKS).hexdigest()
    process = psutil.Process(app_server.process.pid)
    baseline = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    csrf = "c" * 32
    connection_ = http.client.HTTPConnection("127.0.0.1", app_server.port, timeout=120)
    try:
        connection_.putrequest("POST", "/api/v1/attachments")
        connection_.putheader("Content-Type", "multipart/form-data; boundary=boundary")
        connection_.putheader("Content-Length", str(len(preamble) + BLOCKS * len(block) + len(epilogue)))
        connection_.putheader("Cookie", f"sessionid={session_cookie(world.alice.user_id)}; csrftoken={csrf}")
        connection_.putheader("X-CSRFToken", csrf)
        connection_.putheader("Origin", app_server.http)
        connection_.endheaders()
        connection_.send(preamble)
        for _ in range(BLOCKS):
            connection_.send(block)
        connection_.send(epilogue)
        response = connection_.getresponse()
        body = json.loads(response.read())
    finally:
        connection_.close()
        done.set()
        sampler.join()

    assert response.status == 201, body
    assert (body["sha256"], body["size"]) == (expected, BLOCKS * len(block))
    # A server that buffers request bodies (plain daphne) grows by about ten times the upload here.
    assert peak - baseline < 32 * MB, f"server grew by {(peak - baseline) / MB:.1f} MB"
