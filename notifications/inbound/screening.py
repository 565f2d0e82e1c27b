"""Mail that is not a person answering: auto-replies, bulk and list mail, bounces, our own notifications.

Each is dropped without a comment and without an answer (an answer to an auto-reply is how mail loops
start). `automatic_reason` names why, or returns None for mail a person wrote.

Pure: no Django, no database.
"""

from __future__ import annotations

import re
from email.message import Message

from notifications.inbound.parsing import header

# Subjects of out-of-office and other automatic answers from clients that set no RFC 3834 header.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|out of (?:the )?office|autoreply|abwesenheit"
    r"|absence|r[ée]ponse automatique|respuesta autom[áa]tica|fuera de la oficina|risposta automatica"
    r"|delivery status notification|undeliver(?:ed|able)|mail delivery (?:failed|failure|subsystem)"
    r"|returned mail)",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = re.compile(r"^(?:mailer-daemon|postmaster|bounces?|no-?reply)@", re.IGNORECASE)
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply")


def _is_bounce(message: Message, sender: str) -> bool:
    content_type = header(message, "Content-Type").lower()
    return (
        not sender  # the null sender: delivery reports (RFC 5321 §4.5.5)
        or content_type.startswith("multipart/report")
        or "delivery-status" in content_type
        or bool(_BOUNCE_SENDERS.match(sender))
    )


def _is_auto_reply(message: Message) -> bool:
    auto_submitted = header(message, "Auto-Submitted").lower()
    return (
        (bool(auto_submitted) and not auto_submitted.startswith("no"))  # RFC 3834
        or any(header(message, name) for name in _AUTO_HEADERS)
        or bool(_AUTO_SUBJECT.match(header(message, "Subject")))
    )


def _is_bulk(message: Message) -> bool:
    return header(message, "Precedence").lower() in ("bulk", "list", "junk", "auto_reply") or bool(
        header(message, "List-Id") or header(message, "List-Unsubscribe")
    )


def automatic_reason(message: Message, *, envelope_from: str, own_header: str = "X-VE-Ticket") -> str | None:
    """`bounce`, `own_mail`, `auto_reply` or `bulk` for mail no person wrote as an answer; else None."""
    if _is_bounce(message, envelope_from.strip("<> ")):
        return "bounce"
    if header(message, own_header):
        return "own_mail"  # one of our notifications, sent back to us (a loop, or a forward of it)
    if _is_auto_reply(message):
        return "auto_reply"
    if _is_bulk(message):
        return "bulk"
    return None
