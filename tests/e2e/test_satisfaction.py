"""Satisfaction in a real browser: a customer rates a resolved ticket on its page; another through the link of
its resolution email, without signing in (the link then refuses a second use); support's dashboard shows the
ratings per provider."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Browser, expect

from notifications.services import emails_flush_due
from providers.models import ProviderMembership
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import new_page, screenshot, sign_in_to_console, sign_in_with_password
from tests.e2e.test_portal import axe_serious
from tests.system.processes import AppServer
from tickets import services
from tickets.models import Ticket
from tickets.models.satisfaction import SatisfactionRating

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def resolved(transactional_db: None) -> dict[str, Any]:
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    provider = factories.ProviderFactory(name="Nimbus Compute")
    member = factories.UserFactory(username="nimbus-ops")
    ProviderMembership.objects.create(provider=provider, user=member)
    support_staff_create(username="support", password=PASSWORD)
    user = factories.UserFactory(username="dana", first_name="Dana", last_name="Okafor")
    identity = factories.CustomerIdentityFactory(user=user)
    deployment = factories.DeploymentFactory(
        owner_address=identity.address, provider=provider, name="shop-api"
    )
    customer, staff = party_for_user(user), party_for_user(member)
    tickets = []
    for subject in ("Gateway timeouts", "Disk almost full"):
        ticket = services.ticket_create(
            actor=customer, deployment_id=deployment.lease_id, subject=subject, description="Please help."
        )
        services.comment_add(actor=staff, ticket_id=ticket.id, body="Fixed on our side.")
        services.ticket_transition(actor=staff, ticket_id=ticket.id, status="resolved")
        tickets.append(ticket)
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    links = {}
    for message in mail.outbox:
        match = re.search(r"https?://[^/\s]+(/tickets/satisfaction/\S+/)", message.body)
        number = re.search(r"SUP-\d+", message.subject)
        if match and number and user.email in message.to:
            links[number.group(0)] = match.group(1)
    return {"page": tickets[0], "emailed": tickets[1], "links": links}


def test_a_customer_rates_a_resolved_ticket_and_the_dashboard_shows_it(
    browser: Browser, portal: AppServer, resolved: dict[str, Any]
) -> None:
    on_page: Ticket = resolved["page"]
    emailed: Ticket = resolved["emailed"]

    # On the ticket's page, signed in.
    context, page = new_page(browser)
    sign_in_with_password(page, portal, "dana", PASSWORD)
    page.goto(f"{portal.http}/tickets/{on_page.display_number}/")
    panel = page.locator("section[aria-labelledby=satisfaction-title]")
    expect(panel).to_contain_text("Rate how this ticket was handled")
    assert axe_serious(page) == [], "ticket page with the rating form"
    panel.get_by_label("4 — Good").check()
    panel.get_by_label("Anything to add? (optional)").fill("Quick and clear.")
    panel.get_by_role("button", name="Send rating").click()
    expect(panel.locator("#satisfaction-rating")).to_contain_text("Rated 4 out of 5: “Quick and clear.”")
    screenshot(page, "portal-satisfaction-desktop")
    context.close()

    # Through the resolution email's link, not signed in; the link works once.
    link = resolved["links"][emailed.display_number]
    context, page = new_page(browser)
    page.goto(f"{portal.http}{link}")
    expect(page.get_by_role("heading", name=f"Rate {emailed.display_number}")).to_be_visible()
    assert axe_serious(page) == [], "rating link page"
    page.get_by_label("5 — Excellent").check()
    page.get_by_role("button", name="Send rating").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    page.goto(f"{portal.http}{link}")
    page.get_by_label("1 — Very poor").check()
    page.get_by_role("button", name="Send rating").click()
    expect(page.locator(".form-error")).to_contain_text("already used")
    context.close()
    assert dict(SatisfactionRating.objects.values_list("ticket_id", "rating")) == {
        on_page.id: 4,
        emailed.id: 5,
    }

    # Support's dashboard: the provider's ratings.
    context, support = new_page(browser)
    sign_in_to_console(support, portal, "support", PASSWORD)
    support.goto(f"{portal.http}/admin/dashboard/")
    row = support.locator("#satisfaction tbody tr", has_text="Nimbus Compute")
    expect(row).to_contain_text("4.5 / 5")
    expect(row).to_contain_text("0 · 0 · 0 · 1 · 1")
    assert axe_serious(support) == [], "dashboard"
    screenshot(support, "console-dashboard-satisfaction")
    context.close()
