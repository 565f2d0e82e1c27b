"""The `cometbft` backend: x/support messages as signed Cosmos txs, sent to a node over CometBFT JSON-RPC.

One tx per event, signed by the relayer account with SIGN_MODE_DIRECT (`chain.cosmos_tx`), its memo the
event's idempotency key. Sent with `broadcast_tx_sync` (CheckTx) and confirmed with `tx` (by hash).

Order. Txs from one account are applied in account-sequence order, but a tx that passes CheckTx can still
fail when its block executes; had a later event of the same ticket been in the same block, it would then
be anchored before its predecessor. So a batch goes out in waves: each wave holds at most one event per
ticket, and the next wave starts once the previous one is committed. Many tickets share a wave (a block).

Idempotency across crashes. Before a tx is broadcast, its hash, sequence and bytes are handed to
`record_state`, which the drain commits on the outbox row. On the next attempt the backend first looks
for that tx: committed → its receipt (nothing sent again); still possible (its sequence not yet used) →
the same bytes are re-broadcast (a node answers "already in mempool" for a copy); its sequence used by
another tx (`tx_search` on `tx.acc_seq`) → it can never be committed, so a new tx is built.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import coincurve

from chain import cosmos_tx
from chain.backends.base import (
    AnchoredTx,
    BackendError,
    ChainBackend,
    Failure,
    LedgerContents,
    LedgerProblem,
    Receipt,
    RecordState,
    Result,
    Submission,
    hold_back_successors,
)
from chain.ledger import IDEMPOTENCY_KEY

logger = logging.getLogger(__name__)

NAME = "cometbft"
CODE_OK = 0
CODE_TX_IN_MEMPOOL_CACHE = 19  # sdk ErrTxInMempoolCache: this very tx is already queued
CODE_WRONG_SEQUENCE = 32  # sdk ErrWrongSequence
SEARCH_PAGE_SIZE = 100
# The SDK's ErrWrongSequence log: "account sequence mismatch, expected 12, got 9: incorrect account sequence".
_EXPECTED_SEQUENCE = re.compile(r"account sequence mismatch, expected (\d+)")


class RpcError(BackendError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.code = error.get("code")
        self.detail = f"{error.get('message', '')} {error.get('data', '')}".strip()
        super().__init__(f"{method}: {self.detail} (code {self.code})")

    @property
    def not_found(self) -> bool:
        return "not found" in self.detail.lower()

    @property
    def already_in_cache(self) -> bool:
        return "already exists in cache" in self.detail.lower()


class CometRpc:
    """A minimal CometBFT JSON-RPC client over HTTP POST (stdlib only)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._id = 0

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": dict(params)})
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's node setting
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                raise BackendError(f"{method}: HTTP {exc.code} from {self.url}") from exc
        except (OSError, ValueError) as exc:
            raise BackendError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise BackendError(f"{method}: answer is not a JSON object")
        if answer.get("error"):
            raise RpcError(method, answer["error"])
        result = answer.get("result")
        if not isinstance(result, dict):
            raise BackendError(f"{method}: answer has no result object")
        return result


@dataclass(frozen=True, slots=True)
class _InFlight:
    submission: Submission
    tx_hash: str


def _parse_time(text: str) -> datetime.datetime | None:
    """An RFC 3339 block time with up to nanoseconds (Python parses microseconds at most)."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


class CometBftBackend(ChainBackend):
    name = NAME
    single_sender = True

    def __init__(
        self,
        *,
        rpc_url: str,
        chain_id: str,
        private_key: bytes,
        relayer_address: str,
        fee: cosmos_tx.Fee,
        timeout: float,
        confirm_timeout: float,
        poll_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpc = CometRpc(rpc_url, timeout=timeout)
        self.chain_id = chain_id
        self.private_key = private_key
        self.relayer_address = relayer_address
        self.fee = fee
        self.confirm_timeout = confirm_timeout
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self._account_number = 0
        self._chain_sequence = 0  # the account's sequence in committed state when the batch started
        self._next_sequence = 0  # the sequence the next new tx is signed with
        self._block_times: dict[int, datetime.datetime] = {}

    # -- node queries ------------------------------------------------------------------------------

    def _load_account(self) -> None:
        self._account_number, self._chain_sequence = self._account()
        self._next_sequence = self._chain_sequence

    def _account(self) -> tuple[int, int]:
        """The relayer account's number and sequence in committed state."""
        result = self.rpc.call(
            "abci_query",
            {
                "path": cosmos_tx.ACCOUNT_QUERY_PATH,
                "data": cosmos_tx.account_query_data(self.relayer_address).hex(),
                "height": "0",
                "prove": False,
            },
        )
        response = result.get("response") or {}
        if int(response.get("code") or 0) != CODE_OK:
            raise BackendError(
                f"relayer account {self.relayer_address} not usable on chain: {response.get('log', '')}"
            )
        try:
            return cosmos_tx.parse_account_response(base64.b64decode(response.get("value") or ""))
        except (ValueError, cosmos_tx.ProtoError) as exc:
            raise BackendError(f"cannot read the relayer account: {exc}") from exc

    def _find_tx(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return self.rpc.call(
                "tx", {"hash": base64.b64encode(bytes.fromhex(tx_hash)).decode(), "prove": False}
            )
        except RpcError as exc:
            if exc.not_found:
                return None
            raise

    def _tx_using_sequence(self, sequence: int) -> dict[str, Any] | None:
        result = self.rpc.call(
            "tx_search",
            {
                "query": f"tx.acc_seq='{self.relayer_address}/{sequence}'",
                "prove": False,
                "page": "1",
                "per_page": "1",
                "order_by": "asc",
            },
        )
        txs = result.get("txs") or []
        return txs[0] if txs else None

    def _block_time(self, height: int) -> datetime.datetime:
        if height not in self._block_times:
            moment = None
            try:
                header = self.rpc.call("block", {"height": str(height)}).get("block", {}).get("header", {})
                moment = _parse_time(str(header.get("time", "")))
            except BackendError:
                logger.warning("cannot read the time of block %s; using the local clock", height)
            self._block_times[height] = moment or datetime.datetime.now(datetime.UTC)
        return self._block_times[height]

    def _receipt(self, submission: Submission, found: Mapping[str, Any], *, new: bool) -> Result:
        tx_result = found.get("tx_result") or {}
        code = int(tx_result.get("code") or 0)
        tx_hash = str(found.get("hash", "")).upper()
        if code != CODE_OK:
            return Failure(
                submission.idempotency_key,
                f"tx {tx_hash} failed in block: code {code} {tx_result.get('log', '')}",
            )
        height = int(found.get("height") or 0)
        return Receipt(
            idempotency_key=submission.idempotency_key,
            backend=NAME,
            tx_hash=tx_hash,
            height=height,
            anchored_at=self._block_time(height),
            new=new,
        )

    # -- sending -----------------------------------------------------------------------------------

    def _broadcast(self, tx_bytes: bytes) -> tuple[int, str]:
        try:
            result = self.rpc.call("broadcast_tx_sync", {"tx": base64.b64encode(tx_bytes).decode()})
        except RpcError as exc:
            if exc.already_in_cache:
                return CODE_TX_IN_MEMPOOL_CACHE, exc.detail
            raise
        return int(result.get("code") or 0), str(result.get("log", ""))

    def _sign(self, submission: Submission, sequence: int) -> cosmos_tx.SignedTx:
        return cosmos_tx.sign_tx(
            messages=cosmos_tx.support_messages_to_any(submission.message),
            memo=submission.idempotency_key,
            private_key=self.private_key,
            chain_id=self.chain_id,
            account_number=self._account_number,
            sequence=sequence,
            fee=self.fee,
        )

    def _resume(self, submission: Submission) -> Result | _InFlight | None:
        """Pick up an earlier attempt of this event: a result, the same tx in flight again, or None (start anew)."""
        state = submission.state
        prior_hash, prior_sequence, prior_tx = state.get("tx_hash"), state.get("sequence"), state.get("tx")
        if not prior_hash or prior_sequence is None or not prior_tx:
            return None
        found = self._find_tx(prior_hash)
        if found is not None:
            result = self._receipt(submission, found, new=False)
            # A tx that failed in its block used its sequence but anchored nothing: start anew.
            return result if isinstance(result, Receipt) else None
        if int(prior_sequence) >= self._chain_sequence:
            return self._rebroadcast(submission, prior_hash, int(prior_sequence), base64.b64decode(prior_tx))
        other = self._tx_using_sequence(int(prior_sequence))
        if other is None:
            # The sequence is used but its tx is not indexed yet: decide on the next attempt.
            return Failure(
                submission.idempotency_key, f"sequence {prior_sequence} used; its tx is not indexed yet"
            )
        if str(other.get("hash", "")).upper() == prior_hash:
            return self._receipt(submission, other, new=False)
        return None  # another tx took the sequence: ours can never be committed

    def _rebroadcast(
        self, submission: Submission, tx_hash: str, sequence: int, tx_bytes: bytes
    ) -> _InFlight | None:
        """Its sequence is still unused, so the tx may sit in a mempool: send the very same bytes again."""
        code, log = self._broadcast(tx_bytes)
        if code in (CODE_OK, CODE_TX_IN_MEMPOOL_CACHE):
            self._next_sequence = max(self._next_sequence, sequence + 1)
            return _InFlight(submission, tx_hash)
        logger.info(
            "earlier tx %s for %s refused again (%s: %s)", tx_hash, submission.idempotency_key, code, log
        )
        return None

    def _send(self, submission: Submission, record_state: RecordState) -> Result | _InFlight:
        resumed = self._resume(submission)
        if resumed is not None:
            return resumed
        for _ in range(2):
            signed = self._sign(submission, self._next_sequence)
            # Written ahead: after a crash from here on, the next attempt recognises this tx.
            kept = record_state(
                submission.idempotency_key,
                {
                    "tx_hash": signed.tx_hash,
                    "sequence": signed.sequence,
                    "tx": base64.b64encode(signed.tx_bytes).decode(),
                },
            )
            if not kept:
                # Another worker holds the row now (our lease ran out): it sends, we must not.
                return Failure(submission.idempotency_key, "claimed by another worker", attempted=False)
            code, log = self._broadcast(signed.tx_bytes)
            if code in (CODE_OK, CODE_TX_IN_MEMPOOL_CACHE):
                self._next_sequence += 1
                return _InFlight(submission, signed.tx_hash)
            if code != CODE_WRONG_SEQUENCE:
                return Failure(submission.idempotency_key, f"CheckTx refused the tx: code {code} {log}")
            # Txs of this account wait in the mempool (sent by a drain that died or timed out) or another
            # sender used it: sign again with the number the node expects, which counts its mempool too.
            # Committed state (`_load_account`) does not, so signing from it would be refused again.
            expected = _EXPECTED_SEQUENCE.search(log)
            if expected is not None:
                self._next_sequence = int(expected.group(1))
            else:
                self._load_account()
        return Failure(submission.idempotency_key, "account sequence keeps changing under us")

    def _confirm(self, in_flight: list[_InFlight], results: dict[str, Result]) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        waiting = list(in_flight)
        while waiting:
            still = []
            for item in waiting:
                found = self._find_tx(item.tx_hash)
                if found is None:
                    still.append(item)
                else:
                    results[item.submission.idempotency_key] = self._receipt(item.submission, found, new=True)
            waiting = still
            if not waiting:
                return
            if time.monotonic() >= deadline:
                for item in waiting:
                    results[item.submission.idempotency_key] = Failure(
                        item.submission.idempotency_key,
                        f"tx {item.tx_hash} not committed within {self.confirm_timeout:g} s; checked again next time",
                    )
                return
            self.sleep(self.poll_seconds)

    def submit(self, submissions: Sequence[Submission], *, record_state: RecordState) -> list[Result]:
        results: dict[str, Result] = {}
        queues: OrderedDict[str, deque[Submission]] = OrderedDict()
        for submission in submissions:
            queues.setdefault(submission.group, deque()).append(submission)
        try:
            self._load_account()
            while queues:
                wave = [queue.popleft() for queue in queues.values()]
                in_flight = []
                for submission in wave:
                    outcome = self._send(submission, record_state)
                    if isinstance(outcome, _InFlight):
                        in_flight.append(outcome)
                    else:
                        results[submission.idempotency_key] = outcome
                self._confirm(in_flight, results)
                for submission in wave:
                    queue = queues[submission.group]
                    # A failed event holds back the rest of its ticket (hold_back_successors reports them).
                    if not queue or isinstance(results.get(submission.idempotency_key), Failure):
                        del queues[submission.group]
        except BackendError as exc:
            error = str(exc)
            for submission in submissions:
                results.setdefault(submission.idempotency_key, Failure(submission.idempotency_key, error))
        return hold_back_successors(submissions, results)

    # -- reading back (verification) ---------------------------------------------------------------

    def read_anchored(self) -> LedgerContents:
        """The relayer's txs on the chain (`tx_search` on `message.sender`), each signature checked."""
        contents = LedgerContents()
        signer = coincurve.PrivateKey(self.private_key).public_key.format(compressed=True)
        heights: set[int] = set()
        try:
            account_number, _ = self._account()
            page, position = 1, 0
            while True:
                result = self.rpc.call(
                    "tx_search",
                    {
                        "query": f"message.sender='{self.relayer_address}'",
                        "prove": False,
                        "page": str(page),
                        "per_page": str(SEARCH_PAGE_SIZE),
                        "order_by": "asc",
                    },
                )
                txs = result.get("txs") or []
                for item in txs:
                    position += 1
                    contents.tx_count += 1
                    height = int(item.get("height") or 0)
                    heights.add(height)
                    if int((item.get("tx_result") or {}).get("code") or 0) != CODE_OK:
                        continue  # failed in its block: anchored nothing
                    decoded = cosmos_tx.decode_tx(base64.b64decode(item.get("tx") or ""))
                    if decoded.public_key != signer or not cosmos_tx.verify_tx_signature(
                        decoded, chain_id=self.chain_id, account_number=account_number
                    ):
                        contents.problems.append(
                            LedgerProblem(
                                "signature", f"tx {item.get('hash')} is not signed by the relayer key"
                            )
                        )
                        continue
                    message = cosmos_tx.support_message_from_any(decoded.messages)
                    tx = {IDEMPOTENCY_KEY: decoded.memo, "msg": message}
                    tx_hash = str(item.get("hash", "")).upper()
                    contents.txs.setdefault(
                        decoded.memo, AnchoredTx(height, position, int(item.get("index") or 0), tx, tx_hash)
                    )
                if not txs or page * SEARCH_PAGE_SIZE >= int(result.get("total_count") or 0):
                    break
                page += 1
        except (BackendError, cosmos_tx.ProtoError, ValueError) as exc:
            contents.problems.append(LedgerProblem("unreachable", f"cannot read the chain: {exc}"))
        contents.blocks = len(heights)
        contents.top_height = max(heights, default=0)
        return contents


__all__ = ["NAME", "CometBftBackend", "CometRpc", "RpcError"]
