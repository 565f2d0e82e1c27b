"""Proof that the database and the ledger agree (`manage.py verify_chain`).

1. The ledger itself, as the backend reads it back (`ChainBackend.read_anchored`): for the local ledger,
   `chain.ledger_verification.verify_ledger` walks every block (height continuity, `prev_hash`
   links, Merkle roots, block hashes, Ed25519 signatures by the trusted node key, unique keys).
2. Every ticket event in the database against its anchored tx (found by idempotency key): the envelope is
   opened with support's key and its private document — comment text, subject and description, attachment
   name and SHA-256, the event's data (status and priority changes, assignment, reasons) — must equal the
   document the same adapter (`chain.messages`) builds from the database now; so must the message's public
   fields (type, status, priority, category, assignee, public metadata) and the payload's hash and size.
   An event whose outbox row says anchored but whose tx is not in the ledger is reported; an event still
   pending is counted, not reported.
3. Every anchored tx has its event in the database (a deleted event is reported with its ticket and seq),
   and each ticket's events appear in the ledger in seq order.
4. Each ticket's current status and priority equal what its event history (anchored where anchored)
   says they became last.
5. Erased events are reported as erased (who, when, which request) and checked as far as they can be
   (`chain.erasure_checks`); a destroyed or missing shred key on an event that is not erased is tampering.

Findings name the ticket (number and id) and the event seq; they never print private text.

Consistent while events go on being written and anchored (an operator runs it on a live installation). The
database is read as of one moment, taken *before* the ledger is read: a read-only REPEATABLE READ
transaction whose snapshot is taken first. A receipt is committed only after its tx is in the ledger (the
backend hands out a receipt once the block is written, or once the node answers `tx` with a height), so
every receipt in that snapshot belongs to a tx the later ledger read holds: "recorded as anchored but not
in the ledger" is then a fact, never a race. The other way round, the ledger may hold txs of events newer
than the snapshot (written and anchored between the two reads): they are looked up afresh once the
ledger is read and compared with their txs (an event is committed before it can be anchored, so a fresh
read finds every one that was not deleted). Called inside a transaction (a test's, a shell's), it reads in
that transaction as it is.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from chain import envelopes, erasure_checks, keys, mapping, messages, shredding
from chain.backends import get_backend, local, local_backend_at
from chain.backends.base import AnchoredTx, ChainBackend
from chain.models import OutboxEntry, idempotency_key_for
from core.formats import parse_plain_number
from tickets.models import Ticket, TicketEvent, format_ticket_number

TICKETS_PER_CHUNK = 500
# Names for the private fields a finding mentions (the values themselves are never printed).
_FIELD_NAMES = {
    "content.text": "comment text",
    "content.subject": "subject",
    "content.description": "description",
    "content.sha256": "attachment SHA-256",
    "content.filename": "attachment filename",
    "content.deployment_id": "linked deployment",
    "content.to": "new value",
    "content.from": "previous value",
    "content.reason": "reason",
    "data.to": "new value",
    "data.from": "previous value",
    "data.reason": "reason",
    "data.sha256": "attachment SHA-256",
    "event_kind": "event kind",
    "created_at": "event time",
}
# Public fields compared with what the database implies (the sender is the relayer of the day: not compared).
_PUBLIC_FIELDS = (
    "@type",
    "ticket_id",
    "category",
    "priority",
    "status",
    "assigned_agent",
    "reason",
    "related_entity",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement. `ticket` is "SUP-000123 (uuid)" for an event, "ledger" for the ledger itself."""

    ticket: str
    seq: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = self.ticket if self.seq is None else f"{self.ticket} seq {self.seq}"
        return f"{where} [{self.kind}]: {self.message}"


@dataclass
class VerificationReport:
    findings: list[Finding] = field(default_factory=list)
    blocks: int = 0
    txs: int = 0
    events: int = 0
    anchored: int = 0
    pending: int = 0
    tickets: int = 0
    top_height: int = 0  # the highest block the ledger read reached
    written_meanwhile: int = 0  # events newer than the database snapshot, found in the ledger (in `events`)
    erased: list[erasure_checks.ErasedEvent] = field(default_factory=list)
    erased_legacy: int = 0  # erased events whose envelope was sealed before envelopes were shreddable

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"FAILED: {len(self.findings)} finding(s)"
        meanwhile = f", {self.written_meanwhile} written while verifying" if self.written_meanwhile else ""
        erased = ""
        if self.erased:
            erasures = len({item.erasure_id for item in self.erased})
            erased = f"; {len(self.erased)} event(s) erased by {erasures} erasure(s)"
            if self.erased_legacy:
                erased += f" ({self.erased_legacy} sealed before shreddable envelopes)"
        return (
            f"verify_chain {verdict} — ledger {self.blocks} block(s), {self.txs} tx(s); database "
            f"{self.tickets} ticket(s), {self.events} event(s): {self.anchored} anchored, "
            f"{self.pending} pending{meanwhile}{erased}"
        )


def _parse_key(key: str) -> tuple[str, int] | None:
    prefix, _, rest = key.partition(":")
    ticket_id, _, seq = rest.rpartition(":")
    number = parse_plain_number(seq)
    if prefix != "ticket" or not ticket_id or number is None:
        return None
    return ticket_id, number


def _differences(expected: Any, anchored: Any, path: str = "") -> Iterator[str]:
    """Dotted paths where two JSON values differ."""
    if isinstance(expected, Mapping) and isinstance(anchored, Mapping):
        for name in sorted(set(expected) | set(anchored), key=str):
            yield from _differences(
                expected.get(name), anchored.get(name), f"{path}.{name}" if path else str(name)
            )
    elif expected != anchored:
        yield path or "(document)"


def _describe(paths: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(_FIELD_NAMES.get(path, path) for path in paths))


def _dummy_encrypt(plaintext: bytes, labels: list[str]) -> bytes:  # noqa: ARG001 - the Encrypt signature
    return b"{}"


class _Verifier:
    def __init__(self, report: VerificationReport, ledger: dict[str, AnchoredTx], *, source: str) -> None:
        self.report = report
        self.source = source
        self.ledger = ledger
        self.support_private_key = keys.support_keypair().private_key
        self.seen_keys: set[str] = set()
        # Envelope shred keys of the events being checked (None: destroyed), loaded per chunk.
        self.shred_keys: dict[int, bytes | None] = {}
        # Ledger positions of each ticket's events, for the order check.
        self.positions: dict[str, list[tuple[int, tuple[int, int]]]] = {}
        for key, tx in ledger.items():
            parsed = _parse_key(key)
            if parsed is not None:
                self.positions.setdefault(parsed[0], []).append((parsed[1], (tx.position, tx.index)))

    def add(self, ticket: str, seq: int | None, kind: str, message: str) -> None:
        self.report.findings.append(Finding(ticket, seq, kind, message))

    def load_shred_keys(self, events: Iterable[TicketEvent]) -> None:
        self.shred_keys = shredding.stored_shred_keys(event.pk for event in events)

    def _open(self, label: str, event: TicketEvent, tx: Mapping[str, Any]) -> dict[str, Any] | None:
        """The anchored private document, or None after reporting why it cannot be read."""
        seq = event.seq
        envelope, problem = erasure_checks.anchored_envelope(tx)
        if problem:
            self.add(label, seq, "payload", problem)
        if envelope is None:
            return None
        shred_key = self.shred_keys.get(event.pk)
        try:
            if envelopes.needs_shred_key(envelope) and shred_key is None:
                state = "destroyed" if event.pk in self.shred_keys else "missing"
                self.add(
                    label,
                    seq,
                    "envelope_key",
                    f"the envelope's shred key is {state}, yet the event is not erased",
                )
                return None
            opened = envelopes.open_envelope(envelope, self.support_private_key, shred_key=shred_key)
            document = json.loads(opened)
        except (envelopes.EnvelopeError, ValueError) as exc:
            self.add(label, seq, "envelope", f"support's key cannot open the anchored envelope ({exc})")
            return None
        return document if isinstance(document, dict) else None

    def check_event(self, event: TicketEvent, facts: mapping.EventFacts, label: str) -> Mapping[str, Any]:
        """Compare one event with its anchored tx; the data the ticket's history should use."""
        key = idempotency_key_for(ticket_id=event.ticket_id, seq=event.seq)
        self.seen_keys.add(key)
        outbox = getattr(event, "outbox", None)
        anchored = self.ledger.get(key)
        if anchored is None:
            if outbox is None:
                self.add(
                    label,
                    event.seq,
                    "not_queued",
                    "the event has no outbox row: it was never queued for anchoring",
                )
            elif outbox.state == OutboxEntry.State.ANCHORED:
                self.add(
                    label,
                    event.seq,
                    "missing_from_ledger",
                    f"the event is recorded as anchored (tx {outbox.tx_hash or '?'}, height {outbox.height}) "
                    f"but its tx is not in the ledger, read up to height {self.report.top_height}"
                    f"{_recorded_by(outbox)}",
                )
            else:
                self.report.pending += 1
            return facts.data
        self.report.anchored += 1
        if (
            outbox is not None
            and outbox.state == OutboxEntry.State.ANCHORED
            and outbox.backend == self.source
            and outbox.tx_hash != anchored.tx_hash
        ):
            self.add(label, event.seq, "receipt", "the recorded tx hash is not the hash of the anchored tx")
        message = anchored.tx.get("msg") if isinstance(anchored.tx.get("msg"), dict) else {}
        expected_message = mapping.message_for(facts, encrypt=_dummy_encrypt, relayer_address="relayer")
        public = [name for name in _PUBLIC_FIELDS if expected_message.get(name) != message.get(name)]
        # (Absent only where the chain's proto has no such field: MsgAddSupportResponse on CometBFT.)
        if "public_metadata" in message:
            metadata = {k: v for k, v in (message["public_metadata"] or {}).items() if not k.endswith("_key")}
            if metadata != expected_message["public_metadata"]:
                public.append("public_metadata")
        if public:
            self.add(
                label,
                event.seq,
                "public_mismatch",
                f"the database implies other public fields than anchored: {', '.join(public)}",
            )
        if event.erasure_id is not None:
            self.report.erased.append(erasure_checks.erased_event(event, label))
            problems, legacy = erasure_checks.erased_problems(facts, anchored.tx, event.pk, self.shred_keys)
            self.report.erased_legacy += legacy
            for kind, message in problems:
                self.add(label, event.seq, kind, message)
            return facts.data
        document = self._open(label, event, anchored.tx)
        if document is None:
            return facts.data
        differing = list(_differences(mapping.private_document(facts), document))
        if differing:
            self.add(
                label,
                event.seq,
                "content_mismatch",
                f"{_describe(differing)} in the database differ(s) from the anchored event",
            )
        data = document.get("data")
        return data if isinstance(data, Mapping) else facts.data

    def check_ticket_order(self, ticket_id: str, label: str) -> None:
        """A ticket's anchored events must sit in the ledger in seq order."""
        positions = sorted(self.positions.get(ticket_id, []))
        for (seq_a, pos_a), (seq_b, pos_b) in itertools.pairwise(positions):
            if pos_b < pos_a:
                self.add(label, seq_b, "order", f"seq {seq_b} is anchored before seq {seq_a}")

    def check_ticket_state(
        self, ticket: Ticket, history: list[tuple[str, Mapping[str, Any]]], label: str
    ) -> None:
        """The ticket's current status, priority, subject, description and category must be what its
        history (anchored where anchored) says they became last. Private fields are named, never shown."""
        expected: dict[str, Any] = {}
        for kind, data in history:
            if kind == TicketEvent.Kind.TICKET_CREATED:
                expected.update(
                    {field: data[field] for field in _STATE_FIELDS if data.get(field) is not None}
                )
            elif kind in (TicketEvent.Kind.STATUS_CHANGE, TicketEvent.Kind.PRIORITY_CHANGE):
                expected["status" if kind == TicketEvent.Kind.STATUS_CHANGE else "priority"] = data.get("to")
            elif kind == TicketEvent.Kind.TICKET_EDITED:
                for field, change in (data.get("changes") or {}).items():
                    if field in _STATE_FIELDS and isinstance(change, Mapping):
                        expected[field] = change.get("to")
        for field, value in expected.items():
            current = getattr(ticket, field)
            if value is None or current == value:
                continue
            if field in _PRIVATE_STATE_FIELDS:
                message = f"the ticket's {field} is not what its last creation or edit event says"
            else:
                message = f"the ticket is {current!r} but its last {field} change says {value!r}"
            self.add(label, None, field, message)


# What a ticket's history determines about its row (subject and description are private).
_STATE_FIELDS = ("status", "priority", "category", "subject", "description")
_PRIVATE_STATE_FIELDS = frozenset({"subject", "description"})


def _ticket_label(ticket_id: str, number: int | None) -> str:
    return f"{format_ticket_number(number) if number else 'SUP-?'} ({ticket_id})"


def _recorded_by(outbox: OutboxEntry) -> str:
    """Where a receipt says it came from, for a finding that has to explain itself."""
    parts = [f"backend {outbox.backend}" if outbox.backend else ""]
    parts.append(f"block time {outbox.anchored_at.isoformat()}" if outbox.anchored_at else "")
    parts.append(f"after {outbox.attempts} failed attempt(s)" if outbox.attempts else "")
    given = [part for part in parts if part]
    return f" (receipt: {', '.join(given)})" if given else ""


def _events_with_facts(condition: Q) -> list[TicketEvent]:
    return list(
        TicketEvent.objects.filter(condition)
        .select_related("ticket__deployment", "ticket__provider", "outbox", "erasure")
        .order_by("ticket_id", "seq")
    )


def _check_tickets(verifier: _Verifier, ticket_ids: list[Any], numbers: Mapping[Any, int]) -> None:
    """Every event of these tickets against its anchored tx; each ticket's order and current state."""
    report = verifier.report
    for start in range(0, len(ticket_ids), TICKETS_PER_CHUNK):
        chunk = ticket_ids[start : start + TICKETS_PER_CHUNK]
        events = _events_with_facts(Q(ticket_id__in=chunk))
        verifier.load_shred_keys(events)
        facts = messages.event_facts(events)
        histories: dict[Any, list[tuple[str, Mapping[str, Any]]]] = {tid: [] for tid in chunk}
        tickets_by_id = {}
        for event in events:
            report.events += 1
            label = _ticket_label(str(event.ticket_id), numbers.get(event.ticket_id))
            tickets_by_id[event.ticket_id] = event.ticket
            data = verifier.check_event(event, facts[event.pk], label)
            histories[event.ticket_id].append((event.kind, data))
        for tid in chunk:
            label = _ticket_label(str(tid), numbers.get(tid))
            verifier.check_ticket_order(str(tid), label)
            if tid in tickets_by_id:
                verifier.check_ticket_state(tickets_by_id[tid], histories[tid], label)


def _check_written_meanwhile(verifier: _Verifier, numbers: Mapping[Any, int]) -> None:
    """The ledger's txs of events the database snapshot did not hold yet: written (and anchored) after the
    snapshot, before the ledger was read. Read afresh and compared with their txs; new tickets' order is
    checked too. Their tickets' state was checked as of the snapshot. What is still missing now was deleted
    (`_report_deleted`)."""
    wanted: dict[uuid.UUID, list[int]] = {}
    for key in set(verifier.ledger) - verifier.seen_keys:
        parsed = _parse_key(key)
        if parsed is None:
            continue
        try:
            ticket_id = uuid.UUID(parsed[0])
        except ValueError:
            continue  # names no ticket this database could hold: reported as deleted
        wanted.setdefault(ticket_id, []).append(parsed[1])
    ticket_ids = sorted(wanted)
    report = verifier.report
    for start in range(0, len(ticket_ids), TICKETS_PER_CHUNK):
        condition = Q()
        for ticket_id in ticket_ids[start : start + TICKETS_PER_CHUNK]:
            condition |= Q(ticket_id=ticket_id, seq__in=wanted[ticket_id])
        events = _events_with_facts(condition)
        verifier.load_shred_keys(events)
        facts = messages.event_facts(events)
        new_tickets = {}
        for event in events:
            report.events += 1
            report.written_meanwhile += 1
            label = _ticket_label(str(event.ticket_id), numbers.get(event.ticket_id) or event.ticket.number)
            verifier.check_event(event, facts[event.pk], label)
            if event.ticket_id not in numbers:
                new_tickets[event.ticket_id] = label
        report.tickets += len(new_tickets)
        for ticket_id, label in new_tickets.items():
            verifier.check_ticket_order(str(ticket_id), label)


def _report_deleted(verifier: _Verifier, numbers: Mapping[Any, int]) -> None:
    """Anchored txs whose event is not in the database."""
    ledger = verifier.ledger
    numbers_by_text = {str(pk): number for pk, number in numbers.items()}
    for key in sorted(set(ledger) - verifier.seen_keys):
        parsed = _parse_key(key)
        if parsed is None:
            verifier.add("ledger", None, "unknown_tx", f"tx {key!r} names no ticket event")
            continue
        tid, seq = parsed
        if tid in numbers_by_text:
            label = _ticket_label(tid, numbers_by_text[tid])
        else:
            # The whole ticket is gone: its number is public on its creation tx, if that is still there.
            creation = ledger.get(idempotency_key_for(ticket_id=tid, seq=1))
            metadata = (creation.tx.get("msg") or {}).get("public_metadata") or {} if creation else {}
            label = f"{metadata.get('ticket_number', 'SUP-?')} ({tid})"
        verifier.add(
            label,
            seq,
            "deleted_event",
            f"anchored at height {ledger[key].height} but missing from the database",
        )


def _anchored(backend: ChainBackend, report: VerificationReport) -> dict[str, AnchoredTx]:
    """What the backend anchored; its findings about the ledger itself go into the report."""
    contents = backend.read_anchored()
    report.blocks, report.txs, report.top_height = contents.blocks, contents.tx_count, contents.top_height
    problems = contents.problems
    if not contents.txs and not OutboxEntry.objects.filter(state=OutboxEntry.State.ANCHORED).exists():
        problems = [problem for problem in problems if problem.kind != "missing"]  # an empty ledger
    where = "ledger" if backend.name == local.NAME else "chain"
    for problem in problems:
        report.findings.append(Finding(where, None, problem.kind, problem.message))
    return contents.txs


@contextlib.contextmanager
def _database_as_of_now() -> Iterator[None]:
    """Every read inside sees the database as it was on entering: a read-only REPEATABLE READ transaction
    whose snapshot is taken at once. Inside a caller's transaction, that transaction as it is."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # PostgreSQL takes a transaction's snapshot at its first query, not at BEGIN: take it now.
            cursor.execute("SELECT 1")
        yield


def verify_chain(*, ticket_id: object = None, ledger_path: Path | None = None) -> VerificationReport:
    """Check the ledger and the database against each other (all tickets, or one); see the module doc.

    The configured backend reads back what it anchored: the local ledger file (or `ledger_path`), or, with
    the `cometbft` backend, the relayer's txs on the node (the chain's own consensus vouches for its
    blocks; each tx's signature is checked).
    """
    report = VerificationReport()
    backend = local_backend_at(ledger_path) if ledger_path is not None else get_backend()
    scope_prefix = f"ticket:{ticket_id}:" if ticket_id else "ticket:"
    with _database_as_of_now():
        # The ledger is read after the snapshot is taken: it holds every tx the snapshot has a receipt for.
        anchored_txs = _anchored(backend, report)
        ledger = {k: v for k, v in anchored_txs.items() if k.startswith(scope_prefix)}
        verifier = _Verifier(report, ledger, source=backend.name)
        tickets = Ticket.objects.order_by("pk")
        if ticket_id:
            tickets = tickets.filter(pk=ticket_id)
        numbers = dict(tickets.values_list("pk", "number"))
        report.tickets = len(numbers)
        _check_tickets(verifier, list(numbers), numbers)
    _check_written_meanwhile(verifier, numbers)
    _report_deleted(verifier, numbers)
    return report


__all__ = ["Finding", "VerificationReport", "verify_chain"]
