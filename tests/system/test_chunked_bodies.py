"""Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) on the production server
(uvicorn) and on daphne: the body is read, signed-body checks see the same bytes, and the memory limit
still applies (issue 12, class 4)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection

from tests.api import WalletSigner
from tests.conftest import World
from tests.system.processes import AppServer

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["uvicorn", "daphne"])
def server(request: pytest.FixtureRequest) -> Iterator[AppServer]:
    app = AppServer(
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_NAME": connection.settings_dict["NAME"],
            "REDIS_URL": settings.REDIS_URL,
        },
        server=request.param,
    )
    yield app
    app.stop()


def post_chunked(server: AppServer, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        chunks = (body[start : start + 7] for start in range(0, len(body), 7))
        conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_chunked_comment_is_read_not_taken_as_empty(world: World, server: AppServer) -> None:
    ticket = world.open_ticket()
    path = f"/api/v1/tickets/{ticket.id}/comments"
    body = json.dumps({"content": "Sent in chunks"}).encode()
    headers = {
        **WalletSigner(world.alice_key).headers("POST", path, body),
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    status, answer = post_chunked(server, path, body, headers)
    assert status == 201, answer
    assert answer["content"] == "Sent in chunks"


def test_a_chunked_body_over_the_limit_is_a_413(world: World, server: AppServer) -> None:
    ticket = world.open_ticket()
    path = f"/api/v1/tickets/{ticket.id}/comments"
    body = json.dumps({"content": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}).encode()
    headers = {
        **WalletSigner(world.alice_key).headers("POST", path, body),
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    status, answer = post_chunked(server, path, body, headers)
    assert status == 413, answer
    assert answer["code"] == "too_large"
