"""The ticket list and detail answer, byte for byte, what DRF's serializers and JSONRenderer wrote from the
ORM's rows before the hot path was taken near the floor (kept statements, rows rendered straight to
dicts, orjson), for every party."""

from __future__ import annotations

import datetime

import pytest
from rest_framework.renderers import JSONRenderer

from core.parties import Party
from tests.conftest import Apis, FrozenClock, World
from tickets import selectors, services
from tickets.api import serializers as io
from tickets.api.pagination import paginate
from tickets.models import Ticket
from tickets.presenter import audience_of

pytestmark = pytest.mark.django_db

METADATA = {
    "region": "eu-west \u2028 line\u2029 paragraph",
    "note": 'é 😀 "quoted" \\ \x01',
    "ratio": 1e-05,
    "big": 10**15,
    "huge": 10**30,  # beyond 64 bits: orjson would read it as a float (core.statements reads it with json)
    "nested": {"list": [1.5, None, True, "x"]},
}


# No float: orjson alone reads a document unless a number in it may be beyond its 64-bit integers (19
# digits or more: the first) or a float; text that looks like numbers (the second) is looked at, not refused.
WHOLE_NUMBERS = [
    {"beyond": -(2**63) - 1, "below": -(2**63)},  # 19 digits: orjson reads the first as a float
    {
        "largest": 2**64 - 1,
        "below": -(2**63),
        "beyond": -(2**63) - 1,
        "huge": 10**30,
        "nested": {"list": [2**63, None, True, "x", -5, 0, 10**17]},
    },
    {
        "region": "v1.2 at 10.0.0.1, 2026-12-06T10:00:00.5Z, 1e5 in text",
        "count": 10**17,
        "negative": -(10**17),
    },
]


# 0.5 is written by orjson; 1e-05 (orjson: 0.00001) sends the response through DRF's encoder; None: no float.
@pytest.fixture(params=[0.5, 1e-05, None])
def thread(world: World, frozen_clock: FrozenClock, request: pytest.FixtureRequest) -> World:
    for index, actor in enumerate((world.alice, world.bob, world.alice, world.bob)):
        ratio = request.param
        metadata = WHOLE_NUMBERS[index % 3] if ratio is None else {**METADATA, "ratio": ratio}
        ticket = world.open_ticket(actor, metadata=metadata, priority="critical")
        frozen_clock.advance(datetime.timedelta(minutes=7))
        member = world.provider_a_member if actor == world.alice else world.provider_b_member
        services.comment_add(actor=member, ticket_id=ticket.id, body="A note", is_internal=True)
        services.comment_add(actor=actor, ticket_id=ticket.id, body="More detail \u2028 here")
    frozen_clock.advance(datetime.timedelta(minutes=90))  # past a first-response target: breached, negative
    return world


def old_list(party: Party) -> bytes:
    page = paginate(
        selectors.ticket_list(party, selectors.TicketFilters()), ordering="-created_at", limit=50, cursor=None
    )
    return JSONRenderer().render(io.TicketOutput(page.items, many=True, context={"now": None}).data)


def old_detail(party: Party, ticket: Ticket) -> bytes:
    detail = selectors.ticket_detail(party, ticket.id)
    return JSONRenderer().render(io.TicketDetailOutput(detail, context={"audience": audience_of(party)}).data)


def test_every_party_gets_the_bytes_drf_wrote(thread: World, apis: Apis) -> None:
    world = thread
    callers = [
        (apis.alice, world.alice),
        (apis.bob, world.bob),
        (apis.provider_a, world.provider_a_member),
        (apis.provider_b_member, world.provider_b_member),
        (apis.agent, world.agent),
    ]
    for api, party in callers:
        listed = api.get("/api/v1/tickets")
        assert listed.status_code == 200
        assert listed.content == old_list(party)
        assert len(listed.json()) == (4 if party == world.agent else 2)
        for ticket in Ticket.objects.all():
            shown = api.get(f"/api/v1/tickets/{ticket.id}")
            if shown.status_code == 404:
                continue
            assert shown.content == old_detail(party, ticket)
