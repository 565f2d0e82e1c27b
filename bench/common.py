"""Shared by the benchmarks: each runs on a database of its own on the same PostgreSQL server."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

# Set by `bench/smoke.py`: a database already migrated, which benchmark databases are created from, so that
# a smoke run does not spend its seconds migrating an empty database.
TEMPLATE_ENV = "VE_BENCH_TEMPLATE_DATABASE"


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


def _create_database(conn: Any, name: str) -> None:
    template = os.environ.get(TEMPLATE_ENV)
    conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def ensure_database() -> None:
    """Create the benchmark database if it does not exist (kept between runs: seeding is slow)."""
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    with _admin_connection() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            _create_database(conn, name)


def recreate_database() -> None:
    """Drop and create the benchmark database (for benchmarks that must start empty)."""
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _create_database(conn, name)


def close_database_connections() -> None:
    """Close this process's database connections, its pools' too: a pool (bench.settings, as in production)
    keeps a connection open when Django closes it, and a template database must have none when a database
    is created from it."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if connection.settings_dict.get("OPTIONS", {}).get("pool"):
            connection.close_pool()


def drop_database(name: str) -> None:
    """Drop a database on the settings' server (the smoke pass's own, afterwards)."""
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """The command line, with `--smoke`: the run CI makes of every benchmark (`bench/smoke.py`) — `smoke`'s
    values instead of the defaults (an option given still wins), so that the whole bench takes seconds:
    servers started, data seeded, figures printed, and a non-zero exit when something breaks. Throughput
    and latency targets are printed but not enforced at that size (the script checks `args.smoke`)."""
    sizes = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in smoke.items())
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"CI's smoke size, seconds end to end ({sizes}): what breaks fails it, a missed speed target not",
    )
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args()
    return args


def seed_tickets(total: int) -> tuple[int, str, str]:
    """Ensure `total` tickets exist over 4 providers (the database is kept between runs: seeding is slow);
    return provider A's id and an HMAC credential of it."""
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from providers.models import Deployment, ProviderAccount
    from providers.services import provider_credential_issue
    from tests.factories import make_address
    from tickets.models import Ticket

    providers = list(ProviderAccount.objects.order_by("pk")[:4])
    while len(providers) < 4:
        providers.append(
            ProviderAccount.objects.create(address=make_address(), name=f"Bench provider {len(providers)}")
        )
    deployments = list(Deployment.objects.filter(provider__in=providers)[:400])
    while len(deployments) < 400:
        owner = make_address()
        n = len(deployments)
        deployments.append(
            Deployment.objects.create(
                lease_id=f"{owner}/{n + 1}/1/1",
                owner_address=owner,
                dseq=n + 1,
                provider=providers[n % 4],
                name=f"bench-{n}",
            )
        )
    existing = Ticket.objects.count()
    started = time.monotonic()
    batch = []
    now = timezone.now()
    for index in range(existing, total):
        deployment = deployments[index % len(deployments)]
        at = now - timezone.timedelta(seconds=total - index)
        batch.append(
            Ticket(
                deployment=deployment,
                provider_id=deployment.provider_id,
                customer_address=deployment.owner_address,
                subject=f"Bench ticket {index}",
                description="Synthetic ticket for the list benchmark. " * 3,
                category=["technical", "billing", "general", "security"][index % 4],
                priority=["low", "medium", "high", "critical"][index % 4],
                status=["open", "in_progress", "waiting_customer", "resolved", "closed"][index % 5],
                created_by_kind="customer",
                created_by_address=deployment.owner_address,
                created_by_label="bench",
                created_at=at,
                updated_at=at,
                public_updated_at=at,
                last_activity_at=at,
            )
        )
        if len(batch) == 5000:
            Ticket.objects.bulk_create(batch)
            batch = []
    if batch:
        Ticket.objects.bulk_create(batch)
    if total > existing:
        print(f"seeded {total - existing} tickets in {time.monotonic() - started:.1f} s")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    issued = provider_credential_issue(provider=providers[0], label="bench")
    return providers[0].pk, issued.credential.principal, issued.secret
