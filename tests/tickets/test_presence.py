"""Collision detection over the ticket socket: provider and support viewers of a ticket learn who else has
it open (joined, still here, left); customers neither see nor announce presence."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import World
from tests.tickets.test_realtime import connect, expect, open_ticket, session_headers, updates_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_staff_viewers_see_each_other_and_customers_see_nothing(world: World) -> None:
    ticket = await open_ticket(world)
    path = updates_path(ticket)
    customer, _, _ = await connect(path, await sync_to_async(session_headers)(world.alice.user_id))
    provider, _, _ = await connect(
        path, await sync_to_async(session_headers)(world.provider_a_member.user_id)
    )
    agent, _, _ = await connect(path, await sync_to_async(session_headers)(world.agent.user_id))

    (joined,) = await expect(provider, 1)
    assert joined["type"] == "presence"
    assert joined["data"]["state"] == "joined"
    assert joined["data"]["user"] == "agent"
    assert joined["data"]["user_type"] == "support"
    assert joined["seq"] is None
    # The newcomer learns of the others when they answer with "here" (as the page's script does).
    await provider.send_json_to({"type": "presence"})
    (here,) = await expect(agent, 1)
    assert (here["data"]["state"], here["data"]["user"]) == ("here", "pa-member (Provider A)")
    await provider.send_json_to({"type": "presence"})  # within the interval: dropped
    assert await agent.receive_nothing(timeout=0.5)

    await agent.disconnect()
    (left,) = await expect(provider, 1)
    assert (left["data"]["state"], left["data"]["user"]) == ("left", "agent")

    # The customer was told nothing of it (no presence frame; under load a late frame of the ticket's own
    # events may still arrive, which the customer may read), and may not announce itself.
    while not await customer.receive_nothing(timeout=0.3):
        frame = await customer.receive_json_from(timeout=2)
        assert frame["type"] != "presence", frame
        assert frame["ticket_id"] == str(ticket.id), frame
    await customer.send_json_to({"type": "presence"})
    error = await customer.receive_json_from(timeout=2)
    assert error["type"] == "error"
    assert await provider.receive_nothing(timeout=0.3)
    await customer.disconnect()
    await provider.disconnect()
