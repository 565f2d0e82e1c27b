"""A loopback stand-in for a VirtEngine node's CometBFT JSON-RPC, for the cometbft backend's tests.

It decodes what it receives with its own small protobuf reader (not `chain.cosmos_tx`'s): TxRaw → body,
auth info, signatures; checks the SIGN_MODE_DIRECT signature against the signer's public key over the
SignDoc it rebuilds, the signer's account sequence (answering code 32 like the SDK's ante handler), and
that every message is an x/support message; then answers like CometBFT: `broadcast_tx_sync` →
`{"code": 0, "hash": ...}`, `tx` → the result with its height once a block holds it (a block is cut on
each `tx`/`tx_search` poll, as if time passed), `tx_search` on `tx.acc_seq`, `abci_query` for the account,
`block` for a block's time. Faults on demand: `down` (connection refused-like 503), `reject_codes`
(CheckTx), `deliver_fail` (the tx fails in its block, using its sequence), `hold_blocks` (no block is cut).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from chain import cosmos_tx


def read_fields(data: bytes) -> dict[int, list]:
    """An independent protobuf reader: field number → values (ints for varints, bytes otherwise)."""
    fields: dict[int, list] = {}
    position = 0

    def varint() -> int:
        nonlocal position
        result = shift = 0
        while True:
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while position < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.setdefault(number, []).append(varint())
        elif wire == 2:
            length = varint()
            fields.setdefault(number, []).append(data[position : position + length])
            position += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def one(fields: dict[int, list], number: int, default: Any = b"") -> Any:
    return fields.get(number, [default])[-1]


@dataclass
class Received:
    """One tx the node accepted, as it decoded it."""

    tx_hash: str
    sequence: int
    memo: str
    messages: list[tuple[str, bytes]]
    tx_bytes: bytes


@dataclass
class FakeNode:
    chain_id: str
    address: str
    public_key: bytes
    account_number: int = 7
    sequence: int = 0  # committed state
    down: bool = False
    hold_blocks: bool = False
    reject_codes: dict[str, int] = field(default_factory=dict)  # memo → CheckTx code
    deliver_fail: set[str] = field(default_factory=set)  # memos that fail in their block
    mempool: list[Received] = field(default_factory=list)
    blocks: list[list[Received]] = field(default_factory=list)
    committed: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash → tx result
    by_acc_seq: dict[str, str] = field(default_factory=dict)
    broadcasts: list[str] = field(default_factory=list)  # every hash broadcast, in order (duplicates too)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the node's rules ------------------------------------------------------------------------

    def _check_tx(self, tx_bytes: bytes) -> tuple[int, str, Received | None]:
        raw = read_fields(tx_bytes)
        body, auth_info = one(raw, 1), one(raw, 2)
        signatures = raw.get(3, [])
        body_fields = read_fields(body)
        messages = []
        for any_bytes in body_fields.get(1, []):
            any_fields = read_fields(any_bytes)
            messages.append((one(any_fields, 1).decode(), one(any_fields, 2)))
        memo = one(body_fields, 2).decode()
        signer = read_fields(one(read_fields(auth_info), 1))
        pub_any = read_fields(one(signer, 1))
        assert one(pub_any, 1) == b"/cosmos.crypto.secp256k1.PubKey"
        public_key = one(read_fields(one(pub_any, 2)), 1)
        mode = one(read_fields(one(read_fields(one(signer, 2)), 1)), 1, 0)
        sequence = one(signer, 3, 0)
        if public_key != self.public_key or mode != 1 or len(signatures) != 1:
            return 4, "unauthorized: wrong signer or sign mode", None
        # The SignDoc, rebuilt here field by field: body(1) auth_info(2) chain_id(3) account_number(4).
        sign_doc = b"".join(
            [
                b"\x0a" + _len(body) + body,
                b"\x12" + _len(auth_info) + auth_info,
                b"\x1a" + _len(self.chain_id.encode()) + self.chain_id.encode(),
                b"\x20" + _uvarint(self.account_number),
            ]
        )
        der = cdata_to_der(deserialize_compact(signatures[0]))
        if not coincurve.PublicKey(public_key).verify(der, hashlib.sha256(sign_doc).digest(), hasher=None):
            return 4, "signature verification failed", None
        expected = self.sequence + len(self.mempool)
        if sequence != expected:
            return (
                32,
                f"account sequence mismatch, expected {expected}, got {sequence}: incorrect account sequence",
                None,
            )
        if not messages or not all(t.startswith("/virtengine.support.v1.") for t, _ in messages):
            return 6, "unknown message type", None
        if memo in self.reject_codes:
            return self.reject_codes[memo], "rejected by the test", None
        tx_hash = hashlib.sha256(tx_bytes).hexdigest().upper()
        return 0, "[]", Received(tx_hash, sequence, memo, messages, tx_bytes)

    def _cut_block(self) -> None:
        if self.hold_blocks or not self.mempool:
            return
        height = len(self.blocks) + 1
        block = self.mempool
        self.mempool = []
        self.blocks.append(block)
        for index, tx in enumerate(block):
            self.sequence += 1
            code = 11 if tx.memo in self.deliver_fail else 0
            self.committed[tx.tx_hash] = {
                "hash": tx.tx_hash,
                "height": str(height),
                "index": index,
                "tx_result": {
                    "code": code,
                    "data": "",
                    "log": "out of gas" if code else "",
                    "info": "",
                    "gas_wanted": "400000",
                    "gas_used": "51234",
                    "events": [
                        {
                            "type": "tx",
                            "attributes": [{"key": "acc_seq", "value": f"{self.address}/{tx.sequence}"}],
                        }
                    ],
                    "codespace": "sdk" if code else "",
                },
                "tx": base64.b64encode(tx.tx_bytes).decode(),
            }
            self.by_acc_seq[f"{self.address}/{tx.sequence}"] = tx.tx_hash

    # -- JSON-RPC methods ------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> tuple[dict | None, dict | None]:
        with self.lock:
            if method == "abci_query":
                assert params["path"] == cosmos_tx.ACCOUNT_QUERY_PATH
                assert read_fields(bytes.fromhex(params["data"]))[1][0].decode() == self.address
                value = cosmos_tx.base_account_any(
                    address=self.address,
                    account_number=self.account_number,
                    sequence=self.sequence,
                    public_key=self.public_key,
                )
                return {
                    "response": {
                        "code": 0,
                        "log": "",
                        "value": base64.b64encode(value).decode(),
                        "height": str(len(self.blocks)),
                    }
                }, None
            if method == "broadcast_tx_sync":
                tx_bytes = base64.b64decode(params["tx"])
                tx_hash = hashlib.sha256(tx_bytes).hexdigest().upper()
                self.broadcasts.append(tx_hash)
                if tx_hash in self.committed or any(t.tx_hash == tx_hash for t in self.mempool):
                    return {
                        "code": 19,
                        "data": "",
                        "log": "tx already in mempool",
                        "codespace": "sdk",
                        "hash": tx_hash,
                    }, None
                code, log, received = self._check_tx(tx_bytes)
                if received is not None:
                    self.mempool.append(received)
                return {
                    "code": code,
                    "data": "",
                    "log": log,
                    "codespace": "sdk" if code else "",
                    "hash": tx_hash,
                }, None
            if method == "tx":
                self._cut_block()
                tx_hash = base64.b64decode(params["hash"]).hex().upper()
                if tx_hash not in self.committed:
                    return None, {
                        "code": -32603,
                        "message": "Internal error",
                        "data": f"tx ({tx_hash}) not found",
                    }
                return self.committed[tx_hash], None
            if method == "tx_search":
                self._cut_block()
                query = params["query"]
                if query.startswith("message.sender='"):
                    assert query == f"message.sender='{self.address}'"
                    every = sorted(self.committed.values(), key=lambda r: (int(r["height"]), r["index"]))
                    per_page, page = int(params.get("per_page", 30)), int(params.get("page", 1))
                    txs = every[(page - 1) * per_page : page * per_page]
                    return {"txs": txs, "total_count": str(len(every))}, None
                assert query.startswith("tx.acc_seq='")
                found = self.by_acc_seq.get(query.removeprefix("tx.acc_seq='").removesuffix("'"))
                txs = [self.committed[found]] if found else []
                return {"txs": txs, "total_count": str(len(txs))}, None
            if method == "block":
                height = int(params["height"])
                moment = datetime.datetime(2026, 11, 28, 7, 0, tzinfo=datetime.UTC) + datetime.timedelta(
                    seconds=height
                )
                return {
                    "block": {
                        "header": {
                            "height": str(height),
                            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
                        }
                    }
                }, None
            return None, {"code": -32601, "message": "Method not found", "data": method}

    def received(self) -> list[Received]:
        with self.lock:
            return [tx for block in self.blocks for tx in block]

    def txs_with_memo(self, memo: str) -> list[dict[str, Any]]:
        """Every tx carrying `memo` that the node holds, in a block or in the mempool (for a report)."""
        found: list[dict[str, Any]] = []
        with self.lock:
            for height, block in enumerate(self.blocks, start=1):
                for index, tx in enumerate(block):
                    if tx.memo == memo:
                        code = self.committed[tx.tx_hash]["tx_result"]["code"]
                        found.append(
                            {
                                "hash": tx.tx_hash,
                                "sequence": tx.sequence,
                                "height": height,
                                "index": index,
                                "code": code,
                            }
                        )
            found += [
                {"hash": tx.tx_hash, "sequence": tx.sequence, "height": None, "index": None, "code": None}
                for tx in self.mempool
                if tx.memo == memo
            ]
        return found

    def height(self) -> int:
        with self.lock:
            return len(self.blocks)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len(data: bytes) -> bytes:
    return _uvarint(len(data))


class _Handler(BaseHTTPRequestHandler):
    node: FakeNode

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length))
        if self.node.down:
            self.send_response(503)
            self.end_headers()
            return
        result, error = self.node.handle(request["method"], request.get("params") or {})
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        if error is not None:
            answer["error"] = error
        else:
            answer["result"] = result
        body = json.dumps(answer).encode()
        self.send_response(500 if error else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class NodeServer:
    """The fake node on 127.0.0.1, in a thread. `stop()` and `start()` take it off the network and bring it
    back on the same port with the same state, as a node that is restarted."""

    def __init__(self, node: FakeNode) -> None:
        self.handler = type("Handler", (_Handler,), {"node": node})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NodeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
