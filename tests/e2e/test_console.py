"""The support console in a real browser: support signs in and lands on the escalation queue with the
breached ticket on top, takes it, writes an internal note and a public reply, and hands it back; the
customer's page shows the reply and never the note, the provider's shows both."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from providers.models import ProviderMembership
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import new_page, screenshot, sign_in_to_console, sign_in_with_password
from tests.system.processes import AppServer
from tickets import services
from tickets.models import SlaPolicy, Ticket

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
NOTE = "CONSOLE-NOTE-91b2: provider on-call did not page"


@pytest.fixture
def escalations(transactional_db: None) -> dict[str, Any]:
    provider = factories.ProviderFactory(name="Atlas Cloud")
    member = factories.UserFactory(username="atlas-ops")
    ProviderMembership.objects.create(provider=provider, user=member)
    support_staff_create(username="support", password=PASSWORD)
    identity = factories.CustomerIdentityFactory(user=factories.UserFactory(username="bob"))
    deployment = factories.DeploymentFactory(owner_address=identity.address, provider=provider, name="api")
    customer = party_for_user(identity.user)
    # A critical ticket whose first response was due at once: breached as soon as it is open.
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    assert SlaPolicy.objects.filter(priority="critical").update(first_response_minutes=0) == 1
    calm = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Invoice question",
        description="Later.",
        priority="low",
    )
    services.ticket_escalate(actor=customer, ticket_id=calm.id, reason="Billing is support's")
    breached = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="API down since the upgrade",
        description="502 on every call.",
        priority="critical",
    )
    services.ticket_escalate(actor=customer, ticket_id=breached.id, reason="No answer from the provider")
    return {"breached": breached, "calm": calm}


def test_support_works_a_breached_escalation(
    browser: Browser, portal: AppServer, escalations: dict[str, Any]
) -> None:
    breached: Ticket = escalations["breached"]
    support_context, support = new_page(browser)
    sign_in_to_console(support, portal, "support", PASSWORD)
    expect(support.locator("h1")).to_contain_text("Escalation queue")
    first_row = support.locator("#queue tbody tr").first
    expect(first_row).to_contain_text(breached.display_number)
    expect(first_row).to_contain_text("Breached")
    expect(support.locator("#queue-status")).to_have_text("Live")
    screenshot(support, "console-queue")

    customer_context, customer = new_page(browser)
    sign_in_with_password(customer, portal, "bob", PASSWORD)
    customer.goto(f"{portal.http}/tickets/{breached.display_number}/")
    expect(customer.locator("#live-status")).to_have_text("Live")
    provider_context, provider = new_page(browser)
    sign_in_with_password(provider, portal, "atlas-ops", PASSWORD)
    provider.goto(f"{portal.http}/tickets/{breached.display_number}/")
    expect(provider.locator("#live-status")).to_have_text("Live")

    first_row.get_by_role("link", name=breached.display_number).click()
    support.get_by_role("button", name="Take it (assign to me)").click()
    expect(support.locator(".messagelist")).to_contain_text("Took the ticket")
    support.fill("#id_content", NOTE)
    support.check("#id_is_internal")
    support.get_by_role("button", name="Send").click()
    expect(support.locator(".messagelist")).to_contain_text("Added an internal note")
    support.fill("#id_content", "VirtEngine support here: we have paged the provider's on-call.")
    support.get_by_role("button", name="Send").click()
    expect(support.locator(".messagelist")).to_contain_text("Replied to the customer")
    screenshot(support, "console-ticket")
    support.fill("#hand-back-reason", "On-call acknowledged")
    support.get_by_role("button", name="Hand back to the provider").click()
    expect(support.locator(".messagelist")).to_contain_text("Handed the ticket back")

    expect(customer.locator("#thread")).to_contain_text("we have paged the provider's on-call")
    expect(customer.locator("#ticket-timeline")).to_contain_text("Assigned to")
    expect(provider.locator("#thread")).to_contain_text(NOTE)
    expect(provider.locator("#thread")).to_contain_text("we have paged the provider's on-call")
    customer.reload()
    expect(customer.locator("#thread")).to_contain_text("we have paged the provider's on-call")
    assert NOTE not in customer.content()

    support.goto(f"{portal.http}/admin/dashboard/")
    expect(support.locator("h1")).to_contain_text("SLA and workload")
    screenshot(support, "console-dashboard")
    for context in (support_context, customer_context, provider_context):
        context.close()
