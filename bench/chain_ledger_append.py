"""Append throughput of the local chain ledger (target: ≥ 1,000 events/s when batching ~100 per block).

Builds realistic txs once (an x/support message with a real three-recipient envelope around a
~400-character comment), then measures, on a fresh ledger each time:

* `submit` at 100 txs per block and at 1 tx per block (every block fsync'ed),
* a re-submit of everything (idempotent: no block written),
* `find_tx` lookups per second, and the cold index rebuild when a ledger is opened,
* envelope sealing per second (the drain seals before it submits).

Usage: python bench/chain_ledger_append.py [--events 5000] [--dir /path/on/the/target/disk] [--smoke]

Exit 1 if verify_ledger finds anything in the ledger written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nacl.signing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import parse_args
from chain import envelopes
from chain.ledger import Ledger, make_tx
from chain.ledger_verification import verify_ledger
from chain.mapping import EventFacts, TicketFacts, message_for
from core.formats import canonical_json_bytes

COMMENT = "The pod restarts every few minutes with OOMKilled; logs attached. " * 6


def build_txs(count: int) -> tuple[list[dict], float]:
    keys = {label: envelopes.generate_keypair()[1] for label in ("customer", "provider", "support")}
    public = {label: envelopes.public_key_from_b64(key) for label, key in keys.items()}

    def encrypt(plaintext: bytes, labels: list[str]) -> bytes:
        return envelopes.seal(plaintext, {label: public[label] for label in labels})

    ticket = TicketFacts(
        number="SUP-000001",
        lease_id="ve1owner/1/1/1",
        customer_address="ve1owner",
        provider_address="ve1provider",
        category="technical",
        priority="high",
        status="open",
        subject="Pod crash-looping",
        description="OOMKilled",
    )
    started = time.perf_counter()
    txs = []
    for n in range(count):
        facts = EventFacts(
            ticket_id=f"ticket-{n // 10}",
            seq=n % 10 + 1,
            kind="new_comment",
            is_internal=False,
            actor_address="ve1owner",
            actor_kind="customer",
            ticket=ticket,
            created_at="2026-11-28T07:00:00Z",
            content={"text": COMMENT},
        )
        txs.append(make_tx(message_for(facts, encrypt=encrypt), f"ticket:{facts.ticket_id}:{facts.seq}"))
    return txs, count / (time.perf_counter() - started)


def submit_rate(directory: Path, txs: list[dict], per_block: int) -> tuple[float, Path, Ledger]:
    path = directory / f"ledger-{per_block}.jsonl"
    ledger = Ledger(path, nacl.signing.SigningKey.generate())
    started = time.perf_counter()
    for start in range(0, len(txs), per_block):
        ledger.submit(txs[start : start + per_block])
    elapsed = time.perf_counter() - started
    return len(txs) / elapsed, path, ledger


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--single-events", type=int, default=1000, help="events for the 1-tx-per-block run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary dir)")
    args = parse_args(parser, {"events": 200, "single_events": 20})

    txs, seal_rate = build_txs(args.events)
    tx_size = sum(len(canonical_json_bytes(tx)) for tx in txs) / len(txs)
    print(f"txs: {len(txs)}, mean tx size {tx_size:.0f} bytes; map+seal: {seal_rate:,.0f} events/s")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        rate100, path100, ledger100 = submit_rate(directory, txs, 100)
        print(f"submit, 100 txs/block: {rate100:,.0f} txs/s ({rate100 / 100:,.1f} blocks/s)")
        rate1, _, _ = submit_rate(directory, txs[: args.single_events], 1)
        print(f"submit,   1 tx/block:  {rate1:,.0f} txs/s")

        started = time.perf_counter()
        for start in range(0, len(txs), 100):
            ledger100.submit(txs[start : start + 100])
        print(
            f"re-submit (all known, nothing written): {len(txs) / (time.perf_counter() - started):,.0f} txs/s"
        )

        started = time.perf_counter()
        keys = [tx["idempotency_key"] for tx in txs]
        for key in keys:
            ledger100.find_tx(key)
        print(f"find_tx: {len(keys) / (time.perf_counter() - started):,.0f} lookups/s")

        started = time.perf_counter()
        Ledger(path100, nacl.signing.SigningKey.generate()).height()
        print(
            f"cold open (index rebuild) of {len(txs)} txs: {(time.perf_counter() - started) * 1000:,.0f} ms"
        )

        started = time.perf_counter()
        findings = verify_ledger(path100)
        print(
            f"verify_ledger: {len(txs) / (time.perf_counter() - started):,.0f} txs/s, findings: {len(findings)}"
        )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
