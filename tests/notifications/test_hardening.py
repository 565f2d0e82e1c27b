"""Hardening round 3 in notifications (issue 24, classes 4, 8 and 9): a one-line field refuses control
characters at the service boundary, and one bad email can never silence a ticket's mail or retry for ever;
webhook URLs are validated by a real URL parser and the SSRF guard follows IPv4 addresses embedded in
IPv6 ones; a new signing secret is shown in the body of one response, never in a cookie."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import PendingEmail, WebhookEndpoint
from notifications.services import emails_flush_due
from notifications.transport import refusal_reason
from tests.notifications.receivers import WebhookReceiver
from tickets import services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

ALICE = "alice@example.test"
MEMBER_A = "pa-member@example.test"


def flush(after_seconds: float = 121) -> None:
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=after_seconds))


class TestOneLineFields:
    @pytest.mark.parametrize(
        "subject", ["x\r\nBcc: v@evil.example", "x\nBcc: v@evil.example", "a\rb", "tab\there", "a\u2028b"]
    )
    def test_a_subject_with_a_control_character_is_a_400_naming_it(self, world, apis, subject: str) -> None:
        response = apis.alice.post(
            "/api/v1/tickets",
            {
                "deployment_id": world.alice_deployment.lease_id,
                "subject": subject,
                "description": "The description may have\nline breaks.",
                "category": "technical",
                "priority": "high",
            },
        )
        assert response.status_code == 400, response.content
        assert "subject" in response.json()["fields"]
        assert not Ticket.objects.exists()

    def test_support_cannot_edit_one_in_either(self, world, apis) -> None:
        ticket = world.open_ticket()
        response = apis.agent.patch(f"/api/v1/tickets/{ticket.pk}", {"subject": "a\r\nBcc: x@evil.example"})
        assert response.status_code == 400, response.content
        assert "subject" in response.json()["fields"]
        ticket.refresh_from_db()
        assert ticket.subject == "Pod crash-looping"

    @pytest.mark.parametrize("field", ["description"])
    def test_a_webhook_description_is_one_line(self, apis, field: str) -> None:
        response = apis.provider_a.post(
            "/api/v1/webhooks",
            {"url": "https://hooks.example.com/a", "event_types": ["new_comment"], field: "a\r\nb"},
        )
        assert response.status_code == 400, response.content
        assert field in response.json()["fields"]


class TestEmailsCannotBeSilenced:
    def test_a_subject_stored_with_a_line_break_still_emails_on_one_line(self, world, smtp) -> None:
        ticket = world.open_ticket()
        # As written before the services refused it.
        Ticket.objects.filter(pk=ticket.pk).update(subject="x\r\nBcc: v@evil.example")
        flush()
        (message,) = smtp.to(MEMBER_A)
        assert "\n" not in message["Subject"]
        assert message["Subject"].endswith("x  Bcc: v@evil.example")
        assert message["Bcc"] is None
        assert PendingEmail.objects.get().state == "sent"

    def test_a_permanent_failure_is_recorded_at_once_and_the_rest_goes_out(self, world, smtp, apis) -> None:
        get_user_model().objects.filter(pk=world.provider_a_member.user_id).update(
            email="broken\r\nBcc: v@evil.example"
        )
        get_user_model().objects.filter(pk=world.alice.user_id).update(email=ALICE)
        ticket = world.open_ticket()
        services.comment_add(actor=world.agent, ticket_id=ticket.pk, body="Looking into it.")
        flush()
        broken = PendingEmail.objects.get(user_id=world.provider_a_member.user_id)
        assert broken.state == "failed"
        assert broken.attempts == 1
        assert broken.last_error.startswith("Permanent: ")
        assert smtp.to(ALICE), "the customer's email went out all the same"
        # Never tried again.
        flush(after_seconds=121 + 86400)
        broken.refresh_from_db()
        assert (broken.state, broken.attempts) == ("failed", 1)
        # Support sees it in the console.
        page = apis.agent.client.get("/admin/notifications/pendingemail/?state__exact=failed")
        assert page.status_code == 200
        assert "Permanent: " in page.content.decode()


class TestWebhookUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "http://exa mple.com/",
            "https://example.com:0/hook",
            'https://example.com/">',
            "https://example.com/<script>",
            "https://example.com:70000/",
            "https://example.com/a b",
            "https://user:pass@example.com/",
            "javascript:alert(1)",
            "https://",
        ],
    )
    def test_malformed_urls_are_refused_naming_the_url(self, apis, url: str) -> None:
        response = apis.provider_a.post("/api/v1/webhooks", {"url": url, "event_types": ["new_comment"]})
        assert response.status_code == 400, (url, response.content)
        assert "url" in response.json()["fields"]
        assert not WebhookEndpoint.objects.exists()

    def test_a_well_formed_url_is_accepted(self, apis) -> None:
        url = "https://hooks.example.com:8443/v1/in?source=ve&x=%20y#frag"
        response = apis.provider_a.post("/api/v1/webhooks", {"url": url, "event_types": ["new_comment"]})
        assert response.status_code == 201, response.content

    @pytest.mark.parametrize(
        ("address", "embedded"),
        [
            ("2002:7f00:1::1", "127.0.0.1"),  # 6to4 of loopback
            ("2002:a00:1::1", "10.0.0.1"),  # 6to4 of a private address
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),  # Teredo, client 10.0.0.1
            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 of the metadata address
            ("::ffff:192.168.1.1", "192.168.1.1"),  # IPv4-mapped
        ],
    )
    def test_the_ssrf_guard_sees_ipv4_addresses_inside_ipv6_ones(self, address: str, embedded: str) -> None:
        reason = refusal_reason(address)
        assert reason is not None
        assert embedded in reason

    def test_a_6to4_url_is_refused_at_registration(self, apis, settings) -> None:
        settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
        response = apis.provider_a.post(
            "/api/v1/webhooks", {"url": "https://[2002:7f00:1::1]/hook", "event_types": ["new_comment"]}
        )
        assert response.status_code == 400, response.content
        assert "127.0.0.1" in response.json()["fields"]["url"][0]

    def test_public_addresses_still_pass(self) -> None:
        assert refusal_reason("2606:4700:4700::1111") is None
        assert refusal_reason("2002:808:808::1") is None  # 6to4 of a public address


class TestSecretsShownOnce:
    def _assert_only_in_the_body(self, response, client) -> str:
        body = response.content.decode()
        assert response.status_code == 200
        assert "whsec_" in body
        secret = body[body.index("whsec_") :].split("<", 1)[0]
        assert "no-store" in response["Cache-Control"]
        for morsel in response.cookies.values():
            assert secret not in morsel.value
        assert "messages" not in response.cookies
        # Nothing of it on the next page either, nor in the session.
        assert secret not in client.get("/admin/notifications/webhookendpoint/").content.decode()
        assert secret not in str(dict(client.session))
        return secret

    def test_a_new_endpoints_secret(self, world, apis) -> None:
        console = apis.agent.client
        response = console.post(
            "/admin/notifications/webhookendpoint/add/",
            {
                "provider": world.provider_a.pk,
                "url": "https://hooks.example.com/in",
                "event_types": ["new_comment"],
                "description": "",
            },
        )
        self._assert_only_in_the_body(response, console)

    def test_a_rotated_secret(self, world, apis) -> None:
        receiver = WebhookReceiver()
        try:
            created = apis.provider_a.post(
                "/api/v1/webhooks", {"url": receiver.url(), "event_types": ["new_comment"]}
            )
            assert created.status_code == 201, created.content
            endpoint_id = created.json()["id"]
        finally:
            receiver.close()
        console = apis.agent.client
        response = console.post(
            "/admin/notifications/webhookendpoint/",
            {"action": "rotate_secret", "_selected_action": [endpoint_id]},
        )
        secret = self._assert_only_in_the_body(response, console)
        assert secret != created.json()["secret"]
