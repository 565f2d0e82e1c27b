"""The cache's Redis connections are shared by the whole process (core/cache.py).

An ASGI server runs every request in a thread and a context of its own, and Django keeps one cache object per
context: with Django's own Redis backend each request opened a new Redis connection (and its handshake)."""

from __future__ import annotations

import threading

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings

from tests.system.processes import RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _connections_received(url: str) -> int:
    probe = redis.Redis.from_url(url)
    try:
        return int(probe.info("stats")["total_connections_received"])
    finally:
        probe.close()


@pytest.mark.parametrize(
    ("backend", "most_connections"),
    [("core.cache.SharedPoolRedisCache", 1), ("django.core.cache.backends.redis.RedisCache", 20)],
    ids=["shared-pool", "django-stock"],
)
def test_requests_in_threads_of_their_own_share_one_redis_connection(own_redis, backend, most_connections):
    caches = {"default": {"BACKEND": backend, "LOCATION": own_redis.url, "KEY_PREFIX": "pool-test"}}
    counts: list[int] = []

    def one_request() -> None:  # what a request's throttle does, in a fresh thread (and context)
        counts.append(cache.incr("hits") if cache.add("hits", 1) is False else 1)

    with override_settings(CACHES=caches):
        before = _connections_received(own_redis.url)
        for _ in range(20):
            thread = threading.Thread(target=one_request)
            thread.start()
            thread.join()
        opened = _connections_received(own_redis.url) - before - 1  # less the second probe's own
    assert sorted(counts) == list(range(1, 21))
    if most_connections == 1:
        assert opened == 1
    else:  # the stock backend, measured the same way, to show the check can fail
        assert opened == most_connections
