"""Benchmark: the support console's queue and work page against the REST API endpoints for the same data
(issue 28), over 1,000,000 tickets.

Targets: the queue and the work page each within 1.5x of their API endpoint at the median, and the queue
under 100 ms at the median.

On a database of its own (`virtengine_consolebench`, kept between runs: seeding is the slow part; use
another DATABASE_NAME for another size), PostgreSQL itself inserts (INSERT … SELECT generate_series) the
tickets of 4 providers on 400 deployments, one every 30 s up to now, each with the default SLA policy of
its priority and targets consistent with its status: tickets older than 30 days closed (targets met, a
twentieth of first responses late), the last 30 days a mix of the five statuses (open ones with warnings
and breaches recorded as the sweep would have, waiting ones with the resolution clock paused). Of the
last 30 days, `--escalated` tickets spread evenly are escalated to support (`assignee_kind` support,
`escalated_at` set; a third of them assigned to one of 4 agents): the queue's rows (those not closed).
One more ticket, made through the services, is the work page's: opened by its customer, `--comments`
replies between customer and provider, an internal note and an attached file from support, escalated,
taken by the agent signed in, moved to in progress.

A support agent (`support_staff_create`) is signed in on Django's test `Client` (in this process, no
server, so the times are the view's, middleware included), and each round times, one request at a time,
interleaved (after `--warmup` untimed rounds):

  * queue page   GET /admin/                                       the escalation queue, 200 rows at most
  * queue API    GET /api/v1/tickets?ordering=sla_due&limit=200    the API has no filter for the support
                                                                   queue (assignee): the closest is the
                                                                   same number of rows in SLA-due order
  * work page    GET /admin/tickets/ticket/<id>/change/             header, thread, timeline, actions
  * ticket API   GET /api/v1/tickets/<id>                           the ticket with comments, attachments
                                                                   and history (the same facts)
  * events API   GET /api/v1/tickets/<id>/events                    the timeline as the API gives it

Printed: the dataset, the load average before and after, p50/p99 per endpoint, the ratios page/API at the
median (the work page against the detail, and against detail + events as a second view), the queries each
request makes (an untimed pass), and EXPLAIN ANALYZE of the queue's ticket query and the API list's. Exit
status 1 when a target is missed (not in `--smoke`).

    .venv/bin/python bench/console_pages.py [--tickets 1000000] [--escalated 300] [--rounds 50] [--warmup 5] [--comments 20] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_consolebench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("VE_CHANNELS_PREFIX", "ves-consolebench")
# The work ticket's attached file goes here, not into the checkout's media/.
os.environ.setdefault("DJANGO_MEDIA_ROOT", "/tmp/ves-consolebench-media")

from bench.common import bench_environment, ensure_database, parse_args  # noqa: E402 - after sys.path

BROKER_DB = 13
PROVIDERS = 4
DEPLOYMENTS = 400
AGENTS = 4
SEED_CHUNK = 100_000
STEP_SECONDS = 30  # one ticket every 30 s: a million span about a year
RECENT_DAYS = 30  # older tickets are closed
LABEL = "consolebench"  # created_by_label of the seeded tickets
WORK_SUBJECT = "Console bench: the node restarts every few minutes"
RATIO_TARGET = 1.5
QUEUE_TARGET_MS = 100.0
STATUSES = "ARRAY['open', 'in_progress', 'waiting_customer', 'resolved', 'closed']"
PRIORITIES = "ARRAY['low', 'medium', 'high', 'critical']"
CATEGORIES = "ARRAY['technical', 'billing', 'general', 'security']"


def loadavg() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def seed(total: int, escalated: int) -> list[int]:
    """The providers, deployments, agents and `total` tickets (kept between runs); the agents' user ids."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from providers.models import Deployment, ProviderAccount
    from providers.services import support_staff_create
    from tests.factories import make_address
    from tickets.models import Ticket
    from tickets.services import sla_policies_ensure

    sla_policies_ensure()
    agents = [support_staff_create(username=f"{LABEL}-agent-{n}").pk for n in range(AGENTS)]
    providers = list(ProviderAccount.objects.filter(name__startswith="Console bench ").order_by("pk"))
    while len(providers) < PROVIDERS:
        providers.append(
            ProviderAccount.objects.create(
                address=make_address(), name=f"Console bench provider {len(providers)}"
            )
        )
    seeded = Ticket.objects.filter(created_by_label=LABEL)
    have = seeded.count()
    if have > total:
        raise SystemExit(
            f"{os.environ['DATABASE_NAME']} holds {have:,} tickets, more than --tickets {total:,}: "
            "use another DATABASE_NAME for another size"
        )
    started = time.monotonic()
    ids = ",".join(str(p.pk) for p in providers)
    recent = min(total, RECENT_DAYS * 86400 // STEP_SECONDS)
    every = max(1, recent // max(1, escalated))
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        if not Deployment.objects.filter(name__startswith="cb-").exists():
            cursor.execute(
                f"""
                INSERT INTO providers_deployment (lease_id, owner_address, dseq, gseq, oseq, provider_id, name,
                                                  created_at)
                SELECT o.owner || '/' || k || '/1/1', o.owner, k, 1, 1, (ARRAY[{ids}])[1 + mod(k, {PROVIDERS})],
                       'cb-' || k, now() - interval '400 days'
                FROM generate_series(1, {DEPLOYMENTS}) AS k,
                     LATERAL (SELECT 've1' || substr(md5('cbd' || k), 1, 38) AS owner) AS o
                """
            )
        # The rows are consistent by construction: no foreign-key trigger per row.
        cursor.execute("SET session_replication_role = replica")
        for first in range(have + 1, total + 1, SEED_CHUNK):
            last = min(first + SEED_CHUNK - 1, total)
            cursor.execute(
                _tickets_sql(ids=agents),
                {"first": first, "last": last, "total": total, "recent": recent, "every": every},
            )
            print(f"  seeded tickets {first:,}–{last:,} ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("RESET session_replication_role")
        if have < total:
            cursor.execute("VACUUM ANALYZE providers_deployment, tickets_ticket")
            print(f"seeded {total - have:,} tickets in {time.monotonic() - started:.1f} s", flush=True)
    return agents


def _tickets_sql(*, ids: list[int]) -> str:
    """Tickets g = first … last of `total`, one every STEP_SECONDS ending now; the last `recent` of them
    in a mix of statuses, every `every`-th of those escalated to support."""
    agents = ",".join(str(pk) for pk in ids)
    return f"""
        WITH d AS (
            SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, provider_id, owner_address
            FROM providers_deployment WHERE name LIKE 'cb-%%'
        ),
        p AS (
            SELECT priority, id, first_response_minutes * interval '1 minute' AS fr,
                   resolution_minutes * interval '1 minute' AS res
            FROM tickets_slapolicy
        ),
        base AS (
            SELECT g, hashint4(g::int) & 2147483647 AS h,
                   now() - (%(total)s - g) * interval '{STEP_SECONDS} seconds' AS created,
                   g > %(total)s - %(recent)s AS recent,
                   g > %(total)s - %(recent)s AND mod(g, %(every)s) = 0 AS escalated
            FROM generate_series(%(first)s, %(last)s) AS g
        ),
        s AS (
            SELECT base.*, p.id AS policy_id, p.fr, p.res,
                   CASE WHEN recent THEN ({STATUSES})[1 + mod(h, 5)] ELSE 'closed' END AS status,
                   p.priority, mod(h / 20, 4) AS category, mod(h / 80, 20) = 0 AS late,
                   mod(h / 1600, 3) = 0 AS assigned
            FROM base JOIN p ON p.priority = ({PRIORITIES})[1 + mod(h / 5, 4)]
        ),
        t AS (
            SELECT s.*,
                   CASE WHEN status <> 'open' THEN created + fr * CASE WHEN late THEN 1.5 ELSE 0.5 END END
                       AS first_response_at,
                   CASE WHEN status IN ('resolved', 'closed') THEN created + res * 0.6 END AS resolved_at,
                   CASE WHEN status = 'closed' THEN least(now(), created + res * 0.6 + interval '1 day') END
                       AS closed_at,
                   CASE WHEN status = 'waiting_customer' THEN created + fr * 0.5 END AS paused_since,
                   created + fr AS fr_due, created + fr * 0.8 AS fr_warn,
                   created + res AS res_due, created + res * 0.8 AS res_warn
            FROM s
        )
        INSERT INTO tickets_ticket (
            id, deployment_id, provider_id, customer_address, subject, description, category, priority, status,
            created_by_kind, created_by_address, created_by_label, assignee_kind, assigned_to_id, escalated_at,
            created_at, updated_at, public_updated_at, last_activity_at, status_changed_at, first_response_at,
            resolved_at, closed_at, metadata, last_seq, last_public_seq, sla_policy_id,
            sla_first_response_due, sla_first_response_warn_at, sla_first_response_warned_at,
            sla_first_response_breached_at, sla_first_response_met,
            sla_resolution_due, sla_resolution_warn_at, sla_resolution_warned_at, sla_resolution_breached_at,
            sla_resolution_met, sla_paused_seconds, sla_paused_since, sla_next_due
        )
        SELECT md5('cbt' || g)::uuid, d.id, d.provider_id, d.owner_address,
            'Bench ticket ' || g || ': ' || (ARRAY['deployment will not start', 'invoice does not match the lease',
                'pods restart under load', 'cannot reach the service over TLS'])[1 + category],
            'Synthetic ticket for the console benchmark. The lease was created and the service does not answer '
                || 'as expected; logs attached on request.',
            ({CATEGORIES})[1 + category], priority, status,
            'customer', d.owner_address, '{LABEL}',
            CASE WHEN escalated THEN 'support' ELSE 'provider' END,
            CASE WHEN escalated AND assigned THEN (ARRAY[{agents}])[1 + mod(h / 4800, {len(ids)})] END,
            CASE WHEN escalated THEN least(now(), created + interval '30 minutes') END,
            created, coalesce(closed_at, resolved_at, first_response_at, created),
            coalesce(closed_at, resolved_at, first_response_at, created),
            coalesce(closed_at, resolved_at, first_response_at, created),
            coalesce(closed_at, resolved_at, paused_since, first_response_at, created),
            first_response_at, resolved_at, closed_at, '{{}}'::jsonb, 0, 0, policy_id,
            fr_due, fr_warn,
            CASE WHEN fr_warn <= coalesce(first_response_at, now()) THEN fr_warn END,
            CASE WHEN fr_due <= coalesce(first_response_at, now()) THEN fr_due END,
            CASE WHEN first_response_at IS NOT NULL THEN NOT late END,
            res_due, res_warn,
            CASE WHEN res_warn <= coalesce(resolved_at, paused_since, now()) THEN res_warn END,
            CASE WHEN res_due <= coalesce(resolved_at, paused_since, now()) THEN res_due END,
            CASE WHEN resolved_at IS NOT NULL THEN true END,
            0, paused_since,
            least(CASE WHEN status = 'open' THEN fr_due END,
                  CASE WHEN status IN ('open', 'in_progress') THEN res_due END)
        FROM t JOIN d ON d.k = mod(g, {DEPLOYMENTS})
    """


def work_ticket(agent, comments: int) -> str:
    """The work page's ticket (made once, through the services): its id."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from providers.models import CustomerIdentity, Deployment
    from providers.selectors import party_for_user, provider_party
    from providers.services import user_ensure
    from tickets import services
    from tickets.models import Ticket

    # The last step below moves it to in progress: a ticket left half-made by a stopped run is not used.
    ticket = Ticket.objects.filter(subject=WORK_SUBJECT, status="in_progress").order_by("-number").first()
    if ticket is not None and ticket.comments.count() == comments + 1:
        return str(ticket.id)
    deployment = Deployment.objects.filter(name="cb-1").select_related("provider").get()
    identity, _ = CustomerIdentity.objects.get_or_create(
        address=deployment.owner_address, defaults={"user": user_ensure(username=f"{LABEL}-customer")}
    )
    owner = party_for_user(identity.user)
    provider = provider_party(deployment.provider)
    support = party_for_user(agent)
    ticket = services.ticket_create(
        actor=owner,
        deployment_id=deployment.lease_id,
        subject=WORK_SUBJECT,
        description="Since this morning the node restarts every few minutes; the service is down in between. "
        * 3,
        category="technical",
        priority="high",
    )
    for n in range(comments):
        services.comment_add(
            actor=owner if n % 2 == 0 else provider,
            ticket_id=ticket.id,
            body=f"Reply {n}: it restarted again at 10:{n:02d}; see https://status.example.test/{n} and the pod "
            "events. " * 2,
        )
    services.ticket_escalate(actor=owner, ticket_id=ticket.id, reason="No fix from the provider after a day")
    services.ticket_assign(
        actor=support, ticket_id=ticket.id, assignee_kind="support", assignee_user_id=agent.pk, reason="Taken"
    )
    log = SimpleUploadedFile("pod.log", b"OOMKilled\nBack-off restarting failed container\n" * 20)
    attachment = services.attachment_upload(actor=support, upload=log)
    services.comment_add(
        actor=support,
        ticket_id=ticket.id,
        body="Internal: the node's memory limit is below the manifest's request; asked the provider.",
        is_internal=True,
        attachment_ids=[str(attachment.id)],
    )
    services.ticket_transition(actor=support, ticket_id=ticket.id, status="in_progress")
    return str(ticket.id)


def timed_get(client, path: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return elapsed, response


def queries_of(client, path: str) -> tuple[int, float, str, float]:
    """(queries, their total ms, the slowest one's SQL, its ms) of one request (untimed)."""
    from django.db import connection

    seen: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seen.append(((time.perf_counter() - started) * 1000, sql))

    with connection.execute_wrapper(timed):
        client.get(path)
    slowest, sql = max(seen)
    return len(seen), sum(ms for ms, _ in seen), sql, slowest


def gist(sql: str) -> str:
    """A query's main table and WHERE clause (the last FROM and WHERE: subqueries in the columns come first)."""
    flat = " ".join(sql.split())
    table = flat[flat.rfind(" FROM ") :].split()[1]
    where = flat.rfind(" WHERE ")
    return f"{table} …{flat[where:][:140] if where > 0 else ''}"


def explain(sql: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return [row[0] for row in cursor.fetchall()]


def captured_sql(client, path: str, pattern: str) -> str:
    """The first query of a request whose SQL matches `pattern`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    return next(q["sql"] for q in captured.captured_queries if re.search(pattern, q["sql"]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--escalated", type=int, default=300, help="escalated tickets among the last 30 days")
    parser.add_argument("--rounds", type=int, default=50, help="timed requests per endpoint, interleaved")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--comments", type=int, default=20, help="replies on the work page's ticket")
    args = parse_args(parser, {"tickets": 3000, "escalated": 30, "rounds": 3, "warmup": 1, "comments": 3})

    bench_environment(
        database=os.environ["DATABASE_NAME"], broker_db=BROKER_DB, cache_prefix="ves-consolebench"
    )
    import django

    django.setup()
    ensure_database()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tickets.models import Ticket
    from tickets.realtime import publisher
    from tickets.selectors.console import QUEUE_LIMIT

    agent_ids = seed(args.tickets, args.escalated)
    agent = get_user_model().objects.get(pk=agent_ids[0])
    ticket_id = work_ticket(agent, args.comments)
    publisher().flush(timeout=30)
    client = Client()
    client.force_login(agent)

    total = Ticket.objects.count()
    in_queue = Ticket.objects.filter(assignee_kind="support").exclude(status="closed").count()
    # The API has no filter for the support queue: the same number of rows, in SLA-due order.
    endpoints = {
        "queue page": "/admin/",
        "queue API": f"/api/v1/tickets?ordering=sla_due&limit={max(1, min(in_queue, QUEUE_LIMIT))}",
        "work page": f"/admin/tickets/ticket/{ticket_id}/change/",
        "ticket API": f"/api/v1/tickets/{ticket_id}",
        "events API": f"/api/v1/tickets/{ticket_id}/events",
    }
    work = Ticket.objects.get(pk=ticket_id)
    print(
        f"\n{total:,} tickets in PostgreSQL ({os.environ['DATABASE_NAME']}); "
        f"{Ticket.objects.filter(assignee_kind='support').count():,} escalated to support, {in_queue:,} not closed "
        f"(the queue shows {min(in_queue, QUEUE_LIMIT)}); work ticket {work.display_number} with "
        f"{work.comments.count()} comments, {work.attachments.count()} attachment, {work.last_seq} events"
    )
    print(f"before: {loadavg()}", flush=True)

    for _ in range(args.warmup):
        for path in endpoints.values():
            timed_get(client, path)
    queue_rows = timed_get(client, endpoints["queue page"])[1].content.count(b'class="queue-row ')
    api_rows = len(timed_get(client, endpoints["queue API"])[1].json())
    timings: dict[str, list[float]] = {name: [] for name in endpoints}
    for _ in range(args.rounds):
        for name, path in endpoints.items():
            timings[name].append(timed_get(client, path)[0])
    print(f"after:  {loadavg()}")
    print(
        f"\nDjango test Client in one process, signed in as a support agent; {args.rounds} interleaved rounds "
        f"after {args.warmup} warm-up; queue page {queue_rows} rows, queue API {api_rows} rows"
    )
    print(f"{'endpoint':<12} {'p50 ms':>8} {'p99 ms':>8}  path")
    for name, values in timings.items():
        print(
            f"{name:<12} {statistics.median(values):>8.2f} {percentile(values, 0.99):>8.2f}  {endpoints[name]}"
        )
    median = {name: statistics.median(values) for name, values in timings.items()}
    ok = True
    for page, api, value in (
        ("queue page", "queue API", median["queue API"]),
        ("work page", "ticket API", median["ticket API"]),
        ("work page", "ticket API + events API", median["ticket API"] + median["events API"]),
    ):
        ratio = median[page] / value
        print(f"{page} / {api} = {ratio:.2f} at the median (target <= {RATIO_TARGET})")
        if api != "ticket API + events API":  # the second view of the work page is for information
            ok = ok and ratio <= RATIO_TARGET
    print(f"queue page median {median['queue page']:.1f} ms (target < {QUEUE_TARGET_MS:.0f} ms)")
    ok = ok and median["queue page"] < QUEUE_TARGET_MS

    print("\nqueries per request (one untimed request each; times as the cursor saw them)")
    for name, path in endpoints.items():
        count, spent, sql, slowest = queries_of(client, path)
        print(
            f"  {name:<12} {count:>3} queries, {spent:7.2f} ms in the database; slowest {slowest:.2f} ms: {gist(sql)}"
        )
    print("\nthe queue's ticket query (escalation_queue):")
    for line in explain(captured_sql(client, endpoints["queue page"], r'"assignee_kind" = ')):
        print(f"    {line}")
    print("\nthe queue API's ticket query (ticket_list, ordering=sla_due):")
    for line in explain(
        captured_sql(client, endpoints["queue API"], r'"tickets_businesscalendar".* ORDER BY')
    ):
        print(f"    {line}")
    if args.smoke:
        print("\n(smoke size: the targets are printed, not enforced)")
        return 0
    print("\n" + ("all targets met" if ok else "a target was missed"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
