"""WebSocket consumers: thin. They check who is connecting and what they may see (through the same
selectors as the API), join groups, and forward events in order with no gaps and no duplicates.

Close codes: 4400 bad query, 4401 not authenticated or bad signature, 4403 no role, 4404 no such ticket
(or not visible to the caller).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.utils import timezone

from core.errors import NotFound
from core.formats import iso_timestamp
from core.parties import Party
from ops.metrics import websocket_connections
from tickets import fanout, realtime

TYPING_MIN_INTERVAL_SECONDS = 2.0
logger = logging.getLogger(__name__)

replay_from_database = database_sync_to_async(realtime.replay)
last_seq_from_database = database_sync_to_async(realtime.last_seq_for)


class _EventForwarding(AsyncJsonWebsocketConsumer):
    """Forwards `ticket.event` messages in per-ticket seq order, filling any gap from the database. The
    process's fan-out hub delivers the messages and tells a socket to catch up when it is behind."""

    party: Party
    groups_joined: list[str]
    last_seq: dict[str, int]

    # Events reach sockets through this process's fan-out hub, not a channel of each socket's own.
    channel_layer_alias = "__per_process_hub__"
    # The `route` label of the open-connections metric.
    route_name: str

    async def _join(self, groups: list[str]) -> None:
        websocket_connections.labels(self.route_name).inc()
        self.groups_joined = groups
        self.send_lock = asyncio.Lock()
        self.member_id = uuid.uuid4().hex
        for group in groups:
            await fanout.hub().join(group, self)

    async def _leave(self) -> None:
        if not hasattr(self, "groups_joined"):
            return  # closed before it joined (refused): never counted
        websocket_connections.labels(self.route_name).dec()
        for group in self.groups_joined:
            await fanout.hub().leave(group, self)

    def positions(self) -> dict[str, tuple[int, bool]]:
        return {ticket_id: (seq, self.party.sees_internal) for ticket_id, seq in self.last_seq.items()}

    async def catch_up(self, ticket_id: str) -> None:
        await self._catch_up(ticket_id)

    async def deliver(self, message: dict[str, Any], text: str) -> None:
        """Called by the fan-out hub with a group message and its payload already serialised."""
        if message["type"] == realtime.EVENT_MESSAGE_TYPE:
            await self._forward(message["payload"], text)
        elif message["type"] == realtime.TYPING_MESSAGE_TYPE and message.get("sender") != self.member_id:
            await self.send(text_data=text)

    async def _catch_up(self, ticket_id: str) -> None:
        """Send, in order, every event of the ticket after the last one this socket sent."""
        async with self.send_lock:
            try:
                missed = await replay_from_database(
                    self.party, ticket_id, since=self.last_seq.get(ticket_id, 0)
                )
            except NotFound:  # the ticket is no longer visible to this party
                return
            for message in missed:
                if message["seq"] > self.last_seq.get(ticket_id, 0):
                    await self.send_json(message)
                    self.last_seq[ticket_id] = message["seq"]

    async def _take_party(self) -> bool:
        """Set `self.party` from the handshake's authentication, or close with 4401/4403 and say False."""
        party = self.scope.get("party")
        if party is None:
            error = self.scope.get("auth_error") or ""
            await self.close(code=4403 if "role" in error else 4401)
            return False
        self.party = party
        return True

    async def _forward(self, payload: dict[str, Any], text: str | None = None) -> None:
        ticket_id, seq = payload["ticket_id"], payload["seq"]
        known = self.last_seq.get(ticket_id)
        if known is not None and seq <= known:
            return  # already sent (replayed, or delivered twice)
        if known is not None and seq > known + 1:
            # Broadcasts from different processes can overtake each other; the database has them all.
            await self._catch_up(ticket_id)
            return
        async with self.send_lock:
            if seq > self.last_seq.get(ticket_id, 0) or known is None:
                await self.send(text_data=text) if text is not None else await self.send_json(payload)
                self.last_seq[ticket_id] = seq


class TicketUpdatesConsumer(_EventForwarding):
    """`/api/v1/tickets/{id}/updates[?since=SEQ]`: one ticket's events, then typing indicators."""

    route_name = "ticket"

    async def connect(self) -> None:
        if not await self._take_party():
            return
        party = self.party
        params = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        since_text = params.get("since", [None])[-1]
        if since_text is not None and (not since_text.isdigit() or len(since_text) > 10):
            await self.close(code=4400)
            return
        try:
            # Visibility first: an invisible ticket is closed on before any group is joined.
            await last_seq_from_database(party, self.scope["url_route"]["kwargs"]["ticket_id"])
        except NotFound:
            await self.close(code=4404)
            return
        self.ticket_id = str(self.scope["url_route"]["kwargs"]["ticket_id"]).lower()
        self.last_typing = 0.0
        self.last_seq = {}
        # Join first, then read the database: anything committed from here on arrives live, anything
        # before is in the replay; `_forward` drops the overlap by seq.
        await self._join([realtime.ticket_group(self.ticket_id, staff=party.sees_internal)])
        await self.accept()
        if since_text is None:
            self.last_seq[self.ticket_id] = await last_seq_from_database(party, self.ticket_id)
        else:
            self.last_seq[self.ticket_id] = int(since_text)
            await self._catch_up(self.ticket_id)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "typing":
            await self.send_json(
                {
                    "type": "error",
                    "ticket_id": self.ticket_id,
                    "seq": None,
                    "data": {"error": 'Only {"type": "typing"} may be sent.'},
                    "timestamp": iso_timestamp(timezone.now()),
                }
            )
            return
        now = time.monotonic()
        if now - self.last_typing < TYPING_MIN_INTERVAL_SECONDS:
            return  # rate limit: one indicator per interval per socket
        self.last_typing = now
        internal = bool(content.get("internal")) and self.party.sees_internal
        payload = {
            "type": "typing",
            "ticket_id": self.ticket_id,
            "seq": None,
            "data": {"user": self.party.label, "user_type": self.party.kind.value, "internal": internal},
            "timestamp": iso_timestamp(timezone.now()),
        }
        # Someone typing an internal note must not show up on the customer's screen.
        groups = [realtime.ticket_group(self.ticket_id, staff=True)]
        if not internal:
            groups.append(realtime.ticket_group(self.ticket_id, staff=False))
        layer = get_channel_layer()
        for group in groups:
            message = {
                "type": realtime.TYPING_MESSAGE_TYPE,
                "group": group,
                "payload": payload,
                "sender": self.member_id,
            }
            await layer.group_send(group, message)


class UpdatesStreamConsumer(_EventForwarding):
    """`/api/v1/updates`: live events of every ticket the caller may see (no replay: resync a ticket
    with `/tickets/{id}/events?since=` or its own socket's `?since=`)."""

    route_name = "updates"

    async def connect(self) -> None:
        if not await self._take_party():
            return
        party = self.party
        groups = realtime.stream_groups(party)
        if not groups:
            await self.close(code=4403)
            return
        self.last_seq = {}
        await self._join(groups)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(
            {
                "type": "error",
                "ticket_id": None,
                "seq": None,
                "data": {"error": "This stream is receive-only."},
                "timestamp": iso_timestamp(timezone.now()),
            }
        )
