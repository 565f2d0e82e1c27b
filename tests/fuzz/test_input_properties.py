"""Property-based hostile input (Hypothesis), issue 12's acceptance: arbitrary JSON (deep, huge, NUL, lone
surrogates, huge and non-finite numbers), arbitrary query strings and arbitrary path segments at every REST
operation, through every authentication scheme; arbitrary handshakes and frames at both WebSocket routes.

No answer may be a 5xx or anything but JSON in the error shape; no socket may be closed without one of the
documented codes, and a bad frame never closes one at all."""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlencode

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Apis, World
from tests.sockets import BROWSER, open_socket

OPERATIONS = [
    ("GET", "/api/v1/tickets"),
    ("POST", "/api/v1/tickets"),
    ("GET", "/api/v1/tickets/{id}"),
    ("PATCH", "/api/v1/tickets/{id}"),
    ("GET", "/api/v1/tickets/{id}/comments"),
    ("POST", "/api/v1/tickets/{id}/comments"),
    ("GET", "/api/v1/tickets/{id}/events"),
    ("POST", "/api/v1/tickets/{id}/escalate"),
    ("POST", "/api/v1/tickets/{id}/assign"),
    ("POST", "/api/v1/tickets/{id}/links"),
    ("DELETE", "/api/v1/tickets/{id}/links"),
    ("POST", "/api/v1/tickets/{id}/logs"),
    ("POST", "/api/v1/attachments"),
    ("GET", "/api/v1/attachments/{id}"),
    ("GET", "/api/v1/deployments"),
]
DOCUMENTED_CLOSE_CODES = {4400, 4401, 4403, 4404, 4429}

# Every code point, lone surrogates and NUL included, plus the ones that matter most, often.
any_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF),
        st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "/", "%", "&", "=", "."]),
    ),
    max_size=40,
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**1000),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, any_text),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=30,
)
FIELDS = [
    "deployment_id",
    "subject",
    "description",
    "content",
    "message",
    "metadata",
    "status",
    "priority",
    "category",
    "reason",
    "assignee_type",
    "assignee_id",
    "attachment_ids",
    "is_internal",
]
json_objects = st.dictionaries(st.one_of(st.sampled_from(FIELDS), any_text), json_values, max_size=6)
raw_bodies = st.one_of(
    json_objects.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth),
    st.integers(min_value=1, max_value=5_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.sampled_from(
        [b"1e999", b"-1e999", b"NaN", b'"\\u0000"', b'{"metadata": {"x": "\\udc00"}}', b"9" * 5000]
    ),
    st.binary(max_size=200),
)
queries = st.one_of(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(
                    [
                        "status",
                        "q",
                        "ordering",
                        "limit",
                        "cursor",
                        "since",
                        "deployment_id",
                        "priority",
                        "category",
                    ]
                ),
                any_text,
            ),
            any_text,
        ),
        max_size=6,
    ).map(
        lambda pairs: urlencode(
            [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in pairs]
        )
    ),
    st.text(alphabet="abc=&%0123456789ABCDEF+;", max_size=60),
    st.integers(min_value=1001, max_value=1500).map(lambda n: "&".join(f"p{i}=1" for i in range(n))),
)
segments = st.one_of(
    st.just("REAL"), any_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe=""))
)

# `make fuzz` raises both (VE_PROPERTY_EXAMPLES); the suite runs a quick pass.
EXAMPLES = int(os.environ.get("VE_PROPERTY_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def assert_json_answer(response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.content[:300])
    if response.status_code == 204 or (response.status_code == 200 and "attachments/" in where):
        return
    assert response["Content-Type"].startswith("application/json"), (where, response["Content-Type"])
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body, dict), (where, body)
        assert isinstance(body.get("error"), str), (where, body)
        assert isinstance(body.get("code"), str), (where, body)


@pytest.fixture
def targets(world: World, apis: Apis, settings) -> dict:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(
            ["party", "party_write", "roleless", "roleless_write"], "1000000/min"
        ),
    }
    settings.VE_API_AUTH_FAILURES_PER_ADDRESS = "1000000/min"
    ticket = world.open_ticket()
    return {
        "ticket": str(ticket.id),
        "apis": [apis.alice, apis.provider_a, apis.provider_a_member, apis.agent],
    }


def _url(template: str, segment: str, ticket: str) -> str:
    return template.replace("{id}", ticket if segment == "REAL" else segment)


@pytest.mark.django_db
@FUZZ
@given(operation=st.sampled_from(OPERATIONS), body=raw_bodies, segment=segments, who=st.integers(0, 3))
def test_arbitrary_bodies_at_every_operation(
    targets: dict, operation, body: bytes, segment: str, who: int
) -> None:
    method, template = operation
    path = _url(template, segment, targets["ticket"])
    response = targets["apis"][who].request(method, path, raw_body=body)
    assert_json_answer(response, f"{method} {path}")


@pytest.mark.django_db
@FUZZ
@given(operation=st.sampled_from(OPERATIONS), query=queries, segment=segments, who=st.integers(0, 3))
def test_arbitrary_query_strings_and_path_segments(
    targets: dict, operation, query: str, segment: str, who: int
) -> None:
    method, template = operation
    path = _url(template, segment, targets["ticket"])
    api = targets["apis"][who]
    response = api.request(method, f"{path}?{query}" if query else path)
    assert_json_answer(response, f"{method} {path}?{query[:80]}")


@pytest.mark.django_db
@FUZZ
@given(
    path=st.lists(
        any_text.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")), min_size=1, max_size=4
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
)
def test_arbitrary_paths_under_the_api_answer_json(targets: dict, path: list[str], method: str) -> None:
    url = "/api/v1/" + "/".join(path)
    response = targets["apis"][0].request(method, url)
    assert response.status_code < 500, (url, response.status_code)
    if method != "HEAD" and response.status_code != 204:
        assert response["Content-Type"].startswith("application/json"), (url, response["Content-Type"])


# ---------------------------------------------------------------------------------------------------------
# WebSockets

WS_FUZZ = settings(
    max_examples=max(10, EXAMPLES * 2 // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _cookie(user_id: int | None) -> bytes:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


header_values = st.one_of(
    st.sampled_from(
        [
            b"http://testserver",
            b"http://testserver:9999",
            b"null",
            b"",
            b"https://evil.example",
            b"http://[::1",
            b"testserver",
            b"testserver:0",
            b"\xff\xfe",
        ]
    ),
    st.binary(max_size=30),
)


@pytest.mark.django_db(transaction=True)
@WS_FUZZ
@given(
    route=st.sampled_from(["/api/v1/tickets/{id}/updates", "/api/v1/updates", "/api/v1/{id}", "/{id}"]),
    segment=segments,
    query=queries,
    origin=st.one_of(st.none(), header_values),
    host=st.one_of(st.none(), header_values),
    with_cookie=st.booleans(),
)
def test_arbitrary_handshakes_are_admitted_or_closed_with_a_documented_code(
    world: World, route: str, segment: str, query: str, origin, host, with_cookie: bool
) -> None:
    ticket = world.open_ticket() if segment == "REAL" else None
    path = route.replace("{id}", str(ticket.id) if ticket else segment)
    headers = [(b"origin", origin)] if origin is not None else []
    headers += [(b"host", host)] if host is not None else []
    if with_cookie:
        headers.append((b"cookie", _cookie(world.alice.user_id)))

    async def handshake() -> None:
        communicator, code = await open_socket(f"{path}?{query}" if query else path, headers, settle=0.3)
        assert code is None or code in DOCUMENTED_CLOSE_CODES, (path, query[:80], code)
        if code is None:
            await communicator.disconnect()
        await sync_to_async(connections.close_all)()

    async_to_sync(handshake)()


frames = st.one_of(
    json_values.map(json.dumps),
    json_objects.map(lambda value: json.dumps({"type": "typing", **value})),
    any_text,
    st.integers(min_value=1, max_value=20_000).map(lambda depth: "[" * depth),
    st.binary(max_size=100),
)


@pytest.mark.django_db(transaction=True)
@WS_FUZZ
@given(route=st.sampled_from(["ticket", "stream"]), sent=st.lists(frames, min_size=1, max_size=5))
def test_arbitrary_frames_never_close_the_socket(world: World, route: str, sent: list) -> None:
    ticket = world.open_ticket()
    path = f"/api/v1/tickets/{ticket.id}/updates" if route == "ticket" else "/api/v1/updates"
    headers = [*BROWSER, (b"cookie", _cookie(world.provider_a_member.user_id))]

    async def exchange() -> None:
        communicator, code = await open_socket(path, headers, settle=0.1)
        assert code is None
        for frame in sent:
            key = "bytes" if isinstance(frame, bytes) else "text"
            await communicator.send_input({"type": "websocket.receive", key: frame})
        await communicator.receive_nothing(timeout=0.2)
        while not communicator.output_queue.empty():
            output = await communicator.receive_output()
            assert output["type"] == "websocket.send", output
            message = json.loads(output["text"])
            assert message["type"] in ("error", "typing"), message
        await communicator.disconnect()
        await sync_to_async(connections.close_all)()

    async_to_sync(exchange)()


# ---------------------------------------------------------------------------------------------------------
# Sign-in and the portal's endpoints that read a body (issue 24): the wallet sign-in calls answer JSON in
# the error shape whatever they are sent; the portal's forms answer pages, never a 5xx.

SIGN_IN_CALLS = ["/login/wallet/challenge", "/login/wallet/verify"]
SIGN_IN_FIELDS = ["address", "token", "signature", "pub_key", "mode", "next"]
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "application/octet-stream",
    ]
)
sign_in_bodies = st.one_of(
    raw_bodies,
    st.dictionaries(st.one_of(st.sampled_from(SIGN_IN_FIELDS), any_text), json_values, max_size=6).map(
        lambda value: json.dumps(value).encode()
    ),
)


@pytest.fixture
def sign_in_client(settings) -> Client:
    settings.VE_SIGN_IN_RATE_PER_ADDRESS = "1000000/min"
    settings.VE_API_AUTH_FAILURES_PER_ADDRESS = "1000000/min"
    return Client()


@pytest.mark.django_db
@FUZZ
@given(path=st.sampled_from(SIGN_IN_CALLS), body=sign_in_bodies, content_type=CONTENT_TYPES)
def test_arbitrary_bodies_at_sign_in_answer_json(
    sign_in_client: Client, path: str, body: bytes, content_type: str
) -> None:
    response = sign_in_client.generic("POST", path, body, content_type=content_type)
    assert_json_answer(response, f"POST {path} ({content_type})")


PORTAL_POSTS = [
    "/login/",
    "/logout/",
    "/tickets/new/",
    "/tickets/{ref}/reply/",
    "/tickets/{ref}/status/",
    "/tickets/{ref}/escalate/",
    "/tickets/{ref}/links/",
    "/tickets/{ref}/links/remove/",
    "/tickets/{ref}/logs/",
]
PORTAL_FIELDS = [
    "username",
    "password",
    "next",
    "deployment_id",
    "category",
    "priority",
    "subject",
    "description",
    "submission_id",
    "content",
    "is_internal",
    "reason",
    "status",
    "attachment_ids",
    "files",
]
form_values = st.one_of(any_text, st.lists(any_text, min_size=1, max_size=3))
forms = st.dictionaries(st.one_of(st.sampled_from(PORTAL_FIELDS), any_text), form_values, max_size=8)


def _field_part(boundary: bytes, name: str, value: str) -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + _quoted(name) + b'"'
    return b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + _bytes(value) + b"\r\n"


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _quoted(text: str) -> bytes:
    return _bytes(text).replace(b'"', b"").replace(b"\r", b"").replace(b"\n", b"")


def _multipart(fields: dict, file_name: str, file_body: bytes) -> bytes:
    boundary = b"fuzz-boundary"
    parts = [
        _field_part(boundary, name, item)
        for name, value in fields.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    file_header = (
        b'Content-Disposition: form-data; name="files"; filename="' + _quoted(file_name) + b'"\r\n'
        b"Content-Type: application/octet-stream"
    )
    parts.append(b"--" + boundary + b"\r\n" + file_header + b"\r\n\r\n" + file_body + b"\r\n")
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


portal_bodies = st.one_of(
    forms.map(
        lambda fields: (
            urlencode(
                [
                    (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
                    for k, values in fields.items()
                    for v in (values if isinstance(values, list) else [values])
                ]
            ).encode(),
            "application/x-www-form-urlencoded",
        )
    ),
    st.tuples(forms, any_text, st.binary(max_size=300)).map(
        lambda parts: (_multipart(*parts), "multipart/form-data; boundary=fuzz-boundary")
    ),
    st.tuples(st.binary(max_size=300), CONTENT_TYPES),
)


@pytest.fixture
def portal_targets(world: World) -> dict:
    ticket = world.open_ticket()
    clients = []
    for party in (world.alice, world.provider_a_member, world.agent, world.bob):
        client = Client()
        client.force_login(get_user_model().objects.get(pk=party.user_id))
        clients.append(client)
    clients.append(Client())  # signed out
    return {"reference": f"SUP-{ticket.number:06d}", "clients": clients}


@pytest.mark.django_db
@FUZZ
@given(
    path=st.sampled_from(PORTAL_POSTS),
    body=portal_bodies,
    segment=segments,
    who=st.integers(0, 4),
)
def test_arbitrary_bodies_at_every_portal_form_are_never_a_server_error(
    portal_targets: dict, path: str, body: tuple[bytes, str], segment: str, who: int
) -> None:
    raw, content_type = body
    url = path.replace("{ref}", portal_targets["reference"] if segment == "REAL" else segment)
    client = portal_targets["clients"][who]
    response = client.generic("POST", url, raw, content_type=content_type, HTTP_HX_REQUEST="true")
    assert response.status_code < 500, (url, content_type, response.status_code, response.content[:300])
