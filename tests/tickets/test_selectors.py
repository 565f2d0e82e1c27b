"""Selectors scope every read by party: other parties' tickets and internal notes stay hidden."""

from __future__ import annotations

import pytest
from django.db import connection

from core.errors import NotFound
from core.parties import Party, PartyKind
from tests.conftest import World
from tests.factories import make_address
from tickets import selectors, services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def tickets(world: World) -> dict[str, object]:
    alice_ticket = world.open_ticket(world.alice)
    bob_ticket = world.open_ticket(world.bob)
    services.comment_add(actor=world.provider_a_member, ticket_id=alice_ticket.id, body="public reply")
    services.comment_add(
        actor=world.provider_a_member, ticket_id=alice_ticket.id, body="INTERNAL", is_internal=True
    )
    services.comment_add(actor=world.alice, ticket_id=alice_ticket.id, body="customer reply")
    return {"alice": alice_ticket, "bob": bob_ticket}


def visible_ids(party: Party) -> set:
    return set(selectors.tickets_visible_to(party).values_list("id", flat=True))


def test_each_party_sees_exactly_its_tickets(world: World, tickets: dict) -> None:
    alice_ticket, bob_ticket = tickets["alice"].id, tickets["bob"].id
    assert visible_ids(world.alice) == {alice_ticket}
    assert visible_ids(world.bob) == {bob_ticket}
    assert visible_ids(world.provider_a_member) == {alice_ticket}
    assert visible_ids(world.provider_b_member) == {bob_ticket}
    assert visible_ids(world.agent) == {alice_ticket, bob_ticket}


def test_strangers_and_roleless_parties_see_nothing(world: World, tickets: dict) -> None:
    stranger = Party(kind=PartyKind.CUSTOMER, label="stranger", address=make_address())
    nobody = Party(kind=PartyKind.CUSTOMER, label="no address")
    orphan_provider = Party(kind=PartyKind.PROVIDER, label="no provider id")
    for party in (stranger, nobody, orphan_provider):
        assert visible_ids(party) == set()
        with pytest.raises(NotFound):
            selectors.ticket_get(party, tickets["alice"].id)


def test_ticket_get_is_not_found_for_other_parties(world: World, tickets: dict) -> None:
    with pytest.raises(NotFound):
        selectors.ticket_get(world.bob, tickets["alice"].id)
    with pytest.raises(NotFound):
        selectors.ticket_get(world.provider_b_member, tickets["alice"].id)
    with pytest.raises(NotFound):
        selectors.ticket_get(world.alice, "garbage")
    assert selectors.ticket_get(world.alice, tickets["alice"].id).id == tickets["alice"].id


def test_row_check_agrees_with_the_queryset(world: World, tickets: dict) -> None:
    parties = [world.alice, world.bob, world.provider_a_member, world.provider_b_member, world.agent]
    for party in parties:
        for ticket in tickets.values():
            assert selectors.ticket_is_visible_to(party, ticket) is (ticket.id in visible_ids(party))


def test_customers_never_see_internal_notes(world: World, tickets: dict) -> None:
    ticket = tickets["alice"]
    customer_bodies = list(selectors.comments_visible_to(world.alice, ticket).values_list("body", flat=True))
    provider_bodies = list(
        selectors.comments_visible_to(world.provider_a_member, ticket).values_list("body", flat=True)
    )
    assert customer_bodies == ["public reply", "customer reply"]
    assert provider_bodies == ["public reply", "INTERNAL", "customer reply"]
    assert "INTERNAL" in selectors.comments_visible_to(world.agent, ticket).values_list("body", flat=True)


def test_customer_events_are_numbered_without_gaps(world: World, tickets: dict) -> None:
    ticket = tickets["alice"]
    for_customer = selectors.events_visible_to(world.alice, ticket)
    for_provider = selectors.events_visible_to(world.provider_a_member, ticket)
    assert [e.public_seq for e in for_customer] == [1, 2, 3]
    assert all(not e.is_internal for e in for_customer)
    assert [e.seq for e in for_provider] == [1, 2, 3, 4]
    assert [e.public_seq for e in selectors.events_visible_to(world.alice, ticket, since=2)] == [3]
    ticket.refresh_from_db()
    assert selectors.last_visible_seq(world.alice, ticket) == 3
    assert selectors.last_visible_seq(world.provider_a_member, ticket) == 4


def test_a_ticket_opened_on_anothers_lease_is_the_openers_too(world: World, tickets: dict) -> None:
    """Customers see tickets on their leases and tickets they opened; the second kind (imported history,
    a lease that changed hands) is found through its own partial index, whatever the list's ordering."""
    ticket = tickets["alice"]
    Ticket.objects.filter(pk=ticket.pk).update(created_by_address=world.bob.address)
    for ordering in ("-created_at", f"-{selectors.VISIBLE_UPDATED_AT}"):
        listed = selectors.ticket_list(world.bob, selectors.TicketFilters()).order_by(ordering, "-id")
        assert {row["id"] for row in listed} == {ticket.pk, tickets["bob"].pk}
    assert selectors.ticket_is_visible_to(world.bob, Ticket.objects.get(pk=ticket.pk))
    assert ticket.pk in visible_ids(world.alice)  # the lease's owner still sees it
    stranger = Party(kind=PartyKind.CUSTOMER, label="stranger", address=make_address())
    assert visible_ids(stranger) == set()


def test_a_customers_scope_reads_its_two_indexes(world: World, tickets: dict) -> None:
    """Neither arm of a customer's scope may need a scan of every ticket: with sequential and plain index
    scans ruled out, PostgreSQL answers the list from the two indexes behind the scope."""
    query = selectors.tickets_visible_to(world.bob).order_by("-public_updated_at", "-id")[:25]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = query.explain()
    assert "ticket_customer_address_idx" in plan
    assert "ticket_created_by_address_idx" in plan
    assert "Seq Scan on tickets_ticket" not in plan
