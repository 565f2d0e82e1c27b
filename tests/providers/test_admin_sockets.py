"""A membership removed or an identity's user unlinked in the admin closes that user's open sockets at once:
the service announces the change as it commits (the periodic re-check is set to an hour here, so it cannot
be what closes them). Tests do not time; `bench/socket_revocation.py` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from providers.models import CustomerIdentity, ProviderMembership
from tests.conftest import World
from tests.sockets import BROWSER, open_socket, session_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

open_ticket = sync_to_async(lambda world: world.open_ticket())
CLOSE_WAIT_SECONDS = 10  # a bound for a stuck test, not a speed target


@pytest.fixture(autouse=True)
async def _close_worker_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _no_periodic_recheck(settings) -> None:
    settings.VE_WS_RESYNC_SECONDS = 3600


def _superuser_client() -> Client:
    return session_client(get_user_model().objects.create_superuser("root", "root@example.test", "pw").pk)


async def socket_of(user_id: int | None, ticket_id: object):
    """A socket on the ticket's updates, opened by the user's browser session."""
    client = await sync_to_async(session_client)(user_id)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    socket, code = await open_socket(f"/api/v1/tickets/{ticket_id}/updates", [*BROWSER, cookie])
    assert code is None
    return socket


async def frames_until_close(communicator) -> tuple[list[dict], int]:
    """Every frame the socket receives, until the server closes it; and the close code."""
    frames = []
    async with asyncio.timeout(CLOSE_WAIT_SECONDS):
        while True:
            output = await communicator.receive_output(timeout=CLOSE_WAIT_SECONDS)
            if output["type"] == "websocket.close":
                return frames, output.get("code", 1000)
            frames.append(output)


async def test_removing_a_member_closes_their_sockets(world: World) -> None:
    ticket = await open_ticket(world)
    socket = await socket_of(world.provider_a_member.user_id, ticket.id)
    membership = await ProviderMembership.objects.aget(user_id=world.provider_a_member.user_id)
    console = await sync_to_async(_superuser_client)()
    removed = await sync_to_async(console.post)(
        f"/admin/providers/providermembership/{membership.pk}/delete/", {"post": "yes"}
    )
    assert removed.status_code == 302
    frames, code = await frames_until_close(socket)
    assert (frames, code) == ([], 4403)
    await socket.disconnect()


async def test_unlinking_a_customers_user_closes_their_sockets(world: World) -> None:
    ticket = await open_ticket(world)
    socket = await socket_of(world.alice.user_id, ticket.id)
    identity = await CustomerIdentity.objects.aget(address=world.alice.address)
    console = await sync_to_async(_superuser_client)()
    unlinked = await sync_to_async(console.post)(
        f"/admin/providers/customeridentity/{identity.pk}/change/",
        {"user": "", "email": "", "envelope_public_key": ""},
    )
    assert unlinked.status_code == 302
    frames, code = await frames_until_close(socket)
    assert (frames, code) == ([], 4403)
    await socket.disconnect()
