"""The status table, every (from, to, role) triple, without a database."""

from __future__ import annotations

import itertools

import pytest

from tickets import states
from tickets.states import Role, Status

OPEN, P, W, R, C = "open", "in_progress", "waiting_customer", "resolved", "closed"
CUSTOMER, PROVIDER, SUPPORT, SYSTEM = "customer", "provider", "support", "system"

# The design's table, written out by hand as (from, to): roles — independent of the module under test.
EXPECTED: dict[tuple[str, str], set[str]] = {
    (OPEN, P): {PROVIDER, SUPPORT},
    (OPEN, W): {PROVIDER, SUPPORT},
    (P, W): {PROVIDER, SUPPORT},
    (W, P): {PROVIDER, SUPPORT, SYSTEM},  # SYSTEM: a customer's reply
    (OPEN, R): {PROVIDER, SUPPORT},
    (P, R): {PROVIDER, SUPPORT},
    (W, R): {PROVIDER, SUPPORT, SYSTEM},  # SYSTEM: idle 7 days
    (OPEN, C): {CUSTOMER, SUPPORT},
    (P, C): {CUSTOMER, SUPPORT},
    (W, C): {CUSTOMER, SUPPORT},
    (R, C): {CUSTOMER, SUPPORT, SYSTEM},  # SYSTEM: idle 3 days
    (R, P): {CUSTOMER, PROVIDER, SUPPORT, SYSTEM},  # reopen; SYSTEM: a customer's reply
}

ALL_TRIPLES = list(
    itertools.product([s.value for s in Status], [s.value for s in Status], [r.value for r in Role])
)


@pytest.mark.parametrize(("source", "target", "role"), ALL_TRIPLES)
def test_every_pair_for_every_role(source: str, target: str, role: str) -> None:
    expected = role in EXPECTED.get((source, target), set())
    assert states.can_transition(source, target, role) is expected


@pytest.mark.parametrize(("source", "target", "role"), ALL_TRIPLES)
def test_check_transition_raises_exactly_when_not_allowed(source: str, target: str, role: str) -> None:
    if role in EXPECTED.get((source, target), set()):
        states.check_transition(source, target, role)
    else:
        with pytest.raises(states.IllegalTransition) as raised:
            states.check_transition(source, target, role)
        assert target not in raised.value.allowed
        assert raised.value.allowed == states.allowed_targets(source, role)


@pytest.mark.parametrize(
    ("source", "role"), list(itertools.product([s.value for s in Status], [r.value for r in Role]))
)
def test_allowed_targets_lists_the_table_row(source: str, role: str) -> None:
    expected = {target for (src, target), roles in EXPECTED.items() if src == source and role in roles}
    assert set(states.allowed_targets(source, role)) == expected


def test_closed_is_terminal_for_everyone() -> None:
    for role in Role:
        assert states.allowed_targets(Status.CLOSED, role) == []


def test_nothing_moves_to_itself() -> None:
    for status, role in itertools.product(Status, Role):
        assert not states.can_transition(status, status, role)


def test_automatic_rules_are_in_the_table_for_the_system() -> None:
    for source, target in states.AFTER_CUSTOMER_REPLY.items():
        assert states.can_transition(source, target, Role.SYSTEM)
    for source, (target, days) in states.IDLE_TRANSITIONS.items():
        assert days > 0
        assert states.can_transition(source, target, Role.SYSTEM)


def test_unknown_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="reopened"):
        states.can_transition("open", "reopened", "support")
    with pytest.raises(ValueError, match="admin"):
        states.can_transition("open", "closed", "admin")
