"""Macros through their public surfaces (the API, the portal's pages): who sees and uses which, the checks
made when one is saved, and that applying one writes exactly the events of the same steps done by hand."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from console.macro_forms import apply_macro, macro_apply_form
from tests.conftest import Apis, World
from tickets.models import Comment, Ticket, TicketEvent
from tickets.models.macros import Macro

pytestmark = pytest.mark.django_db

MACROS = "/api/v1/macros"
TICKETS = "/api/v1/tickets"


def make_macro(api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Resolved, thanks", "body": "Hi {customer_name}, {ticket_number} is fixed."}
    body.update(fields)
    response = api.post(MACROS, body)
    assert response.status_code == 201, response.content
    return response.json()


def apply(api, ticket_id: object, macro_id: str):
    return api.post(f"{TICKETS}/{ticket_id}/macros/{macro_id}/apply")


class TestManaging:
    def test_a_provider_creates_lists_changes_and_deletes_its_macros(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a, status="resolved", priority="low", is_internal=False)
        assert macro["owner"] == "provider"
        assert macro["provider"] == world.provider_a.address
        assert (macro["status"], macro["priority"]) == ("resolved", "low")
        # The provider's members and its machine credential share them.
        assert [m["id"] for m in apis.provider_a_member.get(MACROS).json()] == [macro["id"]]
        changed = apis.provider_a_member.patch(f"{MACROS}/{macro['id']}", {"status": "", "name": "Fixed"})
        assert changed.status_code == 200, changed.content
        assert (changed.json()["status"], changed.json()["name"]) == (None, "Fixed")
        assert apis.provider_a.delete(f"{MACROS}/{macro['id']}").status_code == 204
        assert apis.provider_a.get(MACROS).json() == []

    def test_support_macros_are_shared_and_apart_from_the_providers(self, world: World, apis: Apis) -> None:
        shared = make_macro(apis.agent, name="Escalation received", status="closed")
        own = make_macro(apis.provider_a, name="Looking into it")
        assert shared["owner"] == "support"
        assert shared["provider"] is None
        assert [m["id"] for m in apis.agent.get(MACROS).json()] == [shared["id"]]
        assert [m["id"] for m in apis.provider_a.get(MACROS).json()] == [own["id"]]
        assert apis.provider_a.get(f"{MACROS}/{shared['id']}").status_code == 404
        assert apis.provider_b.get(MACROS).json() == []

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"body": "Hello {customer}"}, "body"),
            ({"body": "Hello {customer_name.__class__}"}, "body"),
            ({"body": "Hello {customer_name!r}"}, "body"),
            ({"body": "Hello {customer_name:>99}"}, "body"),
            ({"body": "Hello {0}"}, "body"),
            ({"body": "Hello {"}, "body"),
            ({"status": "closed"}, "status"),  # a provider never closes a ticket
            ({"status": "reopened"}, "status"),
            ({"priority": "urgent"}, "priority"),
            ({"name": ""}, "name"),
            ({"name": "two\nlines"}, "name"),
            ({"body": "", "status": "", "priority": ""}, "non_field_errors"),
            ({"is_internal": "yes"}, "is_internal"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_a_refused_macro_is_a_400_naming_the_field(
        self, apis: Apis, fields: dict[str, Any], field: str
    ) -> None:
        body = {"name": "A macro", "body": "Hello {customer_name}", **fields}
        response = apis.provider_a.post(MACROS, body)
        assert response.status_code == 400, response.content
        assert field in response.json()["fields"]

    def test_an_unknown_placeholder_is_refused_on_change_too(self, apis: Apis) -> None:
        macro = make_macro(apis.provider_a)
        response = apis.provider_a.patch(f"{MACROS}/{macro['id']}", {"body": "{agent}"})
        assert response.status_code == 400
        assert "{agent}" in response.json()["fields"]["body"][0]

    def test_one_name_per_owner(self, apis: Apis) -> None:
        make_macro(apis.provider_a, name="Same")
        again = apis.provider_a.post(MACROS, {"name": "Same", "body": "x"})
        assert again.status_code == 400
        assert "name" in again.json()["fields"]
        # Another owner may use the name.
        make_macro(apis.provider_b, name="Same")
        make_macro(apis.agent, name="Same")


class TestVisibility:
    def test_a_customer_never_sees_a_macro(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a)
        ticket = world.open_ticket()
        assert apis.alice.get(MACROS).status_code == 403
        assert apis.alice.post(MACROS, {"name": "Mine", "body": "x"}).status_code == 403
        assert apis.alice.get(f"{MACROS}/{macro['id']}").status_code == 404
        assert apis.alice.patch(f"{MACROS}/{macro['id']}", {"name": "x"}).status_code == 403
        assert apis.alice.delete(f"{MACROS}/{macro['id']}").status_code == 403
        assert apply(apis.alice, ticket.id, macro["id"]).status_code == 404
        assert apis.anonymous.get(MACROS).status_code == 401
        assert Comment.objects.filter(ticket=ticket).count() == 0

    def test_provider_b_cannot_use_or_change_provider_as_macro(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a)
        # Alice's second deployment is leased from provider B: a ticket B may see.
        ticket = world.open_ticket(deployment_id=world.alice_second_deployment.lease_id)
        for api in (apis.provider_b, apis.provider_b_member):
            assert apply(api, ticket.id, macro["id"]).status_code == 404
            assert api.get(f"{MACROS}/{macro['id']}").status_code == 404
            assert api.patch(f"{MACROS}/{macro['id']}", {"name": "Taken"}).status_code == 404
            assert api.delete(f"{MACROS}/{macro['id']}").status_code == 404
        assert not Comment.objects.filter(ticket=ticket).exists()

    def test_support_cannot_apply_a_providers_macro(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a)
        ticket = world.open_ticket()
        assert apply(apis.agent, ticket.id, macro["id"]).status_code == 404

    def test_a_ticket_the_caller_cannot_see_is_404_first(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a)
        bobs = world.open_ticket(world.bob)  # provider B's
        assert apply(apis.provider_a, bobs.id, macro["id"]).status_code == 404
        assert apply(apis.provider_a, "not-a-uuid", macro["id"]).status_code == 404
        ticket = world.open_ticket()
        assert apply(apis.provider_a, ticket.id, "not-a-uuid").status_code == 404


def _recorded(ticket: Ticket, since: int) -> list[dict[str, Any]]:
    """A ticket's events after `since`, with the ids that differ between two tickets replaced by what they
    name (the comment's text and flags)."""
    events = []
    for event in TicketEvent.objects.filter(ticket=ticket, seq__gt=since).order_by("seq"):
        data = dict(event.data)
        if "comment_id" in data:
            comment = Comment.objects.get(pk=data.pop("comment_id"))
            data["comment"] = (comment.body, comment.is_internal, comment.author_kind, comment.author_label)
        events.append(
            {
                "seq": event.seq - since,
                "public": event.public_seq is not None,
                "kind": event.kind,
                "data": data,
                "is_internal": event.is_internal,
                "actor_id": event.actor_id,
                "actor_kind": event.actor_kind,
                "actor_label": event.actor_label,
            }
        )
    return events


class TestApplying:
    def test_a_macro_writes_the_same_events_as_the_steps_by_hand(self, world: World, apis: Apis) -> None:
        macro = make_macro(
            apis.provider_a_member,
            body="Hi {customer_name}, {ticket_number} ({ticket_subject}) on {deployment_name} "
            "[{deployment_id}] by {provider_name}: {agent_name}. {{literal}}",
            priority="low",
            status="resolved",
        )
        one, twin = world.open_ticket(), world.open_ticket()
        before_one, before_twin = one.last_seq, twin.last_seq

        applied = apply(apis.provider_a_member, one.id, macro["id"])
        assert applied.status_code == 200, applied.content
        assert (applied.json()["status"], applied.json()["priority"]) == ("resolved", "low")

        # By hand on the twin: the reply the macro wrote for it, then the priority, then the status.
        expected_reply = (
            f"Hi alice, {one.display_number} (Pod crash-looping) on {world.alice_deployment.name} "
            f"[{world.alice_deployment.lease_id}] by Provider A: {world.provider_a_member.label}. {{literal}}"
        )
        assert Comment.objects.get(ticket=one).body == expected_reply
        by_hand = apis.provider_a_member
        reply = expected_reply.replace(one.display_number, twin.display_number)
        assert by_hand.post(f"{TICKETS}/{twin.id}/comments", {"content": reply}).status_code == 201
        assert by_hand.patch(f"{TICKETS}/{twin.id}", {"priority": "low"}).status_code == 200
        assert by_hand.patch(f"{TICKETS}/{twin.id}", {"status": "resolved"}).status_code == 200

        macro_events = _recorded(one, before_one)
        hand_events = _recorded(twin, before_twin)
        assert [e["kind"] for e in macro_events] == ["new_comment", "priority_change", "status_change"]
        for from_macro, from_hand in zip(macro_events, hand_events, strict=True):
            if from_macro["kind"] == "new_comment":  # the texts differ by the ticket number only
                number_free = from_macro["data"]["comment"][0].replace(
                    one.display_number, twin.display_number
                )
                from_macro["data"]["comment"] = (number_free, *from_macro["data"]["comment"][1:])
            for field in from_macro:
                assert from_macro[field] == from_hand[field], field
        one.refresh_from_db()
        twin.refresh_from_db()
        assert (one.first_response_at is None) is (twin.first_response_at is None) is False

    def test_an_internal_macro_is_an_internal_note(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a, body="Customer is on {deployment_id}", is_internal=True)
        ticket = world.open_ticket()
        assert apply(apis.provider_a, ticket.id, macro["id"]).status_code == 200
        note = Comment.objects.get(ticket=ticket)
        assert note.is_internal
        assert apis.alice.get(f"{TICKETS}/{ticket.id}").json()["comments"] == []
        assert [e["type"] for e in apis.alice.get(f"{TICKETS}/{ticket.id}/events").json()] == [
            "ticket_created"
        ]

    def test_a_refused_step_applies_nothing(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a, status="waiting_customer")
        ticket = world.open_ticket()
        services_patch = apis.provider_a.patch(f"{TICKETS}/{ticket.id}", {"status": "resolved"})
        assert services_patch.status_code == 200
        ticket.refresh_from_db()
        seq = ticket.last_seq
        refused = apply(apis.provider_a, ticket.id, macro["id"])  # resolved → waiting_customer: illegal
        assert refused.status_code == 409
        assert refused.json()["allowed"] == ["in_progress"]
        ticket.refresh_from_db()
        assert ticket.last_seq == seq
        assert not Comment.objects.filter(ticket=ticket).exists()

    def test_support_applies_a_shared_macro(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.agent, body="Closing {ticket_number}.", status="closed", priority="critical")
        ticket = world.open_ticket(priority="low")
        response = apply(apis.agent, ticket.id, macro["id"])
        assert response.status_code == 200, response.content
        assert (response.json()["status"], response.json()["priority"]) == ("closed", "critical")
        assert response.json()["comments"][0]["content"] == f"Closing {ticket.display_number}."


class TestPortal:
    def _member(self, world: World) -> Client:
        client = Client()
        client.force_login(get_user_model().objects.get(pk=world.provider_a_member.user_id))
        return client

    def test_a_member_manages_macros_on_the_portal(self, world: World) -> None:
        client = self._member(world)
        page = client.get("/tickets/macros/")
        assert page.status_code == 200
        assert b"No macros yet" in page.content
        refused = client.post("/tickets/macros/", {"name": "Bad", "body": "Hi {nobody}"})
        assert refused.status_code == 400
        assert "Unknown placeholder {nobody}" in refused.content.decode()
        created = client.post(
            "/tickets/macros/",
            {"name": "On it", "body": "Looking at {deployment_name}", "status": "in_progress"},
        )
        assert created.status_code == 302
        page = client.get("/tickets/macros/")
        assert b"On it" in page.content
        macro = Macro.objects.get(name="On it")
        assert macro.provider_id == world.provider_a.pk
        edit = client.post(
            f"/tickets/macros/{macro.pk}/", {"name": "On it now", "body": "x", "priority": "high"}
        )
        assert edit.status_code == 302
        macro.refresh_from_db()
        assert (macro.name, macro.status, macro.priority) == ("On it now", "", "high")
        assert client.post(f"/tickets/macros/{macro.pk}/delete/").status_code == 302
        assert not Macro.objects.exists()

    def test_a_member_applies_a_macro_on_a_tickets_page(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.provider_a, body="Hello {customer_name}", status="in_progress")
        ticket = world.open_ticket()
        client = self._member(world)
        page = client.get(f"/tickets/{ticket.display_number}/")
        assert b"Apply macro" in page.content
        assert macro["id"].encode() in page.content
        done = client.post(f"/tickets/{ticket.display_number}/macro/", {"macro_id": macro["id"]})
        assert done.status_code == 303  # Post/Redirect/Get
        ticket.refresh_from_db()
        assert ticket.status == "in_progress"
        assert Comment.objects.get(ticket=ticket).body == "Hello alice"

    def test_customers_get_no_macro_pages_and_no_macros_on_a_ticket(self, world: World, apis: Apis) -> None:
        make_macro(apis.provider_a)
        ticket = world.open_ticket()
        client = Client()
        client.force_login(get_user_model().objects.get(pk=world.alice.user_id))
        assert client.get("/tickets/macros/").status_code == 404
        page = client.get(f"/tickets/{ticket.display_number}/")
        assert b"Apply macro" not in page.content
        assert b"Resolved, thanks" not in page.content
        macro_id = apis.provider_a.get(MACROS).json()[0]["id"]
        refused = client.post(f"/tickets/{ticket.display_number}/macro/", {"macro_id": macro_id}, follow=True)
        assert refused.redirect_chain[-1][1] == 303
        assert b"form-error" in refused.content
        assert not Comment.objects.filter(ticket=ticket).exists()


class TestConsole:
    def _agent(self, world: World) -> Client:
        client = Client()
        client.force_login(get_user_model().objects.get(pk=world.agent.user_id))
        return client

    def test_support_manages_shared_and_provider_macros_in_the_console(self, world: World) -> None:
        client = self._agent(world)
        assert client.get("/admin/tickets/macro/").status_code == 200
        fields = {"name": "Shared", "body": "Hi {customer_name}", "status": "closed", "priority": ""}
        refused = client.post("/admin/tickets/macro/add/", {**fields, "body": "Hi {who}"})
        assert refused.status_code == 200
        assert "Unknown placeholder {who}" in refused.content.decode()
        assert not Macro.objects.exists()
        assert client.post("/admin/tickets/macro/add/", fields).status_code == 302
        shared = Macro.objects.get(name="Shared")
        assert shared.provider_id is None
        assert shared.created_by_label == world.agent.label
        # A provider's macro: the provider may not be given a status it never sets.
        for_provider = {**fields, "name": "For A", "provider": world.provider_a.pk}
        refused = client.post("/admin/tickets/macro/add/", for_provider)
        assert refused.status_code == 200
        assert not Macro.objects.filter(name="For A").exists()
        ok = client.post("/admin/tickets/macro/add/", {**for_provider, "status": "resolved"})
        assert ok.status_code == 302
        assert Macro.objects.get(name="For A").provider_id == world.provider_a.pk
        changed = client.post(
            f"/admin/tickets/macro/{shared.pk}/change/",
            {"name": "Shared v2", "body": "Bye {agent_name}", "status": "", "priority": "low"},
        )
        assert changed.status_code == 302
        shared.refresh_from_db()
        assert (shared.name, shared.status, shared.priority) == ("Shared v2", "", "low")
        deleted = client.post(f"/admin/tickets/macro/{shared.pk}/delete/", {"post": "yes"})
        assert deleted.status_code == 302
        assert list(Macro.objects.values_list("name", flat=True)) == ["For A"]

    def test_the_work_page_action_applies_a_shared_macro(self, world: World, apis: Apis) -> None:
        macro = make_macro(apis.agent, body="Taking {ticket_number}", priority="critical")
        ticket = world.open_ticket()
        assert [c[0] for c in macro_apply_form(world.agent).fields["macro_id"].choices] == [macro["id"]]
        request = RequestFactory().post("/", {"macro_id": macro["id"]})
        done, bound = apply_macro(request, world.agent, ticket.pk)
        assert done == "Applied the macro “Resolved, thanks”."
        assert bound == {}
        ticket.refresh_from_db()
        assert ticket.priority == "critical"
        refused, bound = apply_macro(RequestFactory().post("/", {"macro_id": "nope"}), world.agent, ticket.pk)
        assert refused is None
        assert "macro_id" in bound["macro_form"].errors
