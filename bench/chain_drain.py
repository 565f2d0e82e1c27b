"""Benchmark: the chain outbox drain into the local ledger (targets: >= 1,000 events/s; lag p99 < 2 s).

On a separate database (`virtengine_chainbench`, recreated each run) and a temporary ledger:

(a) throughput: N events written through the real services (tickets with comments, one customer and one
    provider with envelope keys, so every envelope has three recipients), then timed: `outbox_drain` in this
    process, batches of VE_CHAIN_DRAIN_BATCH_SIZE — claim, load, seal, append (fsync) and record receipts;
(b) lag: a producer writes comments through the services at a steady rate while a real Celery worker
    process (bench broker, triggered after commit by the event hook, as in production) drains; lag =
    `anchored_at` (the ledger block's time) − the event's `created_at`, p50/p99 over the window.

    .venv/bin/python bench/chain_drain.py [--events 20000] [--rate 100] [--seconds 30] [--smoke]

Exit 1 if an event is not anchored, the ledger has findings, or (but for `--smoke`) a target is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "virtengine_chainbench"
BROKER_DB = 12  # a Redis database of its own: the bench's drain tasks reach only the bench's worker


def configure(workdir: Path) -> dict[str, str]:
    """Environment for this process and the worker: services, bench database and broker, temp ledger."""
    return bench_environment(
        database=DATABASE,
        broker_db=BROKER_DB,
        cache_prefix="ves-chainbench",
        VE_CHAIN_BACKEND="local",
        VE_CHAIN_LEDGER_PATH=str(workdir / "ledger" / "ledger.jsonl"),
        VE_CHAIN_NODE_KEY_PATH=str(workdir / "ledger" / "node.key"),
        VE_CHAIN_SUPPORT_KEY_PATH=str(workdir / "support.key"),
        VE_CHAIN_SIGNER_KEY_PATH=str(workdir / "signer.key"),
    )


from bench.common import bench_environment, parse_args, recreate_database  # noqa: E402 - after sys.path is set
from tests.system.processes import celery_worker_command  # noqa: E402


def flush_broker(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def make_world():
    """One provider and customer with envelope keys, 20 deployments; the parties that write."""
    from chain import envelopes
    from core.parties import Party, PartyKind
    from providers.models import CustomerIdentity, Deployment, ProviderAccount
    from tests.factories import make_address

    provider = ProviderAccount.objects.create(
        address=make_address(), name="Bench provider", envelope_public_key=envelopes.generate_keypair()[1]
    )
    owner = make_address()
    CustomerIdentity.objects.create(address=owner, envelope_public_key=envelopes.generate_keypair()[1])
    deployments = [
        Deployment.objects.create(
            lease_id=f"{owner}/{n + 1}/1/1",
            owner_address=owner,
            dseq=n + 1,
            provider=provider,
            name=f"bench-{n}",
        )
        for n in range(20)
    ]
    customer = Party(kind=PartyKind.CUSTOMER, label="bench-customer", address=owner)
    provider_party = Party(
        kind=PartyKind.PROVIDER, label="bench-provider", address=provider.address, provider_id=provider.pk
    )
    return customer, provider_party, deployments


COMMENT = "The pod restarts every few minutes with OOMKilled; the logs are attached to the ticket. " * 3


def produce(customer, provider, deployments, *, events: int, per_ticket: int) -> int:
    """`events` ticket events through the services: tickets, then customer/provider comments."""
    from tickets import services

    written = 0
    ticket_number = 0
    while written < events:
        ticket = services.ticket_create(
            actor=customer,
            deployment_id=deployments[ticket_number % len(deployments)].lease_id,
            subject=f"Bench ticket {ticket_number}",
            description="Synthetic ticket for the chain drain benchmark.",
            category="technical",
            priority="high",
        )
        ticket_number += 1
        written += 1
        for n in range(min(per_ticket - 1, events - written)):
            actor = provider if n % 2 else customer
            services.comment_add(actor=actor, ticket_id=ticket.pk, body=COMMENT, is_internal=n % 4 == 3)
            written += 1
    return written


def throughput(args, customer, provider, deployments) -> float:
    from chain.models import OutboxEntry
    from chain.services import outbox_drain, outbox_drain_trigger
    from tickets.hooks import register_event_hook, unregister_event_hook

    unregister_event_hook(outbox_drain_trigger)  # seed first, drain afterwards: nothing else may drain
    try:
        started = time.perf_counter()
        written = produce(customer, provider, deployments, events=args.events, per_ticket=args.per_ticket)
        print(f"(a) wrote {written} events through the services in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        result = outbox_drain(max_batches=1_000_000)
        elapsed = time.perf_counter() - started
    finally:
        register_event_hook(outbox_drain_trigger)
    assert result.anchored == written, result
    assert not OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).exists()
    rate = written / elapsed
    print(
        f"(a) drained {result.anchored} events in {elapsed:.2f} s over {result.batches} batches: "
        f"{rate:,.0f} events/s (target >= 1,000)"
    )
    return rate


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(celery_worker_command("--pool=solo"), cwd=ROOT, env={**os.environ, **env})


def lag(args, env, customer, provider, deployments) -> tuple[float, float, int]:
    from django.db.models import F

    from chain.models import OutboxEntry
    from tickets import services

    tickets = [
        services.ticket_create(
            actor=customer,
            deployment_id=deployments[n % len(deployments)].lease_id,
            subject=f"Lag ticket {n}",
            description="Steady-rate producer.",
        )
        for n in range(50)
    ]
    worker = start_worker(env)
    try:
        time.sleep(3)  # worker boot; it drains the tickets just opened
        first_id = OutboxEntry.objects.order_by("-id").values_list("id", flat=True).first()
        total = int(args.rate * args.seconds)
        # Several producer threads (each its own connection, own tickets), as concurrent API requests are:
        # one thread alone cannot commit 100 writes/s on a busy 2-core machine.
        producers = args.producers
        started = time.perf_counter()

        def producer(index: int) -> None:
            from django.db import connection as thread_connection

            mine = tickets[index::producers]
            try:
                for n in range(index, total, producers):
                    due = started + n / args.rate  # event n's slot on the steady schedule
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    actor = provider if n % 2 else customer
                    services.comment_add(actor=actor, ticket_id=mine[n % len(mine)].pk, body=COMMENT)
            finally:
                thread_connection.close()

        threads = [threading.Thread(target=producer, args=(i,)) for i in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        produced_in = time.perf_counter() - started
        deadline = time.monotonic() + 30
        # The producer's comments: not what else the worker writes meanwhile (the log fetches that (a)'s
        # technical tickets asked for, written as `logs_fetched` events whenever the worker gets to them).
        window = OutboxEntry.objects.filter(id__gt=first_id, event__kind="new_comment")
        while window.exclude(state=OutboxEntry.State.ANCHORED).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    lags = sorted(
        (row["lag"].total_seconds())
        for row in window.annotate(lag=F("anchored_at") - F("event__created_at")).values("lag")
        if row["lag"] is not None
    )
    missing = window.exclude(state=OutboxEntry.State.ANCHORED).count()
    if not lags:
        print(f"(b) {total} comments, none anchored within 30 s of the last one")
        return float("inf"), float("inf"), missing
    p50 = statistics.median(lags)
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"(b) {total} comments over {produced_in:.1f} s ({total / produced_in:.0f}/s, {args.producers} producer "
        f"threads), drained by a Celery worker "
        f"(after-commit trigger): lag p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms "
        f"(target p99 < 2 s); not anchored: {missing}"
    )
    return p50, p99, missing


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-ticket", type=int, default=10, help="events per ticket in (a)")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in (b)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--producers", type=int, default=4, help="producer threads in (b)")
    args = parse_args(parser, {"events": 100, "rate": 20, "seconds": 2, "producers": 2})

    with tempfile.TemporaryDirectory(prefix="chainbench-") as tmp:
        env = configure(Path(tmp))
        import django

        django.setup()
        recreate_database()
        from django.core.management import call_command
        from django.db import connection

        connection.close()
        call_command("migrate", verbosity=0)
        flush_broker(env["CELERY_BROKER_URL"])
        customer, provider, deployments = make_world()
        rate = throughput(args, customer, provider, deployments)
        _p50, p99, missing = lag(args, env, customer, provider, deployments)

        from chain.ledger_verification import verify_ledger

        findings = verify_ledger(Path(env["VE_CHAIN_LEDGER_PATH"]))
        print(f"ledger findings after both runs: {len(findings)}")
    targets_met = rate >= 1000 and p99 < 2.0
    return 0 if (targets_met or args.smoke) and not missing and not findings else 1


if __name__ == "__main__":
    sys.exit(main())
