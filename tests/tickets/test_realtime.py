"""WebSockets in process (Channels' WebsocketCommunicator on the real ASGI application and the Redis
channel layer): authentication by each scheme, per-recipient shaping, replay without gaps or duplicates,
gap filling, typing, the all-tickets stream, and writes that survive a dead Redis."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from accounts import hmac_signing
from core import wallet
from providers.services import provider_credential_issue
from tests.api import Api, WalletSigner
from tests.conftest import World
from tests.factories import make_wallet
from tests.sockets import BROWSER, open_socket
from tickets import hooks, realtime, services, tasks
from tickets.models import Ticket, TicketEvent
from tickets.services.sla import sla_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
async def _close_worker_connections() -> AsyncIterator[None]:
    """Database work done through sync_to_async runs in asgiref's worker thread; close its connection so
    the test database can be flushed and dropped."""
    yield
    await sync_to_async(connections.close_all)()


def updates_path(ticket: Ticket) -> str:
    return f"/api/v1/tickets/{ticket.id}/updates"


def session_headers(user_id: int | None) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return [*BROWSER, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def signed_wallet_path(private_key: bytes, path: str, extra_query: str = "", **overrides: Any) -> str:
    headers = WalletSigner(private_key).headers("GET", path, b"", **overrides)
    query = urlencode(wallet.wallet_query_params(headers))
    return f"{path}?{extra_query + '&' if extra_query else ''}{query}"


async def connect(path: str, headers: list | None = None) -> tuple[WebsocketCommunicator, bool, int | None]:
    """(communicator, admitted, close code): every socket is accepted, a refusal closes with a code."""
    communicator, code = await open_socket(path, BROWSER if headers is None else headers)
    return communicator, code is None, code


async def receive_all(communicator: WebsocketCommunicator, quiet: float = 1.0) -> list[dict]:
    """Every message that arrives until the socket has been quiet for `quiet` seconds.

    (A timed-out `receive_json_from` would cancel the consumer; `receive_nothing` does not.)
    """
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(await communicator.receive_json_from(timeout=1))
    return messages


async def expect(communicator: WebsocketCommunicator, count: int, wait: float = 5.0) -> list[dict]:
    """Exactly `count` messages, then silence."""
    messages = [await communicator.receive_json_from(timeout=wait) for _ in range(count)]
    assert await communicator.receive_nothing(timeout=0.3)
    return messages


comment = sync_to_async(services.comment_add)
open_ticket = sync_to_async(lambda world, **kw: world.open_ticket(**kw))


class TestAuthentication:
    async def test_session_of_a_party_that_sees_the_ticket(self, world: World) -> None:
        ticket = await open_ticket(world)
        for party in (world.alice, world.provider_a_member, world.agent):
            headers = await sync_to_async(session_headers)(party.user_id)
            communicator, connected, _ = await connect(updates_path(ticket), headers)
            assert connected, party
            await communicator.disconnect()

    async def test_invisible_ticket_and_garbage_ids_close_with_4404(self, world: World) -> None:
        ticket = await open_ticket(world)
        for party in (world.bob, world.provider_b_member):
            headers = await sync_to_async(session_headers)(party.user_id)
            _, connected, code = await connect(updates_path(ticket), headers)
            assert (connected, code) == (False, 4404)
        headers = await sync_to_async(session_headers)(world.alice.user_id)
        _, connected, code = await connect("/api/v1/tickets/not-a-uuid/updates", headers)
        assert (connected, code) == (False, 4404)

    async def test_anonymous_closes_with_4401(self, world: World) -> None:
        ticket = await open_ticket(world)
        _, connected, code = await connect(updates_path(ticket))
        assert (connected, code) == (False, 4401)

    async def test_foreign_origin_is_refused_and_cookie_clients_need_an_origin(self, world: World) -> None:
        ticket = await open_ticket(world)
        headers = await sync_to_async(session_headers)(world.alice.user_id)
        cookie = headers[-1]
        evil = [(b"origin", b"https://evil.example"), (b"host", b"testserver"), cookie]
        _, connected, code = await connect(updates_path(ticket), evil)
        assert (connected, code) == (False, 4403)
        _, connected, code = await connect(updates_path(ticket), [(b"host", b"testserver"), cookie])
        assert (connected, code) == (False, 4401)

    async def test_wallet_signature_in_the_query(self, world: World) -> None:
        ticket = await open_ticket(world)
        path = signed_wallet_path(world.alice_key, updates_path(ticket))
        communicator, connected, _ = await connect(path, headers=[])  # no Origin: a non-browser client
        assert connected
        await communicator.disconnect()

    async def test_bad_wallet_signature_and_reused_nonce_close_with_4401(self, world: World) -> None:
        ticket = await open_ticket(world)
        mallory_key, _ = make_wallet()
        # Mallory signs with her own key but claims Alice's address.
        headers = WalletSigner(mallory_key).headers("GET", updates_path(ticket), b"")
        headers[wallet.HEADER_ADDRESS] = world.alice.address

        forged = f"{updates_path(ticket)}?{urlencode(wallet.wallet_query_params(headers))}"
        _, connected, code = await connect(forged, headers=[])
        assert (connected, code) == (False, 4401)

        path = signed_wallet_path(world.alice_key, updates_path(ticket), nonce="ws-nonce-used-once")
        first, connected, _ = await connect(path, headers=[])
        assert connected
        await first.disconnect()
        _, connected, code = await connect(path, headers=[])
        assert (connected, code) == (False, 4401)

    async def test_wallet_signature_for_another_path_is_refused(self, world: World) -> None:
        ticket = await open_ticket(world)
        other = await open_ticket(world)
        signed_for_other = signed_wallet_path(world.alice_key, updates_path(other))
        tampered = signed_for_other.replace(str(other.id), str(ticket.id), 1)
        _, connected, code = await connect(tampered, headers=[])
        assert (connected, code) == (False, 4401)

    async def test_provider_hmac_in_the_query(self, world: World) -> None:
        ticket = await open_ticket(world)
        issued = await sync_to_async(provider_credential_issue)(provider=world.provider_a)
        path = updates_path(ticket)
        query = hmac_signing.hmac_query(
            issued.credential.principal, issued.secret, "GET", path, "since=0", int(time.time())
        )
        communicator, connected, _ = await connect(f"{path}?{query}", headers=[])
        assert connected
        assert [m["type"] for m in await receive_all(communicator, 0.5)] == ["ticket_created"]
        await communicator.disconnect()
        tampered = query.replace("since=0", "since=1")
        _, connected, code = await connect(f"{path}?{tampered}", headers=[])
        assert (connected, code) == (False, 4401)
        other_provider = await sync_to_async(provider_credential_issue)(provider=world.provider_b)
        query = hmac_signing.hmac_query(
            other_provider.credential.principal, other_provider.secret, "GET", path, "", int(time.time())
        )
        _, connected, code = await connect(f"{path}?{query}", headers=[])
        assert (connected, code) == (False, 4404)

    async def test_malformed_since_closes_with_4400(self, world: World) -> None:
        ticket = await open_ticket(world)
        headers = await sync_to_async(session_headers)(world.alice.user_id)
        _, connected, code = await connect(updates_path(ticket) + "?since=-1", headers)
        assert (connected, code) == (False, 4400)


class TestDelivery:
    async def test_each_recipient_gets_its_own_shape_and_numbering(self, world: World) -> None:
        ticket = await open_ticket(world)
        customer, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.alice.user_id)
        )
        provider, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.provider_a_member.user_id)
        )
        await comment(
            actor=world.provider_a_member,
            ticket_id=ticket.id,
            body="SECRET: node n7 is flaky",
            is_internal=True,
        )
        await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="We are on it")
        provider_messages = await expect(provider, 2)
        customer_messages = await expect(customer, 1)
        assert [(m["type"], m["seq"], m["data"]["content"]) for m in provider_messages] == [
            ("new_comment", 2, "SECRET: node n7 is flaky"),
            ("new_comment", 3, "We are on it"),
        ]
        (reply,) = customer_messages
        assert (reply["type"], reply["seq"], reply["data"]["content"]) == ("new_comment", 2, "We are on it")
        assert reply["data"]["author_type"] == "provider"
        assert reply["ticket_id"] == str(ticket.id)
        assert reply["timestamp"].endswith("Z")
        await customer.disconnect()
        await provider.disconnect()

    async def test_status_priority_and_assignment_changes_arrive(self, world: World) -> None:
        ticket = await open_ticket(world)
        customer, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.alice.user_id)
        )
        await sync_to_async(services.ticket_transition)(
            actor=world.provider_a_member, ticket_id=ticket.id, status="in_progress"
        )
        await sync_to_async(services.ticket_priority_set)(
            actor=world.agent, ticket_id=ticket.id, priority="critical"
        )
        await sync_to_async(services.ticket_escalate)(actor=world.alice, ticket_id=ticket.id, reason="slow")
        messages = await expect(customer, 3)
        assert [m["type"] for m in messages] == ["status_change", "priority_change", "assignment_change"]
        assert messages[0]["data"]["to"] == "in_progress"
        assert messages[2]["data"]["to"] == {
            "kind": "support",
            "name": None,
        }  # no staff account ids for customers
        await customer.disconnect()

    async def test_replay_then_live_without_gaps_or_duplicates(self, world: World) -> None:
        ticket = await open_ticket(world)
        for n in range(4):
            await comment(actor=world.alice, ticket_id=ticket.id, body=f"before {n}")
        await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="internal", is_internal=True)
        headers = await sync_to_async(session_headers)(world.alice.user_id)
        customer, connected, _ = await connect(updates_path(ticket) + "?since=2", headers)
        assert connected
        replayed = await expect(customer, 3)
        assert [m["seq"] for m in replayed] == [3, 4, 5]
        await comment(actor=world.alice, ticket_id=ticket.id, body="live")
        (live,) = await expect(customer, 1)
        assert (live["seq"], live["data"]["content"]) == (6, "live")
        await customer.disconnect()

    async def test_duplicate_and_overtaking_broadcasts_are_put_in_order(self, world: World) -> None:
        ticket = await open_ticket(world)
        provider, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.provider_a_member.user_id)
        )
        # Two events committed while publishing is held back, then published late, out of order and twice.

        hooks.unregister_event_hook(realtime.publish_event)
        try:
            await comment(actor=world.alice, ticket_id=ticket.id, body="first")
            await comment(actor=world.alice, ticket_id=ticket.id, body="second")
        finally:
            hooks.register_event_hook(realtime.publish_event, many=realtime.publish_events)
        events = await sync_to_async(list)(
            TicketEvent.objects.filter(ticket=ticket, seq__gt=1).order_by("seq")
        )
        for event in (events[1], events[0], events[1]):
            await sync_to_async(realtime.publish_event)(event)
        messages = await expect(provider, 2)
        assert [(m["seq"], m["data"]["content"]) for m in messages] == [(2, "first"), (3, "second")]
        await provider.disconnect()

    async def test_typing_reaches_the_others_rate_limited_and_internal_typing_stays_internal(
        self, world: World
    ) -> None:
        ticket = await open_ticket(world)
        customer, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.alice.user_id)
        )
        provider, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.provider_a_member.user_id)
        )
        await customer.send_json_to({"type": "typing"})
        await customer.send_json_to({"type": "typing"})  # within the interval: dropped
        (typing,) = await expect(provider, 1)
        assert typing["type"] == "typing"
        assert typing["data"]["user"] == "alice"
        assert typing["seq"] is None
        assert await customer.receive_nothing(timeout=0.3)  # not echoed to the typist
        await provider.send_json_to({"type": "typing", "internal": True})
        assert await customer.receive_nothing(timeout=0.5)
        await provider.send_json_to({"type": "subscribe"})
        error = await provider.receive_json_from(timeout=2)
        assert error["type"] == "error"
        assert await sync_to_async(TicketEvent.objects.filter(ticket=ticket).count)() == 1  # never persisted
        await customer.disconnect()
        await provider.disconnect()


class TestStream:
    async def test_every_visible_ticket_and_nothing_else(self, world: World) -> None:
        alice_ticket = await open_ticket(world)
        bob_ticket = await open_ticket(world, actor=world.bob)
        await sync_to_async(realtime.publisher().flush)()  # the creations are out before the streams open
        streams = {}
        for name in ("alice", "provider_a_member", "provider_b_member", "agent"):
            party = getattr(world, name)
            streams[name], connected, _ = await connect(
                "/api/v1/updates", await sync_to_async(session_headers)(party.user_id)
            )
            assert connected
        await comment(actor=world.provider_a_member, ticket_id=alice_ticket.id, body="note", is_internal=True)
        await comment(actor=world.bob, ticket_id=bob_ticket.id, body="bob here")
        got = {
            name: [(m["ticket_id"], m["seq"]) for m in await receive_all(stream, 1.0)]
            for name, stream in streams.items()
        }
        assert got["alice"] == []
        assert got["provider_a_member"] == [(str(alice_ticket.id), 2)]
        assert got["provider_b_member"] == [(str(bob_ticket.id), 2)]
        assert sorted(got["agent"]) == sorted([(str(alice_ticket.id), 2), (str(bob_ticket.id), 2)])
        for stream in streams.values():
            await stream.disconnect()

    async def test_a_large_batch_is_broadcast_by_its_task(self, world: World, settings, monkeypatch) -> None:
        """More events committed together than VE_REALTIME_INLINE_EVENTS (an SLA sweep's batch) go out from
        `realtime_publish_task` on a worker, not from the committing process; what the task sends is what
        the inline path would have: every event, in order per ticket, to the support stream's group.

        Read on the channel layer itself: a socket would also get the events from its hub's catch-up,
        which fills streams from the database whoever broadcasts."""
        settings.VE_REALTIME_INLINE_EVENTS = 1
        tickets = [await open_ticket(world, priority="critical") for _ in range(2)]
        await sync_to_async(realtime.publisher().flush)()
        layer = get_channel_layer()
        listener = await layer.new_channel()
        await layer.group_add(realtime.SUPPORT_STREAM, listener)
        customer = await layer.new_channel()
        await layer.group_add(realtime.customer_stream(world.alice.address), customer)
        queued: list[list[int]] = []
        monkeypatch.setattr(tasks.realtime_publish_task, "delay", queued.append)
        later = max(t.sla_first_response_due for t in tickets) + datetime.timedelta(minutes=1)
        swept = await sync_to_async(sla_sweep)(now=later)
        assert swept.breaches == 2
        await sync_to_async(realtime.publisher().flush)()
        with pytest.raises(asyncio.TimeoutError):  # nothing from the committing process
            await asyncio.wait_for(layer.receive(listener), 1.0)
        # The warnings' batch, then the breaches' with the escalations'.
        assert [len(ids) for ids in queued] == [2, 4]
        for ids in queued:
            assert await sync_to_async(tasks.realtime_publish_task)(ids) == len(ids)
        got = []
        for _ in range(6):
            message = await asyncio.wait_for(layer.receive(listener), 5.0)
            got.append(
                (message["payload"]["ticket_id"], message["payload"]["seq"], message["payload"]["type"])
            )
        expected = await sync_to_async(list)(
            TicketEvent.objects.filter(actor_kind="system").values_list("ticket_id", "seq", "kind")
        )
        assert sorted(got) == sorted((str(ticket_id), seq, kind) for ticket_id, seq, kind in expected)
        for ticket in tickets:  # per ticket, in order
            assert [seq for ticket_id, seq, _ in got if ticket_id == str(ticket.id)] == [2, 3, 4]
        # The customer's stream gets the public events only, numbered without the internal warning.
        public = []
        for _ in range(4):
            message = await asyncio.wait_for(layer.receive(customer), 5.0)
            public.append(
                (message["payload"]["ticket_id"], message["payload"]["seq"], message["payload"]["type"])
            )
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(customer), 1.0)
        assert sorted(public) == sorted(
            (str(ticket.id), seq, kind)
            for ticket in tickets
            for seq, kind in ((2, "sla_breached"), (3, "assignment_change"))
        )
        await layer.group_discard(realtime.SUPPORT_STREAM, listener)
        await layer.group_discard(realtime.customer_stream(world.alice.address), customer)


async def test_a_dead_redis_never_fails_the_write(world: World, settings) -> None:
    ticket = await open_ticket(world)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_timeout": None}]},
        }
    }
    api = Api(WalletSigner(world.alice_key))
    response = await sync_to_async(api.post)(
        f"/api/v1/tickets/{ticket.id}/comments", {"content": "Redis is down"}
    )
    assert response.status_code == 201
    await sync_to_async(realtime.publisher().flush)()
    assert await sync_to_async(TicketEvent.objects.filter(ticket=ticket, kind="new_comment").count)() == 1
