"""Reply by email, in this process: the Reply-To of notifications, tokens, what is read from real clients'
replies, what is dropped as automatic mail, internal notes, rate limits, DKIM policy, hostile MIME, and the
console's record. The real LMTP server and worker processes are tests/system/test_inbound_lmtp.py."""

from __future__ import annotations

import datetime
import threading
import time

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis import exceptions as redis_exceptions

from core import tasks as core_tasks
from notifications.inbound import processing, tokens
from notifications.inbound.parsing import parse_reply
from notifications.inbound.processing import MAX_ATTEMPTS, inbound_process
from notifications.inbound.screening import automatic_reason
from notifications.inbound.store import DRAIN_REQUESTED_KEY, INBOUND_DRAIN_TASK, Stored, inbound_store
from notifications.models import InboundMessage
from notifications.services import emails_flush_due
from notifications.tasks import inbound_drain_task, inbound_sweep_task
from tests.notifications.inbound_mail import (
    CLIENT_REPLIES,
    client_reply,
    customer_key,
    plain_reply,
    reply_to,
)
from tests.system.processes import free_port
from tickets import services
from tickets.models import Comment, Ticket

ALICE = "alice@example.test"
MEMBER_A = "pa-member@example.test"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """The worker's task is not queued here: each test processes what it stored itself."""
    monkeypatch.setattr("notifications.inbound.store.task_send_debounced", lambda *args, **kwargs: False)


def deliver(raw: bytes, to: str, envelope_from: str = ALICE) -> InboundMessage:
    """What the LMTP server and then the worker do with one message."""
    stored = inbound_store(raw=raw, recipient=to, envelope_from=envelope_from)
    if stored.pk is not None:
        inbound_process(stored.pk)
    return InboundMessage.objects.order_by("-id").first()


def stored_reply(world, body: str) -> tuple[Ticket, Stored]:
    """A ticket of Alice's, and her reply to it as the LMTP server stored it (not processed yet)."""
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    raw = plain_reply(body, to=address, from_address=ALICE)
    return ticket, inbound_store(raw=raw, recipient=address, envelope_from=ALICE)


# -- the reply address ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_notification_carries_its_recipients_reply_address_and_a_reply_to_it_is_their_comment(
    world, smtp
) -> None:
    ticket = world.open_ticket()
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body="Please restart it.")
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    [email] = smtp.to(ALICE)
    address = str(email["Reply-To"])
    assert address.startswith("reply+")
    assert address.endswith("@support.example.test")  # the domain of DEFAULT_FROM_EMAIL
    token = tokens.reply_token_read(tokens.token_of_address(address))
    assert (token.ticket_number, token.recipient_key, token.internal) == (
        ticket.number,
        customer_key(world.alice.address),
        False,
    )

    row = deliver(client_reply("gmail.eml", ticket=ticket, to=address, from_address=ALICE), address)

    assert (row.state, row.reason, row.dkim) == ("posted", "", "absent")
    comment = Comment.objects.get(pk=row.comment_id)
    assert (comment.author_kind, comment.author_address, comment.is_internal) == (
        "customer",
        world.alice.address,
        False,
    )
    assert comment.body == CLIENT_REPLIES["gmail.eml"]


@pytest.mark.django_db
def test_an_email_about_a_closed_ticket_has_no_reply_address(world, smtp) -> None:
    ticket = world.open_ticket()
    services.ticket_transition(actor=world.agent, ticket_id=ticket.pk, status="closed")
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    [email] = smtp.to(ALICE)
    assert email["Reply-To"] is None


def test_tokens_are_refused_when_altered_forged_or_expired(settings) -> None:
    settings.VE_INBOUND_REPLY_TOKEN_DAYS = 30
    token = tokens.reply_token(ticket_number=42, recipient_key="user:7", internal=True)
    read = tokens.reply_token_read(token.upper())  # an MTA that folds the case keeps it valid
    assert (read.ticket_number, read.recipient_key, read.internal) == (42, "user:7", True)
    number, rest = token.split("-", 1)
    for forged in (
        f"{int(number, 36) + 1:x}-{rest}",
        token[:-1] + ("a" if token[-1] != "a" else "b"),
        "x",
        "",
    ):
        with pytest.raises(tokens.TokenInvalid):
            tokens.reply_token_read(forged)
    old = tokens.reply_token(
        ticket_number=42,
        recipient_key="user:7",
        internal=False,
        issued_at=timezone.now() - datetime.timedelta(days=31),
    )
    with pytest.raises(tokens.TokenExpired):
        tokens.reply_token_read(old)
    with pytest.raises(ValueError, match="internal"):
        tokens.reply_token(ticket_number=42, recipient_key="customer:3", internal=True)
    assert len(f"reply+{token}") <= 64  # RFC 5321's limit on a local part


# -- reading replies --------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(CLIENT_REPLIES))
def test_the_new_text_of_each_clients_reply_is_kept_and_its_quote_and_signature_cut(fixture) -> None:
    unsaved = Ticket(number=7)  # what fills the template: no database here
    raw = client_reply(fixture, ticket=unsaved, to="reply+x@support.example.test", from_address=ALICE)
    parsed = parse_reply(raw)
    assert parsed.text == CLIENT_REPLIES[fixture]
    assert parsed.from_address == ALICE


@pytest.mark.parametrize(
    ("headers", "envelope_from", "reason"),
    [
        ({}, "", "bounce"),
        ({}, "MAILER-DAEMON@mx.example.test", "bounce"),
        ({"Content-Type": "multipart/report; report-type=delivery-status; boundary=x"}, ALICE, "bounce"),
        ({"Auto-Submitted": "auto-replied"}, ALICE, "auto_reply"),
        ({"Auto-Submitted": "no"}, ALICE, None),
        ({"X-Autoreply": "yes"}, ALICE, "auto_reply"),
        ({"Subject": "Out of Office: back on Monday"}, ALICE, "auto_reply"),
        ({"Subject": "Automatic reply: [SUP-000001]"}, ALICE, "auto_reply"),
        ({"Precedence": "bulk"}, ALICE, "bulk"),
        ({"Precedence": "junk"}, ALICE, "bulk"),
        ({"List-Id": "<ops.lists.example.test>"}, ALICE, "bulk"),
        ({"X-VE-Ticket": "SUP-000001"}, ALICE, "own_mail"),
        ({"Subject": "Re: [SUP-000001] Pod crash-looping"}, ALICE, None),
    ],
)
def test_automatic_mail_is_recognised(headers, envelope_from, reason) -> None:
    values = {"Subject": "Re: hello", **headers}
    raw = "\r\n".join([f"{k}: {v}" for k, v in values.items()] + ["From: a@example.test", "", "text"])
    message = parse_reply(raw.encode()).message
    assert automatic_reason(message, envelope_from=envelope_from) == reason


# -- who may reply, and as what ------------------------------------------------------------------------


@pytest.mark.django_db
def test_supports_internal_note_is_emailed_to_the_provider_whose_reply_by_email_stays_internal(
    world, smtp
) -> None:
    ticket = world.open_ticket()
    services.comment_add(
        actor=world.agent, ticket_id=ticket.pk, body="Node 7 is being drained.", is_internal=True
    )
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    assert smtp.to(ALICE) == []  # the customer is never told of an internal note
    [email] = smtp.to(MEMBER_A)
    assert "Node 7 is being drained." in email.get_body(("plain",)).get_content()
    address = str(email["Reply-To"])
    token = tokens.reply_token_read(tokens.token_of_address(address))
    assert (token.recipient_key, token.internal) == (f"user:{world.provider_a_member.user_id}", True)

    row = deliver(
        plain_reply("Thanks, moving the lease.", to=address, from_address=MEMBER_A), address, MEMBER_A
    )

    assert row.state == "posted", row.detail
    comment = Comment.objects.get(pk=row.comment_id)
    assert (comment.author_kind, comment.is_internal, comment.body) == (
        "provider",
        True,
        "Thanks, moving the lease.",
    )


@pytest.mark.django_db
def test_a_providers_token_from_an_internal_note_email_makes_an_internal_note(world) -> None:
    ticket = world.open_ticket()
    member_key = f"user:{world.provider_a_member.user_id}"
    address = reply_to(ticket, member_key, internal=True)
    row = deliver(
        plain_reply("Checked the node: disk full.", to=address, from_address=MEMBER_A), address, MEMBER_A
    )
    assert row.state == "posted", row.detail
    comment = Comment.objects.get(pk=row.comment_id)
    assert (comment.author_kind, comment.is_internal) == ("provider", True)
    # The customer's own reply address is never internal, whatever the email was about.
    public = deliver(
        plain_reply("Thanks!", to=reply_to(ticket, customer_key(world.alice.address)), from_address=ALICE),
        reply_to(ticket, customer_key(world.alice.address)),
    )
    assert Comment.objects.get(pk=public.comment_id).is_internal is False


@pytest.mark.django_db
def test_a_sender_past_the_hourly_limit_is_refused(world, settings) -> None:
    settings.VE_INBOUND_RATE_PER_HOUR = 2
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    states = [
        deliver(plain_reply(f"reply {n}", to=address, from_address=ALICE), address).reason for n in range(3)
    ]
    assert states == ["", "", "rate_limited"]
    assert Comment.objects.filter(ticket=ticket).count() == 2


@pytest.mark.django_db
def test_an_installation_requiring_dkim_refuses_unsigned_mail(world, settings) -> None:
    settings.VE_INBOUND_REQUIRE_DKIM = True
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    row = deliver(plain_reply("unsigned", to=address, from_address=ALICE), address)
    assert (row.state, row.reason, row.dkim) == ("rejected", "dkim_required", "absent")
    assert not Comment.objects.filter(ticket=ticket).exists()


# -- hostile input: never a crash, never a lost message, always a record ----------------------------------


def _nested(depth: int) -> bytes:
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(depth))
    return (
        f"From: {ALICE}\r\nMIME-Version: 1.0\r\n" + head + "Content-Type: text/plain\r\n\r\nhi\r\n"
    ).encode()


HOSTILE = {
    "garbage": b"\x00\xff\xfe not an email at all \x00",
    "no_headers": b"\r\n\r\n",
    "huge_header": b"From: " + ALICE.encode() + b"\r\nX-Big: " + b"a" * 2_000_000 + b"\r\n\r\nbody",
    "many_headers": b"".join(b"X-H%d: v\r\n" % n for n in range(20_000))
    + b"From: "
    + ALICE.encode()
    + b"\r\n\r\nb",
    "wrong_charset": (
        f"From: {ALICE}\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n".encode()
        + b"caf\xe9 \xff\r\n"
    ),
    "lying_charset": f"From: {ALICE}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode()
    + b"\xc3\x28 \xa0\xa1",
    "nested": _nested(500),
    "broken_base64": (
        f"From: {ALICE}\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--x--\r\n"
    ).encode(),
    "nul_in_text": f"From: {ALICE}\r\nSubject: a\x00b\r\n\r\nhello\x00world\r\n".encode(),
    "encoded_word_garbage": f"From: =?utf-8?b?////?= <{ALICE}>\r\nSubject: =?x-bad?q?=FF?=\r\n\r\nhi".encode(),
    "zip_bomb_sized_part": (
        f"From: {ALICE}\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
        "see file\r\n--x\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=b.zip\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    + b"A" * 8_000_000
    + b"\r\n--x--\r\n",
}


@pytest.mark.django_db
def test_hostile_messages_never_crash_and_always_leave_a_record(world) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    for name, raw in HOSTILE.items():
        row = deliver(raw, address)
        assert row is not None, name
        assert row.state in ("posted", "rejected", "dropped", "failed"), (name, row.state)
        assert row.processed_at is not None, name
        assert row.size == len(raw)
    assert InboundMessage.objects.count() == len(HOSTILE)
    outcomes = dict(InboundMessage.objects.values_list("size", "reason"))
    assert outcomes[len(HOSTILE["garbage"])] == "spoofed_from"  # no From: nobody's reply
    assert (
        outcomes[len(HOSTILE["zip_bomb_sized_part"])] == ""
    )  # posted; the part refused by the upload checks
    print({name: outcomes[len(raw)] for name, raw in HOSTILE.items()})


@pytest.mark.django_db
def test_a_message_whose_processing_keeps_dying_is_given_up_and_shown(world) -> None:
    ticket, stored = stored_reply(world, "hello")
    # Five workers took it and died (kill -9, out of memory) before they could record anything.
    InboundMessage.objects.filter(pk=stored.pk).update(attempts=MAX_ATTEMPTS)
    assert inbound_process(stored.pk) == "failed"
    row = InboundMessage.objects.get(pk=stored.pk)
    assert (row.reason, row.attempts) == ("error", MAX_ATTEMPTS + 1)
    assert "Given up" in row.detail
    assert not Comment.objects.filter(ticket=ticket).exists()


@pytest.mark.django_db
def test_a_reply_processed_while_redis_is_down_waits_for_it_and_is_posted_once(world, settings) -> None:
    ticket, stored = stored_reply(world, "Sent while Redis restarts.")
    working = settings.CACHES
    # Nothing listens there: the rate limit's counter cannot be reached, as during a Redis restart.
    settings.CACHES = {"default": {**working["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    for _ in range(MAX_ATTEMPTS + 2):  # the task, then the sweep again and again while the outage lasts
        with pytest.raises(redis_exceptions.ConnectionError):
            inbound_process(stored.pk)
    row = InboundMessage.objects.get(pk=stored.pk)
    assert (row.state, row.attempts) == ("received", 0)
    assert not Comment.objects.filter(ticket=ticket).exists()

    settings.CACHES = working
    assert inbound_process(stored.pk) == "posted"
    assert [c.body for c in Comment.objects.filter(ticket=ticket)] == ["Sent while Redis restarts."]


@pytest.mark.django_db
def test_a_burst_of_replies_queues_one_drain_that_posts_them_all_and_a_later_reply_the_next(
    world, monkeypatch
) -> None:
    queued: list[str] = []
    monkeypatch.setattr("notifications.inbound.store.task_send_debounced", core_tasks.task_send_debounced)
    sending = core_tasks.task_send
    # The drains' tasks are counted here (run by hand below); others (the chain's, the webhooks') go out.
    monkeypatch.setattr(
        core_tasks,
        "task_send",
        lambda name, **kwargs: queued.append(name) if name == INBOUND_DRAIN_TASK else sending(name, **kwargs),
    )
    cache.delete(DRAIN_REQUESTED_KEY)
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))

    def store(body: str) -> None:
        raw = plain_reply(body, to=address, from_address=ALICE)
        inbound_store(raw=raw, recipient=address, envelope_from=ALICE)

    for n in range(3):
        store(f"Reply {n}.")
    assert queued == [INBOUND_DRAIN_TASK]
    assert inbound_drain_task() == 3
    store("Reply 3.")  # stored once that drain had started: the next drain is queued
    assert queued == [INBOUND_DRAIN_TASK, INBOUND_DRAIN_TASK]
    assert inbound_drain_task() == 1
    assert inbound_drain_task() == 0
    bodies = [c.body for c in Comment.objects.filter(ticket=ticket).order_by("created_at")]
    assert bodies == ["Reply 0.", "Reply 1.", "Reply 2.", "Reply 3."]
    assert list(InboundMessage.objects.order_by().values_list("state", "attempts").distinct()) == [
        ("posted", 1)
    ]


@pytest.mark.django_db(transaction=True)
def test_a_drain_waits_out_another_drains_instant_lock_on_the_reply_it_claimed(world, monkeypatch) -> None:
    """Another drain's claim statement may lock a just-claimed row for an instant (its snapshot still saw the
    row unclaimed); the drain that holds the claim must wait for it, not skip its own reply."""
    ticket, stored = stored_reply(world, "Claimed, then locked for an instant.")
    claim = processing._claim_next
    holding = threading.Event()
    other_drain: list[threading.Thread] = []

    def claim_while_another_drain_looks(older_than_seconds: float) -> int | None:
        pk = claim(older_than_seconds)
        if pk is not None and not other_drain:

            def lock_for_an_instant() -> None:
                with psycopg.connect(**connection.get_connection_params()) as other, other.transaction():
                    other.execute("SELECT 1 FROM notifications_inboundmessage WHERE id = %s FOR UPDATE", [pk])
                    holding.set()
                    time.sleep(0.5)

            other_drain.append(threading.Thread(target=lock_for_an_instant))
            other_drain[0].start()
            assert holding.wait(10)
        return pk

    monkeypatch.setattr(processing, "_claim_next", claim_while_another_drain_looks)
    assert processing.inbound_drain() == (1, False)
    other_drain[0].join()
    row = InboundMessage.objects.get(pk=stored.pk)
    assert (row.state, row.attempts) == ("posted", 1)
    assert [c.body for c in Comment.objects.filter(ticket=ticket)] == ["Claimed, then locked for an instant."]


@pytest.mark.django_db
def test_a_reply_claimed_by_a_worker_that_died_is_posted_once_its_claim_expires(world, settings) -> None:
    ticket, stored = stored_reply(world, "Claimed, then the worker was killed.")
    a_minute_ago = timezone.now() - datetime.timedelta(minutes=1)
    InboundMessage.objects.filter(pk=stored.pk).update(
        received_at=a_minute_ago, attempts=1, claimed_at=timezone.now()
    )
    # Another worker's drain, and beat's sweep, leave it to the worker that holds it.
    assert (inbound_drain_task(), inbound_sweep_task()) == (0, 0)
    assert InboundMessage.objects.get(pk=stored.pk).state == "received"
    expired = timezone.now() - datetime.timedelta(seconds=settings.VE_INBOUND_CLAIM_SECONDS + 1)
    InboundMessage.objects.filter(pk=stored.pk).update(claimed_at=expired)
    assert inbound_sweep_task() == 1
    row = InboundMessage.objects.get(pk=stored.pk)
    assert (row.state, row.attempts) == ("posted", 2)
    assert [c.body for c in Comment.objects.filter(ticket=ticket)] == ["Claimed, then the worker was killed."]
    assert inbound_sweep_task() == 0


@pytest.mark.django_db
def test_the_sweep_during_a_redis_outage_leaves_the_reply_waiting_unclaimed_and_uncounted(
    world, settings
) -> None:
    ticket, stored = stored_reply(world, "Swept while Redis restarts.")
    InboundMessage.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    working = settings.CACHES
    settings.CACHES = {"default": {**working["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    for _ in range(MAX_ATTEMPTS + 2):
        with pytest.raises(redis_exceptions.ConnectionError):
            inbound_sweep_task()
    row = InboundMessage.objects.get(pk=stored.pk)
    assert (row.state, row.attempts, row.claimed_at) == ("received", 0, None)
    settings.CACHES = working
    assert inbound_sweep_task() == 1
    assert [c.body for c in Comment.objects.filter(ticket=ticket)] == ["Swept while Redis restarts."]


@pytest.mark.django_db
def test_support_reads_inbound_messages_in_the_console(world, apis) -> None:
    ticket = world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    row = deliver(
        plain_reply("spoofed", to=address, from_address="mallory@evil.test"), address, "mallory@evil.test"
    )
    assert (row.state, row.reason) == ("rejected", "spoofed_from")
    listing = apis.agent.client.get("/admin/notifications/inboundmessage/")
    assert listing.status_code == 200
    assert b"mallory@evil.test" in listing.content
    page = apis.agent.client.get(f"/admin/notifications/inboundmessage/{row.pk}/change/")
    assert page.status_code == 200
    assert b"not sent from the address the notification went to" in page.content
    # A customer has no way in.
    customer = get_user_model().objects.get(pk=world.alice.user_id)
    client = Client()
    client.force_login(customer)
    assert client.get("/admin/notifications/inboundmessage/").status_code in (302, 403, 404)


# -- generated MIME ------------------------------------------------------------------------------------

_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Subject",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Message-ID",
        "Auto-Submitted",
        "Precedence",
        "DKIM-Signature",
        "X-Junk",
    ]
)
_header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "multipart/mixed; boundary=b",
            "multipart/alternative; boundary=b",
            "text/html; charset=x-bad",
            "text/plain; charset=utf-16",
            "base64",
            "quoted-printable",
            "attachment; filename=a.pdf",
            "=?utf-8?b?!!?=",
            "v=1; a=rsa-sha256; d=example.test; s=x; b=zz; bh=yy; h=from",
            ALICE,
        ]
    ),
)


@st.composite
def mime_messages(draw) -> bytes:
    headers = draw(st.lists(st.tuples(_header_names, _header_values), max_size=8))
    parts = draw(
        st.lists(
            st.tuples(
                st.lists(st.tuples(_header_names, _header_values), max_size=3), st.binary(max_size=200)
            ),
            max_size=4,
        )
    )
    # Half of them come from the token's person, so that they get past the sender check to the comment.
    sender = [f"From: Alice <{ALICE}>".encode()] if draw(st.booleans()) else []
    out = sender + [f"{name}: {value}".encode("utf-8", "surrogatepass") for name, value in headers]
    body = [
        b"--b\r\n"
        + b"\r\n".join(f"{n}: {v}".encode("utf-8", "surrogatepass") for n, v in h)
        + b"\r\n\r\n"
        + data
        for h, data in parts
    ]
    return (
        b"\r\n".join(out) + b"\r\n\r\n" + b"\r\n".join(body) + draw(st.sampled_from([b"", b"\r\n--b--\r\n"]))
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(raw=mime_messages())
def test_generated_mime_never_raises_out_of_the_parser(raw) -> None:
    parsed = parse_reply(raw)
    assert isinstance(parsed.text, str)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=mime_messages())
def test_generated_mime_never_raises_out_of_the_processor(world, raw) -> None:
    ticket = Ticket.objects.first() or world.open_ticket()
    address = reply_to(ticket, customer_key(world.alice.address))
    stored = inbound_store(raw=raw, recipient=address, envelope_from=ALICE)
    if stored.pk is not None:
        inbound_process(stored.pk)  # raises nothing
        assert InboundMessage.objects.get(pk=stored.pk).state != "received"


@pytest.mark.django_db
def test_generated_mime_reaches_the_comment(world) -> None:
    """The generator is not all noise: a plain message from the token's person is posted."""
    test_generated_mime_never_raises_out_of_the_processor.hypothesis.inner_test(
        world, f"From: {ALICE}\r\nContent-Type: text/plain\r\n\r\nhello".encode()
    )
    assert Comment.objects.filter(body="hello").exists()
