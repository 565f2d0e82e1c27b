"""Two real server processes on one Redis, one uvicorn (production's server) and one daphne: a comment
posted through the REST API on one reaches a customer socket on the first and a provider socket on the
second; after a Redis crash and restart,
clients reconnecting with `since` recover every event posted meanwhile, in order, once each."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from django.db import connection
from websockets.sync.client import ClientConnection, connect

from accounts import hmac_signing
from core import wallet
from providers.services import provider_credential_issue
from tests.api import WalletSigner
from tests.conftest import World
from tests.system.processes import AppServer, RedisServer

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_servers(redis_server: RedisServer) -> Iterator[list[AppServer]]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],  # the test database, where the fixtures committed
        "REDIS_URL": redis_server.url,
        "VE_WS_RESYNC_SECONDS": "1",
        "VE_CHANNELS_PREFIX": "ves-system-test",  # both processes must share their groups
    }
    servers = [AppServer(env=env, server="uvicorn"), AppServer(env=env, server="daphne")]
    yield servers
    for server in servers:
        server.stop()


def wallet_socket(
    server: AppServer, private_key: bytes, path: str, since: int | None = None
) -> ClientConnection:
    headers = WalletSigner(private_key).headers("GET", path, b"")
    query = urlencode(
        {**({"since": since} if since is not None else {}), **wallet.wallet_query_params(headers)}
    )
    return connect(f"{server.ws}{path}?{query}", open_timeout=10, legacy=True)


def hmac_socket(
    server: AppServer, principal: str, secret: str, path: str, since: int | None = None
) -> ClientConnection:
    raw_query = urlencode({"since": since}) if since is not None else ""
    query = hmac_signing.hmac_query(principal, secret, "GET", path, raw_query, int(time.time()))
    return connect(f"{server.ws}{path}?{query}", open_timeout=10, legacy=True)


def post_comment(server: AppServer, private_key: bytes, ticket_id: str, text: str) -> requests.Response:
    path = f"/api/v1/tickets/{ticket_id}/comments"
    body = json.dumps({"content": text}).encode()
    headers = {**WalletSigner(private_key).headers("POST", path, body), "Content-Type": "application/json"}
    return requests.post(f"{server.http}{path}", data=body, headers=headers, timeout=10)


def messages(socket: ClientConnection, count: int, timeout: float = 10) -> list[dict]:
    received = []
    deadline = time.monotonic() + timeout
    while len(received) < count:
        received.append(json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return received


def test_fan_out_across_processes_and_recovery_after_a_redis_restart(
    world: World, redis_server: RedisServer, app_servers: list[AppServer]
) -> None:
    first, second = app_servers
    ticket = world.open_ticket()
    ticket_id = str(ticket.id)
    path = f"/api/v1/tickets/{ticket_id}/updates"
    credential = provider_credential_issue(provider=world.provider_a)
    principal, secret = credential.credential.principal, credential.secret

    customer = wallet_socket(first, world.alice_key, path)
    provider = hmac_socket(second, principal, secret, path)
    time.sleep(0.3)  # both sockets have joined their groups

    response = post_comment(first, world.alice_key, ticket_id, "Posted on the first process")
    assert response.status_code == 201, response.text
    (on_customer,) = messages(customer, 1)
    (on_provider,) = messages(provider, 1)
    assert on_customer["data"]["content"] == on_provider["data"]["content"] == "Posted on the first process"
    assert on_customer["seq"] == on_provider["seq"] == 2

    # Redis crashes. Writes go on; their broadcasts are lost; the events are in the database.
    redis_server.stop()
    posted = []
    for n in range(3):
        response = post_comment(first, world.alice_key, ticket_id, f"During the outage {n}")
        assert response.status_code == 201, response.text
        posted.append(response.json()["content"])
    redis_server.start()

    # Sockets that lived through the restart heal themselves: they re-join their groups and fill what
    # they missed from the database within one resync interval.
    for socket in (customer, provider):
        healed = messages(socket, 3, timeout=15)
        assert [m["seq"] for m in healed] == [3, 4, 5]
        assert [m["data"]["content"] for m in healed] == posted
        socket.close()

    # Clients that reconnect with `since` get the same, at once.
    customer = wallet_socket(first, world.alice_key, path, since=2)
    provider = hmac_socket(second, principal, secret, path, since=2)
    recovered_customer = messages(customer, 3)
    recovered_provider = messages(provider, 3)
    for recovered in (recovered_customer, recovered_provider):
        assert [m["seq"] for m in recovered] == [3, 4, 5]
        assert [m["data"]["content"] for m in recovered] == posted

    # And live delivery works again on both processes after the restart.
    response = post_comment(second, world.alice_key, ticket_id, "After the restart")
    assert response.status_code == 201
    assert [m["seq"] for m in messages(customer, 1)] == [6]
    assert [m["seq"] for m in messages(provider, 1)] == [6]
    for socket in (customer, provider):
        with pytest.raises(TimeoutError):
            socket.recv(timeout=0.5)  # nothing twice
        socket.close()
