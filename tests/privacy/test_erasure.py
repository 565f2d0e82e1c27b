"""Erasure by crypto-shredding, through the operator command and the console: afterwards no surface serves
the person's content (API, pages, search, emails not yet sent, webhooks not yet delivered), the ledger's
envelopes of their events can no longer be opened, other parties' content stays, and verify_chain reports
the erasure as erasure while still catching tampering on the same ticket."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from chain.services import outbox_drain
from notifications import tasks as notification_tasks
from notifications.inbound.store import inbound_store
from notifications.models import InboundMessage, PendingEmail, WebhookDelivery
from providers.models import CustomerIdentity
from tests.conftest import Apis, World
from tests.notifications.test_email import everything_in, flush
from tests.notifications.test_webhook_delivery import register
from tests.privacy import scenario
from tests.privacy.scenario import SECRETS
from tickets.models import Attachment, Comment, ContentErasure, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def disk(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "files")},
        },
    }
    return tmp_path / "files"


def erase_alice(world: World) -> str:
    out = io.StringIO()
    call_command(
        "erase_person",
        world.alice.address,
        "--reason",
        "GDPR art. 17 request by email",
        "--reference",
        "REQ-2026-031",
        "--yes",
        stdout=out,
    )
    return out.getvalue()


def verify(*args: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("verify_chain", *args, stdout=out)
    except CommandError as failed:
        return False, out.getvalue() + str(failed)
    return True, out.getvalue()


def assert_none_of_the_secrets(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, leaked


def test_no_surface_serves_erased_content_and_the_ledger_cannot_open_it(
    keyed_world: World, apis: Apis, disk, smtp, receiver, fast_webhooks, django_capture_on_commit_callbacks
) -> None:
    register(apis.provider_a, receiver)  # undelivered webhooks wait for the delivery task
    story = scenario.build(keyed_world, apis)
    ticket = story.ticket
    before = scenario.opened_envelopes(ticket, keyed_world.keys.support[0])
    assert all(document is not None for document in before.values())
    assert WebhookDelivery.objects.filter(ticket_id=ticket.pk, state="pending").exists()
    stored = Attachment.objects.get(pk=story.attachment_id).storage_key

    with django_capture_on_commit_callbacks(execute=True):
        printed = erase_alice(keyed_world)
    assert "Erasure" in printed

    # REST, as support and as the provider: tombstones, the provider's own words intact.
    for api in (apis.agent, apis.provider_a):
        detail = api.get(f"/api/v1/tickets/{ticket.pk}").json()
        events = api.get(f"/api/v1/tickets/{ticket.pk}/events").json()
        text = json.dumps([detail, events])
        assert_none_of_the_secrets(text)
        assert scenario.PROVIDER_TEXT in text
        assert scenario.PROVIDER_NOTE in text
        assert "content_erased" in text
    erased_event = next(
        e
        for e in apis.agent.get(f"/api/v1/tickets/{ticket.pk}/events").json()
        if e["type"] == "content_erased"
    )
    assert erased_event["data"]["basis"] == "request"
    assert erased_event["data"]["reference"] == "REQ-2026-031"
    assert apis.agent.get(f"/api/v1/attachments/{story.attachment_id}").status_code == 404
    assert not (disk / stored).exists()
    assert Attachment.objects.get(pk=story.attachment_id).wrapped_key is None
    # Bob's ticket is untouched.
    assert apis.bob.get(f"/api/v1/tickets/{story.bob_ticket.pk}").json()["subject"] == scenario.BOB_SUBJECT

    # Pages: the provider member's ticket page and the console's.
    page = apis.provider_a_member.client.get(f"/tickets/{ticket.display_number}/").content.decode()
    assert_none_of_the_secrets(page)
    assert "Content erased on" in page
    assert "at the person" in page
    console = apis.agent.client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").content.decode()
    assert_none_of_the_secrets(console)

    # The person's own export holds the tombstones, not the content.
    exported = b"".join(apis.alice.get("/api/v1/export").streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(exported))
    assert_none_of_the_secrets(
        b"".join(archive.read(name) for name in archive.namelist()).decode(errors="replace")
    )
    assert not [name for name in archive.namelist() if name.startswith("files/")]

    # Search: the erased words find nothing; the provider's still find the ticket.
    assert apis.agent.get("/api/v1/tickets", q="hunter2").json() == []
    assert apis.agent.get("/api/v1/tickets", q="alice-corp").json() == []
    assert [t["id"] for t in apis.agent.get("/api/v1/tickets", q="restarted node-7").json()] == [
        str(ticket.pk)
    ]

    # Emails not yet sent and webhooks not yet delivered go out without the erased content.
    flush()
    notification_tasks.webhook_deliver_task()
    assert smtp.messages, "the pending digests were sent"
    for _recipients, message in smtp.messages:
        assert_none_of_the_secrets(everything_in(message))
    assert receiver.requests, "the pending deliveries were delivered"
    for request in receiver.requests:
        assert_none_of_the_secrets(request.body.decode())

    # The email log keeps no address of theirs.
    assert PendingEmail.objects.filter(customer__address=keyed_world.alice.address).exists()
    with django_capture_on_commit_callbacks(execute=True):
        erase_alice(keyed_world)  # again: idempotent, and it clears the addresses the sends just recorded
    assert (
        not PendingEmail.objects.filter(customer__address=keyed_world.alice.address)
        .exclude(to_address="")
        .exists()
    )

    # The ledger: the erased events' envelopes no longer open, with any key; the provider's still do.
    after = scenario.opened_envelopes(ticket, keyed_world.keys.support[0])
    erased = dict(TicketEvent.objects.filter(ticket=ticket, erasure__isnull=False).values_list("seq", "kind"))
    assert set(erased.values()) >= {"ticket_created", "new_comment", "attachment_added", "assignment_change"}
    assert all(after[seq] is None for seq in erased)
    provider_seq = TicketEvent.objects.get(
        ticket=ticket, kind="new_comment", data__comment_id=story.provider_comment_id
    ).seq
    assert after[provider_seq]["content"]["text"] == scenario.PROVIDER_TEXT
    assert_none_of_the_secrets(json.dumps([doc for doc in after.values() if doc]))


def test_verify_chain_reports_the_erasure_and_still_catches_tampering_on_the_same_ticket(
    keyed_world: World, apis: Apis, disk
) -> None:
    story = scenario.build(keyed_world, apis)
    erase_alice(keyed_world)
    outbox_drain()  # the erasure events themselves are anchored
    ok, printed = verify()
    assert ok, printed
    assert "[erased]" in printed
    assert "REQ-2026-031" in printed
    assert "at the person's request" in printed
    assert "erased by 1 erasure" in printed

    # Another party's comment on the partly erased ticket is edited: tampering.
    Comment.objects.filter(pk=story.provider_comment_id).update(body="Provider: we did nothing")
    ok, printed = verify()
    assert not ok
    assert "content_mismatch" in printed
    Comment.objects.filter(pk=story.provider_comment_id).update(body=scenario.PROVIDER_TEXT)
    assert verify()[0]

    # Text written back into an erased row is tampering too.
    Comment.objects.filter(pk=story.alice_comment_id).update(body="forged after erasure")
    ok, printed = verify()
    assert not ok
    assert "erased_row_changed" in printed
    Comment.objects.filter(pk=story.alice_comment_id).update(body="[content erased]")

    # So is an event marked erased after the fact (no erasure destroyed its key)…
    provider_event = TicketEvent.objects.get(kind="new_comment", data__comment_id=story.provider_comment_id)
    TicketEvent.objects.filter(pk=provider_event.pk).update(erasure=ContentErasure.objects.get())
    ok, printed = verify()
    assert not ok
    assert "shred key was not destroyed" in printed
    TicketEvent.objects.filter(pk=provider_event.pk).update(erasure=None)
    # …and a status edited on the erased ticket.
    Ticket.objects.filter(pk=story.ticket.pk).update(priority="low")
    ok, printed = verify()
    assert not ok
    assert "priority" in printed


def test_erasure_needs_a_reason_and_the_address_typed_again(keyed_world: World, apis: Apis, disk) -> None:
    story = scenario.build(keyed_world, apis)
    console = apis.agent.client
    url = f"/admin/customers/{keyed_world.alice.address}/erase/"
    page = console.get(url)
    assert page.status_code == 200
    assert "cannot be undone" in page.content.decode()
    refused = console.post(url, {"reason": "asked", "reference": "", "confirm": "ve1wrong"})
    assert refused.status_code == 400
    assert "Type the customer" in refused.content.decode()
    assert Ticket.objects.get(pk=story.ticket.pk).subject == scenario.SUBJECT
    done = console.post(
        url, {"reason": "asked by email", "reference": "REQ-9", "confirm": keyed_world.alice.address}
    )
    assert done.status_code == 302
    assert Ticket.objects.get(pk=story.ticket.pk).content_erased_at is not None
    assert ContentErasure.objects.get().performed_by_label == keyed_world.agent.label
    # Provider members and customers cannot reach it.
    assert apis.provider_a_member.client.get(url).status_code in (302, 403, 404)


def test_replies_they_sent_by_email_are_erased_from_the_inbound_log(
    keyed_world: World, apis: Apis, disk
) -> None:
    CustomerIdentity.objects.filter(address=keyed_world.alice.address).update(email="alice@example.test")
    raw = (
        b"From: Alice <alice@example.test>\r\nTo: reply+abc@support.example.test\r\n"
        b"Subject: Re: my db01 password\r\nMessage-ID: <m1@example.test>\r\n\r\nhunter2 is the password\r\n"
    )
    inbound_store(raw=raw, recipient="reply+abc@support.example.test", envelope_from="alice@example.test")
    scenario.build(keyed_world, apis)
    erase_alice(keyed_world)
    (message,) = InboundMessage.objects.all()
    assert bytes(message.raw) == b""
    assert (message.subject, message.from_address, message.envelope_from) == ("", "", "")
    assert message.state == "rejected"
