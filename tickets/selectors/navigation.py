"""Moving between tickets from the keyboard: the previous and next ticket in support's queue, by number."""

from __future__ import annotations

import uuid

from core.parties import Party
from tickets.models import SUPPORT_QUEUE
from tickets.selectors.visibility import tickets_visible_to


def support_queue_neighbours(party: Party, number: int) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the tickets in support's hands and open just before and after `number` that the party sees
    (None at an end); read from that queue's own index, a few hundred rows however many tickets there are."""
    open_tickets = tickets_visible_to(party).filter(SUPPORT_QUEUE).values_list("pk", "number")
    before = open_tickets.filter(number__lt=number).order_by("-number")[:1]
    after = open_tickets.filter(number__gt=number).order_by("number")[:1]
    neighbours = dict.fromkeys(("before", "after"), None)
    for pk, other in before.union(after, all=True):  # one round trip
        neighbours["before" if other < number else "after"] = pk
    return neighbours["before"], neighbours["after"]
