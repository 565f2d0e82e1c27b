"""config.daphne_server: request bodies spooled to disk between daphne and the application.

Unit tests drive `SpoolingQueue` the way daphne does (every chunk put synchronously before the
application reads any); the system tests start `python -m config.daphne_server` and post through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from daphne.http_protocol import HTTPFactory

from config.daphne_server import (
    BodyPassingHTTPFactory,
    BodyPassingWebRequest,
    SpoolingCommandLineInterface,
    SpoolingQueue,
    SpoolingServer,
)
from tests.system.processes import stop_process

BASE_DIR = Path(__file__).resolve().parent.parent
DAPHNE_CHUNK = 8192  # daphne's default request_buffer_size


def daphne_puts(queue: asyncio.Queue, body: bytes, *, chunk: int = DAPHNE_CHUNK) -> None:
    """What daphne's WebRequest.process does with a request body."""
    position = 0
    while True:
        piece = body[position : position + chunk]
        position += len(piece)
        more_body = not (len(piece) < chunk)
        queue.put_nowait({"type": "http.request", "body": piece, "more_body": more_body})
        if not more_body:
            break


async def drain(queue: asyncio.Queue) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await queue.get()
        messages.append(message)
        if message["type"] == "http.disconnect":
            return messages


def body_of(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(message["body"] for message in messages if message["type"] == "http.request")


def sample_body(size: int) -> bytes:
    return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]


# ---------------------------------------------------------------------------------------------------------------
# SpoolingQueue


async def test_small_body_stays_in_memory_untouched() -> None:
    queue = SpoolingQueue()
    request = {"type": "http.request", "body": b'{"subject": "x"}', "more_body": False}
    queue.put_nowait(request)
    queue.put_nowait({"type": "http.disconnect"})
    assert queue.spooled is False
    messages = await drain(queue)
    assert messages[0] is request  # passed through as is
    assert messages[1] == {"type": "http.disconnect"}
    assert queue.memory_bytes == 0


async def test_large_body_is_spooled_and_read_back_in_order() -> None:
    body = sample_body(3 * 1024 * 1024 + 1234)
    queue = SpoolingQueue(memory_limit=64 * 1024, read_size=256 * 1024)
    daphne_puts(queue, body)
    queue.put_nowait({"type": "http.disconnect"})
    assert queue.spooled is True
    assert queue.memory_bytes <= 64 * 1024

    messages = await drain(queue)

    requests = [message for message in messages if message["type"] == "http.request"]
    assert body_of(messages) == body
    assert [message["type"] for message in messages[-2:]] == ["http.request", "http.disconnect"]
    assert all(message["more_body"] for message in requests[:-1])
    assert requests[-1]["more_body"] is False
    # The in-memory head comes first as daphne's own 8 KB chunks, the spooled rest merged.
    assert max(len(message["body"]) for message in requests) == 256 * 1024
    assert len(requests) < len(body) // DAPHNE_CHUNK // 10
    assert queue.spooled is False  # closed after the last chunk was read
    assert queue.memory_bytes == 0


async def test_body_that_is_an_exact_multiple_of_the_chunk_ends_with_an_empty_chunk() -> None:
    body = sample_body(40 * DAPHNE_CHUNK)
    queue = SpoolingQueue(memory_limit=0)
    daphne_puts(queue, body)
    messages = [queue.get_nowait() for _ in range(queue.qsize())]
    assert body_of(messages) == body
    assert messages[-1]["more_body"] is False
    assert all(message["more_body"] for message in messages[:-1])


async def test_receive_waits_for_chunks_put_later() -> None:
    queue = SpoolingQueue(memory_limit=0)
    received = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not received.done()
    queue.put_nowait({"type": "http.request", "body": b"late", "more_body": True})
    assert (await received) == {"type": "http.request", "body": b"late", "more_body": True}
    queue.put_nowait({"type": "http.request", "body": b"!", "more_body": False})
    assert (await queue.get())["body"] == b"!"


async def test_other_messages_keep_their_place_between_body_chunks() -> None:
    queue = SpoolingQueue(memory_limit=0)
    queue.put_nowait({"type": "http.request", "body": b"a" * 100, "more_body": True})
    marker = {"type": "custom.event", "value": 1}
    queue.put_nowait(marker)
    queue.put_nowait({"type": "http.request", "body": b"b" * 100, "more_body": False})
    messages = [queue.get_nowait() for _ in range(3)]
    assert messages[0]["body"] == b"a" * 100
    assert messages[1] is marker
    assert messages[2] == {"type": "http.request", "body": b"b" * 100, "more_body": False}


async def test_disconnect_closes_the_spool() -> None:
    queue = SpoolingQueue(memory_limit=0)
    queue.put_nowait({"type": "http.request", "body": b"x" * 100_000, "more_body": True})
    queue.put_nowait({"type": "http.disconnect"})
    assert queue.spooled is True
    assert (await queue.get())["more_body"] is True
    assert (await queue.get())["type"] == "http.disconnect"
    assert queue.spooled is False


def test_queuing_a_large_body_does_not_hold_it_in_memory() -> None:
    total = 32 * 1024 * 1024
    tracemalloc.start()
    try:
        queue = SpoolingQueue()
        for _ in range(total // DAPHNE_CHUNK):
            queue.put_nowait({"type": "http.request", "body": os.urandom(DAPHNE_CHUNK), "more_body": True})
        queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A plain asyncio.Queue would hold all 32 MB here.
    assert peak < 2 * 1024 * 1024
    queue.close()


def test_command_line_runs_the_spooling_server_with_body_passing_requests() -> None:
    assert SpoolingCommandLineInterface.server_class is SpoolingServer
    server = SpoolingServer(application=echo_app, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.http_factory = HTTPFactory(server)  # what Server.run() does
    assert isinstance(server.http_factory, BodyPassingHTTPFactory)
    protocol = server.http_factory.buildProtocol(None)
    assert protocol.requestFactory is BodyPassingWebRequest


# ---------------------------------------------------------------------------------------------------------------
# The real process


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Hashes the request body as it arrives and reports what it saw (served by the tests below)."""
    assert scope["type"] == "http"
    digest = hashlib.sha256()
    size = messages = largest = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        digest.update(body)
        size += len(body)
        messages += 1
        largest = max(largest, len(body))
        if not message.get("more_body", False):
            break
    payload = {"sha256": digest.hexdigest(), "size": size, "messages": messages, "largest": largest}
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, psutil.Process]]:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "config.daphne_server",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.test_daphne_server:echo_app",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(
                    f"config.daphne_server did not start: {process.communicate()[1].decode()[-2000:]}"
                )
            time.sleep(0.05)
        yield port, psutil.Process(process.pid)
    finally:
        stop_process(process)


def post(port: int, chunks: Iterator[bytes], length: int, content_type: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.putrequest("POST", "/upload")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        for chunk in chunks:
            connection.send(chunk)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.system
def test_small_post_through_the_server(server: tuple[int, psutil.Process]) -> None:
    port, _ = server
    body = b'{"subject": "Pod crash-looping"}'
    seen = post(port, iter([body]), len(body), "application/json")
    assert seen == {
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "messages": 1,
        "largest": len(body),
    }


@pytest.mark.system
def test_large_multipart_post_reaches_the_app_intact_without_growing_the_server(
    server: tuple[int, psutil.Process],
) -> None:
    port, process = server
    block = sample_body(1024 * 1024)
    blocks = 96
    preamble = (
        b"--bench\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.log"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
    )
    epilogue = b"\r\n--bench--\r\n"
    total = len(preamble) + blocks * len(block) + len(epilogue)
    expected = hashlib.sha256(preamble)
    for _ in range(blocks):
        expected.update(block)
    expected.update(epilogue)

    def body() -> Iterator[bytes]:
        yield preamble
        for _ in range(blocks):
            yield block
        yield epilogue

    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seen = post(port, body(), total, "multipart/form-data; boundary=bench")
    finally:
        done.set()
        sampler.join()

    assert seen["size"] == total
    assert seen["sha256"] == expected.hexdigest()
    assert seen["messages"] < total // DAPHNE_CHUNK // 10  # handed over in merged pieces
    # Plain daphne parses a multipart body with the email package (several copies of it) and then
    # queues the whole of it in memory before the application reads a byte: about a gigabyte here.
    assert peak - baseline < 32 * 1024 * 1024, f"server grew by {(peak - baseline) / 2**20:.1f} MB"
