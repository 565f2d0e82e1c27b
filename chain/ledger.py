"""The `local` ledger backend's storage: an append-only, hash-linked, Ed25519-signed chain of blocks.

One file, JSON Lines, one block per line (canonical JSON)::

    {"block_hash", "height", "merkle_root", "prev_hash", "signature", "signer_pubkey", "time", "txs"}

* A tx is a JSON object: the `x/support` message plus its `idempotency_key` (see `make_tx`). Its bytes
  are its canonical JSON; `tx_hash` = hex SHA-256 of those bytes.
* `merkle_root` is an RFC 6962 Merkle tree over the txs (leaf = SHA-256(0x00 ‖ tx bytes),
  node = SHA-256(0x01 ‖ left ‖ right), an odd node is promoted; empty tree = SHA-256(b"")).
* The header is the block without `txs`, `signature` and `block_hash` (so it includes `merkle_root`,
  which commits to the txs); `block_hash` = hex SHA-256(canonical header). The stored `block_hash` is a
  convenience for readers: verification always recomputes it.
* `signature` = Ed25519 (base64) by `signer_pubkey` over the 32 raw bytes of the block hash.
* Height 1 links to `GENESIS_PREV_HASH`.

Durability: a block is acknowledged only after its line (with the newline) is written and fsync'ed.
A crash mid-write leaves a torn last line; it was never acknowledged, so the next writer truncates it
(keeping a copy in `<ledger>.torn` for the curious). Several processes may append: each append holds an
exclusive `flock` on `<ledger>.lock` and first catches up with what the others appended.

Verification of the file (every link, root, hash and signature) is `chain.ledger_verification`. A reader
that does not append takes the lock only for a moment, to learn how far the file is whole (`settled_size`),
and reads up to there without it: appends only add bytes after that point.

Pure module: no Django, no database.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import nacl.signing

from chain.blocks import (
    GENESIS_PREV_HASH,
    IDEMPOTENCY_KEY,
    LedgerError,
    block_hash_of,
    fsync_dir,
    load_or_create_node_key,
    make_tx,
    merkle_root,
    merkle_root_of_bytes,
    public_key_b64,
    tx_hash,
    tx_idempotency_key,
)
from core.formats import canonical_json_bytes, iso_timestamp

logger = logging.getLogger(__name__)

DEFAULT_MAX_TXS_PER_BLOCK = 1000

__all__ = [
    "GENESIS_PREV_HASH",
    "BlockReceipt",
    "Ledger",
    "LedgerError",
    "TxLocation",
    "TxReceipt",
    "TxRef",
    "block_hash_of",
    "load_or_create_node_key",
    "make_tx",
    "merkle_root",
    "public_key_b64",
    "settled_size",
    "tx_hash",
    "tx_idempotency_key",
]


class BlockReceipt(NamedTuple):
    """What an appended block acknowledges."""

    height: int
    block_hash: str
    tx_hashes: tuple[str, ...]
    time: str


class TxReceipt(NamedTuple):
    """Where a submitted tx is anchored; `new` is False when it was already in the ledger."""

    idempotency_key: str
    tx_hash: str
    height: int
    index: int
    block_hash: str
    time: str
    new: bool


class TxRef(NamedTuple):
    """A tx's place in the ledger, as kept in the in-memory index."""

    height: int
    index: int
    tx_hash: str


class TxLocation(NamedTuple):
    """A tx's place in the ledger with the tx itself (read from disk on demand)."""

    height: int
    index: int
    tx_hash: str
    block_hash: str
    tx: dict[str, Any]


class _IndexEntry(NamedTuple):
    height: int
    index: int
    tx_hash: str
    offset: int  # file offset of the tx's canonical bytes inside its block line
    length: int


_TXS_KEY = b',"txs":['


def _tx_spans(line: bytes, tx_bytes: Sequence[bytes]) -> Iterator[tuple[int, int]]:
    """(offset in line, length) of each tx inside a canonical block line.

    In canonical JSON `txs` is the block's last key and each element is written exactly as its own canonical
    form, so the spans follow from the lengths. The first `,"txs":[` is the block's own key: the header
    values before it are strings, in which a `"` is always escaped. `find_tx` checks the span's hash anyway.
    """
    position = line.find(_TXS_KEY) + len(_TXS_KEY)
    for raw in tx_bytes:
        yield position, len(raw)
        position += len(raw) + 1  # the comma


@dataclass(frozen=True, slots=True)
class _BlockRef:
    offset: int
    length: int
    block_hash: str
    time: str


@dataclass(frozen=True, slots=True)
class _FileId:
    dev: int
    ino: int
    size: int
    mtime_ns: int


def _split_complete_lines(data: bytes, base_offset: int) -> tuple[list[tuple[int, bytes]], int]:
    """Lines ending in a newline, with their file offsets, and the offset just past the last one."""
    lines = []
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            break
        lines.append((base_offset + start, data[start:end]))
        start = end + 1
    return lines, base_offset + start


def lock_path_of(path: Path) -> Path:
    """The file whose `flock` every append to the ledger at `path` holds."""
    return path.with_name(path.name + ".lock")


def settled_size(path: Path) -> int | None:
    """The ledger file's size at a moment when no append is under way (None if there is no file).

    Appends hold the lock exclusively while they write, so under the shared lock the file ends after a whole
    block (or in a crash's torn tail, which the next writer truncates). Blocks appended afterwards only add
    bytes beyond this size: a reader that stops there reads whole blocks, never one half written. The lock
    is held only for the `stat`, so a long read does not hold up the writers. A ledger no writer has ever
    opened has no lock file: it is not created here (the reader may be looking at a copy, read-only).
    """
    path = Path(path)
    try:
        fd = os.open(lock_path_of(path), os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


class Ledger:
    """An append-only signed block file with an in-memory idempotency index.

    The index (idempotency key → height, index, tx hash) and the block offsets are rebuilt from the
    file on first use and then kept up to date incrementally: each call compares the file's identity
    (device, inode, size, mtime) with the cached one and reads only what other processes appended.
    """

    def __init__(
        self,
        path: Path,
        signing_key: nacl.signing.SigningKey,
        *,
        max_txs_per_block: int = DEFAULT_MAX_TXS_PER_BLOCK,
    ) -> None:
        self.path = Path(path)
        self.lock_path = lock_path_of(self.path)
        self.torn_path = self.path.with_name(self.path.name + ".torn")
        self.signing_key = signing_key
        self.signer_pubkey = public_key_b64(signing_key)
        self.max_txs_per_block = max_txs_per_block
        self._reset_cache()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(exclusive=True):
            created = not self.path.exists()
            # O_APPEND without O_TRUNC: creating is a no-op for an existing ledger.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            if created:
                fsync_dir(self.path.parent)
            self._refresh(repair=True)

    # -- locking and the cached view of the file -------------------------------------------------

    def _reset_cache(self) -> None:
        self._file_id: _FileId | None = None
        self._end = 0  # offset just past the last complete, parsed block line
        self._blocks: list[_BlockRef] = []  # index = height - 1
        self._keys: dict[str, _IndexEntry] = {}
        self._last_hash = GENESIS_PREV_HASH

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        # The lock file is opened afresh for every operation: flock locks belong to the open file
        # description, so a descriptor inherited across fork() would let parent and child both "hold" it.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _stat(self) -> _FileId | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return _FileId(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self, *, repair: bool) -> None:
        """Bring the cache up to date with the file. Caller holds the lock (exclusive if `repair`)."""
        current = self._stat()
        cached = self._file_id
        if current is None:
            self._reset_cache()
            return
        # Unchanged file: nothing to read. Except for a writer when a reader left a torn tail in place
        # (the cached size then runs past `_end`): the writer must still repair it.
        if cached is not None and current == cached and (current.size == self._end or not repair):
            return
        rewritten = (
            cached is None
            or (current.dev, current.ino) != (cached.dev, cached.ino)
            or current.size < self._end
            or (current.size == cached.size and current.mtime_ns != cached.mtime_ns)
        )
        if rewritten:
            self._reset_cache()
        with self.path.open("rb") as fh:
            fh.seek(self._end)
            data = fh.read()
        base = self._end
        lines, complete_end = _split_complete_lines(data, base)
        for number, (offset, line) in enumerate(lines):
            try:
                block = json.loads(line)
            except ValueError as exc:
                if number == len(lines) - 1 and complete_end == current.size:
                    # An unparsable *last* line is a torn write whose newline reached the disk (a crash
                    # can extend a file before its data lands, leaving zeros): never acknowledged.
                    self._handle_torn_tail(offset, current, repair=repair)
                    return
                raise LedgerError(
                    f"{self.path}: line at byte {offset} is not JSON; run verify_ledger"
                ) from exc
            # A parsable block that does not fit (wrong height, broken link) is tampering, not a torn
            # write: refuse to build on it rather than truncate it away.
            self._index_block(block, offset, line)
        if complete_end < current.size:
            self._handle_torn_tail(complete_end, current, repair=repair)
            return
        self._file_id = current

    def _handle_torn_tail(self, offset: int, current: _FileId, *, repair: bool) -> None:
        if not repair:
            # Readers hold a shared lock, so a torn tail they see is a crash's leftover, not a write in
            # progress: they ignore it (the cache stops at `offset`) and leave the repair to the next writer.
            self._file_id = current
            return
        with self.path.open("rb") as fh:
            fh.seek(offset)
            torn = fh.read()
        logger.warning(
            "%s: truncating a torn last block (%d bytes at offset %d)", self.path, len(torn), offset
        )
        # Keep the bytes for inspection; they were never acknowledged, so nothing depends on them.
        with self.torn_path.open("ab") as keep:
            keep.write(torn + b"\n")
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._file_id = self._stat()

    def _index_block(self, block: Any, offset: int, line: bytes) -> None:
        if not isinstance(block, dict) or not isinstance(block.get("txs"), list):
            raise LedgerError("not a block object")
        height = block.get("height")
        if height != len(self._blocks) + 1:
            raise LedgerError(f"height {height!r} where {len(self._blocks) + 1} was expected")
        block_hash = block_hash_of(block)
        if block.get("prev_hash") != self._last_hash:
            raise LedgerError(f"block {height} does not link to block {height - 1}")
        for tx in block["txs"]:
            tx_idempotency_key(tx)
        self._add_block(block["txs"], [canonical_json_bytes(tx) for tx in block["txs"]], line, offset)
        self._blocks.append(_BlockRef(offset, len(line) + 1, block_hash, str(block.get("time", ""))))
        self._last_hash = block_hash
        self._end = offset + len(line) + 1

    def _add_block(
        self, txs: list[dict[str, Any]], tx_bytes: list[bytes], line: bytes, offset: int
    ) -> list[str]:
        """Index the txs of the block at `offset` (its height is the next one); their hex hashes, in order."""
        height = len(self._blocks) + 1
        hashes = []
        spans = _tx_spans(line, tx_bytes)
        for index, (tx, raw, (start, length)) in enumerate(zip(txs, tx_bytes, spans, strict=True)):
            digest = hashlib.sha256(raw).hexdigest()
            hashes.append(digest)
            # setdefault: should a key appear twice (only a tampered file can do that), the first one counts.
            self._keys.setdefault(
                tx[IDEMPOTENCY_KEY], _IndexEntry(height, index, digest, offset + start, length)
            )
        return hashes

    # -- reading ---------------------------------------------------------------------------------

    def _read_view(self) -> None:
        with self._locked(exclusive=False):
            self._refresh(repair=False)

    def height(self) -> int:
        """The height of the last block (0 for an empty ledger)."""
        self._read_view()
        return len(self._blocks)

    def index_by_idempotency_key(self) -> Mapping[str, TxRef]:
        """A snapshot of the whole index: idempotency key → (height, index, tx hash)."""
        self._read_view()
        return {key: TxRef(e.height, e.index, e.tx_hash) for key, e in self._keys.items()}

    def find_tx(self, idempotency_key: str) -> TxLocation | None:
        """Where the tx with this idempotency key is anchored, or None: a dict lookup and one small read."""
        self._read_view()
        entry = self._keys.get(idempotency_key)
        if entry is None:
            return None
        block_ref = self._blocks[entry.height - 1]
        with self.path.open("rb") as fh:
            fh.seek(entry.offset)
            raw = fh.read(entry.length)
            if hashlib.sha256(raw).hexdigest() == entry.tx_hash:
                tx = json.loads(raw)
            else:
                # The file changed under us (or is not canonical): fall back to parsing the whole block.
                fh.seek(block_ref.offset)
                tx = json.loads(fh.read(block_ref.length))["txs"][entry.index]
        return TxLocation(entry.height, entry.index, entry.tx_hash, block_ref.block_hash, tx)

    def iter_blocks(self) -> Iterator[dict[str, Any]]:
        """Every block in height order, as stored (parsed JSON); stops at the end seen when called."""
        self._read_view()
        end = self._end
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                offset += len(line)
                if offset > end:
                    break
                yield json.loads(line)

    # -- writing ---------------------------------------------------------------------------------

    def append_block(self, txs: list[dict[str, Any]]) -> BlockReceipt:
        """Append one block holding `txs` (each with a unique `idempotency_key`) and wait for the disk."""
        tx_bytes = [canonical_json_bytes(tx) for tx in txs]
        with self._locked(exclusive=True):
            self._refresh(repair=True)
            seen: set[str] = set()
            for tx in txs:
                key = tx_idempotency_key(tx)
                if key in seen or key in self._keys:
                    raise LedgerError(f"idempotency key {key!r} is already in the ledger")
                seen.add(key)
            return self._append_locked(txs, tx_bytes)

    def submit(self, txs: list[dict[str, Any]]) -> list[TxReceipt]:
        """Anchor the txs not yet in the ledger; a receipt for every tx, in order, old and new alike.

        Idempotent across processes: the check and the append happen under one exclusive lock. A key
        repeated within `txs` is anchored once (its first tx). A tx whose key is already anchored is not
        compared with the anchored one: its receipt carries the anchored tx's hash, for the caller to compare.
        More than `max_txs_per_block` new txs are split over several blocks.
        """
        keys = [tx_idempotency_key(tx) for tx in txs]
        with self._locked(exclusive=True):
            self._refresh(repair=True)
            pending: dict[str, dict[str, Any]] = {}
            for key, tx in zip(keys, txs, strict=True):
                if key not in self._keys:
                    pending.setdefault(key, tx)
            batch = list(pending.values())
            # Serialise everything first, so that an unserialisable tx fails before any block is written.
            batch_bytes = [canonical_json_bytes(tx) for tx in batch]
            size = self.max_txs_per_block
            for start in range(0, len(batch), size):
                self._append_locked(batch[start : start + size], batch_bytes[start : start + size])
            receipts = []
            for key in keys:
                ref = self._keys[key]
                block = self._blocks[ref.height - 1]
                receipts.append(
                    TxReceipt(
                        key, ref.tx_hash, ref.height, ref.index, block.block_hash, block.time, key in pending
                    )
                )
            return receipts

    def _append_locked(self, txs: list[dict[str, Any]], tx_bytes: list[bytes]) -> BlockReceipt:
        """Write one block. Caller holds the exclusive lock and has refreshed the cache."""
        height = len(self._blocks) + 1
        block: dict[str, Any] = {
            "height": height,
            "time": iso_timestamp(datetime.now(UTC)),
            "prev_hash": self._last_hash,
            "merkle_root": merkle_root_of_bytes(tx_bytes),
            "signer_pubkey": self.signer_pubkey,
        }
        block_hash = block_hash_of(block)
        block["block_hash"] = block_hash
        block["signature"] = base64.b64encode(
            self.signing_key.sign(bytes.fromhex(block_hash)).signature
        ).decode()
        # `txs` sorts last among the block's keys: the canonical line is the header object with the txs'
        # canonical bytes (already computed) spliced in, rather than the whole block serialised again.
        head = canonical_json_bytes(block)
        line = head[:-1] + _TXS_KEY + b",".join(tx_bytes) + b"]}\n"
        block["txs"] = txs
        # O_APPEND: the line lands at the end of the file whatever our cached offset says.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            offset = os.fstat(fd).st_size
            if offset != self._end:
                # Never build on bytes we have not read: the link and the index would be wrong.
                raise LedgerError(f"{self.path}: file is {offset} bytes, {self._end} were expected")
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            # The block is acknowledged (and its txs' receipts handed out) only once it is on disk.
            os.fsync(fd)
        finally:
            os.close(fd)
        hashes = tuple(self._add_block(txs, tx_bytes, line, offset))
        self._blocks.append(_BlockRef(offset, len(line), block_hash, block["time"]))
        self._last_hash = block_hash
        self._end = offset + len(line)
        self._file_id = self._stat()
        return BlockReceipt(height, block_hash, hashes, block["time"])
