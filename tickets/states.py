"""The ticket status machine: which status may follow which, and who may make the move.

Pure Python on purpose (no ORM, no Django): the table is the design's, it is tested exhaustively
without a database, and `tickets.services.ticket_transition` is the only caller that applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Role(StrEnum):
    CUSTOMER = "customer"
    PROVIDER = "provider"
    SUPPORT = "support"
    # Automatic moves: a customer's reply, idle timers.
    SYSTEM = "system"


OPEN_STATES = frozenset({Status.OPEN, Status.IN_PROGRESS, Status.WAITING_CUSTOMER})
STAFF = frozenset({Role.PROVIDER, Role.SUPPORT})


def _build_table() -> dict[tuple[Status, Status], frozenset[Role]]:
    rules: list[tuple[Iterable[Status], Iterable[Status], frozenset[Role]]] = [
        ([Status.OPEN], [Status.IN_PROGRESS, Status.WAITING_CUSTOMER], STAFF),
        ([Status.IN_PROGRESS], [Status.WAITING_CUSTOMER], STAFF),
        ([Status.WAITING_CUSTOMER], [Status.IN_PROGRESS], STAFF),
        (OPEN_STATES, [Status.RESOLVED], STAFF),
        ([*OPEN_STATES, Status.RESOLVED], [Status.CLOSED], frozenset({Role.CUSTOMER, Role.SUPPORT})),
        ([Status.RESOLVED], [Status.IN_PROGRESS], frozenset({Role.CUSTOMER, Role.PROVIDER, Role.SUPPORT})),
        # Automatic: a customer's reply reopens; idle timers resolve and close.
        ([Status.WAITING_CUSTOMER, Status.RESOLVED], [Status.IN_PROGRESS], frozenset({Role.SYSTEM})),
        ([Status.WAITING_CUSTOMER], [Status.RESOLVED], frozenset({Role.SYSTEM})),
        ([Status.RESOLVED], [Status.CLOSED], frozenset({Role.SYSTEM})),
    ]
    table: dict[tuple[Status, Status], frozenset[Role]] = {}
    for sources, targets, roles in rules:
        for source in sources:
            for target in targets:
                table[(source, target)] = table.get((source, target), frozenset()) | roles
    return table


TRANSITIONS: dict[tuple[Status, Status], frozenset[Role]] = _build_table()

# Statuses the automatic rules move to.
AFTER_CUSTOMER_REPLY: dict[Status, Status] = {
    Status.WAITING_CUSTOMER: Status.IN_PROGRESS,
    Status.RESOLVED: Status.IN_PROGRESS,
}
IDLE_TRANSITIONS: dict[Status, tuple[Status, int]] = {
    # status: (target, idle days)
    Status.WAITING_CUSTOMER: (Status.RESOLVED, 7),
    Status.RESOLVED: (Status.CLOSED, 3),
}


class IllegalTransition(Exception):
    """The move is not in the table for this role; `allowed` lists where this role may go instead."""

    def __init__(self, source: Status, target: Status, role: Role, allowed: list[Status]) -> None:
        super().__init__(f"{role.value} may not move a ticket from {source.value} to {target.value}")
        self.source = source
        self.target = target
        self.role = role
        self.allowed = allowed


def can_transition(source: Status | str, target: Status | str, role: Role | str) -> bool:
    """True if `role` may move a ticket from `source` to `target` (a status never moves to itself)."""
    return Role(role) in TRANSITIONS.get((Status(source), Status(target)), frozenset())


def allowed_targets(source: Status | str, role: Role | str) -> list[Status]:
    """Every status `role` may move a ticket in `source` to, in the table's status order."""
    return [target for target in Status if can_transition(source, target, role)]


def check_transition(source: Status | str, target: Status | str, role: Role | str) -> None:
    """Raise IllegalTransition unless the move is allowed."""
    if not can_transition(source, target, role):
        raise IllegalTransition(Status(source), Status(target), Role(role), allowed_targets(source, role))
