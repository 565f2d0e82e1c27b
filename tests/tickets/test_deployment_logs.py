"""Deployment logs, fetched from a real local HTTP server playing the provider's log endpoint
(`GET {api}/api/v1/deployments/{lease_id}/logs?tail=200`): automatically when a technical ticket opens
and when a ticket is escalated (by a caller or an SLA breach), on demand, and against a provider that is
slow, trickles bytes, fails and then recovers, refuses, sends too much, or leaks secrets.

The Celery task runs in-process (`apply`: the real task, retries included, without a broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core.cache import cache
from django.utils import timezone

from providers import provider_api
from tests.conftest import Apis, World
from tickets import services, tasks
from tickets.models import Attachment, Ticket, TicketEvent

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


@dataclass
class Provider:
    """The provider's log endpoint: `answer(n)` decides the n-th response (status, headers, body chunks and
    a pause before each chunk)."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    answer: Callable[[int], tuple[int, list[bytes], float]] = lambda n: (200, [b"ok\n"], 0.0)


class _Endpoint(BaseHTTPRequestHandler):
    provider: Provider

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.provider.requests.append({"path": unquote(parts.path), "query": parse_qs(parts.query)})
        status, chunks, pause = self.provider.answer(len(self.provider.requests))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(sum(len(chunk) for chunk in chunks)))
        self.end_headers()
        try:
            for chunk in chunks:
                time.sleep(pause)
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on us, as it should

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider(world: World) -> Iterator[Provider]:
    state = Provider()
    handler = type("Endpoint", (_Endpoint,), {"provider": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    world.provider_a.api_endpoint = state.url
    world.provider_a.save(update_fields=["api_endpoint"])
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetches_run_now(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a worker does with a queued fetch, done when it is queued: the real task, in-process."""
    ran: list[str] = []

    def run(ticket_id: str) -> None:
        ran.append(ticket_id)
        tasks.deployment_logs_fetch_task.apply(args=[ticket_id])

    monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", run)
    monkeypatch.setattr(
        tasks.deployment_logs_queue_task,
        "delay",
        lambda ids: tasks.deployment_logs_queue_task.apply(args=[ids]),
    )
    return ran


def logs_of(ticket_id: object) -> list[Attachment]:
    return list(
        Attachment.objects.filter(ticket_id=ticket_id, uploader_kind="system").order_by("uploaded_at")
    )


def fetch(ticket: Ticket):
    """The task, as a worker runs it (with its retries)."""
    return tasks.deployment_logs_fetch_task.apply(args=[str(ticket.id)])


def stored_text(apis: Apis, attachment: Attachment) -> str:
    response = apis.provider_a.get(f"/api/v1/attachments/{attachment.id}")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


class TestWhenLogsAreFetched:
    def test_a_technical_ticket_fetches_its_logs(
        self,
        world: World,
        apis: Apis,
        provider: Provider,
        fetches_run_now: list[str],
        django_capture_on_commit_callbacks,
    ) -> None:
        provider.answer = lambda n: (200, [b"2026-12-02T04:00:00Z OOMKilled\n"], 0.0)
        with django_capture_on_commit_callbacks(execute=True):
            created = apis.alice.post(
                TICKETS,
                {
                    "deployment_id": world.alice_deployment.lease_id,
                    "subject": "Crash loop",
                    "description": "OOM",
                    "category": "technical",
                },
            )
        assert created.status_code == 201
        ticket_id = created.json()["id"]
        assert fetches_run_now == [ticket_id]
        (request,) = provider.requests
        assert request["path"] == f"/api/v1/deployments/{world.alice_deployment.lease_id}/logs"
        assert request["query"] == {"tail": ["200"]}
        (attachment,) = logs_of(ticket_id)
        assert attachment.is_internal
        assert stored_text(apis, attachment) == "2026-12-02T04:00:00Z OOMKilled\n"
        # Announced by its (internal) event; the customer sees neither the event nor the file.
        staff = apis.provider_a.get(f"{TICKETS}/{ticket_id}/events").json()
        assert [e["data"]["filename"] for e in staff if e["type"] == "logs_fetched"] == [attachment.filename]
        assert "logs_fetched" not in {
            e["type"] for e in apis.alice.get(f"{TICKETS}/{ticket_id}/events").json()
        }
        assert apis.alice.get(f"/api/v1/attachments/{attachment.id}").status_code == 404

    def test_other_categories_do_not(
        self, world: World, provider: Provider, fetches_run_now: list[str], django_capture_on_commit_callbacks
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            world.open_ticket(category="billing")
        assert fetches_run_now == []
        assert provider.requests == []

    def test_an_escalation_fetches_them(
        self,
        world: World,
        apis: Apis,
        provider: Provider,
        fetches_run_now: list[str],
        django_capture_on_commit_callbacks,
    ) -> None:
        ticket = world.open_ticket(category="general")
        with django_capture_on_commit_callbacks(execute=True):
            response = apis.alice.post(f"{TICKETS}/{ticket.id}/escalate", {"reason": "No answer"})
        assert response.status_code == 200
        assert fetches_run_now == [str(ticket.id)]
        assert len(logs_of(ticket.id)) == 1

    def test_an_sla_breach_escalation_fetches_them(
        self, world: World, provider: Provider, fetches_run_now: list[str], django_capture_on_commit_callbacks
    ) -> None:
        ticket = world.open_ticket(category="general", priority="critical")
        with django_capture_on_commit_callbacks(execute=True):
            result = services.sla_sweep(now=ticket.sla_first_response_due)
        assert result.escalations == 1
        assert fetches_run_now == [str(ticket.id)]
        assert len(logs_of(ticket.id)) == 1

    def test_on_demand_and_at_most_once_a_minute(
        self,
        world: World,
        apis: Apis,
        provider: Provider,
        fetches_run_now: list[str],
        django_capture_on_commit_callbacks,
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            ticket = world.open_ticket(category="technical")
            again = apis.provider_a.post(f"{TICKETS}/{ticket.id}/logs")  # within the minute: the same logs
        assert again.status_code == 202
        assert fetches_run_now == [str(ticket.id)]
        assert len(provider.requests) == 1


class TestAgainstAnAwkwardProvider:
    def test_a_failing_provider_is_retried_until_it_answers(self, world: World, provider: Provider) -> None:
        provider.answer = lambda n: (503, [b"busy"], 0.0) if n <= 2 else (200, [b"third time lucky\n"], 0.0)
        ticket = world.open_ticket(category="general")
        assert fetch(ticket).successful()
        assert len(provider.requests) == 3
        (attachment,) = logs_of(ticket.id)
        assert attachment.size == len(b"third time lucky\n")

    def test_a_provider_that_keeps_failing_gives_up_after_the_retries(
        self, world: World, provider: Provider
    ) -> None:
        provider.answer = lambda n: (502, [b"bad gateway"], 0.0)
        ticket = world.open_ticket(category="general")
        outcome = fetch(ticket)
        assert outcome.failed()
        assert isinstance(outcome.result, provider_api.ProviderUnavailable)
        assert len(provider.requests) == 1 + tasks.deployment_logs_fetch_task.max_retries
        assert logs_of(ticket.id) == []
        assert not TicketEvent.objects.filter(ticket=ticket, kind="logs_fetched").exists()

    def test_a_slow_provider_times_out(
        self, world: World, provider: Provider, monkeypatch: pytest.MonkeyPatch, settings
    ) -> None:
        settings.VE_PROVIDER_API_READ_TIMEOUT_SECONDS = 0.3
        monkeypatch.setattr(tasks.deployment_logs_fetch_task, "max_retries", 1)
        provider.answer = lambda n: (200, [b"too late\n"], 2.0)  # nothing for 2 s after the headers
        ticket = world.open_ticket(category="general")
        started = time.monotonic()
        outcome = fetch(ticket)
        assert outcome.failed()
        assert isinstance(outcome.result, provider_api.ProviderUnavailable)
        assert len(provider.requests) == 2
        assert time.monotonic() - started < 4 * 2.0  # gave up instead of waiting the provider out
        assert logs_of(ticket.id) == []

    def test_a_trickling_provider_hits_the_deadline(self, world: World, provider: Provider, settings) -> None:
        settings.VE_PROVIDER_API_FETCH_DEADLINE_SECONDS = 0.5
        provider.answer = lambda n: (200, [b"x"] * 40, 0.05)  # a byte every 50 ms: never a read timeout
        ticket = world.open_ticket(category="general")
        with pytest.raises(provider_api.ProviderUnavailable, match="too slow"):
            services.deployment_logs_fetch(ticket_id=ticket.id)
        assert logs_of(ticket.id) == []

    def test_a_refusal_is_recorded_without_retrying(
        self, world: World, apis: Apis, provider: Provider
    ) -> None:
        provider.answer = lambda n: (404, [b"no such lease"], 0.0)
        ticket = world.open_ticket(category="general")
        assert fetch(ticket).successful()
        assert len(provider.requests) == 1
        (attachment,) = logs_of(ticket.id)
        assert stored_text(apis, attachment) == "[logs unavailable: Provider refused the request (404).]\n"

    def test_a_huge_answer_is_cut_at_the_cap_and_says_so(
        self, world: World, apis: Apis, provider: Provider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(provider_api, "MAX_LOG_BYTES", 256 * 1024)
        line = b"2026-12-02T04:00:00Z GET /healthz 200\n"
        # A private key straddles the cap: its END line is never read, its body must not be stored.
        key = (
            b"-----BEGIN RSA PRIVATE KEY-----\n"
            + b"MIIEpAIBAAKCAQEA7bq" * 600
            + b"\n-----END RSA PRIVATE KEY-----\n"
        )
        body = line * (250 * 1024 // len(line)) + key + line * 100_000
        provider.answer = lambda n: (200, [body[i : i + 65536] for i in range(0, len(body), 65536)], 0.0)
        ticket = world.open_ticket(category="general")
        assert fetch(ticket).successful()
        (attachment,) = logs_of(ticket.id)
        assert attachment.size <= 256 * 1024
        text = stored_text(apis, attachment)
        assert text.startswith(line.decode())
        assert "MIIEpAIBAAKCAQEA7bq" not in text
        assert text.endswith("[REDACTED PRIVATE KEY]")
        event = TicketEvent.objects.get(ticket=ticket, kind="logs_fetched")
        assert event.data["truncated"] is True
        presented = apis.provider_a.get(f"{TICKETS}/{ticket.id}/events").json()
        assert [e["data"]["truncated"] for e in presented if e["type"] == "logs_fetched"] == [True]

    def test_secrets_are_redacted_before_anything_is_stored(
        self, world: World, apis: Apis, provider: Provider
    ) -> None:
        secrets = {
            "password=hunter2": "hunter2",
            'DB_PASSWORD="s3cr3t-pw"': "s3cr3t-pw",
            "Authorization: Bearer abc.def-ghi": "abc.def-ghi",
            "api_key: 7f9c2ba4e88f827d61604550760585a3": "7f9c2ba4e88f827d61604550760585a3",
            "AWS key AKIAIOSFODNN7EXAMPLE in env": "AKIAIOSFODNN7EXAMPLE",
            "connecting to postgres://app:pg-pass-42@db:5432/app": "pg-pass-42",
            "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U": (
                "eyJzdWIiOiIxMjM0NTY3ODkwIn0"
            ),
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----": (
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
            ),
        }
        body = "\n".join(f"2026-12-02T04:00:0{i}Z {line}" for i, line in enumerate(secrets)) + "\n"
        provider.answer = lambda n: (200, [body.encode()], 0.0)
        ticket = world.open_ticket(category="general")
        assert fetch(ticket).successful()
        (attachment,) = logs_of(ticket.id)
        text = stored_text(apis, attachment)
        for secret in secrets.values():
            assert secret not in text
        assert text.count("[REDACTED") >= len(secrets)
        assert "2026-12-02T04:00:04Z AWS key [REDACTED AWS KEY] in env" in text
        assert TicketEvent.objects.get(ticket=ticket, kind="logs_fetched").data["truncated"] is False


class TestLostFetches:
    """The queued task can be lost (Redis restarted empty, a worker killed holding its retry): the request
    stays written on the ticket and the beat sweep queues it again."""

    @pytest.fixture
    def lost_then_run(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """The first fetch queued for a ticket is lost on the way to the broker; later ones run."""
        seen: set[str] = set()
        ran: list[str] = []

        def deliver(ticket_id: str) -> None:
            if ticket_id not in seen:
                seen.add(ticket_id)
                return
            ran.append(ticket_id)
            tasks.deployment_logs_fetch_task.apply(args=[ticket_id])

        monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", deliver)
        return ran

    def test_the_sweep_queues_a_lost_fetch_again(
        self,
        world: World,
        provider: Provider,
        lost_then_run: list[str],
        settings,
        django_capture_on_commit_callbacks,
    ) -> None:
        settings.VE_LOGS_REQUEST_RESCUE_SECONDS = 900
        with django_capture_on_commit_callbacks(execute=True):
            ticket = world.open_ticket(category="technical")
        assert logs_of(ticket.id) == []
        requested = Ticket.objects.get(pk=ticket.pk).logs_requested_at
        assert requested is not None
        # Not before the task's own retries could still bring them.
        assert services.logs_requests_sweep(now=requested + timezone.timedelta(seconds=60)) == 0
        cache.clear()  # the one-minute cooldown of the lost request has passed
        with django_capture_on_commit_callbacks(execute=True):
            assert services.logs_requests_sweep(now=requested + timezone.timedelta(seconds=901)) == 1
        assert lost_then_run == [str(ticket.id)]
        assert len(logs_of(ticket.id)) == 1
        assert Ticket.objects.get(pk=ticket.pk).logs_requested_at is None
        cache.clear()
        assert services.logs_requests_sweep(now=requested + timezone.timedelta(seconds=2000)) == 0

    def test_closed_and_day_old_requests_are_given_up(
        self, world: World, lost_then_run: list[str], django_capture_on_commit_callbacks
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            old = world.open_ticket(category="technical")
            closed = world.open_ticket(category="technical")
        services.ticket_transition(actor=world.alice, ticket_id=closed.pk, status="closed")
        requested = Ticket.objects.get(pk=old.pk).logs_requested_at
        assert services.logs_requests_sweep(now=requested + timezone.timedelta(days=2)) == 0
        assert not Ticket.objects.filter(logs_requested_at__isnull=False).exists()
        assert lost_then_run == []
