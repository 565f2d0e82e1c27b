"""Django's ASGI handler, with the sync middleware chain and view run in one thread hop per request.

Django's own handler builds an *async* middleware chain; every sync middleware (all of Django's built-in
ones) is then adapted separately, so one request hops between the event loop and its worker thread about
fifteen times. On a busy 2-core machine each hop waits for the scheduler, and a trivial view fell to ~150
requests/s. Everything we serve over HTTP is sync (DRF, admin), so this handler builds the *sync* chain and
calls it once per request in the request's thread-sensitive worker (database connections stay per-thread
as Django expects). Reading the body, the disconnect watch and streaming the response stay Django's.

Still worth its lines, measured against Django's stock handler in the same `bench/api_list.py` run, both on
uvicorn (2026-12-02, 2-core machine, wrk -c16, medians of 3 rounds):

| endpoint | stock handler | single hop |
|---|---|---|
| `{"ok": true}` view, req/s | 331.6 | 691.9 |
| list API (100k tickets), req/s | 61.3 | 67.5 |

Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) are read: the handler has the
whole body spooled before the request exists, so `BodyLengthASGIRequest` gives it the Content-Length it
lacks. Without one, DRF reads every such body as empty, and Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
(which reads the header) never applies.
"""

from __future__ import annotations

import os
from typing import IO, Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpRequest, HttpResponseBase


class BodyLengthASGIRequest(ASGIRequest):
    def __init__(self, scope: dict[str, Any], body_file: IO[bytes]) -> None:
        super().__init__(scope, body_file)
        if "CONTENT_LENGTH" not in self.META:
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                self.META["CONTENT_LENGTH"] = str(size)


class SingleHopASGIHandler(ASGIHandler):
    request_class = BodyLengthASGIRequest

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_single_hop_asgi_application() -> SingleHopASGIHandler:
    """Like `django.core.asgi.get_asgi_application`, with the single-hop handler."""
    django.setup(set_prefix=False)
    return SingleHopASGIHandler()
