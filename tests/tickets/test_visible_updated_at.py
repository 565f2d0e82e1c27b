"""A customer's `updated_at` and ordering follow the last change that customer can see (issue 12, class
8): an internal note moves the provider's `updated_at`, never the customer's, on the list, the detail and
keyset pages ordered by it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import Apis, World
from tickets import services

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


def listed(api, **params) -> list[dict]:
    response = api.get(TICKETS, **params)
    assert response.status_code == 200, response.content
    return response.json()


def paged(api, **params) -> list[str]:
    """Every id, following the `Link: rel=next` cursors one ticket per page."""
    ids: list[str] = []
    cursor = None
    while True:
        response = api.get(TICKETS, limit=1, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.content
        ids += [ticket["id"] for ticket in response.json()]
        link = response.get("Link")
        if not link:
            return ids
        cursor = parse_qs(urlsplit(link[1 : link.index(">")]).query)["cursor"][0]


def test_an_internal_note_moves_updated_at_for_staff_only(world: World, apis: Apis) -> None:
    ticket = world.open_ticket()
    before = apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"]
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.id, body="node flaky", is_internal=True
    )
    assert apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"] == before
    assert [t["updated_at"] for t in listed(apis.alice)] == [before]
    staff = apis.provider_a_member.get(f"{TICKETS}/{ticket.id}").json()["updated_at"]
    assert staff > before
    assert [t["updated_at"] for t in listed(apis.provider_a_member)] == [staff]

    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="We are on it")
    after_reply = apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"]
    assert after_reply > staff


def test_ordering_by_updated_at_ignores_internal_notes_for_customers(world: World, apis: Apis) -> None:
    older = world.open_ticket(subject="older")
    newer = world.open_ticket(subject="newer")
    # An internal note on the older ticket: staff see it as the most recently updated, Alice does not.
    services.comment_add(actor=world.provider_a_member, ticket_id=older.id, body="internal", is_internal=True)
    customer_order = [t["subject"] for t in listed(apis.alice, ordering="-updated_at")]
    staff_order = [t["subject"] for t in listed(apis.provider_a_member, ordering="-updated_at")]
    assert customer_order == ["newer", "older"]
    assert staff_order == ["older", "newer"]
    assert paged(apis.alice, ordering="-updated_at") == [str(newer.id), str(older.id)]
    assert paged(apis.alice, ordering="updated_at") == [str(older.id), str(newer.id)]


def test_every_public_change_moves_the_customers_updated_at(world: World, apis: Apis) -> None:
    ticket = world.open_ticket()
    seen = [apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"]]
    services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="in_progress")
    seen.append(apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"])
    services.ticket_priority_set(actor=world.agent, ticket_id=ticket.id, priority="critical")
    seen.append(apis.alice.get(f"{TICKETS}/{ticket.id}").json()["updated_at"])
    assert seen == sorted(seen)
    assert len(set(seen)) == 3
