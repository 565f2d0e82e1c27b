"""A backing service that goes away mid-request gets a 503 with Retry-After on every surface — JSON in the
error shape under /api/, a plain page in the portal — never a 500. (The real outage, a PostgreSQL that
goes away under running processes, is tests/system/test_faults.py; here the failure is injected where the
read happens, to pin down the answer's shape.)"""

from __future__ import annotations

import pytest
from django import db
from django.contrib.auth import get_user_model
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from core.statements import StatementCache
from tests.conftest import Apis, World
from tickets import selectors

pytestmark = pytest.mark.django_db

OUTAGES = [
    db.OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused"),
    db.InterfaceError("connection already closed"),
    RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
]


@pytest.fixture(params=OUTAGES, ids=lambda error: type(error).__name__)
def outage(request, monkeypatch) -> Exception:
    error = request.param

    def unavailable(*args: object, **kwargs: object) -> None:
        raise error

    # Where the list reads: a kept statement (core.statements), or the selector when none is kept.
    monkeypatch.setattr(selectors, "ticket_list", unavailable)
    monkeypatch.setattr(StatementCache, "rows", unavailable)
    return error


def test_the_api_answers_503_with_retry_after_in_the_error_shape(world: World, apis: Apis, outage) -> None:
    for api in (apis.alice, apis.provider_a, apis.agent):
        response = api.get("/api/v1/tickets")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        body = response.json()
        assert body["code"] == "service_unavailable"
        assert "retry" in body["error"].lower()
        assert "127.0.0.1" not in response.content.decode()  # the cause stays in the logs


def test_the_portal_answers_a_503_page(world: World, outage) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(pk=world.alice.user_id))
    response = client.get("/tickets/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page
    assert "Traceback" not in page
    assert "127.0.0.1" not in page


def test_other_server_errors_stay_500(world: World, apis: Apis, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "ticket_list", broken)
    monkeypatch.setattr(StatementCache, "rows", broken)
    apis.alice.client.raise_request_exception = False
    response = apis.alice.get("/api/v1/tickets")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "Retry-After" not in response
