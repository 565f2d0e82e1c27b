"""Chain fixtures live in tests/conftest.py (`chain_settings`, `keyed_world`): the console's tests use them too.
Here only what the chain tests alone use: the CometBFT test node."""

from __future__ import annotations

import coincurve
import pytest

from chain import keys
from tests.chain.cometbft_node import FakeNode, NodeServer


@pytest.fixture
def node(keyed_world, settings):
    """The cometbft backend, configured against a test node on a loopback port (the node is yielded)."""
    signer = coincurve.PrivateKey()
    settings.VE_CHAIN_SIGNER_PRIVATE_KEY = signer.secret.hex()
    settings.VE_CHAIN_BACKEND = "cometbft"
    settings.VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS = 2.0
    settings.VE_CHAIN_COMETBFT_POLL_SECONDS = 0.01
    settings.VE_CHAIN_COMETBFT_TIMEOUT_SECONDS = 2.0
    fake = FakeNode(
        chain_id=settings.VE_CHAIN_ID,
        address=keys.relayer_address(),
        public_key=signer.public_key.format(compressed=True),
        sequence=3,  # the relayer has sent txs before
    )
    with NodeServer(fake) as server:
        settings.VE_CHAIN_COMETBFT_RPC_URL = server.url
        yield fake
