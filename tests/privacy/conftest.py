"""The notification fixtures (SMTP server, webhook receiver) for the privacy tests too."""

from tests.notifications.conftest import fast_webhooks, receiver, smtp

__all__ = ["fast_webhooks", "receiver", "smtp"]
