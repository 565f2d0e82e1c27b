"""Reply by email against real processes: the LMTP server (`manage.py inbound_lmtp`) with the standard
library's `smtplib.LMTP` as the MTA, a Celery worker that processes what it stored, and an SMTP server that
catches the bounces. One server and one worker for the whole module.

Real replies from Gmail, Outlook, Apple Mail and Thunderbird (and an HTML-only one), attachments, the same
Message-ID delivered twice, a spoofed From, DKIM pass, fail and absent (signed with dkimpy and a test key
whose record the worker reads from VE_INBOUND_DKIM_KEYS_FILE), an auto-reply loop, an expired token and a
person who lost access to the ticket.
"""

from __future__ import annotations

import datetime
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from notifications.models import InboundMessage
from providers.models import ProviderMembership
from tests.notifications.inbound_mail import (
    CLIENT_REPLIES,
    DkimKey,
    client_reply,
    customer_key,
    new_message_id,
    plain_reply,
    reply_to,
)
from tests.notifications.receivers import SmtpServer
from tests.system.processes import ROOT, celery_worker_command, free_port, stop_process, wait_for_port
from tickets.models import Attachment, Comment, format_ticket_number

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

ALICE = "alice@example.test"
MEMBER_A = "pa-member@example.test"


class Inbound:
    def __init__(self, lmtp_port: int, smtp: SmtpServer, dkim_key: DkimKey) -> None:
        self.port = lmtp_port
        self.smtp = smtp
        self.dkim_key = dkim_key

    def send(self, raw: bytes, to: str, mail_from: str = ALICE) -> InboundMessage:
        """Deliver as an MTA does; the message must be stored by the time the server has said 250."""
        with smtplib.LMTP("127.0.0.1", self.port) as client:
            refused = client.sendmail(mail_from, [to], raw)
        assert refused == {}
        stored = InboundMessage.objects.filter(recipient=to).order_by("-id").first()
        assert stored is not None, "250 before the message was stored"
        return stored

    def processed(self, row: InboundMessage, timeout: float = 30) -> InboundMessage:
        deadline = time.monotonic() + timeout
        while True:
            row.refresh_from_db()
            if row.state != "received":
                return row
            assert time.monotonic() < deadline, f"message {row.pk} not processed"
            time.sleep(0.05)

    def deliver(self, raw: bytes, to: str, mail_from: str = ALICE) -> InboundMessage:
        return self.processed(self.send(raw, to, mail_from))

    def bounces_to(self, address: str) -> list:
        return self.smtp.to(address)


@pytest.fixture(scope="module")
def inbound(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Inbound]:
    workdir: Path = tmp_path_factory.mktemp("inbound")
    dkim_key = DkimKey.generate()
    smtp = SmtpServer()
    smtp.start()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no tasks left over from other modules
    with django_db_blocker.unblock():
        database = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": database,  # the test database, where the tests commit
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "VE_INBOUND_DKIM_KEYS_FILE": str(dkim_key.write_keys_file(workdir / "dkim-keys.txt")),
        "VE_INBOUND_SWEEP_SECONDS": "1",
    }
    port = free_port()
    lmtp_log = (workdir / "lmtp.log").open("wb")
    worker_log = (workdir / "worker.log").open("wb")
    lmtp = subprocess.Popen(
        [sys.executable, "manage.py", "inbound_lmtp", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=lmtp_log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        celery_worker_command("--pool=solo"), cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process=lmtp)
        yield Inbound(port, smtp, dkim_key)
    finally:
        stop_process(lmtp)
        stop_process(worker)
        lmtp_log.close()
        worker_log.close()
        smtp.stop()


def test_replies_from_gmail_outlook_apple_mail_thunderbird_and_html_only_become_the_customers_comments(
    inbound, world
) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    rows = [
        inbound.send(client_reply(name, ticket=ticket, to=address, from_address=ALICE), address)
        for name in CLIENT_REPLIES
    ]
    rows = [inbound.processed(row) for row in rows]
    assert [(row.state, row.dkim) for row in rows] == [("posted", "absent")] * len(CLIENT_REPLIES)
    comments = {c.pk: c for c in Comment.objects.filter(ticket=ticket)}
    assert [comments[row.comment_id].body for row in rows] == list(CLIENT_REPLIES.values())
    assert {(c.author_kind, c.author_address, c.is_internal) for c in comments.values()} == {
        ("customer", world.alice.address, False)
    }


def test_attachments_go_through_the_portals_upload_checks(inbound, world) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    row = inbound.deliver(
        client_reply("gmail_attachments.eml", ticket=ticket, to=address, from_address=ALICE), address
    )
    assert row.state == "posted", row.detail
    comment = Comment.objects.get(pk=row.comment_id)
    assert comment.body == "Screenshot and report attached."
    attached = Attachment.objects.filter(comment=comment).order_by("filename")
    assert [(a.filename, a.content_type) for a in attached] == [
        ("report.pdf", "application/pdf"),
        ("screenshot.png", "image/png"),
    ]
    assert "page.html" in row.detail  # refused (markup), and support can read why


def test_the_same_message_id_delivered_twice_makes_one_comment(inbound, world) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    raw = client_reply(
        "outlook.eml", ticket=ticket, to=address, from_address=ALICE, message_id=new_message_id()
    )
    first = inbound.send(raw, address)
    second = inbound.send(raw, address)  # the MTA retries: it never saw the first 250
    assert first.pk == second.pk
    inbound.processed(first)
    assert InboundMessage.objects.filter(recipient=address).count() == 1
    assert Comment.objects.filter(ticket=ticket).count() == 1


def test_a_spoofed_from_is_refused_and_its_sender_gets_one_bounce(inbound, world) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    mallory = "mallory@evil.test"
    rows = [
        inbound.deliver(
            plain_reply(f"Close it, attempt {n}", to=address, from_address=mallory), address, mallory
        )
        for n in range(2)
    ]
    assert [(r.state, r.reason) for r in rows] == [("rejected", "spoofed_from")] * 2
    assert not Comment.objects.filter(ticket=ticket).exists()
    inbound.smtp.wait_for(1)
    [bounce] = inbound.bounces_to(mallory)  # one, not one per message
    assert "not sent from the address the notification went to" in bounce.get_content()
    assert bounce["Auto-Submitted"] == "auto-replied"


def test_dkim_pass_fail_and_absent(inbound, world) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    signed = inbound.dkim_key.sign(plain_reply("signed and intact", to=address, from_address=ALICE))
    tampered = inbound.dkim_key.sign(plain_reply("signed", to=address, from_address=ALICE)).replace(
        b"signed", b"altered"
    )
    unsigned = plain_reply("not signed", to=address, from_address=ALICE)
    rows = [inbound.deliver(raw, address) for raw in (signed, tampered, unsigned)]
    assert [(r.dkim, r.state, r.reason) for r in rows] == [
        ("pass", "posted", ""),
        ("fail", "rejected", "dkim_fail"),
        ("absent", "posted", ""),
    ]
    assert sorted(Comment.objects.filter(ticket=ticket).values_list("body", flat=True)) == [
        "not signed",
        "signed and intact",
    ]


def test_an_auto_reply_loop_is_broken(inbound, world) -> None:
    """An out-of-office answer, our own notification coming back, and a delivery report: none is posted,
    none is answered."""
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    out_of_office = client_reply("out_of_office.eml", ticket=ticket, to=address, from_address=ALICE)
    our_own = plain_reply(
        "New reply from Provider A",
        to=address,
        from_address=ALICE,
        headers={"X-VE-Ticket": "SUP-000001", "Auto-Submitted": "auto-generated"},
    )
    report = plain_reply("Delivery failed", to=address, from_address="mailer-daemon@mx.example.test")
    bounces_before = len(inbound.smtp.messages)
    rows = [
        inbound.deliver(out_of_office, address),
        inbound.deliver(our_own, address),
        inbound.deliver(report, address, mail_from=""),  # the null sender
    ]
    assert [(r.state, r.reason) for r in rows] == [
        ("dropped", "auto_reply"),
        ("dropped", "own_mail"),
        ("dropped", "bounce"),
    ]
    assert not Comment.objects.filter(ticket=ticket).exists()
    assert all(r.bounced_at is None for r in rows)
    assert len(inbound.smtp.messages) == bounces_before  # nothing answered


def test_an_expired_token_and_a_person_who_lost_access_are_refused(inbound, world) -> None:
    ticket = world.open_ticket()
    expired = reply_to(
        ticket,
        customer_key(world.alice.address),
        issued_at=timezone.now() - datetime.timedelta(days=settings.VE_INBOUND_REPLY_TOKEN_DAYS + 1),
    )
    member = reply_to(ticket, f"user:{world.provider_a_member.user_id}")
    ProviderMembership.objects.filter(user_id=world.provider_a_member.user_id).delete()  # left the provider
    rows = [
        inbound.deliver(plain_reply("late", to=expired, from_address=ALICE), expired),
        inbound.deliver(plain_reply("still here?", to=member, from_address=MEMBER_A), member, MEMBER_A),
    ]
    assert [(r.state, r.reason) for r in rows] == [("rejected", "token_expired"), ("rejected", "no_access")]
    assert not Comment.objects.filter(ticket=ticket).exists()


def test_the_server_takes_reply_addresses_only(inbound) -> None:
    with smtplib.LMTP("127.0.0.1", inbound.port) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail(ALICE, ["postmaster@support.example.test"], b"Subject: hi\r\n\r\nhi\r\n")


def test_the_test_reply_command_of_make_run_posts_a_reply(inbound, world) -> None:
    ticket = world.open_ticket()
    call_command(
        "inbound_test_reply", format_ticket_number(ticket.number), "alice", "--port", str(inbound.port)
    )
    row = inbound.processed(InboundMessage.objects.order_by("-id").first())
    assert (row.state, row.from_address) == ("posted", ALICE), row.detail
    assert Comment.objects.get(ticket=ticket).body == "A test reply by email."
