"""The `local` backend: the embedded, append-only, signed ledger (`chain.ledger.Ledger`).

A batch becomes one or more blocks in a single `Ledger.submit` call (one fsync per block), so the whole
batch is anchored or none of it is. The ledger dedupes by idempotency key under its file lock, so a batch
resubmitted after a crash between the append and the receipt being recorded gets the receipts of the txs
already anchored, not a second copy.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import nacl.signing

from chain.backends import base
from chain.ledger import (
    IDEMPOTENCY_KEY,
    Ledger,
    LedgerError,
    make_tx,
    public_key_b64,
    settled_size,
    tx_hash,
)
from chain.ledger_verification import verify_ledger
from core.formats import parse_iso_timestamp

NAME = "local"


def parse_block_time(text: str) -> datetime.datetime:
    """A block's `time` (ISO-8601 UTC with `Z`) as an aware datetime."""
    return parse_iso_timestamp(text)


class LocalLedgerBackend(base.ChainBackend):
    name = NAME

    def __init__(self, path: Path, signing_key: nacl.signing.SigningKey, *, max_txs_per_block: int) -> None:
        self.path = Path(path)
        self.signing_key = signing_key
        self.max_txs_per_block = max_txs_per_block
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        # Opened lazily: opening reads the whole file to build the idempotency index.
        if self._ledger is None:
            self._ledger = Ledger(self.path, self.signing_key, max_txs_per_block=self.max_txs_per_block)
        return self._ledger

    def submit(
        self,
        submissions: Sequence[base.Submission],
        *,
        record_state: base.RecordState,  # noqa: ARG002 - nothing to note ahead: the ledger dedupes by key
    ) -> list[base.Result]:
        txs = [make_tx(s.message, s.idempotency_key) for s in submissions]
        try:
            receipts = self.ledger.submit(txs)
        except (LedgerError, OSError, ValueError, TypeError) as exc:
            # The ledger writes nothing unless the whole batch serialises, and acknowledges a block only
            # once it is on disk: on any error the batch is simply retried.
            self._ledger = None  # re-read the file next time rather than trust a cache beside an error
            error = f"{type(exc).__name__}: {exc}"
            return [base.Failure(s.idempotency_key, error) for s in submissions]
        return [
            base.Receipt(
                idempotency_key=receipt.idempotency_key,
                backend=NAME,
                tx_hash=receipt.tx_hash,
                height=receipt.height,
                anchored_at=parse_block_time(receipt.time),
                new=receipt.new,
            )
            for receipt in receipts
        ]

    def read_anchored(self) -> base.LedgerContents:
        """Every tx readable in the file, by idempotency key (first occurrence), tolerant of damage, with
        what `verify_ledger` finds wrong with the file (trusting only this backend's node key).

        One pass over the file as far as it was whole when the read began (`settled_size`): the blocks
        verified are the blocks whose txs are returned, and a block appended meanwhile is neither read
        half-written (a torn tail that is not one) nor read at all.
        """
        contents = base.LedgerContents()

        def collect(block: dict, height: int, line_number: int) -> None:
            contents.blocks += 1
            contents.top_height = max(contents.top_height, height)
            for index, tx in enumerate(block["txs"]):
                key = tx.get(IDEMPOTENCY_KEY) if isinstance(tx, dict) else None
                if not isinstance(key, str):
                    continue
                contents.tx_count += 1
                if key not in contents.txs:
                    try:
                        digest = tx_hash(tx)
                    except (TypeError, ValueError):
                        digest = ""
                    contents.txs[key] = base.AnchoredTx(height, line_number, index, tx, digest)

        findings = verify_ledger(
            self.path,
            trusted_pubkey_b64=public_key_b64(self.signing_key),
            end=settled_size(self.path),
            visit=collect,
        )
        for finding in findings:
            contents.problems.append(
                base.LedgerProblem(str(finding.kind), f"block {finding.height}: {finding.message}")
            )
        return contents


__all__ = ["NAME", "LocalLedgerBackend", "parse_block_time"]
