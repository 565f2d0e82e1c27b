"""Hostile input to the REST API (issue 12, classes 1-3): every refusal is a 4xx in the one error shape,
never a 5xx and never an HTML page; free-form input is bounded.

Each test sends what the adversarial probe sent, through every authentication scheme where the scheme
changes the code path (wallet signatures hash the body before the parser sees it; sessions go through
CSRF; HMAC reads nothing before the parser)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from core import json_input
from core.errors import ValidationFailed
from tests.conftest import Apis, World
from tickets.models import (
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    SUBJECT_MAX_LENGTH,
    Ticket,
)
from tickets.models.macros import MACRO_NAME_MAX_LENGTH, Macro

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


def assert_error_shape(response, status: int, *, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["code"], str)
    assert body["error"]
    assert body["code"]
    if field is not None:
        assert field in body["fields"], body
    return body


def ticket_body(world: World, **fields) -> dict:
    return {
        "deployment_id": world.alice_deployment.lease_id,
        "subject": "Pod crash-looping",
        "description": "OOM",
        **fields,
    }


def signing_apis(apis: Apis) -> dict:
    return {"wallet": apis.alice, "hmac": apis.provider_a, "session": apis.provider_a_member}


class TestJsonBodies:
    @pytest.mark.parametrize(
        "raw",
        [
            b"[" * 100_000,
            b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
            b'{"subject": NaN}',
            b'{"subject": Infinity}',
            b'{"subject": 1e999}',
            b'{"subject": -1e999}',
            b'{"subject": ' + b"9" * 5000 + b"}",
            b'{"subject": "\xff\xfe"}',
            b"\xef\xbb\xbf{}",
            b'{"subject": "\\u0000"}',
            b'{"subject": "\\ud800"}',
            b'{"\\udc00": 1}',
        ],
        ids=[
            "100k-brackets",
            "5000-deep-objects",
            "nan",
            "infinity",
            "1e999",
            "-1e999",
            "5000-digit-int",
            "not-utf8",
            "bom",
            "nul",
            "lone-high-surrogate",
            "surrogate-key",
        ],
    )
    def test_unparseable_or_unstorable_bodies_are_a_400(self, world: World, apis: Apis, raw: bytes) -> None:
        ticket = world.open_ticket()
        for scheme, api in signing_apis(apis).items():
            for path in (TICKETS, f"{TICKETS}/{ticket.id}/comments"):
                response = api.request("POST", path, raw_body=raw)
                body = assert_error_shape(response, 400)
                assert body["code"] == "parse_error", (scheme, body)

    def test_the_400_names_the_problem_and_where_it_is(self, world: World, apis: Apis) -> None:
        raw = json.dumps(ticket_body(world, metadata={"tags": ["ok", "bad\u0000"]})).encode()
        body = assert_error_shape(apis.alice.request("POST", TICKETS, raw_body=raw), 400)
        assert body["fields"] == {"metadata.tags[1]": ["Contains a NUL character."]}
        raw = b'{"subject": "x", "priority": ' + b"[" * 40 + b"]" * 40 + b"}"
        body = assert_error_shape(apis.alice.request("POST", TICKETS, raw_body=raw), 400)
        assert "Nested deeper than" in body["error"]

    def test_a_body_over_the_memory_limit_is_a_413_for_every_scheme(
        self, world: World, apis: Apis, settings
    ) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        ticket = world.open_ticket()
        raw = json.dumps({"content": "x" * 20_000}).encode()
        for api in signing_apis(apis).values():
            response = api.request("POST", f"{TICKETS}/{ticket.id}/comments", raw_body=raw)
            assert_error_shape(response, 413)

    def test_form_bodies_over_the_limit_are_json_too(self, world: World, apis: Apis, settings) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        ticket = world.open_ticket()
        for api in signing_apis(apis).values():
            response = api.request(
                "POST",
                f"{TICKETS}/{ticket.id}/comments",
                raw_body=b"content=" + b"x" * 20_000,
                content_type="application/x-www-form-urlencoded",
            )
            assert 400 <= response.status_code < 500
            assert_error_shape(response, response.status_code)

    def test_nothing_refused_was_stored(self, world: World, apis: Apis) -> None:
        before = Ticket.objects.count()
        apis.alice.request("POST", TICKETS, raw_body=b'{"subject": "\\u0000"}')
        apis.alice.request(
            "POST", TICKETS, raw_body=json.dumps(ticket_body(world, metadata={"x": "\udc00"})).encode()
        )
        assert Ticket.objects.count() == before


class TestQueryStrings:
    def test_nul_in_a_query_value_or_name_is_a_400(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        for api in signing_apis(apis).values():
            for query in ("deployment_id=%00", "q=a%00b", "a%00=1", "status=%00"):
                response = api.request("GET", f"{TICKETS}?{query}")
                assert_error_shape(response, 400)
            response = api.request("DELETE", f"{TICKETS}/{ticket.id}/links?deployment_id=x%00")
            assert_error_shape(response, 400)

    def test_more_parameters_than_django_accepts_is_a_400(self, apis: Apis) -> None:
        query = "&".join(f"p{n}=1" for n in range(1_500))
        for api in signing_apis(apis).values():
            body = assert_error_shape(api.request("GET", f"{TICKETS}?{query}"), 400)
            assert body["code"] == "too_many_parameters"

    def test_a_nul_outside_the_api_is_a_plain_400(self) -> None:
        response = Client().get("/admin/login/?next=%00")
        assert response.status_code == 400


class TestRoutes:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/nope",
            "/api/v1/tickets/",
            "/api/v1/attachments/",
            "/api/v1/deployments/",
            "/api/v1/tickets/x/comments/",
            "/api/v1/",
            "/api/v2/tickets",
            "/api/",
        ],
    )
    def test_unknown_routes_and_trailing_slashes_are_a_json_404(self, apis: Apis, path: str) -> None:
        for api in (*signing_apis(apis).values(), apis.anonymous):
            for method in ("GET", "POST", "DELETE"):
                response = api.request(method, path)
                assert response.status_code in (401, 404), (method, path, response.status_code)
                assert_error_shape(response, response.status_code)


class TestMetadataBounds:
    @pytest.mark.parametrize(
        "metadata",
        [
            {"blob": "x" * (METADATA_MAX_BYTES + 1)},
            {f"k{n}": n for n in range(METADATA_MAX_KEYS + 1)},
            {"a": {"b": {"c": {"d": {"e": 1}}}}},
            ["not", "an", "object"],
            "text",
        ],
        ids=["too-large", "too-many-keys", "too-deep", "list", "string"],
    )
    def test_out_of_bounds_metadata_is_a_400_naming_metadata(
        self, world: World, apis: Apis, metadata: object
    ) -> None:
        response = apis.alice.post(TICKETS, ticket_body(world, metadata=metadata))
        assert_error_shape(response, 400, field="metadata")

    def test_metadata_within_bounds_is_kept(self, world: World, apis: Apis) -> None:
        metadata = {"env": "prod", "nodes": [1, 2.5, None, True], "labels": {"team": {"name": "ops"}}}
        assert json_input.check(metadata, max_depth=METADATA_MAX_DEPTH) is None
        response = apis.alice.post(TICKETS, ticket_body(world, metadata=metadata))
        assert response.status_code == 201, response.content
        assert response.json()["metadata"] == metadata

    def test_the_service_bounds_metadata_too(self, world: World) -> None:
        with pytest.raises(ValidationFailed) as refused:
            world.open_ticket(metadata={"blob": "x" * (METADATA_MAX_BYTES + 1)})
        assert "metadata" in refused.value.fields
        with pytest.raises(ValidationFailed):
            world.open_ticket(metadata={"nul": "\x00"})


class TestFreeFormFields:
    def test_integers_beyond_the_columns_are_a_400(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        response = apis.agent.post(
            f"{TICKETS}/{ticket.id}/assign", {"assignee_type": "support", "assignee_id": 10**30}
        )
        assert_error_shape(response, 400, field="assignee_id")
        response = apis.alice.get(f"{TICKETS}/{ticket.id}/events", since=str(10**30))
        assert_error_shape(response, 400, field="since")

    def test_unlink_takes_a_bounded_string(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        response = apis.alice.request(
            "DELETE", f"{TICKETS}/{ticket.id}/links", raw_body=json.dumps({"deployment_id": 5}).encode()
        )
        assert_error_shape(response, 400, field="deployment_id")
        response = apis.alice.delete(f"{TICKETS}/{ticket.id}/links", deployment_id="x" * 5000)
        assert_error_shape(response, 400, field="deployment_id")


class TestTextLengthsCountWhatWasSent:
    """A text field's limit counts the string as sent, as the schema's `maxLength` says; whitespace around
    it is trimmed only from text within the limit (the fuzzer found a padded name one over it accepted)."""

    def test_a_padded_subject_over_the_limit_is_a_400(self, world: World, apis: Apis) -> None:
        padded = " " + "s" * SUBJECT_MAX_LENGTH
        response = apis.alice.post(TICKETS, ticket_body(world, subject=padded))
        assert_error_shape(response, 400, field="subject")
        assert not Ticket.objects.exists()

    def test_a_padded_macro_name_over_the_limit_is_a_400(self, apis: Apis) -> None:
        padded = "\t" + "m" * MACRO_NAME_MAX_LENGTH
        response = apis.provider_a.post("/api/v1/macros", {"name": padded, "body": "Hello"})
        assert_error_shape(response, 400, field="name")
        assert not Macro.objects.exists()

    def test_padding_within_the_limit_is_trimmed(self, world: World, apis: Apis) -> None:
        subject = "s" * (SUBJECT_MAX_LENGTH - 2)
        response = apis.alice.post(TICKETS, ticket_body(world, subject=f" {subject} "))
        assert response.status_code == 201, response.content
        assert response.json()["subject"] == subject


class TestJsonInputModule:
    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("[" * 2000, "Nested deeper"),
            ('{"a": NaN}', "NaN"),
            ("[1e400]", "out of range"),
            ('"\\u0000"', "NUL"),
            ('["\\udfff"]', "surrogate"),
            ("{", "Not valid JSON"),
        ],
    )
    def test_loads_refuses(self, text: str, problem: str) -> None:
        with pytest.raises(json_input.JsonRefused, match=problem):
            json_input.loads(text)

    def test_loads_accepts_what_json_parse_accepts(self) -> None:
        assert json_input.loads('{"a": [1, 2.5, "\\ud83d\\ude00", null, true]}') == {
            "a": [1, 2.5, "😀", None, True]
        }
