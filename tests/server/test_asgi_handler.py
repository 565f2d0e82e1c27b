"""The production ASGI handler (server/asgi_handler.py), driven as a server drives it: the signals and the
view of a request share a reused worker thread, no more requests run in Django at once than it has
workers, a slow client holds none of them, and a streamed response is sent and closed on its view's thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import signals

from server.asgi_handler import SingleHopASGIHandler
from tests.server import asgi_views

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def views(settings: Any) -> Iterator[None]:
    settings.ROOT_URLCONF = "tests.server.asgi_views"
    asgi_views.notes.clear()
    asgi_views.release.clear()
    asgi_views.running = asgi_views.Running()

    def started(**_kwargs: object) -> None:
        asgi_views.notes.append(("started", threading.get_ident()))

    def finished(**_kwargs: object) -> None:
        asgi_views.notes.append(("finished", threading.get_ident()))

    signals.request_started.connect(started, dispatch_uid="test-asgi-started")
    signals.request_finished.connect(finished, dispatch_uid="test-asgi-finished")
    yield
    asgi_views.release.set()
    signals.request_started.disconnect(dispatch_uid="test-asgi-started")
    signals.request_finished.disconnect(dispatch_uid="test-asgi-finished")


def scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Client:
    """One request's ASGI conversation; `slow` holds the body's sending until it is set."""

    def __init__(self, slow: asyncio.Event | None = None) -> None:
        self.status = 0
        self.body = b""
        self.slow = slow

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            asgi_views.notes.append(("sending", threading.get_ident()))
            return
        if self.slow is not None:
            await self.slow.wait()
        self.body += message.get("body", b"")


async def get(handler: SingleHopASGIHandler, path: str, client: Client | None = None) -> Client:
    client = client or Client()
    await handler(scope(path), client.receive, client.send)
    return client


def kinds() -> list[str]:
    return [kind for kind, _ in asgi_views.notes]


def threads(kind: str) -> set[int]:
    return {thread for noted, thread in asgi_views.notes if noted == kind}


async def test_the_signals_and_the_view_share_a_reused_worker_thread(settings: Any) -> None:
    settings.VE_HTTP_WORKER_THREADS = 1
    handler = SingleHopASGIHandler()
    first, second = await get(handler, "/plain/"), await get(handler, "/plain/")
    assert (first.status, len(first.body), second.status, len(second.body)) == (200, 200_000, 200, 200_000)
    # The connection goes back (request_finished) before the response is sent, on the view's thread.
    assert kinds() == ["started", "view", "finished", "sending"] * 2
    (worker,) = threads("started") | threads("view") | threads("finished")  # one thread, used twice
    assert worker != threading.get_ident()
    assert threads("sending") == {threading.get_ident()}  # sent by the event loop


async def test_no_more_requests_run_in_django_than_it_has_workers(settings: Any) -> None:
    settings.VE_HTTP_WORKER_THREADS = 2
    handler = SingleHopASGIHandler()
    requests = [asyncio.create_task(get(handler, "/held/")) for _ in range(5)]
    for _ in range(200):
        if asgi_views.running.now == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # time for a third to start, were it allowed to
    assert asgi_views.running.now == 2
    asgi_views.release.set()
    answered = await asyncio.gather(*requests)
    assert [client.body for client in answered] == [b"held"] * 5
    assert asgi_views.running.most == 2
    assert len(threads("view")) == 2


async def test_a_slow_client_holds_no_worker(settings: Any) -> None:
    settings.VE_HTTP_WORKER_THREADS = 1
    handler = SingleHopASGIHandler()
    reading = asyncio.Event()
    slow = asyncio.create_task(get(handler, "/plain/", Client(slow=reading)))
    fast = await asyncio.wait_for(get(handler, "/plain/"), timeout=10)  # while the slow one still reads
    assert (fast.status, len(fast.body)) == (200, 200_000)
    assert not slow.done()
    reading.set()
    assert len((await slow).body) == 200_000


async def test_a_streamed_response_is_read_and_closed_on_its_views_thread(settings: Any) -> None:
    settings.VE_HTTP_WORKER_THREADS = 2
    handler = SingleHopASGIHandler()
    client = await get(handler, "/streamed/")
    assert (client.status, client.body) == (200, b"one,two")
    assert kinds() == ["started", "view", "sending", "iterator", "finished"]
    assert len(threads("view") | threads("iterator") | threads("finished")) == 1
