"""Storing a delivered message before the LMTP server says 250: the raw bytes in PostgreSQL, one row per
message and recipient (a second delivery of the same Message-ID is the same row), then a request for a
drain: a worker's task that processes every waiting message (`processing.inbound_drain`). The request is
debounced through a Redis flag (set when a task is queued, cleared when one starts), so a burst of mail
queues one task, not one per message, and a message stored while a drain runs queues the next one.

What is stored is committed when `inbound_store` returns: if the task cannot be queued (Redis or the broker
is down), the beat sweep (`inbound_sweep`) finds the row later. Nothing here reads the body.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser

from django.conf import settings
from django.db import connection

from core.tasks import task_send_debounced
from notifications.inbound.parsing import header

logger = logging.getLogger(__name__)

INBOUND_PROCESS_TASK = "notifications.tasks.inbound_process_task"  # one message (queued before drains)
INBOUND_DRAIN_TASK = "notifications.tasks.inbound_drain_task"
DRAIN_REQUESTED_KEY = "inbound:drain-requested"

_INSERT_SQL = """
INSERT INTO notifications_inboundmessage
    (dedupe_key, message_id, recipient, envelope_from, from_address, subject, raw, size, state, reason,
     detail, dkim, attempts, received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'received', '', '', '', 0, now())
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


def clean_stored_text(value: str, max_length: int) -> str:
    """Text PostgreSQL will take: no NUL, no lone surrogates (undecodable header bytes), bounded."""
    text = value.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")
    return text[:max_length]


@dataclass(frozen=True)
class Stored:
    pk: int | None  # None when this was a second delivery of a stored message
    created: bool


def dedupe_key(*, message_id: str, raw: bytes, recipient: str) -> str:
    """The same message to the same reply address: by its Message-ID, or by its bytes when it has none."""
    identity = message_id.strip().lower() or f"sha256:{hashlib.sha256(raw).hexdigest()}"
    return hashlib.sha256(f"{identity}\n{recipient.strip().lower()}".encode(errors="replace")).hexdigest()


def inbound_store(*, raw: bytes, recipient: str, envelope_from: str) -> Stored:
    """Store one delivered message for one recipient (committed on return), and ask a worker for it."""
    try:
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        message_id = header(headers, "Message-ID")
        from_header = header(headers, "From")
        subject = " ".join(header(headers, "Subject").split())
    except Exception:  # noqa: BLE001 - unreadable headers are stored all the same, for support to see
        message_id = from_header = subject = ""
    message_id = clean_stored_text(message_id, 500)
    key = dedupe_key(message_id=message_id, raw=raw, recipient=recipient)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            [
                key,
                message_id,
                clean_stored_text(recipient, 320),
                clean_stored_text(envelope_from, 320),
                clean_stored_text(from_header, 320),
                clean_stored_text(subject, 300),
                raw,
                len(raw),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return Stored(pk=None, created=False)
    try:
        inbound_request_drain()
    except Exception as exc:  # noqa: BLE001 - the message is stored; the beat sweep processes it
        logger.warning("inbound email %s: could not queue its processing (%s); the sweep will", row[0], exc)
    return Stored(pk=row[0], created=True)


def inbound_request_drain() -> bool:
    """Queue a drain task unless one is already queued (the Redis flag); True if one was queued."""
    return task_send_debounced(
        INBOUND_DRAIN_TASK, flag=DRAIN_REQUESTED_KEY, timeout=settings.VE_INBOUND_TRIGGER_DEBOUNCE_SECONDS
    )
