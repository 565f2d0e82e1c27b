"""A real Celery worker (with its beat) delivers: webhooks queued by committed events reach a real HTTP
receiver, verified by svix, through five failures, every event once, in order per ticket; emails leave
the worker for a real SMTP server after their digest window, never from the request."""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from notifications.models import PendingEmail, WebhookDelivery
from tests.conftest import Apis, World
from tests.notifications.receivers import SmtpServer, WebhookReceiver
from tests.system.processes import ROOT, celery_worker_command, stop_process
from tickets import services

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(tmp_path: Path, smtp_server: SmtpServer, settings) -> Iterator[subprocess.Popen]:
    settings.VE_EMAIL_DIGEST_WINDOW_SECONDS = 1.0
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no tasks left over from other tests
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],  # the test database, where the tests commit
        "VE_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2,0.2,0.2",
        "VE_WEBHOOK_SWEEP_SECONDS": "0.5",
        "VE_EMAIL_SWEEP_SECONDS": "0.5",
        "VE_EMAIL_DIGEST_WINDOW_SECONDS": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        celery_worker_command("--beat", "--schedule", str(tmp_path / "beat-schedule"), "--pool=solo"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    stop_process(process)
    log.close()


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_celery_worker_delivers_webhooks_through_failures_and_sends_email_after_the_window(
    world: World, apis: Apis, worker: subprocess.Popen, smtp_server: SmtpServer
) -> None:
    receiver = WebhookReceiver(behaviour=lambda n: 500 if n < 5 else 200)
    try:
        response = apis.provider_a.post(
            "/api/v1/webhooks", {"url": receiver.url(), "event_types": ["ticket_created", "new_comment"]}
        )
        assert response.status_code == 201
        receiver.secrets.append(response.json()["secret"])
        tickets = []
        for n in range(3):
            ticket = world.open_ticket(subject=f"Worker ticket {n}")
            for m in range(3):
                services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"reply {n}.{m}")
            tickets.append(ticket)
        # One digest per ticket for the provider member (the new ticket and three replies).
        assert PendingEmail.objects.count() == 3
        wait_until(lambda: len(receiver.accepted()) >= 12)
        wait_until(lambda: not WebhookDelivery.objects.exclude(state="delivered").exists())

        assert sum(1 for r in receiver.requests if r.status == 500) == 5
        assert all(r.verified for r in receiver.requests)
        ids = [r.id for r in receiver.accepted()]
        assert len(ids) == len(set(ids)) == 12
        per_ticket = defaultdict(list)
        for request in receiver.accepted():
            per_ticket[request.payload["ticket_id"]].append(request.payload["seq"])
        assert dict(per_ticket) == {str(t.pk): [1, 2, 3, 4] for t in tickets}

        # The provider member's digests (one per ticket: the new ticket and three replies) leave the worker.
        smtp_server.wait_for(3, timeout=30)
        assert sorted(r for rcpts, _ in smtp_server.messages for r in rcpts) == ["pa-member@example.test"] * 3
        wait_until(lambda: not PendingEmail.objects.exclude(state="sent").exists(), timeout=10)
        # Sent by the worker once each window had closed, not when the events were written.
        assert all(row.sent_at >= row.due_at for row in PendingEmail.objects.all())
        assert all(
            "reply" in m.get_body(preferencelist=("plain",)).get_content() for _, m in smtp_server.messages
        )
    finally:
        receiver.close()
