"""Benchmark: WebSocket fan-out of one ticket's comments to N sockets spread over 2 web server processes.

It starts its own Redis and two app processes (uvicorn by default, `--server daphne`; the fan-out hub by
default, or `--fanout layer` with `--layer core|pubsub` for Channels' own pattern) on a separate `virtengine_wsbench`
database, opens N sockets on one ticket (half the customer's, half a provider member's; alternating
between the two processes), then posts comments through the REST API on the first process, one every
`--interval` seconds. For each comment it records the delay from sending the POST to its arrival on
every socket, and prints the delivery latency to the LAST socket (median, p99), all deliveries
(median, p99) and messages delivered per second. Target: p99 to the last socket < 250 ms at 1,000 sockets.
Exit 1 if a comment did not reach every socket, or (but for `--smoke`) the target is missed.

    .venv/bin/python bench/ws_fanout.py [--sockets 1000] [--comments 100] [--interval 0.5] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_wsbench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"


MARKER = '"comment '  # the posted text, whether or not the server's JSON has spaces after colons


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def prepare() -> dict[str, str]:
    """A ticket with a customer and a provider member who may watch it; their session cookies."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from bench.common import ensure_database

    ensure_database()
    call_command("migrate", verbosity=0)
    from providers.models import ProviderMembership
    from providers.selectors import party_for_user
    from tests.factories import CustomerIdentityFactory, DeploymentFactory, ProviderFactory, UserFactory
    from tickets import services

    run_id = os.urandom(4).hex()  # the bench database is reused: fresh names each run
    provider = ProviderFactory()
    identity = CustomerIdentityFactory(user=UserFactory(username=f"wsbench-customer-{run_id}"))
    member = UserFactory(username=f"wsbench-provider-{run_id}")
    ProviderMembership.objects.create(provider=provider, user=member)
    deployment = DeploymentFactory(owner_address=identity.address, provider=provider)
    customer = party_for_user(identity.user)
    ticket = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Fan-out bench",
        description="1,000 watchers",
    )
    cookies = {}
    for name, user in (("customer", identity.user), ("provider", member)):
        client = Client()
        client.force_login(get_user_model().objects.get(pk=user.pk))
        cookies[name] = client.cookies["sessionid"].value
    return {"ticket_id": str(ticket.id), **cookies}


async def watch(
    server, path: str, cookie: str, arrivals: dict[int, list[float]], ready: asyncio.Event, opened: list
) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        f"{server.ws}{path}",
        # A page of the server itself: the Origin must match its scheme, host and port.
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.http},
        open_timeout=60,
        max_queue=None,
    ) as socket:
        opened.append(1)
        await ready.wait()
        try:
            await _read(socket, arrivals)
        finally:
            if socket.close_code is not None:
                closed_early.append(socket.close_code)


closed_early: list[int] = []  # sockets the server closed during the run (their close codes)


async def _read(socket, arrivals: dict[int, list[float]]) -> None:
    async for raw in socket:
        # One client process reads all N sockets on the same 2 cores as the servers: find the marker
        # with a substring scan rather than parsing every frame, so the client costs as little as possible.
        at = raw.find(MARKER)
        if at >= 0:
            number = int(raw[at + len(MARKER) : raw.index('"', at + len(MARKER))])
            arrivals.setdefault(number, []).append(time.perf_counter())


async def run(args: argparse.Namespace, servers: list, setup: dict[str, str]) -> None:
    import requests

    path = f"/api/v1/tickets/{setup['ticket_id']}/updates"
    arrivals: dict[int, list[float]] = {}
    ready = asyncio.Event()
    opened: list = []
    tasks = []
    started = time.perf_counter()
    for index in range(args.sockets):
        server = servers[index % 2]
        cookie = setup["customer"] if index % 4 < 2 else setup["provider"]
        tasks.append(asyncio.create_task(watch(server, path, cookie, arrivals, ready, opened)))
        if index % 50 == 49:
            # Open in batches of 50, each after the previous one is up: real clients don't all arrive in
            # the same second, and a burst of 1,000 handshakes exceeds a server's handshake timeout.
            while len(opened) < index + 1 and time.perf_counter() - started < 180:
                await asyncio.sleep(0.02)
    while len(opened) < args.sockets:
        await asyncio.sleep(0.1)
        if time.perf_counter() - started > 180:
            raise TimeoutError(f"only {len(opened)} of {args.sockets} sockets opened")
    print(f"{args.sockets} sockets open in {time.perf_counter() - started:.1f} s")
    ready.set()
    await asyncio.sleep(2)

    session = requests.Session()
    session.cookies.set("sessionid", setup["customer"])
    session.cookies.set("csrftoken", "b" * 32)
    sent: dict[int, float] = {}
    post_ms: list[float] = []
    comment_url = f"{servers[0].http}/api/v1/tickets/{setup['ticket_id']}/comments"
    for n in range(3):  # warm up: first requests open database connections and fill caches
        session.post(
            comment_url,
            json={"content": f"warm-up {n}"},
            headers={"X-CSRFToken": "b" * 32, "Origin": servers[0].http},
            timeout=10,
        )
        await asyncio.sleep(args.interval)
    await asyncio.sleep(1)
    arrivals.clear()
    for n in range(args.comments):
        sent[n] = time.perf_counter()
        response = await asyncio.to_thread(
            session.post,
            comment_url,
            json={"content": f"comment {n}"},
            headers={"X-CSRFToken": "b" * 32, "Origin": servers[0].http},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        post_ms.append((time.perf_counter() - sent[n]) * 1000)
        await asyncio.sleep(args.interval)
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and any(len(arrivals.get(n, [])) < args.sockets for n in sent):
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    last_socket = [
        (max(arrivals[n]) - sent[n]) * 1000 for n in sent if len(arrivals.get(n, [])) == args.sockets
    ]
    every = [(t - sent[n]) * 1000 for n in sent for t in arrivals.get(n, [])]
    delivered = sum(len(arrivals.get(n, [])) for n in sent)
    window = max(max(arrivals[n]) for n in sent if arrivals.get(n)) - min(sent.values())
    missing = args.comments * args.sockets - delivered
    print(
        f"\n{args.sockets} sockets on one ticket over 2 {args.server} processes, fan-out {args.fanout}, "
        f"{args.layer} layer; {args.comments} comments, one per {args.interval} s"
    )
    print(
        f"to the last socket: median {statistics.median(last_socket):.1f} ms  p99 {percentile(last_socket, 0.99):.1f} ms  (target p99 < 250 ms)"
    )
    print(
        f"every delivery:     median {statistics.median(every):.1f} ms  p99 {percentile(every, 0.99):.1f} ms"
    )
    print(
        f"POST round trip:    median {statistics.median(post_ms):.1f} ms  p99 {percentile(post_ms, 0.99):.1f} ms"
    )
    first_arrival = [(min(arrivals[n]) - sent[n]) * 1000 for n in sent if arrivals.get(n)]
    print(f"to the first socket: median {statistics.median(first_arrival):.1f} ms")
    print(
        f"delivered {delivered} messages in {window:.1f} s = {delivered / window:.0f} messages/s; missing {missing}"
    )
    print(f"sockets closed by the server during the run: {len(closed_early)} {sorted(set(closed_early))}")
    args.result = (percentile(last_socket, 0.99), missing)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--comments", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument(
        "--fanout",
        choices=["hub", "layer"],
        default="hub",
        help="hub: our per-process fan-out (tickets/fanout.py); layer: every socket joins its groups itself",
    )
    parser.add_argument("--layer", choices=["core", "pubsub"], default="core", help="channels_redis layer")
    from bench.common import parse_args

    args = parse_args(parser, {"sockets": 20, "comments": 3, "interval": 0.2})

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    import django

    django.setup()
    setup = prepare()

    from django.conf import settings

    from tests.system.processes import AppServer, RedisServer

    redis = RedisServer(Path(tempfile.mkdtemp(prefix="ves-wsbench-")))
    redis.start()
    db = settings.DATABASES["default"]
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_NAME": db["NAME"],
        "REDIS_URL": redis.url,
        "VE_CHANNELS_PREFIX": "ves-wsbench",
    }
    if args.layer == "pubsub":
        env["VE_BENCH_CHANNEL_LAYER"] = "pubsub"
    app = "config.asgi:application" if args.fanout == "hub" else "bench.layer_fanout:application"
    servers = [AppServer(env=env, server=args.server, app=app) for _ in range(2)]
    try:
        asyncio.run(run(args, servers, setup))
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        shutil.rmtree(redis.state_dir, ignore_errors=True)
    p99, missing = args.result
    return 0 if (p99 < 250 or args.smoke) and missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
