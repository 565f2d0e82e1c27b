"""A real Celery worker and beat, on their own Redis, against the test database: a ticket left unanswered
past its first-response target gets its warning, its breach and its escalation to support, its deployment's
logs fetched from the provider, and its events anchored — without anyone calling a function.

Beat runs the production schedule (`CELERY_BEAT_SCHEDULE`), with the SLA sweep's period shortened by its
setting so that the test does not wait 30 s for the first tick."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from chain.models import OutboxEntry
from server.launcher import WORKER_QUEUES
from tests.conftest import FrozenClock, World
from tests.system.processes import CeleryProcess, RedisServer
from tests.system.scenario import LogEndpoint
from tickets.models import Assignment, Ticket, TicketEvent

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider_endpoint(world: World) -> Iterator[str]:
    logs = LogEndpoint()
    world.provider_a.api_endpoint = logs.url
    world.provider_a.save(update_fields=["api_endpoint"])
    yield logs.url
    logs.stop()


@pytest.fixture
def celery(tmp_path: Path) -> Iterator[list[CeleryProcess]]:
    redis = RedisServer(tmp_path / "redis")  # a broker of its own: no message from another test is waiting
    redis.start()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],  # the test database, where the fixtures committed
        "REDIS_URL": redis.url,
        "VE_SLA_SWEEP_SECONDS": "1",
        "VE_CHAIN_SWEEP_SECONDS": "1",
        "VE_CHAIN_LEDGER_PATH": str(tmp_path / "ledger" / "ledger.jsonl"),
        "VE_CHAIN_NODE_KEY_PATH": str(tmp_path / "ledger" / "node.key"),
        "VE_CHAIN_SUPPORT_KEY_PATH": str(tmp_path / "chain" / "support.key"),
        "VE_CHAIN_SIGNER_KEY_PATH": str(tmp_path / "chain" / "signer.key"),
    }
    processes = [
        CeleryProcess(
            "worker",
            "-Q",
            WORKER_QUEUES,
            "-P",
            "threads",
            "-c",
            "4",
            env=env,
            log_path=tmp_path / "worker.log",
        ),
        CeleryProcess(
            "beat",
            "-s",
            str(tmp_path / "beat-schedule"),
            "--max-interval",
            "1",
            env=env,
            log_path=tmp_path / "beat.log",
        ),
    ]
    yield processes
    for process in processes:
        process.stop()
    redis.stop()


def wait_for(condition: Callable[[], bool], processes: list[CeleryProcess], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for process in processes:
            assert process.process.poll() is None, process.log()
        time.sleep(0.5)
    logs = "\n".join(process.log()[-4000:] for process in processes)
    raise AssertionError(f"not within {timeout} s\n{logs}")


def test_an_unanswered_ticket_is_breached_and_escalated_by_beat_and_the_worker(
    world: World, frozen_clock: FrozenClock, provider_endpoint: str, celery: list[CeleryProcess]
) -> None:
    # Opened 70 minutes ago at critical priority (first response due within 1 h), and nobody answered.
    real_now = frozen_clock.now
    frozen_clock.now = real_now - datetime.timedelta(minutes=70)
    ticket = world.open_ticket(priority="critical", category="general")
    frozen_clock.now = real_now

    def breached() -> bool:
        return TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").exists()

    wait_for(breached, celery)
    wait_for(lambda: TicketEvent.objects.filter(ticket=ticket, kind="logs_fetched").exists(), celery)
    events = list(TicketEvent.objects.filter(ticket=ticket).order_by("seq"))
    assert [(e.kind, e.actor_kind) for e in events[:4]] == [
        ("ticket_created", "customer"),
        ("sla_warning", "system"),
        ("sla_breached", "system"),
        ("assignment_change", "system"),
    ]
    assert events[2].data["target"] == "first_response"
    (history,) = Assignment.objects.filter(ticket=ticket)
    assert (history.to_kind, history.by_kind, history.reason) == (
        "support",
        "system",
        "SLA breach: first response",
    )
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee_kind == "support"
    assert ticket.sla_first_response_breached_at is not None
    # Exactly once, however many sweeps beat has run since.
    time.sleep(2.5)
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").count() == 1
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_warning").count() == 1
    # And anchored by the worker's outbox drain.
    wait_for(
        lambda: (
            not OutboxEntry.objects.filter(ticket=ticket).exclude(state=OutboxEntry.State.ANCHORED).exists()
        ),
        celery,
    )
