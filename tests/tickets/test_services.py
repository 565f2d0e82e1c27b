"""Each ticket service: its effect, the event with the next seq, the outbox row, the after-commit hook,
and nothing at all written when it refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.models import OutboxEntry
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.conftest import World
from tests.factories import DeploymentFactory, UserFactory
from tickets import hooks, services
from tickets.models import Assignment, Attachment, Comment, DeploymentLink, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked() -> Iterator[list[TicketEvent]]:
    """Events delivered to an after-commit hook."""
    delivered: list[TicketEvent] = []
    hook = delivered.append
    hooks.register_event_hook(hook)
    yield delivered
    hooks.unregister_event_hook(hook)


def snapshot() -> tuple[int, int, int, int, int]:
    return (
        Ticket.objects.count(),
        Comment.objects.count(),
        TicketEvent.objects.count(),
        OutboxEntry.objects.count(),
        Assignment.objects.count(),
    )


def events_of(ticket: Ticket) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("seq"))


def assert_new_events(ticket: Ticket, before_seq: int, kinds: list[str]) -> list[TicketEvent]:
    """The ticket gained exactly `kinds`, numbered before_seq+1…, each with its outbox row."""
    ticket.refresh_from_db()
    new = [event for event in events_of(ticket) if event.seq > before_seq]
    assert [event.kind for event in new] == kinds
    assert [event.seq for event in new] == list(range(before_seq + 1, before_seq + 1 + len(kinds)))
    assert ticket.last_seq == before_seq + len(kinds)
    for event in new:
        entry = OutboxEntry.objects.get(event=event)
        assert entry.seq == event.seq
        assert entry.ticket_id == ticket.id
        assert entry.state == OutboxEntry.State.PENDING
        assert entry.idempotency_key == f"ticket:{ticket.id}:{event.seq}"
    return new


def upload(actor_key: str, name: str = "screenshot.png") -> Attachment:
    """An unattached upload owned by `actor_key` (the upload service itself is tested with the API)."""
    return Attachment.objects.create(
        uploader_kind="customer",
        uploader_key=actor_key,
        filename=name,
        content_type="image/png",
        size=4,
        sha256="0" * 64,
        storage_key=f"test/{name}-{actor_key}",
    )


class TestTicketCreate:
    def test_creates_ticket_event_outbox_and_runs_hook_after_commit(
        self, world: World, hooked: list[TicketEvent], django_capture_on_commit_callbacks
    ) -> None:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ticket = world.open_ticket(category="general")  # (a technical one also queues a logs fetch)
        assert hooked == []  # nothing runs before the commit
        assert len(callbacks) == 1
        for callback in callbacks:
            callback()
        assert [event.kind for event in hooked] == ["ticket_created"]

        ticket.refresh_from_db()
        assert ticket.display_number.startswith("SUP-")
        assert len(ticket.display_number) == len("SUP-000001")
        assert ticket.status == "open"
        assert ticket.assignee_kind == "provider"
        assert ticket.provider_id == world.provider_a.id
        assert ticket.customer_address == world.alice.address
        assert ticket.sla_first_response_due is not None
        assert ticket.sla_resolution_due > ticket.sla_first_response_due
        (event,) = assert_new_events(ticket, 0, ["ticket_created"])
        assert event.public_seq == 1
        assert event.data["deployment_id"] == world.alice_deployment.lease_id

    def test_numbers_are_unique_and_increasing(self, world: World) -> None:
        first = world.open_ticket()
        second = world.open_ticket()
        assert second.number > first.number

    def test_with_attachments_records_one_event_each(self, world: World) -> None:
        files = [upload(world.alice.key, "a.png"), upload(world.alice.key, "b.log")]
        ticket = world.open_ticket(attachment_ids=[str(f.id) for f in files])
        assert_new_events(ticket, 0, ["ticket_created", "attachment_added", "attachment_added"])
        assert set(ticket.attachments.values_list("filename", flat=True)) == {"a.png", "b.log"}

    def test_someone_elses_upload_is_refused_and_nothing_written(self, world: World) -> None:
        foreign = upload(world.bob.key)
        before = snapshot()
        with pytest.raises(ValidationFailed) as refused:
            world.open_ticket(attachment_ids=[str(foreign.id)])
        assert "attachment_ids" in refused.value.fields
        assert snapshot() == before
        foreign.refresh_from_db()
        assert foreign.ticket_id is None

    @pytest.mark.parametrize(
        ("fields", "bad_field"),
        [
            ({"subject": "  "}, "subject"),
            ({"description": ""}, "description"),
            ({"category": "sales"}, "category"),
            ({"priority": "urgent"}, "priority"),
            ({"subject": "x" * 201}, "subject"),
        ],
    )
    def test_invalid_input_names_the_field_and_writes_nothing(
        self, world: World, fields: dict, bad_field: str
    ) -> None:
        before = snapshot()
        with pytest.raises(ValidationFailed) as refused:
            world.open_ticket(**fields)
        assert bad_field in refused.value.fields
        assert snapshot() == before

    def test_customer_cannot_open_a_ticket_on_someone_elses_deployment(self, world: World) -> None:
        before = snapshot()
        with pytest.raises(NotFound):
            world.open_ticket(world.alice, deployment_id=world.bob_deployment.lease_id)
        assert snapshot() == before

    def test_provider_opens_on_its_own_lease_only(self, world: World) -> None:
        ticket = world.open_ticket(world.provider_a_member, deployment_id=world.alice_deployment.lease_id)
        assert ticket.customer_address == world.alice.address
        with pytest.raises(NotFound):
            world.open_ticket(world.provider_a_member, deployment_id=world.bob_deployment.lease_id)


class TestCommentAdd:
    def test_comment_event_outbox_and_hook(
        self, world: World, hooked: list[TicketEvent], django_capture_on_commit_callbacks
    ) -> None:
        ticket = world.open_ticket()
        hooked.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = services.comment_add(
                actor=world.provider_a_member, ticket_id=ticket.id, body="Looking into it."
            )
        (event,) = assert_new_events(ticket, 1, ["new_comment"])
        assert event.data["comment_id"] == str(result.comment.id)
        assert [e.seq for e in hooked] == [2]
        ticket.refresh_from_db()
        assert ticket.first_response_at == result.comment.created_at

    def test_internal_note_gets_no_public_seq(self, world: World) -> None:
        ticket = world.open_ticket()
        services.comment_add(
            actor=world.provider_a_member, ticket_id=ticket.id, body="Node is flaky", is_internal=True
        )
        services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Any news?")
        events = events_of(ticket)
        assert [(e.seq, e.public_seq, e.is_internal) for e in events] == [
            (1, 1, False),
            (2, None, True),
            (3, 2, False),
        ]
        ticket.refresh_from_db()
        assert (ticket.last_seq, ticket.last_public_seq) == (3, 2)
        assert ticket.first_response_at is None  # an internal note is not a response to the customer

    def test_customer_cannot_write_internal_notes(self, world: World) -> None:
        ticket = world.open_ticket()
        before = snapshot()
        with pytest.raises(Forbidden):
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body="psst", is_internal=True)
        assert snapshot() == before

    @pytest.mark.parametrize("status", ["waiting_customer", "resolved"])
    def test_customer_reply_moves_ticket_back_to_in_progress(self, world: World, status: str) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status=status)
        result = services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Still broken.")
        new = assert_new_events(ticket, 2, ["new_comment", "status_change"])
        assert new[1].data == {"from": status, "to": "in_progress", "reason": "customer_reply"}
        assert result.status_event == new[1]
        ticket.refresh_from_db()
        assert ticket.status == "in_progress"
        assert ticket.resolved_at is None

    def test_provider_reply_does_not_move_status(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(
            actor=world.provider_a_member, ticket_id=ticket.id, status="waiting_customer"
        )
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="Please send logs.")
        ticket.refresh_from_db()
        assert ticket.status == "waiting_customer"

    def test_closed_ticket_refuses_comments_and_writes_nothing(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="closed")
        before = snapshot()
        with pytest.raises(Conflict):
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body="hello?")
        assert snapshot() == before

    def test_invisible_ticket_is_not_found(self, world: World) -> None:
        ticket = world.open_ticket()
        for outsider in (world.bob, world.provider_b_member):
            with pytest.raises(NotFound):
                services.comment_add(actor=outsider, ticket_id=ticket.id, body="hi")
        with pytest.raises(NotFound):
            services.comment_add(actor=world.alice, ticket_id="not-a-uuid", body="hi")

    def test_blank_comment_is_refused(self, world: World) -> None:
        ticket = world.open_ticket()
        with pytest.raises(ValidationFailed) as refused:
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body="   ")
        assert "content" in refused.value.fields

    def test_attachment_on_internal_note_becomes_internal(self, world: World) -> None:
        ticket = world.open_ticket()
        file = upload(world.provider_a_member.key, "node.log")
        services.comment_add(
            actor=world.provider_a_member,
            ticket_id=ticket.id,
            body="see log",
            is_internal=True,
            attachment_ids=[file.id],
        )
        file.refresh_from_db()
        assert file.is_internal
        assert file.ticket_id == ticket.id
        event = events_of(ticket)[-1]
        assert (event.kind, event.is_internal, event.public_seq) == ("attachment_added", True, None)


class TestTransition:
    def test_resolve_sets_resolved_at_and_writes_event(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="resolved")
        (event,) = assert_new_events(ticket, 1, ["status_change"])
        assert event.data["from"] == "open"
        assert event.data["to"] == "resolved"
        ticket.refresh_from_db()
        assert ticket.resolved_at is not None

    def test_close_sets_closed_at(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="closed")
        ticket.refresh_from_db()
        assert ticket.closed_at is not None

    def test_illegal_move_is_a_conflict_listing_allowed_targets_and_writes_nothing(
        self, world: World
    ) -> None:
        ticket = world.open_ticket()
        before = snapshot()
        with pytest.raises(Conflict) as refused:
            services.ticket_transition(actor=world.alice, ticket_id=ticket.id, status="resolved")
        assert refused.value.extra["allowed"] == ["closed"]
        assert refused.value.extra["current"] == "open"
        assert snapshot() == before

    def test_same_status_is_a_no_op(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.id, status="open")
        assert len(events_of(ticket)) == 1

    def test_unknown_status_names_the_field(self, world: World) -> None:
        ticket = world.open_ticket()
        with pytest.raises(ValidationFailed) as refused:
            services.ticket_transition(actor=world.agent, ticket_id=ticket.id, status="reopened")
        assert "status" in refused.value.fields


class TestPriorityAndUpdate:
    def test_priority_change_moves_sla_and_writes_event(self, world: World) -> None:
        ticket = world.open_ticket(priority="low")
        old_due = ticket.sla_resolution_due
        services.ticket_priority_set(actor=world.provider_a_member, ticket_id=ticket.id, priority="critical")
        (event,) = assert_new_events(ticket, 1, ["priority_change"])
        assert event.data == {"from": "low", "to": "critical"}
        ticket.refresh_from_db()
        assert ticket.sla_resolution_due < old_due

    def test_update_is_all_or_nothing(self, world: World) -> None:
        ticket = world.open_ticket(priority="low")
        before = snapshot()
        with pytest.raises(Conflict):
            # The priority is fine, the status move is not: neither may stick.
            services.ticket_update(actor=world.alice, ticket_id=ticket.id, priority="high", status="resolved")
        assert snapshot() == before
        ticket.refresh_from_db()
        assert ticket.priority == "low"


class TestEscalateAndAssign:
    def test_escalation_hands_to_support_with_history(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason="No answer for a day")
        (event,) = assert_new_events(ticket, 1, ["assignment_change"])
        assert event.data["escalation"] is True
        assert event.data["to"] == {"kind": "support", "user_id": None, "name": None}
        ticket.refresh_from_db()
        assert ticket.assignee_kind == "support"
        assert ticket.escalated_at is not None
        assignment = Assignment.objects.get(ticket=ticket)
        assert (assignment.from_kind, assignment.to_kind, assignment.reason, assignment.is_escalation) == (
            "provider",
            "support",
            "No answer for a day",
            True,
        )
        # The provider still sees it after escalation.
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="We are on it")

    def test_escalating_twice_is_a_conflict(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason="slow")
        before = snapshot()
        with pytest.raises(Conflict):
            services.ticket_escalate(actor=world.provider_a_member, ticket_id=ticket.id, reason="again")
        assert snapshot() == before

    def test_escalation_needs_a_reason(self, world: World) -> None:
        ticket = world.open_ticket()
        with pytest.raises(ValidationFailed) as refused:
            services.ticket_escalate(actor=world.alice, ticket_id=ticket.id, reason=" ")
        assert "reason" in refused.value.fields

    def test_support_assigns_to_an_agent_and_to_a_provider_member(self, world: World) -> None:
        ticket = world.open_ticket()
        services.ticket_assign(
            actor=world.agent,
            ticket_id=ticket.id,
            assignee_kind="support",
            assignee_user_id=world.agent.user_id,
        )
        services.ticket_assign(
            actor=world.agent,
            ticket_id=ticket.id,
            assignee_kind="provider",
            assignee_user_id=world.provider_a_member.user_id,
            reason="Back to the provider",
        )
        assert_new_events(ticket, 1, ["assignment_change", "assignment_change"])
        ticket.refresh_from_db()
        assert (ticket.assignee_kind, ticket.assigned_to_id) == ("provider", world.provider_a_member.user_id)
        assert Assignment.objects.filter(ticket=ticket).count() == 2

    def test_only_support_assigns(self, world: World) -> None:
        ticket = world.open_ticket()
        before = snapshot()
        with pytest.raises(Forbidden):
            services.ticket_assign(
                actor=world.provider_a_member, ticket_id=ticket.id, assignee_kind="support"
            )
        assert snapshot() == before

    def test_cannot_assign_to_another_providers_member_or_a_non_agent(self, world: World) -> None:
        ticket = world.open_ticket()
        with pytest.raises(ValidationFailed):
            services.ticket_assign(
                actor=world.agent,
                ticket_id=ticket.id,
                assignee_kind="provider",
                assignee_user_id=world.provider_b_member.user_id,
            )
        with pytest.raises(ValidationFailed):
            services.ticket_assign(
                actor=world.agent,
                ticket_id=ticket.id,
                assignee_kind="support",
                assignee_user_id=UserFactory().pk,
            )


class TestDeploymentLinks:
    def test_link_and_unlink_write_events(self, world: World) -> None:
        ticket = world.open_ticket()
        link = services.deployment_link(
            actor=world.alice, ticket_id=ticket.id, deployment_id=world.alice_second_deployment.lease_id
        )
        again = services.deployment_link(
            actor=world.alice, ticket_id=ticket.id, deployment_id=world.alice_second_deployment.lease_id
        )
        assert again.pk == link.pk
        services.deployment_unlink(
            actor=world.alice, ticket_id=ticket.id, deployment_id=world.alice_second_deployment.lease_id
        )
        assert_new_events(ticket, 1, ["deployment_linked", "deployment_unlinked"])
        assert not DeploymentLink.objects.exists()

    def test_cannot_link_another_customers_deployment(self, world: World) -> None:
        ticket = world.open_ticket()
        with pytest.raises(NotFound):
            services.deployment_link(
                actor=world.alice, ticket_id=ticket.id, deployment_id=world.bob_deployment.lease_id
            )
        with pytest.raises(ValidationFailed):
            # Support sees Bob's deployment, but it is not Alice's: linking it would leak it to her.
            services.deployment_link(
                actor=world.agent, ticket_id=ticket.id, deployment_id=world.bob_deployment.lease_id
            )

    def test_unlinking_what_is_not_linked_is_not_found(self, world: World) -> None:
        ticket = world.open_ticket()
        other = DeploymentFactory(owner_address=world.alice.address, provider=world.provider_a)
        with pytest.raises(NotFound):
            services.deployment_unlink(actor=world.alice, ticket_id=ticket.id, deployment_id=other.lease_id)


class TestAttachmentAttach:
    def test_attach_outside_a_comment(self, world: World) -> None:
        ticket = world.open_ticket()
        file = upload(world.alice.key)
        (attached,) = services.attachment_attach(
            actor=world.alice, ticket_id=ticket.id, attachment_ids=[file.id]
        )
        assert attached.ticket_id == ticket.id
        assert attached.comment_id is None
        (event,) = assert_new_events(ticket, 1, ["attachment_added"])
        assert event.data["sha256"] == file.sha256

    def test_an_attached_file_cannot_be_attached_again(self, world: World) -> None:
        ticket = world.open_ticket()
        other = world.open_ticket()
        file = upload(world.alice.key)
        services.attachment_attach(actor=world.alice, ticket_id=ticket.id, attachment_ids=[file.id])
        with pytest.raises(ValidationFailed):
            services.attachment_attach(actor=world.alice, ticket_id=other.id, attachment_ids=[file.id])

    def test_customer_cannot_attach_internal_files(self, world: World) -> None:
        ticket = world.open_ticket()
        file = upload(world.alice.key)
        with pytest.raises(Forbidden):
            services.attachment_attach(
                actor=world.alice, ticket_id=ticket.id, attachment_ids=[file.id], is_internal=True
            )
