"""Macros in a real browser: a provider's member writes a macro on the portal (an unknown placeholder is
refused at the field), applies it on a ticket's page, and the ticket shows the filled-in reply, the new
priority and status; the events it wrote are those of the same steps done by hand on a twin ticket."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from providers.models import ProviderMembership
from providers.selectors import party_for_user
from tests import factories
from tests.e2e.conftest import new_page, screenshot, sign_in_with_password
from tests.e2e.test_portal import axe_serious
from tests.system.processes import AppServer
from tickets import services
from tickets.models import Comment, Ticket, TicketEvent

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cast(transactional_db: None) -> dict[str, Any]:
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    provider = factories.ProviderFactory(name="Nimbus Compute")
    member = factories.UserFactory(username="nimbus-ops")
    ProviderMembership.objects.create(provider=provider, user=member)
    user = factories.UserFactory(username="dana", first_name="Dana", last_name="Okafor")
    identity = factories.CustomerIdentityFactory(user=user)
    deployment = factories.DeploymentFactory(
        owner_address=identity.address, provider=provider, name="shop-api"
    )
    customer = party_for_user(user)
    opened = [
        services.ticket_create(
            actor=customer,
            deployment_id=deployment.lease_id,
            subject="Gateway timeouts",
            description="Every third request times out.",
        )
        for _ in range(2)
    ]
    return {"ticket": opened[0], "twin": opened[1], "member": party_for_user(member)}


def _events(ticket: Ticket) -> list[tuple[Any, ...]]:
    """The ticket's events after its creation: kind, data (a comment by its text), internal flag, actor."""
    rows = []
    for event in TicketEvent.objects.filter(ticket=ticket, seq__gt=1).order_by("seq"):
        data = dict(event.data)
        if "comment_id" in data:
            comment = Comment.objects.get(pk=data.pop("comment_id"))
            data["text"] = comment.body.replace(ticket.display_number, "SUP-N")
        rows.append(
            (event.kind, data, event.is_internal, event.actor_id, event.actor_kind, event.actor_label)
        )
    return rows


def test_a_macro_applies_and_its_events_match_the_manual_steps(
    browser: Browser, portal: AppServer, cast: dict[str, Any]
) -> None:
    ticket: Ticket = cast["ticket"]
    context, page = new_page(browser)
    sign_in_with_password(page, portal, "nimbus-ops", PASSWORD)
    page.get_by_role("link", name="Macros").click()
    expect(page.get_by_role("heading", name="Macros", exact=True)).to_be_visible()

    page.fill("#id_name", "Fixed, please confirm")
    page.fill("#id_body", "Hi {customer}, fixed.")
    page.get_by_role("button", name="Save macro").click()
    expect(page.locator(".field__errors")).to_contain_text("Unknown placeholder {customer}")
    page.fill(
        "#id_body", "Hi {customer_name}, {ticket_number} on {deployment_name} is fixed. Please confirm."
    )
    page.select_option("#id_status", "resolved")
    page.select_option("#id_priority", "low")
    page.get_by_role("button", name="Save macro").click()
    expect(page.get_by_role("row", name="Fixed, please confirm")).to_be_visible()
    assert axe_serious(page) == [], "macros page"
    screenshot(page, "portal-macros-desktop")

    page.goto(f"{portal.http}/tickets/{ticket.display_number}/")
    page.select_option("#macro-choice", label="Fixed, please confirm")
    page.get_by_role("button", name="Apply macro").click()
    reply = f"Hi Dana Okafor, {ticket.display_number} on shop-api is fixed. Please confirm."
    expect(page.locator("#thread")).to_contain_text(reply)
    expect(page.locator("#ticket-header")).to_contain_text("Resolved")
    expect(page.locator("#ticket-header")).to_contain_text("Low")
    assert axe_serious(page) == [], "ticket page with macros"
    screenshot(page, "portal-macro-applied-desktop")
    context.close()

    # The same steps by hand, on the twin ticket, by the same member.
    twin: Ticket = cast["twin"]
    member = cast["member"]
    services.comment_add(
        actor=member, ticket_id=twin.id, body=reply.replace(ticket.display_number, twin.display_number)
    )
    services.ticket_priority_set(actor=member, ticket_id=twin.id, priority="low")
    services.ticket_transition(actor=member, ticket_id=twin.id, status="resolved")
    by_macro, by_hand = _events(ticket), _events(twin)
    assert [row[0] for row in by_macro] == ["new_comment", "priority_change", "status_change"]
    assert by_macro == by_hand
