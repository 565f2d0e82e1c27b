"""Chain backends, chosen by `VE_CHAIN_BACKEND`: `local` (the embedded signed ledger) or `cometbft`."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chain import keys
from chain.backends import local
from chain.backends.base import ChainBackend
from chain.backends.cometbft import CometBftBackend
from chain.backends.local import LocalLedgerBackend
from chain.cosmos_tx import Fee


def get_backend() -> ChainBackend:
    """The configured backend. One instance per configuration and process: the local ledger keeps its
    idempotency index in memory, and the CometBFT client its account sequence."""
    name = settings.VE_CHAIN_BACKEND
    if name == "local":
        return _local(
            str(settings.VE_CHAIN_LEDGER_PATH),
            str(settings.VE_CHAIN_NODE_KEY_PATH),
            settings.VE_CHAIN_LEDGER_MAX_TXS_PER_BLOCK,
        )
    if name == "cometbft":
        return _cometbft(
            _CometConfig(
                rpc_url=settings.VE_CHAIN_COMETBFT_RPC_URL,
                chain_id=settings.VE_CHAIN_ID,
                private_key=keys.signer_private_key(),
                relayer_address=keys.relayer_address(),
                fee=Fee(
                    amount=settings.VE_CHAIN_FEE_AMOUNT,
                    denom=settings.VE_CHAIN_FEE_DENOM,
                    gas_limit=settings.VE_CHAIN_GAS_LIMIT,
                ),
                timeout=settings.VE_CHAIN_COMETBFT_TIMEOUT_SECONDS,
                confirm_timeout=settings.VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS,
                poll_seconds=settings.VE_CHAIN_COMETBFT_POLL_SECONDS,
            )
        )
    raise ImproperlyConfigured(f"VE_CHAIN_BACKEND must be local or cometbft, not {name!r}")


@functools.lru_cache(maxsize=8)
def _local(path: str, node_key_path: str, max_txs_per_block: int) -> ChainBackend:
    del node_key_path  # part of the cache key only; keys.node_signing_key reads the setting
    return LocalLedgerBackend(Path(path), keys.node_signing_key(), max_txs_per_block=max_txs_per_block)


def local_backend_at(path: Path) -> LocalLedgerBackend:
    """A local backend on another ledger file, signed by this installation's node key (`verify_chain --ledger`)."""
    return LocalLedgerBackend(
        Path(path), keys.node_signing_key(), max_txs_per_block=settings.VE_CHAIN_LEDGER_MAX_TXS_PER_BLOCK
    )


@dataclass(frozen=True, slots=True)
class _CometConfig:
    rpc_url: str
    chain_id: str
    private_key: bytes
    relayer_address: str
    fee: Fee
    timeout: float
    confirm_timeout: float
    poll_seconds: float


@functools.lru_cache(maxsize=8)
def _cometbft(config: _CometConfig) -> ChainBackend:
    # Shallow on purpose: `fee` stays a Fee (dataclasses.asdict would turn it into a dict).
    return CometBftBackend(
        **{field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    )


__all__ = ["ChainBackend", "get_backend", "local", "local_backend_at"]
