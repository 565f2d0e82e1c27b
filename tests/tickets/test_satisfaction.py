"""Satisfaction (CSAT) through its public surfaces: the API, the ticket's page, the link in the resolution
email, the SLA report and the console's satisfaction table; the rating is an event like any other (in the
history, anchored, verified)."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

import pytest
from django.core import mail, signing
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from chain.models import OutboxEntry
from chain.services import outbox_drain
from notifications.services import emails_flush_due
from notifications.services.webhooks import EVENT_TYPES
from tests.chain.helpers import verify
from tests.conftest import Apis, FrozenClock, World
from tests.sockets import session_client as signed_in
from tickets import selectors, services
from tickets.models import Ticket, TicketEvent
from tickets.models.satisfaction import SatisfactionRating
from tickets.services.satisfaction import SATISFACTION_LINK_SALT

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


def resolved_ticket(world: World, **fields: Any) -> Ticket:
    ticket = world.open_ticket(**fields)
    services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="resolved")
    return ticket


def rate(api, ticket: Ticket, body: Any):
    return api.post(f"{TICKETS}/{ticket.id}/satisfaction", body)


class TestRating:
    def test_the_customer_rates_a_resolved_ticket_and_it_is_a_public_event(
        self, world: World, apis: Apis
    ) -> None:
        ticket = resolved_ticket(world)
        response = rate(apis.alice, ticket, {"rating": 4, "comment": "Quick fix, thanks"})
        assert response.status_code == 201, response.content
        assert (response.json()["rating"], response.json()["comment"]) == (4, "Quick fix, thanks")
        for api in (apis.alice, apis.provider_a, apis.agent):
            assert api.get(f"{TICKETS}/{ticket.id}/satisfaction").json()["rating"] == 4
        last = apis.alice.get(f"{TICKETS}/{ticket.id}/events").json()[-1]
        assert (last["type"], last["data"]) == (
            "satisfaction_rated",
            {"rating": 4, "comment": "Quick fix, thanks"},
        )
        assert last["actor_type"] == "customer"
        assert "satisfaction_rated" in EVENT_TYPES  # providers' webhooks may subscribe to it

    def test_rating_again_replaces_the_rating_each_an_event(self, world: World, apis: Apis) -> None:
        ticket = resolved_ticket(world)
        assert rate(apis.alice, ticket, {"rating": 2}).status_code == 201
        assert rate(apis.alice, ticket, {"rating": 5, "comment": "Actually great"}).status_code == 201
        assert rate(apis.alice, ticket, {"rating": 5, "comment": "Actually great"}).status_code == 201
        saved = SatisfactionRating.objects.get(ticket=ticket)
        assert (saved.rating, saved.comment) == (5, "Actually great")
        kinds = TicketEvent.objects.filter(ticket=ticket, kind="satisfaction_rated")
        assert [e.data["rating"] for e in kinds.order_by("seq")] == [2, 5]  # the same again changes nothing

    def test_only_a_resolved_ticket_is_rated(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        refused = rate(apis.alice, ticket, {"rating": 3})
        assert refused.status_code == 409
        assert (refused.json()["code"], refused.json()["current"]) == ("not_resolved", "open")
        # Closed after a resolution: still rated. Closed without one: nothing to rate.
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="resolved")
        services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="closed")
        assert rate(apis.alice, ticket, {"rating": 3}).status_code == 201
        never_resolved = world.open_ticket()
        services.ticket_transition(actor=world.alice, ticket_id=never_resolved.id, status="closed")
        assert rate(apis.alice, never_resolved, {"rating": 3}).status_code == 409

    def test_only_its_customer_rates_it(self, world: World, apis: Apis) -> None:
        ticket = resolved_ticket(world)
        assert rate(apis.provider_a, ticket, {"rating": 5}).status_code == 403
        assert rate(apis.provider_a_member, ticket, {"rating": 5}).status_code == 403
        assert rate(apis.agent, ticket, {"rating": 5}).status_code == 403
        assert rate(apis.bob, ticket, {"rating": 1}).status_code == 404  # not his: not found
        assert rate(apis.provider_b, ticket, {"rating": 1}).status_code == 404
        assert rate(apis.anonymous, ticket, {"rating": 1}).status_code == 401
        assert not SatisfactionRating.objects.exists()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"rating": 0}, "rating"),
            ({"rating": 6}, "rating"),
            ({"rating": "5"}, "rating"),
            ({"rating": True}, "rating"),
            ({"rating": 4.0}, "rating"),
            ({}, "rating"),
            ({"rating": 4, "comment": "x" * 2001}, "comment"),
            ({"rating": 4, "stars": 4}, "stars"),
        ],
    )
    def test_a_refused_rating_is_a_400_naming_the_field(
        self, world: World, apis: Apis, body: dict[str, Any], field: str
    ) -> None:
        ticket = resolved_ticket(world)
        response = rate(apis.alice, ticket, body)
        assert response.status_code == 400, response.content
        assert field in response.json()["fields"]

    def test_not_rated_is_a_404_saying_so(self, world: World, apis: Apis) -> None:
        ticket = resolved_ticket(world)
        response = apis.provider_a.get(f"{TICKETS}/{ticket.id}/satisfaction")
        assert (response.status_code, response.json()["code"]) == (404, "not_rated")
        assert apis.bob.get(f"{TICKETS}/{ticket.id}/satisfaction").json()["code"] == "not_found"

    def test_the_rating_is_anchored_and_verified(self, keyed_world) -> None:
        ticket = keyed_world.open_ticket()
        services.ticket_transition(
            actor=keyed_world.provider_a_member, ticket_id=ticket.id, status="resolved"
        )
        services.satisfaction_rate(actor=keyed_world.alice, ticket_id=ticket.id, rating=5, comment="Great")
        outbox_drain()
        event = TicketEvent.objects.get(ticket=ticket, kind="satisfaction_rated")
        assert OutboxEntry.objects.get(event=event).state == OutboxEntry.State.ANCHORED
        status, output = verify("--ticket", str(ticket.pk))
        assert status == 0, output


class TestPortal:
    def test_the_customer_rates_on_the_tickets_page(self, world: World) -> None:
        ticket = resolved_ticket(world)
        alice = signed_in(world.alice.user_id)
        page = alice.get(f"/tickets/{ticket.display_number}/").content.decode()
        assert "Rate how this ticket was handled" in page
        done = alice.post(
            f"/tickets/{ticket.display_number}/satisfaction/", {"rating": "4", "comment": "Good"}
        )
        assert done.status_code == 303  # Post/Redirect/Get
        page = alice.get(f"/tickets/{ticket.display_number}/").content.decode()
        assert "Rated <strong>4 out of 5</strong>: “Good”" in page
        assert "Change your rating" in page
        # The provider reads the rating and is offered no form.
        provider_page = signed_in(world.provider_a_member.user_id).get(f"/tickets/{ticket.display_number}/")
        assert "4 out of 5" in provider_page.content.decode()
        assert "Rate how this ticket" not in provider_page.content.decode()

    def test_no_rating_form_before_resolution(self, world: World) -> None:
        ticket = world.open_ticket()
        alice = signed_in(world.alice.user_id)
        assert "Satisfaction" not in alice.get(f"/tickets/{ticket.display_number}/").content.decode()
        refused = alice.post(f"/tickets/{ticket.display_number}/satisfaction/", {"rating": "4"}, follow=True)
        assert refused.redirect_chain[-1][1] == 303
        assert "form-error" in refused.content.decode()
        assert not SatisfactionRating.objects.exists()


def _resolution_email_link(world: World, ticket: Ticket) -> str:
    emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
    to_alice = [m for m in mail.outbox if "alice@example.test" in m.to]
    assert to_alice, [m.to for m in mail.outbox]
    text = to_alice[-1].body
    html = to_alice[-1].alternatives[0][0]
    match = re.search(r"https?://\S+/tickets/satisfaction/(\S+)/", text)
    assert match, text
    assert match.group(1) in html
    return f"/tickets/satisfaction/{match.group(1)}/"


class TestEmailLink:
    def test_the_resolution_email_links_to_a_single_use_rating_page(self, world: World) -> None:
        ticket = resolved_ticket(world)
        link = _resolution_email_link(world, ticket)
        anonymous = Client()  # no sign-in: the link's token is the customer's authority
        page = anonymous.get(link)
        assert page.status_code == 200
        assert f"Rate {ticket.display_number}" in page.content.decode()
        refused = anonymous.post(link, {"rating": "9"})
        assert refused.status_code == 400  # refused: the link stays usable
        assert anonymous.post(link, {"rating": "5", "comment": "By email"}).status_code == 200
        saved = SatisfactionRating.objects.get(ticket=ticket)
        assert (saved.rating, saved.comment, saved.customer_address) == (5, "By email", world.alice.address)
        event = TicketEvent.objects.get(ticket=ticket, kind="satisfaction_rated")
        assert (event.actor_kind, event.actor_id) == ("customer", world.alice.user_id)
        again = anonymous.post(link, {"rating": "1"})
        assert again.status_code == 400
        assert "already used" in again.content.decode()
        assert SatisfactionRating.objects.get(ticket=ticket).rating == 5

    def test_a_link_rates_its_own_ticket_only(self, world: World) -> None:
        ticket = resolved_ticket(world)
        other = resolved_ticket(world)
        link = _resolution_email_link(world, ticket)
        token = link.split("/")[-2]
        payload = signing.loads(token, salt=SATISFACTION_LINK_SALT)
        # Pointing it at another ticket breaks the signature.
        forged = signing.dumps({**payload, "t": str(other.id)}, salt="guessed salt", compress=True)
        assert Client().post(f"/tickets/satisfaction/{forged}/", {"rating": "1"}).status_code == 404
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert Client().post(f"/tickets/satisfaction/{tampered}/", {"rating": "1"}).status_code == 404
        # Bob's token (as if signed) for Alice's ticket: he cannot see it.
        bobs = services.satisfaction_token(ticket_id=ticket.id, customer_address=world.bob.address)
        assert Client().post(f"/tickets/satisfaction/{bobs}/", {"rating": "1"}).status_code == 404
        assert not SatisfactionRating.objects.exists()

    def test_an_expired_link_or_a_reopened_ticket_rates_nothing(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ticket = resolved_ticket(world)
        token = services.satisfaction_token(ticket_id=ticket.id, customer_address=world.alice.address)
        services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="in_progress")
        page = Client().get(f"/tickets/satisfaction/{token}/")
        assert "cannot be rated now" in page.content.decode()
        assert Client().post(f"/tickets/satisfaction/{token}/", {"rating": "3"}).status_code == 400
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="resolved")
        now = time.time()
        monkeypatch.setattr(signing.time, "time", lambda: now + (services.SATISFACTION_LINK_DAYS + 1) * 86400)
        assert Client().post(f"/tickets/satisfaction/{token}/", {"rating": "3"}).status_code == 404
        assert not SatisfactionRating.objects.exists()

    def test_other_emails_carry_no_rating_link(self, world: World) -> None:
        ticket = world.open_ticket()
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Looking")
        emails_flush_due(now=timezone.now() + datetime.timedelta(seconds=121))
        assert mail.outbox
        assert all("/tickets/satisfaction/" not in m.body for m in mail.outbox)


class TestReport:
    def test_the_sla_report_shows_satisfaction_per_provider(
        self, world: World, apis: Apis, frozen_clock: FrozenClock
    ) -> None:
        for score in (5, 4, 4):
            services.satisfaction_rate(actor=world.alice, ticket_id=resolved_ticket(world).id, rating=score)
        on_b = world.open_ticket(deployment_id=world.alice_second_deployment.lease_id)
        services.ticket_transition(actor=world.provider_b_member, ticket_id=on_b.id, status="resolved")
        services.satisfaction_rate(actor=world.alice, ticket_id=on_b.id, rating=1)

        report = apis.agent.get("/api/v1/sla/report").json()["satisfaction"]
        by_name = {row["provider_name"]: row for row in report["providers"]}
        assert by_name["Provider A"]["count"] == 3
        assert by_name["Provider A"]["average"] == 4.33
        assert by_name["Provider A"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}
        assert by_name["Provider B"]["distribution"]["1"] == 1
        assert (report["totals"]["count"], report["totals"]["average"]) == (4, 3.5)
        # A provider sees its own; support may name one.
        own = apis.provider_a.get("/api/v1/sla/report").json()["satisfaction"]["providers"]
        assert [row["provider"] for row in own] == [world.provider_a.address]
        named = apis.agent.get("/api/v1/sla/report", provider=world.provider_b.address).json()
        assert [row["provider_name"] for row in named["satisfaction"]["providers"]] == ["Provider B"]
        # The period is when the ratings were given: one given 40 days ago is out of the default 30.
        real_now = frozen_clock.now
        frozen_clock.now = real_now - datetime.timedelta(days=40)
        services.satisfaction_rate(actor=world.alice, ticket_id=resolved_ticket(world).id, rating=2)
        frozen_clock.now = real_now
        assert apis.agent.get("/api/v1/sla/report").json()["satisfaction"]["totals"]["count"] == 4
        since = (real_now - datetime.timedelta(days=41)).isoformat()
        assert (
            apis.agent.get("/api/v1/sla/report", since=since).json()["satisfaction"]["totals"]["count"] == 5
        )

    def test_the_consoles_satisfaction_table(self, world: World) -> None:
        services.satisfaction_rate(actor=world.alice, ticket_id=resolved_ticket(world).id, rating=3)
        rows = selectors.satisfaction_dashboard(world.agent, now=timezone.now())
        html = render_to_string("admin/console/_satisfaction.html", {"satisfaction": rows})
        assert "Provider A" in html
        assert "3.0 / 5" in html
        assert "0 · 0 · 1 · 0 · 0" in html
        assert selectors.satisfaction_dashboard(world.provider_b_member, now=timezone.now()) == []
        assert selectors.satisfaction_dashboard(world.alice, now=timezone.now()) == []
