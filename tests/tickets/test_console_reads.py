"""The console work page's reads besides the API's, kept statements (core.statements), the work page's own
lists in one (`work_page_reads`): the same answers as the ORM's reads and the selectors they stand for, and
for the console's access the same as `user.has_perm`."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Case, F, Value, When
from django.test import Client
from django.utils import timezone

from chain.models import OutboxEntry
from chain.selectors import event_receipts
from core.parties import Party
from providers.models import CustomerIdentity, Deployment
from providers.selectors import deployments_visible_to, party_for_user, support_access
from providers.services import support_group
from tests import factories
from tests.conftest import World
from tickets import selectors, services
from tickets.models import SUPPORT_QUEUE, Ticket
from tickets.models.macros import Macro
from tickets.selectors.people import people_by_address
from tickets.selectors.sla import sla_at_risk, sla_breached
from tickets.selectors.visibility import tickets_visible_to

pytestmark = pytest.mark.django_db

WORK = "tickets.work_ticket"


def _work_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="tickets", codename="work_ticket")


def _fresh(user_id: int | None):  # a user without Django's permission cache
    return get_user_model().objects.get(pk=user_id)


class TestSupportAccess:
    def agrees_with_django(self, user) -> None:
        access = support_access(user, WORK)
        party = party_for_user(_fresh(user.pk))
        assert access.party == (party if party is not None and party.is_support else None)
        assert access.permitted == (access.party is not None and _fresh(user.pk).has_perm(WORK))

    def test_for_every_kind_of_user(self, world: World) -> None:
        user_model = get_user_model()
        agent = _fresh(world.agent.user_id)
        root = user_model.objects.create_superuser("root", "root@example.test", "a-long-root-password")
        staff_only = user_model.objects.create_user("staff-only", is_staff=True)
        staff_only.user_permissions.add(_work_permission())  # the permission alone does not make support
        retired = factories.support("retired").user_id
        user_model.objects.filter(pk=retired).update(is_active=False)
        users = [
            agent,
            root,
            staff_only,
            _fresh(retired),
            _fresh(world.alice.user_id),
            _fresh(world.provider_a_member.user_id),
        ]
        for user in users:
            self.agrees_with_django(user)
        assert support_access(agent, WORK).permitted
        assert support_access(root, WORK).party is not None
        assert support_access(staff_only, WORK).party is None

    def test_the_permission_from_the_group_or_the_user(self, world: World) -> None:
        agent = _fresh(world.agent.user_id)
        support_group().permissions.remove(_work_permission())
        self.agrees_with_django(agent)
        assert support_access(agent, WORK).party is not None
        assert not support_access(agent, WORK).permitted
        agent.user_permissions.add(_work_permission())
        self.agrees_with_django(agent)
        assert support_access(agent, WORK).permitted

    def test_an_agent_without_it_looks_but_does_not_work(self, world: World) -> None:
        ticket = world.open_ticket()
        support_group().permissions.remove(_work_permission())
        client = Client()
        client.force_login(_fresh(world.agent.user_id))
        page = client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
        assert page.status_code == 200
        assert "You may look but not change tickets." in page.content.decode()
        assert 'name="content"' not in page.content.decode()
        assert client.post(f"/admin/tickets/ticket/{ticket.pk}/act/take/").status_code == 403
        ticket.refresh_from_db()
        assert ticket.assigned_to_id is None


def reads(world: World, ticket: Ticket) -> selectors.WorkPageReads:
    return selectors.work_page_reads(world.agent, selectors.ticket_detail(world.agent, ticket.pk))


def test_the_customer_is_as_people_by_address(world: World) -> None:
    bob = get_user_model().objects.get(pk=world.bob.user_id)
    bob.first_name, bob.last_name, bob.email = "Bob", "Builder", "bob@example.test"
    bob.save()
    CustomerIdentity.objects.filter(address=world.alice.address).update(email="alice@example.test")
    wallet_only = factories.make_address()
    CustomerIdentity.objects.create(address=wallet_only, email="wallet@example.test")
    tickets = [world.open_ticket(world.alice), world.open_ticket(world.bob)]
    for _ in range(2):  # learnt, then kept
        for ticket in tickets:
            assert (
                reads(world, ticket).customer
                == people_by_address([ticket.customer_address])[ticket.customer_address]
            )
    assert reads(world, tickets[1]).customer.name == "Bob Builder"
    for address in (wallet_only, factories.make_address()):  # an identity without a user; none at all
        Ticket.objects.filter(pk=tickets[0].pk).update(customer_address=address)
        assert reads(world, tickets[0]).customer == people_by_address([address])[address]


def test_the_agents_and_macros_are_the_selectors(world: World) -> None:
    ticket = world.open_ticket()
    Macro.objects.create(name="Zeta", body="Hello")
    Macro.objects.create(name="Alpha", body="Note", is_internal=True)
    Macro.objects.create(name="Provider's", body="Hi", provider=world.provider_a)
    factories.support("another")
    for _ in range(2):
        found = reads(world, ticket)
        assert found.agents == selectors.support_agents()
        assert found.macros == selectors.macro_names(world.agent)
    assert [name for _, name in found.agents] == ["agent", "another"]
    assert [m.name for m in found.macros] == ["Alpha", "Zeta"]


def test_linkable_deployments_are_the_customers_others_the_party_sees(world: World) -> None:
    ticket = world.open_ticket()
    third = factories.DeploymentFactory(owner_address=world.alice.address, provider=world.provider_a)

    def orm(party: Party, detail: selectors.TicketDetail) -> list[tuple[str, str]]:
        linked = {link.deployment_id for link in detail.links}
        candidates = (
            deployments_visible_to(party)
            .filter(owner_address=ticket.customer_address)
            .exclude(lease_id=world.alice_deployment.lease_id)
            .order_by("-created_at")[:100]
        )
        return [(d.lease_id, d.name) for d in candidates if d.pk not in linked]

    def kept(party: Party) -> list[tuple[str, str]]:
        detail = selectors.ticket_detail(world.agent, ticket.pk)  # the party's own deployments
        found = [(d.lease_id, d.name) for d in selectors.linkable_deployments(party, detail)]
        assert found == orm(party, detail)
        if party is world.agent:
            assert selectors.work_page_reads(party, detail).linkable == selectors.linkable_deployments(
                party, detail
            )
        return found

    parties = (world.agent, world.alice, world.provider_a_member, world.provider_b_member)
    for _ in range(2):
        assert {lease for lease, _ in kept(world.agent)} == {
            world.alice_second_deployment.lease_id,
            third.lease_id,
        }
        assert [lease for lease, _ in kept(world.provider_a_member)] == [third.lease_id]
        assert [lease for lease, _ in kept(world.provider_b_member)] == [
            world.alice_second_deployment.lease_id
        ]
        for party in parties:
            kept(party)
    services.deployment_link(actor=world.agent, ticket_id=ticket.pk, deployment_id=third.lease_id)
    assert [lease for lease, _ in kept(world.agent)] == [world.alice_second_deployment.lease_id]
    assert Deployment.objects.filter(owner_address=world.alice.address).count() == 3


def test_the_neighbours_are_the_open_tickets_in_supports_hands_around_one(world: World) -> None:
    tickets = [world.open_ticket(subject=f"Ticket {n}") for n in range(5)]
    for ticket in tickets[:4]:
        services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason="x")
    services.ticket_transition(actor=world.agent, ticket_id=tickets[1].pk, status="resolved")
    services.ticket_transition(actor=world.agent, ticket_id=tickets[1].pk, status="closed")

    def orm(number: int) -> tuple[object, object]:
        queue = tickets_visible_to(world.agent).filter(SUPPORT_QUEUE)
        before = queue.filter(number__lt=number).order_by("-number").values_list("pk", flat=True).first()
        after = queue.filter(number__gt=number).order_by("number").values_list("pk", flat=True).first()
        return before, after

    def neighbours(ticket: Ticket) -> tuple[object, object]:
        return reads(world, ticket).neighbours

    for _ in range(2):
        for ticket in tickets:
            assert neighbours(ticket) == orm(ticket.number)
    # The second is closed, the fifth was never escalated: the first, third and fourth are the queue.
    assert neighbours(tickets[2]) == (tickets[0].pk, tickets[3].pk)
    assert neighbours(tickets[0]) == (None, tickets[2].pk)
    assert neighbours(tickets[3]) == (tickets[2].pk, None)
    assert neighbours(tickets[1]) == (tickets[0].pk, tickets[2].pk)  # a closed one's, for its page


def test_macro_names_are_the_usable_macros(world: World) -> None:
    Macro.objects.create(name="Zeta", body="Hello")
    Macro.objects.create(name="Alpha", body="Note", is_internal=True)
    Macro.objects.create(name="Provider's", body="Hi", provider=world.provider_a)
    for _ in range(2):
        for party in (world.agent, world.provider_a_member, world.provider_b_member, world.alice):
            assert [(m.id, m.name, m.is_internal) for m in selectors.macro_names(party)] == [
                (m.pk, m.name, m.is_internal) for m in selectors.macros_usable_by(party)
            ]
    assert [m.name for m in selectors.macro_names(world.agent)] == ["Alpha", "Zeta"]
    assert [m.name for m in selectors.macro_names(world.provider_a_member)] == ["Provider's"]


def test_receipts_are_the_outbox_rows_of_the_ticket(world: World) -> None:
    ticket = world.open_ticket()
    other = world.open_ticket()
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="More")
    rows = OutboxEntry.objects.filter(ticket_id=ticket.pk)
    for ticket_id in (ticket.pk, str(ticket.pk)):
        receipts = event_receipts(ticket_id)
        assert set(receipts) == {row.seq for row in rows} != set()
        assert all(receipts[row.seq].state == row.state for row in rows)
    others = OutboxEntry.objects.filter(ticket=other).values_list("seq", flat=True)
    assert set(event_receipts(other.pk)) == set(others)
    assert Ticket.objects.count() == 2


def test_the_queue_is_the_orms_for_every_filter(world: World) -> None:
    """The queue is a kept statement per set of filters: the same tickets, in the same order, as the ORM
    reads them with the same rules."""
    tickets = [world.open_ticket(priority=priority) for priority in ("low", "high", "critical", "high")]
    for ticket in tickets[:3]:
        services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason="x")
    services.ticket_assign(
        actor=world.agent,
        ticket_id=tickets[1].pk,
        assignee_kind="support",
        assignee_user_id=world.agent.user_id,
        reason="Taken",
    )
    now = timezone.now()

    def orm(filters: selectors.QueueFilters) -> list[object]:
        queue = tickets_visible_to(world.agent).filter(SUPPORT_QUEUE)
        queue = queue.annotate(
            urgency=Case(
                When(sla_breached(now), then=Value(0)),
                When(sla_at_risk(now), then=Value(1)),
                default=Value(2),
            )
        )
        if filters.unassigned:
            queue = queue.filter(assigned_to__isnull=True)
        if filters.mine:
            queue = queue.filter(assigned_to_id=filters.agent_id)
        if filters.priority:
            queue = queue.filter(priority=filters.priority)
        if filters.provider_id is not None:
            queue = queue.filter(provider_id=filters.provider_id)
        ordered = queue.order_by("urgency", F("sla_next_due").asc(nulls_last=True), "created_at")
        return list(ordered.values_list("pk", flat=True))

    agent = world.agent.user_id
    for _ in range(2):  # learnt, then kept
        for filters in (
            selectors.QueueFilters(),
            selectors.QueueFilters(unassigned=True),
            selectors.QueueFilters(mine=True, agent_id=agent),
            selectors.QueueFilters(priority="high", provider_id=world.provider_a.pk),
            selectors.QueueFilters(priority="low"),
        ):
            kept = [row.id for row in selectors.escalation_queue(world.agent, filters, now=now)]
            assert kept == orm(filters)
    assert [
        row.id for row in selectors.escalation_queue(world.agent, selectors.QueueFilters(), now=now)
    ] != []
    assert [
        row.id
        for row in selectors.escalation_queue(
            world.agent, selectors.QueueFilters(mine=True, agent_id=agent), now=now
        )
    ] == [tickets[1].pk]
