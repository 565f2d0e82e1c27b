"""Search in a real browser: a customer types in the portal's search box and sees highlighted results as
they type, opens one; their search for a word only an internal note holds finds nothing; the provider's
finds it; support searches the console by ticket number and by the customer's name and opens the ticket."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from providers.models import ProviderMembership
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import PHONE, new_page, screenshot, sign_in_to_console, sign_in_with_password
from tests.e2e.test_portal import axe_serious
from tests.system.processes import AppServer
from tickets import services
from tickets.models import Ticket

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def tickets(transactional_db: None) -> dict[str, Any]:
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
    customer = party_for_user(user)
    provider_party = party_for_user(member)
    gateway = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Gateway timeouts on checkout",
        description="Every third request to <checkout> times out after 30 s.",
    )
    services.comment_add(
        actor=provider_party,
        ticket_id=gateway.id,
        body="Customer may ask for a refund; the gateway node is overcommitted.",
        is_internal=True,
    )
    services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Disk almost full",
        description="The volume is at 95 %.",
    )
    return {"gateway": gateway}


def test_customer_and_provider_search_the_portal(
    browser: Browser, portal: AppServer, tickets: dict[str, Any]
) -> None:
    gateway: Ticket = tickets["gateway"]
    context, page = new_page(browser)
    sign_in_with_password(page, portal, "dana", PASSWORD)
    rows = page.locator("#ticket-rows tr")
    expect(rows).to_have_count(2)
    sort = page.locator("#id_ordering")
    # Nothing searched: no "Best match", and the default order is named once, as what it is.
    expect(sort.locator("option:checked")).to_have_text("Newest first")
    expect(sort.locator("option", has_text="Best match")).to_have_count(0)
    expect(sort.locator("option", has_text="Newest first")).to_have_count(1)
    # As you type: a half-typed word already finds the ticket, and the excerpt marks where.
    page.locator("#id_q").press_sequentially("checko", delay=40)
    expect(rows).to_have_count(1)
    expect(sort.locator("option:checked")).to_have_text("Best match")
    expect(sort.locator("option", has_text="Newest first")).to_have_count(1)
    expect(rows.first).to_contain_text(gateway.display_number)
    expect(rows.first.locator(".tickets__snippet mark").first).to_have_text("checkout")
    expect(rows.first.locator(".tickets__snippet")).to_contain_text("<checkout>")  # text, escaped, not markup
    assert axe_serious(page) == [], "search results"
    screenshot(page, "portal-search-desktop")
    # Newest first while searching, then the search cleared: still newest first, under its one name.
    sort.select_option("-created_at")
    expect(page).to_have_url(re.compile(r"ordering=-created_at"))
    page.fill("#id_q", "")
    page.press("#id_q", "Enter")
    expect(rows).to_have_count(2)
    expect(sort.locator("option:checked")).to_have_text("Newest first")
    expect(sort.locator("option", has_text="Newest first")).to_have_count(1)
    expect(rows.first).to_contain_text("Disk almost full")  # the newer of the two
    # Only an internal note says "refund": the customer's search must not find the ticket by it.
    page.fill("#id_q", "refund")
    page.press("#id_q", "Enter")
    expect(page.locator(".empty-state")).to_contain_text("No tickets match")
    page.fill("#id_q", "SUP-" + f"{gateway.number:06d}")
    page.press("#id_q", "Enter")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=SUP"))
    page.wait_for_load_state("networkidle")
    rows.first.get_by_role("link", name=re.compile(gateway.display_number)).click()
    expect(page.locator("h1")).to_contain_text("Gateway timeouts on checkout")
    page.set_viewport_size(PHONE)
    page.goto(f"{portal.http}/tickets/?q=gateway")
    expect(rows).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "portal-search-phone")
    context.close()

    context, page = new_page(browser)
    sign_in_with_password(page, portal, "nimbus-ops", PASSWORD)
    page.locator("#id_q").press_sequentially("refund", delay=40)
    expect(page.locator("#ticket-rows tr")).to_have_count(1)
    expect(page.locator("#ticket-rows .tickets__snippet mark")).to_have_text("refund")
    context.close()


def test_support_searches_the_console(browser: Browser, portal: AppServer, tickets: dict[str, Any]) -> None:
    gateway: Ticket = tickets["gateway"]
    context, page = new_page(browser)
    sign_in_to_console(page, portal, "support", PASSWORD)
    page.goto(f"{portal.http}/admin/tickets/ticket/")
    results = page.locator("#result_list tbody tr")
    # A bare number is also text (a lease's dseq may be the same digits): its ticket comes first.
    page.fill("#searchbar", str(gateway.number))
    page.press("#searchbar", "Enter")
    expect(results.first).to_contain_text(gateway.display_number)
    for typed, found in (
        (gateway.display_number, 1),
        (f"#{gateway.number}", 1),
        ("Okafor", 2),  # the customer's name: both of Dana's tickets
        ("refund overcommitted", 1),
    ):
        page.fill("#searchbar", typed)
        page.press("#searchbar", "Enter")
        expect(results).to_have_count(found)
        expect(page.locator("#result_list")).to_contain_text(gateway.display_number)
    expect(page.locator("#result_list .search-snippet mark").first).to_have_text(re.compile("refund", re.I))
    assert [(v["id"], [n["html"] for n in v["nodes"]]) for v in axe_serious(page)] == [], "console search"
    screenshot(page, "console-search")
    page.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text(gateway.display_number)
    context.close()


def test_a_live_search_list_follows_matches_and_never_internal_ones(
    browser: Browser, portal: AppServer, tickets: dict[str, Any]
) -> None:
    """The list a customer has searched stays live: a public reply that makes a ticket match puts it on the
    list; an internal note with the same word changes nothing (its event never reaches the customer, and
    the row the list would fetch is searched in the public document)."""
    gateway: Ticket = tickets["gateway"]
    disk = Ticket.objects.exclude(pk=gateway.pk).get()
    provider = party_for_user(get_user_model().objects.get(username="nimbus-ops"))
    context, page = new_page(browser)
    sign_in_with_password(page, portal, "dana", PASSWORD)
    expect(page.locator("#live-status")).to_have_text("Live")
    page.locator("#id_q").press_sequentially("voucher", delay=40)
    expect(page.locator(".empty-state")).to_contain_text("No tickets match")
    expect(page).to_have_url(re.compile(r"q=voucher"))
    services.comment_add(
        actor=provider, ticket_id=gateway.id, body="A voucher is owed to this customer.", is_internal=True
    )
    services.comment_add(actor=provider, ticket_id=disk.id, body="We sent you a voucher for the downtime.")
    rows = page.locator("#ticket-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(disk.display_number)
    expect(rows.first.locator(".tickets__snippet mark")).to_have_text("voucher")
    # The gateway ticket never appears, even after a public event on it reaches the customer's socket.
    services.comment_add(actor=provider, ticket_id=gateway.id, body="We are on it.")
    expect(page.locator("#ticket-rows")).not_to_contain_text(gateway.display_number)
    services.comment_add(actor=provider, ticket_id=disk.id, body="And the volume was grown.")
    expect(rows.first.locator(".tickets__snippet")).to_contain_text("voucher")
    expect(rows).to_have_count(1)
    context.close()
