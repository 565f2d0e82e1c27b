"""Moving between tickets from the keyboard: the previous and next ticket in support's queue, by number."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from core.parties import Party
from core.statements import StatementCache
from tickets.models import SUPPORT_QUEUE
from tickets.selectors.visibility import party_in_slots, scope_slots, tickets_visible_to

# The two neighbours' queries, compiled once per kind of party and side (core.statements): the console's
# work page reads them on every view.
_NEIGHBOURS = StatementCache(size=16)


def support_queue_neighbours(party: Party, number: int) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the tickets in support's hands and open just before and after `number` that the party sees
    (None at an end); read from that queue's own index, a few hundred rows however many tickets there are."""
    shape, values = scope_slots(party)

    def before(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        open_tickets = tickets_visible_to(party_in_slots(party, slots)).filter(SUPPORT_QUEUE)
        return open_tickets.filter(number__lt=slots["number"]).order_by("-number").values("pk")[:1]

    def after(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        open_tickets = tickets_visible_to(party_in_slots(party, slots)).filter(SUPPORT_QUEUE)
        return open_tickets.filter(number__gt=slots["number"]).order_by("number").values("pk")[:1]

    earlier, later = (
        _NEIGHBOURS.rows((side, shape), build, {**values, "number": number})
        for side, build in (("before", before), ("after", after))
    )
    return (earlier[0]["pk"] if earlier else None, later[0]["pk"] if later else None)
