"""Moving between tickets from the keyboard: the previous and next ticket in support's queue, by number."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import QuerySet, Subquery

from core.parties import Party
from tickets.models import SUPPORT_QUEUE, Ticket
from tickets.selectors.visibility import tickets_visible_to


def neighbours_query(party: Party, number: int) -> QuerySet[Ticket]:
    """The tickets in support's hands and open just before and after `number` that the party sees (none,
    one or two); read from that queue's own index, a few hundred rows however many tickets there are, in one
    statement: the two neighbours' numbers are its subqueries."""
    queue = tickets_visible_to(party).filter(SUPPORT_QUEUE)
    before = queue.filter(number__lt=number).order_by("-number").values("number")[:1]
    after = queue.filter(number__gt=number).order_by("number").values("number")[:1]
    return queue.filter(number__in=[Subquery(before), Subquery(after)]).order_by()


def neighbours_of(
    rows: Iterable[Mapping[str, Any]], number: int
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the tickets before and after `number` (None at an end) from `neighbours_query`'s rows
    (pk, number)."""
    neighbours: dict[str, uuid.UUID | None] = {"before": None, "after": None}
    for row in rows:
        pk = row["pk"]
        neighbours["before" if row["number"] < number else "after"] = (
            pk if isinstance(pk, uuid.UUID) else uuid.UUID(pk)
        )
    return neighbours["before"], neighbours["after"]
