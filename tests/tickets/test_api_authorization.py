"""Authorisation matrix: two customers, two providers (machine credential and member session), support and
an anonymous caller, against every endpoint. Nobody reads or changes what their role may not; invisible
tickets are 404; internal notes never reach a customer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from providers.models import Deployment
from providers.selectors import provider_party
from tests.conftest import Apis, World
from tests.factories import DeploymentFactory
from tickets import services, tasks
from tickets.models import Attachment, Ticket

pytestmark = pytest.mark.django_db

PARTIES = [
    "alice",
    "bob",
    "provider_a",
    "provider_b",
    "provider_a_member",
    "provider_b_member",
    "agent",
    "anonymous",
]
# Alice's ticket is on a deployment leased to provider A.
OWNERS = {"alice", "provider_a", "provider_a_member", "agent"}


@dataclass
class Case:
    name: str
    method: str
    path: Callable[[Ticket, World], str]
    body: Callable[[Ticket, World], Any] = lambda ticket, world: None
    allowed: dict[str, int] | None = None  # party → status; everyone else gets `denied`
    denied: int = 404
    prepare: Callable[[Ticket, World], None] = lambda ticket, world: None


def expected(case: Case, party: str) -> int:
    if party == "anonymous":
        return 401
    assert case.allowed is not None
    return case.allowed.get(party, case.denied)


def every(status: int, parties: set[str] = OWNERS) -> dict[str, int]:
    return dict.fromkeys(parties, status)


def _link_prepare(ticket: Ticket, world: World) -> None:
    services.deployment_link(actor=world.agent, ticket_id=ticket.id, deployment_id=_third(world).lease_id)


def _third(world: World):
    third = Deployment.objects.filter(
        owner_address=world.alice.address, provider=world.provider_a, name="third"
    ).first()
    return third or DeploymentFactory(
        owner_address=world.alice.address, provider=world.provider_a, name="third"
    )


T = "/api/v1/tickets"
CASES = [
    Case("detail", "GET", lambda t, w: f"{T}/{t.id}", allowed=every(200)),
    Case("comments list", "GET", lambda t, w: f"{T}/{t.id}/comments", allowed=every(200)),
    Case("events", "GET", lambda t, w: f"{T}/{t.id}/events", allowed=every(200)),
    Case(
        "patch priority",
        "PATCH",
        lambda t, w: f"{T}/{t.id}",
        lambda t, w: {"priority": "critical"},
        every(200),
    ),
    Case(
        "patch status to in_progress",
        "PATCH",
        lambda t, w: f"{T}/{t.id}",
        lambda t, w: {"status": "in_progress"},
        {"alice": 409, "provider_a": 200, "provider_a_member": 200, "agent": 200},
    ),
    Case(
        "close",
        "PATCH",
        lambda t, w: f"{T}/{t.id}",
        lambda t, w: {"status": "closed"},
        {"alice": 200, "provider_a": 409, "provider_a_member": 409, "agent": 200},
    ),
    Case("comment", "POST", lambda t, w: f"{T}/{t.id}/comments", lambda t, w: {"content": "hi"}, every(201)),
    Case(
        "internal note",
        "POST",
        lambda t, w: f"{T}/{t.id}/comments",
        lambda t, w: {"content": "psst", "is_internal": True},
        {"alice": 403, "provider_a": 201, "provider_a_member": 201, "agent": 201},
    ),
    Case(
        "escalate", "POST", lambda t, w: f"{T}/{t.id}/escalate", lambda t, w: {"reason": "slow"}, every(200)
    ),
    Case(
        "assign",
        "POST",
        lambda t, w: f"{T}/{t.id}/assign",
        lambda t, w: {"assignee_type": "support"},
        {"alice": 403, "provider_a": 403, "provider_a_member": 403, "agent": 200},
    ),
    Case(
        "link",
        "POST",
        lambda t, w: f"{T}/{t.id}/links",
        lambda t, w: {"deployment_id": _third(w).lease_id},
        every(201),
    ),
    Case(
        "unlink",
        "DELETE",
        lambda t, w: f"{T}/{t.id}/links?deployment_id={_third(w).lease_id}",
        allowed=every(204),
        prepare=_link_prepare,
    ),
    Case("logs", "POST", lambda t, w: f"{T}/{t.id}/logs", allowed=every(202)),
    Case(
        "create on alice's deployment",
        "POST",
        lambda t, w: T,
        lambda t, w: {"deployment_id": w.alice_deployment.lease_id, "subject": "s", "description": "d"},
        every(201),
    ),
]


@pytest.fixture
def ticket(world: World) -> Ticket:
    ticket = world.open_ticket()
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.id, body="SECRET NOTE", is_internal=True
    )
    return ticket


@pytest.mark.parametrize("party", PARTIES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_matrix(
    world: World, apis: Apis, ticket: Ticket, case: Case, party: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", lambda *args: None)
    case.prepare(ticket, world)
    before = (ticket.events.count(), Ticket.objects.count())
    api = apis.all()[party]
    path = case.path(ticket, world)
    if case.method == "GET":
        response = api.request("GET", path)
    elif case.method == "DELETE":
        path, _, query = path.partition("?")
        response = api.request(
            "DELETE", path, params=dict(p.split("=") for p in query.split("&")) if query else None
        )
    else:
        response = api.request(case.method, path, json_body=case.body(ticket, world) or {})
    want = expected(case, party)
    assert response.status_code == want, (case.name, party, response.content)
    if want >= 400:
        assert (ticket.events.count(), Ticket.objects.count()) == before, (
            "a refused request changed something"
        )
        assert "error" in response.json()
    body = response.content.decode()
    if party in {"alice", "bob"}:
        assert "SECRET NOTE" not in body


@pytest.mark.parametrize("party", PARTIES)
def test_lists_show_exactly_the_visible_tickets(world: World, apis: Apis, ticket: Ticket, party: str) -> None:
    bobs = world.open_ticket(world.bob)
    response = apis.all()[party].get(T)
    if party == "anonymous":
        assert response.status_code == 401
        return
    ids = {t["id"] for t in response.json()}
    visible = {
        "alice": {str(ticket.id)},
        "bob": {str(bobs.id)},
        "provider_a": {str(ticket.id)},
        "provider_a_member": {str(ticket.id)},
        "provider_b": {str(bobs.id)},
        "provider_b_member": {str(bobs.id)},
        "agent": {str(ticket.id), str(bobs.id)},
    }[party]
    assert ids == visible


def test_customers_never_see_internal_notes_anywhere(world: World, apis: Apis, ticket: Ticket) -> None:
    services.comment_add(actor=world.agent, ticket_id=ticket.id, body="SUPPORT ONLY", is_internal=True)
    services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body="public answer")
    for path in (f"{T}/{ticket.id}", f"{T}/{ticket.id}/comments", f"{T}/{ticket.id}/events", T):
        body = apis.alice.get(path).content.decode()
        assert "SECRET NOTE" not in body
        assert "SUPPORT ONLY" not in body
        provider_body = apis.provider_a.get(path).content.decode()
        if path != T:
            assert "public answer" in body or path.endswith("events")
            assert "SECRET NOTE" in provider_body or path.endswith("events")
    events = apis.alice.get(f"{T}/{ticket.id}/events").json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gaps that hint at notes
    assert all(e["type"] != "new_comment" or not e["data"]["is_internal"] for e in events)


def test_attachment_downloads_follow_ticket_visibility(world: World, apis: Apis, ticket: Ticket) -> None:
    public = apis.alice.upload("screen.png", PNG)
    internal = apis.provider_a.upload("node.log", b"kernel: oom\n")
    unattached = apis.alice.upload("draft.txt", b"not attached yet\n")
    assert public.status_code == internal.status_code == unattached.status_code == 201
    services.attachment_attach(actor=world.alice, ticket_id=ticket.id, attachment_ids=[public.json()["id"]])
    services.comment_add(
        actor=provider_party(world.provider_a),
        ticket_id=ticket.id,
        body="log attached",
        is_internal=True,
        attachment_ids=[internal.json()["id"]],
    )
    expectations = {
        public.json()["id"]: {"alice", "provider_a", "provider_a_member", "agent"},
        internal.json()["id"]: {"provider_a", "provider_a_member", "agent"},
        unattached.json()["id"]: {"alice"},
    }
    for attachment_id, allowed in expectations.items():
        for party in PARTIES:
            response = apis.all()[party].get(f"/api/v1/attachments/{attachment_id}")
            want = 200 if party in allowed else (401 if party == "anonymous" else 404)
            assert response.status_code == want, (party, Attachment.objects.get(pk=attachment_id).filename)
            if want == 200:
                assert response["Content-Disposition"].startswith("attachment;")
                assert response["X-Content-Type-Options"] == "nosniff"


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201e2a1ec4a0000000049454e44ae426082"
)
