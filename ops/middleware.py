"""Middleware of operations: the probes, answered first; one structured log line per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from ops import views

logger = logging.getLogger("ops.requests")

PROBES = {"/healthz": "healthz", "/readyz": "readyz"}


class _SyncAndAsyncMiddleware:
    """A middleware that runs in whichever mode the chain around it runs (no thread hop under ASGI)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)


class ProbeMiddleware(_SyncAndAsyncMiddleware):
    """Answers /healthz and /readyz before anything else runs: no host validation (a load balancer asks by
    address), no session, no request id, no metrics — a probe is about the process, not a visitor."""

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        probe = PROBES.get(request.path_info)
        if probe == "healthz":
            return views.healthz(request)
        if probe == "readyz":
            return async_to_sync(views.readyz)(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe == "healthz":
            return views.healthz(request)
        if probe == "readyz":
            return await views.readyz(request)
        return await self.get_response(request)


class RequestLogMiddleware(_SyncAndAsyncMiddleware):
    """One log line per request — method, path, status, duration — carrying the request id (set by
    django-guid, outside this middleware) like every other line logged while serving it."""

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        response = self.get_response(request)
        self._log(request, response, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = await self.get_response(request)
        self._log(request, response, started)
        return response

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
