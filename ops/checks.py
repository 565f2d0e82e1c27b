"""What `/readyz` checks beyond django-health-check's own (database, cache, Redis): the channel layer
carries a message, and the chain outbox is not falling behind.

Each check raises `ServiceUnavailable` with a short reason an operator can act on (never a connection
string: the reason is shown to whoever asks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from redis.exceptions import RedisError

from chain.selectors import outbox_backlog


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """A message sent on the channel layer comes back (the real-time path between processes)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    async def run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise ServiceUnavailable("no channel layer is configured")
        try:
            channel = await layer.new_channel("readyz.")
            await layer.send(channel, {"type": "readyz.ping"})
            message = await asyncio.wait_for(layer.receive(channel), self.timeout.total_seconds())
        except (TimeoutError, OSError, RedisError) as error:
            raise ServiceUnavailable(f"the channel layer did not answer ({type(error).__name__})") from error
        if message.get("type") != "readyz.ping":
            raise ServiceUnavailable("the channel layer returned another message")


@dataclasses.dataclass
class OutboxLag(HealthCheck):
    """The oldest event not yet anchored on the chain is younger than VE_READY_MAX_OUTBOX_LAG_SECONDS."""

    async def run(self) -> None:
        limit = settings.VE_READY_MAX_OUTBOX_LAG_SECONDS
        if not limit:
            return
        # On the thread (and so the connection) of the app's other synchronous work, not a pool of its own.
        backlog = await sync_to_async(outbox_backlog)()
        lag = backlog.lag_seconds(timezone.now())
        if lag > limit:
            raise ServiceUnavailable(
                f"{backlog.unanchored} event(s) unanchored, the oldest for {lag:.0f} s (limit {limit:g} s)"
            )
