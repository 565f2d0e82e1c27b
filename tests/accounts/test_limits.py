"""Limits that cannot be walked around (issue 12, class 7): keys with no role share one budget per client
address, failed authentications are throttled per client address, and password sign-ins lock out."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.api import Api, HmacSigner, WalletSigner
from tests.conftest import Apis, World
from tests.factories import DeploymentFactory, make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("throttle_clock_pinned")]

TICKETS = "/api/v1/tickets"


@pytest.fixture
def rates(settings):
    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


def fresh_wallet(address: str = "10.0.0.1") -> Api:
    key, _ = make_wallet()
    return Api(WalletSigner(key), client=Client(REMOTE_ADDR=address))


class TestRolelessParties:
    def test_fresh_keys_share_one_budget_per_client_address(self, world: World, rates) -> None:
        rates(roleless="4/min", roleless_write="2/min")
        statuses = [fresh_wallet().get(TICKETS).status_code for _ in range(6)]
        assert statuses == [200, 200, 200, 200, 429, 429]
        # Another address has its own budget.
        assert fresh_wallet("10.0.0.2").get(TICKETS).status_code == 200

    def test_writes_have_a_smaller_shared_budget(self, world: World, rates) -> None:
        rates(roleless="100/min", roleless_write="2/min")
        statuses = [fresh_wallet().post(TICKETS, {}).status_code for _ in range(4)]
        assert statuses[:2] != [429, 429]
        assert statuses[2:] == [429, 429]

    def test_parties_with_a_role_keep_their_own_budget(self, world: World, apis: Apis, rates) -> None:
        rates(roleless="2/min")
        for _ in range(3):
            fresh_wallet("127.0.0.1").get(TICKETS)
        assert fresh_wallet("127.0.0.1").get(TICKETS).status_code == 429
        # Alice (she owns deployments), a provider and support call from the same address, unaffected.
        for api in (apis.alice, apis.provider_a, apis.agent):
            assert api.get(TICKETS).status_code == 200

    def test_a_key_that_comes_to_own_a_deployment_gets_a_budget_of_its_own(self, world: World, rates) -> None:
        rates(roleless="1/min")
        key, address = make_wallet()
        api = Api(WalletSigner(key), client=Client(REMOTE_ADDR="10.0.0.9"))
        assert api.get(TICKETS).status_code == 200
        assert api.get(TICKETS).status_code == 429
        DeploymentFactory(owner_address=address, provider=world.provider_a)
        assert api.get(TICKETS).status_code == 200


class TestFailedAuthentication:
    def test_failures_are_counted_per_client_address(self, world: World, apis: Apis, settings) -> None:
        settings.VE_API_AUTH_FAILURES_PER_ADDRESS = "3/min"
        forger = Api(HmacSigner("vep_nobody", "wrong"), client=Client(REMOTE_ADDR="10.0.0.5"))
        statuses = [forger.get(TICKETS).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        assert forger.get(TICKETS).status_code == 429
        # Even a good signature from that address waits now; a bad wallet signature too.
        honest = Api(apis.provider_a.signer, client=Client(REMOTE_ADDR="10.0.0.5"))
        response = honest.get(TICKETS)
        assert response.status_code == 429
        assert response.json()["code"] == "throttled"
        assert int(response["Retry-After"]) >= 1
        key, _ = make_wallet()
        bad_wallet = Api(WalletSigner(key), client=Client(REMOTE_ADDR="10.0.0.5"))
        assert bad_wallet.request("GET", TICKETS, extra_headers={"X-VE-Signature": "x"}).status_code == 429
        # Elsewhere, nothing changed.
        assert (
            Api(apis.provider_a.signer, client=Client(REMOTE_ADDR="10.0.0.6")).get(TICKETS).status_code == 200
        )


@pytest.fixture
def admin_user(db) -> str:
    get_user_model().objects.create_superuser("root", "root@example.test", "right password 1")
    return "root"


class TestSignInLockout:
    def sign_in(self, username: str, password: str, address: str = "10.0.1.1") -> int:
        client = Client(REMOTE_ADDR=address)
        response = client.post(
            "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
        )
        return response.status_code

    def test_forty_wrong_passwords_lock_the_username_out_from_that_address(
        self, admin_user: str, settings
    ) -> None:
        settings.AXES_ENABLED = True
        statuses = [self.sign_in(admin_user, f"guess {n}") for n in range(40)]
        assert statuses[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
        assert set(statuses[settings.AXES_FAILURE_LIMIT :]) == {429}
        # Locked out: the right password does not get in from there either.
        assert self.sign_in(admin_user, "right password 1") == 429
        # The same user from another address, and another user from the first, still can.
        assert self.sign_in(admin_user, "right password 1", address="10.0.1.2") == 302

    def test_without_axes_the_guesses_are_never_slowed(self, admin_user: str, settings) -> None:
        """The lockout is axes' doing: with it off, the 40th guess is answered like the first."""
        settings.AXES_ENABLED = False
        assert {self.sign_in(admin_user, f"guess {n}") for n in range(10)} == {200}

    def test_sign_ins_without_a_client_address_still_work(self, admin_user: str, settings) -> None:
        """Django's force_login (tests, benches, tooling) signs in with no REMOTE_ADDR at all."""
        settings.AXES_ENABLED = True
        client = Client()
        client.force_login(get_user_model().objects.get(username=admin_user))
        assert client.get("/admin/").status_code == 200
