"""The console's page of one customer: name beside address, emails, deployments with their providers,
tickets, SLA history; support only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import World
from tests.sockets import session_client as signed_in
from tickets import services

pytestmark = pytest.mark.django_db


def test_support_sees_who_the_customer_is_and_their_tickets(world: World) -> None:
    user = get_user_model().objects.get(pk=world.alice.user_id)
    user.first_name, user.last_name, user.email = "Alice", "Lindqvist", "alice@lindqvist.example"
    user.save()
    first = world.open_ticket(subject="Ingress returns 502")
    second = world.open_ticket(subject="Disk full", deployment_id=world.alice_second_deployment.lease_id)
    services.ticket_transition(actor=world.provider_a_member, ticket_id=first.id, status="resolved")
    world.open_ticket(actor=world.bob, subject="Bob's own ticket")
    page = signed_in(world.agent.user_id).get(f"/admin/customers/{world.alice.address}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h2>Alice Lindqvist" in html
    assert world.alice.address in html
    assert "alice@lindqvist.example" in html
    for deployment in (world.alice_deployment, world.alice_second_deployment):
        assert deployment.lease_id in html
        assert deployment.provider.name in html
    assert first.display_number in html
    assert second.display_number in html
    assert "Bob&#x27;s own ticket" not in html
    assert "1 open, 1 resolved or closed" in html
    assert "no ratings yet" in html
    services.satisfaction_rate(actor=world.alice, ticket_id=first.id, rating=4, comment="")
    html = signed_in(world.agent.user_id).get(f"/admin/customers/{world.alice.address}/").content.decode()
    assert "4.0 out of 5 (1 rating)" in html


def test_only_support_and_only_known_customers(world: World) -> None:
    world.open_ticket()
    path = f"/admin/customers/{world.alice.address}/"
    assert signed_in(world.alice.user_id).get(path).status_code == 302  # to the console's sign-in
    assert signed_in(world.provider_a_member.user_id).get(path).status_code == 302
    assert signed_in(world.agent.user_id).get("/admin/customers/ve1nobody/").status_code == 404


def test_the_queue_shows_customers_by_name(world: World) -> None:
    ticket = world.open_ticket()
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason="No answer")
    html = signed_in(world.agent.user_id).get("/admin/").content.decode()
    assert f'href="/admin/customers/{world.alice.address}/" title="{world.alice.address}">alice</a>' in html
