"""Every event kind × every party × every surface: the event presenter's description of an event is the same
on REST (`/events`, the detail's `history`), WebSocket replay and WebSocket live (per ticket and the
all-tickets stream), follows the kind's declared shape, and never carries what the party may not see.

The events are made the way callers make them: through the REST API (wallet, HMAC and session callers), the
Celery task that fetches deployment logs from a real local HTTP server playing the provider, and the SLA
sweep (as beat runs it, at a time past the ticket's resolution target)."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from accounts import hmac_signing
from config.asgi import application
from tests.api import Api
from tests.conftest import Apis, World
from tests.sockets import BROWSER, refused_with
from tickets import services, tasks
from tickets.models import Ticket, TicketEvent
from tickets.presenter import SHAPES, Audience

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

Kind = TicketEvent.Kind
# Words that only internal material contains: none of them may reach a customer, anywhere.
INTERNAL_MARKERS = ("INTERNAL-NOTE-7f3a", "internal-trace-7f3a", "provider-log-line-7f3a")


@pytest.fixture(autouse=True)
async def _close_worker_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


class _LogEndpoint(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"2026-12-02T04:00:00Z {INTERNAL_MARKERS[2]} password=hunter2\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider_log_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LogEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _session_cookie(user_id: int | None) -> bytes:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _socket(path: str, *, session_of: int | None = None, query: str = "") -> WebsocketCommunicator:
    headers = list(BROWSER)
    if session_of is not None:
        headers.append((b"cookie", await sync_to_async(_session_cookie)(session_of)))
    else:
        headers = []
    communicator = WebsocketCommunicator(application, f"{path}?{query}" if query else path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, (path, session_of, code)
    return communicator


async def _drain(communicator: WebsocketCommunicator, quiet: float = 1.5) -> list[dict[str, Any]]:
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(await communicator.receive_json_from(timeout=1))
    return [m for m in messages if m["type"] != "typing"]


def _keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys_anywhere(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys_anywhere(item)}
    return set()


def _make_every_kind(apis: Apis, world: World, provider_log_server: str) -> str:
    """One ticket with an event of every kind a caller can cause, made through the REST API."""
    world.provider_a.api_endpoint = provider_log_server
    world.provider_a.save(update_fields=["api_endpoint"])
    upload = apis.alice.upload("screen.txt", b"public trace\n", "text/plain").json()
    created = apis.alice.post(
        "/api/v1/tickets",
        {
            "deployment_id": world.alice_deployment.lease_id,
            "subject": "Pod crash-looping",
            "description": "OOMKilled after 5 minutes.",
            "category": "technical",
            "attachment_ids": [upload["id"]],
        },
    )
    assert created.status_code == 201, created.json()
    ticket = created.json()["id"]
    base = f"/api/v1/tickets/{ticket}"
    steps = [
        apis.provider_a.post(f"{base}/comments", {"content": "We are looking."}),
        apis.provider_a_member.post(
            f"{base}/comments",
            {
                "content": f"{INTERNAL_MARKERS[0]}: node n7 is flaky",
                "is_internal": True,
                "attachment_ids": [
                    apis.provider_a_member.upload(
                        f"{INTERNAL_MARKERS[1]}.txt", b"trace\n", "text/plain"
                    ).json()["id"]
                ],
            },
        ),
        apis.provider_a.patch(base, {"status": "in_progress"}),
        apis.alice.patch(base, {"priority": "critical"}),
        apis.alice.post(f"{base}/escalate", {"reason": "No answer for a day"}),
        apis.agent.post(
            f"{base}/assign",
            {"assignee_type": "support", "assignee_id": world.agent.user_id, "reason": "Mine"},
        ),
        apis.agent.post(f"{base}/assign", {"assignee_type": "provider", "reason": "Back to the provider"}),
        apis.alice.post(f"{base}/links", {"deployment_id": world.alice_second_deployment.lease_id}),
        apis.alice.delete(f"{base}/links", deployment_id=world.alice_second_deployment.lease_id),
        apis.provider_a.post(f"{base}/logs"),
    ]
    assert [step.status_code for step in steps] == [201, 201, 200, 200, 200, 200, 200, 201, 204, 202]
    # Support corrects the subject (the console's edit calls this service).
    services.ticket_edit(actor=world.agent, ticket_id=ticket, subject="Pods crash-loop (OOM)")
    # The sweep past the resolution target (the provider answered: first response is met): a warning
    # (internal), a breach (public) and the escalation it causes, by the system.
    due = Ticket.objects.get(pk=ticket).sla_resolution_due
    services.sla_sweep(now=due + datetime.timedelta(seconds=1))
    # Resolved, the customer rates it (a public event of its own).
    services.ticket_transition(actor=world.agent, ticket_id=ticket, status="resolved")
    rated = apis.alice.post(f"{base}/satisfaction", {"rating": 4, "comment": "Sorted in the end"})
    assert rated.status_code == 201, rated.json()
    return ticket


@pytest.fixture
def run_log_fetches_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's job, done when the request queues it (the task itself, fetching over real HTTP)."""
    monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", tasks.deployment_logs_fetch_task)


def _hmac_query(api: Api, path: str, raw_query: str = "") -> str:
    signer = api.signer
    return hmac_signing.hmac_query(signer.principal, signer.secret, "GET", path, raw_query, int(time.time()))


async def test_every_kind_reads_the_same_on_every_surface_and_leaks_nothing(
    world: World, apis: Apis, provider_log_server: str, run_log_fetches_now: None
) -> None:
    placeholder = await sync_to_async(world.open_ticket)()  # a ticket to open sockets on before ours exists
    del placeholder
    parties = {
        # name: (REST client, session user for sockets or None for the HMAC query, audience)
        "customer": (apis.alice, world.alice.user_id, Audience.PUBLIC),
        "provider machine": (apis.provider_a, None, Audience.STAFF),
        "provider member": (apis.provider_a_member, world.provider_a_member.user_id, Audience.STAFF),
        "support": (apis.agent, world.agent.user_id, Audience.STAFF),
    }
    streams = {}
    for name, (api, user_id, _) in parties.items():
        if user_id is None:
            streams[name] = await _socket("/api/v1/updates", query=_hmac_query(api, "/api/v1/updates"))
        else:
            streams[name] = await _socket("/api/v1/updates", session_of=user_id)

    ticket = await sync_to_async(_make_every_kind)(apis, world, provider_log_server)
    path = f"/api/v1/tickets/{ticket}/updates"

    for name, (api, user_id, audience) in parties.items():
        rest = (await sync_to_async(api.get)(f"/api/v1/tickets/{ticket}/events")).json()
        detail = (await sync_to_async(api.get)(f"/api/v1/tickets/{ticket}")).json()
        listing = (await sync_to_async(api.get)("/api/v1/tickets")).json()
        if user_id is None:
            replay_socket = await _socket(path, query=_hmac_query(api, path, "since=0"))
        else:
            replay_socket = await _socket(path, session_of=user_id, query="since=0")
        replayed = await _drain(replay_socket, quiet=0.5)
        await replay_socket.disconnect()
        live = [m for m in await _drain(streams[name]) if m["ticket_id"] == ticket]

        # The same description on every surface.
        assert rest == replayed == live, name
        timeline = [e for e in rest if e["type"] not in (Kind.NEW_COMMENT, Kind.ATTACHMENT_ADDED)]
        assert detail["history"] == timeline, name
        # Each payload is exactly the declared shape for the audience.
        for event in rest:
            assert set(event["data"]) == set(SHAPES[event["type"]].keys_for(audience)), (name, event["type"])
        assert [e["seq"] for e in rest] == list(range(1, len(rest) + 1)), name

        everything = json.dumps([rest, detail, listing, replayed, live])
        if audience is Audience.PUBLIC:
            assert "user_id" not in _keys_anywhere([rest, detail, listing, live]), name
            assert not [marker for marker in INTERNAL_MARKERS if marker in everything], name
            assert {e["type"] for e in rest}.isdisjoint({Kind.LOGS_FETCHED, Kind.SLA_WARNING}), name
            assert Kind.SLA_BREACHED in {e["type"] for e in rest}, name
            assert all(not e["data"].get("is_internal") for e in rest), name
        else:
            kinds = {e["type"] for e in rest}
            # An erasure rewrites what was sent live before it: its surfaces are tests/privacy's.
            assert kinds == set(Kind.values) - {Kind.CONTENT_ERASED}, name
            escalations = [
                e["data"] for e in rest if e["type"] == Kind.ASSIGNMENT_CHANGE and e["actor"] == "system"
            ]
            assert [(e["reason"], e["escalation"]) for e in escalations] == [("SLA breach: resolution", True)]
            to_agent = [e for e in rest if e["type"] == Kind.ASSIGNMENT_CHANGE and e["data"]["to"]["user_id"]]
            assert [e["data"]["to"] for e in to_agent] == [
                {"kind": "support", "name": "agent", "user_id": world.agent.user_id}
            ], name
            assert all(marker in everything for marker in INTERNAL_MARKERS[:2]), name
    for socket in streams.values():
        await socket.disconnect()


async def test_other_parties_learn_nothing_of_the_ticket(
    world: World, apis: Apis, provider_log_server: str, run_log_fetches_now: None
) -> None:
    bob_stream = await _socket("/api/v1/updates", query=_hmac_query(apis.provider_b, "/api/v1/updates"))
    ticket = await sync_to_async(_make_every_kind)(apis, world, provider_log_server)
    for outsider in (apis.bob, apis.provider_b, apis.provider_b_member):
        for path in (f"/api/v1/tickets/{ticket}", f"/api/v1/tickets/{ticket}/events"):
            assert (await sync_to_async(outsider.get)(path)).status_code == 404
        listed = (await sync_to_async(outsider.get)("/api/v1/tickets")).json()
        assert ticket not in {row["id"] for row in listed}
    assert [m for m in await _drain(bob_stream) if m["ticket_id"] == ticket] == []
    await bob_stream.disconnect()
    path = f"/api/v1/tickets/{ticket}/updates"
    cookie = (b"cookie", await sync_to_async(_session_cookie)(world.bob.user_id))
    assert await refused_with(f"{path}?{urlencode({})}", [*BROWSER, cookie]) == 4404
