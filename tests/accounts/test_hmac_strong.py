"""The stronger HMAC version (issue 12, class 9): a body hash and a single-use nonce in the signed string,
on the REST API and WebSockets; VirtEngine's format still accepted unless the credential or the
installation requires the stronger one."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections

from accounts import hmac_signing
from accounts.hmac_signing import (
    HmacAuthError,
    Reason,
    Strong,
    hmac_headers,
    hmac_message,
    hmac_sign,
    verify_hmac,
)
from providers.models import ProviderCredential
from providers.selectors import credential_cache_clear
from providers.services import provider_credential_issue
from tests.api import Api, HmacSigner
from tests.conftest import World
from tests.sockets import refused_with

SECRET = "s3cret"
NOW_S = 1_764_312_000
BODY = b'{"content": "hello"}'


def strong_check(**overrides):
    strong = Strong.of(BODY, "n" * 20)
    kwargs = {
        "secret": SECRET,
        "method": "POST",
        "path": "/api/v1/tickets/x/comments",
        "raw_query": "",
        "principal": "vep_1",
        "timestamp_str": str(NOW_S),
        "signature_hex": hmac_headers(
            "vep_1", SECRET, "POST", "/api/v1/tickets/x/comments", "", NOW_S, strong
        )["X-VE-Signature"],
        "now_s": NOW_S,
        "nonce": strong.nonce,
        "content_sha256": strong.content_sha256,
        "body_sha256": lambda: Strong.of(BODY).content_sha256,
    }
    return verify_hmac(**(kwargs | overrides))


class TestPure:
    def test_the_message_adds_nonce_and_body_hash(self) -> None:
        strong = Strong("n" * 16, "ab" * 32)
        assert hmac_message("get", "/p", "q=1", "vep_1", 5, strong) == b"GET\n/p\nq=1\nvep_1\n5\n" + (
            b"n" * 16 + b"\n" + b"ab" * 32
        )
        assert hmac_message("get", "/p", "q=1", "vep_1", 5) == b"GET\n/p\nq=1\nvep_1\n5"

    def test_a_strong_request_verifies(self) -> None:
        assert strong_check() == NOW_S

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"body_sha256": lambda: Strong.of(b"another body").content_sha256}, Reason.BODY_MISMATCH),
            ({"nonce": None}, Reason.MISSING),
            ({"content_sha256": None}, Reason.MISSING),
            ({"nonce": "short"}, Reason.BAD_NONCE),
            ({"nonce": "n" * 19 + "!"}, Reason.BAD_NONCE),
            ({"content_sha256": "AB" * 32}, Reason.BAD_CONTENT_HASH),
            ({"nonce": "m" * 20}, Reason.BAD_SIGNATURE),  # the nonce is signed
            ({"content_sha256": "cd" * 32}, Reason.BAD_SIGNATURE),  # so is the body hash
        ],
    )
    def test_refusals(self, overrides, reason) -> None:
        with pytest.raises(HmacAuthError) as refused:
            strong_check(**overrides)
        assert refused.value.reason_code == reason

    def test_require_strong_refuses_virtengines_format(self) -> None:
        signature = hmac_sign(SECRET, "GET", "/p", "", "vep_1", NOW_S)
        common = {
            "secret": SECRET,
            "method": "GET",
            "path": "/p",
            "raw_query": "",
            "principal": "vep_1",
            "timestamp_str": str(NOW_S),
            "signature_hex": signature,
            "now_s": NOW_S,
        }
        assert verify_hmac(**common) == NOW_S
        with pytest.raises(HmacAuthError) as refused:
            verify_hmac(**common, require_strong=True)
        assert refused.value.reason_code == Reason.STRONG_REQUIRED


@pytest.fixture
def provider_api(world: World) -> tuple[Api, ProviderCredential]:
    issued = provider_credential_issue(provider=world.provider_a, label="strong")
    return Api(HmacSigner(issued.credential.principal, issued.secret, strong=True)), issued.credential


pytestmark_db = pytest.mark.django_db


@pytestmark_db
class TestRestApi:
    def test_a_strong_request_is_accepted(self, world: World, provider_api) -> None:
        api, _ = provider_api
        ticket = world.open_ticket()
        response = api.post(f"/api/v1/tickets/{ticket.id}/comments", {"content": "Signed with the body"})
        assert response.status_code == 201, response.content
        assert api.get("/api/v1/tickets").status_code == 200
        assert api.upload("pod.log", b"kernel: oom\n").status_code == 201  # multipart: hashed as streamed

    def test_a_replayed_nonce_is_refused(self, world: World, provider_api) -> None:
        api, _ = provider_api
        ticket = world.open_ticket()
        path = f"/api/v1/tickets/{ticket.id}/comments"
        body = json.dumps({"content": "once"}).encode()
        headers = api.signer.headers("POST", path, body, nonce="replayed-nonce-0001")
        first = api.client.post(path, data=body, content_type="application/json", headers=headers)
        again = api.client.post(path, data=body, content_type="application/json", headers=headers)
        assert first.status_code == 201
        assert again.status_code == 401
        assert again.json()["code"] == "nonce_reused"

    def test_another_body_under_the_same_signature_is_refused(self, world: World, provider_api) -> None:
        api, _ = provider_api
        ticket = world.open_ticket()
        path = f"/api/v1/tickets/{ticket.id}/comments"
        headers = api.signer.headers("POST", path, json.dumps({"content": "approved"}).encode())
        forged = json.dumps({"content": "something else"}).encode()
        response = api.client.post(path, data=forged, content_type="application/json", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "content_sha256_mismatch"

    def test_virtengines_format_still_works_unless_required(self, world: World, settings) -> None:
        issued = provider_credential_issue(provider=world.provider_a)
        classic = Api(HmacSigner(issued.credential.principal, issued.secret))
        assert classic.get("/api/v1/tickets").status_code == 200
        settings.VE_HMAC_REQUIRE_STRONG = True
        response = classic.get("/api/v1/tickets")
        assert response.status_code == 401
        assert response.json()["code"] == "strong_signature_required"
        strong = Api(HmacSigner(issued.credential.principal, issued.secret, strong=True))
        assert strong.get("/api/v1/tickets").status_code == 200

    def test_a_credential_may_require_the_strong_version(self, world: World, provider_api) -> None:
        api, credential = provider_api
        ProviderCredential.objects.filter(pk=credential.pk).update(require_strong_signature=True)
        credential_cache_clear()
        classic = Api(HmacSigner(api.signer.principal, api.signer.secret))
        response = classic.get("/api/v1/tickets")
        assert response.status_code == 401
        assert response.json()["code"] == "strong_signature_required"
        assert api.get("/api/v1/tickets").status_code == 200

    def test_the_schema_and_readme_document_it(self, apis) -> None:
        schema = apis.agent.get("/api/v1/schema/", format="json").json()
        description = json.dumps(schema["components"]["securitySchemes"])
        assert "X-VE-Content-SHA256" in description
        assert "X-VE-Nonce" in description


@pytest.fixture
async def _close_worker_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_worker_connections")
async def test_strong_websocket_queries(world: World) -> None:
    ticket = await database_sync_to_async(world.open_ticket)()
    issued = await database_sync_to_async(provider_credential_issue)(provider=world.provider_a)
    principal, secret = issued.credential.principal, issued.secret
    path = f"/api/v1/tickets/{ticket.id}/updates"
    strong = Strong.of(b"", "ws-nonce-used-only-once")
    headers = hmac_signing.hmac_headers(principal, secret, "GET", path, "since=0", int(time.time()), strong)
    query = hmac_signing.hmac_query_of(headers, "since=0")
    assert await refused_with(f"{path}?{query}", []) is None
    assert await refused_with(f"{path}?{query}", []) == 4401  # the nonce was used
    await database_sync_to_async(ProviderCredential.objects.filter(principal=principal).update)(
        require_strong_signature=True
    )
    await database_sync_to_async(credential_cache_clear)()
    classic = hmac_signing.hmac_query(principal, secret, "GET", path, "", int(time.time()))
    assert await refused_with(f"{path}?{classic}", []) == 4401
    fresh_headers = hmac_signing.hmac_headers(
        principal, secret, "GET", path, "", int(time.time()), Strong.of(b"")
    )
    fresh = hmac_signing.hmac_query_of(fresh_headers, "")
    assert await refused_with(f"{path}?{fresh}", []) is None
