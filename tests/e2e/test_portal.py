"""The portal in a real browser, as its people use it: a customer signs in with a wallet and opens a ticket
with a screenshot and a log; a provider member, in another browser, sees it arrive, types, replies and
writes an internal note; the customer sees the reply and the typing live and never the note; statuses
and the escalation show on both sides; a third customer gets a 404; a dropped socket loses nothing."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from providers.models import ProviderMembership
from tests import factories
from tests.e2e.conftest import PHONE, install_test_wallet, new_page, screenshot, sign_in_with_password
from tests.system.processes import AppServer
from tickets.models import Ticket

pytestmark = [pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
INTERNAL_NOTE = "INTERNAL-e2e-7c1d: node n7 keeps OOM-killing the pod"


def png_bytes(width: int = 64, height: int = 40) -> bytes:
    """A real (tiny) PNG: a screenshot stand-in that the upload check accepts on its bytes."""
    raw = b"".join(b"\x00" + bytes([40, 90, 200]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class SocketTap:
    """Every WebSocket of a page, passed through Playwright so the test can read each frame the server
    sent and drop the connection as a flaky network would."""

    def __init__(self, page: Page) -> None:
        self.frames: list[str] = []
        self.routes: list[WebSocketRoute] = []
        page.route_web_socket(re.compile(r".*/updates.*"), self._route)

    def _route(self, route: WebSocketRoute) -> None:
        server = route.connect_to_server()
        self.routes.append(route)

        def from_server(message: str | bytes) -> None:
            self.frames.append(message if isinstance(message, str) else message.decode())
            route.send(message)

        server.on_message(from_server)
        route.on_message(server.send)

    def drop_ticket_socket(self) -> None:
        for route in self.routes:
            if "/tickets/" in route.url:
                route.close(code=1001, reason="network dropped")


def axe_serious(page: Page) -> list[dict[str, Any]]:
    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


@pytest.fixture
def cast(transactional_db: None) -> dict[str, Any]:
    provider = factories.ProviderFactory(name="Nimbus Compute")
    member = factories.UserFactory(username="nimbus-ops")
    ProviderMembership.objects.create(provider=provider, user=member)
    customer_key, customer_address = factories.make_wallet()
    deployment = factories.DeploymentFactory(
        owner_address=customer_address, provider=provider, name="web-frontend"
    )
    factories.DeploymentFactory(owner_address=customer_address, provider=provider, name="postgres")
    carol = factories.CustomerIdentityFactory(user=factories.UserFactory(username="carol"))
    factories.DeploymentFactory(owner_address=carol.address, provider=provider, name="carol-node")
    return {
        "customer_key": customer_key,
        "customer_address": customer_address,
        "deployment": deployment,
        "member": member,
    }


def test_customer_and_provider_work_a_ticket_live(
    browser: Browser, portal: AppServer, cast: dict[str, Any], tmp_path: Any
) -> None:
    # -- The customer signs in with a wallet (Keplr's signArbitrary, a real secp256k1 signature).
    customer_context, customer = new_page(browser)
    wallet_calls = install_test_wallet(customer_context, cast["customer_key"], cast["customer_address"])
    customer_socket = SocketTap(customer)
    customer.goto(f"{portal.http}/")
    expect(customer).to_have_url(re.compile(r"/login/"))
    customer.get_by_role("button", name="Sign in with Keplr").click()
    customer.wait_for_url("**/tickets/")
    assert [call["signer"] for call in wallet_calls] == [cast["customer_address"]]
    assert "Sign in to VirtEngine Support" in wallet_calls[0]["data"]
    expect(customer.get_by_role("heading", name="No tickets yet")).to_be_visible()

    # -- A provider member signs in with a password in another browser and watches the list.
    provider_context, provider = new_page(browser)
    provider_socket = SocketTap(provider)
    sign_in_with_password(provider, portal, "nimbus-ops", PASSWORD)
    expect(provider.locator("#live-status")).to_have_text("Live")

    # -- The customer opens a ticket with a screenshot and a log attached.
    customer.get_by_role("link", name="New ticket").first.click()
    customer.select_option("#id_deployment_id", cast["deployment"].lease_id)
    customer.select_option("#id_priority", "high")
    customer.fill("#id_subject", "Frontend pods crash-loop after deploy")
    customer.fill(
        "#id_description",
        "Since 14:00 the pods restart every minute.\nLogs attached: https://status.example.test",
    )
    screenshot_file = tmp_path / "screen.png"
    screenshot_file.write_bytes(png_bytes())
    log_file = tmp_path / "pod.log"
    log_file.write_text("2026-12-02T14:00:01Z OOMKilled container web\n")
    customer.set_input_files("#id_files", [str(screenshot_file), str(log_file)])
    expect(customer.locator("[data-uploads] li")).to_have_count(2)
    expect(customer.locator("[data-uploads]")).to_contain_text("pod.log")
    screenshot(customer, "portal-create-desktop")
    customer.get_by_role("button", name="Open ticket").click()
    customer.wait_for_url(re.compile(r"/tickets/SUP-\d+/$"))
    ticket = Ticket.objects.get(subject="Frontend pods crash-loop after deploy")
    assert ticket.attachments.count() == 2
    expect(customer.locator("#ticket-files")).to_contain_text("pod.log")
    expect(customer.locator("#ticket-files img.attachment__thumb")).to_have_count(1)
    expect(customer.locator("#thread")).to_contain_text("Since 14:00 the pods restart every minute.")
    expect(customer.locator("#thread a[href='https://status.example.test']")).to_have_count(1)

    # -- The provider's list shows it without a reload.
    row = provider.locator(f"#ticket-{ticket.id}")
    expect(row).to_contain_text("Frontend pods crash-loop after deploy")
    expect(row).to_contain_text("Open")
    screenshot(provider, "portal-list-desktop")
    row.get_by_role("link").click()
    provider.wait_for_url(f"**/tickets/{ticket.display_number}/")
    expect(provider.locator("#live-status")).to_have_text("Live")
    expect(customer.locator("#live-status")).to_have_text("Live")

    # -- The provider types; the customer sees who is typing.
    provider.locator("#id_content").press_sequentially("Looking", delay=30)
    expect(customer.locator("#typing")).to_contain_text("is typing")

    # -- A reply and an internal note.
    provider.fill("#id_content", "We see the OOM kills; raising the memory limit now.")
    provider.get_by_role("button", name="Send").click()
    expect(customer.locator("#thread")).to_contain_text("raising the memory limit now", timeout=5_000)
    provider.fill("#id_content", INTERNAL_NOTE)
    provider.check("#id_is_internal")
    provider.get_by_role("button", name="Send").click()
    expect(provider.locator("#thread .comment--internal")).to_contain_text(INTERNAL_NOTE)
    expect(provider.locator("#thread .comment--internal")).to_contain_text("Internal note")
    screenshot(provider, "portal-detail-provider-desktop")

    # -- Waiting for the customer: the customer's header follows.
    provider.get_by_role("button", name="Waiting for customer").click()
    expect(customer.locator("#ticket-header")).to_contain_text("Waiting for customer")

    # -- The customer escalates; the timeline shows the assignment to support on both sides.
    customer.locator("summary", has_text="Escalate to VirtEngine support").click()
    customer.fill("#id_reason", "The outage costs us customers; please step in.")
    customer.get_by_role("button", name="Escalate").click()
    expect(customer.locator("#ticket-timeline")).to_contain_text("Escalated to VirtEngine support")
    expect(provider.locator("#ticket-timeline")).to_contain_text("Escalated to VirtEngine support")
    expect(customer.locator("#ticket-header")).to_contain_text("Escalated")

    # -- The internal note never reached the customer: not in the DOM, the page source or a socket frame.
    customer.reload()
    expect(customer.locator("#thread")).to_contain_text("raising the memory limit now")
    assert INTERNAL_NOTE not in customer.content()
    assert "INTERNAL-e2e" not in customer.evaluate("document.documentElement.outerHTML")
    assert customer_socket.frames, "the customer's sockets received frames"
    assert not [frame for frame in customer_socket.frames if "INTERNAL-e2e" in frame]
    assert any("INTERNAL-e2e" in frame for frame in provider_socket.frames)

    # -- A dropped socket: what is posted meanwhile appears exactly once after the reconnect.
    expect(customer.locator("#live-status")).to_have_text("Live")
    customer_socket.drop_ticket_socket()
    expect(customer.locator("#live-status")).to_contain_text("reconnecting")
    provider.fill("#id_content", "Posted while your connection was down.")
    provider.get_by_role("button", name="Send").click()
    expect(customer.locator("#live-status")).to_have_text("Live", timeout=15_000)
    missed = customer.locator("#thread .comment", has_text="Posted while your connection was down.")
    expect(missed).to_have_count(1)
    customer.wait_for_timeout(1_000)
    expect(missed).to_have_count(1)
    reconnects = [route.url for route in customer_socket.routes if "/tickets/" in route.url]
    assert len(reconnects) >= 2
    assert "since=" in reconnects[-1]

    # -- Screenshots of the customer's pages, on a desktop and a phone.
    screenshot(customer, "portal-detail-desktop")
    customer.get_by_role("link", name="All tickets").first.click()
    expect(customer.locator(f"#ticket-{ticket.id}")).to_be_visible()
    screenshot(customer, "portal-list-customer-desktop")
    customer.set_viewport_size(PHONE)
    screenshot(customer, "portal-list-phone")
    customer.goto(f"{portal.http}/tickets/{ticket.display_number}/")
    screenshot(customer, "portal-detail-phone")
    customer.goto(f"{portal.http}/tickets/new/")
    screenshot(customer, "portal-create-phone")

    # -- A third customer: that ticket's page and its files do not exist for her.
    carol_context, carol = new_page(browser)
    sign_in_with_password(carol, portal, "carol", PASSWORD)
    assert carol.goto(f"{portal.http}/tickets/{ticket.display_number}/").status == 404
    assert carol.goto(f"{portal.http}/tickets/{ticket.id}/").status == 404
    for attachment in ticket.attachments.all():
        assert carol.goto(f"{portal.http}/api/v1/attachments/{attachment.id}").status == 404
    for context in (customer_context, provider_context, carol_context):
        context.close()


def test_list_create_and_detail_pages_have_no_serious_accessibility_violations(
    browser: Browser, portal: AppServer, cast: dict[str, Any]
) -> None:
    context, page = new_page(browser)
    install_test_wallet(context, cast["customer_key"], cast["customer_address"])
    page.goto(f"{portal.http}/login/")
    assert axe_serious(page) == [], "sign-in"
    page.get_by_role("button", name="Sign in with Keplr").click()
    page.wait_for_url("**/tickets/")
    page.goto(f"{portal.http}/tickets/new/")
    assert axe_serious(page) == [], "create"
    page.get_by_role("button", name="Open ticket").click()  # empty: errors shown next to the fields
    expect(page.locator(".field--invalid").first).to_be_visible()
    assert axe_serious(page) == [], "create with errors"
    page.select_option("#id_deployment_id", cast["deployment"].lease_id)
    page.fill("#id_subject", "Accessibility check")
    page.fill("#id_description", "A ticket to look at.")
    page.get_by_role("button", name="Open ticket").click()
    page.wait_for_url(re.compile(r"/tickets/SUP-\d+/$"))
    assert axe_serious(page) == [], "detail"
    page.goto(f"{portal.http}/tickets/")
    assert axe_serious(page) == [], "list"
    page.set_viewport_size(PHONE)
    assert axe_serious(page) == [], "list at phone width"
    context.close()
