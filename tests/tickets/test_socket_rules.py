"""WebSocket rules (issue 12, class 5), in process on the real ASGI application and Redis layer:
refusals are closes with documented codes; the Origin must match scheme, host and port; a signature is
judged alone; ticket ids are canonical; bad frames get an `error`; sockets close once their credential is
revoked or their party loses access; sockets are capped per party and per client address."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts import hmac_signing
from core import wallet
from providers.models import ProviderCredential, ProviderMembership
from providers.services import provider_credential_issue
from tests.api import WalletSigner
from tests.conftest import World
from tests.sockets import BROWSER, HOST, open_socket, refused_with
from tickets import hooks, realtime, services
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

open_ticket = sync_to_async(lambda world, **kw: world.open_ticket(**kw))
comment = sync_to_async(services.comment_add)


@pytest.fixture(autouse=True)
async def _close_worker_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _cookie(user_id: int | None) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


cookie_of = sync_to_async(_cookie)


def updates(ticket: object) -> str:
    return f"/api/v1/tickets/{ticket}/updates"


def hmac_path(principal: str, secret: str, path: str, raw_query: str = "") -> str:
    return f"{path}?{hmac_signing.hmac_query(principal, secret, 'GET', path, raw_query, int(time.time()))}"


async def next_close(communicator) -> int:
    """Read frames until the server closes (within 5 s); its close code."""
    async with asyncio.timeout(5):
        while True:
            output = await communicator.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return output.get("code", 1000)


class TestCloseCodes:
    async def test_every_refusal_is_an_accepted_socket_closed_with_its_code(self, world: World) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        bob = await cookie_of(world.bob.user_id)
        cases = {
            "anonymous": (updates(ticket.id), BROWSER, 4401),
            "no origin, no signature": (updates(ticket.id), [HOST, alice], 4401),
            "foreign origin": (updates(ticket.id), [(b"origin", b"https://evil.example"), HOST, alice], 4403),
            "not visible": (updates(ticket.id), [*BROWSER, bob], 4404),
            "bad since": (updates(ticket.id) + "?since=x", [*BROWSER, alice], 4400),
            "unicode digits in since": (updates(ticket.id) + "?since=%C2%B2", [*BROWSER, alice], 4400),
            "since past the sequence range": (
                updates(ticket.id) + "?since=9999999999",
                [*BROWSER, alice],
                4400,
            ),
            "unknown path": ("/api/v1/nope", [*BROWSER, alice], 4404),
            "unknown path, anonymous": ("/ws/anything/at/all", [], 4404),
        }
        for name, (path, headers, code) in cases.items():
            assert await refused_with(path, headers) == code, name


class TestOrigin:
    @pytest.mark.parametrize(
        ("origin", "host"),
        [
            (b"http://testserver:9999", b"testserver"),  # the port differs
            (b"http://testserver", b"testserver:8000"),
            (b"https://testserver", b"testserver"),  # the scheme differs (the socket is ws://)
            (b"http://testserver.evil.example", b"testserver"),
            (b"http://evil.example", b"evil.example"),  # our Origin and Host, but not one of our hosts
            (b"null", b"testserver"),
            (b"http://[::1", b"testserver"),
        ],
    )
    async def test_a_cookie_needs_the_servers_own_scheme_host_and_port(
        self, world: World, origin: bytes, host: bytes
    ) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        assert await refused_with(updates(ticket.id), [(b"origin", origin), (b"host", host), alice]) == 4403

    async def test_the_same_origin_with_its_port_is_accepted(self, world: World) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        headers = [(b"origin", b"http://testserver:8000"), (b"host", b"testserver:8000"), alice]
        assert await refused_with(updates(ticket.id), headers) is None

    async def test_a_configured_origin_is_accepted(self, world: World, settings) -> None:
        settings.VE_WS_ALLOWED_ORIGINS = ["https://portal.example.test"]
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        headers = [(b"origin", b"https://portal.example.test"), HOST, alice]
        assert await refused_with(updates(ticket.id), headers) is None
        headers = [(b"origin", b"https://portal.example.test:444"), HOST, alice]
        assert await refused_with(updates(ticket.id), headers) == 4403


class TestSignatureAlone:
    @pytest.mark.parametrize(
        "query",
        [
            "ve_sig=junk",
            "ve_hmac=junk",
            "ve_principal=%00",
            "ve_principal=vep_x&ve_hmac=00",
            "ve_address=ve1x",
            "ve_ts=1",
            "ve_nonce=abcdefgh12345678",
            "ve_sig=a&ve_hmac=b",
        ],
    )
    async def test_junk_signature_parameters_never_fall_back_to_the_cookie(
        self, world: World, query: str
    ) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        for headers in ([*BROWSER, alice], [HOST, alice]):
            assert await refused_with(f"{updates(ticket.id)}?{query}", headers) == 4401, (query, headers)

    async def test_a_valid_signature_with_a_foreign_origin_is_judged_by_the_signature(
        self, world: World
    ) -> None:
        ticket = await open_ticket(world)
        headers = WalletSigner(world.alice_key).headers("GET", updates(ticket.id), b"")
        path = f"{updates(ticket.id)}?{urlencode(wallet.wallet_query_params(headers))}"
        assert await refused_with(path, [(b"origin", b"https://elsewhere.example"), HOST]) is None


class TestTicketIds:
    @pytest.mark.parametrize(
        "spelling",
        [
            lambda u: u.hex,
            lambda u: "{" + str(u) + "}",
            lambda u: f"urn:uuid:{u}",
            lambda u: f" {u}",
            lambda u: f"{u}%00",
            lambda u: str(u)[:-1] + "\u0660",  # an Arabic-Indic zero
        ],
        ids=["no-hyphens", "braces", "urn", "space", "nul", "unicode-digit"],
    )
    async def test_non_canonical_ids_are_4404(self, world: World, spelling) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        assert await refused_with(updates(spelling(ticket.id)), [*BROWSER, alice]) == 4404

    async def test_an_uppercase_id_is_the_same_ticket_and_receives_its_events(self, world: World) -> None:
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        socket, code = await open_socket(updates(str(ticket.id).upper()), [*BROWSER, alice])
        assert code is None
        await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="Seen?")
        message = await socket.receive_json_from(timeout=5)
        assert (message["ticket_id"], message["data"]["content"]) == (str(ticket.id), "Seen?")
        await socket.disconnect()


class TestFrames:
    @pytest.mark.parametrize(
        "frame",
        [
            "not json",
            "",
            "[" * 10_000,
            '{"type": "typing", "x": ' + "[" * 50 + "]" * 50 + "}",
            '{"type": "typing", "x": NaN}',
            '{"type": "typing", "x": "\\u0000"}',
            '"typing"',
            "x" * 100_000,
            b"\x00\xff binary",
        ],
        ids=["text", "empty", "brackets", "deep", "nan", "nul", "string", "huge", "binary"],
    )
    async def test_bad_frames_get_an_error_message_and_the_socket_stays_open(
        self, world: World, frame: str | bytes
    ) -> None:
        ticket = await open_ticket(world)
        for path in (updates(ticket.id), "/api/v1/updates"):
            socket, code = await open_socket(path, [*BROWSER, await cookie_of(world.alice.user_id)])
            assert code is None
            key = "bytes" if isinstance(frame, bytes) else "text"
            await socket.send_input({"type": "websocket.receive", key: frame})
            error = await socket.receive_json_from(timeout=5)
            assert error["type"] == "error"
            assert error["data"]["error"]
            # Still open and serving.
            await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="still here")
            message = await socket.receive_json_from(timeout=5)
            assert message["data"]["content"] == "still here"
            await socket.disconnect()


@pytest.fixture
def fast_resync(settings) -> None:
    settings.VE_WS_RESYNC_SECONDS = 0.3


class TestRecheck:
    async def test_revoking_the_hmac_credential_closes_its_sockets_with_4401(
        self, world: World, fast_resync: None
    ) -> None:
        ticket = await open_ticket(world)
        issued = await sync_to_async(provider_credential_issue)(provider=world.provider_a)
        principal, secret = issued.credential.principal, issued.secret
        ticket_socket, code = await open_socket(hmac_path(principal, secret, updates(ticket.id)), [])
        assert code is None
        stream, code = await open_socket(hmac_path(principal, secret, "/api/v1/updates"), [])
        assert code is None
        await sync_to_async(ProviderCredential.objects.filter(principal=principal).update)(
            revoked_at=timezone.now()
        )
        assert await next_close(ticket_socket) == 4401
        assert await next_close(stream) == 4401
        # Nothing reaches them any more, internal notes included.
        await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="secret", is_internal=True)
        for socket in (ticket_socket, stream):
            assert await socket.receive_nothing(timeout=0.5)
            await socket.disconnect()

    async def test_signing_out_closes_session_sockets_with_4401(
        self, world: World, fast_resync: None
    ) -> None:
        ticket = await open_ticket(world)
        socket, code = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.alice.user_id)])
        assert code is None
        await sync_to_async(Session.objects.all().delete)()
        assert await next_close(socket) == 4401
        await socket.disconnect()

    async def test_a_member_who_leaves_the_provider_is_closed_with_4403(
        self, world: World, fast_resync: None
    ) -> None:
        ticket = await open_ticket(world)
        member = await cookie_of(world.provider_a_member.user_id)
        ticket_socket, _ = await open_socket(updates(ticket.id), [*BROWSER, member])
        stream, _ = await open_socket("/api/v1/updates", [*BROWSER, member])
        await sync_to_async(
            ProviderMembership.objects.filter(user_id=world.provider_a_member.user_id).delete
        )()
        assert await next_close(ticket_socket) == 4403
        assert await next_close(stream) == 4403
        for socket in (ticket_socket, stream):
            await socket.disconnect()

    async def test_losing_sight_of_the_ticket_closes_with_4403(self, world: World, fast_resync: None) -> None:
        ticket = await open_ticket(world)
        socket, _ = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.alice.user_id)])
        other = world.bob.address
        await sync_to_async(Ticket.objects.filter(pk=ticket.pk).update)(
            customer_address=other, created_by_address=other
        )
        assert await next_close(socket) == 4403
        await socket.disconnect()

    async def test_sockets_that_keep_their_access_stay_open(self, world: World, fast_resync: None) -> None:
        ticket = await open_ticket(world)
        socket, _ = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.alice.user_id)])
        await asyncio.sleep(1.2)  # several re-checks
        await comment(actor=world.provider_a_member, ticket_id=ticket.id, body="still yours")
        assert (await socket.receive_json_from(timeout=5))["data"]["content"] == "still yours"
        await socket.disconnect()


class TestCaps:
    async def test_sockets_per_party_are_capped_with_4429(self, world: World, settings) -> None:
        settings.VE_WS_MAX_SOCKETS_PER_PARTY = 2
        ticket = await open_ticket(world)
        alice = await cookie_of(world.alice.user_id)
        first, _ = await open_socket(updates(ticket.id), [*BROWSER, alice])
        second, _ = await open_socket("/api/v1/updates", [*BROWSER, alice])
        assert await refused_with(updates(ticket.id), [*BROWSER, alice]) == 4429
        # Another party is not affected; a closed socket frees its place.
        assert (
            await refused_with(updates(ticket.id), [*BROWSER, await cookie_of(world.agent.user_id)]) is None
        )
        await first.disconnect()
        assert await refused_with(updates(ticket.id), [*BROWSER, alice]) is None
        await second.disconnect()

    async def test_a_wallet_gets_no_more_sockets_for_fresh_nonces(self, world: World, settings) -> None:
        settings.VE_WS_MAX_SOCKETS_PER_PARTY = 3
        ticket = await open_ticket(world)
        opened = []
        for _ in range(3):
            headers = WalletSigner(world.alice_key).headers("GET", updates(ticket.id), b"")
            socket, code = await open_socket(
                f"{updates(ticket.id)}?{urlencode(wallet.wallet_query_params(headers))}", []
            )
            assert code is None
            opened.append(socket)
        headers = WalletSigner(world.alice_key).headers("GET", updates(ticket.id), b"")
        path = f"{updates(ticket.id)}?{urlencode(wallet.wallet_query_params(headers))}"
        assert await refused_with(path, []) == 4429
        for socket in opened:
            await socket.disconnect()

    async def test_sockets_per_client_address_are_capped_across_parties(self, world: World, settings) -> None:
        settings.VE_WS_MAX_SOCKETS_PER_CLIENT_ADDRESS = 2
        ticket = await open_ticket(world)
        first, _ = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.alice.user_id)])
        second, _ = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.agent.user_id)])
        member = await cookie_of(world.provider_a_member.user_id)
        assert await refused_with(updates(ticket.id), [*BROWSER, member]) == 4429
        await first.disconnect()
        await second.disconnect()


async def test_ticket_id_spellings_share_one_group(world: World) -> None:
    """The group and every frame use the canonical id, whatever spelling the URL used."""
    ticket = await open_ticket(world)
    alice = await cookie_of(world.alice.user_id)
    lower, _ = await open_socket(updates(str(ticket.id)), [*BROWSER, alice])
    upper, _ = await open_socket(updates(str(ticket.id).upper()), [*BROWSER, alice])
    await lower.send_json_to({"type": "typing"})
    typing = await upper.receive_json_from(timeout=5)
    assert typing["ticket_id"] == str(uuid.UUID(str(ticket.id)))
    await lower.disconnect()
    await upper.disconnect()


class TestLosslessDelivery:
    async def test_a_lost_last_broadcast_heals_within_seconds_not_at_the_resync(
        self, world: World, settings
    ) -> None:
        """The last event of a burst is committed but its broadcast is lost (no later event shows the
        gap): every socket still gets it within a couple of catch-up intervals, long before the 30 s
        resync."""
        assert settings.VE_WS_RESYNC_SECONDS >= 30
        ticket = await open_ticket(world)
        provider, _ = await open_socket(
            updates(ticket.id), [*BROWSER, await cookie_of(world.provider_a_member.user_id)]
        )
        customer, _ = await open_socket(updates(ticket.id), [*BROWSER, await cookie_of(world.alice.user_id)])
        stream, _ = await open_socket("/api/v1/updates", [*BROWSER, await cookie_of(world.agent.user_id)])
        customer_stream, _ = await open_socket(
            "/api/v1/updates", [*BROWSER, await cookie_of(world.alice.user_id)]
        )
        await comment(actor=world.alice, ticket_id=ticket.id, body="delivered live")
        for socket in (provider, customer, stream, customer_stream):
            assert (await socket.receive_json_from(timeout=5))["data"]["content"] == "delivered live"
        hooks.unregister_event_hook(realtime.publish_event)
        try:
            await comment(actor=world.alice, ticket_id=ticket.id, body="broadcast lost")
        finally:
            hooks.register_event_hook(realtime.publish_event, many=realtime.publish_events)
        started = time.monotonic()
        for socket in (provider, customer, stream, customer_stream):  # the streams heal as well
            healed = await socket.receive_json_from(timeout=8)
            assert healed["data"]["content"] == "broadcast lost"
        assert time.monotonic() - started < 8
        for socket in (provider, customer, stream, customer_stream):
            assert await socket.receive_nothing(timeout=0.5)  # once, not twice
            await socket.disconnect()
