"""Benchmark: ticket search (issue 27) over 1,000,000 tickets and 5,000,000 comments (10 % internal notes).

Targets: support and a provider with 100k tickets p50 < 50 ms, p99 < 300 ms; a customer p99 < 20 ms; the
search writer adds under 15 % to `comment_add` and `ticket_create`; and the index's size is reported.

On a database of its own (`virtengine_searchbench`, kept between runs: seeding is the slow part; use
another DATABASE_NAME for another size), PostgreSQL itself inserts (INSERT … SELECT generate_series):
- a vocabulary of 50,000 words, the word of rank r drawn with probability ~1/r (`floor(exp(random() *
  ln(50000)))`: a long tail), ranks 1–30 real support words ("error", "deployment", "connection", …), the
  rest synthetic words of three syllables;
- 10 providers, one holding 10 % of the tickets (100k of 1M); a deployment per customer, ~4 tickets per
  customer, and one customer with 50 tickets;
- tickets with a subject of 3–9 words and a description of 15–65; comments of 6–34 words spread at random
  over the tickets (~5 each), every tenth an internal note (which also holds the word `escalationnote`:
  the oracle check below).
The search documents are then built by `search_index_rebuild` (the app's SQL, in its batches; timed).

Each search is what the API does for one page (`TicketListCreateView.get`): `ticket_page(party,
TicketFilters(q=…), limit=50)` and `rows_with_snippets` (serialisation left out), timed per
(party, term class, ordering `relevance` / `-updated_at`), the queries of a class taken in turn, after each
query's first run (printed apart as "first": it may read from disk what later runs find in memory); a case
stops early after `--case-seconds` (at least 3 rounds). The list query's plan is
taken once per case with EXPLAIN ANALYZE and classed: `GIN` (a Bitmap Index Scan on ticket_search_*),
`seq scan` (a Seq Scan on the ticket or search table), or the other index it walks instead.

The write cost: `comment_add` (support, on tickets with 5 comments) and `ticket_create` (a customer), with
the search writer registered and unregistered in interleaved rounds: medians, means and the ratio. 200
rounds per arm by default: the writer adds about 1.5 ms to a write of about 12 ms that itself varies by 2 ms.
Four runs minutes apart gave `ticket_create` +1.8 to +17.8 % with 30 rounds, +6.2 to +12.1 % with 100; with
the phrase pairs, seven runs of 100 gave +9.9 to +17.8 %, four of 200 +8.9 to +11.9 %.
Each new ticket gets a text of its own, drawn as the seed's, and the tickets these rounds create are deleted
afterwards (`remove_tickets`), so that runs do not pile copies at the head of every walk.

    .venv/bin/python bench/search.py [--tickets 1000000] [--comments 5000000] [--rounds 20] [--rebuild] [--smoke]
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
os.environ.setdefault("DATABASE_NAME", "virtengine_searchbench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("VE_CHANNELS_PREFIX", "ves-searchbench")

from bench.common import bench_environment, ensure_database, parse_args  # noqa: E402 - after sys.path

BROKER_DB = 12
VOCABULARY = 50_000
PROVIDERS = 10
TICKETS_PER_CUSTOMER = 4
LOYAL_CUSTOMER_TICKETS = 50
SEED_CHUNK = 50_000
ORACLE = "escalationnote"  # in every internal note, and nowhere else
REAL_WORDS = [
    "error",
    "deployment",
    "node",
    "connection",
    "timeout",
    "container",
    "restart",
    "memory",
    "disk",
    "network",
    "provider",
    "lease",
    "billing",
    "payment",
    "invoice",
    "cluster",
    "gpu",
    "storage",
    "logs",
    "crash",
    "latency",
    "certificate",
    "dns",
    "ssh",
    "database",
    "backup",
    "upgrade",
    "kernel",
    "firewall",
    "bandwidth",
]
BASE = "timestamptz '2026-01-01 00:00+00'"
TICKET_STEP = "interval '20 seconds'"

# The word of rank r: a real one for the first ranks, else three syllables (14 consonants x 5 vowels) of
# r + 70² in base 70, least significant first, so that words sharing a prefix spread over the ranks.
FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION bench_search_syllable(d int) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT substr('bdfgklmnprstvz', 1 + d / 5, 1) || substr('aeiou', 1 + d % 5, 1) $$;
CREATE OR REPLACE FUNCTION bench_search_word(r int) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN r <= {len(REAL_WORDS)}
    THEN (ARRAY[{", ".join(f"'{w}'" for w in REAL_WORDS)}])[r]
    ELSE bench_search_syllable((r + 4900) % 70) || bench_search_syllable(((r + 4900) / 70) % 70)
         || bench_search_syllable((r + 4900) / 4900) END $$;
CREATE OR REPLACE FUNCTION bench_search_text(n int) RETURNS text LANGUAGE sql VOLATILE
AS $$ SELECT string_agg(bench_search_word(floor(exp(random() * ln({VOCABULARY})))::int), ' ')
      FROM generate_series(1, n) $$;
"""


def loadavg() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def seed(tickets: int, comments: int, big_tickets: int) -> dict:
    """The dataset (kept between runs); returns the providers and the customers the bench acts as."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from providers.models import Deployment, ProviderAccount
    from tests.factories import make_address
    from tickets.models import Comment, Ticket

    with connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_search_vocab (r int PRIMARY KEY, w text NOT NULL);"
            f"INSERT INTO bench_search_vocab SELECT r, bench_search_word(r) FROM generate_series(1, {VOCABULARY}) r "
            "ON CONFLICT DO NOTHING; ANALYZE bench_search_vocab"
        )
    providers = list(ProviderAccount.objects.filter(name__startswith="Search bench ").order_by("pk"))
    while len(providers) < PROVIDERS:
        providers.append(
            ProviderAccount.objects.create(
                address=make_address(), name=f"Search bench provider {len(providers)}"
            )
        )
    ids = ",".join(str(p.pk) for p in providers)
    deployments = max(1, tickets // TICKETS_PER_CUSTOMER)
    share = max(1, round(tickets / big_tickets))  # one deployment in `share` is the big provider's
    # Words drawn ~1/rank (log-uniform over the ranks), `n` per row of `source` (with a column g), joined to
    # the vocabulary by a hash join: one row per (g, word) — a per-row function call is 20x slower.
    words = f"""
        SELECT drawn.*, v.w FROM (
            SELECT s.*, p, floor(exp(random() * ln({VOCABULARY})))::int AS r
            FROM ({{source}}) AS s CROSS JOIN LATERAL generate_series(1, s.n) AS p
        ) AS drawn JOIN bench_search_vocab v USING (r)
    """
    started = time.monotonic()
    seeded_tickets = Ticket.objects.filter(created_by_label="bench")
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # The rows are consistent by construction: no foreign-key trigger per row.
        cursor.execute("SET session_replication_role = replica")
        have = Deployment.objects.filter(name__startswith="sb-").count()
        if have not in (0, deployments + 1):
            raise SystemExit(
                f"{os.environ['DATABASE_NAME']} was seeded at another size: use another DATABASE_NAME"
            )
        if not have:
            cursor.execute(
                f"""
                INSERT INTO providers_deployment (lease_id, owner_address, dseq, gseq, oseq, provider_id, name,
                                                  created_at)
                SELECT o.owner || '/' || (k + 1) || '/1/1', o.owner, k + 1, 1, 1,
                       (ARRAY[{ids}])[CASE WHEN k = %(n)s THEN 3 WHEN mod(k, {share}) = 0 THEN 1
                                       ELSE 2 + mod(k, {PROVIDERS - 1}) END],
                       'sb-' || bench_search_word(1 + mod(k, {VOCABULARY})), {BASE}
                FROM generate_series(0, %(n)s) AS k,
                     LATERAL (SELECT 've1' || substr(md5('sbc' || k), 1, 38) AS owner) AS o
                """,
                {"n": deployments},
            )
            print(f"  seeded {deployments + 1:,} deployments", flush=True)
        have = seeded_tickets.count()
        chunk = SEED_CHUNK
        for first in range(have + 1, tickets + 1, chunk):
            last = min(first + chunk - 1, tickets)
            # Ticket g: the loyal customer's (deployment n) for g <= 50, else deployment g mod n. A subject
            # of 3-9 words, a description of 15-65.
            source = (
                "SELECT g, 3 + (random() * 6)::int AS sn, 18 + (random() * 56)::int AS n "
                "FROM generate_series(%(first)s, %(last)s) AS g"
            )
            cursor.execute(
                f"""
                WITH d AS (SELECT id, dseq, provider_id, owner_address FROM providers_deployment
                           WHERE name LIKE 'sb-%%'),
                texts AS (
                    SELECT g, initcap(string_agg(w, ' ') FILTER (WHERE p <= sn)) AS subject,
                           string_agg(w, ' ') FILTER (WHERE p > sn) AS description
                    FROM ({words.format(source=source)}) AS x GROUP BY g
                )
                INSERT INTO tickets_ticket (
                    id, deployment_id, provider_id, customer_address, subject, description, category, priority,
                    status, created_by_kind, created_by_address, created_by_label, assignee_kind, created_at,
                    updated_at, public_updated_at, last_activity_at, status_changed_at, sla_paused_seconds,
                    metadata, last_seq, last_public_seq)
                SELECT md5('sbt' || g)::uuid, d.id, d.provider_id, d.owner_address,
                    coalesce(subject, 'Help'), coalesce(description, 'help'),
                    (ARRAY['technical', 'billing', 'general', 'security'])[1 + mod(g, 4)],
                    (ARRAY['low', 'medium', 'high', 'critical'])[1 + mod(g, 4)],
                    (ARRAY['open', 'in_progress', 'waiting_customer', 'resolved', 'closed'])[1 + mod(g, 5)],
                    'customer', d.owner_address, 'bench', 'provider',
                    {BASE} + g * {TICKET_STEP}, {BASE} + g * {TICKET_STEP} + interval '2 days',
                    {BASE} + g * {TICKET_STEP} + interval '2 days', {BASE} + g * {TICKET_STEP} + interval '2 days',
                    {BASE} + g * {TICKET_STEP}, 0, '{{}}'::jsonb, 0, 0
                FROM texts
                JOIN d ON d.dseq = CASE WHEN g <= {LOYAL_CUSTOMER_TICKETS} THEN %(n)s + 1 ELSE 1 + mod(g, %(n)s) END
                """,
                {"first": first, "last": last, "n": deployments},
            )
            print(f"  seeded tickets {first:,}–{last:,} ({time.monotonic() - started:.0f} s)", flush=True)
        have = Comment.objects.filter(author_label="bench").count()
        chunk = SEED_CHUNK * 4
        for first in range(have + 1, comments + 1, chunk):
            last = min(first + chunk - 1, comments)
            # Comment g: on a ticket drawn at random (~5 per ticket), 6-34 words, every tenth internal.
            source = (
                "SELECT g, 1 + floor(random() * %(tickets)s)::int AS t, mod(g, 10) = 0 AS internal, "
                "6 + (random() * 28)::int AS n FROM generate_series(%(first)s, %(last)s) AS g"
            )
            cursor.execute(
                f"""
                INSERT INTO tickets_comment (id, ticket_id, author_kind, author_address, author_label, body,
                                             is_internal, created_at)
                SELECT md5('sbm' || g)::uuid, md5('sbt' || t)::uuid,
                       CASE WHEN internal THEN 'provider' WHEN mod(g, 2) = 0 THEN 'customer' ELSE 'provider' END,
                       '', 'bench', body || CASE WHEN internal THEN ' {ORACLE}' ELSE '' END,
                       internal, {BASE} + t * {TICKET_STEP} + random() * interval '2 days'
                FROM (SELECT g, t, internal, string_agg(w, ' ') AS body
                      FROM ({words.format(source=source)}) AS x GROUP BY g, t, internal) AS c
                """,
                {"first": first, "last": last, "tickets": tickets},
            )
            print(f"  seeded comments {first:,}–{last:,} ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("RESET session_replication_role")
        if time.monotonic() - started > 1:
            cursor.execute("VACUUM ANALYZE providers_deployment, tickets_ticket, tickets_comment")
            print(f"seeded in {time.monotonic() - started:.1f} s", flush=True)
    loyal = Deployment.objects.get(name__startswith="sb-", dseq=deployments + 1)
    typical = Deployment.objects.get(name__startswith="sb-", dseq=2)
    return {"providers": providers, "loyal": loyal, "typical": typical}


def build_index(rebuild: bool, batch_size: int) -> None:
    from django.db import connection

    from tickets.models import Ticket, TicketSearch
    from tickets.services.search_index import search_index_rebuild

    missing = Ticket.objects.filter(search__isnull=True).count()
    if not (rebuild or missing):
        print("search index: already built (kept database; --rebuild to time the build again)")
        return
    total = Ticket.objects.count() if rebuild else missing
    started = time.monotonic()
    shown = [0.0]

    def progress(p) -> None:
        if time.monotonic() - shown[0] > 30 or p.done == p.total:
            shown[0] = time.monotonic()
            print(f"  built {p.done:,} of {p.total:,} ({time.monotonic() - started:.0f} s)", flush=True)

    done = search_index_rebuild(only_missing=not rebuild, batch_size=batch_size, progress=progress)
    seconds = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tickets_ticketsearch")
    print(
        f"search index build: {done:,} tickets in {seconds:.1f} s = {done / seconds:,.0f} tickets/s "
        f"(search_index_rebuild, batches of {batch_size}; {total:,} to build; {loadavg()})"
    )
    assert done == total, (done, total)
    assert TicketSearch.objects.count() >= total


def index_sizes() -> list[str]:
    from django.db import connection

    lines = []
    with connection.cursor() as cursor:
        for name in (
            "tickets_ticketsearch",
            "ticket_search_staff_idx",
            "tickets_ticket",
            "tickets_comment",
        ):
            cursor.execute(
                "SELECT pg_size_pretty(pg_relation_size(%s::regclass)), "
                "pg_size_pretty(pg_total_relation_size(%s::regclass))",
                [name, name],
            )
            relation, total = cursor.fetchone()
            lines.append(f"  {name:<26} relation {relation:>9}, total (with TOAST and indexes) {total:>9}")
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size(reltoastrelid)), "
            "(SELECT count(*) FROM tickets_ticketsearch) FROM pg_class WHERE relname = 'tickets_ticketsearch'"
        )
        toast, rows = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size('tickets_ticketsearch')")
        (total,) = cursor.fetchone()
        lines.append(
            f"  tickets_ticketsearch's TOAST (the documents) {toast}; {total / max(rows, 1):,.0f} bytes per ticket "
            "in all"
        )
    return lines


def term_classes() -> dict[str, list[str]]:
    """The queries of each class, as people type them (the last word is also read as a prefix)."""
    from django.db import connection

    def words(*ranks: int) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT bench_search_word(r) FROM unnest(%s::int[]) AS r", [list(ranks)])
            return [row[0] for row in cursor.fetchall()]

    rare = words(20011, 27011, 33013, 41017)
    medium = words(101, 151, 211, 307)
    m1, m2, m3, m4 = words(120, 130, 140, 150)
    return {
        "rare": rare,  # ~0.1 % of tickets each
        "medium": medium,  # ~5–10 %
        "common": ["error", "deployment", "network", "memory"],  # nearly every ticket
        "two words": [
            f"error {medium[0]}",
            f"{rare[0]} memory",
            f"{medium[1]} {medium[2]}",
            f"connection {rare[1]}",
        ],
        "phrase": ['"connection timeout"', '"container restart"', f'"{m1} {m2}"', f'"{m3} {m4}"'],
        "prefix": ["deploym", "conn", "tim", medium[3][:3]],
    }


def page(party, q: str, ordering: str) -> tuple[float, float, list]:
    """One API page of a search: (list seconds, snippet seconds, rows)."""
    from django.utils import timezone

    from tickets.api.pagination import ticket_page
    from tickets.selectors import TicketFilters, rows_with_snippets

    started = time.perf_counter()
    result = ticket_page(
        party, TicketFilters(q=q), ordering=ordering, limit=50, cursor=None, now=timezone.now()
    )
    listed = time.perf_counter()
    rows = rows_with_snippets(party, result.items, q)
    return listed - started, time.perf_counter() - listed, rows


SCAN = re.compile(
    r"((?:Parallel )?(?:Bitmap Index Scan|Bitmap Heap Scan|Index Only Scan|Index Scan|Seq Scan)"
    r"(?: Backward)?) (?:using|on) (\S+)(?: on (\S+))?.*?(?:actual time=\S+ rows=(\d+))?"
)


def plan_of(party, q: str, ordering: str) -> tuple[str, str, list[str]]:
    """(class, the scans, the EXPLAIN ANALYZE lines) of the page's list query."""
    from django.core.exceptions import EmptyResultSet
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from tickets.api.pagination import SORT_COLUMNS
    from tickets.selectors import TicketFilters, ticket_list

    column = SORT_COLUMNS[ordering.lstrip("-")]
    listed = ticket_list(
        party, TicketFilters(q=q), best_match_first=ordering == "relevance", now=timezone.now()
    )
    rows = listed.order_by(F(column).desc(), "-id")[:51]
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # the GIN index found no match: the page is empty without a query
        return "GIN (no match: no page query)", "", []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        lines = [row[0] for row in cursor.fetchall()]
    scans = []
    for line in lines:
        match = SCAN.search(line)
        if match:
            kind, first, second, actual = match.groups()
            target = f"{first} on {second}" if second else first
            scans.append(f"{kind} {target}" + (f" ({actual} rows)" if actual else ""))
    text = "\n".join(lines)
    if re.search(r"Seq Scan on (tickets_ticket|tickets_ticketsearch)\b", text):
        kind = "SEQ SCAN"
    elif "Bitmap Index Scan on ticket_search_" in text:
        kind = "GIN"
    elif re.search(r'"id" = ANY\(\(?%s::uuid\[\]', sql):
        kind = (
            "GIN first (its matches read as a list of ids), then "
            + ", ".join(s for s in scans if "Index" in s)[:60]
        )
    else:
        kind = "no GIN: " + ", ".join(s for s in scans if "Index" in s)[:80]
    return kind, "; ".join(scans), lines


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure_searches(parties: dict, classes: dict, rounds: int, case_seconds: float, plans: str) -> list:
    results = []
    print(
        f"\n{'party':<9} {'class':<10} {'ordering':<12} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'list p50':>9} {'snip p50':>9} {'first':>7} {'rows':>5}  plan   (EXPLAIN ANALYZE once; {loadavg()})",
        flush=True,
    )
    for party_name, (party, targets) in parties.items():
        for class_name, queries in classes.items():
            for ordering in ("relevance", "-updated_at"):
                # Each query's first run, untimed in the figures: it may read its pages from disk (after a
                # restart) where every later run finds them in memory. Printed apart ("first").
                firsts = []
                for query in queries:
                    listed, snipped, _ = page(party, query, ordering)
                    firsts.append((listed + snipped) * 1000)
                totals, lists, snippets, counts = [], [], [], []
                started = time.monotonic()
                for n in range(rounds):
                    if n >= 3 and time.monotonic() - started > case_seconds:
                        break
                    listed, snipped, rows = page(party, queries[n % len(queries)], ordering)
                    totals.append((listed + snipped) * 1000)
                    lists.append(listed * 1000)
                    snippets.append(snipped * 1000)
                    counts.append(len(rows))
                kind, scans, lines = plan_of(party, queries[0], ordering)
                p50, p99 = percentile(totals, 50), percentile(totals, 99)
                met = p50 < targets[0] and p99 < targets[1]
                results.append((party_name, class_name, ordering, p50, p99, kind, met))
                print(
                    f"{party_name:<9} {class_name:<10} {ordering:<12} {len(totals):>3} {p50:>8.1f} {p99:>8.1f} "
                    f"{percentile(lists, 50):>9.1f} {percentile(snippets, 50):>9.1f} {max(firsts):>7.1f} "
                    f"{statistics.median(counts):>5.0f}  {kind}{'' if met else '  (target NOT met)'}",
                    flush=True,
                )
                print(f"{'':<14} scans: {scans}", flush=True)
                if plans == "all" or (plans == "missed" and not met):
                    print("\n".join(f"{'':<14} | {line}" for line in lines), flush=True)
    return results


def check_results(parties: dict, classes: dict) -> None:
    """What must hold at any size: searches find, snippets mark, scoping holds, internal notes stay hidden."""
    from tickets.models import Ticket

    support = parties["support"][0]
    customer = parties["customer"][0]
    provider = parties["provider"][0]
    _, _, rows = page(support, ORACLE, "relevance")
    assert rows, "support finds nothing by a word of the internal notes"
    _, _, rows = page(customer, ORACLE, "relevance")
    assert not rows, f"a customer finds {len(rows)} tickets by a word only internal notes hold"
    _, _, rows = page(support, classes["common"][0], "relevance")
    assert len(rows) == 50, len(rows)
    assert any("<mark>" in (r["search_snippet"] or "") for r in rows), "no snippets"
    _, _, rows = page(provider, classes["common"][0], "-updated_at")
    mine = set(
        Ticket.objects.filter(id__in=[r["id"] for r in rows], provider_id=provider.provider_id).values_list(
            "id", flat=True
        )
    )
    assert rows
    assert len(mine) == len(rows), "a provider's search shows another provider's tickets"
    _, _, rows = page(customer, classes["common"][0], "-updated_at")
    assert rows
    assert all(r["customer_address"] == customer.address for r in rows), "customer scope broken"
    ranks = [r["search_rank"] for r in page(support, classes["medium"][0], "relevance")[2]]
    assert ranks == sorted(ranks, reverse=True), "relevance is not best first"


def remove_tickets(ticket_ids: list) -> None:
    """Delete tickets the bench wrote, and through the models' cascades all their rows, so that each run
    measures the same dataset."""
    from tickets.models import Ticket

    Ticket.objects.filter(pk__in=ticket_ids).delete()


def measure_writes(rounds: int, typical) -> list:
    """comment_add and ticket_create with the search writer on and off, interleaved; (name, on, off)."""
    from django.db import connection

    from core.parties import Party, PartyKind
    from tickets import hooks
    from tickets.services import comment_add, ticket_create
    from tickets.services.search_index import SEARCH_INDEX_WRITER, search_documents_write

    support = Party(kind=PartyKind.SUPPORT, label="Search bench support")
    customer = Party(kind=PartyKind.CUSTOMER, label="Search bench customer", address=typical.owner_address)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.id FROM tickets_ticket t
            WHERE t.status IN ('open', 'in_progress') AND t.created_by_label = 'bench'
              AND (SELECT count(*) FROM tickets_comment c WHERE c.ticket_id = t.id) = 5
            LIMIT %s
            """,
            [rounds * 2 + 2],
        )
        targets = [row[0] for row in cursor.fetchall()]
        # Each write its own text, drawn as the seed's: copies of one text at the head of the tickets' order
        # would be what every search walks first.
        cursor.execute(
            "SELECT bench_search_text(25), initcap(bench_search_text(6)), bench_search_text(40) "
            "FROM generate_series(1, %s)",
            [rounds * 2 + 2],
        )
        texts = cursor.fetchall()
    assert len(targets) >= 4, "no tickets to comment on"
    times = {
        ("comment_add", True): [],
        ("comment_add", False): [],
        ("ticket_create", True): [],
        ("ticket_create", False): [],
    }
    touched: list = []
    created_ids: list = []
    try:
        pairs = min(rounds, len(targets) // 2 - 1)
        for n in range(pairs + 1):
            order = (True, False) if n % 2 == 0 else (False, True)
            for on in order:
                if on:
                    hooks.register_event_writer(SEARCH_INDEX_WRITER)
                else:
                    hooks.unregister_event_writer(SEARCH_INDEX_WRITER.name)
                ticket_id = targets.pop()
                touched.append(ticket_id)
                body, subject, description = texts.pop()
                started = time.perf_counter()
                comment_add(actor=support, ticket_id=ticket_id, body=body)
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                ticket = ticket_create(
                    actor=customer, deployment_id=typical.lease_id, subject=subject, description=description
                )
                created = time.perf_counter() - started
                created_ids.append(ticket.id)
                if n:  # the first pair warms up
                    times[("comment_add", on)].append(seconds * 1000)
                    times[("ticket_create", on)].append(created * 1000)
    finally:
        hooks.register_event_writer(SEARCH_INDEX_WRITER)
        search_documents_write(touched)  # what the rounds without the writer left stale
        remove_tickets(created_ids)
    return [(name, times[(name, True)], times[(name, False)]) for name in ("comment_add", "ticket_create")]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--comments", type=int, default=5_000_000)
    parser.add_argument("--big-provider-tickets", type=int, default=100_000, help="the provider searched as")
    parser.add_argument("--rounds", type=int, default=20, help="timed searches per case")
    parser.add_argument(
        "--case-seconds", type=float, default=20, help="a case stops after this (>= 3 rounds)"
    )
    parser.add_argument("--write-rounds", type=int, default=200, help="writes per arm (writer on / off)")
    parser.add_argument("--batch-size", type=int, default=2000, help="search_index_rebuild's batch")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild (and time) the index of a kept database"
    )
    parser.add_argument(
        "--plans",
        action="store_true",
        help="print every case's EXPLAIN ANALYZE (default: those missing a target)",
    )
    args = parse_args(
        parser,
        {
            "tickets": 3000,
            "comments": 15000,
            "big_provider_tickets": 300,
            "rounds": 3,
            "write_rounds": 3,
            "case_seconds": 2,
        },
    )
    bench_environment(
        database=os.environ["DATABASE_NAME"], broker_db=BROKER_DB, cache_prefix="ves-searchbench"
    )

    import django

    django.setup()
    ensure_database()
    print(f"{loadavg()}; database {os.environ['DATABASE_NAME']}", flush=True)
    seeded = seed(args.tickets, args.comments, args.big_provider_tickets)
    build_index(args.rebuild, args.batch_size)

    from django.db import connection

    from core.parties import Party, PartyKind
    from providers.selectors import provider_party
    from tickets.models import Comment, Ticket

    big = seeded["providers"][0]
    loyal = seeded["loyal"]
    counts = {
        "tickets": Ticket.objects.count(),
        "comments": Comment.objects.count(),
        "internal notes": Comment.objects.filter(is_internal=True).count(),
        "big provider's tickets": Ticket.objects.filter(provider=big).count(),
        "the customer's tickets": Ticket.objects.filter(customer_address=loyal.owner_address).count(),
    }
    with connection.cursor() as cursor:
        server = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost"):
            cursor.execute(f"SHOW {name}")
            server[name] = cursor.fetchone()[0]
    print("dataset: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    print("PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in server.items()))
    print("index size:")
    print("\n".join(index_sizes()), flush=True)
    from tickets.selectors.search import phrase_pairs_ready

    print(
        "phrase pairs: "
        + (
            "in every staff document, read for phrases"
            if phrase_pairs_ready()
            else "NOT in every staff document yet: phrases are read by their words (run with --rebuild)"
        )
    )

    parties = {
        "support": (Party(kind=PartyKind.SUPPORT, label="Search bench support"), (50, 300)),
        "provider": (provider_party(big), (50, 300)),
        "customer": (
            Party(kind=PartyKind.CUSTOMER, label="Search bench customer", address=loyal.owner_address),
            (float("inf"), 20),
        ),
    }
    classes = term_classes()
    print("queries: " + "; ".join(f"{k}: {' | '.join(v)}" for k, v in classes.items()))
    check_results(parties, classes)
    print(
        "checks: found by internal-note word for support, not for the customer; scopes; snippets; order: ok"
    )
    results = measure_searches(
        parties,
        classes,
        args.rounds,
        args.case_seconds,
        "all" if args.plans else "none" if args.smoke else "missed",
    )

    from tickets.services.search_index import search_pending_merge

    # Beat merges the index's pending list every 10 s: the rounds start, as a request would, with it merged
    # (else the write that fills it to 4 MB merges it inline, a second or more at 1M tickets).
    started = time.perf_counter()
    pages = search_pending_merge()
    print(
        f"\nthe index's pending list merged before the writes: {pages:,} pages in {time.perf_counter() - started:.1f} s"
    )
    writes = measure_writes(args.write_rounds, seeded["typical"])
    print(f"\nwrite cost of the search writer ({len(writes[0][1])} interleaved rounds per arm; {loadavg()}):")
    write_ok = True
    for name, on, off in writes:
        ratio = statistics.median(on) / statistics.median(off)
        mean_ratio = statistics.mean(on) / statistics.mean(off)
        write_ok = write_ok and ratio < 1.15
        print(
            f"  {name:<14} with writer median {statistics.median(on):6.2f} ms (mean {statistics.mean(on):6.2f}, "
            f"max {max(on):6.2f}); without median {statistics.median(off):6.2f} ms (mean {statistics.mean(off):6.2f}, "
            f"max {max(off):6.2f}); +{ratio - 1:.1%} by medians, +{mean_ratio - 1:.1%} by means "
            f"(target < 15 %: {'met' if ratio < 1.15 else 'NOT met'})"
        )
    missed = [r for r in results if not r[6]]
    print(
        f"\nsearch targets (support/provider p50 < 50 ms, p99 < 300 ms; customer p99 < 20 ms): "
        f"{len(results) - len(missed)} of {len(results)} cases met"
        + ("" if not missed else "; NOT met: " + ", ".join(f"{r[0]}/{r[1]}/{r[2]} ({r[5]})" for r in missed))
    )
    print(f"dataset: {counts['tickets']:,} tickets, {counts['comments']:,} comments; {loadavg()}")
    if args.smoke:
        print("(smoke size: targets printed, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
