"""Moving between tickets from the keyboard: the previous and next ticket in support's queue, by number."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet, Subquery

from core.parties import Party
from core.statements import StatementCache
from tickets.models import SUPPORT_QUEUE
from tickets.selectors.visibility import party_in_slots, scope_slots, tickets_visible_to

# The neighbours' query, compiled once per kind of party (core.statements): the console's work page reads
# it on every view.
_NEIGHBOURS = StatementCache(size=8)


def support_queue_neighbours(party: Party, number: int) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the tickets in support's hands and open just before and after `number` that the party sees
    (None at an end); read from that queue's own index, a few hundred rows however many tickets there are,
    in one statement: the two neighbours' numbers are its subqueries."""
    shape, values = scope_slots(party)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        queue = tickets_visible_to(party_in_slots(party, slots)).filter(SUPPORT_QUEUE)
        before = queue.filter(number__lt=slots["number"]).order_by("-number").values("number")[:1]
        after = queue.filter(number__gt=slots["number"]).order_by("number").values("number")[:1]
        return queue.filter(number__in=[Subquery(before), Subquery(after)]).order_by().values("pk", "number")

    neighbours: dict[str, uuid.UUID | None] = {"before": None, "after": None}
    for row in _NEIGHBOURS.rows(shape, build, {**values, "number": number}):
        neighbours["before" if row["number"] < number else "after"] = row["pk"]
    return neighbours["before"], neighbours["after"]
