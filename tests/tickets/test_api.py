"""The ticket API through HTTP: flows, filters, ordering, cursor pages, errors and query counts."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.settings import api_settings

from tests.conftest import Apis, World
from tickets import services, tasks
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


def create(api, world: World, **fields) -> dict:
    body = {
        "deployment_id": world.alice_deployment.lease_id,
        "subject": "Pod crash-looping",
        "description": "OOM",
    }
    body.update(fields)
    response = api.post(TICKETS, body)
    assert response.status_code == 201, response.content
    return response.json()


class TestCreateAndRead:
    def test_create_returns_the_ticket_in_the_contract_shape(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world, category="technical", priority="high")
        assert ticket["number"].startswith("SUP-")
        assert ticket["deployment_id"] == world.alice_deployment.lease_id
        assert ticket["deployment_name"] == world.alice_deployment.name
        assert ticket["provider"] == world.provider_a.address
        assert (ticket["status"], ticket["priority"], ticket["category"]) == ("open", "high", "technical")
        assert ticket["assigned_to"] == "provider"
        assert ticket["comments"] == []
        assert ticket["chain"]["state"] == "pending"
        assert ticket["sla"]["resolution_due"].endswith("Z")
        assert ticket["last_seq"] == 1

    def test_defaults_follow_the_contract(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        assert (ticket["priority"], ticket["category"]) == ("medium", "general")

    def test_detail_includes_thread_and_attachments(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        upload = apis.provider_a_member.upload("trace.log", b"line 1\nline 2\n")
        assert upload.status_code == 201, upload.content
        reply = apis.provider_a_member.post(
            f"{TICKETS}/{ticket['id']}/comments",
            {"content": "Here is the trace", "attachment_ids": [upload.json()["id"]]},
        )
        assert reply.status_code == 201, reply.content
        detail = apis.alice.get(f"{TICKETS}/{ticket['id']}").json()
        (comment,) = detail["comments"]
        assert comment["content"] == comment["message"] == "Here is the trace"
        assert comment["author_type"] == "provider"
        assert [a["filename"] for a in comment["attachments"]] == ["trace.log"]
        assert [a["sha256"] for a in detail["attachments"]] == [upload.json()["sha256"]]

    def test_comments_accept_message_or_content(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        by_message = apis.alice.post(
            f"{TICKETS}/{ticket['id']}/comments", {"message": "from VirtEngine client"}
        )
        by_content = apis.alice.post(f"{TICKETS}/{ticket['id']}/comments", {"content": "from portal"})
        assert by_message.status_code == by_content.status_code == 201
        assert by_message.json()["content"] == "from VirtEngine client"
        assert by_content.json()["message"] == "from portal"
        differing = apis.alice.post(f"{TICKETS}/{ticket['id']}/comments", {"content": "a", "message": "b"})
        assert differing.status_code == 400
        assert "message" in differing.json()["fields"]

    def test_events_since_in_the_callers_numbering(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        apis.provider_a.post(
            f"{TICKETS}/{ticket['id']}/comments", {"content": "internal", "is_internal": True}
        )
        apis.provider_a.post(f"{TICKETS}/{ticket['id']}/comments", {"content": "public"})
        provider_view = apis.provider_a.get(f"{TICKETS}/{ticket['id']}/events").json()
        customer_view = apis.alice.get(f"{TICKETS}/{ticket['id']}/events").json()
        assert [e["seq"] for e in provider_view] == [1, 2, 3]
        assert [e["seq"] for e in customer_view] == [1, 2]
        assert all(not e["data"].get("is_internal") for e in customer_view)
        since = apis.alice.get(f"{TICKETS}/{ticket['id']}/events", since=1).json()
        assert [e["type"] for e in since] == ["new_comment"]

    def test_deployments_lists_the_callers_own(self, world: World, apis: Apis) -> None:
        alice = {d["id"] for d in apis.alice.get("/api/v1/deployments").json()}
        assert alice == {world.alice_deployment.lease_id, world.alice_second_deployment.lease_id}
        provider_b = {d["id"] for d in apis.provider_b.get("/api/v1/deployments").json()}
        assert provider_b == {world.alice_second_deployment.lease_id, world.bob_deployment.lease_id}


class TestChanges:
    def test_patch_moves_status_and_priority(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world, priority="low")
        response = apis.provider_a.patch(
            f"{TICKETS}/{ticket['id']}", {"status": "in_progress", "priority": "high"}
        )
        assert response.status_code == 200, response.content
        assert (response.json()["status"], response.json()["priority"]) == ("in_progress", "high")

    def test_illegal_transition_is_409_with_allowed_targets(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        response = apis.alice.patch(f"{TICKETS}/{ticket['id']}", {"status": "resolved"})
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "illegal_transition"
        assert body["allowed"] == ["closed"]
        assert body["current"] == "open"
        assert "status" in body["fields"]

    def test_escalate_assign_and_links(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        url = f"{TICKETS}/{ticket['id']}"
        escalated = apis.alice.post(f"{url}/escalate", {"reason": "No reply"})
        assert escalated.status_code == 200
        assert (escalated.json()["assigned_to"], escalated.json()["escalated"]) == ("support", True)
        assigned = apis.agent.post(
            f"{url}/assign", {"assignee_type": "support", "assignee_id": world.agent.user_id}
        )
        assert assigned.status_code == 200, assigned.content
        assert assigned.json()["assigned_to"] == "agent"
        linked = apis.alice.post(f"{url}/links", {"deployment_id": world.alice_second_deployment.lease_id})
        assert linked.status_code == 201, linked.content
        detail = apis.alice.get(url).json()
        assert [d["deployment_id"] for d in detail["related_deployments"]] == [
            world.alice_second_deployment.lease_id
        ]
        unlinked = apis.alice.delete(f"{url}/links", deployment_id=world.alice_second_deployment.lease_id)
        assert unlinked.status_code == 204
        assert apis.alice.get(url).json()["related_deployments"] == []

    def test_logs_request_is_queued_after_commit_once_a_minute(
        self, world: World, apis: Apis, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
    ) -> None:
        queued: list[str] = []
        monkeypatch.setattr(tasks.deployment_logs_fetch_task, "delay", queued.append)
        ticket = create(apis.alice, world)
        with django_capture_on_commit_callbacks(execute=True):
            first = apis.provider_a.post(f"{TICKETS}/{ticket['id']}/logs")
            again = apis.provider_a.post(f"{TICKETS}/{ticket['id']}/logs")
        assert first.status_code == again.status_code == 202
        assert first.json() == {"status": "queued"}
        assert queued == [ticket["id"]]
        assert apis.bob.post(f"{TICKETS}/{ticket['id']}/logs").status_code == 404


class TestListing:
    @pytest.fixture
    def many(self, world: World) -> list[Ticket]:
        tickets = [
            world.open_ticket(
                subject=f"Ticket {index}",
                priority=["low", "medium", "high", "critical"][index % 4],
                category="billing" if index % 2 else "technical",
            )
            for index in range(7)
        ]
        services.ticket_transition(actor=world.agent, ticket_id=tickets[0].id, status="resolved")
        return tickets

    def test_filters(self, world: World, apis: Apis, many: list[Ticket]) -> None:
        assert len(apis.alice.get(TICKETS, status="resolved").json()) == 1
        assert len(apis.alice.get(TICKETS, priority="critical").json()) == 1
        assert len(apis.alice.get(TICKETS, category="billing").json()) == 3
        assert len(apis.alice.get(TICKETS, deployment_id=world.alice_deployment.lease_id).json()) == 7
        assert [t["subject"] for t in apis.alice.get(TICKETS, q="ticket 3").json()] == ["Ticket 3"]
        assert [t["subject"] for t in apis.alice.get(TICKETS, q=many[5].display_number).json()] == [
            "Ticket 5"
        ]

    def test_ordering_by_priority(self, apis: Apis, many: list[Ticket]) -> None:
        priorities = [t["priority"] for t in apis.alice.get(TICKETS, ordering="-priority").json()]
        rank = {"low": 0, "medium": 1, "high": 2, "critical": 3}
        assert priorities == sorted(priorities, key=rank.__getitem__, reverse=True)

    @pytest.mark.parametrize("ordering", ["-created_at", "created_at", "-priority", "priority", "updated_at"])
    def test_cursor_pages_cover_everything_once(self, apis: Apis, many: list[Ticket], ordering: str) -> None:
        seen: list[str] = []
        response = apis.alice.get(TICKETS, limit=3, ordering=ordering)
        pages = 0
        while True:
            pages += 1
            assert response.status_code == 200
            seen += [t["id"] for t in response.json()]
            link = response.get("Link")
            if not link:
                break
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
            assert "limit=3" in url
            cursor = url.split("cursor=")[1]
            response = apis.alice.get(TICKETS, limit=3, ordering=ordering, cursor=cursor)
        assert pages == 3
        assert sorted(seen) == sorted(str(t.id) for t in many)

    def test_bad_query_parameters_name_the_field(self, apis: Apis) -> None:
        for params, field in [
            ({"status": "nope"}, "status"),
            ({"limit": "500"}, "limit"),
            ({"limit": "x"}, "limit"),
            ({"ordering": "subject"}, "ordering"),
            ({"cursor": "garbage"}, "cursor"),
        ]:
            response = apis.alice.get(TICKETS, **params)
            assert response.status_code == 400, params
            assert field in response.json()["fields"], params

    def test_list_query_count_does_not_grow_with_page_size(
        self, world: World, apis: Apis, many: list[Ticket]
    ) -> None:
        counts = []
        for limit in (1, 7):
            with CaptureQueriesContext(connection) as queries:
                response = apis.provider_a_member.get(TICKETS, limit=limit)
            assert len(response.json()) == limit
            counts.append(len(queries))
        assert counts[0] == counts[1]
        assert counts[1] <= 6

    def test_detail_query_count_does_not_grow_with_the_thread(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        apis.provider_a.get(TICKETS)  # the credential's first use records last_used_at; measure after it
        counts = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                assert apis.provider_a.get(f"{TICKETS}/{ticket.id}").status_code == 200
            counts.append(len(queries))
            for n in range(5):
                services.comment_add(actor=world.provider_a_member, ticket_id=ticket.id, body=f"reply {n}")
        assert counts[0] == counts[1]
        assert counts[1] <= 8


class TestErrors:
    def test_validation_errors_name_every_field_and_write_nothing(self, world: World, apis: Apis) -> None:
        response = apis.alice.post(TICKETS, {"subject": "", "priority": "urgent", "surprise": 1})
        assert response.status_code == 400
        body = response.json()
        assert set(body["fields"]) >= {"deployment_id", "subject", "description", "priority"}
        assert body["error"].startswith("Invalid input")
        assert not Ticket.objects.exists()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"message": 1.1e-308}, "message"),
            ({"content": True}, "content"),
            ({"content": "ok", "is_internal": "yes"}, "is_internal"),
            ({"content": "ok", "attachment_ids": [12345]}, "attachment_ids"),
        ],
    )
    def test_json_types_are_not_coerced(self, world: World, apis: Apis, body: dict, field: str) -> None:
        ticket = world.open_ticket()
        response = apis.provider_a.post(f"{TICKETS}/{ticket.id}/comments", body)
        assert response.status_code == 400, response.content
        assert any(name.startswith(field) for name in response.json()["fields"])
        assigned = apis.agent.post(
            f"{TICKETS}/{ticket.id}/assign", {"assignee_type": "support", "assignee_id": "5"}
        )
        assert assigned.status_code == 400
        assert "assignee_id" in assigned.json()["fields"]

    def test_unknown_fields_are_refused(self, world: World, apis: Apis) -> None:
        ticket = create(apis.alice, world)
        response = apis.alice.patch(f"{TICKETS}/{ticket['id']}", {"status": "closed", "assignee": "me"})
        assert response.status_code == 400
        assert "assignee" in response.json()["fields"]

    @pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"', b"null"])
    def test_malformed_json_is_a_400(self, world: World, apis: Apis, body: bytes) -> None:
        response = apis.alice.request("POST", TICKETS, raw_body=body)
        assert response.status_code == 400
        assert "error" in response.json()

    def test_non_uuid_ids_are_404(self, apis: Apis) -> None:
        assert apis.alice.get(f"{TICKETS}/not-a-uuid").status_code == 404
        assert apis.alice.get("/api/v1/attachments/not-a-uuid").status_code == 404

    @pytest.mark.usefixtures("throttle_clock_pinned")
    def test_throttled_callers_get_429_with_retry_after(self, world: World, apis: Apis, settings) -> None:
        rates = {**api_settings.DEFAULT_THROTTLE_RATES, "party": "3/min"}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        statuses = [apis.alice.get(TICKETS).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = apis.alice.get(TICKETS)
        assert int(limited["Retry-After"]) > 0
        assert limited.json()["code"] == "throttled"
        assert apis.bob.get(TICKETS).status_code == 200  # per identity, not global

    @pytest.mark.usefixtures("throttle_clock_pinned")
    def test_write_budget_is_separate(self, world: World, apis: Apis, settings) -> None:
        rates = {**api_settings.DEFAULT_THROTTLE_RATES, "party_write": "2/min"}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        ticket = world.open_ticket()
        url = f"{TICKETS}/{ticket.id}/comments"
        statuses = [apis.alice.post(url, {"content": f"c{n}"}).status_code for n in range(3)]
        assert statuses == [201, 201, 429]
        assert apis.alice.get(TICKETS).status_code == 200
        assert TicketEvent.objects.filter(ticket=ticket, kind="new_comment").count() == 2


def test_openapi_schema_and_docs_are_served(apis: Apis) -> None:
    schema = apis.anonymous.get("/api/v1/schema/", format="json")
    assert schema.status_code == 200
    document = json.loads(schema.content)
    assert {"walletSignature", "providerHmac", "portalSession"} <= set(
        document["components"]["securitySchemes"]
    )
    assert "/api/v1/tickets" in document["paths"]
    assert apis.anonymous.get("/api/v1/docs/").status_code == 200
