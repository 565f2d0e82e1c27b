"""What an erased event's data keeps: everything but its free text, which becomes a tombstone.

Pure: no database. Kinds, ids, sequence numbers, times, statuses, priorities, sizes and hashes stay (so that
the history and its anchoring can still be checked); subjects, descriptions, comments, reasons, messages and
file names go.
"""

from __future__ import annotations

from typing import Any

from tickets.models import TicketEvent
from tickets.models.erasure import ERASED_FILENAME, ERASED_TEXT

Kind = TicketEvent.Kind

# Per kind: keys whose value becomes the tombstone text, and keys that become empty.
_TEXT: dict[str, tuple[str, ...]] = {
    Kind.TICKET_CREATED: ("subject", "description"),
}
_EMPTIED: dict[str, tuple[str, ...]] = {
    Kind.STATUS_CHANGE: ("reason",),
    Kind.ASSIGNMENT_CHANGE: ("reason", "customer_message"),
    Kind.SATISFACTION_RATED: ("comment",),
}
_FILE_KINDS = frozenset({Kind.ATTACHMENT_ADDED, Kind.LOGS_FETCHED})

# Kinds that carry a person's free text (erased when the person is, or with the ticket's content).
TEXT_KINDS = frozenset({*_TEXT, *_EMPTIED, *_FILE_KINDS, Kind.TICKET_EDITED, Kind.NEW_COMMENT})


def tombstone_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The event's data with its free text replaced (a new dict; idempotent)."""
    erased = dict(data or {})
    for key in _TEXT.get(kind, ()):
        if key in erased:
            erased[key] = ERASED_TEXT
    for key in _EMPTIED.get(kind, ()):
        if key in erased:
            erased[key] = ""
    if kind in _FILE_KINDS and "filename" in erased:
        erased["filename"] = ERASED_FILENAME
    if kind == Kind.TICKET_EDITED:
        erased["changes"] = {field: {"from": None, "to": None} for field in (erased.get("changes") or {})}
    return erased
