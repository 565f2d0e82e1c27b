"""The console's work page, live, in real browsers: two agents on one ticket see each other and each
other's typing; a customer's reply appears without a reload; a reply written meanwhile is held back until
the agent has seen what arrived."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from providers.models import ProviderMembership
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import new_page, screenshot, sign_in_to_console, sign_in_with_password
from tests.e2e.test_portal import axe_serious
from tests.system.processes import AppServer
from tickets import services
from tickets.models import Comment, Ticket

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
# Generous for a live update on a loaded machine, and still what an agent would call "at once".
LIVE_WITHIN_MS = 2000


@pytest.fixture
def ticket(transactional_db: None) -> dict[str, Any]:
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    provider = factories.ProviderFactory(name="Atlas Cloud")
    ProviderMembership.objects.create(provider=provider, user=factories.UserFactory(username="atlas-ops"))
    support_staff_create(username="support", password=PASSWORD)
    support_staff_create(username="support2", password=PASSWORD)
    identity = factories.CustomerIdentityFactory(user=factories.UserFactory(username="bob"))
    deployment = factories.DeploymentFactory(owner_address=identity.address, provider=provider, name="api")
    customer = party_for_user(identity.user)
    created = services.ticket_create(
        actor=customer, deployment_id=deployment.lease_id, subject="API down", description="502 everywhere."
    )
    return {"ticket": created, "customer": customer}


def open_work_page(browser: Browser, server: AppServer, username: str, ticket: Ticket) -> Page:
    _, page = new_page(browser)
    sign_in_to_console(page, server, username, PASSWORD)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.http}/admin/tickets/ticket/{ticket.pk}/change/")
    expect(page.locator("#ticket-live-status")).to_have_text("Live")
    assert errors == []  # a script error would silently stop the page being live
    return page


def test_two_agents_a_live_reply_and_the_reply_guard(
    browser: Browser, portal: AppServer, ticket: dict[str, Any]
) -> None:
    work: Ticket = ticket["ticket"]
    first = open_work_page(browser, portal, "support", work)
    second = open_work_page(browser, portal, "support2", work)
    expect(first.locator("#presence")).to_have_text("Also on this ticket: support2")
    expect(second.locator("#presence")).to_have_text("Also on this ticket: support")

    second.locator("#id_content").press_sequentially("Looking", delay=30)
    expect(first.locator("#typing")).to_have_text("support2 is typing a reply…")

    first.fill("#id_content", "We are restarting the ingress now.")
    services.comment_add(actor=ticket["customer"], ticket_id=work.id, body="It is back by itself!")
    expect(first.locator("#ticket-timeline")).to_contain_text("It is back by itself!", timeout=LIVE_WITHIN_MS)
    expect(first.locator("#newer-replies")).to_be_visible()
    expect(first.locator("#id_content")).to_have_value("We are restarting the ingress now.")  # kept
    assert axe_serious(first) == [], "live work page"
    screenshot(first, "console-ticket-live")

    # Sent anyway by the form alone: the server holds it back too, with the text, until confirmed.
    first.get_by_role("button", name="Send").click()
    expect(first.locator(".messagelist")).to_contain_text("Someone replied after you opened this ticket")
    expect(first.locator("#newer-replies")).to_contain_text("bob replied after you opened this ticket")
    assert not Comment.objects.filter(ticket=work, body__startswith="We are restarting").exists()
    first.get_by_role("button", name="Send").click()
    expect(first.locator(".messagelist")).to_contain_text("Replied to the customer")
    assert Comment.objects.filter(ticket=work, body="We are restarting the ingress now.").count() == 1

    second.close()
    expect(first.locator("#presence")).to_be_hidden()


def test_the_providers_portal_page_and_the_console_see_each_other(
    browser: Browser, portal: AppServer, ticket: dict[str, Any]
) -> None:
    work: Ticket = ticket["ticket"]
    console = open_work_page(browser, portal, "support", work)
    _, provider = new_page(browser)
    sign_in_with_password(provider, portal, "atlas-ops", PASSWORD)
    provider.goto(f"{portal.http}/tickets/{work.display_number}/")
    expect(provider.locator("#live-status")).to_have_text("Live")
    expect(provider.locator("#presence")).to_have_text("Also on this ticket: support")
    expect(console.locator("#presence")).to_contain_text("Also on this ticket: atlas-ops")
    provider.locator("#id_content").press_sequentially("On it", delay=30)
    expect(console.locator("#typing")).to_contain_text("atlas-ops")
    services.comment_add(actor=ticket["customer"], ticket_id=work.id, body="Any news?")
    expect(provider.locator("#newer-replies")).to_contain_text("bob replied after you opened this ticket")
    assert axe_serious(provider) == [], "provider's ticket page with presence"
    screenshot(provider, "portal-detail-provider-presence")
    # A customer's page shows no presence at all.
    _, customer = new_page(browser)
    sign_in_with_password(customer, portal, "bob", PASSWORD)
    customer.goto(f"{portal.http}/tickets/{work.display_number}/")
    expect(customer.locator("#live-status")).to_have_text("Live")
    assert customer.locator("#presence").count() == 0


def test_keyboard_shortcuts(browser: Browser, portal: AppServer, ticket: dict[str, Any]) -> None:
    work: Ticket = ticket["ticket"]
    later = services.ticket_create(
        actor=ticket["customer"], deployment_id=work.deployment.lease_id, subject="Second", description="Two."
    )
    services.ticket_escalate(
        actor=ticket["customer"], ticket_id=later.id, reason="No answer"
    )  # support's queue
    page = open_work_page(browser, portal, "support", work)
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Take the ticket")
    assert axe_serious(page) == [], "shortcuts dialog"
    screenshot(page, "console-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.press("n")
    expect(page.locator("#id_content")).to_be_focused()
    expect(page.locator("#id_is_internal")).to_be_checked()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("r")
    expect(page.locator("#id_is_internal")).not_to_be_checked()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("t")
    expect(page.locator(".messagelist")).to_contain_text("Took the ticket")
    expect(page.locator("#ticket-live-status")).to_have_text("Live")  # the page's script is running
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(f"/admin/tickets/ticket/{later.pk}/change/"))
    expect(page.locator("#ticket-live-status")).to_have_text("Live")
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(f"/admin/tickets/ticket/{work.pk}/change/"))
    expect(page.locator("#ticket-live-status")).to_have_text("Live")
    page.keyboard.press("/")
    expect(page).to_have_url(re.compile(r"/admin/tickets/ticket/\?q="))
    expect(page.locator("html[data-shortcuts=on]")).to_have_count(1)  # the page's script is listening
    page.keyboard.press("/")
    expect(page.locator("#searchbar")).to_be_focused()


def test_the_ticket_list_and_a_customers_page(
    browser: Browser, portal: AppServer, ticket: dict[str, Any]
) -> None:
    work: Ticket = ticket["ticket"]
    services.ticket_transition(actor=ticket["customer"], ticket_id=work.id, status="closed")
    open_one = services.ticket_create(
        actor=ticket["customer"],
        deployment_id=work.deployment.lease_id,
        subject="Slow disk",
        description="IO.",
    )
    _, page = new_page(browser, {"width": 1366, "height": 800})
    sign_in_to_console(page, portal, "support", PASSWORD)
    page.goto(f"{portal.http}/admin/tickets/ticket/")
    expect(page.locator("h1")).to_have_text("Tickets")
    expect(page.locator(".breadcrumbs")).to_contain_text("Console")
    headers = [h.strip().lower() for h in page.locator("#result_list thead th").all_text_contents()]
    assert headers[1:] == ["number", "subject", "customer", "provider", "status", "priority", "sla", "age"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # fits: nothing pushed off screen
    assert axe_serious(page) == [], "ticket list"
    screenshot(page, "console-ticket-list")
    # Select all, "Assign to me": the closed ticket is skipped, said in one line.
    page.check("#action-toggle")
    page.select_option("select[name=action]", "assign_to_me")
    page.get_by_role("button", name="Go").click()
    messages = page.locator(".messagelist li")
    expect(messages).to_have_count(1)
    expect(messages.first).to_have_text(
        f"Assigned to you: 1 ticket ({open_one.display_number}). Skipped 1: closed ({work.display_number})."
    )
    # The customer by name, one click from the list, with their tickets and deployments.
    page.locator("#result_list").get_by_role("link", name="bob").first.click()
    expect(page.locator("h1")).to_have_text("bob")
    expect(page.locator("#content-main")).to_contain_text(open_one.display_number)
    expect(page.locator("#content-main")).to_contain_text(work.deployment.lease_id)
    assert axe_serious(page) == [], "customer page"
    screenshot(page, "console-customer")
