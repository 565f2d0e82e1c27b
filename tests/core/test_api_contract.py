"""The API contract (issue 33): the OpenAPI schema says what the server does, and one rule decides which
authentication scheme judges a request.

Every answer any test gets through `tests.api.Api` is held to the statuses its schema lists
(`tests.contract.assert_status_listed`); the heavy check, schemathesis with every check as each party, is
`make fuzz` (tests/fuzz/test_api_fuzz.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from core.openapi.schema import text_pattern
from tests.api import HmacSigner
from tests.conftest import Apis, World
from tests.contract import assert_status_listed, listed_statuses
from tests.sockets import BROWSER, open_socket

TICKETS = "/api/v1/tickets"


@pytest.fixture
def schema(apis: Apis) -> dict[str, Any]:
    return json.loads(apis.anonymous.client.get("/api/v1/schema/", {"format": "json"}).content)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def _session(world: World, party: str = "alice") -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=getattr(world, party).user_id))
    return client


class TestStatuses:
    def test_writes_to_a_closed_ticket_answer_a_listed_409(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        closed = apis.alice.patch(f"{TICKETS}/{ticket.id}", {"status": "closed"})
        assert closed.status_code == 200, closed.content
        logs = apis.provider_a_member.post(f"{TICKETS}/{ticket.id}/logs")
        unlink = apis.alice.delete(
            f"{TICKETS}/{ticket.id}/links", deployment_id=world.alice_deployment.lease_id
        )
        for response in (logs, unlink):
            assert response.status_code == 409, response.content
            assert response.json()["code"] == "ticket_closed"
        # Api.request checked both against the schema; say it here too, by name.
        assert "409" in listed_statuses("POST", f"{TICKETS}/{ticket.id}/logs")
        assert "409" in listed_statuses("DELETE", f"{TICKETS}/{ticket.id}/links")

    def test_an_unlisted_status_fails_the_check(self) -> None:
        with pytest.raises(AssertionError, match="does not list"):
            assert_status_listed("POST", f"{TICKETS}/00000000-0000-0000-0000-000000000000/logs", 418)
        assert_status_listed("GET", "/api/v1/no-such-operation", 418)  # not an operation: not judged

    def test_every_operation_lists_what_the_shared_plumbing_answers(self, schema: dict[str, Any]) -> None:
        for method, path, operation in _operations(schema):
            responses = operation["responses"]
            assert {"400", "401", "403", "406", "413", "415", "429", "503"} <= set(responses), (method, path)
            for throttled in ("429", "503"):
                assert "Retry-After" in responses[throttled]["headers"], (method, path, throttled)
            if "{" in path:
                assert "404" in responses, (method, path)
            if path.startswith(f"{TICKETS}/{{ticket_id}}") and method != "GET":
                assert "ticket_closed" in responses["409"]["description"], (method, path)


class TestBodies:
    def test_strict_bodies_refuse_unknown_fields_in_the_schema_too(
        self, schema: dict[str, Any], apis: Apis, world: World
    ) -> None:
        components = schema["components"]["schemas"]
        for method, path, operation in _operations(schema):
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            component = components[body["schema"]["$ref"].rsplit("/", 1)[-1]]
            assert component.get("additionalProperties") is False, (method, path)
        ticket = world.open_ticket()
        refused = apis.alice.patch(f"{TICKETS}/{ticket.id}", {"priority": "high", "unknown_field": 1})
        assert refused.status_code == 400
        assert refused.json()["fields"]["unknown_field"] == ["Unknown field."]

    def test_a_comment_needs_content_or_message_and_both_must_agree(
        self, schema: dict[str, Any], world: World, apis: Apis
    ) -> None:
        comment = schema["components"]["schemas"]["CommentCreateInputRequest"]
        assert comment["anyOf"] == [{"required": ["content"]}, {"required": ["message"]}]
        assert comment["properties"]["content"]["pattern"] == text_pattern(blank=False, one_line=False)
        operation = schema["paths"][f"{TICKETS}/{{ticket_id}}/comments"]["post"]
        assert operation["requestBody"]["required"] is True
        assert "same text" in comment["x-server-rules"]["message"]
        ticket = world.open_ticket()
        url = f"{TICKETS}/{ticket.id}/comments"
        assert apis.alice.post(url, {}).status_code == 400
        assert apis.alice.post(url, {"content": "   "}).status_code == 400
        # A client that sends back what it read (the output carries both, the same text) is served.
        assert apis.alice.post(url, {"content": "same", "message": "same"}).status_code == 201
        differing = apis.alice.post(url, {"content": "one", "message": "other"})
        assert differing.status_code == 400
        assert "message" in differing.json()["fields"]
        assert apis.alice.post(url, {"message": "from a VirtEngine client"}).status_code == 201

    def test_patches_need_a_field(self, schema: dict[str, Any], world: World, apis: Apis) -> None:
        components = schema["components"]["schemas"]
        for name in ("PatchedWebhookEndpointUpdateInputRequest", "PatchedTicketUpdateInputRequest"):
            assert components[name]["minProperties"] == 1, name
        ticket = world.open_ticket()
        assert apis.alice.patch(f"{TICKETS}/{ticket.id}", {}).status_code == 400

    def test_attachment_media_types_are_named(self, schema: dict[str, Any]) -> None:
        upload = schema["paths"]["/api/v1/attachments"]["post"]["requestBody"]["content"]
        accepted = upload["multipart/form-data"]["encoding"]["file"]["contentType"]
        assert "image/png" in accepted
        assert "application/octet-stream" not in accepted
        download = schema["paths"]["/api/v1/attachments/{attachment_id}"]["get"]["responses"]["200"]
        assert {"image/png", "text/plain", "application/pdf"} <= set(download["content"])

    def test_query_rules_are_stated(self, schema: dict[str, Any]) -> None:
        listing = schema["paths"][TICKETS]["get"]["parameters"]
        (cursor,) = [p for p in listing if p["name"] == "cursor"]
        assert "Opaque" in cursor["description"]
        assert "400" in cursor["description"]
        report = schema["paths"]["/api/v1/sla/report"]["get"]["parameters"]
        (since,) = [p for p in report if p["name"] == "since"]
        assert "future" in since["description"]


class TestAuthenticationPrecedence:
    """Any X-VE-* header: judged by the signature alone, never the session riding along."""

    def test_the_session_serves_a_request_without_signature_headers(self, world: World) -> None:
        assert _session(world).get(TICKETS).status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {"X-VE-Signature": ""},
            {"X-VE-Timestamp": "1"},
            {"X-VE-Content-SHA256": "0" * 64},
            {"X-VE-Principal": "junk"},
            {"X-VE-Address": "ve1junk"},
        ],
    )
    def test_any_signature_header_beats_the_session(self, world: World, headers: dict[str, str]) -> None:
        response = _session(world).get(TICKETS, headers=headers)
        assert response.status_code == 401, (headers, response.content)
        assert response.json()["code"]
        assert_status_listed("GET", TICKETS, response.status_code)

    def test_a_valid_signature_is_served_with_a_session_riding_along(self, world: World, apis: Apis) -> None:
        signer = apis.provider_a.signer
        assert isinstance(signer, HmacSigner)
        client = _session(world)
        headers = signer.headers("GET", TICKETS, b"")
        response = client.get(TICKETS, headers=headers)
        assert response.status_code == 200, response.content

    def test_the_schema_and_readme_state_the_rule(self, schema: dict[str, Any]) -> None:
        for scheme in schema["components"]["securitySchemes"].values():
            assert "X-VE-*" in scheme["description"]
            assert "never a fallback" in scheme["description"]
        text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
        assert "/api/v1/schema/" in text
        assert "any `X-VE-*` header" in text

    @pytest.mark.django_db(transaction=True)
    def test_a_socket_with_a_signature_header_is_refused_despite_its_cookie(self, world: World) -> None:
        ticket = world.open_ticket()
        cookie = f"sessionid={_session(world).cookies['sessionid'].value}".encode()

        async def handshake(extra: list[tuple[bytes, bytes]]) -> int | None:
            communicator, code = await open_socket(
                f"{TICKETS}/{ticket.id}/updates", [*BROWSER, (b"cookie", cookie), *extra], settle=0.3
            )
            if code is None:
                await communicator.disconnect()
            await sync_to_async(connections.close_all)()
            return code

        assert async_to_sync(handshake)([]) is None
        assert async_to_sync(handshake)([(b"x-ve-signature", b"")]) == 4401
