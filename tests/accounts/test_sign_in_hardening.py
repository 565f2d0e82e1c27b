"""Hardening round 3 at the front door (issue 24, classes 1, 2, 3 and 5): wallet sign-in reads its JSON
through the one strict parser and answers every refusal in the JSON error shape; sign-in is throttled per
client address, failed verifications count against the address's failure budget, and fresh keys cannot
create accounts without bound; a key's API budget follows the role it has, not whether it signed in once;
everything under /api/ answers JSON, whatever the method."""

from __future__ import annotations

import base64
import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from core import wallet
from providers.models import CustomerIdentity
from tests.api import Api, WalletSigner
from tests.conftest import World
from tests.factories import DeploymentFactory, make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("throttle_clock_pinned")]

CHALLENGE = "/login/wallet/challenge"
VERIFY = "/login/wallet/verify"


def _csrf_client(address: str = "10.9.0.1") -> Client:
    return Client(REMOTE_ADDR=address, enforce_csrf_checks=True)


def _csrf_token(client: Client) -> str:
    client.get("/login/")
    return client.cookies["csrftoken"].value


def post_raw(client: Client, path: str, body: bytes, *, csrf: str | None = None) -> object:
    extra = {"HTTP_X_CSRFTOKEN": csrf} if csrf else {}
    return client.generic("POST", path, body, content_type="application/json", **extra)


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["code"], str)
    if code is not None:
        assert body["code"] == code, body
    return body


def sign_in(client: Client, key: bytes, address: str, *, break_signature: bool = False) -> object:
    issued = client.post(CHALLENGE, json.dumps({"address": address}), content_type="application/json")
    assert issued.status_code == 200, issued.content
    text = issued.json()["text"]
    signature = wallet.sign_document(key, wallet.data_sign_bytes(text, address, ""))
    if break_signature:
        other_key, _ = make_wallet()
        signature = wallet.sign_document(other_key, wallet.data_sign_bytes(text, address, ""))
    body = {
        "token": issued.json()["token"],
        "address": address,
        "mode": "arbitrary",
        "signature": signature,
        "pub_key": base64.b64encode(wallet.public_key_of(key)).decode(),
    }
    return client.post(VERIFY, json.dumps(body), content_type="application/json")


class TestSignInBodies:
    @pytest.mark.parametrize("path", [CHALLENGE, VERIFY])
    def test_a_deeply_nested_body_is_a_400_naming_the_body(self, path: str) -> None:
        client = _csrf_client()
        response = post_raw(client, path, b"[" * 1000 + b"]" * 1000, csrf=_csrf_token(client))
        body = assert_json_error(response, 400, "parse_error")
        assert "Nested deeper" in body["error"]

    @pytest.mark.parametrize("path", [CHALLENGE, VERIFY])
    def test_a_body_over_the_limit_is_a_json_413(self, path: str) -> None:
        client = _csrf_client()
        big = b'{"address": "' + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
        assert_json_error(post_raw(client, path, big, csrf=_csrf_token(client)), 413, "too_large")

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            (b'{"address": NaN}', "body"),
            (b'{"address": "\\u0000"}', "address"),
            (b"[1, 2]", "body"),
            (b"\xff\xfe", "body"),
            (b'{"address": 1e999}', "body"),
        ],
    )
    def test_what_the_api_refuses_sign_in_refuses_the_same_way(self, raw: bytes, field: str) -> None:
        body = assert_json_error(post_raw(Client(), CHALLENGE, raw), 400)
        assert field in body["fields"], body

    def test_a_missing_csrf_token_is_refused_in_json(self) -> None:
        response = post_raw(_csrf_client(), CHALLENGE, b'{"address": "x"}')
        assert_json_error(response, 403, "csrf_failed")

    def test_a_form_encoded_body_over_the_limit_is_a_json_answer_too(self) -> None:
        # Django's CSRF check reads a form body itself, before the view: it is Django that refuses it.
        client = _csrf_client()
        big = "a=" + "b" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
        response = client.post(
            CHALLENGE,
            big,
            content_type="application/x-www-form-urlencoded",
            HTTP_X_CSRFTOKEN=_csrf_token(client),
        )
        assert_json_error(response, 413, "too_large")


class TestSignInLimits:
    def test_challenges_are_throttled_per_client_address(self, settings) -> None:
        settings.VE_SIGN_IN_RATE_PER_ADDRESS = "5/min"
        _, address = make_wallet()
        client = Client(REMOTE_ADDR="10.9.1.1")
        statuses = [
            client.post(CHALLENGE, json.dumps({"address": address}), content_type="application/json")
            for _ in range(7)
        ]
        assert [r.status_code for r in statuses] == [200] * 5 + [429, 429]
        refused = assert_json_error(statuses[-1], 429, "throttled")
        assert int(statuses[-1]["Retry-After"]) >= 1
        assert refused["retry_after"] >= 1
        # Another address is not affected.
        other = Client(REMOTE_ADDR="10.9.1.2")
        assert (
            other.post(
                CHALLENGE, json.dumps({"address": address}), content_type="application/json"
            ).status_code
            == 200
        )

    def test_failed_verifications_count_against_the_addresss_failure_budget(self, settings) -> None:
        settings.VE_API_AUTH_FAILURES_PER_ADDRESS = "3/min"
        key, address = make_wallet()
        client = Client(REMOTE_ADDR="10.9.2.1")
        statuses = [sign_in(client, key, address, break_signature=True).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        # Past the budget even a good signature from that address waits (its challenge call too).
        response = client.post(CHALLENGE, json.dumps({"address": address}), content_type="application/json")
        assert_json_error(response, 429, "throttled")
        # And the same budget is the one signed API calls from that address spend.
        api = Api(WalletSigner(key), client=Client(REMOTE_ADDR="10.9.2.1"))
        assert api.get("/api/v1/tickets").status_code == 429
        assert sign_in(Client(REMOTE_ADDR="10.9.2.2"), key, address).status_code == 200

    def test_fresh_keys_create_a_bounded_number_of_accounts_per_address(self, settings) -> None:
        settings.VE_SIGN_IN_NEW_ACCOUNTS_PER_ADDRESS = "3/hour"
        users_before = get_user_model().objects.count()
        statuses = []
        for _ in range(6):
            key, address = make_wallet()
            statuses.append(sign_in(Client(REMOTE_ADDR="10.9.3.1"), key, address).status_code)
        assert statuses == [200, 200, 200, 429, 429, 429]
        assert get_user_model().objects.count() == users_before + 3
        assert CustomerIdentity.objects.filter(user__isnull=False).count() >= 3

    def test_a_known_account_signs_in_whatever_the_new_account_budget(self, world: World, settings) -> None:
        settings.VE_SIGN_IN_NEW_ACCOUNTS_PER_ADDRESS = "1/hour"
        key, address = make_wallet()
        assert sign_in(Client(REMOTE_ADDR="10.9.4.1"), key, address).status_code == 200
        other_key, other_address = make_wallet()
        refused = sign_in(Client(REMOTE_ADDR="10.9.4.1"), other_key, other_address)
        assert_json_error(refused, 429, "too_many_accounts")
        assert not get_user_model().objects.filter(username=other_address).exists()
        # The first key, known now, signs in again from the same address.
        assert sign_in(Client(REMOTE_ADDR="10.9.4.1"), key, address).status_code == 200


@pytest.fixture
def rates(settings):
    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


class TestBudgetsFollowTheRole:
    def test_signing_in_once_gives_a_key_no_budget_of_its_own(self, world: World, rates) -> None:
        rates(roleless="3/min", party="1000/min")
        client_address = "10.9.5.1"
        spent = []
        for _ in range(5):
            key, address = make_wallet()
            assert sign_in(Client(REMOTE_ADDR=client_address), key, address).status_code == 200
            api = Api(WalletSigner(key), client=Client(REMOTE_ADDR=client_address))
            spent.append(api.get("/api/v1/tickets").status_code)
        assert spent == [200, 200, 200, 429, 429]

    def test_a_signed_in_keys_portal_session_shares_the_roleless_budget_too(
        self, world: World, rates
    ) -> None:
        rates(roleless="2/min", party="1000/min")
        key, address = make_wallet()
        client = Client(REMOTE_ADDR="10.9.6.1")
        assert sign_in(client, key, address).status_code == 200
        statuses = [client.get("/api/v1/tickets").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]

    def test_owning_a_deployment_gives_the_key_its_own_budget(self, world: World, rates) -> None:
        rates(roleless="1/min", party="1000/min")
        key, address = make_wallet()
        api = Api(WalletSigner(key), client=Client(REMOTE_ADDR="10.9.7.1"))
        assert [api.get("/api/v1/tickets").status_code for _ in range(2)] == [200, 429]
        DeploymentFactory(owner_address=address, provider=world.provider_a)
        assert api.get("/api/v1/tickets").status_code == 200


class TestJsonUnderTheApi:
    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
    @pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/tickets/", "/api/v2/tickets"])
    def test_unsafe_methods_to_unknown_routes_are_a_json_404(self, method: str, path: str) -> None:
        client = Client(enforce_csrf_checks=True)
        response = client.generic(method, path, b"{}", content_type="application/json")
        assert_json_error(response, 404, "not_found")

    def test_even_with_a_session_cookie_and_no_csrf_token(self, world: World) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(get_user_model().objects.get(pk=world.alice.user_id))
        response = client.generic("DELETE", "/api/v1/tickets/", b"", content_type="application/json")
        assert_json_error(response, 404, "not_found")
