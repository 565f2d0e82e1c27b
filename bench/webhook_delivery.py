"""Benchmark: webhook delivery lag and rate (target: p99 lag < 2 s from commit to receipt at 100 events/s).

On a database of its own (`virtengine_webhookbench`, recreated each run): 10 webhook endpoints on a local
receiver (uvicorn + httptools, verifying every delivery with svix) and real Celery worker processes
(prefork, triggered after commit by the event hook, as in production). Producer processes write 10,000
ticket events (customer replies) at a steady 100/s. Each event goes to the endpoints of its ticket's
provider: `--fanout` endpoints per provider, 10 by default — one provider with all 10 endpoints, so every
event is delivered 10 times (100,000 deliveries, 1,000/s); `--fanout 1` spreads the events over 10
providers with one endpoint each (10,000 deliveries). Lag = the receiver's arrival time − the event's
`created_at` (set inside the event's transaction, so the lag includes the rest of that transaction and its
commit). The chain anchoring trigger and the real-time broadcast are off in the producers (no socket
listens): this measures the webhook path alone.

How the replies are written (`--writer`):
- `comment_add` (default): the reply service itself, one reply per transaction (`--per-commit 1`), as
  separate API requests write them;
- `recorder`: comment rows and their `new_comment` events for a chunk of `--per-commit` tickets in one pass
  of `recording.record_events`, the recorder every service writes through (as the SLA sweep's batches do):
  the same rows with less CPU, for a machine where the service cannot reach the rate asked beside the
  workers, the receiver and PostgreSQL.

It prints the rate the producers reached; the run fails (exit 1) if a delivery is missing, duplicated or
unverified, or (but for `--smoke`) if the rate is under 95 % of `--rate` or the p99 lag is 2 s or more.

    .venv/bin/python bench/webhook_delivery.py [--events 10000] [--rate 100] [--fanout 10] [--workers 2] [--writer comment_add|recorder] [--per-commit 1] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "virtengine_webhookbench"
BROKER_DB = 11
ENDPOINTS = 10


def configure() -> dict[str, str]:
    return bench_environment(
        database=DATABASE,
        broker_db=BROKER_DB,
        cache_prefix="ves-webhookbench",
        VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
    )


from bench.common import bench_environment, parse_args, recreate_database  # noqa: E402 - after sys.path is set
from tests.system.processes import celery_worker_command, free_port, stop_process, wait_for_port  # noqa: E402


def make_world(args, port: int, workdir: Path):
    """Providers with `fanout` endpoints each (10 in all), a wallet-only customer, tickets per provider."""
    from core.parties import Party, PartyKind
    from notifications.services import webhook_endpoint_create
    from providers.models import CustomerIdentity, Deployment, ProviderAccount
    from providers.selectors import provider_party
    from tests.factories import make_address
    from tickets import services
    from tickets.presenter import SHAPES

    owner = make_address()
    CustomerIdentity.objects.create(address=owner)
    customer = Party(kind=PartyKind.CUSTOMER, label="bench-customer", address=owner)
    secrets, tickets = {}, []
    for p in range(ENDPOINTS // args.fanout):
        provider = ProviderAccount.objects.create(address=make_address(), name=f"Bench provider {p}")
        for e in range(args.fanout):
            path = f"/e/{p}/{e}"
            created = webhook_endpoint_create(
                actor=provider_party(provider),
                url=f"http://127.0.0.1:{port}{path}",
                event_types=sorted(SHAPES),
            )
            secrets[path] = created.secret
        for d in range(args.tickets_per_provider):
            deployment = Deployment.objects.create(
                lease_id=f"{owner}/{p * 1000 + d + 1}/1/1",
                owner_address=owner,
                dseq=p * 1000 + d + 1,
                provider=provider,
            )
            tickets.append(
                services.ticket_create(
                    actor=customer,
                    deployment_id=deployment.lease_id,
                    subject=f"Bench {p}/{d}",
                    description="Bench.",
                )
            )
    secrets_path = workdir / "secrets.json"
    secrets_path.write_text(json.dumps(secrets))
    return customer, tickets, secrets_path


def start_receiver(port: int, secrets_path: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "uvicorn", "bench.webhook_receiver:app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--http", "httptools", "--loop", "uvloop",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "VE_BENCH_SECRETS": str(secrets_path)})
    wait_for_port(port, process=process)
    return process


def start_workers(env: dict[str, str], workers: int) -> subprocess.Popen:
    command = celery_worker_command(f"--concurrency={workers}", "--pool=prefork")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})


def dump(port: int) -> list:
    import requests

    return requests.get(f"http://127.0.0.1:{port}/dump", timeout=30).json()


def wait_delivered(first_id: int, timeout: float) -> int:
    from notifications.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    window = WebhookDelivery.objects.filter(id__gt=first_id)
    while time.monotonic() < deadline:
        left = window.exclude(state=WebhookDelivery.State.DELIVERED).count()
        if not left:
            return 0
        time.sleep(0.25)
    return left


def produce(args, customer, tickets) -> float:
    """Write the events from `--producers` forked processes, paced together on one schedule (event n at
    start + n/rate): one Python process tops out near 50 replies/s here (the GIL), under the 100/s the
    target is stated at."""
    import multiprocessing

    from bench.common import close_database_connections

    close_database_connections()  # each child opens its own (a pool shared across a fork would hand the same ones out)
    started = time.monotonic() + 0.5  # every child is up before the first event is due
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_producer, args=(args, customer, tickets, index, started))
        for index in range(args.producers)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    failed = [child.exitcode for child in children if child.exitcode]
    if failed:
        raise RuntimeError(f"producer processes failed: exit codes {failed}")
    return time.monotonic() - started


def _producer(args, customer, tickets, index: int, started: float) -> None:
    from django.db import connection

    write = _replies_recorded if args.writer == "recorder" else _replies_through_comment_add
    try:
        # Chunk k (events k*per_commit … k*per_commit + per_commit - 1) is due at start + k*per_commit/rate.
        for chunk in range(index, -(-args.events // args.per_commit), args.producers):
            first = chunk * args.per_commit
            pause = started + first / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            numbers = range(first, min(first + args.per_commit, args.events))
            write(customer, [(n, tickets[n % len(tickets)].pk) for n in numbers])
    finally:
        connection.close()


def _replies_through_comment_add(customer, replies) -> None:
    from django.db import transaction

    from tickets import services

    with transaction.atomic():
        for n, ticket_id in replies:
            services.comment_add(actor=customer, ticket_id=ticket_id, body=f"Bench reply {n}")


def _replies_recorded(customer, replies) -> None:
    """The replies as `comment_add` writes them (its comment rows and `new_comment` events), for several
    tickets in one pass of the event recorder — the path of the SLA sweep's batches: the events, their
    outbox rows and webhook deliveries in one transaction, the after-commit hooks once."""
    from django.db import transaction
    from django.utils import timezone

    from tickets.models import Comment, Ticket
    from tickets.services import recording
    from tickets.services.comments import comment_event, new_comment

    with transaction.atomic():
        now = timezone.now()
        locked = Ticket.objects.select_for_update().in_bulk([ticket_id for _, ticket_id in replies])
        comments = Comment.objects.bulk_create(
            new_comment(locked[ticket_id], actor=customer, body=f"Bench reply {n}", is_internal=False, at=now)
            for n, ticket_id in replies
        )
        recording.record_events([comment_event(comment, actor=customer) for comment in comments])
        for ticket in locked.values():
            ticket.last_activity_at = now
        recording.save_tickets(list(locked.values()), "last_activity_at", at=now)


def report(args, records, first_id: int, produced_in: float) -> bool:
    from notifications.models import WebhookDelivery
    from tickets.models import TicketEvent

    window = WebhookDelivery.objects.filter(id__gt=first_id)
    expected = {str(pid) for pid in window.values_list("public_id", flat=True)}
    created = {
        (str(t), s): c.timestamp()
        for t, s, c in TicketEvent.objects.filter(pk__in=window.values("event_id")).values_list(
            "ticket_id", "seq", "created_at"
        )
    }
    seen = [r for r in records if r[1] in expected]
    ids = [r[1] for r in seen]
    lags = sorted(r[0] - created[(r[3], r[4])] for r in seen)
    unverified = sum(1 for r in seen if not r[5])
    first_commit = min(created.values())
    last_receipt = max(r[0] for r in seen)
    rate = len(set(ids)) / (last_receipt - first_commit)
    p50 = statistics.median(lags)
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"{args.events} events in {produced_in:.1f} s ({args.events / produced_in:.0f} events/s, {args.producers} "
        f"producer processes, {args.per_commit} per commit, written by {args.writer}), {ENDPOINTS} endpoints ({args.fanout} per provider): {len(expected)} deliveries expected, "
        f"{len(set(ids))} received, {len(ids) - len(set(ids))} duplicate ids, {unverified} failed svix verification"
    )
    print(
        f"deliveries/s over the run: {rate:,.0f}; lag commit -> receipt: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms (target p99 < 2 s); workers: {args.workers} "
        f"prefork processes x VE_WEBHOOK_CONCURRENCY sending threads"
    )
    reached = args.events / produced_in
    complete = set(ids) == expected and len(ids) == len(expected) and not unverified
    targets_met = p99 < 2.0 and reached >= 0.95 * args.rate
    verdict = complete and (targets_met or args.smoke)
    print(
        f"target (p99 < 2 s at {args.rate:g} events/s, every delivery once and verified): "
        f"{'met' if targets_met and complete else 'NOT met'} (producers reached {reached:.0f} events/s)"
        + ("; --smoke: only every delivery once and verified is enforced" if args.smoke else "")
    )
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s")
    parser.add_argument(
        "--fanout", type=int, default=10, choices=[1, 2, 5, 10], help="endpoints per provider"
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--producers", type=int, default=4, help="producer processes")
    parser.add_argument(
        "--writer",
        choices=["recorder", "comment_add"],
        default="comment_add",
        help="how the replies are written (see the module docstring)",
    )
    parser.add_argument(
        "--per-commit",
        type=int,
        default=1,
        help="replies per producer transaction (1 = one reply per commit, as from separate API requests)",
    )
    parser.add_argument("--tickets-per-provider", type=int, default=20)
    args = parse_args(
        parser, {"events": 40, "rate": 20, "workers": 1, "producers": 2, "tickets_per_provider": 2}
    )

    with tempfile.TemporaryDirectory(prefix="webhookbench-") as tmp:
        env = configure()
        import django

        django.setup()
        recreate_database()
        import redis
        from django.core.management import call_command
        from django.db import connection

        connection.close()
        call_command("migrate", verbosity=0)
        redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
        from chain.services import outbox_drain_trigger
        from notifications.models import WebhookDelivery
        from tickets.hooks import unregister_event_hook
        from tickets.realtime import publish_event

        # The webhook path alone: no anchoring trigger, no real-time broadcast (no socket listens here).
        unregister_event_hook(outbox_drain_trigger)
        unregister_event_hook(publish_event)
        port = free_port()
        customer, tickets, secrets_path = make_world(args, port, Path(tmp))
        receiver = start_receiver(port, secrets_path)
        workers = start_workers(env, args.workers)
        try:
            from notifications.services import webhook_request_delivery

            time.sleep(3)  # worker boot
            webhook_request_delivery()  # the tickets' own deliveries: warm-up, not measured
            if wait_delivered(0, 60):
                print("warm-up deliveries did not all arrive")
                return 1
            first_id = WebhookDelivery.objects.order_by("-id").values_list("id", flat=True).first()
            produced_in = produce(args, customer, tickets)
            left = wait_delivered(first_id, 120)
            records = dump(port)
        finally:
            workers.send_signal(signal.SIGTERM)
            workers.wait(timeout=60)
            stop_process(receiver)
        if left:
            print(f"{left} deliveries not delivered within 120 s of the last event")
        met = report(args, records, first_id, produced_in)
    return 0 if met and not left else 1


if __name__ == "__main__":
    sys.exit(main())
