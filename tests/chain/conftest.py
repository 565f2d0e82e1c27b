"""Chain fixtures: every test gets its own ledger, node key, support key and relayer key (tmp paths)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain import envelopes
from providers.models import CustomerIdentity


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
