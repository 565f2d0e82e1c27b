"""Browser tests: Debian's Chromium driven by Playwright against the app on a real uvicorn process, on the
test database and Redis (the server process and the test share both)."""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page

from core import wallet
from tests.system.processes import AppServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots (docs/screenshots) are refreshed on purpose, by `make screenshots`; an ordinary
# run keeps its own under .artifacts/ (CI can upload them) and leaves the committed ones alone.
SCREENSHOTS = Path(os.environ.get("VE_SCREENSHOTS_DIR") or ROOT / ".artifacts" / "screenshots")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Playwright's sync API keeps an event loop running in the test's thread, which Django's async-safety
    check takes for async code: database work from the test (and the suite's teardown after it) is allowed
    from here on. The browser tests run last (tests/conftest.py orders them), so no other test runs with it."""
    del item
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (Playwright never downloads a browser here), headless, quiet on a closed network."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def portal(transactional_db: None) -> Iterator[AppServer]:
    """The whole app (pages, API, sockets) on one uvicorn process, reading the test database."""
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    server = AppServer(
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_NAME": connection.settings_dict["NAME"],
            "VE_CHANNELS_PREFIX": layer["prefix"],
            "VE_WS_RESYNC_SECONDS": "2",
        }
    )
    yield server
    server.stop()


def new_page(browser: Browser, viewport: dict[str, int] = DESKTOP) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    return context, context.new_page()


def sign_in_with_password(page: Page, server: AppServer, username: str, password: str) -> None:
    page.goto(f"{server.http}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.sign-in__password button[type=submit]")
    page.wait_for_url("**/tickets/")


def sign_in_to_console(page: Page, server: AppServer, username: str, password: str) -> None:
    """Support staff's sign-in to the console (Django's admin login); lands on the escalation queue."""
    page.goto(f"{server.http}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_url("**/admin/")


def install_test_wallet(context: BrowserContext, private_key: bytes, address: str) -> list[dict[str, str]]:
    """`window.keplr` as the extension provides it, signing with a test key in Python (a real secp256k1
    signature over exactly what `signArbitrary` signs). Returns the requests the page made of it."""
    calls: list[dict[str, str]] = []
    public_key = base64.b64encode(wallet.public_key_of(private_key)).decode()

    def sign_arbitrary(chain_id: str, signer: str, data: str) -> dict[str, Any]:
        calls.append({"chain_id": chain_id, "signer": signer, "data": data})
        if signer != address:
            raise ValueError("not this wallet's address")
        sign_bytes = wallet.data_sign_bytes(data, signer, "")  # signArbitrary: ADR-036, chain_id ""
        return {
            "pub_key": {"type": "tendermint/PubKeySecp256k1", "value": public_key},
            "signature": wallet.sign_document(private_key, sign_bytes),
        }

    context.expose_function("veTestWalletSign", sign_arbitrary)
    context.add_init_script(
        f"""
        window.keplr = {{
          enable: async () => undefined,
          getKey: async () => ({{ bech32Address: {address!r}, name: "test wallet", isNanoLedger: false }}),
          signArbitrary: (chainId, signer, data) => window.veTestWalletSign(chainId, signer, data),
        }};
        """
    )
    return calls


def screenshot(page: Page, name: str) -> None:
    """The page as a person sees it (`make screenshots` refreshes the README's, in docs/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
