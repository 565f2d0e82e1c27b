"""Who is told what by email: one table from event kind to (recipient role, preference topic, condition).

- customers: public replies (by provider or support), status changes (resolution included);
- provider members: new tickets, customer replies, support's replies and internal notes, escalations of
  their provider's tickets;
- support: escalations and SLA breaches.

A new event kind is one line in `ROUTES`. Whatever a line says, a customer is never routed an event they
may not see (internal events, kinds the presenter keeps from customers): `routes_for` checks it once for
every line. Nobody is told about what they did themselves.

Pure: no queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from notifications.models import PendingEmail
from tickets.models import TicketEvent
from tickets.presenter import SHAPES

Kind = TicketEvent.Kind
Role = PendingEmail.Role


class Topic(StrEnum):
    """What an email is about; each is a switch in the recipient's preferences."""

    REPLIES = "replies"
    STATUS_CHANGES = "status_changes"
    NEW_TICKETS = "new_tickets"
    ESCALATIONS = "escalations"
    SLA_BREACHES = "sla_breaches"


def _always(event: TicketEvent) -> bool:  # noqa: ARG001 - a route condition's signature
    return True


def _by_staff(event: TicketEvent) -> bool:
    return event.actor_kind in ("provider", "support")


def _by_customer(event: TicketEvent) -> bool:
    return event.actor_kind == "customer"


def _by_support(event: TicketEvent) -> bool:
    return event.actor_kind == "support"


def _not_by_customer(event: TicketEvent) -> bool:
    return event.actor_kind != "customer"


def _escalation(event: TicketEvent) -> bool:
    return bool((event.data or {}).get("escalation"))


@dataclass(frozen=True)
class Route:
    role: str
    topic: Topic
    applies: Callable[[TicketEvent], bool] = _always


ROUTES: dict[str, tuple[Route, ...]] = {
    Kind.TICKET_CREATED: (Route(Role.PROVIDER, Topic.NEW_TICKETS),),
    Kind.NEW_COMMENT: (
        Route(Role.CUSTOMER, Topic.REPLIES, _by_staff),
        Route(Role.PROVIDER, Topic.REPLIES, _by_customer),
        # VirtEngine support writing on a provider's ticket, to its customer or as an internal note for the
        # provider: the provider is told (and may answer by email; an internal note's answer stays one).
        Route(Role.PROVIDER, Topic.REPLIES, _by_support),
    ),
    Kind.STATUS_CHANGE: (Route(Role.CUSTOMER, Topic.STATUS_CHANGES, _not_by_customer),),
    Kind.ASSIGNMENT_CHANGE: (
        Route(Role.PROVIDER, Topic.ESCALATIONS, _escalation),
        Route(Role.SUPPORT, Topic.ESCALATIONS, _escalation),
    ),
    Kind.SLA_BREACHED: (Route(Role.SUPPORT, Topic.SLA_BREACHES),),
}


def customer_may_see(event: TicketEvent) -> bool:
    shape = SHAPES.get(event.kind)
    return shape is not None and not event.is_internal and not shape.always_internal


def routes_for(event: TicketEvent, role: str | None = None) -> list[Route]:
    """The routes an event takes (to one role, or to all)."""
    routes = []
    for route in ROUTES.get(event.kind, ()):
        if role is not None and route.role != role:
            continue
        if route.role == Role.CUSTOMER and not customer_may_see(event):
            continue
        if route.applies(event):
            routes.append(route)
    return routes
