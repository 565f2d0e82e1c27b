"""`make run`'s demo providers answer log fetches: the launcher serves `server.demo_provider` and `seed_demo`
points the demo providers at it, so the automatic fetch of a technical ticket attaches real (demo) logs,
with their secret redacted, instead of retrying against hosts that do not exist."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from providers.models import ProviderAccount
from server import demo_provider
from tickets import tasks
from tickets.models import Attachment, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_endpoint() -> Iterator[str]:
    server = demo_provider.start(port=0)
    yield "http://{}:{}".format(*server.server_address[:2])
    server.shutdown()
    server.server_close()


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_the_endpoint_answers_as_a_provider_api_does(demo_endpoint: str) -> None:
    lease = "ve1owner/1042/1/1"
    answer = requests.get(
        f"{demo_endpoint}/nimbus/api/v1/deployments/{requests.utils.quote(lease, safe='')}/logs",
        params={"tail": 5},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    lines = answer.text.splitlines()
    assert len(lines) == 5
    assert lease in lines[0]
    assert "nimbus" in lines[0]
    assert requests.get(f"{demo_endpoint}/nimbus/api/v1/other", timeout=5).status_code == 404
    bad_tail = requests.get(
        f"{demo_endpoint}/nimbus/api/v1/deployments/x/logs", params={"tail": "many"}, timeout=5
    )
    assert bad_tail.status_code == 400


def test_a_demo_technical_ticket_gets_its_logs_with_the_secret_redacted(demo_endpoint: str, settings) -> None:
    settings.VE_DEMO_PROVIDER_URL = demo_endpoint
    seed()
    assert set(ProviderAccount.objects.values_list("api_endpoint", flat=True)) == {
        f"{demo_endpoint}/nimbus",
        f"{demo_endpoint}/atlas",
    }
    ticket = Ticket.objects.exclude(status=Ticket.Status.CLOSED).order_by("created_at").first()
    assert tasks.deployment_logs_fetch_task.apply(args=[str(ticket.id)]).successful()

    event = TicketEvent.objects.filter(ticket=ticket, kind="logs_fetched").latest("seq")
    assert event.is_internal
    attachment = Attachment.objects.get(pk=event.data["attachment_id"])
    assert attachment.is_internal
    console = Client()
    console.force_login(get_user_model().objects.get(username="support"))
    download = console.get(f"/api/v1/attachments/{attachment.id}")
    assert download.status_code == 200
    text = b"".join(download.streaming_content).decode()
    assert ticket.deployment.lease_id in text
    assert "out of memory" in text
    assert "demo-db-password" not in text
    assert "postgres://app:[REDACTED]@db" in text


def test_a_demo_seeded_earlier_follows_this_run_s_endpoint(demo_endpoint: str, settings) -> None:
    settings.VE_DEMO_PROVIDER_URL = ""
    seed()
    assert ProviderAccount.objects.filter(api_endpoint__endswith=".provider.example").count() == 2
    settings.VE_DEMO_PROVIDER_URL = demo_endpoint
    assert "nothing loaded" in seed("--if-empty")
    assert sorted(ProviderAccount.objects.values_list("api_endpoint", flat=True)) == [
        f"{demo_endpoint}/atlas",
        f"{demo_endpoint}/nimbus",
    ]
