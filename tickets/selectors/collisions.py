"""Collision detection's read: what others wrote on a ticket after a person opened it, so that a reply is
not sent blind (the console's work page and the portal's ticket page ask before sending one)."""

from __future__ import annotations

from dataclasses import dataclass

from core.formats import parse_plain_number
from core.parties import Party
from tickets.models import TicketEvent
from tickets.selectors.visibility import ticket_get, visible_events_query


@dataclass(frozen=True)
class LaterReply:
    author: str
    internal: bool
    seq: int


def replies_after(party: Party, ticket_id: object, seen_seq: int) -> list[LaterReply]:
    """Replies and notes by others that `party` may see, after its own event number `seen_seq`."""
    ticket = ticket_get(party, ticket_id)
    events = (
        visible_events_query(party, ticket, since=seen_seq)
        .filter(kind=TicketEvent.Kind.NEW_COMMENT)
        .exclude(actor_kind=party.kind.value, actor_label=party.label)
    )
    seq_field = "seq" if party.sees_internal else "public_seq"
    return [
        LaterReply(author=label, internal=internal, seq=seq)
        for label, internal, seq in events.values_list("actor_label", "is_internal", seq_field)
    ]


def replies_since_seen(party: Party, ticket_id: object, seen_seq: object) -> list[LaterReply]:
    """`replies_after` for the `seen_seq` a page's reply form posted (the event number it was showing);
    none when the form sent no usable number (an old page, a hand-made request)."""
    seen = parse_plain_number(seen_seq, max_digits=10)
    if seen is None:
        return []
    return replies_after(party, ticket_id, seen)
