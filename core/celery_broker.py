"""Celery's Redis broker transport, with one fix for a worker that loses Redis.

Celery 5.7 handles a lost broker connection by collecting it (the transport lets go of its client) and then
closing it. When the collect could not close the consumer's channel, the close does, and first restores the
channel's unacknowledged messages (tasks are acknowledged late here, so there usually are some): that needs a
Redis client, which kombu builds from the client the transport let go of — `AttributeError: 'NoneType' object
has no attribute 'hostname'`. That error is not a connection error, so nothing on the way ignores it and the
worker exits ("Unrecoverable error") instead of reconnecting once Redis is back.

Here the same situation raises a Redis `ConnectionError`, which kombu and Celery expect while the broker is
gone: the close ignores it and the worker reconnects. The unacknowledged messages stay where the broker keeps
them (restored after the visibility timeout) or were lost with Redis; either way every task's work is in an
outbox in PostgreSQL that beat's sweeps drain again.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("The broker connection was already closed.")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
