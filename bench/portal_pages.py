"""Benchmark: the portal's list and ticket pages against the REST API endpoints for the same data.

With 100k tickets in PostgreSQL (the `virtengine_bench` database shared with bench/api_list.py, seeded once)
it signs a provider member in (a portal session, the same party for pages and API), gives one ticket a
thread of `--comments` replies and internal notes, starts one app server (uvicorn, as in production), and
times each request one at a time, interleaving the four endpoints over several rounds:

  * list page    GET /tickets/                  25 rows, filters, badges, SLA labels
  * list API     GET /api/v1/tickets?limit=25   the same 25 tickets as JSON
  * ticket page  GET /tickets/SUP-…/            header, thread, actions, timeline, files
  * ticket API   GET /api/v1/tickets/{id}       the same ticket with comments, attachments and history

Printed: p50/p99 of each (the client waits one request at a time, so the time is the server's plus
loopback), and the ratios page/API at the median. Target: each page within 1.5x of its API endpoint.

    .venv/bin/python bench/portal_pages.py [--tickets 100000] [--requests 200] [--rounds 4] [--comments 30] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.common import ensure_database, parse_args, seed_tickets  # noqa: E402 - after sys.path is set

TARGET = 1.5


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def prepare(provider_id: int, comments: int) -> tuple[str, str, str]:
    """A provider member's session cookie, and a ticket of that provider with a thread: (cookie, number, id)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from providers.models import ProviderAccount, ProviderMembership
    from providers.selectors import party_for_user, provider_party
    from tickets import services
    from tickets.models import Ticket

    provider = ProviderAccount.objects.get(pk=provider_id)
    user, _ = get_user_model().objects.get_or_create(username="portal-bench-member")
    ProviderMembership.objects.get_or_create(user=user, defaults={"provider": provider})
    member = party_for_user(user)
    ticket = Ticket.objects.filter(provider=provider, subject="Portal bench ticket").first()
    if ticket is None:
        deployment = provider.deployments.first()
        customer = services.ticket_create(
            actor=provider_party(provider),
            deployment_id=deployment.lease_id,
            subject="Portal bench ticket",
            description="A ticket with a long thread, for the portal bench.",
            category="technical",
            priority="high",
        )
        ticket = Ticket.objects.get(pk=customer.pk)
    existing = ticket.comments.count()
    for number in range(existing, comments):
        services.comment_add(
            actor=member,
            ticket_id=ticket.id,
            body=f"Reply {number}: we looked at https://status.example.test/{number} and the pods.",
            is_internal=number % 3 == 0,
        )
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value, ticket.display_number, str(ticket.id)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="per endpoint, over all rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--comments", type=int, default=30)
    args = parse_args(parser, {"tickets": 200, "requests": 5, "rounds": 1, "comments": 3})

    import django

    django.setup()
    ensure_database()
    provider_id, _, _ = seed_tickets(args.tickets)
    cookie, number, ticket_id = prepare(provider_id, args.comments)

    import requests

    from tests.system.processes import AppServer

    server = AppServer(env={"DJANGO_SETTINGS_MODULE": "bench.settings"})
    endpoints = {
        "list page": "/tickets/",
        "list API": "/api/v1/tickets?limit=25",
        "ticket page": f"/tickets/{number}/",
        "ticket API": f"/api/v1/tickets/{ticket_id}",
    }
    timings: dict[str, list[float]] = {name: [] for name in endpoints}
    try:
        session = requests.Session()
        session.cookies.set("sessionid", cookie)
        for path in endpoints.values():  # warm up: connections, caches, query plans
            for _ in range(5):
                assert session.get(f"{server.http}{path}", timeout=30).status_code == 200, path
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, path in endpoints.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    response = session.get(f"{server.http}{path}", timeout=30)
                    timings[name].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
    finally:
        server.stop()

    from tickets.models import Ticket

    print(
        f"\n{Ticket.objects.count()} tickets in PostgreSQL; one uvicorn process; {per_round * args.rounds} requests "
        f"per endpoint, one at a time, {args.rounds} interleaved rounds; ticket {number} has {args.comments} comments"
    )
    print(f"{'endpoint':<12} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in timings.items():
        print(f"{name:<12} {statistics.median(values):>8.2f} {percentile(values, 0.99):>8.2f}")
    ok = True
    for page, api in (("list page", "list API"), ("ticket page", "ticket API")):
        ratio = statistics.median(timings[page]) / statistics.median(timings[api])
        print(f"{page} / {api} = {ratio:.2f} at the median (target <= {TARGET})")
        ok = ok and (ratio <= TARGET or args.smoke)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
