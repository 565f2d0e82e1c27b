"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis + Hypothesis).

Every operation is called with generated valid and invalid input, with every schemathesis check (`--checks
all`: no 5xx, documented statuses, content types, headers and bodies, invalid input refused, valid input
accepted, authentication enforced, the Allow header of a 405), as each party, each authenticating the way
that party really does:

- a customer with the portal session (cookie + CSRF), and the same customer by wallet signature;
- a provider by strong HMAC: every request signed over its method, path, query, nonce and body hash;
- VirtEngine support with the portal session.

The HMAC is computed at the WSGI layer (`SignedApp`) over the bytes schemathesis actually sends, so the
body hash is the real one. Path ids are real objects about half of the time, so the checks reach past 404s.

`VE_FUZZ_EXAMPLES` sets the examples per operation (25 here; `make fuzz`: 200). `VE_FUZZ_REPORT=<file>`
appends one JSON line per case (party, operation, status, failure) for the figures.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.wfc.escalation
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.settings import api_settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts import hmac_signing
from accounts.throttling import parse_rate
from core import wallet
from notifications import services as notification_services
from notifications.services.webhooks import EVENT_TYPES
from providers.models import ProviderCredential
from providers.services import provider_credential_issue
from tests.conftest import World
from tickets import services

# The principal and secret the WSGI wrapper signs with (set per test; one credential per test).
_SIGNING: dict[str, str] = {}


class SignedApp:
    """Signs, over the exact method, path, query and body that reach the server (fresh nonces):

    - a request carrying `X-VE-Principal: <the fuzzing principal>` by the stronger HMAC;
    - one carrying `X-VE-Signature: <WALLET_MARKER>` by the customer's wallet.

    Both are the headers the schema declares for the schemes, so schemathesis' `ignored_auth` removes or
    replaces exactly them to check that the API refuses the request without valid credentials."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _PACE.wait_for_room(write=environ["REQUEST_METHOD"] not in {"GET", "HEAD", "OPTIONS"})
        principal = environ.get("HTTP_X_VE_PRINCIPAL")
        hmac_meant = bool(principal) and principal == _SIGNING.get("principal")
        wallet_meant = environ.get("HTTP_X_VE_SIGNATURE") == WALLET_MARKER
        if hmac_meant or wallet_meant:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            path = _quoted(environ.get("PATH_INFO", "").encode("latin1").decode("utf-8", "replace"))
            headers = _hmac(environ, path, body) if hmac_meant else _wallet(environ, path, body)
            for name, value in headers.items():
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        return self.app(environ, start_response)


# A party's budgets while fuzzing: production's (1,200 reads and 120 writes a minute) would make 200 examples
# an operation take hours; the throttles still count every request against these.
FUZZ_RATES = {"party": "6000/min", "party_write": "3000/min"}


class Pace:
    """Schemathesis' rate limit, under the API's throttles (which stay on): each party's requests in a throttle
    window are kept under `SHARE` of that window's budget (the reads' and the writes' rates of
    `DEFAULT_THROTTLE_RATES`, counted in the same fixed windows), waiting for the next window when a budget is
    nearly spent; a 429 the fuzz meets is then a defect, not the pace."""

    SHARE = 0.9

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def reset(self) -> None:
        """A new party (each test signs in its own): its budgets start empty, as the server's do."""
        self.counts.clear()

    def wait_for_room(self, *, write: bool) -> None:
        for scope in ("party", "party_write") if write else ("party",):
            rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
            if not rate:
                continue
            limit, period = parse_rate(str(rate))
            window = int(time.time() // period)
            if self.counts.get((scope, window), 0) >= int(limit * self.SHARE):
                time.sleep((window + 1) * period - time.time() + 0.05)
                window = int(time.time() // period)
            self.counts[(scope, window)] = self.counts.get((scope, window), 0) + 1


_PACE = Pace()


WALLET_MARKER = "sign-me-with-the-customers-wallet"


def _hmac(environ: dict[str, Any], path: str, body: bytes) -> dict[str, str]:
    return hmac_signing.hmac_headers(
        _SIGNING["principal"],
        _SIGNING["secret"],
        environ["REQUEST_METHOD"],
        path,
        environ.get("QUERY_STRING", ""),
        int(time.time()),
        hmac_signing.Strong(secrets.token_urlsafe(24), hashlib.sha256(body).hexdigest()),
    )


def _wallet(environ: dict[str, Any], path: str, body: bytes) -> dict[str, str]:
    return wallet.sign_request(
        private_key=bytes.fromhex(_SIGNING["wallet_key"]),
        method=environ["REQUEST_METHOD"],
        path=path,
        body=body or None,
        content_type=None,
        timestamp_ms=int(time.time() * 1000),
        nonce=wallet.new_nonce(),
        chain_id=django_settings.VE_CHAIN_ID,
        prefix=django_settings.VE_BECH32_PREFIX,
    )


def _quoted(path: str) -> str:
    from django.utils.encoding import escape_uri_path  # noqa: PLC0415

    return escape_uri_path(path)


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", SignedApp(get_wsgi_application()))

load_all_checks()


def _within_server_rules(response: Any, case: schemathesis.Case) -> bool:
    """A 400 or 415 that names only fields the operation's `x-server-rules` list: what the schema says
    the server checks beyond JSON Schema (a URL's host resolving, `until` after `since`, a file's bytes)."""
    rules = case.operation.definition.raw.get("x-server-rules") or {}
    if not rules or response.status_code not in (400, 415):
        return False
    try:
        fields = json.loads(response.content).get("fields") or {}
    except ValueError:
        return False
    return bool(fields) and all(name.split(".")[0].split("[")[0] in rules for name in fields)


def positive_data_acceptance_within_server_rules(ctx: Any, response: Any, case: schemathesis.Case) -> Any:
    """schemathesis' `positive_data_acceptance`, except for a refusal the schema itself announces."""
    if _within_server_rules(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


ALL_CHECKS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance] + [
    positive_data_acceptance_within_server_rules
]
PATH_IDS = ("ticket_id", "endpoint_id", "macro_id", "attachment_id", "delivery_id")
PARTIES = ("customer", "wallet", "provider", "support")


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
def fuzz_world(world: World, party: str, settings: Any) -> dict[str, Any]:
    """Real objects for the path ids, and how `party` authenticates."""
    # The throttles stay on, with a fuzzing budget (schemathesis paces itself under it: `Pace`).
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **FUZZ_RATES},
    }
    _PACE.reset()
    ticket = world.open_ticket()
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.id, body="internal", is_internal=True
    )
    issued = provider_credential_issue(provider=world.provider_a, label="fuzz")
    ProviderCredential.objects.filter(pk=issued.credential.pk).update(require_strong_signature=True)
    # schemathesis' `ignored_auth` sends made-up credentials on purpose, thousands of times a minute from
    # one address: past the failed-signature budget those are 429s (tests/accounts tests that budget).
    settings.VE_API_AUTH_FAILURES_PER_ADDRESS = "1000000/min"
    _SIGNING.update(
        principal=issued.credential.principal, secret=issued.secret, wallet_key=world.alice_key.hex()
    )
    ids = {"ticket_id": str(ticket.id)}
    endpoint = notification_services.webhook_endpoint_create(
        actor=world.provider_a_member,
        url="https://hooks.example.com/ve",
        event_types=list(EVENT_TYPES[:1]),
        description="fuzz",
    )
    ids["endpoint_id"] = str(endpoint.endpoint.id)
    if party == "provider":
        headers, cookies = {"X-VE-Principal": issued.credential.principal}, {}
    elif party == "wallet":
        headers, cookies = {"X-VE-Signature": WALLET_MARKER}, {}
    else:
        user = world.alice if party == "customer" else world.agent
        cookies = _session(user.user_id)
        headers = {"X-CSRFToken": cookies["csrftoken"]}
    return {"ids": ids, "headers": headers, "cookies": cookies}


def _as_a_real_client(case: schemathesis.Case, cookies: dict[str, str]) -> None:
    """Our credentials instead of the values schemathesis generates for the security schemes, set so that
    its `ignored_auth` knows them for real ones (and checks the API refuses the request without them)."""
    # A cursor is opaque: only one the server issued is valid, and a generated one never is (the schema says
    # so, and that any other value is a 400). Valid queries start without one; invalid ones keep theirs.
    if case.query and not _negative_query(case):
        case.query.pop("cursor", None)
    case.headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-ve-")}
    case.cookies = dict(cookies)
    case._has_explicit_auth = True


def _negative_query(case: schemathesis.Case) -> bool:
    component = case.meta.components.get(ParameterLocation.QUERY) if case.meta is not None else None
    return component is not None and component.mode.is_negative


def _record(party: str, case: schemathesis.Case, status: int | None, failure: str | None) -> None:
    report = os.environ.get("VE_FUZZ_REPORT")
    if not report:
        return
    line = {
        "party": party,
        "operation": f"{case.method} {case.path}",
        "status": status,
        "failure": failure,
    }
    with Path(report).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@pytest.mark.django_db
@pytest.mark.parametrize("party", PARTIES)
@schema.parametrize()
@hypothesis_settings(
    max_examples=int(os.environ.get("VE_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_never_errors_and_matches_its_schema(
    case: schemathesis.Case, party: str, fuzz_world: dict[str, Any]
) -> None:
    parameters = case.path_parameters or {}
    # Reuse a real object for about half of the generated ids, to test more than "not found".
    for name in PATH_IDS:
        real = fuzz_world["ids"].get(name)
        if real and name in parameters and str(parameters[name])[:1] in "0123456789abcdefABCDEF-_":
            parameters[name] = real
    _as_a_real_client(case, fuzz_world["cookies"])
    try:
        response = case.call_and_validate(headers=fuzz_world["headers"], checks=ALL_CHECKS)
    except Exception as failure:
        _record(party, case, None, str(failure)[:2000])
        raise
    _record(party, case, response.status_code, None)


# ---------------------------------------------------------------------------------------------------------
# The stateful phase: sequences that follow the schema's links from a created object to the operations on it
# (create a ticket, then reply, escalate, resolve, rate it; create a webhook, then update, rotate, delete it).


@pytest.mark.django_db
@pytest.mark.parametrize("party", PARTIES)
def test_api_workflows_follow_the_schemas_links(party: str, fuzz_world: dict[str, Any]) -> None:
    headers, cookies = fuzz_world["headers"], fuzz_world["cookies"]

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            _as_a_real_client(case, cookies)
            return {"headers": headers}

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                checks=ALL_CHECKS,
                headers=headers,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(
        settings=hypothesis_settings(
            max_examples=int(os.environ.get("VE_FUZZ_SCENARIOS", "10")),
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
