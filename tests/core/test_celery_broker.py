"""A worker that loses Redis reconnects instead of exiting.

Celery 5.7 collects a lost broker connection (the transport lets go of its Redis client) and then closes it;
when the consumer's channel still holds unacknowledged messages (tasks are acknowledged late here), kombu's
Redis transport tried to restore them through the client it no longer has and raised an AttributeError,
which ended the worker (seen in `tests/system/test_faults.py::test_redis_restarted_under_load`). These tests
put a real connection to the test Redis in that state: with the app's transport the close goes through;
with kombu's own it still fails, which is what the app's transport is for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Producer, Queue

from config.celery_app import app
from core.celery_broker import Transport

QUEUE = Queue("broker-close-test", Exchange("broker-close-test"), "broker-close-test")


@pytest.fixture
def app_connection() -> Iterator[Connection]:
    connection = app.connection_for_write()
    yield connection
    connection.close()


def hold_one_unacknowledged_message(connection: Connection) -> list:
    """Publish a message and take delivery of it without acknowledging it, as a worker running a task
    acknowledged late does."""
    channel = connection.default_channel
    Producer(channel).publish(
        {"n": 1}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE]
    )
    delivered: list = []
    Consumer(channel, queues=[QUEUE], callbacks=[lambda _body, message: delivered.append(message)]).consume()
    connection.drain_events(timeout=5)
    return delivered


def let_go_of_the_client_as_a_collect_does(connection: Connection) -> None:
    connection._do_close_transport()


def test_the_app_talks_to_redis_through_its_own_transport(app_connection: Connection) -> None:
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert isinstance(app_connection.transport, Transport)


def test_closing_a_collected_connection_that_holds_unacknowledged_messages_does_not_raise(
    app_connection: Connection,
) -> None:
    assert len(hold_one_unacknowledged_message(app_connection)) == 1
    let_go_of_the_client_as_a_collect_does(app_connection)
    app_connection.close()  # what the worker's reconnect path does; before the fix: AttributeError
    # The channel is done with, and a new connection works (what the worker's reconnect opens).
    with app.connection_for_write() as fresh:
        fresh.default_channel.queue_purge(QUEUE.name)


def test_kombu_s_own_transport_still_fails_there() -> None:
    """When this starts failing, kombu or Celery fixed the close: `core.celery_broker` can go."""
    with Connection(settings.CELERY_BROKER_URL) as stock:
        assert type(stock.transport) is not Transport
        hold_one_unacknowledged_message(stock)
        let_go_of_the_client_as_a_collect_does(stock)
        with pytest.raises(AttributeError):
            stock.close()
    with Connection(settings.CELERY_BROKER_URL) as cleanup:
        cleanup.default_channel.queue_purge(QUEUE.name)
