"""Satisfaction (CSAT) writes: a ticket's customer rates its resolution, from 1 to 5 with an optional comment.

The rules, decided here for every surface (the portal, the API, the link in the resolution email):
- Only a customer of the ticket rates it (the lease's owner, or the customer who opened it on another's
  lease: whoever may see it as a customer); provider and support are refused (403).
- Only once it is resolved: while `resolved`, or `closed` after a resolution (`resolved_at` kept). A
  ticket closed without ever being resolved, or still open, is a 409 `not_resolved`.
- One rating per ticket, which the customer may change: rating again replaces it (the reports count the
  latest). Each rating is a public `satisfaction_rated` event, so each is in the history and anchored like
  any other change. The same rating and comment again change nothing.
- The email's link is a signed token bound to the ticket and the customer's address, valid for
  `SATISFACTION_LINK_DAYS`, and single use: its nonce is claimed in the rating's transaction (a refused
  rating leaves it usable; a used one is a 409 `link_used`). It authenticates as that customer, so it works
  without signing in, and is checked by the same service as a signed-in rating.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.services import nonce_claim
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.parties import Party
from core.text import clean_text
from providers.selectors import party_for_address
from tickets.models.satisfaction import (
    RATING_MAX,
    RATING_MIN,
    SATISFACTION_COMMENT_MAX_LENGTH,
    SatisfactionRating,
)
from tickets.selectors.satisfaction import ticket_rateable
from tickets.services import recording

SATISFACTION_LINK_SALT = "tickets.satisfaction.link"
SATISFACTION_LINK_DAYS = 30
_LINK_SECONDS = SATISFACTION_LINK_DAYS * 24 * 3600


def clean_rating(rating: object) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not RATING_MIN <= rating <= RATING_MAX:
        raise ValidationFailed(
            "rating must be a whole number from 1 to 5.",
            fields={"rating": [f"A whole number from {RATING_MIN} to {RATING_MAX}."]},
        )
    return rating


@transaction.atomic
def satisfaction_rate(
    *, actor: Party, ticket_id: object, rating: object, comment: str = ""
) -> SatisfactionRating:
    """Rate (or re-rate) a resolved ticket as its customer: the rating row and a `satisfaction_rated` event."""
    rating = clean_rating(rating)
    comment = clean_text("comment", comment, max_length=SATISFACTION_COMMENT_MAX_LENGTH, required=False)
    ticket = recording.lock_ticket(actor, ticket_id)
    if not actor.is_customer:
        raise Forbidden("Only the ticket's customer rates it.", fields={"rating": ["Customers only."]})
    if not ticket_rateable(ticket):
        raise Conflict(
            "Only a resolved ticket can be rated.",
            code="not_resolved",
            fields={"rating": ["The ticket is not resolved."]},
            extra={"current": ticket.status},
        )
    current = SatisfactionRating.objects.select_for_update().filter(ticket=ticket).first()
    if current is not None and (current.rating, current.comment) == (rating, comment):
        return current  # the same again changes nothing
    now = timezone.now()
    saved = current or SatisfactionRating(ticket=ticket, provider_id=ticket.provider_id)
    saved.customer_address = actor.address
    saved.rating, saved.comment, saved.rated_at = rating, comment, now
    saved.save()
    recording.record_event(
        ticket,
        kind=recording.Kind.SATISFACTION_RATED,
        actor=actor,
        data={"rating": rating, "comment": comment},
        at=now,
    )
    recording.save_ticket(ticket, at=now)
    return saved


# -- The link in the resolution email ---------------------------------------------------------------------


def satisfaction_token(*, ticket_id: object, customer_address: str) -> str:
    """A single-use token that rates this ticket as this customer (a fresh nonce each time)."""
    payload = {"t": str(ticket_id), "c": customer_address, "n": secrets.token_urlsafe(16)}
    return signing.dumps(payload, salt=SATISFACTION_LINK_SALT, compress=True)


@dataclass(frozen=True)
class SatisfactionLink:
    """What a valid token stands for: the ticket, the customer (as a party), and its nonce."""

    ticket_id: str
    party: Party
    nonce: str


def satisfaction_link_read(token: str) -> SatisfactionLink:
    """The token's ticket and customer; NotFound for a forged, altered or expired token, or a ticket the
    customer can no longer see."""
    try:
        payload: Any = signing.loads(token, salt=SATISFACTION_LINK_SALT, max_age=_LINK_SECONDS)
    except signing.BadSignature as error:  # SignatureExpired included
        raise NotFound("This rating link is not valid, or has expired.", code="link_invalid") from error
    if not isinstance(payload, dict) or not all(isinstance(payload.get(key), str) for key in "tcn"):
        raise NotFound("This rating link is not valid, or has expired.", code="link_invalid")
    party = party_for_address(payload["c"])
    if not party.is_customer:
        raise NotFound("This rating link is not valid, or has expired.", code="link_invalid")
    return SatisfactionLink(ticket_id=payload["t"], party=party, nonce=payload["n"])


@transaction.atomic
def satisfaction_rate_by_link(*, token: str, rating: object, comment: str = "") -> SatisfactionRating:
    """Rate through an email's link: once per link, as the customer it was sent to, on its ticket only."""
    link = satisfaction_link_read(token)
    # Claimed in this transaction: a rating refused below rolls the claim back with it.
    if not nonce_claim("satisfaction", link.nonce, _LINK_SECONDS + 3600):
        raise Conflict("This rating link was already used.", code="link_used")
    return satisfaction_rate(actor=link.party, ticket_id=link.ticket_id, rating=rating, comment=comment)
