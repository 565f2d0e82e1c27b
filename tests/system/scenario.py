"""What the fault tests and `bench/soak.py` share: the mixed load with its listeners, settling the system
before the books are checked, a provider log endpoint that can hang."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.utils import timezone

from chain.models import OutboxEntry
from notifications.models import PendingEmail, WebhookDelivery
from tests.system import books as books_check
from tests.system.cluster import Installation
from tests.system.load import Listener, Load, Servers, wait_until
from tests.system.load import World as LoadWorld
from tickets.models import TicketEvent


@dataclass
class Run:
    load: Load
    listeners: list[Listener]
    listeners_caught_up_in: float = 0.0  # seconds after the outbox and notifications were done

    def stop(self) -> None:
        self.load.stop()


def start_load(installation: Installation, parties: LoadWorld, *, portal_pages: bool = True) -> Run:
    """The mixed load, then listeners: the first ticket's customer, provider and support on its socket, and
    every party's stream, each a party of its own."""
    servers = Servers(installation.http_urls)
    load = Load(parties, servers, portal_pages=portal_pages).start()
    assert wait_until(lambda: len(load.tickets) >= 2, timeout=20), load.recorder.summary()
    watched, watcher = load.tickets[0]
    provider = next(p for p in parties.providers if p.provider_address == load.provider_of[watched])
    agent = parties.support[0]
    listeners = [
        Listener("customer-ticket", watcher, servers, ticket_id=watched),
        Listener("provider-ticket", provider, servers, ticket_id=watched),
        Listener("support-ticket", agent, servers, ticket_id=watched),
        *(Listener(f"{c.name}-stream", c, servers) for c in parties.customers),
        *(Listener(f"{p.name}-stream", p, servers) for p in parties.providers),
        *(Listener(f"{s.name}-stream", s, servers) for s in parties.support),
    ]
    for listener in listeners:
        listener.start()
    return Run(load, listeners)


def all_anchored() -> bool:
    pending = OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).exists()
    return not pending and not TicketEvent.objects.filter(outbox__isnull=True).exists()


def oldest_unanchored_age() -> float:
    """Seconds the oldest event not yet anchored has waited (0 when none waits)."""
    oldest = (
        OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).order_by("event__created_at").first()
    )
    return 0.0 if oldest is None else (timezone.now() - oldest.event.created_at).total_seconds()


def all_notified() -> bool:
    open_deliveries = WebhookDelivery.objects.exclude(state=WebhookDelivery.State.DELIVERED)
    open_emails = PendingEmail.objects.exclude(
        state__in=[PendingEmail.State.SENT, PendingEmail.State.SKIPPED]
    )
    return not open_deliveries.exists() and not open_emails.exists()


def settle(run: Run, *, timeout: float = 40) -> books_check.Books:
    """Stop the load, wait until every event is anchored and notified and every listener has caught up,
    then check the books."""
    run.stop()
    assert wait_until(all_anchored, timeout=timeout, interval=0.5), "the outbox did not drain after recovery"
    assert wait_until(all_notified, timeout=timeout, interval=0.5), "webhooks or emails still undelivered"
    # Every listener has everything it may see (or the books will say what it lacks).
    started = time.monotonic()
    wait_until(
        lambda: not any(books_check.behind(listener) for listener in run.listeners), timeout=30, interval=0.5
    )
    run.listeners_caught_up_in = time.monotonic() - started
    for listener in run.listeners:
        listener.stop()
    return books_check.check_books(run.listeners)


def running_drain(worker_log: str) -> bool:
    """A worker's log shows an outbox drain task received and not yet finished."""
    lines = [line for line in worker_log.splitlines() if "chain.tasks.outbox_drain_task[" in line]
    received = sum("received" in line for line in lines)
    finished = sum(("succeeded" in line or "raised" in line) for line in lines)
    return received > finished


class _LogHandler(BaseHTTPRequestHandler):
    hanging: threading.Event
    requests: list[float]

    def do_GET(self) -> None:
        self.requests.append(time.monotonic())
        while self.hanging.is_set():
            time.sleep(0.1)
        body = b"OOMKilled\n"
        with contextlib.suppress(OSError):  # the caller gave up waiting (its read timeout)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class LogEndpoint:
    """A provider's deployment-log endpoint on 127.0.0.1 that answers at once, or, while `hanging` is set,
    accepts the request and says nothing."""

    def __init__(self) -> None:
        self.hanging = threading.Event()
        self.requests: list[float] = []
        handler = type("Logs", (_LogHandler,), {"hanging": self.hanging, "requests": self.requests})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.hanging.clear()
        self._server.shutdown()
