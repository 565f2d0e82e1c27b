"""The local ledger: append, idempotent submit, crash repair, concurrent writers, tamper detection."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import stat
import threading
from pathlib import Path

import nacl.signing
import pytest

from chain import ledger as ledger_mod
from chain.backends.local import LocalLedgerBackend
from chain.ledger import Ledger, LedgerError, make_tx
from chain.ledger_verification import FindingKind, verify_ledger
from core.formats import canonical_json_bytes


@pytest.fixture
def key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


@pytest.fixture
def trusted(key) -> str:
    return ledger_mod.public_key_b64(key)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "ledger" / "blocks.jsonl"


def tx(n: int, key: str | None = None) -> dict:
    message = {"@type": "/virtengine.support.v1.MsgAddSupportResponse", "ticket_id": f"t{n}", "note": "café"}
    return make_tx(message, key or f"k{n}")


def build(path: Path, key, blocks: int = 4, per_block: int = 3) -> Ledger:
    ledger = Ledger(path, key)
    for b in range(blocks):
        ledger.append_block([tx(b * per_block + i) for i in range(per_block)])
    return ledger


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    path.write_bytes(b"".join(new_lines))


def edit_block(path: Path, height: int, change) -> None:
    all_lines = lines(path)
    block = json.loads(all_lines[height - 1])
    change(block)
    all_lines[height - 1] = canonical_json_bytes(block) + b"\n"
    rewrite(path, all_lines)


def kinds(findings) -> set[FindingKind]:
    return {finding.kind for finding in findings}


# -- Merkle tree -----------------------------------------------------------------------------------


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1, literally: split at the largest power of two smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 100])
def test_merkle_root_is_rfc6962(n):
    txs = [tx(i) for i in range(n)]
    expected = rfc6962_root([canonical_json_bytes(t) for t in txs]).hex()
    assert ledger_mod.merkle_root(txs) == expected


def test_merkle_root_of_nothing_is_sha256_of_empty():
    assert ledger_mod.merkle_root([]) == hashlib.sha256(b"").hexdigest()


# -- appending and reading -------------------------------------------------------------------------


def test_append_then_verify_is_clean(path, key, trusted):
    ledger = Ledger(path, key)
    receipts = [ledger.append_block([tx(2 * b), tx(2 * b + 1)]) for b in range(3)]

    assert [r.height for r in receipts] == [1, 2, 3]
    assert ledger.height() == 3
    assert verify_ledger(path) == []
    assert verify_ledger(path, trusted) == []
    blocks = list(ledger.iter_blocks())
    assert [b["height"] for b in blocks] == [1, 2, 3]
    assert blocks[0]["prev_hash"] == ledger_mod.GENESIS_PREV_HASH
    assert blocks[1]["prev_hash"] == receipts[0].block_hash
    assert all(b["signer_pubkey"] == trusted for b in blocks)
    # One canonical JSON line per block, newline-terminated.
    for raw, block in zip(lines(path), blocks, strict=True):
        assert raw == canonical_json_bytes(block) + b"\n"


def test_block_hash_and_signature_are_as_documented(path, key, trusted):
    ledger = Ledger(path, key)
    receipt = ledger.append_block([tx(1)])
    block = next(ledger.iter_blocks())
    header = {k: block[k] for k in ("height", "time", "prev_hash", "merkle_root", "signer_pubkey")}
    assert receipt.block_hash == hashlib.sha256(canonical_json_bytes(header)).hexdigest()
    assert block["block_hash"] == receipt.block_hash
    key.verify_key.verify(bytes.fromhex(receipt.block_hash), base64.b64decode(block["signature"]))
    assert block["time"].endswith("Z")


def test_receipts_and_find_tx_agree(path, key):
    ledger = Ledger(path, key)
    receipt = ledger.append_block([tx(1), tx(2)])
    location = ledger.find_tx("k2")

    assert location is not None
    assert (location.height, location.index, location.block_hash) == (1, 1, receipt.block_hash)
    assert location.tx_hash == receipt.tx_hashes[1] == ledger_mod.tx_hash(tx(2))
    assert location.tx == tx(2)
    assert ledger.find_tx("nope") is None
    assert ledger.index_by_idempotency_key()["k1"].tx_hash == receipt.tx_hashes[0]


def test_find_tx_reads_tricky_txs_back_exactly(path, key):
    tricky = [
        make_tx({"txs": [{"txs": []}], "text": 'quote " and ,"txs":[ inside'}, "nested"),
        make_tx({"text": "ünïcödé — 中文 — 🙂", "n": 1}, "unicode"),
        make_tx({}, "empty-msg"),
    ]
    Ledger(path, key).append_block([tx(1), *tricky])
    reopened = Ledger(path, key)
    for expected in tricky:
        assert reopened.find_tx(expected["idempotency_key"]).tx == expected


def test_find_tx_falls_back_when_the_file_is_not_canonical(path, key):
    build(path, key, blocks=2)
    # Same blocks, re-serialised with spaces: equivalent JSON, but the byte spans no longer line up.
    rewrite(path, [json.dumps(json.loads(raw)).encode() + b"\n" for raw in lines(path)])
    assert verify_ledger(path) == []
    assert Ledger(path, key).find_tx("k4").tx == tx(4)


def test_another_instance_sees_appends_without_reopening(path, key):
    reader = Ledger(path, key)
    writer = Ledger(path, key)
    assert reader.find_tx("k1") is None
    writer.append_block([tx(1)])
    writer.append_block([tx(2)])
    assert reader.find_tx("k2").height == 2
    assert reader.height() == 2
    # And the reader, now a writer, links onto the other's last block.
    reader.append_block([tx(3)])
    assert verify_ledger(path) == []


def test_reopening_rebuilds_the_index(path, key):
    build(path, key, blocks=3)
    reopened = Ledger(path, key)
    assert reopened.height() == 3
    assert set(reopened.index_by_idempotency_key()) == {f"k{i}" for i in range(9)}


# -- idempotency -----------------------------------------------------------------------------------


def test_submit_is_idempotent(path, key, trusted):
    ledger = Ledger(path, key)
    first = ledger.submit([tx(1), tx(2)])
    again = ledger.submit([tx(2), tx(3), tx(3, key="k3")])

    assert [r.new for r in first] == [True, True]
    assert [r.new for r in again] == [False, True, True]
    assert again[0] == first[1]._replace(new=False)
    assert again[1] == again[2]
    assert ledger.height() == 2
    anchored = [t["idempotency_key"] for b in ledger.iter_blocks() for t in b["txs"]]
    assert anchored == ["k1", "k2", "k3"]
    # Nothing new: no empty block.
    assert all(not r.new for r in ledger.submit([tx(1), tx(3)]))
    assert ledger.height() == 2
    assert verify_ledger(path, trusted) == []


def test_submit_after_reopen_still_recognises_old_txs(path, key):
    Ledger(path, key).submit([tx(1)])
    receipts = Ledger(path, key).submit([tx(1), tx(2)])
    assert [(r.idempotency_key, r.height, r.new) for r in receipts] == [("k1", 1, False), ("k2", 2, True)]


def test_submit_splits_large_batches(path, key):
    ledger = Ledger(path, key, max_txs_per_block=4)
    receipts = ledger.submit([tx(i) for i in range(10)])
    assert [r.height for r in receipts] == [1] * 4 + [2] * 4 + [3] * 2
    assert verify_ledger(path) == []


def test_append_block_refuses_known_keys(path, key):
    ledger = Ledger(path, key)
    ledger.append_block([tx(1)])
    with pytest.raises(LedgerError, match="already"):
        ledger.append_block([tx(1)])
    with pytest.raises(LedgerError, match="already"):
        ledger.append_block([tx(2), tx(2)])
    assert ledger.height() == 1


@pytest.mark.parametrize("bad", [{"msg": {}}, {"idempotency_key": ""}, {"idempotency_key": 5}, ["x"]])
def test_txs_need_an_idempotency_key(path, key, bad):
    with pytest.raises(LedgerError):
        Ledger(path, key).submit([bad])


def test_unserialisable_tx_writes_nothing(path, key):
    ledger = Ledger(path, key, max_txs_per_block=1)
    with pytest.raises(TypeError, match="JSON"):
        ledger.submit([tx(1), make_tx({"x": b"raw bytes"}, "k-bytes")])
    assert ledger.height() == 0


# -- tampering -------------------------------------------------------------------------------------


def test_edited_tx_is_a_merkle_mismatch(path, key, trusted):
    build(path, key)
    edit_block(path, 2, lambda b: b["txs"][1]["msg"].update(note="edited"))
    findings = verify_ledger(path, trusted)
    assert kinds(findings) == {FindingKind.MERKLE_ROOT}
    assert [f.height for f in findings] == [2]


def test_added_tx_is_a_merkle_mismatch(path, key):
    build(path, key)
    edit_block(path, 3, lambda b: b["txs"].append(tx(99)))
    assert kinds(verify_ledger(path)) == {FindingKind.MERKLE_ROOT}


@pytest.mark.parametrize(
    ("field", "value"),
    [("time", "2020-01-01T00:00:00.000000Z"), ("merkle_root", "ab" * 32), ("signer_pubkey", "AAAA")],
)
def test_edited_header_breaks_hash_and_signature(path, key, trusted, field, value):
    build(path, key)
    edit_block(path, 2, lambda b: b.update({field: value}))
    findings = verify_ledger(path, trusted)
    assert {FindingKind.BLOCK_HASH, FindingKind.SIGNATURE} <= kinds(findings)
    # The next block still links to the original block 2.
    assert any(f.kind == FindingKind.PREV_HASH and f.height == 3 for f in findings)


def test_reforged_block_is_caught_by_signer_and_link(path, key, trusted):
    """An attacker rewrites block 2 consistently and signs it with their own key."""
    build(path, key)
    forger = nacl.signing.SigningKey.generate()

    def forge(block: dict) -> None:
        block["txs"][0]["msg"]["note"] = "forged"
        block["merkle_root"] = ledger_mod.merkle_root(block["txs"])
        block["signer_pubkey"] = ledger_mod.public_key_b64(forger)
        block["block_hash"] = ledger_mod.block_hash_of(block)
        block["signature"] = base64.b64encode(
            forger.sign(bytes.fromhex(block["block_hash"])).signature
        ).decode()

    edit_block(path, 2, forge)
    assert kinds(verify_ledger(path, trusted)) == {FindingKind.SIGNER, FindingKind.PREV_HASH}
    # Without a trusted key only the broken link to block 3 gives it away.
    assert kinds(verify_ledger(path)) == {FindingKind.PREV_HASH}


def test_dropped_block_is_a_gap(path, key, trusted):
    build(path, key)
    all_lines = lines(path)
    rewrite(path, all_lines[:1] + all_lines[2:])
    findings = verify_ledger(path, trusted)
    assert kinds(findings) == {FindingKind.HEIGHT, FindingKind.PREV_HASH}
    assert {f.height for f in findings} == {3}


def test_dropped_last_block_is_not_detectable_by_the_ledger_alone(path, key):
    # Truncation at a block boundary leaves a valid shorter chain; the database's receipts catch it.
    build(path, key)
    rewrite(path, lines(path)[:-1])
    assert verify_ledger(path) == []


def test_swapped_blocks_are_reported(path, key, trusted):
    build(path, key)
    all_lines = lines(path)
    all_lines[1], all_lines[2] = all_lines[2], all_lines[1]
    rewrite(path, all_lines)
    findings = verify_ledger(path, trusted)
    assert kinds(findings) == {FindingKind.HEIGHT, FindingKind.PREV_HASH}
    assert {f.line for f in findings} == {2, 3, 4}


def test_duplicate_idempotency_key_is_reported(path, key):
    ledger = Ledger(path, key)
    ledger.append_block([tx(1)])
    # Bypass the ledger's own check, as a buggy or malicious writer would.
    ledger._keys.clear()
    ledger.append_block([tx(1)])
    findings = verify_ledger(path)
    assert kinds(findings) == {FindingKind.DUPLICATE_KEY}
    assert findings[0].height == 2


def test_wrong_trusted_key_flags_every_block(path, key):
    build(path, key, blocks=3)
    other = ledger_mod.public_key_b64(nacl.signing.SigningKey.generate())
    findings = verify_ledger(path, other)
    assert kinds(findings) == {FindingKind.SIGNER}
    assert [f.height for f in findings] == [1, 2, 3]


def test_unparsable_middle_line_is_reported_and_blocks_appending(path, key):
    build(path, key)
    all_lines = lines(path)
    all_lines[1] = b"{garbage\n"
    rewrite(path, all_lines)
    findings = verify_ledger(path)
    assert (FindingKind.UNPARSABLE, 2) in {(f.kind, f.height) for f in findings}
    with pytest.raises(LedgerError, match="not JSON"):
        Ledger(path, key)


def test_missing_ledger_is_a_finding(tmp_path):
    assert kinds(verify_ledger(tmp_path / "nope.jsonl")) == {FindingKind.MISSING}


def test_empty_ledger_is_clean(path, key):
    Ledger(path, key)
    assert path.exists()
    assert verify_ledger(path) == []


# -- crash repair ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param(lambda line: line[: len(line) // 2], id="half-written-line"),
        pytest.param(lambda line: line[:-1], id="all-but-the-newline"),
        pytest.param(lambda line: b"\x00" * 40 + b"\n", id="zeros-with-newline"),
    ],
)
def test_torn_last_line_is_truncated_on_reopen(path, key, trusted, torn):
    build(path, key, blocks=2)
    intact = path.read_bytes()
    next_line = canonical_json_bytes({"height": 3, "txs": [tx(50)], "pad": "x" * 100}) + b"\n"
    path.write_bytes(intact + torn(next_line))
    assert verify_ledger(path) != []

    reopened = Ledger(path, key)
    assert path.read_bytes() == intact
    assert reopened.height() == 2
    assert Path(str(path) + ".torn").exists()
    receipt = reopened.append_block([tx(60)])
    assert receipt.height == 3
    assert verify_ledger(path, trusted) == []


def test_torn_tail_left_by_a_crash_is_repaired_by_the_next_append(path, key, trusted):
    ledger = build(path, key, blocks=2)
    with path.open("ab") as fh:
        fh.write(b'{"height":3,"txs":[{"idem')
    # A reader skips the torn bytes and leaves the file alone...
    assert ledger.height() == 2
    assert ledger.find_tx("k0").height == 1
    assert path.read_bytes().endswith(b"idem")
    # ...and the next writer removes them before appending.
    assert ledger.append_block([tx(70)]).height == 3
    assert verify_ledger(path, trusted) == []


# -- reading while others append -------------------------------------------------------------------


def next_block_line(path: Path, key, tmp_path: Path, txs: list[dict]) -> bytes:
    """The exact line the next append of `txs` to the ledger at `path` writes (made on a copy)."""
    copy = tmp_path / "copy" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    Ledger(copy, key).append_block(txs)
    return lines(copy)[-1]


def test_verify_ledger_reads_up_to_the_settled_end(path, key, trusted):
    build(path, key, blocks=2)
    settled = ledger_mod.settled_size(path)
    assert settled == path.stat().st_size
    with path.open("ab") as fh:
        fh.write(b'{"height":3,"txs":[{"idem')  # an append under way, after the size was taken
    seen = []
    findings = verify_ledger(path, trusted, end=settled, visit=lambda b, h, n: seen.append((h, n)))
    assert findings == []
    assert seen == [(1, 1), (2, 2)]
    # Read to the end of the file, the same bytes are a torn tail.
    assert kinds(verify_ledger(path, trusted)) == {FindingKind.TORN_TAIL}
    # A torn tail the settled file ends in (a crash's leftover) is still reported.
    assert kinds(verify_ledger(path, trusted, end=path.stat().st_size - 3)) == {FindingKind.TORN_TAIL}


def test_settled_size_of_a_ledger_nobody_opened_takes_no_lock(tmp_path):
    path = tmp_path / "copied.jsonl"
    assert ledger_mod.settled_size(path) is None
    path.write_bytes(b"")
    assert ledger_mod.settled_size(path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copied.jsonl"]  # no lock file created


def test_reading_back_while_a_block_is_being_appended(path, key, trusted, tmp_path):
    """verify_chain on a live local ledger: a writer holds the append lock with half its block written.
    The backend reads the file as far as it is whole once the append is done, never the half block (which
    `verify_ledger` to the end of the file would call a torn tail)."""
    build(path, key, blocks=3)
    line = next_block_line(path, key, tmp_path, [tx(90), tx(91)])
    backend = LocalLedgerBackend(path, key, max_txs_per_block=1000)
    read: list = []
    with Ledger(path, key)._locked(exclusive=True), path.open("ab") as fh:
        fh.write(line[: len(line) // 2])
        fh.flush()
        reader = threading.Thread(target=lambda: read.append(backend.read_anchored()))
        reader.start()
        reader.join(timeout=0.5)  # long enough for a reader that does not wait to have read the half
        fh.write(line[len(line) // 2 :])
    reader.join()
    [contents] = read
    assert contents.problems == []
    assert (contents.blocks, contents.top_height, contents.tx_count) == (4, 4, 11)
    assert contents.txs["k91"].height == 4
    assert verify_ledger(path, trusted) == []


# -- several processes -----------------------------------------------------------------------------


def _append_worker(path: str, seed: bytes, worker: int, rounds: int) -> None:
    ledger = Ledger(Path(path), nacl.signing.SigningKey(seed))
    for r in range(rounds):
        own = [make_tx({"worker": worker, "round": r, "i": i}, f"w{worker}-r{r}-{i}") for i in range(3)]
        # Every worker also submits the same shared keys: each must be anchored exactly once.
        shared = [make_tx({"shared": r}, f"shared-{r}")]
        ledger.submit(own + shared)


def test_concurrent_processes_append_a_single_valid_chain(path, key, trusted):
    Ledger(path, key)
    workers, rounds = 4, 15
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_worker, args=(str(path), key.encode(), w, rounds))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers

    assert verify_ledger(path, trusted) == []
    blocks = list(Ledger(path, key).iter_blocks())
    assert [b["height"] for b in blocks] == list(range(1, len(blocks) + 1))
    anchored = [t["idempotency_key"] for b in blocks for t in b["txs"]]
    assert len(anchored) == len(set(anchored)) == workers * rounds * 3 + rounds


# -- node key --------------------------------------------------------------------------------------


def test_node_key_is_created_once_with_private_permissions(tmp_path):
    key_path = tmp_path / "keys" / "node.key"
    first = ledger_mod.load_or_create_node_key(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    again = ledger_mod.load_or_create_node_key(key_path)
    assert again.encode() == first.encode()
    assert list(key_path.parent.iterdir()) == [key_path]


def test_node_key_file_must_hold_a_seed(tmp_path):
    key_path = tmp_path / "node.key"
    key_path.write_text("not a key")
    with pytest.raises(LedgerError):
        ledger_mod.load_or_create_node_key(key_path)
