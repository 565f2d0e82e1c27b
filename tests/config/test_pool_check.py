"""The connection pool's check (core.service_settings.check_unless_recently_taken): a connection PostgreSQL
dropped is found and refused when it has not been taken for a while, without a round trip on every
request."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection as django_connection
from django.db import connections

from core import service_settings
from core.pooled_postgresql.base import DatabaseWrapper


@pytest.fixture
def pooled_like():
    """A connection of our own, as the pool holds them."""
    params = django_connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    own = psycopg.connect(**params, autocommit=True)
    yield own
    own.close()


def _drop_from_the_server(own: psycopg.Connection) -> None:
    with django_connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [own.info.backend_pid])


@pytest.mark.django_db
def test_a_dropped_connection_is_refused_once_it_has_been_idle(pooled_like, monkeypatch) -> None:
    service_settings.check_unless_recently_taken(pooled_like)  # taken: checked, and alive
    _drop_from_the_server(pooled_like)
    # Taken again at once: libpq does not know yet, and no round trip is made.
    service_settings.check_unless_recently_taken(pooled_like)
    monkeypatch.setattr(service_settings, "RECENTLY_TAKEN_SECONDS", 0.0)
    with pytest.raises(psycopg.OperationalError):
        service_settings.check_unless_recently_taken(pooled_like)


@pytest.mark.django_db
def test_a_connection_libpq_knows_is_broken_is_checked_however_recent(pooled_like) -> None:
    service_settings.check_unless_recently_taken(pooled_like)
    pooled_like.close()  # libpq's status is no longer OK
    with pytest.raises(psycopg.OperationalError):
        service_settings.check_unless_recently_taken(pooled_like)


def test_pooled_settings_use_the_backend_that_checks_with_it_not_djangos_check_every_time() -> None:
    databases = {"default": {"CONN_HEALTH_CHECKS": True}}
    service_settings.use_connection_pool(databases, 8)
    assert databases["default"]["CONN_HEALTH_CHECKS"] is False
    assert databases["default"]["ENGINE"] == "core.pooled_postgresql"


@pytest.mark.django_db(transaction=True)
def test_the_pooled_backend_replaces_connections_postgresql_dropped(monkeypatch) -> None:
    settings_dict = {**connections["default"].settings_dict}
    settings_dict["OPTIONS"] = {
        **settings_dict["OPTIONS"],
        "pool": {"min_size": 1, "max_size": 1, "timeout": 5},
    }
    service_settings.use_connection_pool({"default": settings_dict}, 1)
    # Under the alias Django knows (its helpers look it up); the test database's own wrapper has no pool.
    wrapper = DatabaseWrapper(settings_dict, alias="default")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            first_pid = cursor.fetchone()[0]
        wrapper.close()  # back to the pool
        with django_connection.cursor() as cursor:  # a restart, as far as the pool's connections know
            cursor.execute(
                "SELECT pg_terminate_backend(%s)",
                [first_pid],
            )
        monkeypatch.setattr(service_settings, "RECENTLY_TAKEN_SECONDS", 0.0)
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != first_pid
    finally:
        wrapper.close()
        wrapper.close_pool()
