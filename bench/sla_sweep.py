"""Benchmark: one SLA sweep over 1,000,000 open tickets, about 1 % of which crossed a threshold
(targets: under 2 s; memory independent of the table's size).

On a database of its own (`virtengine_slabench`, kept between runs: seeding is the slow part), the tickets
are bulk-inserted in SQL (INSERT … SELECT generate_series), each with its `ticket_created` event and that
event's anchored outbox row (so that the tables the sweep inserts into are a million rows deep), all open,
all with SLA targets far from due. Each round then "arms" `--crossing`
tickets spread over the table — a quarter each crossing the first-response warning, the first-response
breach, the resolution warning and the resolution breach — and times `tickets.services.sla_sweep()` as the
beat task runs it: claims on the partial indexes, events and outbox rows, escalations with their assignment
history, and the after-commit hooks (real-time publishing, chain trigger, log-fetch requests; to a broker
database of the bench's own, flushed afterwards, since no worker runs here).

It prints per round the time, the rows touched (tickets claimed, events written, escalations), the time
spent waiting on PostgreSQL (statements, and commits with their deferred foreign-key checks) and the
process's RSS before and after; then, in rounds of their own (tracemalloc slows Python down, so those are
not timed), the peak Python memory of a sweep at a tenth of `--crossing`, at `--crossing`, at four times it
and with nothing to do — it grows with the crossings until a batch is full (VE_SLA_SWEEP_BATCH_SIZE tickets
per threshold) and no further, and a table a tenth the size (`--tickets 100000` on another DATABASE_NAME)
gives the same figures — and the claim's plan (an index scan of the threshold's partial index, rows = crossings).
The baseline, measured in the same run: a sweep with nothing crossing (the floor: eight index probes).

Unless `--nobody-to-tell`, the installation has the people a sweep's events reach, as production does:
3 support agents with an email address, 2 members with one per provider, and one webhook endpoint per
provider for every event kind — so each round also queues the breaches' and escalations' digest emails
and a webhook delivery per event, in the sweep's transactions.

    .venv/bin/python bench/sla_sweep.py [--tickets 1000000] [--crossing 10000] [--rounds 3] [--after-checkpoint] [--nobody-to-tell] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_slabench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
BROKER_DB = 11  # a Redis database of its own: the sweep's after-commit tasks pile up here, then go

from bench.common import ensure_database, parse_args  # noqa: E402 - after sys.path is set

PROVIDERS = 4
DEPLOYMENTS = 400
SEED_CHUNK = 100_000
# Thresholds well away from now: nothing crosses until a round arms it.
FAR = "interval '30 days'"


def configure_broker() -> str:
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        from server import devservices

        redis_url = devservices.ensure_running(want_postgres=False, want_redis=True).redis_url
        os.environ["REDIS_URL"] = redis_url
    base, _, last = redis_url.rpartition("/")
    broker = f"{base}/{BROKER_DB}" if last.isdigit() else f"{redis_url.rstrip('/')}/{BROKER_DB}"
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ.setdefault("VE_CACHE_PREFIX", "ves-slabench")
    os.environ.setdefault("VE_CHANNELS_PREFIX", "ves-slabench")
    return broker


SUPPORT_AGENTS = 3
MEMBERS_PER_PROVIDER = 2


def people_to_tell(providers: list, *, wanted: bool) -> None:
    """Support agents and provider members with email, one webhook endpoint per provider (every kind) —
    or, when not `wanted`, none of them."""
    from django.contrib.auth import get_user_model

    from notifications.models import WebhookEndpoint
    from notifications.services import webhook_endpoint_create
    from providers.models import ProviderMembership
    from providers.selectors import provider_party
    from providers.services import provider_member_add, support_staff_create, user_ensure
    from tickets.presenter import SHAPES

    users = get_user_model().objects.filter(username__startswith="slabench-")
    if not wanted:
        WebhookEndpoint.objects.filter(provider__in=providers).delete()
        ProviderMembership.objects.filter(user__in=users).delete()
        users.delete()
        return
    for n in range(SUPPORT_AGENTS):
        support_staff_create(username=f"slabench-agent-{n}", email=f"agent-{n}@support.example")
    for provider in providers:
        for n in range(MEMBERS_PER_PROVIDER):
            user = user_ensure(username=f"slabench-{provider.pk}-{n}", email=f"ops-{n}@{provider.pk}.example")
            provider_member_add(provider=provider, user=user)
        if not WebhookEndpoint.objects.filter(provider=provider).exists():
            webhook_endpoint_create(
                actor=provider_party(provider),
                url=f"https://hooks.provider-{provider.pk}.example/virtengine",
                event_types=sorted(SHAPES),
            )


def seed(total: int, *, people: bool) -> None:
    """`total` open tickets over 4 providers and 400 deployments, inserted by PostgreSQL itself."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from providers.models import Deployment, ProviderAccount
    from tests.factories import make_address
    from tickets.models import Ticket
    from tickets.services import sla_policies_ensure

    policies = {policy.priority: policy.pk for policy in sla_policies_ensure()}
    providers = list(ProviderAccount.objects.order_by("pk")[:PROVIDERS])
    while len(providers) < PROVIDERS:
        providers.append(
            ProviderAccount.objects.create(address=make_address(), name=f"Bench provider {len(providers)}")
        )
    while Deployment.objects.count() < DEPLOYMENTS:
        owner, n = make_address(), Deployment.objects.count()
        Deployment.objects.create(
            lease_id=f"{owner}/{n + 1}/1/1",
            owner_address=owner,
            dseq=n + 1,
            provider=providers[n % PROVIDERS],
        )
    people_to_tell(providers, wanted=people)
    existing = Ticket.objects.count()
    if existing >= total:
        seed_history()
        return
    started = time.monotonic()
    policy_of = (
        "CASE mod(g, 4) "
        + " ".join(
            f"WHEN {i} THEN {policies[p]}" for i, p in enumerate(("low", "medium", "high", "critical"))
        )
        + " END"
    )
    with connection.cursor() as cursor:
        for first in range(existing + 1, total + 1, SEED_CHUNK):
            last = min(first + SEED_CHUNK - 1, total)
            cursor.execute(
                f"""
                WITH d AS (
                    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, provider_id, owner_address
                    FROM providers_deployment
                )
                INSERT INTO tickets_ticket (
                    id, deployment_id, provider_id, customer_address, subject, description, category,
                    priority, status, created_by_kind, created_by_address, created_by_label, assignee_kind,
                    created_at, updated_at, public_updated_at, last_activity_at, status_changed_at, metadata, last_seq,
                    last_public_seq, sla_policy_id, sla_first_response_due, sla_first_response_warn_at,
                    sla_resolution_due, sla_resolution_warn_at, sla_paused_seconds, sla_next_due
                )
                SELECT gen_random_uuid(), d.id, d.provider_id, d.owner_address, 'Bench ticket ' || g,
                    'Synthetic ticket for the SLA sweep benchmark.',
                    (ARRAY['technical', 'billing', 'general', 'security'])[1 + mod(g, 4)],
                    (ARRAY['low', 'medium', 'high', 'critical'])[1 + mod(g, 4)],
                    (ARRAY['open', 'in_progress'])[1 + mod(g, 2)],
                    'customer', d.owner_address, 'bench', 'provider',
                    now() - mod(g, 86400) * interval '1 second', now(), now(), now(), now(), '{{}}'::jsonb, 1, 1,
                    {policy_of},
                    now() + {FAR} + g * interval '1 ms', now() + {FAR} + g * interval '1 ms',
                    now() + {FAR} * 2 + g * interval '1 ms', now() + {FAR} * 2 + g * interval '1 ms',
                    0, now() + {FAR} + g * interval '1 ms'
                FROM generate_series(%s, %s) AS g JOIN d ON d.k = mod(g, {DEPLOYMENTS})
                """,
                [first, last],
            )
            print(f"  seeded tickets {first:,}–{last:,} ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("VACUUM ANALYZE tickets_ticket")
    print(f"seeded {total - existing:,} tickets in {time.monotonic() - started:.1f} s")
    seed_history()


def seed_history() -> None:
    """Each ticket's `ticket_created` event (its seq 1) and that event's anchored outbox row, so that the
    event and outbox tables — which the sweep's statements insert into and its notifications read by id —
    are the size a million tickets give them, not empty."""
    from django.db import connection

    from chain.services import outbox_insert_sql

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticketevent WHERE kind = 'ticket_created'")
        (have,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        (want,) = cursor.fetchone()
        if have >= want:
            return
        started = time.monotonic()
        # NOT IN a subquery: PostgreSQL hashes it once (an anti-join planned on the empty table's statistics
        # would scan the growing table once per ticket).
        cursor.execute(
            """
            INSERT INTO tickets_ticketevent
                (ticket_id, seq, public_seq, kind, is_internal, actor_kind, actor_label, data, created_at)
            SELECT t.id, 1, 1, 'ticket_created', false, 'customer', 'bench', '{}'::jsonb, t.created_at
            FROM tickets_ticket AS t
            WHERE t.id NOT IN (SELECT ticket_id FROM tickets_ticketevent WHERE seq = 1)
            """
        )
        insert, params = outbox_insert_sql("tickets_ticketevent")
        cursor.execute(
            f"{insert} WHERE e.kind = 'ticket_created' AND e.id NOT IN (SELECT event_id FROM chain_outboxentry)",
            params,
        )
        cursor.execute(
            "UPDATE chain_outboxentry SET state = 'anchored', anchored_at = created_at, backend = 'bench' "
            "WHERE state <> 'anchored' AND seq = 1 AND event_id IN "
            "(SELECT id FROM tickets_ticketevent WHERE kind = 'ticket_created')"
        )
        cursor.execute("VACUUM ANALYZE tickets_ticketevent, chain_outboxentry")
    print(
        f"seeded the tickets' creation events and anchored outbox rows in {time.monotonic() - started:.1f} s"
    )


ARMED = "SELECT id FROM tickets_ticket WHERE mod(number, %(every)s) = 0 ORDER BY number LIMIT %(crossing)s"
GROUP = "mod(number / %(every)s, 4)"


def disarm() -> None:
    """Undo the last round: its events, outbox rows and history go; the armed tickets wait far off again;
    the dead rows this leaves are vacuumed."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("chain_outboxentry", "notifications_webhookdelivery"):
            cursor.execute(
                f"DELETE FROM {table} WHERE event_id IN (SELECT id FROM tickets_ticketevent "
                "WHERE actor_kind = 'system')"
            )
        cursor.execute("DELETE FROM notifications_pendingemail")
        cursor.execute("DELETE FROM tickets_ticketevent WHERE actor_kind = 'system'")
        cursor.execute("DELETE FROM tickets_assignment WHERE by_kind = 'system'")
        cursor.execute(
            f"""
            UPDATE tickets_ticket SET
                sla_first_response_warned_at = NULL, sla_first_response_breached_at = NULL,
                sla_resolution_warned_at = NULL, sla_resolution_breached_at = NULL,
                sla_first_response_warn_at = now() + {FAR}, sla_first_response_due = now() + {FAR},
                sla_resolution_warn_at = now() + {FAR} * 2, sla_resolution_due = now() + {FAR} * 2,
                assignee_kind = 'provider', assigned_to_id = NULL, escalated_at = NULL, last_seq = 1,
                last_public_seq = 1
            WHERE sla_first_response_warned_at IS NOT NULL OR sla_first_response_breached_at IS NOT NULL
               OR sla_resolution_warned_at IS NOT NULL OR sla_resolution_breached_at IS NOT NULL
               OR sla_first_response_warn_at <= now() + interval '1 day'
               OR sla_resolution_warn_at <= now() + interval '1 day'
            """
        )
        # The reset's dead rows are the bench's own debris: vacuumed here, so that autovacuum does not
        # clear them on the other core during the timed sweep.
        cursor.execute(
            "VACUUM tickets_ticket, tickets_ticketevent, chain_outboxentry, tickets_assignment, "
            "notifications_pendingemail, notifications_webhookdelivery"
        )


def arm(total: int, crossing: int) -> None:
    """`crossing` tickets spread over the table cross one threshold each, a quarter per threshold."""
    from django.db import connection

    every = max(1, total // crossing)
    params = {"every": every, "crossing": crossing}
    past, warned = "now() - interval '1 second'", "now() - interval '10 minutes'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE tickets_ticket SET
                sla_first_response_warn_at = CASE WHEN {GROUP} = 0 THEN {past} ELSE sla_first_response_warn_at END,
                sla_first_response_warned_at = CASE WHEN {GROUP} = 1 THEN {warned} END,
                sla_first_response_due = CASE WHEN {GROUP} = 1 THEN {past} ELSE sla_first_response_due END,
                sla_resolution_warn_at = CASE WHEN {GROUP} = 2 THEN {past} ELSE sla_resolution_warn_at END,
                sla_resolution_warned_at = CASE WHEN {GROUP} = 3 THEN {warned} END,
                sla_resolution_due = CASE WHEN {GROUP} = 3 THEN {past} ELSE sla_resolution_due END
            WHERE id IN ({ARMED})
            """,
            params,
        )
        assert cursor.rowcount == crossing, cursor.rowcount
        cursor.execute("ANALYZE tickets_ticket")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def flush_broker(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


class DatabaseTime:
    """Time the sweep spends waiting on PostgreSQL, summed over its connections (its lanes run on two at
    once, so the sum can exceed the sweep's wall time): its statements, and its commits (where the
    deferred foreign-key checks of every row run)."""

    def __init__(self) -> None:
        self.statements = 0.0
        self.commits = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> DatabaseTime:
        from django.db.backends.postgresql.base import DatabaseWrapper
        from django.db.backends.utils import CursorWrapper

        self._patched = [(CursorWrapper, "_execute"), (DatabaseWrapper, "_commit")]
        self._originals = [getattr(cls, name) for cls, name in self._patched]
        execute, commit = self._originals
        timed = self._timed

        def timed_execute(cursor, *args, **kwargs):
            return timed("statements", execute, cursor, *args, **kwargs)

        def timed_commit(connection):
            return timed("commits", commit, connection)

        CursorWrapper._execute = timed_execute
        DatabaseWrapper._commit = timed_commit
        return self

    def __exit__(self, *exc_info: object) -> None:
        for (cls, name), original in zip(self._patched, self._originals, strict=True):
            setattr(cls, name, original)

    def _timed(self, what: str, call, *args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                setattr(self, what, getattr(self, what) + elapsed)


def sweep_once(*, measure_memory: bool) -> dict:
    from tickets.realtime import publisher
    from tickets.services import sla_sweep

    rss_before = rss_mb()
    if measure_memory:
        tracemalloc.start()
    started = time.perf_counter()
    with DatabaseTime() as database:
        result = sla_sweep()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if measure_memory else None
    if measure_memory:
        tracemalloc.stop()
    rss_after = rss_mb()
    publisher().flush(timeout=120)  # let the real-time sends finish before the next round
    return {
        "seconds": elapsed,
        "result": result,
        "peak": peak,
        "rss": (rss_before, rss_after),
        "database": (database.statements, database.commits),
    }


def queued_notifications() -> str:
    from notifications.models import PendingEmail, WebhookDelivery

    return (
        f"{WebhookDelivery.objects.count():,} webhook deliveries, "
        f"{PendingEmail.objects.count():,} pending emails (digests per recipient and ticket)"
    )


def claim_plan() -> str:
    """EXPLAIN ANALYZE of one threshold's claim, as the sweep issues it."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tickets.services.sla import THRESHOLDS, claim_queryset

    with transaction.atomic():
        query, params = claim_queryset(THRESHOLDS[0], now=timezone.now(), limit=1000).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", params)
            lines = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return "\n".join(f"    {line}" for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--crossing", type=int, default=10_000, help="tickets crossing a threshold per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--after-checkpoint",
        action="store_true",
        help="CHECKPOINT before each timed sweep: the worst case, every page it touches logged whole",
    )
    parser.add_argument(
        "--nobody-to-tell",
        action="store_true",
        help="no support agents, provider members or webhook endpoints: the sweep queues no email or webhook",
    )
    args = parse_args(parser, {"tickets": 2000, "crossing": 40, "rounds": 1})
    broker = configure_broker()

    import django

    django.setup()
    ensure_database()
    seed(args.tickets, people=not args.nobody_to_tell)
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticket WHERE status IN ('open', 'in_progress')")
        (open_tickets,) = cursor.fetchone()
        server = {}
        for name in ("shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression"):
            cursor.execute(f"SHOW {name}")
            server[name] = cursor.fetchone()[0]
    print(
        f"{open_tickets:,} open tickets; {args.crossing:,} crossing a threshold per round "
        f"({args.crossing / open_tickets:.1%}); batch size {settings.VE_SLA_SWEEP_BATCH_SIZE}; "
        f"lanes on two connections: {settings.VE_SLA_SWEEP_PARALLEL}; batches of more than "
        f"{settings.VE_REALTIME_INLINE_EVENTS} events broadcast by realtime_publish_task (queued, not run here)"
    )
    print(
        "people to tell: none"
        if args.nobody_to_tell
        else f"people to tell: {SUPPORT_AGENTS} support agents, {MEMBERS_PER_PROVIDER} members per provider "
        f"(with email), one webhook endpoint per provider for every event kind"
    )
    print("PostgreSQL: " + ", ".join(f"{name} {value}" for name, value in server.items()))
    # As a worker does when it starts: the task registry is built before the first sweep needs it.
    from config.celery_app import app as celery_app

    celery_app.loader.import_default_modules()
    celery_app.finalize()

    disarm()
    floor = sweep_once(measure_memory=False)
    print(f"baseline, nothing crossing: {floor['seconds'] * 1000:.1f} ms, {floor['result'].events} events")

    times, database_times = [], []
    for round_number in range(1, args.rounds + 1):
        disarm()
        arm(args.tickets, args.crossing)
        if args.after_checkpoint:
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
        run = sweep_once(measure_memory=False)
        result = run["result"]
        times.append(run["seconds"])
        print(
            f"round {round_number}: {run['seconds']:.2f} s — tickets claimed {result.warnings + result.breaches:,} "
            f"(warnings {result.warnings:,}, breaches {result.breaches:,}), escalations {result.escalations:,}, "
            f"events written {result.events:,}, batches {result.batches}; "
            f"waiting on PostgreSQL (summed over connections) {sum(run['database']):.2f} s (statements {run['database'][0]:.2f} s, "
            f"commits {run['database'][1]:.2f} s); RSS {run['rss'][0]:.0f} → {run['rss'][1]:.0f} MB"
        )
        print(f"    queued by it: {queued_notifications()}")
        database_times.append(sum(run["database"]))
        assert result.warnings + result.breaches == args.crossing, result
        flush_broker(broker)

    peaks = {}
    for crossing in (max(4, args.crossing // 10), args.crossing, args.crossing * 4, 0):
        label = f"{crossing:,} ({crossing / open_tickets:.1%})" if crossing else "none"
        disarm()
        if crossing:
            arm(args.tickets, crossing)
        peaks[label] = sweep_once(measure_memory=True)
        flush_broker(broker)
    disarm()
    arm(args.tickets, args.crossing)
    plan = claim_plan()
    disarm()

    median = statistics.median(times)
    print(
        f"\nsweep time over {args.rounds} rounds: median {median:.2f} s, max {max(times):.2f} s "
        f"(target < 2 s: {'met' if max(times) < 2 else 'NOT met'}); "
        f"{median / max(floor['seconds'], 1e-9):,.0f}× the empty sweep's {floor['seconds'] * 1000:.1f} ms; "
        f"waiting on PostgreSQL, summed over connections: median {statistics.median(database_times):.2f} s"
    )
    print(
        "peak Python memory of one sweep (tracemalloc, untimed rounds): "
        + ", ".join(
            f"{label} crossing {peak['peak']:.1f} MB ({peak['result'].events:,} events)"
            for label, peak in peaks.items()
        )
    )
    print(
        f"claim plan (first-response warnings, {args.crossing // 4:,} crossing of {open_tickets:,}):\n{plan}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
