"""Who reads an escalation reason (issue 29): a provider's or support's reason is internal (provider and
support only); the customer reads the optional `customer_message` instead. A customer's own reason is
public. The rule holds on every surface: the REST API, sockets, emails, webhooks and the chain envelope the
customer can open; and events written before the rule keep the reason they published (the ledger agrees)."""

from __future__ import annotations

import base64
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from chain import envelopes, messages, shredding
from tests.notifications.conftest import fast_webhooks, receiver, smtp  # noqa: F401 - fixtures
from tests.notifications.test_email import ALICE, MEMBER_A, flush, text_of
from tests.notifications.test_webhook_delivery import deliver, register
from tests.tickets.test_realtime import connect, session_headers, updates_path
from tickets import services
from tickets.models import TicketEvent
from tickets.presenter import SHAPES, Audience

REASON = "Customer DB corruption suspected; need VirtEngine help with the lease."
pytestmark = pytest.mark.django_db

MESSAGE = "We asked VirtEngine support to look at your lease with us."


def escalation_of(api, ticket) -> dict:
    response = api.get(f"/api/v1/tickets/{ticket.pk}/events")
    assert response.status_code == 200, response.content
    (event,) = [e for e in response.json() if e["type"] == "assignment_change"]
    return event


def test_api_provider_reason_is_internal_and_the_customer_reads_the_message(world, apis) -> None:
    ticket = world.open_ticket()
    response = apis.provider_a.post(
        f"/api/v1/tickets/{ticket.pk}/escalate", {"reason": REASON, "customer_message": MESSAGE}
    )
    assert response.status_code == 200, response.content
    customer_view = escalation_of(apis.alice, ticket)
    assert customer_view["data"]["reason"] == ""
    assert customer_view["data"]["customer_message"] == MESSAGE
    assert "reason_internal" not in customer_view["data"]
    detail = apis.alice.get(f"/api/v1/tickets/{ticket.pk}").content.decode()
    assert REASON not in detail
    assert MESSAGE in detail
    for staff in (apis.provider_a, apis.agent):
        data = escalation_of(staff, ticket)["data"]
        assert (data["reason"], data["reason_internal"], data["customer_message"]) == (REASON, True, MESSAGE)


def test_no_message_means_the_customer_reads_only_that_support_stepped_in(world, apis) -> None:
    ticket = world.open_ticket()
    assert (
        apis.provider_a.post(f"/api/v1/tickets/{ticket.pk}/escalate", {"reason": REASON}).status_code == 200
    )
    data = escalation_of(apis.alice, ticket)["data"]
    assert (data["reason"], data["customer_message"], data["escalation"]) == ("", None, True)
    assert data["to"] == {"kind": "support", "name": None}


def test_a_customers_reason_is_public_and_a_customer_sends_no_separate_message(world, apis) -> None:
    ticket = world.open_ticket()
    refused = apis.alice.post(
        f"/api/v1/tickets/{ticket.pk}/escalate", {"reason": "Slow", "customer_message": "to myself"}
    )
    assert refused.status_code == 400
    assert "customer_message" in refused.json()["fields"]
    assert apis.alice.post(f"/api/v1/tickets/{ticket.pk}/escalate", {"reason": "Slow"}).status_code == 200
    assert escalation_of(apis.alice, ticket)["data"]["reason"] == "Slow"
    assert escalation_of(apis.provider_a, ticket)["data"]["reason_internal"] is False


def test_supports_reassignment_reason_is_internal_too(world, apis) -> None:
    ticket = world.open_ticket()
    response = apis.agent.post(
        f"/api/v1/tickets/{ticket.pk}/assign",
        {
            "assignee_type": "support",
            "reason": "Billing dispute, legal involved",
            "customer_message": "Ours now",
        },
    )
    assert response.status_code == 200, response.content
    data = escalation_of(apis.alice, ticket)["data"]
    assert (data["reason"], data["customer_message"]) == ("", "Ours now")
    assert escalation_of(apis.agent, ticket)["data"]["reason"] == "Billing dispute, legal involved"


def test_an_event_from_before_the_rule_keeps_its_published_reason(world, apis) -> None:
    """Old events lack `reason_internal`: their reason was published and anchored, and stays as it was."""
    ticket = world.open_ticket()
    services.ticket_escalate(actor=world.provider_a_member, ticket_id=ticket.pk, reason="Published long ago")
    event = TicketEvent.objects.get(ticket=ticket, kind="assignment_change")
    event.data = {k: v for k, v in event.data.items() if k not in {"reason_internal", "customer_message"}}
    TicketEvent.objects.filter(pk=event.pk).update(data=event.data)
    assert escalation_of(apis.alice, ticket)["data"]["reason"] == "Published long ago"


def test_chain_envelope_the_customer_opens_holds_the_message_not_the_reason(keyed_world) -> None:
    ticket = keyed_world.open_ticket()
    services.ticket_escalate(
        actor=keyed_world.provider_a_member, ticket_id=ticket.pk, reason=REASON, customer_message=MESSAGE
    )
    ids = TicketEvent.objects.filter(ticket=ticket, kind="assignment_change").values_list("pk", flat=True)
    (sealed,) = messages.seal_messages(messages.events_for_anchoring(ids))
    envelope = base64.b64decode(sealed.message["payload"]["envelope"])
    assert "customer" in envelopes.recipients_of(envelope)
    shred_key = shredding.stored_shred_keys([sealed.event_id])[sealed.event_id]
    document = json.loads(
        envelopes.open_envelope(envelope, keyed_world.keys.customer[0], shred_key=shred_key)
    )
    assert REASON not in json.dumps(document)
    assert document["data"]["customer_message"] == MESSAGE
    assert document["content"]["reason"] == ""
    assert REASON not in json.dumps(sealed.message)


def test_email_customer_never_reads_the_reason_the_provider_member_does(world, smtp) -> None:  # noqa: F811
    ticket = world.open_ticket()
    flush()
    smtp.messages.clear()
    services.ticket_escalate(actor=world.agent, ticket_id=ticket.pk, reason=REASON, customer_message=MESSAGE)
    services.ticket_transition(actor=world.agent, ticket_id=ticket.pk, status="waiting_customer")
    flush()
    (to_alice,) = smtp.to(ALICE)
    assert REASON not in to_alice.as_string()
    assert "Waiting for your reply" in text_of(to_alice) or "waiting" in text_of(to_alice).lower()
    (to_member,) = smtp.to(MEMBER_A)  # the provider is told of the escalation, with support's reason
    assert REASON in text_of(to_member)


def test_webhooks_go_to_providers_only_with_the_reason_marked_internal(
    world,
    apis,
    receiver,  # noqa: F811
    fast_webhooks,  # noqa: F811
) -> None:
    register(apis.provider_a, receiver, event_types=["assignment_change"])
    assert apis.alice.post(
        "/api/v1/webhooks", {"url": receiver.url(), "event_types": ["assignment_change"]}
    ).status_code in {403, 404}
    ticket = world.open_ticket()
    services.ticket_escalate(
        actor=world.provider_a_member, ticket_id=ticket.pk, reason=REASON, customer_message=MESSAGE
    )
    deliver()
    (request,) = receiver.requests
    assert request.payload["data"]["reason_internal"] is True
    assert request.payload["data"]["customer_message"] == MESSAGE
    assert set(request.payload["data"]) == set(SHAPES["assignment_change"].keys_for(Audience.STAFF))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sockets_the_customer_gets_the_message_the_provider_the_reason(world) -> None:
    try:
        ticket = await sync_to_async(world.open_ticket)()
        customer, admitted, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.alice.user_id)
        )
        provider, _, _ = await connect(
            updates_path(ticket), await sync_to_async(session_headers)(world.provider_a_member.user_id)
        )
        assert admitted
        await sync_to_async(services.ticket_escalate)(
            actor=world.provider_a_member, ticket_id=ticket.pk, reason=REASON, customer_message=MESSAGE
        )

        async def escalation(socket) -> dict:
            while True:
                frame = await socket.receive_json_from(timeout=5)
                if frame["type"] == "assignment_change":
                    return frame

        to_customer, to_provider = await escalation(customer), await escalation(provider)
        assert REASON not in json.dumps(to_customer)
        assert to_customer["data"]["customer_message"] == MESSAGE
        assert to_provider["data"]["reason"] == REASON
        await customer.disconnect()
        await provider.disconnect()
    finally:
        await sync_to_async(connections.close_all)()
