"""The local ledger's block format (see `chain.ledger` for the file): txs and their hashes, the RFC 6962
Merkle root over a block's txs, the block header and its hash, and the node's Ed25519 signing key.

Pure module: no Django, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nacl.signing

from core.formats import canonical_json_bytes
from core.secrets import create_secret_file_once

logger = logging.getLogger(__name__)

GENESIS_PREV_HASH = "0" * 64
IDEMPOTENCY_KEY = "idempotency_key"
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HEADER_FIELDS = ("height", "time", "prev_hash", "merkle_root", "signer_pubkey")
SEED_SIZE = 32


class LedgerError(Exception):
    """The ledger cannot be appended to or read as asked (corrupt file, duplicate key, bad tx)."""


def make_tx(message: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The ledger tx for one chain message: `{"idempotency_key": ..., "msg": {...}}`."""
    if not idempotency_key:
        raise LedgerError("a tx needs a non-empty idempotency key")
    return {IDEMPOTENCY_KEY: idempotency_key, "msg": dict(message)}


def tx_hash(tx: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the tx's canonical JSON."""
    return hashlib.sha256(canonical_json_bytes(tx)).hexdigest()


def merkle_root_of_bytes(leaves: Sequence[bytes]) -> str:
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = [hashlib.sha256(LEAF_PREFIX + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [
            hashlib.sha256(NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        # Promoting the odd last node (instead of duplicating it, as Bitcoin does) gives RFC 6962's tree
        # and avoids the duplicate-leaf ambiguity (CVE-2012-2459).
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def merkle_root(txs: Sequence[Mapping[str, Any]]) -> str:
    """RFC 6962 Merkle tree hash over the canonical bytes of `txs` (hex)."""
    return merkle_root_of_bytes([canonical_json_bytes(tx) for tx in txs])


def header_of(block: Mapping[str, Any]) -> dict[str, Any]:
    return {name: block.get(name) for name in HEADER_FIELDS}


def block_hash_of(block: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the block header's canonical JSON (recomputed, never read from the block)."""
    return hashlib.sha256(canonical_json_bytes(header_of(block))).hexdigest()


def public_key_b64(signing_key: nacl.signing.SigningKey) -> str:
    """The base64 Ed25519 verify key of a node key, as written into blocks' `signer_pubkey`."""
    return base64.b64encode(bytes(signing_key.verify_key)).decode("ascii")


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (a created file is not, until its directory is fsync'ed)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_node_key(path: Path) -> nacl.signing.SigningKey:
    """The node's Ed25519 block-signing key, created once (mode 0600) and reused afterwards.

    The file holds the base64 32-byte seed (see `core.secrets.create_secret_file_once`).
    """
    path = Path(path)
    create_secret_file_once(path, base64.b64encode(nacl.signing.SigningKey.generate().encode()) + b"\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("node key %s is readable by others (mode %o); it should be 0600", path, mode)
    try:
        seed = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LedgerError(f"node key {path} is not base64") from exc
    if len(seed) != SEED_SIZE:
        raise LedgerError(f"node key {path} must hold a 32-byte seed")
    return nacl.signing.SigningKey(seed)


def tx_idempotency_key(tx: Any) -> str:
    if not isinstance(tx, dict):
        raise LedgerError("a tx must be a JSON object")
    key = tx.get(IDEMPOTENCY_KEY)
    if not isinstance(key, str) or not key:
        raise LedgerError(f"a tx needs a non-empty string {IDEMPOTENCY_KEY!r}")
    return key
