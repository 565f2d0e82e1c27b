"""Support reads replies by email in the console: the list says in words what became of each (posted, a
spoofed sender refused, an out-of-office answer dropped) and a message's page shows what its sender was
told and its headers; on a desktop and a phone, with axe."""

from __future__ import annotations

from unittest import mock

import pytest
from playwright.sync_api import Browser, expect

from notifications.inbound.processing import inbound_process
from notifications.inbound.store import inbound_store
from providers.selectors import party_for_user
from providers.services import support_staff_create
from tests import factories
from tests.e2e.conftest import PHONE, new_page, screenshot, sign_in_to_console
from tests.e2e.test_portal import axe_serious
from tests.notifications.inbound_mail import client_reply, customer_key, plain_reply, reply_to
from tests.system.processes import AppServer
from tickets import services

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def inbound_messages(transactional_db: None) -> None:
    services.sla_policies_ensure()
    support_staff_create(username="support", password=PASSWORD)
    identity = factories.CustomerIdentityFactory(user=factories.UserFactory(username="alice"))
    deployment = factories.DeploymentFactory(owner_address=identity.address)
    ticket = services.ticket_create(
        actor=party_for_user(identity.user),
        deployment_id=deployment.lease_id,
        subject="Pod crash-looping",
        description="OOMKilled.",
    )
    to = reply_to(ticket, customer_key(identity.address))
    alice = identity.user.email
    messages = [
        (client_reply("outlook.eml", ticket=ticket, to=to, from_address=alice), alice),
        (plain_reply("Close it now", to=to, from_address="mallory@evil.test"), "mallory@evil.test"),
        (client_reply("out_of_office.eml", ticket=ticket, to=to, from_address=alice), alice),
    ]
    with mock.patch("notifications.inbound.store.task_send_debounced"):
        for raw, sender in messages:
            inbound_process(inbound_store(raw=raw, recipient=to, envelope_from=sender).pk)


def test_support_reads_what_became_of_each_reply_by_email(
    browser: Browser, portal: AppServer, inbound_messages: None
) -> None:
    for size, viewport in (("desktop", {"width": 1366, "height": 900}), ("phone", PHONE)):
        context, page = new_page(browser, viewport)
        sign_in_to_console(page, portal, "support", PASSWORD)
        page.goto(f"{portal.http}/admin/notifications/inboundmessage/")
        table = page.locator("#result_list")
        expect(table).to_contain_text("Posted to the ticket")
        expect(table).to_contain_text("From is not the notified person")
        expect(table).to_contain_text("Auto-reply (out of office)")
        expect(table).not_to_contain_text("spoofed_from")
        screenshot(page, f"console-inbound-messages-{size}")
        assert axe_serious(page) == []
        page.get_by_role("link", name="mallory@evil.test").click()
        expect(page.locator("body")).to_contain_text("not sent from the address the notification went to")
        expect(page.locator("pre")).to_contain_text("From: Someone <mallory@evil.test>")
        screenshot(page, f"console-inbound-message-{size}")
        assert axe_serious(page) == []
        context.close()
