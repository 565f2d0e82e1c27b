"""Django's ASGI handler, serving each request in one thread hop on a small pool of reused worker threads.

Django's own handler builds an *async* middleware chain; every sync middleware (all of Django's built-in
ones) is then adapted separately, so one request hops between the event loop and its worker thread about
fifteen times, and it starts a new thread for every request. Everything we serve over HTTP is sync (DRF,
admin), so this handler builds the *sync* chain and runs, in one call on a worker thread, what Django runs
in three: `request_started` (which checks the thread's database connections), the middleware chain and the
view, and, for an ordinary response, `request_finished` (which hands the connection back to the pool).
Database connections stay per thread, as Django expects: the signals and the view share the thread.

The worker threads are `VE_HTTP_WORKER_THREADS` long-lived threads per process (an event loop's pool),
not one new thread per request: requests beyond them wait in the event loop, where waiting costs nothing.
A worker is held only while Django runs; the response is sent to the client afterwards, from the event
loop, so a slow client never holds one. A streaming response (a file download) keeps its worker until it is
sent, because its iterator and its `close()` belong to the view's thread.

Measured against Django's stock handler with `bench/api_list.py` on uvicorn (2-core machine, wrk -c16,
medians of interleaved rounds; each line one run, stock and ours side by side):

| date, what ours did | endpoint | stock handler, req/s | ours, req/s |
|---|---|---|---|
| 2026-12-02, one hop, a new thread per request | `{"ok": true}` view | 331.6 | 691.9 |
| | list API (100k tickets) | 61.3 | 67.5 |
| 2026-12-06, one hop on 8 reused threads | `{"ok": true}` view | 251.4 | 1,396.8 |
| | list API (100k tickets) | 123.5 | 282.4 |

Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) are read: the handler has the
whole body spooled before the request exists, so `BodyLengthASGIRequest` gives it the Content-Length it
lacks. Without one, DRF reads every such body as empty, and Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
(which reads the header) never applies.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix


class BodyLengthASGIRequest(ASGIRequest):
    def __init__(self, scope: dict[str, Any], body_file: IO[bytes]) -> None:
        super().__init__(scope, body_file)
        if "CONTENT_LENGTH" not in self.META:
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                self.META["CONTENT_LENGTH"] = str(size)


class WorkerThreads:
    """The worker threads of one event loop: each a one-thread executor, lent to one request at a time."""

    def __init__(self, count: int) -> None:
        self.idle: asyncio.Queue[ThreadPoolExecutor] = asyncio.Queue()
        for number in range(count):
            self.idle.put_nowait(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-worker-{number}")
            )

    async def take(self) -> ThreadPoolExecutor:
        return await self.idle.get()

    def give_back(self, worker: ThreadPoolExecutor) -> None:
        self.idle.put_nowait(worker)


class SingleHopASGIHandler(ASGIHandler):
    request_class = BodyLengthASGIRequest

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # One pool per event loop (a process has one under uvicorn; tests may run several in turn).
        self._workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerThreads] = (
            weakref.WeakKeyDictionary()
        )

    def workers(self) -> WorkerThreads:
        loop = asyncio.get_running_loop()
        workers = self._workers.get(loop)
        if workers is None:
            workers = self._workers[loop] = WorkerThreads(settings.VE_HTTP_WORKER_THREADS)
        return workers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            workers = self.workers()
            worker = await workers.take()
            try:
                async with ThreadSensitiveContext(executor=worker):
                    response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
                    if response.streaming:
                        # Its iterator and close() belong to the view's thread: sent before the worker goes,
                        # and closed (request_finished) even when sending fails.
                        try:
                            await self.send_response(response, send)
                        finally:
                            await sync_to_async(response.close, thread_sensitive=True)()
                        return
            finally:
                workers.give_back(worker)
            await self.send_response(response, send)
        finally:
            body_file.close()

    def respond(self, scope: dict[str, Any], body_file: IO[bytes]) -> HttpResponseBase:
        """On the worker thread: what Django's handler does in three hops. An ordinary response is closed
        (`request_finished`: the thread's database connection goes back to the pool) before it is sent."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, refusal = self.create_request(scope, body_file)
        if request is None:
            assert refusal is not None  # create_request gives one or the other
            response = refusal
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server chunks it
        if not response.streaming:
            response.close()
        return response


def get_single_hop_asgi_application() -> SingleHopASGIHandler:
    """Like `django.core.asgi.get_asgi_application`, with the single-hop handler."""
    django.setup(set_prefix=False)
    return SingleHopASGIHandler()
