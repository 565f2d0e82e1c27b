"""Email notifications end to end: events → pending digests → Celery flush → Django's SMTP backend → a
real SMTP server (aiosmtpd) in this process. Recipients, threading headers, one-click unsubscribe,
digests, retries, preferences, and no internal note in a customer's mailbox, ever."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.parties import SYSTEM
from notifications import tasks
from notifications.models import EmailPreference, PendingEmail
from notifications.services import email as email_services
from notifications.services import emails_flush_due
from providers.models import CustomerIdentity
from providers.selectors import party_for_address
from providers.services import customer_identity_link
from tests import factories
from tests.notifications.receivers import SmtpServer
from tickets import services
from tickets.services import recording

pytestmark = pytest.mark.django_db

ALICE = "alice@example.test"
MEMBER_A = "pa-member@example.test"
MEMBER_B = "pb-member@example.test"
AGENT = "agent@support.example.test"


def flush(after_seconds: float = 121) -> None:
    """What the flush task does once the digest window (120 s by default) has closed."""
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=after_seconds))


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def everything_in(message) -> str:
    return text_of(message) + html_of(message) + str(message["Subject"])


@pytest.fixture
def agent_email(world) -> None:
    get_user_model().objects.filter(pk=world.agent.user_id).update(email=AGENT)


def test_nothing_is_sent_inside_the_request_or_before_the_window_closes(world, smtp) -> None:
    world.open_ticket()
    assert PendingEmail.objects.filter(state="pending").count() == 1  # the provider member's digest
    assert tasks.email_flush_task() == 0  # the window is still open
    assert smtp.messages == []
    flush()
    assert [rcpts for rcpts, _ in smtp.messages] == [[MEMBER_A]]


def test_who_is_told_what(world, smtp, agent_email) -> None:
    ticket = world.open_ticket(subject="Pod crash-looping")
    flush()
    (new_ticket,) = smtp.to(MEMBER_A)
    assert "New high-priority technical ticket opened by alice" in text_of(new_ticket)
    assert smtp.to(ALICE) == []
    assert smtp.to(AGENT) == []
    assert smtp.to(MEMBER_B) == []

    smtp.messages.clear()
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="Raise the memory limit.")
    flush()
    assert [rcpts for rcpts, _ in smtp.messages] == [[ALICE]]  # not the member who wrote it
    (reply,) = smtp.to(ALICE)
    assert "Raise the memory limit." in text_of(reply)
    assert f"https://support.example.test/tickets/{ticket.display_number}/" in text_of(reply)
    assert f'href="https://support.example.test/tickets/{ticket.display_number}/"' in html_of(reply)

    smtp.messages.clear()
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="Still crashing.")
    flush()
    assert [rcpts for rcpts, _ in smtp.messages] == [[MEMBER_A]]

    smtp.messages.clear()
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason="No fix after two days")
    flush()
    assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == sorted([MEMBER_A, AGENT])
    assert "Escalated to VirtEngine support" in text_of(smtp.to(AGENT)[0])
    assert "/admin/tickets/ticket/" in text_of(smtp.to(AGENT)[0])  # support works in the console

    smtp.messages.clear()
    services.ticket_transition(actor=world.agent, ticket_id=ticket.pk, status="resolved")
    flush()
    assert [rcpts for rcpts, _ in smtp.messages] == [[ALICE]]
    assert "Resolved by agent" in text_of(smtp.to(ALICE)[0])


def test_sla_breach_tells_support(world, smtp, agent_email) -> None:
    ticket = world.open_ticket()
    flush()
    smtp.messages.clear()
    # The SLA sweep records a breach through the one function every event goes through.
    with transaction.atomic():
        locked = recording.lock_ticket(SYSTEM, ticket.pk)
        recording.record_event(
            locked,
            kind="sla_breached",
            actor=SYSTEM,
            data={"target": "first_response", "due_at": "2026-12-02T05:00:00Z"},
        )
        recording.save_ticket(locked, at=timezone.now())
    flush()
    assert [rcpts for rcpts, _ in smtp.messages] == [[AGENT]]
    assert "SLA breached: the first response was due 2 Dec 2026, 05:00 UTC" in text_of(smtp.messages[0][1])


def test_the_sweep_s_breaches_and_escalations_reach_support_in_one_digest(world, smtp, agent_email) -> None:
    """The SLA sweep writes its events in batches across tickets; each still reaches the people it concerns,
    and the breach and the escalation it causes come to support as one email per ticket."""
    tickets = [world.open_ticket(priority="critical") for _ in range(3)]
    flush()
    smtp.messages.clear()
    later = timezone.now() + datetime.timedelta(days=3)
    result = services.sla_sweep(now=later)
    assert result.breaches >= len(tickets)
    assert result.escalations == len(tickets)
    emails_flush_due(now=later + datetime.timedelta(seconds=121))
    to_support = smtp.to(AGENT)
    assert len(to_support) == len(tickets)
    for message in to_support:
        assert "SLA breached: the first response was due" in text_of(message)
        assert "Escalated to VirtEngine support" in text_of(message)
    assert len(smtp.to(MEMBER_A)) == len(tickets)  # the provider hears of the escalation of its tickets
    assert smtp.to(ALICE) == []  # nothing here is for the customer


def test_no_internal_note_ever_reaches_a_customer(world, smtp) -> None:
    ticket = world.open_ticket()
    flush()
    services.comment_add(
        actor=world.provider_a_member,
        ticket_id=ticket.pk,
        body="INTERNAL: customer is on a free tier",
        is_internal=True,
    )
    flush()
    # An internal note alone tells the customer nothing at all.
    assert smtp.to(ALICE) == []
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.pk, body="INTERNAL: second thought", is_internal=True
    )
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="Public: try a restart")
    services.comment_add(
        actor=world.agent, ticket_id=ticket.pk, body="INTERNAL: support aside", is_internal=True
    )
    flush()
    (mail_to_alice,) = smtp.to(ALICE)
    content = everything_in(mail_to_alice) + mail_to_alice.as_string()
    assert "Public: try a restart" in content
    assert "INTERNAL" not in content  # neither in the digest nor in the thread excerpt
    for rcpts, message in smtp.messages:
        if ALICE in rcpts:
            assert "INTERNAL" not in message.as_string()


def test_digest_and_threading_headers(world, smtp) -> None:
    ticket = world.open_ticket()
    for n in range(3):
        services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"update number {n}")
    other = world.open_ticket(subject="Another one")
    flush()
    to_member = smtp.to(MEMBER_A)
    assert len(to_member) == 2  # four events on the first ticket became one email; one for the other
    first, other_mail = sorted(to_member, key=lambda m: "Another one" in str(m["Subject"]))
    body = text_of(first)
    assert body.count("New reply from alice") == 3
    assert "New high-priority technical ticket" in body
    assert all(f"update number {n}" in body for n in range(3))
    root = f"<ticket.{ticket.pk}@support.example.test>"
    assert first["Message-ID"] == root
    assert first["In-Reply-To"] is None
    assert other_mail["Message-ID"] == f"<ticket.{other.pk}@support.example.test>"
    assert str(first["Subject"]) == f"[{ticket.display_number}] Pod crash-looping"

    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="later")
    flush()
    later = [m for m in smtp.to(MEMBER_A) if m not in to_member]
    (follow_up,) = later
    assert follow_up["Message-ID"] != root
    # (Folded header lines come back with their leading space.)
    assert follow_up["In-Reply-To"].strip() == root
    assert follow_up["References"].strip() == root
    assert str(follow_up["Subject"]) == f"Re: [{ticket.display_number}] Pod crash-looping"


def test_one_click_unsubscribe_turns_email_off(world, smtp, apis) -> None:
    ticket = world.open_ticket()
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="first answer")
    flush()
    (message,) = smtp.to(ALICE)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("https://support.example.test/api/v1/notifications/unsubscribe/")
    assert url in text_of(message)
    assert url in html_of(message)
    path = url.removeprefix("https://support.example.test")

    page = apis.anonymous.client.get(path)  # following the link shows a confirmation, changes nothing
    assert page.status_code == 200
    assert b"<form" in page.content
    assert b"style=" not in page.content  # the pages' CSP allows no inline style
    assert "Content-Security-Policy" in page.headers
    assert not EmailPreference.objects.filter(email_enabled=False).exists()
    clicked = apis.anonymous.client.post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert clicked.status_code == 200
    identity = CustomerIdentity.objects.get(address=world.alice.address)
    assert EmailPreference.objects.get(customer=identity).email_enabled is False
    assert apis.alice.get("/api/v1/notifications/preferences").json()["email_enabled"] is False

    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="second answer")
    flush()
    assert len(smtp.to(ALICE)) == 1  # nothing more
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert apis.anonymous.client.post(tampered).status_code == 404
    assert apis.anonymous.client.get("/api/v1/notifications/unsubscribe/nonsense").status_code == 404


def test_preferences_api_switches_topics(world, smtp, apis) -> None:
    assert apis.provider_a_member.get("/api/v1/notifications/preferences").json() == {
        "email_enabled": True,
        "replies": True,
        "status_changes": True,
        "new_tickets": True,
        "escalations": True,
        "sla_breaches": True,
    }
    response = apis.provider_a_member.patch("/api/v1/notifications/preferences", {"new_tickets": False})
    assert response.status_code == 200
    assert response.json()["new_tickets"] is False
    ticket = world.open_ticket()
    flush()
    assert smtp.to(MEMBER_A) == []
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="a reply still counts")
    flush()
    assert len(smtp.to(MEMBER_A)) == 1
    for body, field in (({"replies": "no"}, "replies"), ({"digest": True}, "digest")):
        bad = apis.provider_a_member.patch("/api/v1/notifications/preferences", body)
        assert bad.status_code == 400
        assert field in bad.json()["fields"]
    assert apis.provider_a.get("/api/v1/notifications/preferences").status_code == 403  # a machine


def test_a_wallet_only_customer_is_told_at_the_identitys_address(world, smtp) -> None:
    _key, address = factories.make_wallet()
    customer_identity_link(address=address, email="wallet@example.test")
    deployment = factories.DeploymentFactory(owner_address=address, provider=world.provider_a)
    wallet_customer = party_for_address(address)
    ticket = services.ticket_create(
        actor=wallet_customer,
        deployment_id=deployment.lease_id,
        subject="Wallet only",
        description="No portal user.",
    )
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="We are on it")
    flush()
    (message,) = smtp.to("wallet@example.test")
    assert "We are on it" in text_of(message)


def test_a_failed_send_is_retried(world, settings) -> None:
    down = SmtpServer()  # not started: nothing listens on its port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = down.port
    settings.EMAIL_TIMEOUT = 2
    world.open_ticket()
    flush()
    row = PendingEmail.objects.get()
    assert row.state == "retrying"
    assert row.attempts == 1
    assert row.last_error
    down.start()
    try:
        flush(after_seconds=121 + 3600)
        row.refresh_from_db()
        assert row.state == "sent"
        assert row.attempts == 2
        assert [rcpts for rcpts, _ in down.messages] == [[MEMBER_A]]
    finally:
        down.stop()


def test_a_worker_whose_lease_ran_out_does_not_send_what_another_took(world, smtp, monkeypatch) -> None:
    """Worker A claims both digests and is slow on the first; the second's lease runs out, worker B claims
    and sends it. When A reaches it, it is no longer A's: nobody gets the same email twice."""
    world.open_ticket(subject="First")
    world.open_ticket(subject="Second")
    assert PendingEmail.objects.filter(state="pending").count() == 2
    real_compose = email_services.compose
    taken_over = []

    def slow_compose(row):
        if not taken_over:
            taken_over.append(row.pk)
            # A is still on its first row: the other's lease runs out and B sends it.
            PendingEmail.objects.exclude(pk=row.pk).update(next_attempt_at=timezone.now())
            assert emails_flush_due().sent == 1
        return real_compose(row)

    monkeypatch.setattr(email_services, "compose", slow_compose)
    result = emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    assert result.sent == 1  # A sent only the row it still held
    subjects = sorted(str(message["Subject"]) for _, message in smtp.messages)
    assert len(subjects) == 2, subjects
    assert any("First" in s for s in subjects)
    assert any("Second" in s for s in subjects)
    assert set(PendingEmail.objects.values_list("state", flat=True)) == {"sent"}
