"""How a process talks to PostgreSQL (its connection pool, prepared statements) and to the Channels layer's
Redis. The settings import this: no Django models here."""

from __future__ import annotations

import time
from typing import Any

from psycopg import pq
from psycopg_pool import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# A pooled connection taken again this soon after it was last taken is not checked with a round trip.
RECENTLY_TAKEN_SECONDS = 1.0
_TAKEN_AT = "_ve_taken_at"


def check_unless_recently_taken(connection: Any) -> None:
    """The pool's check of a connection it hands out: PostgreSQL's answer to an empty query (psycopg_pool's
    own check), except for a connection taken less than `RECENTLY_TAKEN_SECONDS` ago that libpq still
    holds good, which the request that had it has just used. Checking every time cost a round trip per
    request, a twentieth of the list API's time under load. After a PostgreSQL restart a connection is
    idle for longer than that (the restart takes longer), or broke in a request during the outage and was
    discarded when given back."""
    now = time.monotonic()
    taken_at = getattr(connection, _TAKEN_AT, None)
    if (
        taken_at is None
        or now - taken_at >= RECENTLY_TAKEN_SECONDS
        or connection.pgconn.status != pq.ConnStatus.OK
    ):
        ConnectionPool.check_connection(connection)
    setattr(connection, _TAKEN_AT, now)


def use_connection_pool(databases: dict[str, Any], max_size: int) -> None:
    """A pool of up to `max_size` connections per process (psycopg_pool), instead of persistent ones. Under
    the ASGI server every request runs in a context of its own, so a persistent connection (CONN_MAX_AGE) is
    never used by the next request: each request connected anew (and its connection stayed open until
    garbage collected, which ran PostgreSQL out of connections in bench/api_list.py). From the pool, a
    request takes a connection that is already open, with its prepared statements, and gives it back at
    its end. A connection is checked when taken (`check_unless_recently_taken`, in the backend
    core.pooled_postgresql), so one that PostgreSQL dropped (a restart) is replaced; Django's own health
    check (CONN_HEALTH_CHECKS, which for a pool means psycopg_pool's check every time) is off. 0: no pool (CONN_MAX_AGE as set)."""
    if max_size > 0:
        databases["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it: closing gives it back
        databases["default"]["CONN_HEALTH_CHECKS"] = False
        databases["default"]["ENGINE"] = "core.pooled_postgresql"  # which checks with the function above
        databases["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": max_size,
            "timeout": 10,
        }


def use_prepared_statements(databases: dict[str, Any], enabled: bool) -> None:
    """The hot reads (a page of the ticket list, a ticket's detail) go as server-side prepared statements
    (core/prepared.py); every other query is sent as Django sends it. Off behind a pooler that cannot
    carry prepared statements: PgBouncer in transaction/statement mode before 1.21, or with
    max_prepared_statements = 0 (README, "Scaling out")."""
    if enabled:
        databases["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5


def channel_layer_host(url: str) -> dict:
    """Connection settings for the Channels layer's Redis."""
    return {
        "address": url,
        # redis-py 8 closes sockets idle for 5 s unless told otherwise (channels_redis#422).
        "socket_timeout": None,
        # After a Redis restart every pooled connection is stale: reconnect instead of failing once each.
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        "retry_on_error": [RedisConnectionError],
    }
