"""Collision detection on the console's work page, without a script: a reply written while someone else
answered is held back, with the text kept, until the agent has seen what arrived; "Send anyway" sends it."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import World
from tests.sockets import session_client
from tickets import services
from tickets.models import Comment, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(world: World) -> Client:
    return session_client(world.agent.user_id)


def reply(client: Client, ticket: Ticket, **fields: str):
    return client.post(
        f"/admin/tickets/ticket/{ticket.pk}/act/reply/", {"content": "Restarting it now.", **fields}
    )


def test_a_reply_after_the_page_opened_is_shown_before_ours_goes(world: World, agent: Client) -> None:
    ticket = world.open_ticket()
    page = agent.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    seen = page.context["last_seq"]
    assert f'name="seen_seq" value="{seen}"' in page.content.decode()
    services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Never mind, it works again.")

    held = reply(agent, ticket, seen_seq=str(seen))
    assert held.status_code == 409
    html = held.content.decode()
    assert "alice replied after you opened this ticket" in html
    assert "Restarting it now." in html  # the text is kept
    assert "Never mind, it works again." in html  # and what arrived is on the page
    assert not Comment.objects.filter(ticket=ticket, body="Restarting it now.").exists()

    sent = reply(agent, ticket, seen_seq=str(seen), send_anyway="1")
    assert sent.status_code == 303
    assert Comment.objects.filter(ticket=ticket, body="Restarting it now.").count() == 1


def test_own_replies_and_an_up_to_date_page_go_at_once(world: World, agent: Client) -> None:
    ticket = world.open_ticket()
    seen = agent.get(f"/admin/tickets/ticket/{ticket.pk}/change/").context["last_seq"]
    assert reply(agent, ticket, seen_seq=str(seen)).status_code == 303
    # The agent's own reply is no reason to stop the next one.
    assert reply(agent, ticket, seen_seq=str(seen), content="And one more thing.").status_code == 303
    # A status change by someone else is not a reply.
    services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="in_progress")
    assert reply(agent, ticket, seen_seq=str(seen), content="Third.").status_code == 303
    assert Comment.objects.filter(ticket=ticket).count() == 3


def test_the_portal_holds_a_reply_written_while_someone_else_answered(world: World) -> None:
    ticket = world.open_ticket()
    member = session_client(world.provider_a_member.user_id)
    page = member.get(f"/tickets/{ticket.display_number}/")
    assert 'name="seen_seq"' in page.content.decode()
    seen = page.context["ticket"]["last_seq"]
    services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Never mind, it works again.")
    reply_url = f"/tickets/{ticket.display_number}/reply/"
    posted = member.post(reply_url, {"content": "Restarting it now.", "seen_seq": str(seen)})
    # Post/Redirect/Get: back to the ticket's page, which says why and keeps what was typed.
    assert posted.status_code == 303
    held = member.get(posted["Location"])
    assert "alice replied after you opened this ticket" in held.content.decode()
    assert "Restarting it now." in held.content.decode()
    assert not Comment.objects.filter(ticket=ticket, body="Restarting it now.").exists()
    # The page it showed again knows the new reply: sending from it goes through.
    now_seen = held.context["ticket"]["last_seq"]
    assert now_seen > seen
    sent = member.post(reply_url, {"content": "Restarting it now.", "seen_seq": str(now_seen)})
    assert sent.status_code == 303
    assert Comment.objects.filter(ticket=ticket, body="Restarting it now.").count() == 1


def test_an_internal_note_never_holds_a_customers_reply(world: World) -> None:
    """The guard reads what the replier may see: a note written after the customer opened the page must
    not stop (and so reveal itself to) the customer."""
    ticket = world.open_ticket()
    customer = session_client(world.alice.user_id)
    page = customer.get(f"/tickets/{ticket.display_number}/")
    seen = page.context["ticket"]["last_seq"]
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="refund?", is_internal=True)
    sent = customer.post(
        f"/tickets/{ticket.display_number}/reply/", {"content": "Any news?", "seen_seq": str(seen)}
    )
    assert sent.status_code == 303
    assert "replied after you opened" not in sent.content.decode()
    assert Comment.objects.filter(ticket=ticket, body="Any news?").count() == 1


def test_a_seen_number_in_other_digits_is_no_number(world: World, agent: Client) -> None:
    # "²" passes str.isdigit() and fails int(): it was a 500. Like a missing number, it holds nothing back.
    ticket = world.open_ticket()
    for seen in ("²", "١", "①"):
        assert reply(agent, ticket, seen_seq=seen, content=f"Reply {seen}").status_code == 303
    assert Comment.objects.filter(ticket=ticket).count() == 3
    assert agent.get("/admin/", {"provider": "²"}).status_code == 200  # the queue's provider filter
