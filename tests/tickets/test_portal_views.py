"""The portal's pages on the server side: who may see what, errors shown in place with what was typed,
CSRF, sessions that expire into the sign-in with `next`, double submits, and query counts that do not
grow with the page or the thread."""

from __future__ import annotations

import datetime
import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from tests.conftest import FrozenClock, World
from tickets import services, tasks
from tickets.models import Comment, Ticket
from tickets.templatetags.portal import ticket_address

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[2] / "tickets" / "static" / "portal"


def signed_in(party_user_id: int | None, **client_options: object) -> Client:
    client = Client(**client_options)
    client.force_login(get_user_model().objects.get(pk=party_user_id))
    return client


def page_of(ticket: Ticket) -> str:
    return f"/tickets/{ticket.display_number}/"


class TestWhoSeesWhat:
    def test_signed_out_people_go_to_the_sign_in_page_and_come_back(self, world: World) -> None:
        ticket = world.open_ticket()
        client = Client()
        assert client.get("/").url == "/login/"
        response = client.get(page_of(ticket))
        assert response.status_code == 302
        assert response.url == f"/login/?next=%2Ftickets%2F{ticket.display_number}%2F"
        assert client.get("/login/").status_code == 200

    def test_htmx_requests_of_an_expired_session_redirect_the_whole_page(self, world: World) -> None:
        ticket = world.open_ticket()
        response = Client().get(
            f"{page_of(ticket)}live/",
            headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{page_of(ticket)}"},
        )
        assert response.status_code == 204
        assert response["HX-Redirect"] == f"/login/?next=%2Ftickets%2F{ticket.display_number}%2F"

    def test_a_party_sees_its_own_tickets_only(self, world: World) -> None:
        alices = world.open_ticket(subject="Alice's ticket")
        bobs = world.open_ticket(world.bob, subject="Bob's ticket")
        listing = signed_in(world.alice.user_id).get("/tickets/").content.decode()
        assert "Alice&#x27;s ticket" in listing
        assert "Bob&#x27;s ticket" not in listing
        for client in (signed_in(world.bob.user_id), signed_in(world.provider_b_member.user_id)):
            assert client.get(page_of(alices)).status_code == 404
            assert client.get(f"/tickets/{alices.id}/").status_code == 404
            assert client.get(f"{page_of(alices)}live/").status_code == 404
            assert client.get(f"/tickets/rows/{alices.id}/").status_code == 204
        provider = signed_in(world.provider_b_member.user_id)
        assert provider.get(page_of(bobs)).status_code == 200
        assert signed_in(world.agent.user_id).get(page_of(bobs)).status_code == 200

    def test_a_ticket_has_one_address_whatever_name_is_used(self, world: World) -> None:
        ticket = world.open_ticket()
        client = signed_in(world.alice.user_id)
        for reference in (str(ticket.id), str(ticket.number)):
            response = client.get(f"/tickets/{reference}/")
            assert (response.status_code, response.url) == (302, page_of(ticket))
        assert client.get("/tickets/SUP-999999/").status_code == 404
        assert client.get("/tickets/SUP-999999999999999999/").status_code == 404  # the largest number read
        assert client.get("/tickets/SUP-9999999999999999999/").status_code == 404
        assert client.get("/tickets/not-a-ticket/").status_code == 404
        assert signed_in(world.bob.user_id).get(f"/tickets/{ticket.number}/").status_code == 404
        # Digits that are not ASCII: "²" made int() fail (a 500), "١" (Arabic-Indic one) named ticket 1 too.
        for reference in ("²", "SUP-²", "①", "١", "SUP-١"):
            assert client.get(f"/tickets/{reference}/").status_code == 404, reference
            assert client.post(f"/tickets/{reference}/status/", {"status": "resolved"}).status_code == 404

    def test_the_thread_shows_each_reply_as_its_own_endpoint_does(self, world: World) -> None:
        """The thread is written in Python (tickets/templatetags/portal.py): each reply in it is what the
        one-comment endpoint (the live thread's source) gives, escaped, with its files and its label."""
        ticket = world.open_ticket()
        hostile = '<script>alert("x")</script> & see https://status.example.test/a?b=1&c=2'
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body=f"Still down\n{hostile}")
        upload = services.attachment_upload(
            actor=world.provider_a_member, upload=SimpleUploadedFile("pods.log", b"oom", "text/plain")
        )
        services.comment_add(
            actor=world.provider_a_member,
            ticket_id=ticket.id,
            body="Looking at the node",
            is_internal=True,
            attachment_ids=[upload.id],
        )
        provider = signed_in(world.provider_a_member.user_id)
        page = provider.get(page_of(ticket)).content.decode()
        comments = Comment.objects.filter(ticket=ticket).order_by("created_at")
        assert comments.count() == 2
        for comment in comments:
            alone = provider.get(f"{page_of(ticket)}comments/{comment.id}/").content.decode()
            assert alone.startswith(f'\n<article class="comment comment--{comment.author_kind}')
            assert alone in page
        assert "<script>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; see " in page
        assert '<a href="https://status.example.test/a?b=1&amp;c=2" rel="nofollow noopener">' in page
        assert page.count("Internal note — visible to the provider and VirtEngine support only") == 1
        assert re.search(
            r'<article class="comment comment--provider comment--internal"[^>]*aria-label='
            r'"Internal note by [^"]+">',
            page,
        )
        assert "pods.log</a>" in page
        assert "No replies yet." not in page
        customer_page = signed_in(world.alice.user_id).get(page_of(ticket)).content.decode()
        assert "Looking at the node" not in customer_page
        assert "pods.log" not in customer_page
        assert (
            "No replies yet."
            in signed_in(world.alice.user_id).get(page_of(world.open_ticket())).content.decode()
        )

    def test_internal_notes_and_files_never_reach_a_customers_page(self, world: World) -> None:
        ticket = world.open_ticket()
        services.comment_add(
            actor=world.provider_a_member, ticket_id=ticket.id, body="INTERNAL: flaky node", is_internal=True
        )
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Public answer")
        note = Comment.objects.get(is_internal=True)
        customer = signed_in(world.alice.user_id)
        for path in (page_of(ticket), f"{page_of(ticket)}live/"):
            body = customer.get(path).content.decode()
            assert "Public answer" in body
            assert "INTERNAL" not in body
        assert customer.get(f"{page_of(ticket)}comments/{note.id}/").status_code == 404
        provider_page = signed_in(world.provider_a_member.user_id).get(page_of(ticket)).content.decode()
        assert "INTERNAL: flaky node" in provider_page
        assert "comment--internal" in provider_page

    def test_a_user_without_a_role_is_told_so(self, world: World) -> None:
        user = get_user_model().objects.create_user("nobody", password="x-long-password-1")
        client = Client()
        client.force_login(user)
        assert client.get("/tickets/").status_code == 403


class TestList:
    def test_filters_search_and_sort(self, world: World) -> None:
        first = world.open_ticket(subject="Disk full on worker", priority="low")
        second = world.open_ticket(subject="DNS does not resolve", priority="critical")
        services.ticket_transition(actor=world.provider_a_member, ticket_id=first.id, status="in_progress")
        client = signed_in(world.alice.user_id)
        body = client.get("/tickets/", {"status": "in_progress"}).content.decode()
        assert "Disk full on worker" in body
        assert "DNS does not resolve" not in body
        body = client.get("/tickets/", {"q": second.display_number}).content.decode()
        assert "DNS does not resolve" in body
        assert "Disk full" not in body
        body = client.get("/tickets/", {"ordering": "-priority"}).content.decode()
        assert body.index("DNS does not resolve") < body.index("Disk full on worker")
        body = client.get("/tickets/", {"q": "nothing like this"}).content.decode()
        assert "No tickets match" in body

    def test_keyset_pages(self, world: World) -> None:
        for number in range(27):
            world.open_ticket(subject=f"Ticket number {number:02d}")
        client = signed_in(world.alice.user_id)
        first = client.get("/tickets/").content.decode()
        assert first.count('data-ticket-id="') == 25
        next_query = re.search(r'href="\?([^"]*cursor=[^"]+)" class="button" rel="next"', first).group(1)
        second = client.get(f"/tickets/?{next_query.replace('&amp;', '&')}").content.decode()
        assert second.count('data-ticket-id="') == 2
        assert "Ticket number 00" in second
        assert client.get("/tickets/", {"cursor": "garbage"}).status_code == 200

    def test_the_row_partial_follows_the_filters(self, world: World) -> None:
        ticket = world.open_ticket(subject="Row partial")
        client = signed_in(world.provider_a_member.user_id)
        row = client.get(f"/tickets/rows/{ticket.id}/")
        assert row.status_code == 200
        assert f'id="ticket-{ticket.id}"' in row.content.decode()
        assert client.get(f"/tickets/rows/{ticket.id}/", {"status": "closed"}).status_code == 204

    def test_sla_and_chain_badges_say_it_in_words(self, world: World, frozen_clock: FrozenClock) -> None:
        world.open_ticket(priority="critical")
        frozen_clock.advance(datetime.timedelta(minutes=20, seconds=30))
        body = signed_in(world.alice.user_id).get("/tickets/").content.decode()
        # The due time is a <time> (the exact time on hover) inside the badge's words, rounded down.
        assert "First response due in 39\u00a0min" in re.sub(r"<[^>]+>", "", body)
        assert "badge--chain-pending" in body
        assert ">Queued<" in body

    def test_query_count_does_not_grow_with_the_page(
        self, world: World, django_assert_max_num_queries: object
    ) -> None:
        client = signed_in(world.alice.user_id)
        world.open_ticket()
        client.get("/tickets/")
        with django_assert_max_num_queries(9) as few:
            client.get("/tickets/")
        for _ in range(20):
            world.open_ticket()
        with django_assert_max_num_queries(len(few)) as many:
            client.get("/tickets/")
        assert len(many) == len(few)


class TestCreate:
    def form(self, world: World, **overrides: object) -> dict[str, object]:
        return {
            "deployment_id": world.alice_deployment.lease_id,
            "category": "technical",
            "priority": "high",
            "subject": "Pods restart",
            "description": "Every minute since 14:00.",
            "submission_id": str(uuid.uuid4()),
            **overrides,
        }

    def test_only_own_deployments_are_offered_and_preselection_works(self, world: World) -> None:
        client = signed_in(world.alice.user_id)
        body = client.get(
            "/tickets/new/", {"deployment": world.alice_second_deployment.lease_id}
        ).content.decode()
        assert world.alice_deployment.lease_id in body
        assert world.bob_deployment.lease_id not in body
        assert f'value="{world.alice_second_deployment.lease_id}" selected' in body
        # Each priority's targets, from the SLA policies (the defaults: critical 1 h / 4 h, high 4 h / 24 h).
        assert "Critical: first response 1 h, resolution 4 h" in body
        assert "High: first response 4 h, resolution 1 day" in body

    def test_opening_a_ticket_with_files(self, world: World) -> None:
        client = signed_in(world.alice.user_id)
        png = SimpleUploadedFile("screen.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
        log = SimpleUploadedFile("pod.log", b"OOMKilled\n", content_type="text/plain")
        response = client.post("/tickets/new/", {**self.form(world), "files": [png, log]})
        ticket = Ticket.objects.get(subject="Pods restart")
        assert response.url == page_of(ticket)
        assert sorted(ticket.attachments.values_list("filename", flat=True)) == ["pod.log", "screen.png"]
        assert ticket.attachments.get(filename="screen.png").content_type == "image/png"

    def test_errors_are_shown_next_to_the_fields_and_what_was_typed_is_kept(self, world: World) -> None:
        client = signed_in(world.alice.user_id)
        response = client.post(
            "/tickets/new/", self.form(world, subject="", description="Kept text\nover two lines")
        )
        body = response.content.decode()
        assert response.status_code == 400
        assert "field--invalid" in body
        assert "This field is required." in body
        assert "Kept text\nover two lines" in body
        response = client.post("/tickets/new/", self.form(world, deployment_id=world.bob_deployment.lease_id))
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()
        assert not Ticket.objects.exists()

    def test_a_refused_file_is_reported_in_place(self, world: World) -> None:
        client = signed_in(world.alice.user_id)
        html = SimpleUploadedFile(
            "page.html", b"<html><script>alert(1)</script></html>", content_type="text/html"
        )
        response = client.post("/tickets/new/", {**self.form(world), "files": [html]})
        assert response.status_code == 400
        assert "not accepted" in response.content.decode()
        assert not Ticket.objects.exists()

    def test_a_double_submit_opens_one_ticket(self, world: World) -> None:
        client = signed_in(world.alice.user_id)
        form = self.form(world)
        first = client.post("/tickets/new/", form)
        second = client.post("/tickets/new/", form)
        assert Ticket.objects.count() == 1
        assert first.url == second.url == page_of(Ticket.objects.get())

    def test_forms_need_the_csrf_token(self, world: World) -> None:
        client = signed_in(world.alice.user_id, enforce_csrf_checks=True)
        assert client.post("/tickets/new/", self.form(world)).status_code == 403
        ticket = world.open_ticket()
        assert client.post(f"{page_of(ticket)}reply/", {"content": "hi"}).status_code == 403
        assert not Comment.objects.exists()


class TestTicketPage:
    def test_reply_and_internal_note_through_htmx(self, world: World) -> None:
        ticket = world.open_ticket()
        provider = signed_in(world.provider_a_member.user_id)
        response = provider.post(
            f"{page_of(ticket)}reply/", {"content": "Looking"}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200
        assert 'hx-swap-oob="true"' in response.content.decode()
        provider.post(f"{page_of(ticket)}reply/", {"content": "note", "is_internal": "on"})
        assert list(Comment.objects.values_list("body", "is_internal")) == [
            ("Looking", False),
            ("note", True),
        ]

    def test_a_customer_cannot_write_an_internal_note(self, world: World) -> None:
        ticket = world.open_ticket()
        response = signed_in(world.alice.user_id).post(
            f"{page_of(ticket)}reply/", {"content": "sneaky", "is_internal": "on"}, follow=True
        )
        # Post/Redirect/Get: the refusal and what was typed are shown on the ticket's page, once.
        assert response.redirect_chain == [(f"{page_of(ticket)}#reply", 303)]
        body = response.content.decode()
        assert "Not allowed for customers." in body
        assert "sneaky</textarea>" in body
        assert not Comment.objects.exists()
        again = response.client.get(page_of(ticket)).content.decode()
        assert "Not allowed for customers." not in again

    def test_an_empty_reply_is_refused_in_place(self, world: World) -> None:
        ticket = world.open_ticket()
        response = signed_in(world.alice.user_id).post(
            f"{page_of(ticket)}reply/", {"content": "  "}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 400
        assert "field--invalid" in response.content.decode()

    def test_only_allowed_moves_are_offered_and_the_rest_refused(self, world: World) -> None:
        ticket = world.open_ticket()
        customer = signed_in(world.alice.user_id)
        body = customer.get(page_of(ticket)).content.decode()
        assert "Close ticket…" in body
        assert "Mark in progress" not in body
        response = customer.post(f"{page_of(ticket)}status/", {"status": "in_progress"}, follow=True)
        assert response.redirect_chain == [(f"{page_of(ticket)}#ticket-actions", 303)]
        assert "cannot be moved" in response.content.decode()
        provider = signed_in(world.provider_a_member.user_id)
        assert "Mark in progress" in provider.get(page_of(ticket)).content.decode()
        assert provider.post(f"{page_of(ticket)}status/", {"status": "in_progress"}).status_code == 303
        ticket.refresh_from_db()
        assert ticket.status == "in_progress"

    def test_escalate_link_and_logs(
        self, world: World, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: object
    ) -> None:
        queued: list[str] = []
        monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", queued.append)
        ticket = world.open_ticket()
        customer = signed_in(world.alice.user_id)
        assert customer.post(f"{page_of(ticket)}escalate/", {"reason": ""}).status_code == 303
        assert "field--invalid" in customer.get(page_of(ticket)).content.decode()
        assert customer.post(f"{page_of(ticket)}escalate/", {"reason": "Too slow"}).status_code == 303
        body = customer.get(page_of(ticket)).content.decode()
        assert "Escalated to" in body
        assert "Escalate to VirtEngine support" not in body
        lease = world.alice_second_deployment.lease_id
        assert customer.post(f"{page_of(ticket)}links/", {"deployment_id": lease}).status_code == 303
        assert ticket.deployment_links.get().deployment.lease_id == lease
        assert customer.post(f"{page_of(ticket)}links/remove/", {"deployment_id": lease}).status_code == 303
        assert not ticket.deployment_links.exists()
        assert "Fetch deployment logs" not in body
        provider = signed_in(world.provider_a_member.user_id)
        assert "Fetch deployment logs" in provider.get(page_of(ticket)).content.decode()
        cache.clear()  # the escalation fetched logs already; a minute later another fetch is allowed
        with django_capture_on_commit_callbacks(execute=True):
            provider.post(f"{page_of(ticket)}logs/")
        assert queued == [str(ticket.id)]
        # Twice within the minute: nothing more is queued, and the page says when it can be asked again.
        with django_capture_on_commit_callbacks(execute=True):
            again = provider.post(f"{page_of(ticket)}logs/", follow=True).content.decode()
        assert queued == [str(ticket.id)]
        assert "You can fetch them again in " in again
        assert re.search(r"again in (\d+|[1-5]\d)\u00a0s\.", again)

    def test_closing_asks_first_and_says_it_is_final(self, world: World) -> None:
        ticket = world.open_ticket()
        customer = signed_in(world.alice.user_id)
        # One click on a button that posts "closed" (an old page, a script) does not close: it asks.
        response = customer.post(f"{page_of(ticket)}status/", {"status": "closed"})
        assert (response.status_code, response.url) == (303, f"{page_of(ticket)}close/")
        page = customer.get(f"{page_of(ticket)}close/").content.decode()
        assert "Closing is final" in page
        assert "open a new ticket" in page
        ticket.refresh_from_db()
        assert ticket.status == "open"
        assert customer.post(f"{page_of(ticket)}close/", {}).status_code == 400  # not confirmed
        response = customer.post(f"{page_of(ticket)}close/", {"confirm": "True"}, follow=True)
        assert response.redirect_chain == [(page_of(ticket), 303)]
        assert "Ticket closed." in response.content.decode()
        ticket.refresh_from_db()
        assert ticket.status == "closed"
        # The provider may not close: no link, and the page sends them back.
        provider = signed_in(world.provider_a_member.user_id)
        other = world.open_ticket()
        assert "Close ticket" not in provider.get(page_of(other)).content.decode()
        assert provider.get(f"{page_of(other)}close/").status_code == 303

    def test_user_text_is_escaped_with_line_breaks_and_links(self, world: World) -> None:
        ticket = world.open_ticket(description="<script>alert(1)</script>\nsee https://example.test/x")
        body = signed_in(world.alice.user_id).get(page_of(ticket)).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;" in body
        assert '<a href="https://example.test/x"' in body
        assert "<br>" in body

    def test_query_count_does_not_grow_with_the_thread(
        self, world: World, django_assert_max_num_queries: object
    ) -> None:
        ticket = world.open_ticket()
        client = signed_in(world.provider_a_member.user_id)
        client.get(page_of(ticket))
        with django_assert_max_num_queries(16) as few:
            client.get(page_of(ticket))
        for number in range(15):
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body=f"reply {number}")
            services.ticket_priority_set(
                actor=world.alice, ticket_id=ticket.id, priority=("low", "high")[number % 2]
            )
        with django_assert_max_num_queries(len(few)) as many:
            client.get(page_of(ticket))
        assert len(many) == len(few)


def test_pages_send_a_strict_content_security_policy(world: World) -> None:
    policy = signed_in(world.alice.user_id).get("/tickets/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_pages_carry_no_inline_script_or_style(world: World) -> None:
    ticket = world.open_ticket()
    for path in ("/tickets/", "/tickets/new/", page_of(ticket), "/login/"):
        client = signed_in(world.alice.user_id) if path != "/login/" else Client()
        body = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), path
        assert not re.search(r"<[^>]+\sstyle=", body), path
        assert not re.search(r"<[^>]+\son[a-z]+=", body), path


def test_what_we_ship_weighs_under_100_kb() -> None:
    shipped = [path for path in STATIC.rglob("*") if path.suffix in {".js", ".css"}]
    assert {path.name for path in shipped} >= {"portal.js", "portal.css", "htmx-2.0.11.min.js"}
    assert sum(path.stat().st_size for path in shipped) < 100 * 1024


def test_an_expired_session_brings_the_next_action_to_the_sign_in_page(world: World) -> None:
    ticket = world.open_ticket()
    client = signed_in(world.alice.user_id)
    assert client.get(page_of(ticket)).status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    assert session.expire_date - timezone.now() > datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - datetime.timedelta(seconds=1))
    response = client.post(f"{page_of(ticket)}reply/", {"content": "after the session ended"})
    assert response.url == f"/login/?next=%2Ftickets%2F{ticket.display_number}%2Freply%2F"
    assert not Comment.objects.exists()


def test_signing_out_takes_a_post_and_ends_the_session(world: World) -> None:
    client = signed_in(world.alice.user_id)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").url == "/login/"
    assert client.get("/tickets/").status_code == 302


def test_password_sign_in_comes_back_to_next_and_refuses_foreign_next(world: World) -> None:
    ticket = world.open_ticket()
    user = get_user_model().objects.get(pk=world.alice.user_id)
    user.set_password("a-long-demo-password")
    user.save()
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "wrong", "next": page_of(ticket)})
    assert response.status_code == 400
    assert "correct username and password" in response.content.decode()
    response = client.post(
        "/login/", {"username": "alice", "password": "a-long-demo-password", "next": page_of(ticket)}
    )
    assert response.url == page_of(ticket)
    client.post("/logout/")
    response = client.post(
        "/login/", {"username": "alice", "password": "a-long-demo-password", "next": "https://evil.example/"}
    )
    assert response.url == "/tickets/"


@pytest.mark.parametrize("script_prefix", ["/", "/support-desk/"])
def test_a_rows_address_is_the_one_reverse_gives(script_prefix: str) -> None:
    """The list's rows build their links without resolving the pattern for each (templatetags/portal.py)."""
    set_script_prefix(script_prefix)
    try:
        for reference in ("SUP-000001", "SUP-<1> & x", "Grüße", "a?b#c", "100%"):
            assert ticket_address(reference) == reverse("portal-ticket-detail", args=[reference])
        assert ticket_address("SUP-000001").startswith(script_prefix)
    finally:
        set_script_prefix("/")
