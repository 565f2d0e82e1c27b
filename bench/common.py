"""Shared by the benchmarks: each runs on a database of its own on the same PostgreSQL server."""

from __future__ import annotations

import os
from typing import Any


def bench_environment(*, database: str, broker_db: int, cache_prefix: str, **extra: str) -> dict[str, str]:
    """Environment for a benchmark and the processes it starts: PostgreSQL and Redis (embedded unless
    DATABASE_URL / REDIS_URL are set), the bench's own database, a Redis database of its own as the broker
    (its tasks reach only its workers), and `extra` settings. Also applied to this process."""
    from server import devservices

    services = devservices.ensure_running(
        want_postgres=not os.environ.get("DATABASE_URL"), want_redis=not os.environ.get("REDIS_URL")
    )
    database_url = os.environ.get("DATABASE_URL") or services.database_url
    redis_url = os.environ.get("REDIS_URL") or services.redis_url
    base, _, last = redis_url.rpartition("/")
    broker = f"{base}/{broker_db}" if last.isdigit() else f"{redis_url.rstrip('/')}/{broker_db}"
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATABASE_NAME": os.environ.get("DATABASE_NAME", database),
        "CELERY_BROKER_URL": broker,
        "VE_CACHE_PREFIX": cache_prefix,
        **extra,
    }
    os.environ.update(env)
    return env


def _admin_connection() -> Any:
    """A connection to the server's `postgres` database, with the benchmark database's credentials."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def ensure_database() -> None:
    """Create the benchmark database if it does not exist (kept between runs: seeding is slow)."""
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    with _admin_connection() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def recreate_database() -> None:
    """Drop and create the benchmark database (for benchmarks that must start empty)."""
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
