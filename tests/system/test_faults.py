"""Faults under load, in real processes (`tests/system/cluster.py`): uvicorn web processes, Celery workers
and beat, on PostgreSQL and a Redis of the test's own, driven by real clients of every kind
(`tests/system/load.py`). Each test breaks one part in the middle of the load, lets the system recover by
itself, and then checks the books (`tests/system/books.py`): every listener got every event it may see
exactly once and in order and nothing it may not, every ticket's sequence is gap-free, every event is
anchored once and `verify_chain` is clean. `bench/soak.py --faults` runs the same faults longer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import coincurve
import pytest
from django.db import connection

from chain import keys
from chain.models import OutboxEntry
from providers.services import provider_credential_issue
from tests.chain.cometbft_node import FakeNode, NodeServer
from tests.conftest import World
from tests.system import books as books_check
from tests.system.cluster import FAST_TIMERS, Installation, TcpProxy
from tests.system.load import NO_ANSWER, HmacParty, SessionParty, WalletParty, wait_until
from tests.system.load import World as LoadWorld
from tests.system.processes import RedisServer
from tests.system.scenario import (
    LogEndpoint,
    Run,
    oldest_unanchored_age,
    running_drain,
    settle,
    start_load,
)
from tickets.models import Ticket, TicketEvent

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests/factories.py


@pytest.fixture
def env(keyed_world: World, redis_server: RedisServer, settings, tmp_path: Path) -> dict[str, str]:
    """The installation's settings: the test database, its own Redis, the test's chain keys, fast timers."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "REDIS_URL": redis_server.url,
        "VE_CHANNELS_PREFIX": f"ves-faults-{uuid.uuid4().hex[:8]}",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "VE_CHAIN_BACKEND": "local",
        "VE_CHAIN_LEDGER_PATH": str(settings.VE_CHAIN_LEDGER_PATH),
        "VE_CHAIN_NODE_KEY_PATH": str(settings.VE_CHAIN_NODE_KEY_PATH),
        "VE_CHAIN_SUPPORT_PRIVATE_KEY": settings.VE_CHAIN_SUPPORT_PRIVATE_KEY,
        "VE_CHAIN_SUPPORT_KEY_PATH": str(settings.VE_CHAIN_SUPPORT_KEY_PATH),
        "VE_CHAIN_SIGNER_KEY_PATH": str(settings.VE_CHAIN_SIGNER_KEY_PATH),
        **FAST_TIMERS,
    }


@pytest.fixture
def parties(keyed_world: World) -> LoadWorld:
    world = keyed_world

    def hmac(provider) -> HmacParty:
        issued = provider_credential_issue(provider=provider, label="faults")
        return HmacParty(provider.name, issued.credential.principal, issued.secret, provider.address)

    return LoadWorld(
        customers=[
            WalletParty(
                "alice",
                world.alice_key,
                world.alice.address,
                (world.alice_deployment.lease_id, world.alice_second_deployment.lease_id),
            ),
            WalletParty("bob", world.bob_key, world.bob.address, (world.bob_deployment.lease_id,)),
        ],
        providers=[hmac(world.provider_a), hmac(world.provider_b)],
        members=[SessionParty("pa-member", "pa-member", PASSWORD, provider_address=world.provider_a.address)],
        support=[SessionParty("agent", "agent", PASSWORD)],
    )


def assert_clean(run: Run, books: books_check.Books) -> None:
    listeners = "\n".join(
        f"{l.name}: server {l.server} connections {l.connections} closes {dict(l.closes)} frames {len(l.frames)}"
        f" last frame conn {l.frames[-1].connection if l.frames else None} errors {l.errors}"
        for l in run.listeners  # noqa: E741
    )
    assert books.clean, books.report() + "\n" + listeners
    assert not run.load.recorder.rule_breaks, run.load.recorder.rule_breaks[:10]
    assert books.delivered > 0
    assert books.events > 0


@pytest.fixture
def installation_factory(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Installation]]:
    made: list[Installation] = []

    def make(extra: dict[str, str] | None = None, **options: int) -> Installation:
        installation = Installation(env={**env, **(extra or {})}, workdir=tmp_path / "cluster", **options)
        made.append(installation)
        return installation.start()

    yield make
    for installation in made:
        installation.stop()


# --- the chain backend: a loopback CometBFT node ---------------------------------------------------------


@pytest.fixture
def node(settings) -> Iterator[tuple[FakeNode, NodeServer, dict[str, str]]]:
    signer = coincurve.PrivateKey()
    settings.VE_CHAIN_SIGNER_PRIVATE_KEY = signer.secret.hex()
    settings.VE_CHAIN_BACKEND = "cometbft"
    fake = FakeNode(
        chain_id=settings.VE_CHAIN_ID,
        address=keys.relayer_address(),
        public_key=signer.public_key.format(compressed=True),
    )
    with NodeServer(fake) as server:
        settings.VE_CHAIN_COMETBFT_RPC_URL = server.url
        env = {
            "VE_CHAIN_BACKEND": "cometbft",
            "VE_CHAIN_COMETBFT_RPC_URL": server.url,
            "VE_CHAIN_SIGNER_PRIVATE_KEY": signer.secret.hex(),
            "VE_CHAIN_COMETBFT_POLL_SECONDS": "0.1",
            "VE_CHAIN_COMETBFT_TIMEOUT_SECONDS": "2",
            "VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS": "15",
        }
        yield fake, server, env


def unanchored_report(fake: FakeNode) -> str:
    """What a failure needs: the rows still waiting (why, and until when) and the node's account."""
    waiting = OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).order_by("id")
    head = (
        f"{waiting.count()} rows unanchored; node: height {fake.height()}, sequence {fake.sequence}, "
        f"mempool {len(fake.mempool)}"
    )
    rows = [
        f"  {row.idempotency_key} {row.state} attempts={row.attempts} due={row.next_attempt_at:%H:%M:%S.%f} "
        f"seq={row.submission.get('sequence')} error={row.last_error[:120]!r}"
        for row in waiting[:15]
    ]
    return "\n".join([head, *rows])


def assert_one_tx_per_event(fake: FakeNode) -> None:
    memos = [tx.memo for tx in fake.received()]
    assert len(memos) == len(set(memos)), "an event was anchored in two transactions"
    expected = {f"ticket:{t}:{s}" for t, s in TicketEvent.objects.values_list("ticket_id", "seq")}
    assert set(memos) == expected
    for row in OutboxEntry.objects.all():
        assert fake.committed[row.tx_hash]["tx_result"]["code"] == 0


# --- the faults ----------------------------------------------------------------------------------------


def test_a_worker_killed_in_the_middle_of_an_outbox_drain(
    installation_factory: Callable[..., Installation], parties: LoadWorld, node
) -> None:
    """kill -9 the worker that has broadcast txs and waits for their block: its rows' leases run out, the
    other worker takes them over and, from the write-ahead note on each row, finds the txs already sent
    instead of sending them again."""
    fake, _, node_env = node
    fake.hold_blocks = True  # txs wait in the mempool: every drain stays in the middle
    installation = installation_factory(node_env, webs=1, workers=2)
    run = start_load(installation, parties, portal_pages=False)
    assert wait_until(lambda: len(fake.mempool) >= 3, timeout=20), "no drain got as far as broadcasting"
    in_flight = OutboxEntry.objects.exclude(submission={}).exclude(state=OutboxEntry.State.ANCHORED)
    assert wait_until(in_flight.exists, timeout=10)
    draining = next(i for i, w in enumerate(installation.workers) if w and running_drain(w.log()))
    installation.kill_worker(draining)
    fake.hold_blocks = False
    run.load.run_for(3)
    books = settle(run)
    assert_clean(run, books)
    assert_one_tx_per_event(fake)  # the killed worker's txs were found on the chain, not sent again


def test_postgresql_cut_off_answers_503_with_retry_after_and_writes_nothing_half(
    installation_factory: Callable[..., Installation], parties: LoadWorld
) -> None:
    """Every connection to PostgreSQL drops and new ones are refused for 4 s, as in a restart: clients get
    503 with Retry-After (JSON under /api/), never a 500; no ticket is left without its first event, its
    outbox row or its attachments; the system goes on by itself once the database is back."""
    database = connection.settings_dict
    proxy = TcpProxy(host=database["HOST"] or "127.0.0.1", port=int(database["PORT"] or 5432))
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    url = f"postgres://{database['USER']}{password}@127.0.0.1:{proxy.port}/{database['NAME']}"
    installation = installation_factory({"DATABASE_URL": url}, webs=2, workers=2)
    run = start_load(installation, parties)
    run.load.run_for(2)
    proxy.cut()
    cut_at = time.monotonic()
    run.load.run_for(4)
    proxy.restore()
    restored_at = time.monotonic()
    assert wait_until(lambda: _writes_after(run, restored_at), timeout=20), "writes did not recover"
    recovered_in = _first_write_after(run, restored_at) - restored_at
    run.load.run_for(2)
    books = settle(run)
    assert_clean(run, books)
    during = [c for c in run.load.recorder.calls if cut_at <= c.at <= restored_at]
    assert any(c.status == 503 for c in during), "the outage never reached a client"
    assert not [c for c in run.load.recorder.calls if c.status >= 500 and c.status != 503]
    # Nothing half-written: every ticket starts with its creation event (and, by the books, every event
    # has its outbox row, anchored).
    for ticket in Ticket.objects.all():
        first = TicketEvent.objects.filter(ticket=ticket).order_by("seq").first()
        assert first is not None, ticket.pk
        assert first.kind == "ticket_created", ticket.pk
    assert recovered_in < 20


def _writes_after(run: Run, moment: float) -> bool:
    return any(
        c.at > moment and c.status in (200, 201) and "create" in c.kind for c in run.load.recorder.calls
    )


def _first_write_after(run: Run, moment: float) -> float:
    return min(
        c.at
        for c in run.load.recorder.calls
        if c.at > moment and c.status in (200, 201) and "create" in c.kind
    )


def test_redis_restarted_under_load(
    installation_factory: Callable[..., Installation], parties: LoadWorld, redis_server: RedisServer
) -> None:
    """Redis is killed and started again, empty: broker, channel layer and cache are gone for a moment.
    Writes go on; sockets re-join their groups and fill what they missed from the database; the beat
    sweep drains the outbox whose after-commit triggers were lost."""
    installation = installation_factory(webs=2, workers=2)
    run = start_load(installation, parties)
    run.load.run_for(2)
    redis_server.stop()
    run.load.run_for(2)
    redis_server.start()
    run.load.run_for(4)
    books = settle(run)
    assert_clean(run, books)
    assert not [c for c in run.load.recorder.calls if c.status >= 500 and c.status != 503]


def test_the_chain_node_stopped_and_started_again(
    installation_factory: Callable[..., Installation], parties: LoadWorld, node
) -> None:
    """The CometBFT node goes off the network for 8 s: drains fail and back off; once it is back every
    event is anchored, each in exactly one tx."""
    fake, server, node_env = node
    installation = installation_factory(node_env, webs=1, workers=2)
    run = start_load(installation, parties, portal_pages=False)
    run.load.run_for(2)
    server.stop()
    stopped_at = time.monotonic()
    run.load.run_for(8)
    assert OutboxEntry.objects.filter(state=OutboxEntry.State.FAILED, attempts__gte=1).exists()
    server.start()
    assert wait_until(
        lambda: not OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).exists(), timeout=30
    ), unanchored_report(fake)
    assert time.monotonic() - stopped_at < 60
    books = settle(run)
    assert_clean(run, books)
    assert_one_tx_per_event(fake)


def test_a_provider_log_endpoint_that_hangs(
    installation_factory: Callable[..., Installation], parties: LoadWorld, keyed_world: World
) -> None:
    """Every technical ticket fetches its logs from the provider, whose endpoint hangs for 10 s: the fetches
    time out and retry on their own queue, the outbox drain is never starved, and the logs are attached
    once the endpoint answers again."""
    logs = LogEndpoint()
    for provider in (keyed_world.provider_a, keyed_world.provider_b):
        provider.api_endpoint = logs.url
        provider.save(update_fields=["api_endpoint"])
    logs.hanging.set()
    installation = installation_factory(webs=1, workers=2)  # the default 10 s read timeout
    try:
        run = start_load(installation, parties, portal_pages=False)
        lags = []
        for _ in range(12):
            run.load.run_for(1)
            lags.append(oldest_unanchored_age())
        assert len(logs.requests) >= 2, "no log fetch reached the hanging endpoint"
        # Anchoring kept up while the fetches hung: once the drain had caught up with what waited while the
        # processes warmed up (how long that takes depends on the machine's load), nothing waited longer than
        # a few sweeps for more than a moment. Sharing the drain's queue, the hanging fetches (10 s each) hold
        # the threads and the lag climbs a second a second, past 7 s, and never comes back down. On a loaded
        # machine one sweep may come late (a lag of 3.2 s once, then 1.0): one sample, not two in a row.
        caught_up = next((index for index, lag in enumerate(lags) if lag < 1), None)
        assert caught_up is not None, f"the drain never caught up: {lags}"
        assert caught_up <= len(lags) - 5, f"the drain caught up only at the end: {lags}"
        after = lags[caught_up:]
        assert not any(lag >= 3 and later >= 3 for lag, later in pairwise(after)), lags
        assert max(after) < 5, lags
        # The tickets whose fetch is still owed. The load's categories are random, so a short run may
        # create no technical ticket; escalations ask for logs too.
        owed = set(Ticket.objects.filter(logs_requested_at__isnull=False).values_list("pk", flat=True))
        assert owed, "no fetch was left waiting on the hanging endpoint"
        logs.hanging.clear()
        # The load stops, and every fetch owed completes, before the books are taken: an attached log is an
        # event of its own, which would otherwise arrive after the outbox was seen drained (seen once in CI,
        # one `logs_fetched` event pending in the books). A fetch that timed out retries after a jittered
        # back-off (up to 40 s by its fourth try), or the sweep queues it again after the one-minute
        # cooldown: up to 90 s.
        run.stop()
        owed |= set(Ticket.objects.filter(category="technical").values_list("pk", flat=True))
        assert wait_until(
            lambda: all(
                TicketEvent.objects.filter(ticket_id=pk, kind="logs_fetched").exists() for pk in owed
            ),
            timeout=90,
            interval=1,
        ), "logs were not attached after the endpoint recovered: " + str(
            [
                (t.display_number, t.status, t.category, t.logs_requested_at)
                for t in Ticket.objects.filter(pk__in=owed).exclude(events__kind="logs_fetched")
            ]
        )
        books = settle(run, timeout=40)
        assert_clean(run, books)
    finally:
        logs.stop()


def test_a_web_process_killed_while_it_holds_sockets(
    installation_factory: Callable[..., Installation], parties: LoadWorld
) -> None:
    """kill -9 one of two web processes: its sockets drop with no close frame; their clients reconnect to
    the other with `since` (the stream resyncs through REST) and miss nothing; HTTP clients move over."""
    installation = installation_factory(webs=2, workers=2)
    run = start_load(installation, parties)
    run.load.run_for(2)
    on_first = [listener for listener in run.listeners if listener.server % 2 == 0]
    assert on_first, "no socket on the first process"
    # Taken before the kill: a call in flight on the killed process can fail (and move its client over)
    # before kill_web returns.
    killed_at = time.monotonic()
    installation.kill_web(0)
    run.load.run_for(5)
    assert all(listener.connections >= 2 for listener in on_first)
    calls = [c for c in run.load.recorder.calls if c.at > killed_at]
    assert any(c.status == NO_ANSWER for c in calls), "no client was on the killed process"
    assert any(c.status == 201 for c in calls), "the other process did not take over the writes"
    books = settle(run)
    assert_clean(run, books)
