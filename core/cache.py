"""Django's Redis cache with its connection pools (and a client per pool) shared by the whole process.

Django keeps a cache object per thread and per asyncio context, and its Redis client keeps its pools on that
object. Under an ASGI server every request runs in a context and a worker thread of its own, so every request
built a new pool and opened a new Redis connection: a TCP connect, the HELLO / CLIENT SETINFO handshake and
redis-py's `importlib.metadata` lookup of its own version, about 40 % of the list API's time under wrk
(py-spy, 2026-12-06). The throttles had also kept one client per pool in a dict that grew by one entry per
request. Here a pool is made once per server and options and lives as long as the process; redis-py's pool is
thread-safe and opens fresh connections in a forked child (it checks the pid), so prefork workers are safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

if TYPE_CHECKING:
    from redis import Redis

# One client per server and pool options, for the life of the process; its pool is `client.connection_pool`.
_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    # Set by RedisCacheClient.__init__; django-stubs do not declare them.
    _servers: list[str]
    _pool_class: Any
    _pool_options: dict[str, Any]
    _client: Any
    _get_connection_pool_index: Callable[[bool], int]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:  # noqa: ARG002 - Django's signature
        # A client copies redis-py's ~170 response callbacks when built: one per pool, shared by threads.
        server = self._servers[self._get_connection_pool_index(write)]
        shape = (server, repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        client = _clients.get(shape)
        if client is None:
            with _lock:
                client = _clients.get(shape)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[shape] = self._client(connection_pool=pool)
        return client

    def _get_connection_pool(self, write: bool) -> Any:
        return self.get_client(write=write).connection_pool


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient


def redis_client(key: str | None = None, *, write: bool = False) -> Redis:
    """The Redis client behind the default cache (`SharedPoolRedisCache` in every setting) that serves `key`:
    one per process, its connections pooled. For what the cache API lacks (pipelines, locks)."""
    client: Redis = cast("SharedPoolRedisCache", cache)._cache.get_client(key, write=write)
    return client
