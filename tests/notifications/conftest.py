"""Notification fixtures: a webhook receiver, an SMTP server, fast retry settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.receivers import SmtpServer, WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def fast_webhooks(settings):
    """Retries without waiting (the schedule's length is what counts), short timeouts."""
    settings.VE_WEBHOOK_RETRY_SCHEDULE = [0.0] * 7
    settings.VE_WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.VE_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1.0
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    return settings


@pytest.fixture
def smtp(settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    settings.VE_PUBLIC_BASE_URL = "https://support.example.test"
    settings.DEFAULT_FROM_EMAIL = "VirtEngine Support <support@support.example.test>"
    yield server
    server.stop()
