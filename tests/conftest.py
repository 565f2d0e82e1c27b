"""Shared fixtures: a small marketplace (two customers, two providers, support) per test."""

from __future__ import annotations

import base64
import datetime
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts import throttling
from chain import envelopes
from core.parties import Party
from providers.models import CustomerIdentity, Deployment, ProviderAccount
from providers.selectors import credential_cache_clear
from providers.services import provider_credential_issue
from tests import factories
from tests.api import Api, HmacSigner, WalletSigner
from tickets import services
from tickets.models import Ticket


@dataclass
class World:
    provider_a: ProviderAccount
    provider_b: ProviderAccount
    alice: Party  # customer of provider A
    bob: Party  # customer of provider B
    alice_deployment: Deployment
    alice_second_deployment: Deployment
    bob_deployment: Deployment
    provider_a_member: Party
    provider_b_member: Party
    agent: Party
    alice_key: bytes
    bob_key: bytes

    def open_ticket(self, actor: Party | None = None, **fields: object) -> Ticket:
        actor = actor or self.alice
        deployment = self.alice_deployment if actor.address != self.bob.address else self.bob_deployment
        values: dict[str, object] = {
            "deployment_id": deployment.lease_id,
            "subject": "Pod crash-looping",
            "description": "OOMKilled after 5 minutes.",
            "category": "technical",
            "priority": "high",
        }
        values.update(fields)
        return services.ticket_create(actor=actor, **values)


@pytest.fixture
def world(db: None) -> World:
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    provider_a = factories.ProviderFactory(name="Provider A")
    provider_b = factories.ProviderFactory(name="Provider B")
    alice_key, alice_address = factories.make_wallet()
    bob_key, bob_address = factories.make_wallet()
    alice = factories.customer(alice_address, username="alice")
    bob = factories.customer(bob_address, username="bob")
    return World(
        alice_key=alice_key,
        bob_key=bob_key,
        provider_a=provider_a,
        provider_b=provider_b,
        alice=alice,
        bob=bob,
        alice_deployment=factories.DeploymentFactory(owner_address=alice.address, provider=provider_a),
        alice_second_deployment=factories.DeploymentFactory(owner_address=alice.address, provider=provider_b),
        bob_deployment=factories.DeploymentFactory(owner_address=bob.address, provider=provider_b),
        provider_a_member=factories.provider_member(provider_a, username="pa-member"),
        provider_b_member=factories.provider_member(provider_b, username="pb-member"),
        agent=factories.support("agent"),
    )


@dataclass
class Apis:
    """One authenticated API client per party of the world, each signing as real callers do."""

    alice: Api  # wallet-signed customer
    bob: Api  # wallet-signed customer
    provider_a: Api  # HMAC machine credential
    provider_b: Api
    provider_a_member: Api  # portal session
    provider_b_member: Api
    agent: Api  # support, portal session
    anonymous: Api

    def all(self) -> dict[str, Api]:
        return dict(vars(self))


def _session_api(user_id: int | None) -> Api:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return Api(client=client)


def _hmac_api(provider: ProviderAccount) -> Api:
    issued = provider_credential_issue(provider=provider, label="tests")
    return Api(HmacSigner(principal=issued.credential.principal, secret=issued.secret))


@pytest.fixture
def apis(world: World) -> Apis:
    return Apis(
        alice=Api(WalletSigner(world.alice_key)),
        bob=Api(WalletSigner(world.bob_key)),
        provider_a=_hmac_api(world.provider_a),
        provider_b=_hmac_api(world.provider_b),
        provider_a_member=_session_api(world.provider_a_member.user_id),
        provider_b_member=_session_api(world.provider_b_member.user_id),
        agent=_session_api(world.agent.user_id),
        anonymous=Api(),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they keep Playwright's event loop running until the session ends.

    Under pytest-xdist every worker collects in this order and `--dist load` (what `make test` uses) hands
    each worker tests in it, so on each worker too the browser tests come last; `pytest_runtest_setup`
    below fails a test that would run after one (as `--dist worksteal` could make it)."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


_browser_test_ran = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test after a browser test in the same process would run beside Playwright's event loop (and with
    Django's async-safety check off, see tests/e2e/conftest.py): refused, not run in a state it never
    meant to run in."""
    global _browser_test_ran  # noqa: PLW0603 - one flag per test process
    if item.get_closest_marker("e2e") is not None:
        _browser_test_ran = True
    elif _browser_test_ran:
        pytest.fail(
            f"{item.nodeid} was scheduled after a browser test in this process; the browser tests must run "
            "last (tests/conftest.py orders them; with pytest-xdist use --dist load)",
            pytrace=False,
        )


class FrozenClock:
    """`django.utils.timezone.now` held still (services stamp what they write with it); set `now` or
    `advance` it by hand. Request signing and throttles read the system clock and are not affected."""

    def __init__(self, start: datetime.datetime) -> None:
        self.now = start

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, delta: datetime.timedelta) -> datetime.datetime:
        self.now += delta
        return self.now


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """A frozen clock, starting at the real now."""
    frozen = FrozenClock(timezone.now())
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def throttle_clock_pinned(monkeypatch: pytest.MonkeyPatch) -> float:
    """The API throttles count in fixed windows of wall-clock time: a test that makes N calls against an
    N-per-minute budget would see the budget renewed if its calls straddled a minute. Pinned, the calls
    all fall in one window (the real one of now)."""
    pinned = time.time()
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: pinned))
    return pinned


@pytest.fixture(autouse=True)
def _fresh_channel_layers() -> None:
    """Each test runs its sockets on an event loop of its own; a channel layer instance keeps asyncio
    locks that bind to the loop that first waited on them, so a test that ends while its fan-out hub is
    receiving would leave the next test's hub a lock of a dead loop. Each test gets layers of its own."""
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Throttles and cooldowns live in Redis, verified credentials in a per-process cache: each test
    starts with none of them."""
    cache.clear()
    credential_cache_clear()


# -- Chain: every test gets its own ledger, node key, support key and relayer key (tmp paths). ----------


@dataclass
class ChainKeys:
    """The X25519 key pairs (raw private, raw public) of the parties an envelope may be sealed to."""

    customer: tuple[bytes, bytes]
    provider: tuple[bytes, bytes]
    support: tuple[bytes, bytes]
    ledger_path: Path


def _pair() -> tuple[str, bytes, bytes]:
    private_b64, public_b64 = envelopes.generate_keypair()
    return private_b64, envelopes.private_key_from_b64(private_b64), envelopes.public_key_from_b64(public_b64)


@pytest.fixture
def chain_settings(settings, tmp_path) -> ChainKeys:
    """Local backend on a temporary ledger, with support's key pair set by setting."""
    support_b64, support_private, support_public = _pair()
    settings.VE_CHAIN_BACKEND = "local"
    settings.VE_CHAIN_LEDGER_PATH = tmp_path / "ledger" / "ledger.jsonl"
    settings.VE_CHAIN_NODE_KEY_PATH = tmp_path / "ledger" / "node.key"
    settings.VE_CHAIN_SUPPORT_PRIVATE_KEY = support_b64
    settings.VE_CHAIN_SUPPORT_KEY_PATH = tmp_path / "chain" / "support.key"
    settings.VE_CHAIN_SIGNER_PRIVATE_KEY = ""
    settings.VE_CHAIN_SIGNER_KEY_PATH = tmp_path / "chain" / "signer.key"
    settings.VE_CHAIN_RETRY_BASE_SECONDS = 2.0
    settings.VE_CHAIN_RETRY_MAX_SECONDS = 300.0
    _, customer_private, customer_public = _pair()
    _, provider_private, provider_public = _pair()
    return ChainKeys(
        customer=(customer_private, customer_public),
        provider=(provider_private, provider_public),
        support=(support_private, support_public),
        ledger_path=settings.VE_CHAIN_LEDGER_PATH,
    )


@pytest.fixture
def keyed_world(world, chain_settings):
    """The world, with envelope keys registered for alice and provider A."""
    CustomerIdentity.objects.filter(address=world.alice.address).update(
        envelope_public_key=base64.b64encode(chain_settings.customer[1]).decode()
    )
    world.provider_a.envelope_public_key = base64.b64encode(chain_settings.provider[1]).decode()
    world.provider_a.save(update_fields=["envelope_public_key"])
    world.keys = chain_settings
    return world
