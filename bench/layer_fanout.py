"""The ticket sockets without the per-process fan-out hub: Channels' standard pattern, every socket joining
its groups on the channel layer itself. `bench/ws_fanout.py --fanout layer` serves this to measure the
hub (`tickets/fanout.py`) against the library: with `channels_redis.core.RedisChannelLayer`, or with
`channels_redis.pubsub.RedisPubSubChannelLayer` (which already subscribes once per process and group)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from channels.routing import URLRouter
from django.urls import path

from config.asgi import application_for, django_asgi_app
from tickets.consumers import TicketUpdatesConsumer, UpdatesStreamConsumer


class _OwnGroups:
    channel_layer_alias = "default"

    async def _join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        self.send_lock = asyncio.Lock()
        self.member_id = uuid.uuid4().hex
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _leave(self) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def ticket_event(self, message: dict[str, Any]) -> None:
        await self._forward(message["payload"])

    async def ticket_typing(self, message: dict[str, Any]) -> None:
        if message.get("sender") != self.member_id:
            await self.send_json(message["payload"])


class LayerTicketUpdatesConsumer(_OwnGroups, TicketUpdatesConsumer):
    pass


class LayerUpdatesStreamConsumer(_OwnGroups, UpdatesStreamConsumer):
    pass


def _router() -> URLRouter:
    return URLRouter(
        [
            path("api/v1/tickets/<str:ticket_id>/updates", LayerTicketUpdatesConsumer.as_asgi()),
            path("api/v1/updates", LayerUpdatesStreamConsumer.as_asgi()),
        ]
    )


application = application_for(django_asgi_app, websocket_router=_router())
