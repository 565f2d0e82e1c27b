"""Webhook delivery against a real local HTTP receiver, every request verified with svix: signatures,
at-least-once in order per ticket through failures, stable ids, timeouts, SSRF refusal at connect time,
provider isolation, automatic disable, redelivery, secret rotation."""

from __future__ import annotations

import datetime
import itertools
import socket
import time
from collections import defaultdict

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from svix.webhooks import Webhook

from notifications import tasks
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import World
from tests.notifications.receivers import WebhookReceiver
from tickets import services
from tickets.presenter import SHAPES

pytestmark = pytest.mark.django_db

ALL_TYPES = sorted(SHAPES)


def register(api, receiver: WebhookReceiver, *, url: str | None = None, event_types=ALL_TYPES) -> dict:
    response = api.post("/api/v1/webhooks", {"url": url or receiver.url(), "event_types": event_types})
    assert response.status_code == 201, response.content
    created = response.json()
    receiver.secrets.append(created["secret"])
    return created


def deliver() -> None:
    tasks.webhook_deliver_task()


def activity(world: World, ticket_count: int = 3) -> list:
    """Tickets with replies, an internal note and a status change each."""
    tickets = []
    for n in range(ticket_count):
        ticket = world.open_ticket(subject=f"Ticket {n}")
        services.comment_add(actor=world.alice, ticket_id=ticket.pk, body=f"customer reply {n}")
        services.comment_add(
            actor=world.provider_a_member, ticket_id=ticket.pk, body=f"secret note {n}", is_internal=True
        )
        services.comment_add(actor=world.provider_a_member, ticket_id=ticket.pk, body=f"public answer {n}")
        services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.pk, status="resolved")
        tickets.append(ticket)
    return tickets


def test_every_delivery_is_signed_and_verifies_with_svix(world, apis, receiver, fast_webhooks) -> None:
    register(apis.provider_a, receiver)
    ticket = world.open_ticket()
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="Hello")
    deliver()
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert request.verified
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-signature"].startswith("v1,")
        # The independent verifier accepts exactly these bytes and headers, and nothing altered.
        Webhook(receiver.secrets[0]).verify(request.body, request.headers)
        with pytest.raises(Exception):
            Webhook(receiver.secrets[0]).verify(request.body + b" ", request.headers)
    assert [r.payload["type"] for r in receiver.requests] == ["ticket_created", "new_comment"]
    assert all(d.state == "delivered" for d in WebhookDelivery.objects.all())


def test_receiver_failing_five_times_then_recovering_gets_every_event_in_order_once(
    world, apis, receiver, fast_webhooks
) -> None:
    receiver.behaviour = lambda n: 500 if n < 5 else 200
    register(apis.provider_a, receiver)
    tickets = activity(world)
    expected = WebhookDelivery.objects.count()
    assert expected == 15

    for _ in range(10):  # each run retries (schedule 0 s) until nothing is due
        deliver()
        if not WebhookDelivery.objects.filter(state__in=WebhookDelivery.OPEN_STATES).exists():
            break

    assert sum(1 for r in receiver.requests if r.status == 500) == 5
    assert all(r.verified for r in receiver.requests)
    accepted = receiver.accepted()
    ids = [r.id for r in accepted]
    assert len(ids) == len(set(ids)) == expected  # every event, no duplicate delivery id
    # Failed attempts carried the same ids as the successful ones (stable across retries).
    assert {r.id for r in receiver.requests} == set(ids)
    per_ticket = defaultdict(list)
    for request in receiver.requests:  # every request, failures included, in arrival order
        per_ticket[request.payload["ticket_id"]].append(request.payload["seq"])
    for ticket in tickets:
        seqs = per_ticket[str(ticket.pk)]
        # Never past a failure: a seq is only followed by itself (a retry) or the next one.
        assert all(b in (a, a + 1) for a, b in itertools.pairwise(seqs)), seqs
        assert sorted(set(seqs)) == list(range(1, 6))
    assert WebhookAttempt.objects.filter(outcome="http_error", status_code=500).count() == 5
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}


def test_a_hanging_receiver_is_timed_out(world, apis, receiver, fast_webhooks) -> None:
    receiver.behaviour = lambda n: "hang" if n == 0 else 200
    register(apis.provider_a, receiver)
    world.open_ticket()
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = [60.0]
    deliver()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "retrying"
    attempt = delivery.attempt_log.get()
    assert attempt.outcome == "timeout"
    assert attempt.latency_ms >= 900


def test_a_receiver_that_drips_its_answer_is_cut_at_the_deadline(
    world, apis, receiver, fast_webhooks
) -> None:
    # Each byte comes well within the per-read timeout; only a deadline on the whole attempt stops it
    # (left alone it would answer 200 after ~8 s).
    receiver.behaviour = lambda n: "drip"
    register(apis.provider_a, receiver)
    world.open_ticket()
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = [60.0]
    deliver()
    attempt = WebhookAttempt.objects.get()
    assert attempt.outcome == "timeout"
    assert WebhookDelivery.objects.get().state == "retrying"
    deadline = time.monotonic() + 5
    while not receiver.drips and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.drips == ["cut by the client"]  # the connection was dropped mid-answer


def test_provider_a_never_receives_provider_b_events_and_sees_what_its_rest_api_shows(
    world, apis, fast_webhooks
) -> None:
    receiver_a, receiver_b = WebhookReceiver(), WebhookReceiver()
    try:
        register(apis.provider_a, receiver_a)
        register(apis.provider_b, receiver_b)
        a_tickets = activity(world, ticket_count=1)
        bob_ticket = world.open_ticket(actor=world.bob)
        services.comment_add(actor=world.bob, ticket_id=bob_ticket.pk, body="bob's problem")
        services.comment_add(
            actor=world.provider_b_member, ticket_id=bob_ticket.pk, body="B internal", is_internal=True
        )
        deliver()
        assert {r.payload["ticket_id"] for r in receiver_a.requests} == {str(a_tickets[0].pk)}
        assert {r.payload["ticket_id"] for r in receiver_b.requests} == {str(bob_ticket.pk)}
        assert not any(b"B internal" in r.body or b"bob's problem" in r.body for r in receiver_a.requests)
        # Each body is the event exactly as the provider reads it through REST (the same presenter).
        for receiver, api, ticket in (
            (receiver_a, apis.provider_a, a_tickets[0]),
            (receiver_b, apis.provider_b, bob_ticket),
        ):
            rest = {e["seq"]: e for e in api.get(f"/api/v1/tickets/{ticket.pk}/events").json()}
            assert len(receiver.requests) == len(rest)
            for request in receiver.requests:
                assert request.verified
                assert request.payload == rest[request.payload["seq"]]
                assert set(request.payload["data"]) == set(SHAPES[request.payload["type"]].keys_for("staff"))
    finally:
        receiver_a.close()
        receiver_b.close()


def test_endpoints_receive_only_the_event_types_they_chose(world, apis, receiver, fast_webhooks) -> None:
    register(apis.provider_a, receiver, event_types=["status_change"])
    activity(world, ticket_count=1)
    deliver()
    assert [r.payload["type"] for r in receiver.requests] == ["status_change"]


def test_rolled_back_events_queue_no_delivery(world, apis, receiver, fast_webhooks) -> None:
    register(apis.provider_a, receiver)
    queued_inside = []

    def open_and_fail() -> None:
        with transaction.atomic():
            world.open_ticket()
            queued_inside.append(WebhookDelivery.objects.count())  # in the event's own transaction
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        open_and_fail()
    assert queued_inside == [1]
    assert WebhookDelivery.objects.count() == 0


# -- SSRF --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_at_connect_time_when_the_setting_forbids_it(
    world, apis, receiver, fast_webhooks, host
) -> None:
    register(apis.provider_a, receiver, url=receiver.url(host=host))  # allowed while registering
    fast_webhooks.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = [60.0]
    world.open_ticket()
    deliver()
    assert receiver.requests == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.outcome == "refused"
    assert "loopback" in attempt.error


def test_a_name_that_resolves_to_loopback_only_when_connecting_is_refused(
    world, apis, receiver, fast_webhooks, monkeypatch
) -> None:
    """DNS rebinding: public when registered, 127.0.0.1 when the delivery connects."""
    fast_webhooks.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = [60.0]
    real_getaddrinfo = socket.getaddrinfo
    answers = {"now": "93.184.215.14"}

    def mapped(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers["now"], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", mapped)
    created = register(apis.provider_a, receiver, url=receiver.url(host="hooks.rebind.test"))
    assert created["url"].startswith("http://hooks.rebind.test:")
    answers["now"] = "127.0.0.1"
    world.open_ticket()
    deliver()
    assert receiver.requests == []
    assert WebhookAttempt.objects.get().outcome == "refused"


def test_registration_refuses_private_addresses_when_forbidden(apis, receiver, settings) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    for url in (receiver.url(), receiver.url(host="localhost"), "http://10.0.0.8/hook", "http://[::1]:8080/"):
        response = apis.provider_a.post("/api/v1/webhooks", {"url": url, "event_types": ["new_comment"]})
        assert response.status_code == 400, url
        body = response.json()
        assert body["code"] == "invalid"
        assert "url" in body["fields"]
    assert not WebhookEndpoint.objects.exists()


# -- disable, redelivery, rotation ------------------------------------------------------------------


def test_an_endpoint_failing_for_long_is_disabled_and_its_provider_told(
    world, apis, receiver, fast_webhooks
) -> None:
    fast_webhooks.VE_WEBHOOK_DISABLE_AFTER_SECONDS = 0
    fast_webhooks.VE_WEBHOOK_DISABLE_MIN_FAILURES = 3
    receiver.behaviour = lambda n: 503
    created = register(apis.provider_a, receiver)
    ticket = world.open_ticket()
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="one more")
    deliver()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.state == "disabled"
    assert len(receiver.requests) == 3  # the head of the ticket, three times; its successor held back
    shown = apis.provider_a.get(f"/api/v1/webhooks/{created['id']}").json()
    assert shown["state"] == "disabled"
    assert "failed" in shown["disabled_reason"]

    mail.outbox.clear()
    tasks.webhook_disabled_notices_task()
    assert [m.to for m in mail.outbox] == [["pa-member@example.test"]]
    assert endpoint.url in mail.outbox[0].body
    tasks.webhook_disabled_notices_task()
    assert len(mail.outbox) == 1  # told once

    deliver()
    assert len(receiver.requests) == 3  # nothing goes to a disabled endpoint
    receiver.behaviour = lambda n: 200
    response = apis.provider_a.patch(f"/api/v1/webhooks/{created['id']}", {"enabled": True})
    assert response.status_code == 200
    assert response.json()["state"] == "active"
    deliver()
    assert [r.payload["seq"] for r in receiver.accepted()] == [1, 2]


def test_redelivery_of_one_delivery_and_of_a_time_range(world, apis, receiver, fast_webhooks) -> None:
    created = register(apis.provider_a, receiver)
    world.open_ticket()
    deliver()
    (first,) = receiver.accepted()
    log = apis.provider_a.get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    assert [d["id"] for d in log] == [first.id]
    assert log[0]["state"] == "delivered"
    assert log[0]["last_status_code"] == 200
    assert log[0]["attempts"] == 1
    assert log[0]["last_latency_ms"] is not None

    response = apis.provider_a.post(f"/api/v1/webhooks/{created['id']}/deliveries/{first.id}/redeliver")
    assert response.status_code == 202
    deliver()
    again = receiver.accepted()[-1]
    assert again.id == first.id
    assert again.body == first.body
    assert again.verified

    # A run that gives up at once, then a redelivery of the range.
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = []
    receiver.behaviour = lambda n: 500
    since = timezone.now()
    world.open_ticket()
    world.open_ticket()
    deliver()
    assert WebhookDelivery.objects.filter(state="failed").count() == 2
    receiver.behaviour = lambda n: 200
    window = {
        "since": since.isoformat(),
        "until": (timezone.now() + datetime.timedelta(seconds=1)).isoformat(),
    }
    response = apis.provider_a.post(f"/api/v1/webhooks/{created['id']}/redeliver", window)
    assert response.status_code == 202
    assert response.json() == {"redelivered": 2}
    deliver()
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
    detail = apis.provider_a.get(
        f"/api/v1/webhooks/{created['id']}/deliveries/{receiver.accepted()[-1].id}"
    ).json()
    assert [a["outcome"] for a in detail["attempt_log"]] == ["http_error", "success"]
    assert detail["payload"]["type"] == "ticket_created"


def test_after_rotation_both_secrets_verify_during_the_grace_period(
    world, apis, receiver, fast_webhooks
) -> None:
    created = register(apis.provider_a, receiver)
    old = created["secret"]
    rotated = apis.provider_a.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old
    assert new.startswith("whsec_")
    receiver.secrets.append(new)
    world.open_ticket()
    deliver()
    (request,) = receiver.requests
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)

    fast_webhooks.VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS = 0
    again = apis.provider_a.post(f"/api/v1/webhooks/{created['id']}/rotate-secret").json()["secret"]
    receiver.secrets.append(again)
    world.open_ticket()
    deliver()
    latest = receiver.requests[-1]
    Webhook(again).verify(latest.body, latest.headers)
    with pytest.raises(Exception):
        Webhook(old).verify(latest.body, latest.headers)


def test_logs_past_their_retention_are_purged_and_open_deliveries_kept(
    world, apis, receiver, fast_webhooks
) -> None:
    register(apis.provider_a, receiver)
    world.open_ticket()
    deliver()
    fast_webhooks.VE_WEBHOOK_RETRY_SCHEDULE = [3600.0]
    receiver.behaviour = lambda n: 500
    world.open_ticket()
    deliver()
    assert sorted(WebhookDelivery.objects.values_list("state", flat=True)) == ["delivered", "retrying"]
    assert tasks.notifications_log_purge_task() == 0  # nothing is old yet
    WebhookDelivery.objects.update(created_at=timezone.now() - datetime.timedelta(days=31))
    assert tasks.notifications_log_purge_task() == 2  # the delivered delivery and its attempt
    assert list(WebhookDelivery.objects.values_list("state", flat=True)) == ["retrying"]
    assert WebhookAttempt.objects.count() == 1


def test_the_delivery_log_costs_the_same_queries_whatever_its_page_size(
    world, apis, receiver, fast_webhooks, django_assert_max_num_queries
) -> None:
    created = register(apis.provider_a, receiver)
    for _ in range(3):
        activity(world, ticket_count=2)
    deliver()
    path = f"/api/v1/webhooks/{created['id']}/deliveries"
    apis.provider_a.get(path, limit=1)  # warm the credential cache
    for limit in (5, 30):
        with django_assert_max_num_queries(4):
            response = apis.provider_a.get(path, limit=limit)
        assert len(response.json()) == limit
    first_page = apis.provider_a.get(path, limit=10)
    next_url = first_page.headers["Link"].split(";")[0].strip("<>")
    cursor = next_url.split("cursor=")[1]
    second = apis.provider_a.get(path, limit=10, cursor=cursor).json()
    assert {d["id"] for d in second}.isdisjoint({d["id"] for d in first_page.json()})
