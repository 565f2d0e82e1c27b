"""Sockets close when access ends, at once (issue 24, classes 6 and 7): a revoked credential, a sign-out, an
admin edit that takes access away are pushed to the sockets' hubs as they commit, so the sockets close
without waiting for the periodic re-check (here set to an hour, so that it cannot be what closes them), and
nothing committed after the change reaches them. A wallet key with no role gets no socket at all.

The time from the change to the close is measured by `bench/socket_revocation.py`; tests do not time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections

from accounts import hmac_signing
from core import wallet
from providers.models import ProviderCredential
from providers.services import credential_revoke, provider_credential_issue
from tests.api import WalletSigner
from tests.conftest import World
from tests.factories import make_wallet
from tests.sockets import BROWSER, open_socket, session_client
from tickets import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

open_ticket = sync_to_async(lambda world, **kw: world.open_ticket(**kw))
comment = sync_to_async(services.comment_add)
CLOSE_WAIT_SECONDS = 10  # a bound for a stuck test, not a speed target (that is the bench's)


@pytest.fixture(autouse=True)
async def _close_worker_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _no_periodic_recheck(settings) -> None:
    settings.VE_WS_RESYNC_SECONDS = 3600


def updates(ticket: object) -> str:
    return f"/api/v1/tickets/{ticket}/updates"


def hmac_path(principal: str, secret: str, path: str) -> str:
    return f"{path}?{hmac_signing.hmac_query(principal, secret, 'GET', path, '', int(time.time()))}"


def wallet_path(key: bytes, path: str) -> str:
    headers = WalletSigner(key).headers("GET", path, b"")
    return f"{path}?{urlencode(wallet.wallet_query_params(headers))}"


async def frames_until_close(communicator) -> tuple[list[dict], int]:
    """Every frame the socket receives, until the server closes it; and the close code."""
    frames = []
    async with asyncio.timeout(CLOSE_WAIT_SECONDS):
        while True:
            output = await communicator.receive_output(timeout=CLOSE_WAIT_SECONDS)
            if output["type"] == "websocket.close":
                return frames, output.get("code", 1000)
            frames.append(output)


signed_in_client = sync_to_async(session_client)


async def next_event(communicator) -> dict:
    """The next ticket event a socket receives, past presence frames (staff sockets tell each other who
    joined and left: collision detection, not ticket content)."""
    while True:
        frame = await communicator.receive_json_from(timeout=CLOSE_WAIT_SECONDS)
        if frame["type"] != "presence":
            return frame


async def joined(communicator) -> None:
    """Read the presence frame a staff socket gets when another one opens on its ticket."""
    frame = await communicator.receive_json_from(timeout=CLOSE_WAIT_SECONDS)
    assert (frame["type"], frame["data"]["state"]) == ("presence", "joined"), frame


async def test_a_revoked_credentials_sockets_close_before_anything_later_reaches_them(world: World) -> None:
    ticket = await open_ticket(world)
    issued = await sync_to_async(provider_credential_issue)(provider=world.provider_a)
    principal, secret = issued.credential.principal, issued.secret
    ticket_socket, code = await open_socket(hmac_path(principal, secret, updates(ticket.id)), [])
    assert code is None
    stream, code = await open_socket(hmac_path(principal, secret, "/api/v1/updates"), [])
    assert code is None
    # Another provider's socket on the same process is not concerned.
    other = await sync_to_async(provider_credential_issue)(provider=world.provider_a)
    bystander, code = await open_socket(
        hmac_path(other.credential.principal, other.secret, updates(ticket.id)), []
    )
    assert code is None
    await joined(ticket_socket)  # before the revocation: from here on, nothing may reach it

    credential = await sync_to_async(ProviderCredential.objects.get)(principal=principal)
    await sync_to_async(credential_revoke)(credential=credential)
    # Committed after the revocation: an internal note, which the credential could read a moment ago.
    await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="after revoke", is_internal=True)

    for socket in (ticket_socket, stream):
        frames, code = await frames_until_close(socket)
        assert code == 4401
        assert frames == [], frames
        await socket.disconnect()
    delivered = await next_event(bystander)
    assert delivered["data"]["content"] == "after revoke"
    await bystander.disconnect()


async def test_signing_out_closes_that_sessions_sockets_at_once(world: World) -> None:
    ticket = await open_ticket(world)
    client = await signed_in_client(world.provider_a_member.user_id)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    socket, code = await open_socket(updates(ticket.id), [*BROWSER, cookie])
    assert code is None
    # The same person signed in elsewhere keeps that session's socket.
    elsewhere = await signed_in_client(world.provider_a_member.user_id)
    other_cookie = (b"cookie", f"sessionid={elsewhere.cookies['sessionid'].value}".encode())
    kept, code = await open_socket(updates(ticket.id), [*BROWSER, other_cookie])
    assert code is None
    await joined(socket)

    response = await sync_to_async(client.post)("/logout/")
    assert response.status_code == 302
    await comment(actor=world.agent, ticket_id=ticket.id, body="after sign-out", is_internal=True)

    frames, code = await frames_until_close(socket)
    assert (frames, code) == ([], 4401)
    await socket.disconnect()
    assert (await next_event(kept))["data"]["content"] == "after sign-out"
    await kept.disconnect()


async def test_signing_out_of_the_console_closes_its_sockets_too(world: World) -> None:
    client = await signed_in_client(world.agent.user_id)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    stream, code = await open_socket("/api/v1/updates", [*BROWSER, cookie])
    assert code is None
    assert (await sync_to_async(client.post)("/admin/logout/")).status_code == 200
    frames, code = await frames_until_close(stream)
    assert (frames, code) == ([], 4401)
    await stream.disconnect()


async def test_an_admin_edit_that_takes_access_away_closes_at_once(world: World) -> None:
    ticket = await open_ticket(world)
    member = await signed_in_client(world.provider_a_member.user_id)
    cookie = (b"cookie", f"sessionid={member.cookies['sessionid'].value}".encode())
    socket, code = await open_socket(updates(ticket.id), [*BROWSER, cookie])
    assert code is None
    admin = await sync_to_async(get_user_model().objects.create_superuser)("root", "root@example.test", "pw")
    console = await signed_in_client(admin.pk)
    page = await sync_to_async(console.get)(f"/admin/auth/user/{world.provider_a_member.user_id}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        key: value
        for key, value in form.initial.items()
        if key in form.fields and value is not None and key not in ("password", "groups", "user_permissions")
    }
    data.update(
        is_active="", date_joined_0="2026-01-01", date_joined_1="00:00:00", last_login_0="", last_login_1=""
    )
    saved = await sync_to_async(console.post)(
        f"/admin/auth/user/{world.provider_a_member.user_id}/change/", data
    )
    assert saved.status_code == 302, saved.content[:2000]
    frames, code = await frames_until_close(socket)
    assert frames == []
    assert code in (4401, 4403)  # a deactivated user's session no longer authenticates
    await socket.disconnect()


class TestKeysWithNoRole:
    @pytest.mark.parametrize("route", ["stream", "ticket"])
    async def test_a_fresh_wallet_key_gets_4403(self, world: World, route: str) -> None:
        ticket = await open_ticket(world)
        key, _ = make_wallet()
        path = "/api/v1/updates" if route == "stream" else updates(ticket.id)
        _, code = await open_socket(wallet_path(key, path), [], settle=2.0)
        assert code == 4403

    async def test_a_key_that_owns_a_deployment_gets_its_socket(self, world: World) -> None:
        socket, code = await open_socket(wallet_path(world.alice_key, "/api/v1/updates"), [], settle=2.0)
        assert code is None
        await socket.disconnect()
