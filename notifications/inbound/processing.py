"""What a worker does with a stored reply: check it, then post it as a comment — or record why not.

In order: automatic mail (bounces, auto-replies, bulk, our own notifications) is dropped; the reply address
must hold a valid, unexpired token (`tokens`); its person must still be able to write to the ticket; the
From address must be that person's; a DKIM signature that fails is refused, and where the installation
requires it, only an aligned pass is taken; a sender past VE_INBOUND_RATE_PER_HOUR is refused. A reply that
passes becomes a comment through `tickets.services.comment_add` as the token's party — so it is broadcast,
anchored and notified like any other — with its files through the portal's own upload checks.

Every outcome is written on the message's row (state, reason, detail, DKIM result) for support to read in
the console; a rejected message's sender gets one bounce (at most one an hour per address, never to the
null sender). Nothing raises out of `inbound_process` but PostgreSQL or Redis being unreachable, after which
the row is still `received` and the sweep tries again (a Redis outage does not count as one of its attempts).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage as OutgoingEmail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import REDIS_OUTAGES, ApplicationError, outage_of
from core.formats import parse_plain_number
from core.parties import Party, PartyKind
from notifications.inbound import tokens
from notifications.inbound.dkim_check import DkimTemporaryError, dkim_check
from notifications.inbound.parsing import ParsedReply, parse_reply
from notifications.inbound.screening import automatic_reason
from notifications.inbound.store import DRAIN_REQUESTED_KEY, clean_stored_text, inbound_request_drain
from notifications.models import InboundMessage
from notifications.selectors import customer_email
from providers.models import CustomerIdentity
from providers.selectors import party_for_user
from tickets.models import MAX_ATTACHMENTS_PER_WRITE, TEXT_MAX_LENGTH, Ticket
from tickets.selectors import ticket_is_visible_to
from tickets.services import attachment_upload, comment_add

logger = logging.getLogger(__name__)

State = InboundMessage.State
MAX_ATTEMPTS = 5
# A drain task gives its worker back after this long (and queues the next drain if messages are left).
DRAIN_MAX_SECONDS = 20.0
# What processing writes on the row besides its outcome (never `raw`: the message stays as received).
_OUTCOME_FIELDS = ("from_address", "subject", "dkim", "ticket", "comment")
ONLY_FILES_BODY = "(Files sent by email.)"

# What the sender of a rejected message is told, by reason (the bounce's text, and support's in the console).
REJECTIONS = {
    "token_invalid": "The address you replied to is not one of our reply addresses.",
    "token_expired": "The reply address has expired. Please answer on the ticket's page.",
    "no_ticket": "The ticket this reply address was for no longer exists.",
    "no_access": "You can no longer write to this ticket.",
    "spoofed_from": "The message was not sent from the address the notification went to.",
    "dkim_fail": "The message's DKIM signature does not verify.",
    "dkim_required": "The message carries no DKIM signature of its sender's domain, which this helpdesk requires.",
    "rate_limited": "Too many replies by email from this address in the last hour; please try again later.",
    "empty": "The reply has no text (after quoted history and signatures are left out) and no files.",
    "refused": "The ticket did not accept the reply.",
}


@dataclass
class Outcome:
    state: str
    reason: str = ""
    detail: str = ""


class _Reject(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or REJECTIONS.get(reason, reason)


# -- who the token names ---------------------------------------------------------------------------


def reply_party(recipient_key: str) -> tuple[Party, str] | None:
    """The party a reply token's recipient acts as now, and their email address (None: no role left)."""
    kind, _, raw_id = recipient_key.partition(":")
    recipient_id = parse_plain_number(raw_id)
    if recipient_id is None:
        return None
    if kind == "user":
        user = get_user_model().objects.filter(pk=recipient_id, is_active=True).first()
        party = party_for_user(user) if user is not None else None
        if user is None or party is None:
            return None
        return party, user.email
    identity = CustomerIdentity.objects.select_related("user").filter(pk=recipient_id).first()
    if identity is None:
        return None
    user = identity.user
    party = Party(
        kind=PartyKind.CUSTOMER,
        label=user.get_username() if user is not None else identity.address,
        user_id=user.pk if user is not None else None,
        address=identity.address,
    )
    return party, customer_email(identity)


# -- the checks --------------------------------------------------------------------------------------


def _rate_allows(sender: str) -> bool:
    hour = int(timezone.now().timestamp()) // 3600
    key = f"inbound:rate:{hashlib.sha256(sender.encode(errors='replace')).hexdigest()[:32]}:{hour}"
    try:
        count = cache.incr(key)  # one round trip, but for a sender's first message in the hour
    except ValueError:
        count = 1 if cache.add(key, 1, timeout=3700) else cache.incr(key)
    return int(count) <= int(settings.VE_INBOUND_RATE_PER_HOUR)


def _checked(row: InboundMessage, parsed: ParsedReply) -> tuple[Ticket, Party, bool]:
    """The ticket, the party and whether the reply is an internal note; _Reject for any failed check."""
    token = tokens.token_of_address(row.recipient)
    if token is None:
        raise _Reject("token_invalid")
    try:
        reply = tokens.reply_token_read(token)
    except tokens.TokenExpired as exc:
        raise _Reject("token_expired") from exc
    except tokens.TokenInvalid as exc:
        raise _Reject("token_invalid") from exc
    ticket = Ticket.objects.filter(number=reply.ticket_number).first()
    if ticket is None:
        raise _Reject("no_ticket")
    row.ticket = ticket
    found = reply_party(reply.recipient_key)
    if found is None or not ticket_is_visible_to(found[0], ticket):
        raise _Reject("no_access")
    party, expected = found
    if not expected or parsed.from_address != expected.lower():
        shown = ", ".join(parsed.from_addresses) or "no address"
        raise _Reject("spoofed_from", f"{REJECTIONS['spoofed_from']} (From: {shown})")
    dkim = dkim_check(bytes(row.raw))
    row.dkim = dkim.status
    if dkim.status == "fail":
        raise _Reject("dkim_fail", f"{REJECTIONS['dkim_fail']} ({dkim.detail})")
    if settings.VE_INBOUND_REQUIRE_DKIM and not (
        dkim.status == "pass" and dkim.aligned_with(expected.rpartition("@")[2])
    ):
        raise _Reject("dkim_required")
    if not _rate_allows(parsed.from_address):
        raise _Reject("rate_limited")
    # A customer's reply is never an internal note, whatever the token says.
    return ticket, party, reply.internal and party.sees_internal


def _post(row: InboundMessage, parsed: ParsedReply) -> Outcome:
    """The checks, then the comment. Raises _Reject for a message that is not posted."""
    ticket, party, internal = _checked(row, parsed)
    attachment_ids = []
    refused = []
    for file in parsed.files[:MAX_ATTACHMENTS_PER_WRITE]:
        try:
            upload = ContentFile(file.data, name=file.filename)
            attachment_ids.append(attachment_upload(actor=party, upload=upload).pk)
        except ApplicationError as exc:  # the portal's refusals: type, size, emptiness
            refused.append(f"{clean_stored_text(file.filename, 100)}: {exc.message}")
    if len(parsed.files) > MAX_ATTACHMENTS_PER_WRITE:
        refused.append(
            f"{len(parsed.files) - MAX_ATTACHMENTS_PER_WRITE} files past the first {MAX_ATTACHMENTS_PER_WRITE}"
        )
    body = clean_stored_text(parsed.text, TEXT_MAX_LENGTH) or (ONLY_FILES_BODY if attachment_ids else "")
    if not body:
        raise _Reject("empty", "; ".join([REJECTIONS["empty"], *refused]))
    try:
        result = comment_add(
            actor=party,
            ticket_id=ticket.pk,
            body=body,
            is_internal=internal,
            attachment_ids=attachment_ids,
        )
    except ApplicationError as exc:
        raise _Reject("refused", f"{REJECTIONS['refused']} {exc.message}") from exc
    row.comment = result.comment
    note = "internal note" if internal else "reply"
    detail = f"Posted as a {note} by {party.label}" + (
        f"; files refused: {'; '.join(refused)}" if refused else ""
    )
    return Outcome(State.POSTED, detail=detail)


def _outcome(row: InboundMessage) -> Outcome:
    parsed = parse_reply(bytes(row.raw))
    row.from_address = clean_stored_text(", ".join(parsed.from_addresses), 320)
    row.subject = clean_stored_text(parsed.subject, 300)
    if parsed.message is None:
        return Outcome(State.FAILED, "malformed", "; ".join(parsed.problems) or "unreadable message")
    reason = automatic_reason(parsed.message, envelope_from=row.envelope_from)
    if reason is not None:
        return Outcome(State.DROPPED, reason, "Automatic mail: not posted, not answered.")
    try:
        with transaction.atomic():  # a rejection after files were stored takes them back
            return _post(row, parsed)
    except _Reject as rejection:
        return Outcome(State.REJECTED, rejection.reason, rejection.detail)


# -- the entry points -----------------------------------------------------------------------------------


def inbound_process(pk: int) -> str | None:
    """Process one stored message (if still waiting and no other worker holds it); its new state."""
    # Counted (and committed) before the work: a message that kills its worker, or keeps losing its
    # database connection, is given up after MAX_ATTEMPTS instead of being swept up for ever.
    InboundMessage.objects.filter(pk=pk, state=State.RECEIVED).update(
        attempts=F("attempts") + 1, claimed_at=timezone.now()
    )
    return _process_claimed(pk)


# The next waiting message no worker holds (its claim is older than VE_INBOUND_CLAIM_SECONDS, or it has none),
# claimed: one attempt counted and committed before the work, as `inbound_process` does.
_CLAIM_SQL = """
UPDATE notifications_inboundmessage SET attempts = attempts + 1, claimed_at = now()
WHERE id = (
    SELECT id FROM notifications_inboundmessage
    WHERE state = 'received' AND received_at <= now() - make_interval(secs => %s)
        AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => %s))
    ORDER BY received_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


def _claim_next(older_than_seconds: float) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [float(older_than_seconds), float(settings.VE_INBOUND_CLAIM_SECONDS)])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def inbound_drain(
    *, older_than_seconds: float = 0.0, limit: int | None = None, max_seconds: float | None = None
) -> tuple[int, bool]:
    """Process waiting messages (received at least `older_than_seconds` ago) one after the other until none
    is left, `limit` are done or `max_seconds` have passed; (how many were processed, whether some may be
    left). Workers draining at the same time each claim their own messages (row locks, SKIP LOCKED)."""
    started = time.monotonic()
    done = 0
    while limit is None or done < limit:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            return done, True
        pk = _claim_next(older_than_seconds)
        if pk is None:
            return done, False
        if _process_claimed(pk, wait=True) is not None:
            done += 1
    return done, True


def inbound_drain_requested() -> int:
    """A drain task: clear the request flag (a message stored from now on queues the next task), drain for
    at most DRAIN_MAX_SECONDS, and ask for another drain if messages are left; how many were processed."""
    cache.delete(DRAIN_REQUESTED_KEY)
    done, more = inbound_drain(max_seconds=DRAIN_MAX_SECONDS)
    if more:  # the worker's other tasks get their turn; the next drain goes on
        inbound_request_drain()
    return done


def _process_claimed(pk: int, *, wait: bool = False) -> str | None:
    try:
        return _process_locked(pk, wait=wait)
    except Exception as exc:
        if isinstance(exc, REDIS_OUTAGES):
            # Redis was unreachable (the rate limit's counter): not the message's doing, so not one of its
            # attempts. A lost database connection stays counted: the message may be what loses it.
            _uncount_attempt(pk)
        raise


def _process_locked(pk: int, *, wait: bool) -> str | None:
    # A drain's message is its own (claimed): it waits for a lock held for an instant by another drain's
    # claim statement, where skipping it would leave it to the sweep once the claim expires. Otherwise, a
    # message another worker holds is theirs.
    outcome: Outcome | None = None
    with transaction.atomic():
        row = (
            InboundMessage.objects.select_for_update(skip_locked=not wait)
            .filter(pk=pk, state=State.RECEIVED)
            .first()
        )
        if row is None:
            return None
        try:
            if row.attempts > MAX_ATTEMPTS:
                outcome = Outcome(State.FAILED, "error", f"Given up after {MAX_ATTEMPTS} attempts.")
            else:
                outcome = _outcome(row)
        except DkimTemporaryError as exc:
            if row.attempts < MAX_ATTEMPTS:
                row.detail = f"DKIM key look-up failed, will try again: {exc}"[:2000]
                row.save(update_fields=["from_address", "subject", "detail"])
                return str(row.state)
            outcome = Outcome(State.FAILED, "dkim_temperror", f"DKIM key look-up kept failing: {exc}")
        except Exception as exc:
            if outage_of(exc) is not None:
                raise  # PostgreSQL or Redis is unreachable: the row stays received, the sweep tries again
            logger.exception("inbound email %s: processing failed", pk)
            outcome = Outcome(State.FAILED, "error", f"{type(exc).__name__}: {exc}")
        row.state = outcome.state
        row.reason = outcome.reason
        row.detail = clean_stored_text(outcome.detail, 4000)
        row.processed_at = timezone.now()
        row.save(update_fields=[*_OUTCOME_FIELDS, "state", "reason", "detail", "processed_at"])
    if outcome.state == State.REJECTED:
        _bounce(row, outcome)
    return outcome.state


def _uncount_attempt(pk: int) -> None:
    InboundMessage.objects.filter(pk=pk, state=State.RECEIVED, attempts__gt=0).update(
        attempts=F("attempts") - 1, claimed_at=None
    )


def inbound_sweep(*, older_than_seconds: float = 10.0, limit: int = 500) -> int:
    """Process messages no drain took (a task lost with the broker, a worker killed: its claim expires);
    how many were done."""
    return inbound_drain(older_than_seconds=older_than_seconds, limit=limit)[0]


# -- the bounce --------------------------------------------------------------------------------------


def _bounce(row: InboundMessage, outcome: Outcome) -> None:
    """One plain answer to the envelope sender of a rejected message, at most one an hour per address."""
    sender = row.envelope_from.strip("<> ")
    if not sender or "@" not in sender:
        return
    key = f"inbound:bounce:{hashlib.sha256(sender.lower().encode(errors='replace')).hexdigest()[:32]}"
    try:
        if not cache.add(key, 1, timeout=3600):
            return
        message = OutgoingEmail(
            subject=f"Your reply was not posted: {row.subject or '(no subject)'}"[:200],
            body=(
                "Your email reply could not be added to the ticket.\n\n"
                f"{outcome.detail}\n\n"
                "You can answer on the ticket's page instead. This message was sent automatically; "
                "replies to it are not read.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[sender],
            headers={"Auto-Submitted": "auto-replied", "X-VE-Inbound-Bounce": "1"}
            | ({"In-Reply-To": row.message_id, "References": row.message_id} if row.message_id else {}),
        )
        message.send()
    except Exception as exc:  # noqa: BLE001 - a bounce that cannot be sent is logged, never retried
        logger.warning("inbound email %s: could not send the bounce to %s: %s", row.pk, sender, exc)
        return
    InboundMessage.objects.filter(pk=row.pk).update(bounced_at=timezone.now())
