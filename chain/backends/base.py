"""What a chain backend is: it anchors sealed x/support messages and hands back receipts.

Verification (`chain.verification`) asks a backend for what it anchored (`read_anchored`).

The drain (`chain.services.outbox_drain`) gives a backend a batch of submissions in per-ticket order and
gets one result per submission: a `Receipt` (anchored: where and when) or a `Failure`. A backend must
- be idempotent per `idempotency_key`: a submission whose key is already anchored is not anchored again;
  its receipt is the one of the anchored tx;
- never anchor a submission after a failed one of the same `group` (the ticket) in the same batch: the
  successors come back as failures with `attempted=False`, to be retried after their predecessor;
- persist, through `record_state`, whatever it needs to recognise its own earlier attempt after a crash
  (the drain stores it on the outbox row and passes it back as `Submission.state` on the next attempt).
"""

from __future__ import annotations

import abc
import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Submission:
    """One event to anchor."""

    idempotency_key: str
    group: str  # events of one group (a ticket) are anchored in the order given, never past a failure
    message: Mapping[str, Any]
    state: Mapping[str, Any] = field(default_factory=dict)  # what this backend recorded on an earlier attempt


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where an event is anchored."""

    idempotency_key: str
    backend: str
    tx_hash: str
    height: int
    anchored_at: datetime.datetime
    new: bool = True  # False when the key was already anchored (a resubmission)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an event is not anchored (yet). `attempted` is False when a predecessor's failure held it back."""

    idempotency_key: str
    error: str
    attempted: bool = True


@dataclass(frozen=True, slots=True)
class AnchoredTx:
    """A tx as read back from the ledger or chain: `{"idempotency_key", "msg"}` and where it sits."""

    height: int  # as its block claims it
    position: int  # its place in the ledger's own order (what "anchored before" means)
    index: int
    tx: dict[str, Any]
    tx_hash: str


@dataclass(frozen=True, slots=True)
class LedgerProblem:
    """Something wrong with the ledger itself, not with one event (a broken link, a bad signature)."""

    kind: str
    message: str


@dataclass
class LedgerContents:
    """Everything a backend can read back of what it anchored, for verification."""

    txs: dict[str, AnchoredTx] = field(default_factory=dict)  # by idempotency key, first occurrence
    blocks: int = 0
    tx_count: int = 0
    top_height: int = 0  # the highest block height read: how far the read reached
    problems: list[LedgerProblem] = field(default_factory=list)


Result = Receipt | Failure
# (idempotency key, note) → whether the note was kept: False when the row is no longer ours to send.
RecordState = Callable[[str, Mapping[str, Any]], bool]


class BackendError(Exception):
    """The backend cannot take submissions right now (node down, disk full, bad answer)."""


class ChainBackend(abc.ABC):
    """Anchors submissions; see the module docstring for the contract."""

    name: str
    # True when everything it sends is numbered from one sequence (a chain account's): two drains sending at
    # once would take each other's numbers, so the drain lets one send at a time (`chain.services`).
    single_sender: bool = False

    @abc.abstractmethod
    def submit(self, submissions: Sequence[Submission], *, record_state: RecordState) -> list[Result]:
        """One result per submission, in the same order."""

    @abc.abstractmethod
    def read_anchored(self) -> LedgerContents:
        """Every tx anchored so far, read back and checked as far as this backend can (for verification)."""


def hold_back_successors(submissions: Sequence[Submission], results: Mapping[str, Result]) -> list[Result]:
    """Results in submission order; a group's submissions after its first failure become unattempted."""
    failed: dict[str, str] = {}
    ordered: list[Result] = []
    for submission in submissions:
        result = results.get(submission.idempotency_key)
        if submission.group in failed:
            ordered.append(
                Failure(
                    submission.idempotency_key,
                    f"waiting for an earlier event of the ticket: {failed[submission.group]}",
                    attempted=False,
                )
            )
            continue
        if result is None:
            result = Failure(submission.idempotency_key, "not submitted", attempted=False)
        if isinstance(result, Failure):
            failed[submission.group] = result.error
        ordered.append(result)
    return ordered
