"""Erasure in a real browser: support erases a customer's content from the console (reason, reference, the
address typed again); the provider's ticket page then shows the tombstones and "Content erased on … at the
person's request" in its timeline, with the provider's own reply intact. Desktop and phone screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from providers.models import ProviderMembership
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import PHONE, new_page, screenshot, sign_in_to_console, sign_in_with_password
from tests.e2e.test_portal import axe_serious
from tests.system.processes import AppServer
from tickets import services

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
SECRET = "My home address is 12 Privet Drive"


def test_support_erases_a_customer_and_the_provider_sees_the_tombstones(
    portal: AppServer, browser: Browser, transactional_db: None
) -> None:
    provider = factories.ProviderFactory(name="Atlas Cloud")
    member = factories.UserFactory(username="atlas-ops")
    member.set_password(PASSWORD)
    member.save()
    ProviderMembership.objects.create(provider=provider, user=member)
    support_staff_create(username="support", password=PASSWORD)
    identity = factories.CustomerIdentityFactory(user=factories.UserFactory(username="carol"))
    deployment = factories.DeploymentFactory(owner_address=identity.address, provider=provider, name="api")
    customer = party_for_user(identity.user)
    services.sla_policies_ensure()
    ticket = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Carol's private subject",
        description=SECRET,
    )
    services.comment_add(actor=customer, ticket_id=ticket.pk, body=SECRET)
    services.comment_add(actor=party_for_user(member), ticket_id=ticket.pk, body="We restarted the pod.")

    context, support = new_page(browser)
    sign_in_to_console(support, portal, "support", PASSWORD)
    support.goto(f"{portal.http}/admin/customers/{identity.address}/")
    support.get_by_role("link", name="Erase this person's content…").click()
    expect(support.get_by_role("heading", name="Erase this person's content")).to_be_visible()
    support.fill("#id_reason", "Asked by email to be forgotten")
    support.fill("#id_reference", "REQ-2026-031")
    support.fill("#id_confirm", identity.address)
    assert axe_serious(support) == [], "erase page"
    screenshot(support, "console-erase-person")
    support.get_by_role("button", name="Erase for good").click()
    expect(support.get_by_text("Content erased: 1 ticket(s)")).to_be_visible()
    context.close()

    for name, viewport in (("desktop", None), ("phone", PHONE)):
        context, page = new_page(browser, viewport) if viewport else new_page(browser)
        sign_in_with_password(page, portal, "atlas-ops", PASSWORD)
        page.goto(f"{portal.http}/tickets/{ticket.display_number}/")
        expect(page.get_by_text("We restarted the pod.")).to_be_visible()
        expect(page.get_by_text("at the person's request")).to_be_visible()
        assert SECRET not in page.content()
        assert axe_serious(page) == [], f"erased ticket page ({name})"
        screenshot(page, f"portal-ticket-erased-{name}")
        context.close()
