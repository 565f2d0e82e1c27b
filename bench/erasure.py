"""Erasure time for a person with many tickets (issue 31's figure: 1,000 tickets).

On a database of its own (`virtengine_erasurebench`), one customer gets `--tickets` tickets, each with their
subject and description, `--comments` comments of theirs and one provider reply (events, outbox rows,
search documents: everything the services write), plus one attachment of theirs on every tenth ticket. The
events are anchored first (`outbox_drain` into a local ledger of the bench's own), so every one of them has
a shred key to destroy. Then `privacy.erasure.person_erase` is timed, end to end (tombstones, event data,
shred keys, file keys, webhook bodies, the `content_erased` events with their outbox rows and search
documents, identity), and `verify_chain` is run afterwards to check the result (it must pass and report the
erased events).

    .venv/bin/python bench/erasure.py [--tickets 1000] [--comments 2] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_erasurebench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
# The ledger and files live as long as the bench's database (kept between runs), so that verify_chain finds
# every earlier run's events in the ledger too.
_STATE = str(ROOT / ".artifacts" / f"erasurebench-{os.environ['DATABASE_NAME']}")
os.environ.setdefault("DJANGO_MEDIA_ROOT", f"{_STATE}/media")
os.environ["VE_CHAIN_BACKEND"] = "local"
os.environ["VE_CHAIN_LEDGER_PATH"] = f"{_STATE}/ledger/ledger.jsonl"
os.environ["VE_CHAIN_NODE_KEY_PATH"] = f"{_STATE}/ledger/node.key"
os.environ["VE_CHAIN_SUPPORT_KEY_PATH"] = f"{_STATE}/chain/support.key"
os.environ["VE_CHAIN_SIGNER_KEY_PATH"] = f"{_STATE}/chain/signer.key"

from bench.common import ensure_database, parse_args  # noqa: E402 - after sys.path is set


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--comments", type=int, default=2)
    args = parse_args(parser, {"tickets": 20, "comments": 1})

    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        from bench.common import bench_environment

        bench_environment(database=os.environ["DATABASE_NAME"], broker_db=10, cache_prefix="ves-erasurebench")
    import django

    django.setup()
    ensure_database()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    from chain.services import outbox_drain
    from chain.verification import verify_chain
    from privacy.erasure import person_erase
    from tests import factories
    from tickets import services
    from tickets.files.upload import ReceivedUpload
    from tickets.models import TicketEvent

    # No worker runs here: after-commit tasks go to a broker nobody reads, and emails are never due.
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False, STORAGES={**settings.STORAGES}):
        services.sla_policies_ensure()
        provider = factories.ProviderFactory()
        member = factories.provider_member(provider)
        person = factories.customer()
        deployment = factories.DeploymentFactory(owner_address=person.address, provider=provider)
        agent = factories.support(f"bench-agent-{os.getpid()}")
        started = time.perf_counter()
        for number in range(args.tickets):
            attachment_ids = []
            if number % 10 == 0:
                received = ReceivedUpload.from_stream(
                    io.BytesIO(b"private trace line\n" * 100), "trace.log", content_type="text/plain"
                )
                attachment_ids.append(str(services.attachment_upload(actor=person, upload=received).pk))
            ticket = services.ticket_create(
                actor=person,
                deployment_id=deployment.lease_id,
                subject=f"Private subject {number}",
                description=f"Private description {number}: host db{number}.corp.internal",
                attachment_ids=attachment_ids,
            )
            for comment in range(args.comments):
                services.comment_add(
                    actor=person, ticket_id=ticket.pk, body=f"My private words {number}/{comment}"
                )
            services.comment_add(actor=member, ticket_id=ticket.pk, body=f"Provider reply {number}")
        seeded = time.perf_counter() - started
        while outbox_drain().anchored:
            pass
        events = TicketEvent.objects.filter(ticket__customer_address=person.address).count()
        print(
            f"seeded {args.tickets} tickets of one person, {events} events (anchored), "
            f"{args.tickets // 10 + (args.tickets % 10 > 0)} files, in {seeded:.1f} s"
        )

        started = time.perf_counter()
        erasure = person_erase(actor=agent, address=person.address, reason="bench", confirm=person.address)
        elapsed = time.perf_counter() - started
        print(
            f"erasure of a person with {erasure.tickets_count} tickets: {elapsed:.2f} s "
            f"({erasure.events_count} events erased, {erasure.attachments_count} files, "
            f"{elapsed / max(1, erasure.tickets_count) * 1000:.1f} ms per ticket)"
        )
        while outbox_drain().anchored:
            pass
        report = verify_chain()
        print(f"verify_chain after the erasure: {report.summary()}")
        if not report.ok or len(report.erased) != erasure.events_count:
            for finding in report.findings[:10]:
                print(f"  {finding}")
            sys.exit("verification failed after the erasure")


if __name__ == "__main__":
    main()
