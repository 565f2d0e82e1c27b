"""What `verify_chain` checks of an erased event, and how it reports it (see `chain.verification`).

An erased event (its `erasure` set: the person asked, or retention) cannot be compared with its anchored
envelope any more: its shred key is destroyed, so nobody can open it. What is still checked: its place in
the ticket's sequence, its kind and every public field of its message (as for any event), the anchored
payload's hash and size, that the envelope is shreddable and its key really destroyed, and that the row
holds a tombstone (an "erased" row with text put back in it is tampering). It is reported as erased: by
whom, when, at whose request — never as tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chain import envelopes, mapping
from tickets.models import TicketEvent
from tickets.models.erasure import TOMBSTONE_VALUES, ContentErasure

# The private text an event's document may hold, by key (comment text, subject, reasons, file names…).
_TEXT_KEYS = frozenset(
    {
        "text",
        "subject",
        "description",
        "filename",
        "reason",
        "comment",
        "content",
        "message",
        "customer_message",
    }
)


@dataclass(frozen=True, slots=True)
class ErasedEvent:
    ticket: str
    seq: int
    kind: str
    erasure_id: int
    erased_at: str
    erased_by: str
    basis: str
    reference: str

    def why(self) -> str:
        """When, by whom, why and at which request (the same for every event of one erasure)."""
        why = (
            "at the person's request"
            if self.basis == ContentErasure.Basis.REQUEST
            else "retention period over"
        )
        reference = f", request {self.reference!r}" if self.reference else ""
        return f"content erased on {self.erased_at} by {self.erased_by}, {why} (erasure {self.erasure_id}{reference})"

    def __str__(self) -> str:
        return f"{self.ticket} seq {self.seq} [erased]: {self.kind} {self.why()}"


def erasure_lines(erased: Iterable[ErasedEvent]) -> list[str]:
    """One line per ticket and erasure: which events (seq and kind), by whom, when, why, which request."""
    groups: dict[tuple[str, int], list[ErasedEvent]] = {}
    for item in erased:
        groups.setdefault((item.ticket, item.erasure_id), []).append(item)
    lines = []
    for (ticket, _erasure), items in groups.items():
        events = ", ".join(f"{item.seq} ({item.kind})" for item in sorted(items, key=lambda item: item.seq))
        lines.append(f"{ticket} [erased]: events {events}: {items[0].why()}")
    return lines


def erased_event(event: TicketEvent, label: str) -> ErasedEvent:
    erasure = event.erasure
    return ErasedEvent(
        ticket=label,
        seq=event.seq,
        kind=event.kind,
        erasure_id=erasure.pk,
        erased_at=f"{erasure.created_at:%Y-%m-%d %H:%M} UTC",
        erased_by=erasure.performed_by_label,
        basis=erasure.basis,
        reference=erasure.reference,
    )


def _texts(value: Any, key: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _texts(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, key)
    elif key in _TEXT_KEYS:
        yield key, value


def tombstone_problems(facts: mapping.EventFacts) -> list[str]:
    """The private text of an erased event's row that is not a tombstone (names of the fields)."""
    document = mapping.private_document(facts)
    found = [
        key
        for key, value in _texts({"content": document["content"], "data": document["data"]})
        if value not in TOMBSTONE_VALUES
    ]
    changes = (facts.data.get("changes") or {}) if facts.kind == TicketEvent.Kind.TICKET_EDITED else {}
    if any(
        isinstance(change, Mapping) and any(v not in TOMBSTONE_VALUES for v in change.values())
        for change in changes.values()
    ):
        found.append("changes")
    return sorted(set(found))


def anchored_envelope(tx: Mapping[str, Any]) -> tuple[bytes | None, str]:
    """The anchored envelope bytes, or None with why not; also checks its hash and size."""
    message = tx.get("msg")
    payload = message.get("payload") if isinstance(message, Mapping) else None
    if not isinstance(payload, Mapping):
        return None, "the anchored message has no payload"
    try:
        envelope = base64.b64decode(str(payload.get("envelope", "")), validate=True)
    except (binascii.Error, ValueError):
        return None, "the anchored envelope is not base64"
    if hashlib.sha256(envelope).hexdigest() != payload.get("sha256") or len(envelope) != payload.get("size"):
        return envelope, "the anchored envelope does not match its SHA-256 or size"
    return envelope, ""


def erased_envelope_problem(envelope: bytes, *, has_key_row: bool, key: bytes | None) -> str:
    """Why an erased event's anchored envelope is not properly shredded ('' when it is)."""
    try:
        shreddable = envelopes.needs_shred_key(envelope)
    except envelopes.EnvelopeError as error:
        return f"the anchored envelope is malformed ({error})"
    if not shreddable:
        return ""  # sealed before envelopes were shreddable: counted apart (`erased_legacy`), not tampering
    if not has_key_row or key is not None:
        return "the event is marked erased but its envelope's shred key was not destroyed"
    return ""


def erased_problems(
    facts: mapping.EventFacts, tx: Mapping[str, Any], event_id: int, shred_keys: Mapping[int, bytes | None]
) -> tuple[list[tuple[str, str]], bool]:
    """Findings (kind, message) about an erased event, and whether its envelope predates shreddable ones."""
    problems = []
    leftovers = tombstone_problems(facts)
    if leftovers:
        problems.append(("erased_row_changed", f"the erased row holds text again: {', '.join(leftovers)}"))
    envelope, problem = anchored_envelope(tx)
    if problem:
        problems.append(("payload", problem))
    if envelope is None:
        return problems, False
    problem = erased_envelope_problem(
        envelope, has_key_row=event_id in shred_keys, key=shred_keys.get(event_id)
    )
    if problem:
        problems.append(("envelope_key", problem))
    try:
        legacy = not envelopes.needs_shred_key(envelope)
    except envelopes.EnvelopeError:
        legacy = False
    return problems, legacy
