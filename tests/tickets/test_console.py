"""The support console (the Django admin): nothing writes around the services, every console action is one
service call with its event and an entry in the action log, verify_chain stays clean, roles hold, and the
queue, ticket page and dashboard cost a fixed number of queries."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from chain.services import outbox_drain
from providers.models import ProviderAccount, ProviderCredential
from tests.conftest import World
from tickets import services, tasks
from tickets.models import Assignment, Attachment, Comment, DeploymentLink, SlaPolicy, Ticket, TicketEvent

pytestmark = pytest.mark.django_db

MODELS = {
    "ticket": Ticket,
    "comment": Comment,
    "attachment": Attachment,
    "deploymentlink": DeploymentLink,
    "assignment": Assignment,
    "ticketevent": TicketEvent,
}


@pytest.fixture
def support_client(world: World) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=world.agent.user_id))
    return client


@pytest.fixture
def superuser_client(db: None) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.test", "a-long-root-password")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def busy_ticket(world: World) -> Ticket:
    ticket = world.open_ticket(subject="Console ticket")
    services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Customer words")
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="note", is_internal=True)
    upload = Attachment.objects.create(
        uploader_kind="customer",
        uploader_key=world.alice.key,
        filename="trace.txt",
        content_type="text/plain",
        size=5,
        sha256="0" * 64,
        storage_key="attachments/test/console-trace",
    )
    services.attachment_attach(actor=world.alice, ticket_id=ticket.id, attachment_ids=[upload.id])
    services.deployment_link(
        actor=world.alice, ticket_id=ticket.id, deployment_id=world.alice_second_deployment.lease_id
    )
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason="Slow")
    return ticket


def verify_ok() -> None:
    outbox_drain()
    out = io.StringIO()
    try:
        call_command("verify_chain", stdout=out)
    except CommandError as error:  # pragma: no cover - the failure message is the point
        raise AssertionError(out.getvalue() + str(error)) from error
    assert "verify_chain OK" in out.getvalue()


def events_of(ticket: Ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("seq").values_list("kind", flat=True))


class TestNothingWritesAroundTheServices:
    @pytest.mark.parametrize("model", sorted(MODELS))
    def test_add_change_and_delete_are_refused_to_everyone(
        self, model: str, busy_ticket: Ticket, support_client: Client, superuser_client: Client
    ) -> None:
        instance = (
            MODELS[model].objects.filter(**({"pk": busy_ticket.pk} if model == "ticket" else {})).first()
        )
        assert instance is not None
        base = f"/admin/tickets/{model}/"
        before = events_of(busy_ticket)
        for client in (support_client, superuser_client):
            assert client.get(f"{base}add/").status_code == 403
            assert client.post(f"{base}add/", {}).status_code == 403
            assert client.post(f"{base}{instance.pk}/delete/", {"post": "yes"}).status_code == 403
            assert client.post(
                base, {"action": "delete_selected", "_selected_action": [instance.pk]}
            ).status_code in (
                200,
                302,
            )
            if model != "ticket":
                assert client.post(f"{base}{instance.pk}/change/", {"is_internal": "on"}).status_code == 403
        assert MODELS[model].objects.filter(pk=instance.pk).exists()
        assert events_of(busy_ticket) == before

    def test_posting_the_ticket_page_changes_nothing(
        self, busy_ticket: Ticket, superuser_client: Client
    ) -> None:
        before = events_of(busy_ticket)
        superuser_client.post(
            f"/admin/tickets/ticket/{busy_ticket.pk}/change/", {"subject": "Edited around the services"}
        )
        busy_ticket.refresh_from_db()
        assert busy_ticket.subject == "Console ticket"
        assert events_of(busy_ticket) == before

    def test_the_support_group_holds_no_raw_write_permission(self, world: World) -> None:
        agent = get_user_model().objects.get(pk=world.agent.user_id)
        permissions = {
            p for p in agent.get_all_permissions() if p.startswith(("tickets.", "providers.", "chain."))
        }
        assert "tickets.work_ticket" in permissions
        assert "tickets.view_ticket" in permissions
        writes = {p for p in permissions if p.split(".")[1].startswith(("add_", "change_", "delete_"))}
        assert writes == set()


class TestConsoleActions:
    def act(self, client: Client, ticket: Ticket, action: str, data: dict[str, Any] | None = None) -> Any:
        return client.post(f"/admin/tickets/ticket/{ticket.pk}/act/{action}/", data or {})

    @pytest.mark.parametrize(
        ("action", "data", "kind"),
        [
            ("take", {}, "assignment_change"),
            ("hand_back", {"reason": "Yours again"}, "assignment_change"),
            ("move", {"status": "in_progress"}, "status_change"),
            ("priority", {"priority": "critical"}, "priority_change"),
            ("reply", {"content": "Support here"}, "new_comment"),
            ("reply", {"content": "Internal view", "is_internal": "on"}, "new_comment"),
            ("unlink", {"deployment_id": "SECOND"}, "deployment_unlinked"),
            (
                "edit",
                {"subject": "Better subject", "description": "Better text", "category": "billing"},
                "ticket_edited",
            ),
        ],
    )
    def test_each_action_writes_exactly_one_event_of_its_kind(
        self,
        action: str,
        data: dict[str, Any],
        kind: str,
        world: World,
        busy_ticket: Ticket,
        support_client: Client,
        keyed_world: World,
    ) -> None:
        data = {
            key: world.alice_second_deployment.lease_id if value == "SECOND" else value
            for key, value in data.items()
        }
        before = events_of(busy_ticket)
        response = self.act(support_client, busy_ticket, action, data)
        # Post/Redirect/Get: back to the ticket's page, so that reloading it sends nothing again.
        assert response.status_code == 303, response.content.decode()[:2000]
        assert response["Location"] == f"/admin/tickets/ticket/{busy_ticket.pk}/change/"
        assert events_of(busy_ticket) == [*before, kind]
        entry = LogEntry.objects.get(object_id=str(busy_ticket.pk))
        assert entry.user_id == world.agent.user_id
        assert entry.get_change_message()
        verify_ok()

    def test_assign_to_an_agent_and_the_history_says_who(
        self, world: World, busy_ticket: Ticket, support_client: Client
    ) -> None:
        self.act(
            support_client,
            busy_ticket,
            "assign",
            {"assignee": f"agent:{world.agent.user_id}", "reason": "Mine"},
        )
        last = Assignment.objects.filter(ticket=busy_ticket).order_by("created_at").last()
        assert (last.to_kind, last.to_user_id, last.by_label, last.reason) == (
            "support",
            world.agent.user_id,
            "agent",
            "Mine",
        )

    def test_an_illegal_move_is_refused_with_nothing_written(
        self, world: World, busy_ticket: Ticket, support_client: Client
    ) -> None:
        services.ticket_transition(
            actor=world.provider_a_member, ticket_id=busy_ticket.pk, status="waiting_customer"
        )
        before = events_of(busy_ticket)
        # Waiting for the customer cannot go back to open, by anyone.
        response = self.act(support_client, busy_ticket, "move", {"status": "open"})
        # Refused, the agent is sent back to the ticket (nothing typed to keep): a reload posts nothing again.
        assert response.status_code == 303
        page = support_client.get(response["Location"]).content.decode()
        assert "cannot be moved" in page
        assert events_of(busy_ticket) == before

    def test_fetch_logs_queues_the_fetch(
        self,
        busy_ticket: Ticket,
        support_client: Client,
        monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        queued: list[str] = []
        monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", queued.append)
        cache.clear()  # the escalation fetched logs already; a minute later another fetch is allowed
        with django_capture_on_commit_callbacks(execute=True):
            assert self.act(support_client, busy_ticket, "logs").status_code == 303
        assert queued == [str(busy_ticket.pk)]

    def test_verify_one_ticket(self, busy_ticket: Ticket, support_client: Client, keyed_world: World) -> None:
        outbox_drain()
        page = self.act(support_client, busy_ticket, "verify").content.decode()
        assert "verify_chain OK" in page
        Comment.objects.filter(ticket=busy_ticket, body="Customer words").update(body="Rewritten")
        page = self.act(support_client, busy_ticket, "verify").content.decode()
        assert "content_mismatch" in page

    def test_the_ticket_page_shows_one_timeline_with_internal_notes_marked(
        self, busy_ticket: Ticket, support_client: Client
    ) -> None:
        page = support_client.get(f"/admin/tickets/ticket/{busy_ticket.pk}/change/").content.decode()
        assert page.index("Customer words") < page.index("note")
        assert "Internal note (provider and support only)" in page
        assert "#1 Ticket opened" in page
        assert "Move to In progress" in page
        assert "Move to Open" not in page


class TestBulkActions:
    def test_assign_to_me_and_close_resolved_say_what_they_did_and_skipped_in_one_line(
        self, world: World, support_client: Client
    ) -> None:
        first, second = world.open_ticket(subject="One"), world.open_ticket(subject="Two")
        services.ticket_transition(actor=world.provider_a_member, ticket_id=first.pk, status="resolved")
        response = support_client.post(
            "/admin/tickets/ticket/",
            {"action": "close_resolved", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )
        (message,) = [str(m) for m in response.context["messages"]]
        assert message == (
            f"Closed: 1 ticket ({first.display_number}). Skipped 1: not resolved (open) ({second.display_number})."
        )
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.status, second.status) == ("closed", "open")
        # Select all, closed one included: the closed ticket is skipped without an error per ticket.
        response = support_client.post(
            "/admin/tickets/ticket/",
            {"action": "assign_to_me", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )
        (message,) = [str(m) for m in response.context["messages"]]
        assert message == (
            f"Assigned to you: 1 ticket ({second.display_number}). Skipped 1: closed ({first.display_number})."
        )
        second.refresh_from_db()
        assert second.assigned_to_id == world.agent.user_id
        assert events_of(second)[-1] == "assignment_change"
        assert events_of(first)[-1] == "status_change"  # nothing written on the skipped ticket

    def test_change_priority_asks_for_the_priority_then_changes_each(
        self, world: World, support_client: Client
    ) -> None:
        tickets = [world.open_ticket(priority="low"), world.open_ticket(priority="low")]
        ids = [ticket.pk for ticket in tickets]
        form = support_client.post(
            "/admin/tickets/ticket/", {"action": "change_priority", "_selected_action": ids}
        )
        assert form.status_code == 200
        assert "Set the priority of these tickets" in form.content.decode()
        support_client.post(
            "/admin/tickets/ticket/",
            {"action": "change_priority", "_selected_action": ids, "priority": "high"},
        )
        assert set(Ticket.objects.filter(pk__in=ids).values_list("priority", flat=True)) == {"high"}
        assert [events_of(ticket)[-1] for ticket in tickets] == ["priority_change", "priority_change"]


class TestRoles:
    def test_support_sees_but_does_not_edit_providers_credentials_and_policies(
        self, world: World, support_client: Client, superuser_client: Client
    ) -> None:
        provider = world.provider_a
        policy = SlaPolicy.objects.first()
        assert (
            support_client.get(f"/admin/providers/provideraccount/{provider.pk}/change/").status_code == 200
        )
        support_client.post(
            f"/admin/providers/provideraccount/{provider.pk}/change/",
            {"name": "Renamed", "address": provider.address},
        )
        assert ProviderAccount.objects.get(pk=provider.pk).name == provider.name
        assert (
            support_client.post(
                f"/admin/tickets/slapolicy/{policy.pk}/change/", {"first_response_minutes": 1}
            ).status_code
            == 403
        )
        response = superuser_client.post(
            f"/admin/tickets/slapolicy/{policy.pk}/change/",
            {
                "priority": policy.priority,
                "first_response_minutes": 15,
                "resolution_minutes": policy.resolution_minutes,
            },
        )
        assert response.status_code in (200, 302)
        assert support_client.get("/admin/providers/providercredential/add/").status_code == 403
        assert not ProviderCredential.objects.filter(label="sneaky").exists()

    @pytest.mark.parametrize("who", ["alice", "provider_a_member"])
    def test_customers_and_provider_members_cannot_sign_in(self, who: str, world: World) -> None:
        user = get_user_model().objects.get(pk=getattr(world, who).user_id)
        user.set_password("a-long-password-123")
        user.save()
        client = Client()
        response = client.post(
            "/admin/login/?next=/admin/", {"username": user.username, "password": "a-long-password-123"}
        )
        assert response.status_code == 200  # the form again, with an error
        assert client.get("/admin/").status_code == 302

    def test_support_lands_on_the_queue(self, busy_ticket: Ticket, support_client: Client) -> None:
        page = support_client.get("/admin/").content.decode()
        assert "Escalation queue" in page
        assert busy_ticket.display_number in page


class TestQueryCounts:
    def test_queue_ticket_page_and_dashboard_do_not_grow(
        self, world: World, support_client: Client, django_assert_max_num_queries: Any
    ) -> None:
        ticket = world.open_ticket()
        services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason="x")
        paths = ["/admin/", f"/admin/tickets/ticket/{ticket.pk}/change/", "/admin/dashboard/"]
        counts = {}
        for path in paths:
            support_client.get(path)
            with django_assert_max_num_queries(30) as queries:
                assert support_client.get(path).status_code == 200
            counts[path] = len(queries)
        for number in range(12):
            more = world.open_ticket()
            services.ticket_escalate(actor=world.alice, ticket_id=more.pk, reason="x")
            services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"reply {number}")
            services.ticket_priority_set(
                actor=world.alice, ticket_id=ticket.pk, priority=("low", "high")[number % 2]
            )
        after = {}
        for path in paths:
            with django_assert_max_num_queries(30) as queries:
                assert support_client.get(path).status_code == 200
            after[path] = len(queries)
        assert after == counts
