"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis + Hypothesis).

Every operation is called with generated valid and invalid input as a customer, a provider member and
support; no response may be a 5xx, and every response must match the documented status codes, content
types and schemas. Path ids are sometimes real tickets, so the checks reach past the 404s.
"""

from __future__ import annotations

import gc
import os
import secrets
from collections.abc import Iterator

import pytest
import schemathesis
import schemathesis.wfc.escalation
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import World
from tickets import services

# schemathesis imports `wfc.escalation` lazily, deep inside Hypothesis's stack, where CPython 3.11.7's
# compiler fails ("AST constructor recursion depth mismatch"); importing it above, at module level, avoids that.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _session(user_id: int | None) -> dict[str, str]:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    csrf = secrets.token_hex(16)  # a 32-character CSRF secret: cookie and header must agree
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}


@pytest.fixture(autouse=True)
def _keep_the_test_transaction() -> Iterator[None]:
    """Raw WSGI calls close the database connection after each request (the test Client stops that too);
    keep it open so every call runs inside the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_parties(world: World) -> dict[str, object]:
    ticket = world.open_ticket()
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.id, body="internal", is_internal=True
    )
    return {
        "ticket_id": str(ticket.id),
        "lease_id": world.alice_deployment.lease_id,
        "sessions": [
            _session(world.alice.user_id),
            _session(world.provider_a_member.user_id),
            _session(world.agent.user_id),
        ],
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("VE_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_never_errors_and_matches_its_schema(case: schemathesis.Case, fuzz_parties: dict) -> None:
    parameters = case.path_parameters or {}
    # Reuse a real ticket for about half of the generated ids, to test more than "not found".
    if "ticket_id" in parameters and str(parameters["ticket_id"])[:1] in "0123456789abcdefABCDEF-_":
        parameters["ticket_id"] = fuzz_parties["ticket_id"]
    # Schemathesis fills the declared security schemes with random values; authenticate for real instead.
    case.headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-ve-")}
    case.cookies = {}
    sessions = fuzz_parties["sessions"]
    cookies = sessions[len(str(case.body)) % len(sessions)]
    case.call_and_validate(
        cookies=cookies,
        headers={"X-CSRFToken": cookies["csrftoken"]},
        checks=CHECKS,
    )
