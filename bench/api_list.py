"""Benchmark: the ticket list API against bare Django JSON views on the same server.

With 100k tickets in PostgreSQL (a separate `virtengine_bench` database on the embedded server, or
DATABASE_URL), it starts one server process per `--servers` configuration (uvicorn, the production
server, by default; bench settings), then drives each
endpoint with wrk at the same concurrency:

  * api     GET /api/v1/tickets?limit=50   as a provider (HMAC), through auth, throttles, selectors, keyset
            pagination and serializers;
  * bare    GET /bench/bare-tickets         the same 50 rows for the same provider via .values() + JsonResponse;
  * raw     GET /bench/raw-tickets          the same statement, prepared, its rows dumped by orjson as psycopg
            gives them: the floor of sending this data on this stack (no auth, no SLA clock, no formatting);
  * hello   GET /bench/hello                {"ok": true}, the server's floor.

It prints requests/s and latency p50/p99 for each, and the ratios api/bare (target >= 0.6) and api/hello
(target >= 0.35), and raw/hello: how near the floor any view of these rows can come. Before the servers
start it also times the same endpoints in this process (Django's test client through the whole middleware
stack, no socket, one request at a time): the server's own time per request, median of `--inprocess-rounds`
interleaved rounds of `--inprocess-requests` each (target: api < 5 ms).

    .venv/bin/python bench/api_list.py [--tickets 100000] [--rounds 5] [--seconds 8] [--connections 16]
        [--inprocess-rounds 5] [--inprocess-requests 200] [--smoke]

`--smoke` (CI): 200 tickets, one 1 s round; without wrk on the machine it drives the endpoints from this
process instead (one connection at a time) and installs nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"


from bench.common import ensure_database, parse_args, seed_tickets  # noqa: E402 - after sys.path is set

# name: (server command in tests.system.processes.SERVER_COMMANDS, ASGI application)
SETUPS = {
    "uvicorn+single-hop": ("uvicorn", "config.asgi:application"),  # production
    "uvicorn+stock": ("uvicorn", "bench.asgi_stock:application"),  # Django's own ASGI handler
    "daphne+single-hop": ("daphne", "config.asgi:application"),
}

LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, headers: dict[str, str], *, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latencies = {int(p): float(v) * UNITS[u] for p, v, u in LATENCY.findall(output)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50": latencies[50],
        "p99": latencies[99],
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def run_python(url: str, headers: dict[str, str], *, seconds: int, connections: int) -> dict[str, float]:
    """The figures run_wrk gives, from requests sent one at a time by this process (`--smoke` without wrk):
    the same endpoints and checks, not a load test. `connections` is ignored."""
    import http.client
    from urllib.parse import urlsplit

    del connections
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    latencies, non2xx = [], 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            sent = time.perf_counter()
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - sent) * 1000)
            non2xx += not 200 <= response.status < 400
    finally:
        connection.close()
    latencies.sort()
    return {
        "rps": len(latencies) / (time.perf_counter() - started),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "non2xx": non2xx,
    }


IN_PROCESS_TARGET_MS = 5.0
FLOOR_TARGET = 0.35


def in_process_times(
    provider_id: int, principal: str, secret: str, *, rounds: int, requests: int
) -> dict[str, float]:
    """Milliseconds per request of api, bare and hello served in this process by Django's test client (the
    whole middleware stack and the view, no socket): the median of `rounds` interleaved rounds, each the
    mean of `requests` requests one after the other, after a warm-up."""
    from django.http import HttpResponseBase
    from django.test import Client

    from accounts import hmac_signing

    client = Client()

    def api() -> HttpResponseBase:
        signed = hmac_signing.hmac_headers(
            principal, secret, "GET", "/api/v1/tickets", "limit=50", int(time.time())
        )
        return client.get("/api/v1/tickets?limit=50", headers=signed)

    targets = {
        "api": api,
        "bare": lambda: client.get(f"/bench/bare-tickets?provider_id={provider_id}"),
        "raw": lambda: client.get(f"/bench/raw-tickets?provider_id={provider_id}"),
        "hello": lambda: client.get("/bench/hello"),
    }
    for name, request in targets.items():  # warm up: connections, caches, prepared statements
        for _ in range(20):
            response = request()
            if response.status_code != 200:
                raise SystemExit(f"in-process {name}: HTTP {response.status_code}")
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, request in targets.items():
            started = time.perf_counter()
            for _ in range(requests):
                request()
            times[name].append((time.perf_counter() - started) * 1000 / requests)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=8, help="per endpoint per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--inprocess-rounds", type=int, default=5)
    parser.add_argument("--inprocess-requests", type=int, default=200, help="per endpoint per round")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=sorted(SETUPS),
        default=["uvicorn+single-hop"],
        help="server configurations to measure side by side (the first is the one the ratios compare to)",
    )
    args = parse_args(
        parser,
        {
            "tickets": 200,
            "seconds": 1,
            "rounds": 1,
            "connections": 2,
            "inprocess_rounds": 1,
            "inprocess_requests": 10,
        },
    )
    load = run_wrk
    if shutil.which("wrk") is None and args.smoke:
        load = run_python
        print("wrk not found: requests sent one at a time from this process (--smoke)")
    elif shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if shutil.which("wrk") is None:
            print("wrk is needed (Debian package `wrk`)")
            return 2

    import django

    django.setup()  # the settings start (or find) the embedded PostgreSQL and Redis unless URLs are set
    ensure_database()
    provider_id, principal, secret = seed_tickets(args.tickets)
    load_before = os.getloadavg()[0]
    in_process = in_process_times(
        provider_id, principal, secret, rounds=args.inprocess_rounds, requests=args.inprocess_requests
    )
    from bench.common import close_database_connections

    close_database_connections()  # the servers' connections only, from here on

    from accounts import hmac_signing
    from tests.system.processes import AppServer

    # Each configuration serves the same app; access logs off, like production.
    setups = {name: SETUPS[name] for name in args.servers}
    servers = {
        name: AppServer(env={"DJANGO_SETTINGS_MODULE": "bench.settings"}, server=server, app=app)
        for name, (server, app) in setups.items()
    }
    try:
        query = "limit=50"

        def signed() -> dict[str, str]:
            # Signed afresh for every wrk run: a signature is valid for 300 s, a whole run takes longer.
            return hmac_signing.hmac_headers(
                principal, secret, "GET", "/api/v1/tickets", query, int(time.time())
            )

        def unsigned() -> dict[str, str]:
            return {}

        targets = {}
        for name, server in servers.items():
            base = server.http
            targets[(name, "api")] = (f"{base}/api/v1/tickets?{query}", signed)
            targets[(name, "bare")] = (
                f"{base}/bench/bare-tickets?provider_id={quote(str(provider_id))}",
                unsigned,
            )
            targets[(name, "raw")] = (
                f"{base}/bench/raw-tickets?provider_id={quote(str(provider_id))}",
                unsigned,
            )
            targets[(name, "hello")] = (f"{base}/bench/hello", unsigned)
        for url, headers in targets.values():  # warm up connections, caches and the query plans
            load(url, headers(), seconds=1 if args.smoke else 2, connections=args.connections)
        # Interleave the endpoints (and servers) over several rounds and keep medians, so a noisy moment
        # on the machine does not land on one endpoint only.
        rounds: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in targets}
        for _ in range(args.rounds):
            for key, (url, headers) in targets.items():
                rounds[key].append(load(url, headers(), seconds=args.seconds, connections=args.connections))
        results = {
            key: {metric: statistics.median(r[metric] for r in runs) for metric in ("rps", "p50", "p99")}
            | {"non2xx": sum(r["non2xx"] for r in runs)}
            for key, runs in rounds.items()
        }
    finally:
        for server in servers.values():
            server.stop()

    from tickets.models import Ticket

    print(
        f"\nIn this process (Django's test client, no socket; median of {args.inprocess_rounds} interleaved "
        f"rounds of {args.inprocess_requests} requests), load average {load_before:.2f} before:"
    )
    for endpoint, ms in in_process.items():
        print(f"  {endpoint:<8} {ms:>8.2f} ms per request")
    print(
        f"  api/bare = {in_process['api'] / in_process['bare']:.2f}x the time, api - hello = "
        f"{in_process['api'] - in_process['hello']:.2f} ms (target: api < {IN_PROCESS_TARGET_MS:.0f} ms)"
    )
    print(
        f"\n{Ticket.objects.count()} tickets in PostgreSQL; "
        f"{f'wrk -t2 -c{args.connections}' if load is run_wrk else 'one request at a time'}, {args.rounds} interleaved "
        f"rounds of {args.seconds} s per endpoint (medians); one server process each"
    )
    print(f"{'server':<22} {'endpoint':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for (name, endpoint), figures in results.items():
        print(
            f"{name:<22} {endpoint:<8} {figures['rps']:>9.1f} {figures['p50']:>8.2f} {figures['p99']:>8.2f}"
            f" {figures['non2xx']:>8}"
        )
    ok = all(r["non2xx"] == 0 for r in results.values())
    print()
    for name in servers:
        ratio = results[(name, "api")]["rps"] / results[(name, "bare")]["rps"]
        floor = results[(name, "api")]["rps"] / results[(name, "hello")]["rps"]
        raw_floor = results[(name, "raw")]["rps"] / results[(name, "hello")]["rps"]
        print(
            f"{name:<22} ratio api/bare = {ratio:.2f} (target >= 0.60); api/hello = {floor:.2f} "
            f"(target >= {FLOOR_TARGET:.2f}); raw/hello = {raw_floor:.2f}, api/raw = "
            f"{results[(name, 'api')]['rps'] / results[(name, 'raw')]['rps']:.2f}"
        )
        ok = ok and (ratio >= 0.6 or args.smoke)
    first, *others = servers
    for name in others:
        print(
            f"api req/s {name} / {first} = "
            f"{results[(name, 'api')]['rps'] / results[(first, 'api')]['rps']:.2f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
