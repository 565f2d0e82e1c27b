"""A ticket's files in the portal (issue 29, point 3): each on the message it came with, images in a viewer
page, text and logs read in the page (escaped, numbered lines, the first 64 KB and a link to the rest), one
size format, and the download itself as guarded as before."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import World
from tests.tickets.test_portal_views import page_of, signed_in
from tickets import services
from tickets.models import Attachment, Ticket
from tickets.portal.files import TEXT_PREVIEW_BYTES

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
LOG = b"boot ok\n<script>alert(1)</script>\nOOMKilled\n"


def open_with_files(world: World, *files: SimpleUploadedFile) -> Ticket:
    client = signed_in(world.alice.user_id)
    response = client.post(
        "/tickets/new/",
        {
            "deployment_id": world.alice_deployment.lease_id,
            "category": "technical",
            "priority": "high",
            "subject": "Pods restart",
            "description": "See the files.",
            "submission_id": str(uuid.uuid4()),
            "files": list(files),
        },
    )
    assert response.status_code == 302, response.content
    return Ticket.objects.get(subject="Pods restart")


def test_files_sit_on_their_message_and_open_in_the_viewer(world: World) -> None:
    ticket = open_with_files(
        world,
        SimpleUploadedFile("screen.png", PNG, content_type="image/png"),
        SimpleUploadedFile("pod.log", LOG, content_type="text/plain"),
    )
    client = signed_in(world.alice.user_id)
    reply_file = SimpleUploadedFile("later.log", b"later\n", content_type="text/plain")
    client.post(f"{page_of(ticket)}reply/", {"content": "One more", "files": [reply_file]})
    page = client.get(page_of(ticket)).content.decode()
    opening = page[page.index("comment--opening") : page.index("One more")]
    image = ticket.attachments.get(filename="screen.png")
    log = ticket.attachments.get(filename="pod.log")
    assert f"{page_of(ticket)}files/{image.id}/" in opening  # on the opening message, not only the sidebar
    assert f"{page_of(ticket)}files/{log.id}/" in opening
    assert "later.log" not in opening
    reply = page[page.index("One more") :]
    assert "later.log" in reply
    assert "72\u00a0bytes" in page  # one size format: the PNG's 72 bytes, as the uploader says it
    assert "filesizeformat" not in page

    viewer = client.get(f"{page_of(ticket)}files/{image.id}/").content.decode()
    assert f'src="/api/v1/attachments/{image.id}"' in viewer
    assert 'alt="screen.png, the image attached to' in viewer
    text = client.get(f"{page_of(ticket)}files/{log.id}/").content.decode()
    assert '<ol class="viewer__lines"><li><code>boot ok</code></li>' in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)</script>" not in text
    assert "Showing the first" not in text


def test_a_long_log_shows_its_first_part_and_links_to_the_rest(world: World) -> None:
    line = b"x" * 99 + b"\n"
    body = line * (TEXT_PREVIEW_BYTES // len(line) + 50)
    ticket = open_with_files(world, SimpleUploadedFile("big.log", body, content_type="text/plain"))
    big = ticket.attachments.get()
    page = signed_in(world.alice.user_id).get(f"{page_of(ticket)}files/{big.id}/").content.decode()
    assert "Showing the first 64\u00a0KB of 68\u00a0KB." in page
    assert f'href="/api/v1/attachments/{big.id}" download>Download the whole file' in page
    assert page.count("<li><code>") == TEXT_PREVIEW_BYTES // len(line) + 1


def test_the_viewer_shows_only_what_the_download_would(world: World) -> None:
    ticket = open_with_files(world, SimpleUploadedFile("pod.log", LOG, content_type="text/plain"))
    log = ticket.attachments.get()
    other = world.open_ticket()
    alice, bob = signed_in(world.alice.user_id), signed_in(world.bob.user_id)
    assert bob.get(f"{page_of(ticket)}files/{log.id}/").status_code == 404
    assert alice.get(f"{page_of(other)}files/{log.id}/").status_code == 404  # not a file of that ticket
    Attachment.objects.filter(pk=log.pk).update(is_internal=True)
    assert alice.get(f"{page_of(ticket)}files/{log.id}/").status_code == 404
    assert (
        signed_in(world.provider_a_member.user_id).get(f"{page_of(ticket)}files/{log.id}/").status_code == 200
    )


def test_download_headers_are_as_safe_as_before(world: World) -> None:
    ticket = open_with_files(world, SimpleUploadedFile("pod.log", LOG, content_type="text/plain"))
    log = ticket.attachments.get()
    response = signed_in(world.alice.user_id).get(f"/api/v1/attachments/{log.id}")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"".join(response.streaming_content) == LOG
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="ok")  # the page still renders after
