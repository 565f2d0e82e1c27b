"""Probes and metrics: `/healthz` (the process is up), `/readyz` (what it needs is reachable), `/metrics`.

The probes are answered by `ops.middleware.ProbeMiddleware` before host validation, sessions or
anything else that could fail for reasons the probe is not about; `/metrics` only to the networks in
VE_METRICS_ALLOWED_NETWORKS or with the bearer token VE_METRICS_TOKEN (anyone else gets a 404).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from health_check.views import HealthCheckView
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from ops.metrics import exposition

# What a load balancer should wait before asking a process that is not ready again.
READY_RETRY_AFTER_SECONDS = 5


def healthz(request: HttpRequest) -> HttpResponse:  # noqa: ARG001 - a view's signature
    """Liveness: the process answers. Touches nothing else, so a database outage never restarts it."""
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


def _redis_client() -> Redis:
    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


class ReadinessView(HealthCheckView):
    """Readiness: 200 when PostgreSQL, the cache, Redis and the channel layer answer and the chain outbox
    keeps up; else 503 with Retry-After, naming what failed."""

    checks = (
        "health_check.checks.Database",
        "health_check.checks.Cache",
        ("health_check.contrib.redis.Redis", {"client_factory": _redis_client}),
        "ops.checks.ChannelLayer",
        "ops.checks.OutboxLag",
    )

    async def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:  # noqa: ARG002
        with self.get_executor() as executor:
            self.results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        failed = {type(r.check).__name__: str(r.error) for r in self.results if r.error}
        body = {
            "status": "unavailable" if failed else "ok",
            "checks": {type(r.check).__name__: str(r.error) if r.error else "ok" for r in self.results},
        }
        response = JsonResponse(body, status=503 if failed else 200)
        if failed:
            response["Retry-After"] = str(READY_RETRY_AFTER_SECONDS)
        return response


readyz = ReadinessView.as_view()


@cache
def _allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in settings.VE_METRICS_ALLOWED_NETWORKS)


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.VE_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in _allowed_networks())


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text exposition (see `ops.metrics`)."""
    if not _may_scrape(request):
        raise Http404
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    add_never_cache_headers(response)
    return response
