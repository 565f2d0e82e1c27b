"""/healthz, /readyz and /metrics through HTTP, as a load balancer and Prometheus call them."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.test import Client

from tests.conftest import World
from tickets import services

pytestmark = pytest.mark.django_db

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def metric(body: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    line = f"{name}{{{selector}}}" if labels else name
    match = re.search(rf"^{re.escape(line)} (\S+)$", body, re.MULTILINE)
    assert match, f"{line} not in the exposition"
    return float(match.group(1))


def test_healthz_answers_any_host_without_touching_the_database(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/healthz", HTTP_HOST="10.0.3.7:8000")  # a probe asks by address
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_readyz_is_ok_when_everything_answers() -> None:
    response = Client().get("/readyz", HTTP_HOST="10.0.3.7:8000")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "Database": "ok",
        "Cache": "ok",
        "Redis": "ok",
        "ChannelLayer": "ok",
        "OutboxLag": "ok",
    }


def test_readyz_is_503_with_retry_after_while_the_outbox_falls_behind(
    world: World, settings, frozen_clock
) -> None:
    world.open_ticket()  # queued for the chain; nothing drains it here
    settings.VE_READY_MAX_OUTBOX_LAG_SECONDS = 60
    assert Client().get("/readyz").status_code == 200
    frozen_clock.advance(datetime.timedelta(seconds=61))
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["Database"] == "ok"
    assert re.fullmatch(
        r"Unavailable: 1 event\(s\) unanchored, the oldest for 6\d s \(limit 60 s\)",
        body["checks"]["OutboxLag"],
    )


def test_readyz_is_503_when_redis_does_not_answer(settings) -> None:
    settings.REDIS_URL = CLOSED_PORT_REDIS
    settings.CACHES = {
        "default": {"BACKEND": "core.cache.SharedPoolRedisCache", "LOCATION": CLOSED_PORT_REDIS}
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [CLOSED_PORT_REDIS]},
        }
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    checks = response.json()["checks"]
    assert checks["Database"] == "ok"
    for name in ("Cache", "Redis", "ChannelLayer"):
        assert checks[name] != "ok", name
    assert "127.0.0.1:1" not in json.dumps(checks)  # reasons, not connection strings


def test_metrics_only_for_allowed_networks_or_the_token(settings) -> None:
    settings.VE_METRICS_TOKEN = "s3cret-scrape-token"
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
    wrong = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.get("/metrics").status_code == 404
    with_token = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert with_token.get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200


def test_metrics_count_requests_the_backlog_and_breaches(world: World, settings, frozen_clock) -> None:
    settings.VE_METRICS_DB_SECONDS = 0
    scraper = Client(REMOTE_ADDR="127.0.0.1")
    before = scraper.get("/metrics").content.decode()
    assert metric(before, "ve_chain_outbox_unanchored", state="pending") == 0
    assert metric(before, "ve_sla_breaches_total", target="first_response") == 0

    ticket = world.open_ticket(priority="critical")
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="Still down.")
    frozen_clock.advance(datetime.timedelta(hours=2))
    assert services.sla_sweep().breaches == 1  # a critical ticket's first response is due within the hour
    Client().get("/api/v1/tickets")  # one more request of a known view

    after = scraper.get("/metrics").content.decode()
    # created, commented, warned, breached, escalated: every event waits for the chain
    assert metric(after, "ve_chain_outbox_unanchored", state="pending") == 5
    assert metric(after, "ve_chain_outbox_lag_seconds") >= 7200
    assert metric(after, "ve_sla_breaches_total", target="first_response") == 1
    assert metric(after, "ve_sla_breached_open_tickets") == 1
    assert re.search(
        r'^django_http_responses_total_by_status_total\{status="401"\} [1-9]', after, re.MULTILINE
    )
