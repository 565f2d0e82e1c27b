"""Verification of a `local` ledger file: every block's height, link, Merkle root, hash and signature, and
idempotency keys unique across the ledger (`verify_ledger`). The file format is `chain.ledger`'s.

Pure module: no Django, no database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import nacl.exceptions
import nacl.signing

from chain.ledger import GENESIS_PREV_HASH, LedgerError, block_hash_of, merkle_root, tx_idempotency_key

__all__ = ["BlockVisitor", "FindingKind", "LedgerFinding", "verify_ledger"]


class FindingKind(StrEnum):
    MISSING = "missing"
    UNPARSABLE = "unparsable"
    TORN_TAIL = "torn_tail"
    MALFORMED = "malformed"
    HEIGHT = "height"
    PREV_HASH = "prev_hash"
    MERKLE_ROOT = "merkle_root"
    BLOCK_HASH = "block_hash"
    SIGNATURE = "signature"
    SIGNER = "signer"
    MALFORMED_TX = "malformed_tx"
    DUPLICATE_KEY = "duplicate_idempotency_key"


class LedgerFinding(NamedTuple):
    """One problem found by `verify_ledger`; `height` is the block's claimed (or expected) height."""

    height: int | None
    kind: FindingKind
    message: str
    line: int | None = None


def _signature_problem(block: Mapping[str, Any], block_hash: str) -> str | None:
    try:
        verify_key = nacl.signing.VerifyKey(base64.b64decode(str(block.get("signer_pubkey")), validate=True))
        signature = base64.b64decode(str(block.get("signature")), validate=True)
        verify_key.verify(bytes.fromhex(block_hash), signature)
    except (binascii.Error, ValueError, TypeError, nacl.exceptions.CryptoError) as exc:
        return f"signature does not verify against signer_pubkey ({type(exc).__name__})"
    return None


def _block_problems(
    block: dict[str, Any], *, prev_hash: str | None, trusted_pubkey_b64: str | None
) -> Iterator[tuple[FindingKind, str]]:
    """Everything wrong with one parsed block, apart from its height and its txs' keys."""
    block_hash = block_hash_of(block)
    if prev_hash is not None and block.get("prev_hash") != prev_hash:
        yield (
            FindingKind.PREV_HASH,
            "prev_hash is not the hash of the previous block (a block was dropped or moved)",
        )
    try:
        recomputed_root = merkle_root(block["txs"])
    except (TypeError, ValueError) as exc:
        yield FindingKind.MALFORMED_TX, f"txs cannot be serialised canonically ({exc})"
    else:
        if block.get("merkle_root") != recomputed_root:
            yield (
                FindingKind.MERKLE_ROOT,
                "merkle_root does not match the txs (a tx was edited, added or removed)",
            )
    if block.get("block_hash") != block_hash:
        yield FindingKind.BLOCK_HASH, "block_hash does not match the header (the header was edited)"
    problem = _signature_problem(block, block_hash)
    if problem:
        yield FindingKind.SIGNATURE, problem
    if trusted_pubkey_b64 is not None and block.get("signer_pubkey") != trusted_pubkey_b64:
        yield FindingKind.SIGNER, "block is signed by a key other than the trusted node key"


def _key_problems(
    txs: list[Any], height: int, first_block_of_key: dict[str, int]
) -> Iterator[tuple[FindingKind, str]]:
    """Txs without a usable idempotency key, and keys seen in an earlier block (recorded as we go)."""
    for index, tx in enumerate(txs):
        try:
            key = tx_idempotency_key(tx)
        except LedgerError as exc:
            yield FindingKind.MALFORMED_TX, f"tx {index}: {exc}"
            continue
        if key in first_block_of_key:
            yield (
                FindingKind.DUPLICATE_KEY,
                f"tx {index}: idempotency key {key!r} is already in block {first_block_of_key[key]}",
            )
        else:
            first_block_of_key[key] = height


def _lines(fh: BinaryIO, end: int | None) -> Iterator[bytes]:
    """The file's lines, the last one cut at `end` bytes (if given)."""
    offset = 0
    for raw in fh:
        if end is not None:
            if offset >= end:
                return
            raw = raw[: end - offset]  # noqa: PLW2901 - the line as far as the settled file held it
        offset += len(raw)
        yield raw


# Called with each block that has a txs list, its height (its own, or the expected one when it has none
# usable) and its line number, whatever else is wrong with it.
BlockVisitor = Callable[[dict[str, Any], int, int], None]


def verify_ledger(
    path: Path,
    trusted_pubkey_b64: str | None = None,
    *,
    end: int | None = None,
    visit: BlockVisitor | None = None,
) -> list[LedgerFinding]:
    """Walk every block and report what does not hold; an empty list means the ledger is intact.

    Per block: JSON, shape, height continuity from 1, `prev_hash` = recomputed hash of the previous block,
    `merkle_root` recomputed from the txs, `block_hash` recomputed from the header, the Ed25519 signature,
    the signer (when `trusted_pubkey_b64` is given), and idempotency keys unique across the ledger.

    Reads without the append lock, up to `end` bytes if given: with `end` from `chain.ledger.settled_size`,
    only whole blocks (a block appended meanwhile lies beyond it); without, to the end of the file, where a
    block being appended at that moment may show as a torn tail. `visit` sees every block read, so that a
    caller gets the blocks it verified in the same pass.
    """
    path = Path(path)
    if not path.exists():
        return [LedgerFinding(None, FindingKind.MISSING, f"{path} does not exist")]
    findings: list[LedgerFinding] = []
    expected = 1
    prev_hash: str | None = GENESIS_PREV_HASH
    first_block_of_key: dict[str, int] = {}
    with path.open("rb") as fh:
        for line_number, raw in enumerate(_lines(fh, end), start=1):
            if not raw.endswith(b"\n"):
                message = "last line has no newline (a torn, unacknowledged write)"
                findings.append(LedgerFinding(expected, FindingKind.TORN_TAIL, message, line_number))
                break
            try:
                block = json.loads(raw)
            except ValueError:
                block = None
                findings.append(
                    LedgerFinding(expected, FindingKind.UNPARSABLE, "line is not JSON", line_number)
                )
            else:
                if not isinstance(block, dict) or not isinstance(block.get("txs"), list):
                    block = None
                    message = "line is not a block object with a txs list"
                    findings.append(LedgerFinding(expected, FindingKind.MALFORMED, message, line_number))
            if block is None:
                # The next block cannot be linked to this line; keep counting heights.
                expected, prev_hash = expected + 1, None
                continue
            height = block.get("height")
            if not isinstance(height, int) or isinstance(height, bool):
                message = f"height {height!r} is not an integer"
                findings.append(LedgerFinding(expected, FindingKind.MALFORMED, message, line_number))
                height = expected
            elif height != expected:
                message = f"height {height} where {expected} was expected (a block was dropped or moved)"
                findings.append(LedgerFinding(height, FindingKind.HEIGHT, message, line_number))
            for kind, message in _block_problems(
                block, prev_hash=prev_hash, trusted_pubkey_b64=trusted_pubkey_b64
            ):
                findings.append(LedgerFinding(height, kind, message, line_number))
            for kind, message in _key_problems(block["txs"], height, first_block_of_key):
                findings.append(LedgerFinding(height, kind, message, line_number))
            if visit is not None:
                visit(block, height, line_number)
            # Continue from the block's own height so one gap is one finding, not one per later block.
            expected, prev_hash = height + 1, block_hash_of(block)
    return findings
