"""What a first week of real customers and providers reported (issue 29), in a real browser: escalation
reasons kept internal, closing confirmed (with and without JavaScript), Post/Redirect/Get, aligned forms and
an empty-password message, the logs cooldown in words, files on their message with image and text viewers,
deployments by name with a copy button, and wallets (one that knows the chain, one that does not, a
rejection, none installed). Desktop and phone; axe finds nothing serious on any page visited. Several checks
per page load: the suite has a time budget."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import Browser, BrowserContext, Page, expect

from core import wallet
from providers.models import ProviderMembership
from providers.selectors import party_for_user
from tests import factories
from tests.e2e.conftest import PHONE, new_page, screenshot, sign_in_with_password
from tests.e2e.test_portal import PASSWORD, axe_serious, png_bytes
from tests.e2e.test_words import CODES
from tests.system.processes import AppServer
from tickets import services
from tickets.models import Ticket

pytestmark = [pytest.mark.e2e]

REASON = "Customer DB corruption suspected; need VirtEngine help with the lease."
MESSAGE = "We asked VirtEngine support to look at your lease with us."
LOG = "boot ok\n<b>not bold</b>\nOOMKilled container web\n"


@pytest.fixture
def week(transactional_db: None) -> dict[str, Any]:
    services.sla_policies_ensure()  # a transactional test's flush removes what the migrations created
    provider = factories.ProviderFactory(name="Nimbus Compute")
    member = factories.UserFactory(username="nimbus-ops")
    ProviderMembership.objects.create(provider=provider, user=member)
    customer_key, customer_address = factories.make_wallet()
    identity = factories.CustomerIdentityFactory(
        user=factories.UserFactory(username="dana"), address=customer_address
    )
    deployment = factories.DeploymentFactory(
        owner_address=customer_address, provider=provider, name="web-frontend"
    )
    customer = party_for_user(identity.user)
    assert customer is not None
    factories.UserFactory(username="nobody")  # signs in, but is neither customer, provider nor support
    uploads = [
        services.attachment_upload(
            actor=customer, upload=SimpleUploadedFile("screen.png", png_bytes(), content_type="image/png")
        ),
        services.attachment_upload(
            actor=customer, upload=SimpleUploadedFile("pod.log", LOG.encode(), content_type="text/plain")
        ),
    ]
    ticket = services.ticket_create(
        actor=customer,
        deployment_id=deployment.lease_id,
        subject="Frontend pods crash-loop after deploy",
        description="Since 14:00 the pods restart every minute.",
        category="technical",
        priority="high",
        attachment_ids=[upload.id for upload in uploads],
    )
    return {
        "ticket": ticket,
        "deployment": deployment,
        "customer_key": customer_key,
        "customer_address": customer_address,
    }


def no_overflow(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def words_only(page: Page) -> str:
    text = page.locator("main").inner_text()
    assert not CODES.search(text), CODES.search(text)
    return text


def test_escalation_close_files_deployments_and_logs_with_javascript(
    browser: Browser, portal: AppServer, week: dict[str, Any]
) -> None:
    ticket: Ticket = week["ticket"]
    page_url = f"{portal.http}/tickets/{ticket.display_number}/"

    # -- The provider escalates: the form says who reads what; the logs cooldown is said in words.
    provider_context, provider = new_page(browser)
    sign_in_with_password(provider, portal, "nimbus-ops", PASSWORD)
    provider.goto(page_url)
    provider.locator("summary", has_text="Escalate to VirtEngine support").click()
    reason = provider.get_by_label("Reason for VirtEngine support (internal)")
    expect(reason).to_be_visible()
    expect(provider.locator("#ticket-actions")).to_contain_text("The customer does not see it.")
    reason.fill(REASON)
    provider.get_by_label("Message to the customer (optional)").fill(MESSAGE)
    provider.get_by_role("button", name="Escalate").click()
    timeline = provider.locator("#ticket-timeline")
    expect(timeline).to_contain_text(REASON)
    expect(timeline.locator(".badge--internal")).to_have_count(1)
    expect(timeline).to_contain_text(f"To the customer: “{MESSAGE}”")
    logs = provider.get_by_role("button", name="Fetch deployment logs")
    logs.click()
    notice = provider.locator("#ticket-flash .notice")
    expect(notice).to_contain_text("on their way")  # the escalation asked for them a moment ago
    expect(notice).to_contain_text(re.compile(r"You can fetch them again in \d+\u00a0s\."))
    assert axe_serious(provider) == [], "provider's ticket page"
    screenshot(provider, "portal-escalation-provider-desktop")
    provider_context.close()

    # -- The customer: the message, never the reason; files on the opening message; the deployment by name.
    context, customer = new_page(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in_with_password(customer, portal, "dana", PASSWORD)
    customer.goto(page_url)
    expect(customer.locator("#ticket-timeline")).to_contain_text(MESSAGE)
    assert REASON not in customer.content()
    opening = customer.locator(".comment--opening")
    expect(opening.get_by_role("link", name="View image screen.png")).to_be_visible()
    expect(opening.get_by_role("link", name="Read pod.log")).to_be_visible()
    expect(opening).to_contain_text("bytes")
    header = customer.locator("#ticket-header .deployment")
    expect(header.locator(".deployment__name")).to_have_text("web-frontend")
    lease = week["deployment"].lease_id
    expect(header.locator(".deployment__lease")).to_have_attribute("title", lease)
    assert lease not in header.locator(".deployment__lease [aria-hidden]").inner_text()  # shortened
    header.get_by_role("button", name="Copy lease ID of web-frontend").click()
    expect(customer.locator("#announcer")).to_have_text("Lease ID copied.")
    assert customer.evaluate("navigator.clipboard.readText()") == lease
    words_only(customer)
    # One clock: the header's SLA badge and the field below it say the same time, by the same rule.
    badge = customer.locator("#ticket-header .sla").inner_text()
    field = (
        customer.locator("#ticket-header .facts div", has_text="First response").locator("dd").inner_text()
    )
    assert field.startswith("due in ")
    assert badge == f"First response {field}", (badge, field)
    assert axe_serious(customer) == [], "customer's ticket page"
    screenshot(customer, "portal-detail-files-desktop")

    # -- The image viewer and the log viewer (escaped, numbered lines).
    opening.get_by_role("link", name="View image screen.png").click()
    image = customer.get_by_role("img", name=re.compile("screen.png, the image attached to"))
    expect(image).to_be_visible()
    # decode() waits for the image to finish loading (visible is not loaded) and rejects a broken one.
    assert image.evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
    assert axe_serious(customer) == [], "image viewer"
    screenshot(customer, "portal-file-image-desktop")
    customer.go_back()
    customer.locator(".comment--opening").get_by_role("link", name="Read pod.log").click()
    lines = customer.locator(".viewer__lines li")
    expect(lines).to_have_count(3)
    expect(lines.nth(1)).to_have_text("<b>not bold</b>")
    expect(customer.locator(".viewer__lines b")).to_have_count(0)
    assert axe_serious(customer) == [], "text viewer"
    screenshot(customer, "portal-file-log-desktop")
    customer.set_viewport_size(PHONE)
    assert no_overflow(customer), "text viewer at phone width"
    screenshot(customer, "portal-file-log-phone")

    # -- Closing asks first; keeping it open changes nothing. At phone width.
    customer.goto(page_url)
    assert no_overflow(customer), "ticket page at phone width"
    screenshot(customer, "portal-detail-files-phone")
    expect(customer.get_by_role("button", name="Close ticket")).to_have_count(0)  # no one-click close
    customer.get_by_role("link", name="Close ticket…").click()
    expect(customer.get_by_role("heading", name=f"Close {ticket.display_number} for good?")).to_be_visible()
    expect(customer.locator("main")).to_contain_text("Closing is final")
    assert axe_serious(customer) == [], "close confirmation"
    screenshot(customer, "portal-close-confirm-phone")
    customer.get_by_role("link", name="Keep it open").click()
    customer.wait_for_url(page_url)
    ticket.refresh_from_db()
    assert ticket.status == "open"
    context.close()


def test_without_javascript_close_and_post_redirect_get(
    browser: Browser, portal: AppServer, week: dict[str, Any]
) -> None:
    ticket: Ticket = week["ticket"]
    page_url = f"{portal.http}/tickets/{ticket.display_number}/"
    provider_context = browser.new_context(java_script_enabled=False)
    provider = provider_context.new_page()
    sign_in_with_password(provider, portal, "nimbus-ops", PASSWORD)
    provider.goto(page_url)
    with provider.expect_navigation():
        provider.get_by_role("button", name="Waiting for customer").click()
    assert provider.url == page_url  # back on the page (303), not /status/: a reload does not post again
    expect(provider.locator("#ticket-header")).to_contain_text("Waiting for customer")
    expect(provider.locator("#ticket-timeline")).to_contain_text("Waiting for customer")
    events = ticket.events.count()
    provider.reload()
    assert ticket.events.count() == events
    # A refused form comes back with what was typed, on the page's own address.
    provider.locator("summary", has_text="Escalate to VirtEngine support").click()
    provider.get_by_label("Reason for VirtEngine support (internal)").fill("   ")  # blank to the server
    with provider.expect_navigation():
        provider.get_by_role("button", name="Escalate").click()
    assert provider.url == f"{page_url}#ticket-actions"
    expect(provider.locator(".field--invalid")).to_have_count(1)
    provider_context.close()

    customer_context = browser.new_context(java_script_enabled=False)
    customer = customer_context.new_page()
    sign_in_with_password(customer, portal, "dana", PASSWORD)
    customer.goto(page_url)
    customer.get_by_role("link", name="Close ticket…").click()
    with customer.expect_navigation():
        customer.get_by_role("button", name="Close ticket for good").click()
    assert customer.url == page_url
    expect(customer.locator("#ticket-flash .notice")).to_contain_text("Ticket closed.")
    expect(customer.locator("#ticket-header")).to_contain_text("Closed")
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    customer_context.close()


def test_forms_line_up_and_say_what_is_missing(
    browser: Browser, portal: AppServer, week: dict[str, Any]
) -> None:
    del week
    context, page = new_page(browser)
    page.goto(f"{portal.http}/login/")
    page.fill("#id_username", "dana")
    page.click("form.sign-in__password button[type=submit]")  # no password
    expect(page.locator("#id_password-errors")).to_have_text("Enter your password.")
    assert page.get_attribute("#id_password", "aria-invalid") == "true"
    assert axe_serious(page) == [], "sign-in with a missing password"
    page.fill("#id_password", PASSWORD)
    page.click("form.sign-in__password button[type=submit]")
    page.wait_for_url("**/tickets/")
    row = page.locator("tbody tr").first
    expect(row.locator(".deployment__name")).to_have_text("web-frontend")
    words_only(page)
    assert axe_serious(page) == [], "list"
    page.goto(f"{portal.http}/tickets/new/")
    category, priority = (
        page.locator("#id_category").bounding_box(),
        page.locator("#id_priority").bounding_box(),
    )
    assert category is not None
    assert priority is not None
    assert abs(category["height"] - priority["height"]) < 1, (category, priority)
    assert abs(category["y"] - priority["y"]) < 1, (category, priority)
    expect(page.locator("#id_deployment_id option").first).to_have_text(re.compile(r"^web-frontend \(ve1"))
    assert axe_serious(page) == [], "create"
    screenshot(page, "portal-create-aligned-desktop")
    page.set_viewport_size(PHONE)
    assert no_overflow(page)
    page.goto(f"{portal.http}/tickets/")
    assert no_overflow(page)
    assert axe_serious(page) == [], "list at phone width"
    screenshot(page, "portal-list-deployments-phone")
    assert page.goto(f"{portal.http}/tickets/SUP-999999/").status == 404
    assert axe_serious(page) == [], "not found"
    context.close()
    # Signed in without a role: the page says so, accessibly.
    context, page = new_page(browser)
    sign_in_with_password(page, portal, "nobody", PASSWORD)
    expect(page.get_by_role("heading", name="This account has no tickets to show")).to_be_visible()
    assert axe_serious(page) == [], "no role"
    context.close()


def install_fake_keplr(context: BrowserContext, private_key: bytes, address: str) -> list[tuple[str, Any]]:
    """`window.keplr` that behaves as `window.veWallet.mode` says: "known" (knows the chain), "unknown"
    (`enable` fails until the chain is suggested), "reject" (the person declines). It signs in Python with
    a test key (a real secp256k1 signature). No `window.leap`: Leap is the wallet that is not installed."""
    public_key = base64.b64encode(wallet.public_key_of(private_key)).decode()

    def sign_arbitrary(_chain_id: str, signer: str, data: str) -> dict[str, Any]:
        sign_bytes = wallet.data_sign_bytes(data, signer, "")
        return {
            "pub_key": {"type": "tendermint/PubKeySecp256k1", "value": public_key},
            "signature": wallet.sign_document(private_key, sign_bytes),
        }

    calls: list[tuple[str, Any]] = []
    context.expose_function("veFakeKeplrSign", sign_arbitrary)
    context.expose_function("veFakeKeplrLog", lambda kind, detail: calls.append((kind, detail)))
    context.add_init_script(
        f"""
        window.veWallet = {{ mode: "known", suggested: null }};
        window.keplr = {{
          experimentalSuggestChain: async (info) => {{
            await window.veFakeKeplrLog("suggest", info);
            if (veWallet.mode === "reject") throw new Error("Request rejected");
            veWallet.suggested = info;
          }},
          enable: async (chainId) => {{
            await window.veFakeKeplrLog("enable", chainId);
            if (veWallet.mode === "unknown" && !(veWallet.suggested && veWallet.suggested.chainId === chainId)) {{
              throw new Error(`There is no chain info for ${{chainId}}`);
            }}
          }},
          getKey: async () => ({{ bech32Address: {address!r}, name: "fake", isNanoLedger: false }}),
          signArbitrary: (chainId, signer, data) => window.veFakeKeplrSign(chainId, signer, data),
        }};
        """
    )
    return calls


def test_wallets_known_unknown_rejected_and_missing(
    browser: Browser, portal: AppServer, week: dict[str, Any]
) -> None:
    for mode in ("unknown", "known"):
        context, page = new_page(browser)
        calls = install_fake_keplr(context, week["customer_key"], week["customer_address"])
        page.goto(f"{portal.http}/login/")
        if mode == "unknown":
            # No wallet for Leap: our words and the install links, not a raw error.
            page.get_by_role("button", name="Sign in with Leap").click()
            error = page.locator("#wallet-error")
            expect(error).to_contain_text("Leap is not installed in this browser.")
            expect(error.get_by_role("link", name="Keplr")).to_have_attribute(
                "href", "https://www.keplr.app/get"
            )
            expect(error.get_by_role("link", name="Leap")).to_have_attribute(
                "href", "https://www.leapwallet.io/download"
            )
            assert axe_serious(page) == [], "sign-in with a wallet error"
            screenshot(page, "portal-wallet-missing-desktop")
            # The person declines: said in words, and nothing is signed.
            page.evaluate("window.veWallet.mode = 'reject'")
            page.get_by_role("button", name="Sign in with Keplr").click()
            expect(error).to_contain_text("You declined the request in Keplr. Nothing was signed")
            expect(error.locator("[data-wallet-missing]")).to_be_hidden()
            page.evaluate("window.veWallet.mode = 'unknown'")
            calls.clear()
        page.get_by_role("button", name="Sign in with Keplr").click()
        page.wait_for_url("**/tickets/")
        context.close()
        # The chain is suggested from settings before `enable`, whether or not the wallet knew it.
        assert [kind for kind, _ in calls] == ["suggest", "enable"], (mode, calls)
        suggested = calls[0][1]
        assert suggested["chainId"] == "virtengine-1"
        assert suggested["bech32Config"]["bech32PrefixAccAddr"] == "ve"
        assert suggested["rpc"].startswith("http")
        assert suggested["rest"].startswith("http")
        assert suggested["currencies"][0]["coinMinimalDenom"] == "uve"
