"""Reply addresses: `reply+<token>@<inbound domain>`, one per recipient and ticket.

The token names the ticket (by number), the recipient (`user:<id>` or `customer:<id>`, the keys of
`PendingEmail`), whether a reply makes an internal note, and when it was issued; an HMAC-SHA256 of all of it
(keyed by SECRET_KEY, or one of SECRET_KEY_FALLBACKS during a rotation) closes it. Lower-case letters, digits
and `-` only, so that an MTA that folds the case of local parts keeps it valid, and short enough for the
64-character limit of a local part. It expires after VE_INBOUND_REPLY_TOKEN_DAYS; whether the person may
still write to the ticket is checked when a reply arrives, not here.

Pure apart from the settings: no queries.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.formats import parse_plain_number

REPLY_PREFIX = "reply+"
_SALT = "notifications.inbound.reply-address"
_TOKEN = re.compile(r"^([0-9a-z]{1,13})-([uc])([0-9a-z]{1,13})-([ni])([0-9a-z]{1,8})-([a-z2-7]{24})$")
_KINDS = {"u": "user", "c": "customer"}


class TokenInvalid(Exception):
    """Not a token we issued (altered, forged, truncated)."""


class TokenExpired(Exception):
    """A token we issued, past its lifetime."""


@dataclass(frozen=True)
class ReplyToken:
    ticket_number: int
    recipient_key: str
    internal: bool
    issued_at: datetime.datetime


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _signature(value: str, secret: str) -> str:
    digest = salted_hmac(_SALT, value, secret=secret, algorithm="sha256").digest()
    return base64.b32encode(digest[:15]).decode().lower()


def inbound_domain() -> str:
    """The domain reply addresses are at: VE_INBOUND_EMAIL_DOMAIN, else DEFAULT_FROM_EMAIL's."""
    configured: str = settings.VE_INBOUND_EMAIL_DOMAIN
    if configured:
        return configured.lower()
    from_address = str(settings.DEFAULT_FROM_EMAIL).rpartition("<")[2].rstrip(">")
    return from_address.rpartition("@")[2].lower() or "localhost"


def reply_token(
    *, ticket_number: int, recipient_key: str, internal: bool, issued_at: datetime.datetime | None = None
) -> str:
    """A token for this recipient and ticket. `internal` only for provider members and support (`user:`
    keys): a customer's token never makes an internal note."""
    kind, _, raw_id = recipient_key.partition(":")
    if kind not in ("user", "customer") or parse_plain_number(raw_id) is None:
        raise ValueError(f"not a recipient key: {recipient_key!r}")
    if internal and kind != "user":
        raise ValueError("a customer's reply address never makes an internal note")
    issued = int((issued_at or timezone.now()).timestamp())
    value = f"{_base36(ticket_number)}-{kind[0]}{_base36(int(raw_id))}-{'i' if internal else 'n'}{_base36(issued)}"
    return f"{value}-{_signature(value, settings.SECRET_KEY)}"


def reply_address(*, ticket_number: int, recipient_key: str, internal: bool) -> str:
    token = reply_token(ticket_number=ticket_number, recipient_key=recipient_key, internal=internal)
    return f"{REPLY_PREFIX}{token}@{inbound_domain()}"


def token_of_address(address: str) -> str | None:
    """The token of a reply address (`reply+<token>@…`, any case), or None for any other address."""
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    if not at or not local.lower().startswith(REPLY_PREFIX):
        return None
    return local[len(REPLY_PREFIX) :].lower() or None


def reply_token_read(token: str, *, now: datetime.datetime | None = None) -> ReplyToken:
    """What a token stands for; TokenInvalid if we did not issue it, TokenExpired past its lifetime."""
    match = _TOKEN.match(token.lower())
    if match is None:
        raise TokenInvalid("not a reply token")
    number, kind, raw_id, flag, issued, signature = match.groups()
    value = token.lower().rpartition("-")[0]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(signature, _signature(value, secret)) for secret in secrets):
        raise TokenInvalid("bad signature")
    issued_at = datetime.datetime.fromtimestamp(int(issued, 36), tz=datetime.UTC)
    lifetime = datetime.timedelta(days=settings.VE_INBOUND_REPLY_TOKEN_DAYS)
    if (now or timezone.now()) - issued_at > lifetime:
        raise TokenExpired("expired")
    return ReplyToken(
        ticket_number=int(number, 36),
        recipient_key=f"{_KINDS[kind]}:{int(raw_id, 36)}",
        internal=flag == "i",
        issued_at=issued_at,
    )
