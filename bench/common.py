"""Shared by the benchmarks: each runs on a database of its own on the same PostgreSQL server."""

from __future__ import annotations

from typing import Any


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
