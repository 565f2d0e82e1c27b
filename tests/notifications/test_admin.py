"""Support manages any provider's webhook endpoints in the admin (through the services), reads the
delivery log and redelivers."""

from __future__ import annotations

import re

import pytest

from notifications import tasks
from notifications.models import WebhookDelivery, WebhookEndpoint
from tests.notifications.receivers import WebhookReceiver

pytestmark = pytest.mark.django_db


def test_support_registers_an_endpoint_for_a_provider_and_redelivers(world, apis, fast_webhooks) -> None:
    console = apis.agent.client  # a support agent (the support group's permissions), not a superuser
    receiver = WebhookReceiver()
    try:
        response = console.post(
            "/admin/notifications/webhookendpoint/add/",
            {
                "provider": world.provider_a.pk,
                "url": receiver.url(),
                "event_types": ["ticket_created", "new_comment"],
                "description": "set up by support",
            },
            follow=True,
        )
        assert response.status_code == 200
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.provider == world.provider_a
        assert endpoint.created_by_label == "agent"
        secret = re.search(r"(whsec_[A-Za-z0-9+/=]+)", response.content.decode()).group(1)
        receiver.secrets.append(secret)  # shown once, in the confirmation message

        world.open_ticket()
        tasks.webhook_deliver_task()
        (first,) = receiver.requests
        assert first.verified

        log = console.get(f"/admin/notifications/webhookdelivery/?endpoint__id__exact={endpoint.pk}")
        assert log.status_code == 200
        assert str(first.id) in log.content.decode()
        delivery = WebhookDelivery.objects.get()
        page = console.get(f"/admin/notifications/webhookdelivery/{delivery.pk}/change/")
        assert page.status_code == 200
        assert "success" in page.content.decode().lower()

        console.post(
            "/admin/notifications/webhookdelivery/",
            {"action": "redeliver", "_selected_action": [delivery.pk]},
        )
        tasks.webhook_deliver_task()
        assert [r.id for r in receiver.requests] == [first.id, first.id]

        console.post(
            "/admin/notifications/webhookendpoint/",
            {"action": "disable", "_selected_action": [endpoint.pk]},
        )
        endpoint.refresh_from_db()
        assert endpoint.state == "disabled"
        assert console.get("/admin/notifications/webhookendpoint/").status_code == 200
    finally:
        receiver.close()


def test_the_console_is_for_support_only(apis) -> None:
    response = apis.provider_a_member.client.get("/admin/notifications/webhookendpoint/")
    assert response.status_code == 302  # to the admin login
