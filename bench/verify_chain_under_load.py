"""Benchmark: `verify_chain` run over and over while events are written and anchored all the time (#25).

On a database of its own (`virtengine_verifybench`, recreated each run) and a temporary ledger, or the
CometBFT test node (`--backend cometbft`, in this process, as the soak runs it): `--writers` processes
write ticket events through the services (new tickets, replies, internal notes) at `--rate` each, and
drain the outbox after each event, as workers do. Meanwhile this process runs `verify_chain` `--runs`
times in a row; each run must find nothing. Then one anchored comment is rewritten behind the services'
back and a receipt is forged for an event never sent, and `verify_chain` runs `--tamper-runs` more times
under the same load: each run must report exactly those two, and nothing else.

Prints, per phase: runs, findings, events per run, how many runs saw events anchored while they ran (the
window the issue is about), and run times. Exit status 1 on any finding in the first phase, or any run of
the second that misses the tampering or reports anything else.

    .venv/bin/python bench/verify_chain_under_load.py [--backend local|cometbft] [--runs 100]
        [--tamper-runs 20] [--writers 2] [--rate 4] [--warmup-events 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "virtengine_verifybench"
BROKER_DB = 13  # nothing is queued (the writers drain themselves), but keep off the others' broker


from bench.common import bench_environment, recreate_database  # noqa: E402 - after sys.path is set


def configure(workdir: Path, backend: str) -> dict[str, str]:
    import coincurve

    from chain import envelopes

    return bench_environment(
        database=DATABASE,
        broker_db=BROKER_DB,
        cache_prefix="ves-verifybench",
        VE_CHAIN_BACKEND=backend,
        VE_CHAIN_LEDGER_PATH=str(workdir / "ledger" / "ledger.jsonl"),
        VE_CHAIN_NODE_KEY_PATH=str(workdir / "ledger" / "node.key"),
        VE_CHAIN_SUPPORT_PRIVATE_KEY=envelopes.generate_keypair()[0],
        VE_CHAIN_SUPPORT_KEY_PATH=str(workdir / "support.key"),
        VE_CHAIN_SIGNER_PRIVATE_KEY=coincurve.PrivateKey().secret.hex(),
        VE_CHAIN_SIGNER_KEY_PATH=str(workdir / "signer.key"),
        VE_CHAIN_COMETBFT_POLL_SECONDS="0.05",
        VE_CHAIN_COMETBFT_TIMEOUT_SECONDS="5",
        VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS="15",
        VE_CHAIN_CLAIM_LEASE_SECONDS="30",
        VE_CHAIN_RETRY_BASE_SECONDS="0.2",
        VE_CHAIN_RETRY_MAX_SECONDS="1",
    )


def make_world() -> None:
    """One provider and one customer with envelope keys, 10 deployments."""
    from chain import envelopes
    from providers.models import CustomerIdentity, Deployment, ProviderAccount
    from tests.factories import make_address

    provider = ProviderAccount.objects.create(
        address=make_address(), name="Bench provider", envelope_public_key=envelopes.generate_keypair()[1]
    )
    owner = make_address()
    CustomerIdentity.objects.create(address=owner, envelope_public_key=envelopes.generate_keypair()[1])
    for n in range(10):
        Deployment.objects.create(
            lease_id=f"{owner}/{n + 1}/1/1", owner_address=owner, dseq=n + 1, provider=provider, name=f"b-{n}"
        )


def parties():
    from core.parties import Party, PartyKind
    from providers.models import Deployment, ProviderAccount

    provider = ProviderAccount.objects.get()
    deployments = list(Deployment.objects.order_by("dseq"))
    customer = Party(kind=PartyKind.CUSTOMER, label="bench-customer", address=deployments[0].owner_address)
    provider_party = Party(
        kind=PartyKind.PROVIDER, label="bench-provider", address=provider.address, provider_id=provider.pk
    )
    return customer, provider_party, deployments


def writer(index: int, stop_file: Path, rate: float) -> int:
    """Write events through the services at `rate` a second, draining the outbox after each, until
    `stop_file` exists."""
    import django

    django.setup()
    from chain.services import outbox_drain
    from tickets import services

    without_after_commit_hooks()
    customer, provider, deployments = parties()
    ticket = None
    n = 0
    started = time.monotonic()
    while not stop_file.exists():
        pause = started + n / rate - time.monotonic()  # event n's slot on a steady schedule
        if pause > 0:
            time.sleep(pause)
        if n % 6 == 0:
            ticket = services.ticket_create(
                actor=customer,
                deployment_id=deployments[(index + n) % len(deployments)].lease_id,
                subject=f"Writer {index} ticket {n}",
                description="Written while verify_chain runs.",
                category="billing",
                priority="high",
            )
        elif n % 3 == 0:
            services.comment_add(actor=provider, ticket_id=ticket.pk, body=f"note {n}", is_internal=True)
        else:
            actor = provider if n % 2 else customer
            services.comment_add(actor=actor, ticket_id=ticket.pk, body=f"reply {n} from writer {index}")
        outbox_drain()
        n += 1
    outbox_drain()
    return 0


def without_after_commit_hooks() -> None:
    """No drain task, broadcast or notification after a commit: nobody listens (the writers drain
    themselves), and nothing but anchoring and verifying is under test."""
    from chain.services import outbox_drain_trigger
    from notifications.services import notifications_trigger
    from tickets.hooks import unregister_event_hook
    from tickets.realtime import publish_event

    for hook in (outbox_drain_trigger, notifications_trigger, publish_event):
        unregister_event_hook(hook)


def start_chain_node():
    from django.conf import settings

    from chain import keys
    from tests.chain.cometbft_node import FakeNode, NodeServer

    node = FakeNode(
        chain_id=settings.VE_CHAIN_ID,
        address=keys.relayer_address(),
        public_key=keys.signer_public_key(),
    )
    server = NodeServer(node).__enter__()
    os.environ["VE_CHAIN_COMETBFT_RPC_URL"] = settings.VE_CHAIN_COMETBFT_RPC_URL = server.url
    return server


def anchored_count() -> int:
    from chain.models import OutboxEntry

    return OutboxEntry.objects.filter(state=OutboxEntry.State.ANCHORED).count()


def verify_runs(runs: int, label: str, expected: set[str]) -> tuple[list[float], int, list[str]]:
    """Run verify_chain `runs` times; (durations, runs with anchoring under way, unexpected outcomes)."""
    from chain.verification import verify_chain

    durations, overlapping, wrong = [], 0, []
    events = []
    with_pending = with_late = 0  # runs whose view held unanchored events; runs that met newer ones
    for number in range(1, runs + 1):
        before = anchored_count()
        started = time.perf_counter()
        report = verify_chain()
        durations.append(time.perf_counter() - started)
        overlapping += anchored_count() > before
        events.append(report.events)
        with_pending += report.pending > 0
        with_late += getattr(report, "written_meanwhile", 0) > 0  # (absent before #25's fix)
        found = {f"{finding.ticket} seq {finding.seq} [{finding.kind}]" for finding in report.findings}
        if found != expected:
            lines = [f"run {number}: {report.summary()}; unexpected {sorted(found - expected)}"]
            lines += [f"  {finding}" for finding in report.findings]
            lines += [f"  not reported: {item}" for item in sorted(expected - found)]
            print("\n".join(f"  ! {line}" for line in lines), flush=True)
            wrong += lines
        if number % 10 == 0:
            print(f"  {label}: {number} runs, last {report.summary()}", flush=True)
    print(
        f"{label}: {runs} runs, {sum(1 for line in wrong if line.startswith('run '))} wrong; "
        f"events per run {min(events)}..{max(events)}; anchoring under way during {overlapping} runs, "
        f"{with_pending} with pending events, {with_late} with events written while verifying; "
        f"run time p50 {statistics.median(durations) * 1000:.0f} ms, max {max(durations) * 1000:.0f} ms",
        flush=True,
    )
    return durations, overlapping, wrong


def tamper() -> set[str]:
    """Rewrite one anchored comment and forge a receipt for an event never sent; what must be reported."""
    from django.db import transaction
    from django.utils import timezone

    from chain.models import OutboxEntry
    from tickets import services
    from tickets.models import Comment, TicketEvent

    customer, _provider, deployments = parties()
    with transaction.atomic():  # the writers drain all the time: the row is forged before they can see it
        forged = services.ticket_create(
            actor=customer,
            deployment_id=deployments[0].lease_id,
            subject="Receipt without a tx",
            description="Never sent.",
        )
        OutboxEntry.objects.filter(ticket=forged).update(
            state=OutboxEntry.State.ANCHORED, tx_hash="AB" * 32, height=10**9, anchored_at=timezone.now()
        )
    event = (
        TicketEvent.objects.filter(kind="new_comment", outbox__state=OutboxEntry.State.ANCHORED)
        .select_related("ticket")
        .order_by("id")
        .first()
    )
    assert event is not None
    Comment.objects.filter(pk=event.data["comment_id"]).update(body="Rewritten behind the services' back")
    label = f"{event.ticket.display_number} ({event.ticket_id})"
    return {
        f"{label} seq {event.seq} [content_mismatch]",
        f"{forged.display_number} ({forged.pk}) seq 1 [missing_from_ledger]",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("local", "cometbft"), default="local")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tamper-runs", type=int, default=20)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=4.0, help="events/s per writer (the ledger grows)")
    parser.add_argument("--warmup-events", type=int, default=300, help="anchored before the first run")
    parser.add_argument("--writer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer is not None:
        return writer(args.writer, args.stop_file, args.rate)

    with tempfile.TemporaryDirectory(prefix="verifybench-") as tmp:
        workdir = Path(tmp)
        env = configure(workdir, args.backend)
        import django

        django.setup()
        recreate_database()
        from django.core.management import call_command
        from django.db import connection

        connection.close()
        call_command("migrate", verbosity=0)
        without_after_commit_hooks()  # this process writes too: the forged ticket
        make_world()
        node = start_chain_node() if args.backend == "cometbft" else None
        if node is not None:
            env["VE_CHAIN_COMETBFT_RPC_URL"] = node.url
        stop_file = workdir / "stop"
        writers = [
            subprocess.Popen(
                [sys.executable, __file__, "--writer", str(i), "--stop-file", str(stop_file)],
                cwd=ROOT,
                env={**os.environ, **env},
            )
            for i in range(args.writers)
        ]
        started = time.monotonic()
        try:
            while anchored_count() < args.warmup_events:
                if any(w.poll() is not None for w in writers):
                    print("a writer ended early")
                    return 1
                time.sleep(0.5)
            print(
                f"backend {args.backend}, {args.writers} writer processes; {anchored_count()} events anchored "
                f"after {time.monotonic() - started:.0f} s of warm-up",
                flush=True,
            )
            first = anchored_count()
            _, _, wrong = verify_runs(args.runs, "verify_chain during the load", set())
            expected = tamper()
            _, _, missed = verify_runs(
                args.tamper_runs, "with a rewritten comment and a forged receipt", expected
            )
            load_seconds = time.monotonic() - started
            anchored_meanwhile = anchored_count() - first
        finally:
            stop_file.touch()
            for w in writers:
                w.wait(timeout=60)
            if node is not None:
                node.stop()
        print(
            f"load: {anchored_meanwhile} events anchored during the runs "
            f"({anchored_meanwhile / load_seconds:.1f}/s over the whole bench)"
        )
    return 1 if wrong or missed else 0


if __name__ == "__main__":
    sys.exit(main())
