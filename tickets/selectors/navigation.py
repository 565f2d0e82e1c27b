"""Moving between tickets from the keyboard: the previous and next open ticket, by number."""

from __future__ import annotations

import uuid

from core.parties import Party
from tickets.models import Ticket
from tickets.selectors.visibility import tickets_visible_to


def open_ticket_neighbours(party: Party, number: int) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the open tickets just before and after `number` that the party sees (None at an end)."""
    open_tickets = tickets_visible_to(party).exclude(status=Ticket.Status.CLOSED)
    before = open_tickets.filter(number__lt=number).order_by("-number").values_list("pk", flat=True).first()
    after = open_tickets.filter(number__gt=number).order_by("number").values_list("pk", flat=True).first()
    return before, after
